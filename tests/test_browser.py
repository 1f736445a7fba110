"""The served page in a real browser: headless Chromium loads it, uploads a digit, and shows the prediction
`classify` gives for the same file. Skipped, with the reason, where Chromium or its driver is not installed
(Debian: `apt-get install chromium chromium-driver`; `.ci/run` tries to install them).

    DIFFCLASS_SCREENSHOT=docs/serve_page.png python -m pytest -q tests/test_browser.py   # keeps the screenshot
"""

import os
import re
import shutil
import socket
import threading
import time

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="headless Chromium and chromedriver are not installed (apt-get install chromium chromium-driver)",
)


@pytest.fixture
def page_url(tmp_path):
    """The digits model served, with class 0 renamed `<b>zero</b>`: a name that must show as text, not markup."""
    import uvicorn

    import diffclass
    from diffclass.hub import ModelInfo
    from diffclass.serve import create_app

    shutil.copytree(diffclass.hub.resolve_model("digits").folder, tmp_path / "digits")
    info = ModelInfo.load(tmp_path / "digits")
    info.class_names = ["<b>zero</b>", *info.class_names[1:]]
    info.save(tmp_path / "digits")

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(diffclass.load(tmp_path / "digits"), "exhaustive(n=8)", "digits")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the server did not start"
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(timeout=10)


def test_the_page_shows_the_prediction_classify_gives_for_an_uploaded_digit(page_url, tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is a test dependency")
    from PIL import Image
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    import diffclass
    from diffclass.data import load_dataset

    digits = load_dataset("digits", "test")
    zero = next(i for i, y in enumerate(digits.labels.tolist()) if y == 0)
    pixels = ((digits.images[zero, 0] + 1) * 127.5).round().byte().numpy()
    path = tmp_path / "digit.png"
    Image.fromarray(pixels, mode="L").resize((64, 64), Image.NEAREST).save(path)
    expected = diffclass.load(tmp_path / "digits").classify([path], "exhaustive(n=8)")[0]
    broken = tmp_path / "broken.png"
    broken.write_text("not a picture")

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1000,1100",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        driver.get(page_url)
        assert "10 classes (<b>zero</b>, 1, 2" in driver.find_element(By.TAG_NAME, "p").text  # as text
        driver.execute_script(  # every state the busy sign goes through
            "window.seen = []; new MutationObserver(() => seen.push(document.getElementById('busy').textContent))"
            ".observe(document.getElementById('busy'), {childList: true, characterData: true, subtree: true});"
        )
        driver.find_element(By.ID, "file").send_keys(str(path))
        WebDriverWait(driver, 120).until(lambda d: "prediction:" in d.find_element(By.ID, "summary").text)
        shown = re.match(r"prediction: (.+?) \(", driver.find_element(By.ID, "summary").text).group(1)
        rows = driver.find_elements(By.CSS_SELECTOR, "#top tr")
        names = [row.find_elements(By.TAG_NAME, "td")[0].text for row in rows]
        assert "<b>zero</b>" in names and not driver.find_elements(By.CSS_SELECTOR, "#top b")  # text, not markup
        WebDriverWait(driver, 180).until(
            lambda d: d.execute_script(
                "const f = document.getElementById('figure'); return f.complete && f.naturalWidth"
            )
        )  # the explain figure arrived too
        WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "busy").text == "")
        assert "classifying..." in driver.execute_script("return seen")
        screenshot = tmp_path / "page.png"
        driver.save_screenshot(str(screenshot))
        driver.find_element(By.ID, "file").send_keys(str(broken))  # a bad upload after a good one
        WebDriverWait(driver, 60).until(lambda d: d.find_element(By.ID, "err").text)
        error = driver.find_element(By.ID, "err").text
        left = (
            driver.find_element(By.ID, "summary").text,
            driver.find_elements(By.CSS_SELECTOR, "#top tr"),
            driver.execute_script("return document.getElementById('figure').getAttribute('src')"),
        )
    finally:
        driver.quit()
    assert shown == expected.class_name and len(rows) == 5
    assert "broken.png: not an image" in error and left == ("", [], None)  # the earlier answer is cleared
    assert screenshot.stat().st_size > 10_000
    if os.environ.get("DIFFCLASS_SCREENSHOT"):
        shutil.copy(screenshot, os.environ["DIFFCLASS_SCREENSHOT"])
