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
def page_url():
    import uvicorn

    import diffclass
    from diffclass.serve import create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(diffclass.load("digits"), None, "digits")
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
    pixels = ((digits.images[0, 0] + 1) * 127.5).round().byte().numpy()
    path = tmp_path / "digit.png"
    Image.fromarray(pixels, mode="L").resize((64, 64), Image.NEAREST).save(path)
    expected = diffclass.load("digits").classify([path])[0]

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
        driver.find_element(By.ID, "file").send_keys(str(path))
        WebDriverWait(driver, 120).until(lambda d: "prediction:" in d.find_element(By.ID, "summary").text)
        shown = re.match(r"prediction: (.+?) \(", driver.find_element(By.ID, "summary").text).group(1)
        rows = driver.find_elements(By.CSS_SELECTOR, "#top tr")
        WebDriverWait(driver, 180).until(
            lambda d: d.execute_script(
                "const f = document.getElementById('figure'); return f.complete && f.naturalWidth"
            )
        )  # the explain figure arrived too
        screenshot = tmp_path / "page.png"
        driver.save_screenshot(str(screenshot))
    finally:
        driver.quit()
    assert shown == expected.class_name and len(rows) == 5
    assert screenshot.stat().st_size > 10_000
    if os.environ.get("DIFFCLASS_SCREENSHOT"):
        shutil.copy(screenshot, os.environ["DIFFCLASS_SCREENSHOT"])
