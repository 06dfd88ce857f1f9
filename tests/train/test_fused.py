"""The fused engine trains each member as its solo run would (CPU): the same first loss and gradients, the
same first step (per-member learning rate), test accuracy within the spread of solo runs, and per-member
records and best.pt files that load into the plain torchvision model."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from dlbench.data.step import run_data
from dlbench.errors import SpecError
from dlbench.models import create_model
from dlbench.record import load_record
from dlbench.train import run_train
from dlbench.train.data import NORMALIZATION, model_input
from dlbench.train.engines import Trainer
from dlbench.train.fused import FusedTrainer, fuse_models, load_member_state_dict, member_state_dict
from dlbench.train.group import run_train_group
from tests.conftest import make_idx_folder
from tests.train.conftest import make_config

# four members differing in dataset, learning rate, momentum, weight decay and seed
MEMBERS = [
    dict(dataset="fashion-mnist", lr=1e-3, seed=0),
    dict(dataset="mnist", lr=1e-2, seed=1, momentum=0.5, weight_decay=1e-4),
    dict(dataset="fashion-mnist", lr=3e-4, seed=2, momentum=0.0),
    dict(dataset="mnist", lr=2e-3, seed=3),
]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double().reshape(-1), b.double().reshape(-1)
    return float((a - b).norm() / b.norm())


def _first_batches(configs, batch: int):
    """One batch of each member, its own images (normalised for its dataset), fused and solo layouts."""
    g = torch.Generator().manual_seed(7)
    xs, ys = [], []
    for c in configs:
        mean, std = NORMALIZATION[c.dataset]
        xs.append(
            model_input(torch.randint(0, 256, (batch, 1, 28, 28), generator=g, dtype=torch.uint8), mean, std)
        )
        ys.append(torch.randint(0, 10, (batch,), generator=g))
    cl = torch.channels_last
    return (
        torch.cat(xs, 1).contiguous(memory_format=cl),
        torch.stack(ys),
        [x.contiguous(memory_format=cl) for x in xs],
        ys,
    )


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_members_match_their_solo_runs_in_the_first_step(optimizer, float64):
    """The first step of every member is its solo run's: loss, gradients and the stepped weights (per-member
    lr, momentum, weight decay; Adam's lr 1e-4 first step divides near-zero gradients by themselves, so only
    an exact comparison is meaningful there)."""
    configs = [make_config(optimizer=optimizer, batch_size=16, **m) for m in MEMBERS]
    configs[2] = configs[2].model_copy(update={"lr": 1e-4})
    fused = FusedTrainer(configs, torch.device("cpu"), channels_last=True)
    assert all(p.dtype == torch.float64 for p in fused.model.parameters())
    x, y, xs, ys = _first_batches(configs, 16)
    assert x.dtype == torch.float64
    fused.optimizer.zero_grad(set_to_none=True)
    losses = fused.member_losses(fused.model(x), y)
    losses.sum().backward()
    grads = {n: p.grad.detach().clone().reshape(len(configs), -1) for n, p in fused.model.named_parameters()}
    fused.optimizer.step()
    for i, c in enumerate(configs):
        solo = Trainer(c, torch.device("cpu"), channels_last=True)
        loss = F.cross_entropy(solo.model(xs[i]), ys[i])
        loss.backward()
        assert abs(float(losses[i].detach()) - float(loss.detach())) <= 1e-12 * abs(float(loss.detach()))
        for name, p in solo.model.named_parameters():  # the fused mapping: each tensor's gradient, norm-wise
            assert _rel(grads[name][i], p.grad) < 1e-10, (i, name)
        solo.optimizer.step()
        after = member_state_dict(fused.model, i)
        names = [n for n, _ in solo.model.named_parameters()]
        got = torch.cat([after[n].reshape(-1) for n in names])
        want = torch.cat([p.detach().reshape(-1) for p in solo.model.parameters()])
        moved = torch.cat(
            [p.detach().reshape(-1) for p in Trainer(c, torch.device("cpu")).model.parameters()]
        )
        # per-member lr, momentum and weight decay in the one step; each tensor on its own, so a small
        # tensor's error is not hidden in the whole model's norm
        for name in names:
            assert _rel(after[name], dict(solo.model.named_parameters())[name].detach()) < 1e-10, (i, name)
        assert _rel(got, want) < 1e-10, i
        assert _rel(got, moved) > 1e-6  # and the step did move the weights


def test_unfused_state_round_trips_and_loads_into_torchvision():
    models = [create_model("resnet18") for _ in range(3)]
    fused = fuse_models(models).to(memory_format=torch.channels_last)  # as the engine holds it
    for i, m in enumerate(models):
        state = member_state_dict(fused, i)
        assert state.keys() == m.state_dict().keys()
        assert all(torch.equal(state[k], v) for k, v in m.state_dict().items())
    other = create_model("resnet18").state_dict()
    load_member_state_dict(fused, 1, other)
    assert all(torch.equal(member_state_dict(fused, 1)[k], v) for k, v in other.items())
    assert all(torch.equal(member_state_dict(fused, 2)[k], v) for k, v in models[2].state_dict().items())


def test_incompatible_runs_are_refused_before_anything_is_written(tiny_split, tmp_path):
    a, b = make_config(batch_size=16), make_config(batch_size=32, lr=1e-2)
    with pytest.raises(SpecError, match="batch_size is 16 vs 32"):
        run_train_group([a, b], [tiny_split, tiny_split], [tmp_path / "a", tmp_path / "b"])
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.fixture(scope="module")
def two_datasets(tmp_path_factory):
    """A Fashion-MNIST-like and an MNIST-like split of the same size (different images and classes)."""
    root = tmp_path_factory.mktemp("fused")
    out = {}
    for i, ds in enumerate(("fashion-mnist", "mnist")):
        folder = make_idx_folder(root / f"idx-{ds}", n_train=450, n_test=50, seed=10 + i)  # 100 test images
        out[ds] = root / ds
        run_data(ds, out[ds], source="idx", root=str(folder), seed=0, log=lambda *_: None)
    return out


@pytest.mark.slow  # 8 short trainings (4 fused members, 4 solo runs) in float64: about a minute on 2 cores
def test_short_run_accuracy_records_and_checkpoints(two_datasets, tmp_path, quiet, float64):
    """Two epochs of 8 steps, fused and solo, in float64 (exact to rounding on any CPU): each member's losses
    and test accuracy are its solo run's; its record and best.pt are those of a normal run."""
    configs = [
        make_config(optimizer="adam", batch_size=16, epochs=2, max_steps_per_epoch=8, **m) for m in MEMBERS
    ]
    splits = [two_datasets[c.dataset] for c in configs]
    outs = [tmp_path / "fused" / c.run_id for c in configs]
    recs = run_train_group(configs, splits, outs, log=quiet)
    solos = [run_train(c, splits[i], tmp_path / "solo" / c.run_id, log=quiet) for i, c in enumerate(configs)]
    for i, (c, rec, out) in enumerate(zip(configs, recs, outs, strict=True)):
        m, solo = rec["metrics"], solos[i]["metrics"]
        for fused_epoch, solo_epoch in zip(m["history"], solo["history"], strict=True):
            for key in ("train_loss", "val_loss"):  # stored as float32: 1e-6 is their rounding, not ours
                assert fused_epoch[key] == pytest.approx(solo_epoch[key], rel=1e-6), (i, key)
        # the same predictions but for a near-tie (one image of n_test) in the last digits
        assert abs(m["test_accuracy"] - solo["test_accuracy"]) <= 1.01 / m["n_test"], (i, m, solo)
        assert m["n_test"] >= 100  # so one image is at most one point
        on_disk = load_record(out)
        assert on_disk == json.loads(json.dumps(rec)) and on_disk["status"] == "ok"
        assert on_disk["run_id"] == c.run_id and on_disk["config"]["lr"] == c.lr
        assert m["engine"] == "fused" and m["time_shared"] is True and m["fused_members"] == 4
        assert sorted(m["fused_with"]) == sorted(r.run_id for r in configs if r is not c)
        assert len(m["history"]) == 2 and m["history"][0]["images"] == 8 * 16
        # the group's whole epochs (training and validation) beside its training steps, as its seconds
        assert m["train_wall_seconds"] == pytest.approx(
            sum(h["wall_seconds"] for h in m["history"]), abs=1e-3
        )
        assert m["train_wall_seconds"] >= m["train_seconds"]
        # the group's joules (shared, as its seconds), or why they were not measured
        assert m["energy"]["shared_by"] == 4
        assert len(m["energy"].get("cpu_joules", [])) == 2 or m["energy"]["not_measured"]["cpu"]
        assert len(m["confusion_matrix"]) == 10 and sum(map(sum, m["confusion_matrix"])) == m["n_test"]
        # best.pt loads into the plain torchvision model and reproduces the recorded accuracy
        model = create_model(c.model, stem=c.stem)
        model.load_state_dict(torch.load(out / "best.pt", weights_only=True))
        split = __import__("numpy").load(splits[i] / "split.npz")
        mean, std = NORMALIZATION[c.dataset]
        x = model_input(torch.from_numpy(split["x_test"]).unsqueeze(1), mean, std)
        model.eval()
        with torch.no_grad():
            acc = float(
                (model(x).argmax(1) == torch.from_numpy(split["y_test"].astype("int64"))).double().mean()
            )
        assert acc == pytest.approx(m["test_accuracy_best_checkpoint"], abs=1.01 / m["n_test"])


