"""A local web page and JSON API that classify uploaded images (FastAPI; no `from __future__ import annotations`
here: FastAPI reads the route signatures at run time).

One worker thread owns the model. Requests that arrive while it is busy are queued and classified together in its
next call, so their images run in lockstep through the engine and share forward passes; a request that finds the
worker idle starts at once (no waiting for company). Bad uploads get HTTP 400 with a one-line JSON error, and the
server keeps serving.
"""

import io
import json
import queue
import threading
from concurrent.futures import Future

from diffclass.errors import DiffclassError

MAX_UPLOAD = 10 * 1024 * 1024  # bytes
FORM_OVERHEAD = 64 * 1024  # a multipart form's boundaries and headers around the file

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>diffclass</title>
<style>body{font-family:sans-serif;max-width:44em;margin:2em auto}td{padding:.2em .8em}#err{color:#b00}
#busy{color:#555}</style>
</head><body>
<h1>diffclass</h1>
<p>Model <b>MODEL</b>, strategy <b>STRATEGY</b>: EXPECTS. Pick or drop an image.</p>
<input type="file" id="file" accept="image/*"> <span id="busy"></span>
<p id="err"></p><p id="summary"></p><p id="converted"></p><table id="top"></table>
<img id="figure" style="max-width:100%">
<script>
const file = document.getElementById("file");
const show = (id, text) => { document.getElementById(id).textContent = text; };
async function send(f) {
  for (const id of ["err", "summary", "converted", "top"]) show(id, "");
  document.getElementById("figure").removeAttribute("src");
  show("busy", "classifying..."); file.disabled = true;
  try {
    const form = new FormData(); form.append("image", f);
    const r = await fetch("/classify", {method: "POST", body: form}); const data = await r.json();
    if (!r.ok) { show("err", data.error); return; }
    show("summary", `prediction: ${data.prediction} (${data.nfe} network calls, strategy ${data.strategy})`);
    if (data.converted.length) show("converted", "converted: " + data.converted.join("; "));
    const table = document.getElementById("top");
    for (const t of data.top) {
      const row = table.insertRow();
      row.insertCell().textContent = t.name;
      row.insertCell().textContent = `${(100 * t.probability).toFixed(1)}%`;
    }
    show("busy", "explaining...");
    const e = await fetch("/explain", {method: "POST", body: form});
    if (e.ok) document.getElementById("figure").src = URL.createObjectURL(await e.blob());
  } catch (error) {
    show("err", "the server did not answer: " + error);
  } finally {
    show("busy", ""); file.disabled = false;
  }
}
file.onchange = () => file.files.length && send(file.files[0]);
document.body.ondragover = e => e.preventDefault();
document.body.ondrop = e => { e.preventDefault(); send(e.dataTransfer.files[0]); };
</script></body></html>
"""


def page_html(model_name: str, strategy: str, classifier) -> str:
    """The page, with the model, its strategy and what it expects, escaped (a folder's name is not HTML)."""
    from html import escape

    info, names = classifier.info, classifier.class_names
    shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    colour = "colour" if info.channels == 3 else "grey"
    expects = f"{len(names)} classes ({shown}); images are made {info.image_size}x{info.image_size} {colour}"
    return (
        PAGE.replace("MODEL", escape(model_name or "model"))
        .replace("STRATEGY", escape(strategy))
        .replace("EXPECTS", escape(expects))
    )


class Batcher:
    """The one thread that runs the model: the requests waiting when it is free are classified in one call."""

    def __init__(self, classifier, strategy: str | None, top_k: int = 5):
        self.classifier, self.top_k = classifier, top_k
        self.strategy = classifier.strategy(strategy)
        self.requests: queue.Queue = queue.Queue()
        self.batches: list[int] = []  # images per classify call, for the load check
        threading.Thread(target=self._work, daemon=True).start()

    def classify(self, tensor, image_id: str) -> dict:
        future: Future = Future()
        self.requests.put((tensor, image_id, future))
        return future.result()

    def _work(self) -> None:
        import torch

        while True:
            batch = [self.requests.get()]
            try:
                while len(batch) < self.classifier.images_per_pass():
                    batch.append(self.requests.get_nowait())
            except queue.Empty:
                pass
            self.batches.append(len(batch))
            try:
                decisions = self.classifier.classify(
                    torch.stack([b[0] for b in batch]), self.strategy, [b[1] for b in batch]
                )
            except Exception as exc:  # noqa: BLE001  (handed to every waiting request, the worker lives on)
                for _, _, future in batch:
                    future.set_exception(exc)
                continue
            names = self.classifier.class_names
            for (_, image_id, future), d in zip(batch, decisions):
                top = [dict(label=c, name=names[c], probability=round(p, 4)) for c, p in d.top(self.top_k)]
                future.set_result(
                    dict(
                        id=image_id,
                        prediction=d.class_name,
                        label=d.label,
                        top=top,
                        nfe=d.nfe,
                        strategy=self.strategy.name,
                    )
                )


SERVER_PACKAGES = ("fastapi", "uvicorn", "multipart")


class BodyLimit:
    """An ASGI middleware that refuses a request body past `limit` bytes as it arrives (by its Content-Length, or
    by counting a chunked one), before the form parser spools any of it to disk: reading stops at the limit and
    the answer is a one-line 413, whatever the route made of the cut-off body."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers", [])).get(b"content-length", b"0")
        if not length.isdigit() or int(length) > self.limit:
            return await self.refuse(send)
        seen, over, answered = 0, False, False

        async def counted():
            nonlocal seen, over
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                over = True
                return {"type": "http.disconnect"}  # the parser stops here: nothing more is read or spooled
            return message

        async def answer(message):
            nonlocal answered
            if not over:
                await send(message)
            elif not answered:
                answered = True
                await self.refuse(send)

        try:
            await self.app(scope, counted, answer)
        except Exception:
            if not over:
                raise
        if over and not answered:
            await self.refuse(send)

    async def refuse(self, send) -> None:
        body = json.dumps({"error": f"the request is larger than {MAX_UPLOAD // 2**20} MiB"}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def require_server() -> None:
    """The web server is an extra (a user who only classifies does not need it): refused in one line without it."""
    from importlib.util import find_spec

    missing = [name for name in SERVER_PACKAGES if find_spec(name) is None]
    if missing:
        raise DiffclassError(f'serving needs {", ".join(missing)}: pip install "diffclass[serve]"')


def create_app(classifier, strategy: str | None = None, model_name: str = ""):
    """The FastAPI app: GET / (the page), POST /classify (image -> JSON), POST /explain (image -> PNG, or JSON with
    ?format=json), GET /health."""
    require_server()
    from fastapi import FastAPI, File, UploadFile
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from diffclass.data import images as image_files
    from diffclass.data.base import dataset_background

    app = FastAPI(title="diffclass")
    app.add_middleware(BodyLimit, limit=MAX_UPLOAD + FORM_OVERHEAD)
    batcher = Batcher(classifier, strategy)
    app.state.batcher = batcher
    lock = threading.Lock()  # explain runs the model outside the batcher: one at a time

    def bad(message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=400)

    async def read(image: UploadFile):
        data = await image.read(MAX_UPLOAD + 1)
        if not data:
            raise DiffclassError("the upload is empty")
        if len(data) > MAX_UPLOAD:
            raise DiffclassError(f"the upload is larger than {MAX_UPLOAD // 2**20} MiB")
        info = classifier.info
        name = image.filename or "upload"
        background = dataset_background(info.dataset)
        # decoding is CPU work: in a worker thread, so /health and other uploads are answered meanwhile
        decode = image_files.image_from_bytes
        return await run_in_threadpool(decode, data, name, info.image_size, info.channels, background)

    @app.exception_handler(RequestValidationError)
    async def malformed(request, exc):  # a wrong field or a broken form: our one line, not FastAPI's 422 JSON
        return bad("expected a multipart form with the image file in the field 'image'")

    @app.exception_handler(StarletteHTTPException)
    async def refused(request, exc):  # e.g. a form without its boundary, an unknown route: the same one-line shape
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return page_html(model_name, batcher.strategy.name, classifier)

    @app.get("/health")
    def health() -> dict:
        return dict(status="ok", model=model_name, strategy=batcher.strategy.name, classes=len(classifier.class_names))

    @app.post("/classify")
    async def classify(image: UploadFile = File(...)):
        try:
            loaded = await read(image)
        except DiffclassError as exc:
            return bad(str(exc))
        import asyncio

        result = await asyncio.get_running_loop().run_in_executor(
            None, batcher.classify, loaded.tensor, loaded.image_id
        )
        return dict(result, converted=loaded.notes)

    @app.post("/explain")
    async def explain(image: UploadFile = File(...), format: str = "png"):
        import asyncio

        if format not in ("png", "json"):
            return bad(f"format must be png or json, got {format!r}")
        try:
            loaded = await read(image)
        except DiffclassError as exc:
            return bad(str(exc))
        try:  # off the event loop, so /health and /classify keep answering while a figure is made
            return await asyncio.get_running_loop().run_in_executor(None, explained, loaded, format)
        except DiffclassError as exc:
            return bad(str(exc))

    def explained(loaded, format: str):
        from diffclass.explain import explain as run_explain
        from diffclass.explain import explain_plot

        with lock:
            result = run_explain(classifier, loaded.tensor, batcher.strategy, loaded.image_id)
        if format == "json":
            return JSONResponse(result.to_json())
        buffer = io.BytesIO()
        explain_plot(result, buffer)
        return Response(buffer.getvalue(), media_type="image/png")

    return app


def serve(classifier, strategy: str | None, host: str, port: int, model_name: str = "") -> None:
    import uvicorn

    uvicorn.run(create_app(classifier, strategy, model_name), host=host, port=port, log_level="warning")
