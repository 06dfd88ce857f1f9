import json

from dlbench.errors import DataError
from dlbench.record import record_refusal, step_record
from dlbench.spec import parse_spec
from dlbench.study import run_study


def test_runs_refused_before_their_record_get_a_failed_record_the_report_shows(idx_folder, tmp_path):
    # 400 images -> 280 in train: a batch of 1,000 and n_train of 5,000 are refused by their steps.
    spec = parse_spec({
        "data": {"datasets": ["fashion-mnist"], "source": "idx", "root": str(idx_folder)},
        "train": {"grids": [{"batch_size": [1000]}]},
        "svm": {"n_train": 5000},
        "onnx": {"batch_sizes": [1], "warmup": 0, "iterations": 2},
    })
    out = tmp_path / "study"
    summary = run_study(spec, out)
    assert len(summary["train"]["failed"]) == 1 and len(summary["svm"]["failed"]) == 1
    for step in ("train", "svm"):
        (folder,) = (out / step).iterdir()
        rec = json.loads((folder / "record.json").read_text())
        assert rec["status"] == "failed" and rec["step"] == step
        assert "larger than" in rec["error"] or "only" in rec["error"], rec["error"]
    html = (out / "report" / "report.html").read_text()
    assert "failed" in html.lower() and summary["train"]["failed"][0]["run"] in html


def test_refusal_never_overwrites_an_earlier_record(tmp_path):
    with step_record("train", {"a": 1}, tmp_path, run_id="r1"):
        pass
    before = (tmp_path / "record.json").read_bytes()
    assert record_refusal(DataError("batch too large"), "train", {"a": 1}, tmp_path, run_id="r1") is False
    assert (tmp_path / "record.json").read_bytes() == before
    fresh = tmp_path / "new"
    assert record_refusal(DataError("batch too large"), "train", {"a": 1}, fresh, run_id="r2") is True
    rec = json.loads((fresh / "record.json").read_text())
    assert rec["status"] == "failed" and rec["error"] == "batch too large" and rec["run_id"] == "r2"