def test_bench_prints_timings_ratio_and_agreement(tmp_path, capsys):
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "bench" / "train_fused.py"
    spec = importlib.util.spec_from_file_location("train_fused_bench", path)
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # dataclasses look their module up there
    spec.loader.exec_module(bench)
    out = tmp_path / "fused.json"
    assert (
        bench.main(
            [
                "--device",
                "cpu",
                "--members",
                "2",
                "--batch-size",
                "4",
                "--steps",
                "1",
                "--warmup",
                "1",
                "--repeats",
                "1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report == json.loads(out.read_text())
    # the fusion is exact (float64, any CPU); the fp32 figures are the kernels' rounding, measured, no limit
    exact = report["agreement_fp64"]
    assert exact["first_loss_max_rel_diff"] < 1e-12 and exact["first_step_grad_max_rel_diff"] < 1e-10
    assert "float64" in exact["check"] and "float32" in report["agreement"]["check"]
    assert 0 <= report["first_loss_max_rel_diff"] < 1 and 0 <= report["first_step_grad_max_rel_diff"] < 1
    assert len(report["solo"]) == 2 and report["fused"]["grouped"]["images_per_second_aggregate"] > 0
    ratio = report["ratio"]["grouped_fused_over_solo_aggregate_throughput"]
    assert ratio == pytest.approx(
        report["fused"]["grouped"]["images_per_second_aggregate"]
        / report["solo_aggregate"]["images_per_second_aggregate"]
    )
    # the fused run's first training losses are the solo runs' (same batches, same weights), to the kernels'
    # fp32 rounding: a measured figure (float32 agreement depends on the CPU's kernels, see agreement_fp64)
    assert 0 <= report["ratio"]["grouped_first_train_loss_max_rel_diff_amp"] < 1e-3
    assert report["config"]["members_lr"] == [1e-3, 5e-4] and report["device"]["type"] == "cpu"
