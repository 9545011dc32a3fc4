"""The report in a real browser: headless Chromium through selenium (skips without one).

Checks what a reader sees: every image loaded, one row per class in the per-class tables,
no console errors. A copy of the page with one broken image shows the checks can fail.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
PER_CLASS_TABLES = ("per-class-naps", "per-class-verification")


def _browser_paths() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("no Chromium and chromedriver on PATH (Debian: apt-get install chromium chromium-driver)")
    return chromium, driver


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (test extra)")
    chromium, driver_path = _browser_paths()
    profile = tempfile.mkdtemp(prefix="napkit-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    from selenium.webdriver.chrome.service import Service

    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _look(driver, page: Path) -> dict:
    """Open the page; return broken images, rows of the per-class tables and console errors."""
    driver.get_log("browser")  # drop what earlier pages logged
    driver.get(page.resolve().as_uri())
    broken = driver.execute_script(
        "return Array.from(document.images)"
        ".filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src'));"
    )
    n_images = driver.execute_script("return document.images.length;")
    rows = {
        t: driver.execute_script(f"return document.querySelectorAll('#{t} tbody tr').length;")
        for t in PER_CLASS_TABLES
    }
    errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    return {"broken": broken, "images": n_images, "rows": rows, "errors": errors}


@pytest.fixture
def report(built_report):
    return built_report[0]


def test_report_renders_in_chromium(browser, report, tiny):
    seen = _look(browser, report / "index.html")
    assert seen["images"] >= 6
    assert seen["broken"] == []
    assert seen["rows"] == {t: len(tiny.naps.labels) for t in PER_CLASS_TABLES}
    assert seen["errors"] == []


def test_the_checks_catch_a_broken_page(browser, report, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(report, bad)
    page = bad / "index.html"
    text = page.read_text(encoding="utf-8").replace("</body>", "<img src='missing.png' alt='gone'></body>")
    page.write_text(text, encoding="utf-8")
    seen = _look(browser, page)
    assert seen["broken"] == ["missing.png"]
    assert any("missing.png" in e for e in seen["errors"])
