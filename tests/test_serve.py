"""The web API: every route, bad uploads answered 400 in one line while the server keeps serving, and
concurrent requests classified together."""

import io
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

import diffclass

fastapi = pytest.importorskip("fastapi", reason="fastapi is a dependency; install the package")
from fastapi.testclient import TestClient  # noqa: E402

from diffclass.serve import create_app  # noqa: E402


def _png(shade: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (12, 12), shade).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def client(model_dir):
    clf = diffclass.load(model_dir)
    return TestClient(create_app(clf, "exhaustive(n=2)", "tiny")), clf


def test_every_route_and_the_same_answer_as_classify(client):
    http, clf = client
    assert http.get("/health").json() == dict(status="ok", model="tiny", strategy="exhaustive(n=2)", classes=10)
    assert '<input type="file"' in http.get("/").text
    reply = http.post("/classify", files={"image": ("a.png", _png(30), "image/png")})
    assert reply.status_code == 200
    from diffclass.data.images import image_from_bytes

    loaded = image_from_bytes(_png(30), "a.png", 8, 1)
    plain = clf.classify(loaded.tensor[None], "exhaustive(n=2)", [loaded.image_id])[0]
    assert reply.json()["prediction"] == plain.class_name and reply.json()["nfe"] == 20
    figure = http.post("/explain", files={"image": ("a.png", _png(30), "image/png")})
    assert figure.status_code == 200 and figure.content[:4] == b"\x89PNG"
    numbers = http.post("/explain?format=json", files={"image": ("a.png", _png(30), "image/png")}).json()
    assert numbers["prediction"] == plain.class_name and numbers["nfe"] == plain.nfe
    assert numbers["top"][0]["probability"] == pytest.approx(plain.probabilities[plain.label], abs=1e-4)
    odd = http.post("/explain?format=svg", files={"image": ("a.png", _png(30), "image/png")})
    assert odd.status_code == 400 and "format must be png or json" in odd.json()["error"]


def test_an_upload_over_the_size_limit_is_400(client, monkeypatch):
    http, _ = client
    monkeypatch.setattr("diffclass.serve.MAX_UPLOAD", 50)
    reply = http.post("/classify", files={"image": ("big.png", _png(3) + b"\0" * 100, "image/png")})
    assert reply.status_code == 400 and "larger than" in reply.json()["error"]


@pytest.mark.parametrize(
    "payload, message", [(b"", "empty"), (b"not an image", "not an image"), (_png(1)[:30], "x.png: not an image")]
)
def test_bad_uploads_are_400_with_one_line_and_the_server_lives_on(client, payload, message):
    http, _ = client
    reply = http.post("/classify", files={"image": ("x.png", payload, "image/png")})
    assert reply.status_code == 400 and message in reply.json()["error"] and "\n" not in reply.json()["error"]
    assert http.get("/health").status_code == 200
    assert http.post("/classify", files={"image": ("a.png", _png(9), "image/png")}).status_code == 200


def test_concurrent_requests_share_classify_calls_and_each_is_answered_once(client):
    http, _ = client
    shades = list(range(0, 240, 15))
    with ThreadPoolExecutor(16) as pool:
        replies = list(
            pool.map(lambda s: http.post("/classify", files={"image": ("a.png", _png(s), "image/png")}), shades)
        )
    assert all(r.status_code == 200 for r in replies) and len(replies) == 16
    batcher = http.app.state.batcher
    assert sum(batcher.batches) == 16 and max(batcher.batches) > 1  # several images per engine call


def test_a_wrong_field_or_a_broken_form_is_our_one_line_400(client):
    http, _ = client
    wrong = http.post("/classify", files={"picture": ("a.png", _png(30), "image/png")})
    assert wrong.status_code == 400 and wrong.json() == {
        "error": "expected a multipart form with the image file in the field 'image'"
    }
    broken = http.post("/classify", content=b"--x\r\nnot a form", headers={"content-type": "multipart/form-data"})
    assert broken.status_code == 400 and "error" in broken.json()
    assert http.get("/health").status_code == 200  # and it serves on


def test_the_page_escapes_names_and_inserts_class_names_as_text(model_dir, tmp_path):
    from diffclass.hub import ModelInfo

    info = ModelInfo.load(model_dir)
    info.class_names = ["<b>bold</b>", *info.class_names[1:]]
    info.save(model_dir)
    http = TestClient(create_app(diffclass.load(model_dir), "exhaustive(n=2)", "<script>x</script>"))
    page = http.get("/").text
    assert "<script>x</script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page
    assert "<b>bold</b>" not in page and "&lt;b&gt;bold&lt;/b&gt;" in page and "10 classes" in page
    assert "innerHTML" not in page and "textContent = t.name" in page  # class names from the API as text
    assert "8x8 grey" in page and "classifying..." in page  # what the model expects, and a busy sign


def test_a_body_past_the_limit_is_refused_as_it_arrives_not_spooled(client, monkeypatch):
    import diffclass.data.images as images

    http, _ = client
    decoded = []
    monkeypatch.setattr(images, "image_from_bytes", lambda *a: decoded.append(a))
    big = b"\0" * (11 * 2**20)
    declared = http.post("/classify", files={"image": ("big.png", big, "image/png")})
    assert declared.status_code == 413 and declared.json() == {"error": "the request is larger than 10 MiB"}

    def chunks():  # a valid form without a Content-Length: the middleware counts what arrives
        yield b'--x\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'
        for _ in range(12):
            yield b"\0" * 2**20
        yield b"\r\n--x--\r\n"

    chunked = http.post("/classify", content=chunks(), headers={"content-type": "multipart/form-data; boundary=x"})
    assert chunked.status_code == 413 and not decoded
    assert http.get("/health").status_code == 200


def test_health_answers_while_an_upload_is_being_decoded(client, monkeypatch):
    import threading
    import time

    import diffclass.data.images as images

    http, _ = client
    original, started = images.image_from_bytes, threading.Event()

    def slow(*args):
        started.set()
        time.sleep(1.5)
        return original(*args)

    monkeypatch.setattr(images, "image_from_bytes", slow)
    with ThreadPoolExecutor(1) as pool:
        upload = pool.submit(http.post, "/classify", files={"image": ("a.png", _png(30), "image/png")})
        assert started.wait(5)
        began = time.perf_counter()
        assert http.get("/health").status_code == 200
        assert time.perf_counter() - began < 1.0  # not behind the decode
        assert upload.result().status_code == 200
