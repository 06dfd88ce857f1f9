"""run_train: the record, the checkpoints, --resume, and every bad input failing early in one line."""

from __future__ import annotations

import shutil

import pytest
import torch

from dlbench.errors import DataError, DeviceError, SpecError, StepFailed
from dlbench.models import create_model
from dlbench.record import load_record
from dlbench.train import engines as engines_mod
from dlbench.train import run_train
from tests.train.conftest import make_config

HISTORY_KEYS = {"epoch", "train_loss", "val_loss", "val_accuracy", "seconds", "images_per_second"}
METRIC_KEYS = {
    "test_accuracy",
    "test_loss",
    "best_val_accuracy",
    "best_epoch",
    "train_seconds",
    "epoch_seconds_mean",
    "images_per_second",
    "time_to_first_batch",
    "peak_memory_device_bytes",
    "peak_memory_host_bytes",
    "history",
    "confusion_matrix",
    "classes",
    "engine",
    "stem",
    "steps_per_epoch",
}


@pytest.fixture(scope="module")
def two_epochs(tiny_split, tmp_path_factory):
    """An uninterrupted 2-epoch run (2 steps per epoch): the reference for the record and resume tests."""
    out = tmp_path_factory.mktemp("straight")
    rec = run_train(make_config(epochs=2, max_steps_per_epoch=2), tiny_split, out, log=lambda *_: None)
    return out, rec


def test_record_holds_the_agreed_metrics(two_epochs):
    out, rec = two_epochs
    assert rec == {k: v for k, v in load_record(out).items()}
    assert rec["step"] == "train" and rec["status"] == "ok"
    assert rec["config"] == make_config(epochs=2, max_steps_per_epoch=2).model_dump()
    m = rec["metrics"]
    assert METRIC_KEYS <= set(m)
    assert [h["epoch"] for h in m["history"]] == [1, 2]
    assert all(HISTORY_KEYS <= set(h) for h in m["history"])
    assert m["engine"] == "resident" and m["stem"] == "imagenet" and m["steps_per_epoch"] == 2
    assert 0 <= m["test_accuracy"] <= 1 and m["test_loss"] > 0
    cm = torch.tensor(m["confusion_matrix"])
    assert cm.shape == (10, 10) and int(cm.sum()) == m["n_test"] == 200
    assert m["test_accuracy"] == pytest.approx(int(cm.diag().sum()) / 200)
    assert m["classes"][0] == "T-shirt/top" and len(m["classes"]) == 10
    assert m["best_val_accuracy"] == max(h["val_accuracy"] for h in m["history"])
    assert m["train_seconds"] == pytest.approx(sum(h["seconds"] for h in m["history"]), abs=1e-3)
    # both time definitions: each epoch's whole wall time holds its training steps and its validation
    for h in m["history"]:
        assert h["wall_seconds"] >= h["seconds"] + h["eval_seconds"] - 1e-3
    assert m["train_wall_seconds"] == pytest.approx(sum(h["wall_seconds"] for h in m["history"]), abs=1e-3)
    assert "at input 1x28x28" in m["timing_note"]
    assert m["images_per_second"] > 0 and m["time_to_first_batch"] > 0
    assert m["peak_memory_device_bytes"] is None and m["peak_memory_host_bytes"] > 10 * 2**20
    assert m["normalization"]["kind"] == "fixed" and m["normalization"]["mean"] == 0.2860
    assert m["cuda_graph"] is False and m["channels_last"] is True
    # energy: the CPU packages' joules for each epoch where RAPL is readable, else the reason it is not
    energy = m["energy"]
    if "cpu_joules" in energy:
        assert len(energy["cpu_joules"]) == 2 and energy["cpu_joules_per_epoch"] > 0
    else:
        assert energy["not_measured"]["cpu"] and energy["sources"] == []
    assert rec["inputs"]["split"]["sha256"]
    for name, file in (("checkpoint", "best.pt"), ("last", "last.pt")):
        assert rec["outputs"][name]["path"] == file and (out / file).is_file()
        assert len(rec["outputs"][name]["sha256"]) == 64


def test_best_checkpoint_loads_into_a_fresh_model(two_epochs):
    out, _ = two_epochs
    model = create_model("resnet18", stem="imagenet")
    model.load_state_dict(torch.load(out / "best.pt", weights_only=True))


def _assert_same_run(a_dir, a_rec, b_dir, b_rec):
    sa = torch.load(a_dir / "last.pt", weights_only=True)
    sb = torch.load(b_dir / "last.pt", weights_only=True)
    assert sa["epoch"] == sb["epoch"] == 2
    for k, v in sa["model"].items():
        assert torch.equal(v, sb["model"][k]), k
    for pid, state in sa["optimizer"]["state"].items():
        for k, v in state.items():
            assert torch.equal(v, sb["optimizer"]["state"][pid][k]), (pid, k)
    ma, mb = a_rec["metrics"], b_rec["metrics"]
    for key in ("test_accuracy", "test_loss", "best_val_accuracy", "best_epoch", "confusion_matrix"):
        assert ma[key] == mb[key], key
    for ha, hb in zip(ma["history"], mb["history"], strict=True):
        assert (ha["train_loss"], ha["val_loss"], ha["val_accuracy"]) == (
            hb["train_loss"],
            hb["val_loss"],
            hb["val_accuracy"],
        )


