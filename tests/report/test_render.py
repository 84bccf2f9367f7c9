"""``report.html`` as a reader sees it: rendered in headless Chromium at 1400 px.

A small sweep's report and a plain run's report are built from synthetic run folders (no
training), a copy of each gets a script that opens every ``<details>``, waits for every image and
writes what it measured into ``<pre id="bench-check">``; ``chromium --dump-dom`` prints the page
and the test reads that back. The checks: every image loads, the page does not scroll sideways,
and no table cell holds a number with more than 6 significant digits (the rule is
:func:`significant_digits`, applied here in Python to the cell texts the page returns).

The browser tests are ``slow`` and skipped where no Chromium/Chrome is installed; ``.ci/run``
installs Debian's ``chromium`` so that CI runs them.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image
from run_folders import make_run, make_sweep

from bench.report.build import build_report

WIDTH = 1400  # px, the window the report must fit without scrolling sideways
MAX_DIGITS = 6
BROWSER = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome",
                                              "google-chrome-stable")) if p), None)
NO_BROWSER = "no chromium/chromium-browser/google-chrome on PATH (.ci/run installs Debian's chromium)"
needs_browser = pytest.mark.skipif(BROWSER is None, reason=NO_BROWSER)

# -- significant digits ------------------------------------------------------------------------
# A number is a token that parses as a float: digits with an optional fraction (thousands
# separators "1,234,567" allowed) and an optional exponent, standing alone. It must not touch a
# letter, digit, "_" or "." on either side (so "cifar10", "1500steps", "abc123", "3.11.4" and
# hex digests are not numbers), nor a ":" or "-"/"/" joining it to more word characters (times
# "21:31", dates "2026-12-03", run ids "00001-cifar10-1500steps", "a/b").
NUMBER = re.compile(r"""
    (?<![\w.])(?<![\w][:/-])            # not glued to a word on the left
    [-+\u2212]?
    (?P<mantissa>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d*)?|\.\d+)
    (?:[eE][-+\u2212]?\d+)?
    (?![\w]|\.\d|[:/-]\w)               # nor on the right
    """, re.VERBOSE)


def significant_digits(token: str) -> int:
    """The significant digits of a number's written form: leading zeros and the exponent do not
    count; trailing zeros count after a decimal point ("100.0": 4) and not in an integer ("1500": 2)."""
    mantissa = NUMBER.fullmatch(token.strip())["mantissa"].replace(",", "")
    if "." in mantissa:
        return len(mantissa.replace(".", "").lstrip("0")) or 1
    return len(mantissa.lstrip("0").rstrip("0")) or 1


def long_numbers(text: str, limit: int = MAX_DIGITS) -> list[str]:
    """The numbers in ``text`` written with more than ``limit`` significant digits."""
    return [m.group(0) for m in NUMBER.finditer(text) if significant_digits(m.group(0)) > limit]


@pytest.mark.parametrize("text, digits", [
    ("0.5581343000015276", 16), ("1.2218785155657633e-05", 17), ("123456789", 9),
    ("6.447036682716463e-05", 16),
    ("61.5", 3), ("0.02", 1), ("100.0", 4), ("1,000", 1), ("1,234,567", 7), ("1500", 2), ("0", 1), ("0.0", 1),
    ("-3.25", 3), ("1e-05", 1), ("140.8", 4), (".5", 1), ("12.", 2)])
def test_significant_digits(text, digits):
    assert significant_digits(text) == digits


@pytest.mark.parametrize("text, found", [
    ("0.5581343000015276", ["0.5581343000015276"]),
    ("gan (beta1=0.573265518589, lr=6.447036682716463e-05)", ["0.573265518589", "6.447036682716463e-05"]),
    ("61.5 [57.47, 65.84]", []), ("1.2218785155657633e-05", ["1.2218785155657633e-05"]),
    ("123456789 images", ["123456789"]), ("1,234,567", ["1,234,567"]), ("1,000,000", []),
    ("80 (CI n/a: 1 seed)", []), ("0.1234567%", ["0.1234567"]), ("[0.12345678, 2]", ["0.12345678"]),
    # not numbers: run ids, dates, times, versions, digests, names with digits
    ("00001-cifar10-1500steps-sweep", []), ("2026-12-03 21:31 UTC", []), ("12345678:12345678", []),
    ("3.11.4", []), ("1.2.3456789", []), ("deadbeef1234567", []), ("1234567abcdef", []),
    ("sha256:12345678901", []),
    ("gan-s1234567", []), ("run_1234567", []), ("a/1234567", []), ("cifar10/1234567/x", [])])
def test_long_numbers_finds_numbers_not_identifiers(text, found):
    assert long_numbers(text) == found


# -- the browser -------------------------------------------------------------------------------
CHECK = """<script>
// Runs at "load" (every eager image has loaded or failed by then) and writes its result at once,
// so that --dump-dom sees it; it only waits for images that were lazy or hidden in <details>.
window.addEventListener("load", () => {
  const out = document.createElement("pre");
  out.id = "bench-check";
  const finish = result => { out.textContent = JSON.stringify(result); document.body.appendChild(out); };
  const measure = () => {
    const images = [...document.images];
    const headings = [...document.querySelectorAll("h1, h2, h3, h4")];
    const section = el => {
      let last = "";
      for (const h of headings) if (h.compareDocumentPosition(el) & Node.DOCUMENT_POSITION_FOLLOWING)
        last = h.textContent.trim();
      return last;
    };
    const snippet = el => el.textContent.replace(/\\s+/g, " ").trim().slice(0, 100);
    const root = document.documentElement, width = root.clientWidth;
    const over = el => {
      const r = el.getBoundingClientRect();
      return r.width > 0 && (r.right > width + 0.5 || r.left < -0.5);
    };
    const clipped = el => {
      for (let a = el.parentElement; a && a !== document.body; a = a.parentElement)
        if (getComputedStyle(a).overflowX !== "visible") return true;
      return false;
    };
    const wide = [...document.body.querySelectorAll("*")].filter(el =>
      over(el) && !clipped(el) && !(el.parentElement && over(el.parentElement)));
    if (over(document.body)) wide.unshift(document.body);
    const describe = el => {
      const r = el.getBoundingClientRect();
      return {tag: el.tagName.toLowerCase(), id: el.id, class: el.className, section: section(el),
              width: Math.round(r.width), right: Math.round(r.right), text: snippet(el)};
    };
    const tables = [...document.querySelectorAll("table")];
    const cells = [...document.querySelectorAll("td, th")].map(cell => {
      const copy = cell.cloneNode(true);
      for (const code of copy.querySelectorAll("code")) code.replaceWith(" ");
      return {text: copy.textContent, tag: cell.tagName.toLowerCase(), section: section(cell),
              table: tables.indexOf(cell.closest("table")), row: cell.parentElement.rowIndex,
              column: cell.cellIndex};
    });
    return {
      width, scroll_width: root.scrollWidth, client_width: root.clientWidth,
      images: images.map(img => ({src: img.src.startsWith("data:") ? img.src.slice(0, 40) + "..." : img.src,
                                  alt: img.alt, complete: img.complete,
                                  natural_width: img.naturalWidth, section: section(img)})),
      wide: wide.sort((a, b) => b.getBoundingClientRect().width - a.getBoundingClientRect().width)
                .slice(0, 12).map(describe),
      cells,
    };
  };
  const attempt = () => {
    try { return measure(); } catch (error) { return {error: String(error.stack || error)}; }
  };
  for (const d of document.querySelectorAll("details")) d.open = true;
  const pending = [...document.images].filter(img => !img.complete);
  if (!pending.length) return finish(attempt());
  for (const img of pending) img.loading = "eager";
  Promise.all(pending.map(img => new Promise(done => {
    img.addEventListener("load", done); img.addEventListener("error", done); setTimeout(done, 4000);
  }))).then(() => finish(attempt()));
});
</script>
"""


def render(page: Path, width: int = WIDTH) -> dict:
    """Open a copy of ``page`` (next to it, so that relative links still resolve) in headless
    Chromium ``width`` px wide and return what the injected script measured."""
    text = page.read_text(encoding="utf-8")
    end = text.lower().rfind("</body>")
    checked = page.with_name(page.stem + ".browser-check.html")
    checked.write_text(text[:end] + CHECK + text[end:] if end >= 0 else text + CHECK, encoding="utf-8")
    profile = page.parent / ".chromium-profile"
    command = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--mute-audio",
               f"--user-data-dir={profile}", f"--window-size={width},900", "--virtual-time-budget=10000",
               "--dump-dom", checked.resolve().as_uri()]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    found = re.search(r'<pre id="bench-check">(.*?)</pre>', done.stdout, re.S)
    assert found, (f"{Path(BROWSER).name} printed no result (exit {done.returncode}):\n"
                   f"stderr: {done.stderr[-2000:]}\nstdout: {done.stdout[-1000:]}")
    result = json.loads(html.unescape(found.group(1)))
    assert "error" not in result, f"the check script failed in the page: {result['error']}"
    return result


def broken_images(result: dict) -> list[dict]:
    return [img for img in result["images"] if not img["complete"] or img["natural_width"] == 0]


def sideways(result: dict) -> int:
    """How many px the page scrolls sideways (0: it fits)."""
    return max(0, result["scroll_width"] - result["client_width"])


def long_cells(result: dict) -> list[dict]:
    return [{**cell, "numbers": found} for cell in result["cells"] if (found := long_numbers(cell["text"]))]


def explain_width(result: dict) -> str:
    return "\n".join(f"  <{w['tag']}{' class=' + repr(w['class']) if w['class'] else ''}> in "
                     f"'{w['section']}': {w['width']} px wide, right edge at {w['right']} px "
                     f"({w['right'] - result['client_width']} px too far): {w['text'][:80]!r}"
                     for w in result["wide"])


def explain_cells(cells: list[dict]) -> str:
    return "\n".join(f"  '{c['section']}' table {c['table']}, row {c['row']}, column {c['column']} "
                     f"(<{c['tag']}>): {', '.join(c['numbers'])}" for c in cells)


@pytest.mark.slow
@needs_browser
def test_the_check_finds_planted_faults(tmp_path):
    """The browser check itself: a missing image, a broken one (lazy, in a closed <details>), a 3000 px wide
    block and an over-long number are each found; a clean page passes."""
    (tmp_path / "plots").mkdir()
    Image.new("RGB", (8, 8), "red").save(tmp_path / "plots" / "ok.png")
    (tmp_path / "plots" / "bad.png").write_bytes(b"not a png")
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><h2>Plots</h2>"
                   "<img src='plots/ok.png'><img src='plots/missing.png'>"
                   "<details><summary>more</summary><img loading='lazy' src='plots/bad.png'>"
                   "<img loading='lazy' src='plots/ok.png'></details>"
                   "<h2>Numbers</h2><table><tr><th>lr</th><td>0.5581343000015276</td><td>61.5</td>"
                   "<td><code>1234567890</code></td><td>00001-cifar10-1500steps</td></tr></table>"
                   "<div style='width:3000px'>wide</div></body></html>")
    result = render(bad)
    assert len(result["images"]) == 4, result["images"]  # the lazy ones in <details> too
    assert [img["src"].rsplit("/", 1)[-1] for img in broken_images(result)] == ["missing.png", "bad.png"]
    assert sideways(result) > 1000 and result["wide"][0]["tag"] == "div", explain_width(result)
    assert [(c["section"], c["numbers"]) for c in long_cells(result)] == [("Numbers", ["0.5581343000015276"])]

    good = tmp_path / "good.html"
    good.write_text("<!DOCTYPE html><html><body><img src='plots/ok.png'><table><tr><td>61.5</td></tr></table>"
                    "<div style='overflow-x:auto'><div style='width:3000px'>scrolls in its box</div></div>"
                    "</body></html>")
    result = render(good)
    assert len(result["images"]) == 1 and not broken_images(result)
    assert sideways(result) == 0 and not result["wide"] and not long_cells(result)


REPORTS = {
    "sweep": lambda root: make_sweep(root),
    "run": lambda root: make_run(root),
}


@pytest.fixture(scope="module", params=sorted(REPORTS))
def rendered(request, tmp_path_factory):
    """(kind, what the browser measured) for the report of a small sweep / a plain run."""
    if BROWSER is None:
        pytest.skip(NO_BROWSER)
    folder = REPORTS[request.param](tmp_path_factory.mktemp(request.param))
    paths = build_report([folder])
    return request.param, render(paths["html"])


@pytest.mark.slow
@needs_browser
def test_report_images_load(rendered):
    kind, result = rendered
    assert result["images"], f"the {kind} report has no images to check"
    broken = broken_images(result)
    assert not broken, (f"{len(broken)} of {len(result['images'])} images in the {kind} report "
                        f"do not load: {broken}")


@pytest.mark.slow
@needs_browser
def test_report_does_not_scroll_sideways(rendered):
    kind, result = rendered
    assert sideways(result) == 0, (
        f"the {kind} report scrolls sideways at {WIDTH} px: {result['scroll_width']} px of content in a "
        f"{result['client_width']} px viewport ({sideways(result)} px too wide); "
        "widest overflowing elements:\n"
        + explain_width(result))


@pytest.mark.slow
@needs_browser
def test_report_numbers_are_short(rendered):
    kind, result = rendered
    cells = long_cells(result)
    assert not cells, (f"{len(cells)} table cells of the {kind} report hold numbers with more than "
                       f"{MAX_DIGITS} significant digits:\n" + explain_cells(cells))
