import json

from dlbench.errors import DataError
from dlbench.record import record_refusal, step_record
from dlbench.spec import parse_spec
from dlbench.study import run_study


def test_runs_refused_before_their_record_get_a_failed_record_the_report_shows(idx_folder, tmp_path):
    # 400 images -> 280 in train: a batch of 1,000 and n_train of 5,000 are refused by their steps.
    spec = parse_spec(
        {
            "data": {"datasets": ["fashion-mnist"], "source": "idx", "root": str(idx_folder)},
            "train": {"grids": [{"batch_size": [1000]}]},
            "svm": {"n_train": 5000},
            "onnx": {"batch_sizes": [1], "warmup": 0, "iterations": 2},
        }
    )
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


def _tiny_study(idx_folder, name: str = "tiny-study") -> dict:
    return {
        "name": name,
        "data": {"datasets": ["fashion-mnist"], "source": "idx", "root": str(idx_folder)},
        "train": {
            "max_steps_per_epoch": 1,
            "grids": [{"models": ["resnet18"], "batch_size": [32], "epochs": [1], "device": ["cpu"]}],
        },
        "svm": {"kernels": ["rbf"], "n_train": 100},
        "profile": {"input_sizes": [28]},
        "onnx": {"batch_sizes": [1], "warmup": 0, "iterations": 1},
    }


def test_study_folders_are_never_mixed_or_overwritten_silently(
    idx_folder, tmp_path, monkeypatch, capsys, caplog
):
    import yaml

    from dlbench.cli import main

    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "tiny.yaml"
    spec.write_text(yaml.safe_dump(_tiny_study(idx_folder)))
    # the default folder is named after the spec
    assert main(["study", "--spec", str(spec)]) == 0
    out = tmp_path / "runs" / "tiny-study"
    assert "results: runs/tiny-study" in capsys.readouterr().out
    (train,) = (out / "train").iterdir()
    (svm,) = (out / "svm").iterdir()
    index = json.loads((out / "index.json").read_text())["runs"]
    assert index[train.name]["step"] == "train" and index[train.name]["folder"] == f"train/{train.name}"
    assert index[train.name]["status"] == "ok" and index[svm.name]["config"]["kernel"] == "rbf"
    before = {p: p.read_bytes() for p in (train / "record.json", svm / "record.json", out / "spec.yaml")}
    # dlbench runs lists it, with its spec, status and report
    assert main(["runs"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split() == ["NAME", "SPEC", "DATE", "(UTC)", "STATUS", "REPORT"]
    assert row.split()[:2] == ["tiny-study", "tiny-study"] and row.split()[4] == "ok"
    assert row.endswith(str(out / "report" / "report.html"))

    # the same study again: refused, nothing touched
    assert main(["study", "--spec", str(spec)]) == 2
    err = capsys.readouterr().err
    assert (
        "already holds study 'tiny-study' (2 runs done)" in err and "--resume" in err and "--overwrite" in err
    )
    assert all(p.read_bytes() == b for p, b in before.items())

    # another study into that folder: refused, even with --resume
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(_tiny_study(idx_folder, name="other")))
    for extra in ([], ["--resume"]):
        assert main(["study", "--spec", str(other), "--out", str(out), *extra]) == 2
        assert "holds another study, 'tiny-study', not 'other'" in capsys.readouterr().err
    assert all(p.read_bytes() == b for p, b in before.items())

    # a folder holding something else: refused
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    assert main(["study", "--spec", str(spec), "--out", str(tmp_path / "notes"), "--overwrite"]) == 2
    assert "holds no study" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "notes").iterdir()] == ["todo.txt"]

    # --resume: the finished runs are kept, by run id; the report is written again
    caplog.clear()
    assert main(["study", "--spec", str(spec), "--resume"]) == 0
    captured = capsys.readouterr()
    assert (
        "train: 0 ok, 1 kept from before" in captured.out and "svm: 0 ok, 1 kept from before" in captured.out
    )
    assert (
        f"[train 1/1] resnet18 resident bs=32 adam 1e-3 1 ep fashion-mnist cpu (id {train.name}): done "
        "before, "
        "kept (--resume)" in caplog.text
    )
    assert all(p.read_bytes() == b for p, b in before.items())
    assert (out / "report" / "report.html").is_file()

    # --overwrite: a fresh study in its place; a file dlbench did not write stays
    (out / "stray.txt").write_text("the user's notes")
    assert main(["study", "--spec", str(spec), "--overwrite"]) == 0
    assert "train: 1 ok" in capsys.readouterr().out
    assert (out / "stray.txt").read_text() == "the user's notes"
    assert (
        json.loads((train / "record.json").read_text())["started"]
        != json.loads(before[train / "record.json"])["started"]
    )


def test_a_study_with_another_classical_estimator_reports_it_under_its_own_label(idx_folder, tmp_path):
    from dlbench.report.collect import Records, svm_frame

    spec = parse_spec(
        {
            "name": "classical",
            "data": {"datasets": ["fashion-mnist"], "source": "idx", "root": str(idx_folder)},
            "train": {"grids": []},
            "svm": {"kernels": ["rbf"], "estimators": ["svm", "logistic_regression"], "n_train": 200},
        }
    )
    out = tmp_path / "study"
    summary = run_study(spec, out)
    assert not summary["svm"]["failed"] and summary["svm"]["ok"] == 2
    (lr,) = [p for p in (out / "svm").iterdir() if p.name.startswith("logistic-regression-")]
    assert json.loads((lr / "record.json").read_text())["metrics"]["estimator"] == "logistic_regression"
    S = svm_frame(Records.load(out)).set_index("estimator")
    assert S.loc["logistic_regression", "label"] == "Logistic regression"  # the registry's label
    assert S.loc["svm", "label"] == "SVM rbf"
    report = (out / "report" / "report.md").read_text()
    table7 = report[report.index("Table 7") :]
    assert "Logistic regression" in table7 and "estimator" in table7
