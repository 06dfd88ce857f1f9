"""A real browser opens report.html from disk: headless Chromium (Debian's ``chromium``; ``make test``
installs it) renders the page, takes a screenshot, and a probe reports what actually loaded."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.report.test_report import FIGURES

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
]

# Appended to a copy of the report: after the load event, write what the browser rendered into the DOM.
PROBE = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var out = document.createElement('pre');
  out.id = 'probe';
  out.textContent = JSON.stringify({
    tables: document.querySelectorAll('table').length,
    cells: document.querySelectorAll('tbody td').length,
    notrun: document.querySelectorAll('span.nr').length,
    width: document.documentElement.scrollWidth,
    images: imgs.map(function (i) {
      return {alt: i.alt, complete: i.complete, w: i.naturalWidth, h: i.naturalHeight,
              shown: Math.round(i.getBoundingClientRect().width)};
    })
  });
  document.body.appendChild(out);
});
</script></body>"""


@pytest.fixture(scope="session")
def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail("chromium is not installed: `make test` installs it (apt-get install chromium)")
    return exe


def run_chromium(exe: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [exe, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="session")
def rendered(chromium, report, tmp_path_factory) -> dict:
    """What Chromium reports after loading a copy of report.html with the probe appended."""
    tmp = tmp_path_factory.mktemp("browser")
    probe = tmp / "probe.html"  # the page is self-contained, so a copy elsewhere renders the same
    probe.write_text((report / "report.html").read_text().replace("</body>", PROBE))
    res = run_chromium(
        chromium,
        tmp / "profile",
        "--window-size=1400,4000",
        "--virtual-time-budget=15000",
        "--dump-dom",
        probe.as_uri(),
    )
    m = re.search(r'<pre id="probe">(.*?)</pre>', res.stdout, re.S)
    assert m, f"the probe did not run (chromium exit {res.returncode}): {res.stderr[-2000:]}"
    return json.loads(html.unescape(m.group(1)))


def test_every_figure_loads_in_the_browser(rendered):
    imgs = rendered["images"]
    assert len(imgs) == len(FIGURES)
    for img in imgs:
        assert img["complete"] and img["w"] > 300 and img["h"] > 200, img  # a broken image has naturalWidth 0
        assert img["shown"] > 300, img  # and it is laid out at a readable size
    alts = {i["alt"].split(":")[0] for i in imgs}
    assert {f"Figure {n}" for n in ("1", "2", "3a", "3b", "4", "5", "6", "7", "8")} <= alts
    # and the summary's pictures, first on the page
    assert {
        "Ours against the study",
        "Every speedup in one chart",
        "The 10-vs-4-epoch gain (Table 2)",
    } <= alts
    assert imgs[0]["alt"] in {"Every speedup in one chart", "Ours against the study: every published cell"}


def test_tables_render_and_the_page_fits_the_window(rendered, report):
    n_tables = len(list((report / "tables").glob("*.csv")))
    assert rendered["tables"] >= n_tables  # plus the environment tables
    assert rendered["cells"] > 500
    assert rendered["notrun"] >= 3  # the failed runs' cells
    assert rendered["width"] <= 1400  # wide tables scroll inside their box, the page does not


def test_screenshot_shows_the_report(chromium, report, tmp_path):
    shot = tmp_path / "report.png"
    res = run_chromium(
        chromium,
        tmp_path / "profile",
        "--window-size=1400,4000",
        f"--screenshot={shot}",
        (report / "report.html").as_uri(),
    )
    assert shot.is_file(), res.stderr[-2000:]
    im = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert im.shape == (4000, 1400)
    # Not a blank or error page: plenty of dark text pixels and variation all the way down the page.
    for band in np.array_split(im, 4):
        assert band.std() > 20 and (band < 100).mean() > 0.005
