"""songshard report in a real browser: headless Chromium driven through chromedriver (selenium).

Checks that pages load from file:// with no console errors, that the samples
table filters and sorts, and that clicking a section moves the player there.
Needs Debian's ``chromium`` and ``chromium-driver`` and PyPI's ``selenium``;
skipped, saying which is missing, without them.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import tempfile

import pytest

from pipeline.report import build_report, synthetic

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
HAVE_SELENIUM = importlib.util.find_spec("selenium") is not None

pytestmark = [
    pytest.mark.skipif(not CHROMIUM, reason="chromium is not installed (apt-get install -y chromium chromium-driver)"),
    pytest.mark.skipif(not CHROMEDRIVER, reason="chromedriver is not installed (apt-get install -y chromium-driver)"),
    pytest.mark.skipif(not HAVE_SELENIUM, reason="selenium is not installed (pip install selenium)"),
]

N_ROWS = 10
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--autoplay-policy=no-user-gesture-required", "--window-size=1300,1000")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("out"))
    songs = synthetic.write_out(out, N_ROWS, duration=6.0)
    build_report(out, sample=3, progress=False)
    return os.path.join(out, "report"), songs


@pytest.fixture(scope="module")
def driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="songshard-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    drv.set_page_load_timeout(30)
    yield drv
    drv.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _open(driver, path: str) -> list:
    """Load a report file; returns the console entries at SEVERE level (errors) it logged."""
    driver.get_log("browser")  # drop what earlier pages left
    driver.get("file://" + path)
    driver.execute_script("return document.readyState")
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def _wait(driver, script: str, timeout: float = 10.0):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(lambda d: d.execute_script(script))


def test_pages_load_without_console_errors(driver, report):
    root, _ = report
    pages = [os.path.join(root, "index.html"), os.path.join(root, "table.html")]
    pages += sorted(glob.glob(os.path.join(root, "samples", "*.html")))
    assert len(pages) == 5
    for page in pages:
        assert _open(driver, page) == [], page
    _open(driver, os.path.join(root, "index.html"))
    assert driver.execute_script("return document.querySelectorAll('figure.chart svg').length") == 19


def test_table_filters_and_sorts(driver, report):
    from selenium.webdriver.common.by import By

    root, songs = report
    assert _open(driver, os.path.join(root, "table.html")) == []
    count = "return +document.getElementById('rowcount').getAttribute('data-count')"
    assert _wait(driver, count) == N_ROWS
    assert len(driver.find_elements(By.CSS_SELECTOR, "#samples tbody tr")) == N_ROWS
    box = driver.find_element(By.ID, "filter")
    box.send_keys("genre:rock")
    rock = sum(s.labels["tags"]["genre"] == "rock" for s in songs)
    assert 0 < rock < N_ROWS
    _wait(driver, f"return +document.getElementById('rowcount').getAttribute('data-count') === {rock}")
    assert len(driver.find_elements(By.CSS_SELECTOR, "#samples tbody tr")) == rock
    box.send_keys(" split=valid")
    both = sum(s.labels["tags"]["genre"] == "rock" and s.split == "valid" for s in songs)
    _wait(driver, f"return +document.getElementById('rowcount').getAttribute('data-count') === {both}")
    box.clear()
    box.send_keys("has:page")
    _wait(driver, "return +document.getElementById('rowcount').getAttribute('data-count') === 3")
    box.clear()
    _wait(driver, f"return +document.getElementById('rowcount').getAttribute('data-count') === {N_ROWS}")
    headers = driver.find_elements(By.CSS_SELECTOR, "#samples th")
    title_col = [h.text for h in headers].index("title")
    headers[title_col].click()
    headers[title_col].click()  # second click: descending
    cells = driver.find_elements(By.CSS_SELECTOR, f"#samples tbody tr td:nth-child({title_col + 1})")
    assert [c.text for c in cells] == sorted((s.title for s in songs), reverse=True)


def test_section_click_seeks_the_player(driver, report):
    from selenium.webdriver.common.by import By

    root, _ = report
    page = sorted(glob.glob(os.path.join(root, "samples", "*.html")))[0]
    assert _open(driver, page) == []
    # The FLAC must really load (metadata read, duration known) for the seek to mean anything.
    duration = _wait(driver, "var a = document.querySelector('audio[data-track=mix]');"
                             "return a.readyState >= 1 ? a.duration : null")
    assert duration == pytest.approx(6.0, abs=0.05)
    sections = driver.find_elements(By.CSS_SELECTOR, ".seg[data-seek]")
    assert len(sections) >= 4
    for seg in (sections[2], sections[1]):
        start = float(seg.get_attribute("data-seek"))
        assert start > 0
        seg.click()
        now = driver.execute_script("return document.querySelector('audio[data-track=mix]').currentTime")
        assert abs(now - start) < 0.1, (now, start)
        stems = driver.execute_script("return Array.from(document.querySelectorAll('audio')).map(a => a.currentTime)")
        assert all(abs(t - start) < 0.1 for t in stems)
    word = driver.find_elements(By.CSS_SELECTOR, ".tword[data-seek]")[5]
    word.click()
    now = driver.execute_script("return document.querySelector('audio[data-track=mix]').currentTime")
    assert abs(now - float(word.get_attribute("data-seek"))) < 0.1
