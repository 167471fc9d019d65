"""The HTML report in a real browser: headless Chromium from Debian (see tests/browser.py), the
report opened from disk (file://), no server, no network.

Marked `browser` (deselected by default; `.ci/run` installs chromium + chromium-driver with
scripts/install-browser.sh and runs `pytest -m browser`). Screenshots go to tmp_path, or to
$DART_HUB_SCREENSHOTS when set (to look at them).
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import pytest

from dart_hub.report.dataset import dataset_report
from dart_hub.report.render import write_dataset_report
from tests.browser import binaries, chromium
from tests.test_publish_folder import adapted_examples
from tests.test_report import injected_folder

pytestmark = pytest.mark.browser
WIDTH, HEIGHT = 1280, 900


@pytest.fixture(scope="module")
def adapted():
    return adapted_examples()


@pytest.fixture
def report(adapted, tmp_path):
    if not all(binaries()):
        pytest.fail("chromium and chromedriver are needed: bash scripts/install-browser.sh (Debian: apt-get install chromium chromium-driver)")
    folder = injected_folder(adapted, tmp_path)  # problem 0 carries <script> in every text field
    index = write_dataset_report(folder)
    return folder, index, dataset_report(folder)


@pytest.fixture
def browser():
    with chromium(WIDTH, HEIGHT) as driver:
        yield driver


def visible_rows(driver) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#problem-list tbody tr')).filter(r => !r.hidden).map(r => r.dataset.id)"
    )


def not_injected(driver) -> None:
    assert driver.execute_script("return typeof window.__dart_hub_injected") == "undefined"
    assert driver.title != "pwned"


def test_overview_filter_sort_and_links(report, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    folder, index, data = report
    overview = data["overview"]
    browser.get(index.as_uri())
    assert browser.execute_script("return document.documentElement.dataset.ready") == "1"  # our script ran under the CSP
    not_injected(browser)
    assert browser.find_element(By.CSS_SELECTOR, "[data-role=count-problems]").text == "5"
    assert browser.find_element(By.CSS_SELECTOR, "[data-role=count-kept]").text == str(overview["counts"]["kept"])
    curve = browser.find_element(By.CSS_SELECTOR, "svg[data-role=mean-curve]")
    assert len(curve.find_elements(By.CSS_SELECTOR, "[data-role=mean-point]")) == len(overview["curve"])
    assert curve.size["width"] > 300 and curve.size["height"] > 150  # laid out, not collapsed
    histogram = browser.find_element(By.CSS_SELECTOR, "svg[data-role=cut-histogram]")
    assert len(histogram.find_elements(By.CSS_SELECTOR, "[data-role=table6-mark]")) == 6
    assert sum(int(b.get_attribute("data-count")) for b in histogram.find_elements(By.CSS_SELECTOR, "[data-role=cut-bar]")) == overview["cut_positions"]["n"]
    first_row = browser.find_element(By.CSS_SELECTOR, "#problem-list tbody tr[data-i='0'] td.q")
    assert "<script>window.__dart_hub_injected" in first_row.text  # shown as text

    assert visible_rows(browser) == list("abcde")
    Select(browser.find_element(By.ID, "filter-outcome")).select_by_value("discarded")
    assert visible_rows(browser) == ["b"] and browser.find_element(By.ID, "shown-count").text == "1"
    assert "outcome=discarded" in browser.current_url  # the filter is in the link
    Select(browser.find_element(By.ID, "filter-outcome")).select_by_value("")
    Select(browser.find_element(By.ID, "filter-reason")).select_by_value("gap")
    assert sorted(visible_rows(browser)) == ["a", "b", "d"]
    Select(browser.find_element(By.ID, "filter-reason")).select_by_value("")
    search = browser.find_element(By.ID, "search")
    search.send_keys("problem d:")
    assert visible_rows(browser) == ["d"]
    search.clear()
    search.send_keys(" ")  # an input event with an empty query
    Select(browser.find_element(By.ID, "sort")).select_by_value("cut")
    cuts = {p["id"]: p["relative_cut"] for p in data["problems"]}
    expected = sorted(cuts, key=lambda i: (cuts[i] is None, cuts[i] or 0.0, i))
    assert visible_rows(browser) == expected

    # a shared link with a filter, and one to a problem
    browser.get(index.as_uri() + "#outcome=kept&reason=gap")
    assert sorted(visible_rows(browser)) == ["a", "d"]
    browser.get(index.as_uri() + "#problem=d")
    assert browser.current_url.endswith("/problems/00003-d.html")
    assert "Problem 3" in browser.find_element(By.TAG_NAME, "h1").text


def test_problem_view(report, browser, tmp_path):
    from selenium.webdriver.common.by import By

    _, index, data = report
    problem = data["problems"][0]
    browser.get((index.parent / problem["file"]).as_uri())
    not_injected(browser)
    question = browser.find_element(By.CSS_SELECTOR, "[data-role=question]")
    assert question.text.endswith('<script>window.__dart_hub_injected = 1; document.title = "pwned"</script>')

    curve = browser.find_element(By.CSS_SELECTOR, "svg[data-role=problem-curve]")
    points = curve.find_elements(By.CSS_SELECTOR, "[data-role=score-point]")
    assert [int(p.get_attribute("data-step")) for p in points] == problem["probed_steps"] == [0, 1, 2, 3]
    assert [float(p.get_attribute("data-score")) for p in points] == [problem["scores"][t] for t in problem["probed_steps"]]
    gap = curve.find_element(By.CSS_SELECTOR, "[data-role=gap-marker]")
    assert int(gap.get_attribute("data-step")) == problem["gap"] == 2
    at_gap = next(p for p in points if p.get_attribute("data-step") == "2")
    assert gap.get_attribute("x1") == at_gap.get_attribute("cx")  # drawn at the gap step's point
    peak = curve.find_element(By.CSS_SELECTOR, "[data-role=peak-marker]")
    assert int(peak.get_attribute("data-step")) == problem["peak"]
    assert int(curve.find_element(By.CSS_SELECTOR, "[data-role=reveal-zone]").get_attribute("data-step")) == problem["reveal_step"]

    steps = browser.find_elements(By.CSS_SELECTOR, "[data-role=expert-step]")
    assert [s.get_attribute("data-state") for s in steps] == ["kept", "kept", "cut", "cut", "cut"]
    kept, cut = steps[0].find_element(By.CSS_SELECTOR, ".text"), steps[2].find_element(By.CSS_SELECTOR, ".text")
    assert kept.value_of_css_property("background-color") != cut.value_of_css_property("background-color")
    assert "line-through" in cut.value_of_css_property("text-decoration")
    student = browser.find_element(By.CSS_SELECTOR, "[data-role=student-part]")
    assert student.text.startswith("STUDENT") and "Anchor: part 2" in student.text
    verdicts = [c.get_attribute("data-verdict") for c in browser.find_elements(By.CSS_SELECTOR, "[data-role=candidate]")]
    assert verdicts == ["chosen", "wrong answer"]
    answers = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "[data-role=candidate-answer]")]
    assert answers[0] == "42" and answers[1].startswith("<script>")

    shots = Path(os.environ.get("DART_HUB_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    png = shots / "report-problem.png"
    assert browser.save_screenshot(str(png))
    width, height, colours, share_white = inspect_png(png.read_bytes())
    assert (width, height) == (WIDTH, HEIGHT) or (width, height) == tuple(browser.execute_script("return [window.innerWidth, window.innerHeight]"))
    assert colours > 20 and share_white < 0.95  # not blank: text, shading and the chart


def test_index_screenshot(report, browser, tmp_path):
    _, index, _ = report
    browser.get(index.as_uri() + "#curves")
    assert browser.execute_script("return window.scrollY") > 0 and browser.current_url.endswith("#curves")  # section links work
    shots = Path(os.environ.get("DART_HUB_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    png = shots / "report-index.png"
    assert browser.save_screenshot(str(png))
    width, _, colours, share_white = inspect_png(png.read_bytes())
    assert width == browser.execute_script("return window.innerWidth") and colours > 20 and share_white < 0.95


def inspect_png(data: bytes) -> tuple[int, int, int, float]:
    """(width, height, distinct colours, share of white pixels) of an 8-bit RGB(A) PNG, decoded
    here (zlib + PNG filters) so the check needs no imaging library."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, chunks = 8, {}
    idat = b""
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        body = data[position + 8 : position + 8 + length]
        if kind == b"IDAT":
            idat += body
        else:
            chunks.setdefault(kind, body)
        position += 12 + length
    width, height, depth, colour_type = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert depth == 8 and colour_type in (2, 6)
    channels = 3 if colour_type == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * channels
    previous = bytearray(stride)
    colours: set[bytes] = set()
    white = 0
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + ((left + up) >> 1)) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        if row % 4 == 0:  # a sample of the rows is enough to count colours
            for i in range(0, stride, channels * 2):
                pixel = bytes(line[i : i + 3])
                colours.add(pixel)
                white += pixel == b"\xff\xff\xff"
        previous = line
    sampled = ((height + 3) // 4) * ((width + 1) // 2)
    return width, height, len(colours), white / sampled