def test_resume_after_one_epoch_equals_an_uninterrupted_run(two_epochs, tiny_split, tmp_path):
    a_dir, a_rec = two_epochs
    first = run_train(make_config(epochs=1, max_steps_per_epoch=2), tiny_split, tmp_path, log=lambda *_: None)
    assert [h["epoch"] for h in first["metrics"]["history"]] == [1]
    b_rec = run_train(
        make_config(epochs=2, max_steps_per_epoch=2), tiny_split, tmp_path, resume=True, log=lambda *_: None
    )
    assert b_rec["metrics"]["resumed_from_epoch"] == 1
    assert [h["epoch"] for h in b_rec["metrics"]["history"]] == [1, 2]
    _assert_same_run(a_dir, a_rec, tmp_path, b_rec)


def test_resume_after_an_interruption(two_epochs, tiny_split, tmp_path, monkeypatch):
    """Killed in epoch 2 (KeyboardInterrupt): last.pt of epoch 1 survives and --resume finishes the same."""
    a_dir, a_rec = two_epochs
    cfg = make_config(epochs=2, max_steps_per_epoch=2)
    real_step = engines_mod.Trainer.step
    calls = {"n": 0}

    def interrupted(self, x, y):
        calls["n"] += 1
        if calls["n"] == 3:  # the first step of epoch 2
            raise KeyboardInterrupt
        return real_step(self, x, y)

    monkeypatch.setattr(engines_mod.Trainer, "step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_train(cfg, tiny_split, tmp_path, log=lambda *_: None)
    assert torch.load(tmp_path / "last.pt", weights_only=True)["epoch"] == 1
    assert load_record(tmp_path)["status"] == "failed"
    monkeypatch.setattr(engines_mod.Trainer, "step", real_step)
    b_rec = run_train(cfg, tiny_split, tmp_path, resume=True, log=lambda *_: None)
    assert b_rec["status"] == "ok" and b_rec["metrics"]["resumed_from_epoch"] == 1
    _assert_same_run(a_dir, a_rec, tmp_path, b_rec)


def test_resume_refuses_a_checkpoint_of_another_config(two_epochs, tiny_split, tmp_path):
    a_dir, _ = two_epochs
    shutil.copy(a_dir / "last.pt", tmp_path / "last.pt")
    with pytest.raises(SpecError, match=r"different run \(lr: 0.001 in the checkpoint, 0.01 now\)"):
        run_train(make_config(epochs=2, max_steps_per_epoch=2, lr=0.01), tiny_split, tmp_path, resume=True)
    with pytest.raises(SpecError, match="already holds 2 epochs"):
        run_train(make_config(epochs=1, max_steps_per_epoch=2), tiny_split, tmp_path, resume=True)


def test_resume_of_a_checkpoint_written_before_the_input_fields(tiny_split, tmp_path):
    """A last.pt whose config predates input_size / in_channels resumes at 1x28x28, and only there."""
    run_train(make_config(epochs=1, max_steps_per_epoch=2), tiny_split, tmp_path, log=lambda *_: None)
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    del state["config"]["input_size"], state["config"]["in_channels"]
    torch.save(state, tmp_path / "last.pt")
    rec = run_train(
        make_config(epochs=2, max_steps_per_epoch=2), tiny_split, tmp_path, resume=True, log=lambda *_: None
    )
    assert rec["metrics"]["resumed_from_epoch"] == 1
    torch.save(state, tmp_path / "last.pt")
    with pytest.raises(SpecError, match=r"input_size: 28 in the checkpoint, 64 now"):
        run_train(
            make_config(epochs=2, max_steps_per_epoch=2, input_size=64), tiny_split, tmp_path, resume=True
        )


def test_cuda_absent_fails_before_writing(tiny_split, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "out"
    with pytest.raises(DeviceError) as err:
        run_train(make_config(device="cuda"), tiny_split, out)
    msg = err.value.one_line()
    assert "no CUDA device is visible" in msg and "--device cpu" in msg and "\n" not in msg
    assert not out.exists()


def test_batch_larger_than_the_split_fails_before_writing(tiny_split, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(SpecError, match=r"batch size 701 is larger than the training split \(700 images\)"):
        run_train(make_config(batch_size=701), tiny_split, out)
    assert not out.exists()


def test_split_of_another_dataset_is_refused(tiny_split, tmp_path):
    with pytest.raises(DataError, match="holds fashion-mnist but the run asks for mnist"):
        run_train(make_config(dataset="mnist"), tiny_split, tmp_path / "out")


def test_nan_loss_stops_with_epoch_and_step_and_keeps_earlier_epochs(tiny_split, tmp_path, monkeypatch):
    real_step = engines_mod.Trainer.step
    calls = {"n": 0}

    def diverging(self, x, y):
        calls["n"] += 1
        loss = real_step(self, x, y)
        return loss * float("nan") if calls["n"] == 5 else loss  # 3 steps per epoch: epoch 2, step 2

    monkeypatch.setattr(engines_mod.Trainer, "step", diverging)
    with pytest.raises(StepFailed, match=r"training loss is nan at epoch 2, step 2 of 3") as err:
        run_train(make_config(epochs=3, max_steps_per_epoch=3), tiny_split, tmp_path, log=lambda *_: None)
    assert err.value.exit_code == 1
    rec = load_record(tmp_path)
    assert rec["status"] == "failed" and "epoch 2, step 2" in rec["error"]
    assert rec["metrics"]["failed_at"] == {"epoch": 2, "step": 2}
    assert [h["epoch"] for h in rec["metrics"]["history"]] == [1]
    assert torch.load(tmp_path / "last.pt", weights_only=True)["epoch"] == 1
    assert (tmp_path / "best.pt").is_file()
