"""bench/data_folder.py: an IDX dataset written as a PNG folder splits to the IDX split's images, and a
second run reads the decoded cache."""

import json

from tests.conftest import make_idx_folder


def _bench():
    import data_folder  # bench/ is on pytest's pythonpath; its PNG writers run in worker processes

    return data_folder


def test_the_png_folder_benchmark_times_three_splits_of_the_same_images(tmp_path, capsys):
    idx = make_idx_folder(tmp_path / "idx", n_train=500, n_test=100)
    work = tmp_path / "work"
    code = _bench().main(["--dataset-dir", str(idx), "--images", "500", "--work", str(work)])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["settings"]["images"] == 500
    assert sum(1 for _ in (work / "images").rglob("*.png")) == 500
    assert len(list((work / "images").iterdir())) == 10  # one folder per class
    runs = out["runs"]
    assert set(runs) == {"idx", "folder_first", "folder_cached"}
    assert all(r["seconds"] > 0 and r["images_per_second"] > 0 for r in runs.values())
    assert runs["folder_first"]["decoded_from_cache"] is False and runs["folder_cached"]["decoded_from_cache"]
    assert out["checks"] == {
        "folder_holds_the_idx_images": True,
        "second_run_read_the_cache": True,
        "second_run_same_split": True,
    }
    assert out["environment"]["cpu_count"] >= 1


def test_a_subsample_outside_the_data_is_one_line(tmp_path, capsys):
    idx = make_idx_folder(tmp_path / "idx", n_train=50, n_test=10)
    assert _bench().main(["--dataset-dir", str(idx), "--images", "5000"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["data_folder: error: --images 5000: choose 20 to 60"]
