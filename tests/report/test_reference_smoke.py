"""The whole reference study as a smoke run (`dlbench study --spec reference --smoke`), end to end: every run
of the preset on the CPU with a few hundred images; the report shows the study's Tables 1-4, SVM table and
results list in its layout, every one of the 77 published values at its cell with ours beside it, the
study's Figures 1-7 decoded by a real browser, and the banner saying the numbers are meaningless."""

from __future__ import annotations

import csv
import html as htmllib
import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from dlbench.io import read_json
from dlbench.record import find_records
from dlbench.report import reference
from dlbench.report.study_tables import STUDY_TABLES
from tests.report.test_browser import PROBE, chromium, run_chromium  # noqa: F401 - chromium is a fixture

DS = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}
MODEL = {
    "resnet18": "ResNet-18",
    "resnet34": "ResNet-34",
    "resnet50": "ResNet-50",
    "svm-poly": "polynomial",
    "svm-rbf": "RBF",
}
OPT = {"sgd": "SGD", "adam": "Adam", "": "not stated"}
PIN = {"true": "pin on", "false": "pin off"}
KEY = {table: build.__name__ for table, build in STUDY_TABLES.items()}  # published table -> its item's id


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reference-smoke") / "study"
    res = subprocess.run(
        [sys.executable, "-m", "dlbench", "study", "--spec", "reference", "--smoke", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return out


class _Tables(HTMLParser):
    """Every <table> of the page inside an item: {item id: (header rows, body rows)} with colspans expanded,
    rowspans filled down, and empty index cells (same as the row above) filled in."""

    def __init__(self):
        super().__init__()
        self.item, self.tables, self.cell, self.row, self.in_head = None, {}, None, None, False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "div" and a.get("class") == "item":
            self.item = a.get("id")
        elif tag == "table" and self.item:
            self.tables[self.item] = ([], [])
        elif tag == "thead":
            self.in_head = True
        elif tag == "tbody":
            self.in_head = False
        elif tag == "tr":
            self.row = []
        elif tag in ("td", "th") and self.row is not None:
            self.cell = {
                "text": "",
                "span": int(a.get("colspan", 1)),
                "rowspan": int(a.get("rowspan", 1)),
                "idx": "idx" in (a.get("class") or "").split(),
            }

    def handle_data(self, data):
        if self.cell is not None:
            self.cell["text"] += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.row.append(self.cell)
            self.cell = None
        elif tag == "tr" and self.row is not None and self.item in self.tables:
            self.tables[self.item][0 if self.in_head else 1].append(self.row)
            self.row = None


def grid(page: str, key: str) -> tuple[list[tuple], list[list[str]]]:
    """(column keys: one tuple of header labels per column, body rows as text) of one table."""
    p = _Tables()
    p.feed(page)
    head, body = p.tables[key]
    width = sum(c["span"] for c in head[-1]) + sum(c["span"] for c in head[0] if c["rowspan"] > 1)
    cols: list[list[str]] = [[] for _ in range(width)]
    pending = [0] * width
    for hrow in head:
        i = 0
        for c in hrow:
            while pending[i]:
                pending[i] -= 1
                i += 1
            for k in range(c["span"]):
                cols[i + k].append(c["text"].strip())
                pending[i + k] = c["rowspan"] - 1
            i += c["span"]
        for j in range(i, width):
            pending[j] = max(0, pending[j] - 1)
    rows, prev = [], []
    n_index = sum(1 for c in body[0] if c["idx"]) if body else 0  # the row-index cells (class "idx")
    for r in body:
        texts = [c["text"].strip() for c in r]
        for k in range(n_index):
            texts[k] = texts[k] or (prev[k] if prev else "")
        rows.append(texts)
        prev = texts
    return [tuple(x for x in c if x) for c in cols], rows


def at(page: str, key: str, row: tuple, col: tuple) -> str:
    cols, rows = grid(page, key)
    n = len(row)
    [r] = [x for x in rows if tuple(x[:n]) == row]
    [j] = [j for j, c in enumerate(cols) if _same(c[-len(col) :], col) and j >= n]
    return htmllib.unescape(r[j])


def _same(got: tuple, want: tuple) -> bool:
    """Header labels equal, a wanted label ending in "*" matching any label it begins."""
    return len(got) == len(want) and all(
        g == w or (w.endswith("*") and htmllib.unescape(g).startswith(w[:-1]))
        for g, w in zip(got, want, strict=True)
    )


def where(table: str, cell: dict) -> tuple[tuple, tuple, tuple]:
    """(row, column of the study's value, column of ours) of a published cell in its table."""
    ds, m, opt = DS[cell["dataset"]], MODEL[cell["model"]], OPT[cell["optimizer"]]
    if table == "table1":
        return (cell["batch_size"], opt, cell["lr"]), (ds, m, "study %"), (ds, m, "ours %")
    if table == "table2":
        ep = f"{cell['epochs']} epochs"
        return (ds, m, f"{opt} (BS={cell['batch_size']})"), (ep, "study %"), (ep, "ours %")
    if table == "table3":
        return (ds, m), (PIN[cell["pin_memory"]], "study %"), (PIN[cell["pin_memory"]], "ours %")
    if table == "table4":
        # the study's hardware and ours from the records: a smoke run's GPU cells ran on the CPU
        dev = {"cpu": "CPU (study Xeon Gold 6326; ours *", "cuda": "GPU (study A30; ours ran on CPU: *"}[
            cell["device"]
        ]
        return (m, opt), (dev, "study %"), (dev, "ours %")
    if table == "svm":
        return (ds,), (m, "study %"), (m, "ours %")
    return (
        (ds, m, cell["batch_size"], opt, cell["lr"], f"{cell['epochs']} epochs", PIN[cell["pin_memory"]]),
        ("study %",),
        ("ours %",),
    )


def test_every_published_value_is_at_its_cell_with_ours_beside_it(smoke):
    page = (smoke / "report" / "report.html").read_text()
    pub = reference.published()
    assert len(pub) == 77
    for _, cell in pub.iterrows():
        row, scol, ocol = where(cell["table"], cell)
        assert at(page, KEY[cell["table"]], row, scol) == cell["test_accuracy_pct"], cell["cell"]
        ours = at(page, KEY[cell["table"]], row, ocol)
        assert re.fullmatch(r"\d+\.\d\d", ours), (cell["cell"], ours)  # a run of ours fills every cell
        if cell["train_seconds"]:
            time_col = (*scol[:-1], "study s")
            assert at(page, KEY[cell["table"]], row, time_col) == cell["train_seconds"], cell["cell"]
        if cell["fit_ms"]:
            assert at(page, KEY[cell["table"]], row, (scol[0], "study fit ms (CPU)")) == cell["fit_ms"], cell[
                "cell"
            ]
    # the example of the issue: Table 4, ResNet-18 SGD on the GPU
    gpu = "GPU (study A30; ours ran on CPU: *"
    assert at(page, "cpu_vs_gpu", ("ResNet-18", "SGD"), (gpu, "study s")) == "707.64"
    assert at(page, "cpu_vs_gpu", ("ResNet-18", "SGD"), (gpu, "study %")) == "92.42"
    # the CSVs carry the published values unrounded beside ours
    with open(smoke / "report" / "tables" / "epochs_4_vs_10.csv", newline="") as f:
        t2 = list(csv.DictReader(f))
    assert "148.36" in {x["study_seconds"] for x in t2} and all(x["ours_seconds"] for x in t2)


def test_the_studys_tables_keep_its_structure(smoke):
    page = (smoke / "report" / "report.html").read_text()
    cols, rows = grid(page, "accuracy_grid")
    assert [r[:3] for r in rows] == [
        [b, o, lr] for b in ("16", "32") for o in ("SGD", "Adam") for lr in ("0.001", "0.0001")
    ]
    assert {c[:2] for c in cols[3:]} == {
        (d, m) for d in ("MNIST", "Fashion-MNIST") for m in ("ResNet-18", "ResNet-50")
    }
    _, rows = grid(page, "cpu_vs_gpu")
    assert [r[:2] for r in rows] == [
        [m, o] for m in ("ResNet-18", "ResNet-34", "ResNet-50") for o in ("SGD", "Adam")
    ]
    cols, rows = grid(page, "svm_kernels")
    assert [r[0] for r in rows] == ["MNIST", "Fashion-MNIST"] and ("polynomial", "study fit ms (CPU)") in cols
    assert len(grid(page, "epochs_4_vs_10")[1]) == 4 and len(grid(page, "pin_memory")[1]) == 4
    assert len(grid(page, "results_list")[1]) == 13
    # only the table1 grid's runs fill Table 1: no engine, bf16 or 3x64x64 run is among its sources
    with open(smoke / "report" / "tables" / "accuracy_grid.csv", newline="") as f:
        ids = {x["run_id"] for x in csv.DictReader(f)}
    for r in find_records(smoke / "train"):
        c = r["config"]
        if c["engine"] == "resident" or c["amp"] == "bf16" or c.get("input_size", 28) != 28:
            assert r["run_id"] not in ids


def test_smoke_banner_and_every_record_marked(smoke):
    page = (smoke / "report" / "report.html").read_text()
    banner = re.search(r'<section id="banner" class="banner smoke">.*?</section>', page, re.S).group(0)
    assert "SMOKE RUN: the numbers in this report are meaningless." in banner and "wiring" in banner
    assert (
        "DL-Ops Assignment 1" in banner
        and "300" in banner
        and "at most 2 epochs (fewer than planned)" in banner
    )
    assert "SMOKE RUN" in (smoke / "report" / "report.md").read_text()
    recs = [r for r in find_records(smoke) if r["step"] in ("data", "train", "svm")]
    assert len(recs) > 60 and all(r["config"].get("smoke") for r in recs)
    for r in recs:
        if r["step"] == "train":
            assert r["device"]["type"] == "cpu" and r["config"]["max_steps_per_epoch"] == 2
            assert r["config"]["epochs"] <= 2 and len(r["metrics"]["history"]) == r["config"]["epochs"]
    summary = read_json(smoke / "report" / "summary.json")
    assert summary["smoke"] is True
    # smoke is marked wherever a number can be quoted from, and no verdict is drawn from its numbers
    assert "SMOKE RUN" in re.search(r"<title>(.*?)</title>", page).group(1)
    captions = re.findall(r'</h3><p class="caption">([^<]*)', page)  # every table's and figure's
    assert len(captions) > 20 and all(c.startswith("SMOKE RUN") for c in captions)
    assert all(r["smoke"] for k in ("claims", "speedups", "agreement", "best_models") for r in summary[k])
    assert all(r["verdict"].startswith("not testable") for r in summary["claims"] if not r["internal"])


def test_figures_1_to_7_decode_in_the_browser(smoke, chromium, tmp_path):  # noqa: F811
    probe = tmp_path / "probe.html"
    probe.write_text((smoke / "report" / "report.html").read_text().replace("</body>", PROBE))
    res = run_chromium(
        chromium,
        tmp_path / "profile",
        "--window-size=1400,4000",
        "--virtual-time-budget=20000",
        "--dump-dom",
        probe.as_uri(),
    )
    m = re.search(r'<pre id="probe">(.*?)</pre>', res.stdout, re.S)
    assert m, res.stderr[-2000:]
    imgs = json.loads(htmllib.unescape(m.group(1)))["images"]
    shown = {i["alt"].split(":")[0] for i in imgs if i["complete"] and i["w"] > 300 and i["h"] > 200}
    assert {f"Figure {n}" for n in ("1", "2", "3a", "3b", "4", "5", "6", "7")} <= shown
