"""Seed repeats at a published cell: the table shows their mean and 95 % interval, the CSV counts them; the
banner's precision comes from the records; ratios keep their digits."""

from __future__ import annotations

import pytest

from dlbench.report.collect import Records
from dlbench.report.document import fmt
from dlbench.report.step import precision_line
from dlbench.report.study_tables import accuracy_grid, comparison
from dlbench.spec import TrainConfig
from tests.report.conftest import T1_BASE, train_record

CELL = dict(dataset="mnist", model="resnet18", batch_size=16, optimizer="sgd", lr=1e-3, epochs=4, **T1_BASE)


def test_a_cells_repeats_show_their_mean_and_interval(tmp_path):
    for seed, acc in enumerate((0.990, 0.992, 0.994)):
        train_record(tmp_path, TrainConfig(**CELL, seed=seed), acc, 150.0 + seed, seed=seed)
    C = comparison(Records.load(tmp_path))
    row = C[(C["table"] == "table1") & C["run_id"].notna()].iloc[0]
    assert row["ours_accuracy_pct"] == pytest.approx(99.2) and row["ours_repeats"] == 3
    # sd 0.2 points, t(2) = 4.303: half-width 0.2 x 4.303 / sqrt(3)
    assert row["ours_accuracy_ci95_pp"] == pytest.approx(0.2 * 4.302653 / 3**0.5, rel=1e-4)
    assert len(row["ours_runs"].split()) == 3 and not row["also_matching"]  # repeats, not other settings
    item = accuracy_grid(C)
    cell = item.view.loc[("16", "SGD", "0.001"), ("MNIST", "ResNet-18", "ours %")]
    assert cell == "99.20 ± 0.50"
    assert any("95 % interval" in n for n in item.notes)
    assert {"ours_repeats", "ours_accuracy_ci95_pp", "our_precision", "our_input"} <= set(item.frame.columns)


def test_one_run_has_no_interval(tmp_path):
    train_record(tmp_path, TrainConfig(**CELL), 0.99, 150.0)
    C = comparison(Records.load(tmp_path))
    row = C[(C["table"] == "table1") & C["run_id"].notna()].iloc[0]
    assert row["ours_repeats"] == 1 and row["ours_accuracy_ci95_pp"] is None
    assert accuracy_grid(C).view.loc[("16", "SGD", "0.001"), ("MNIST", "ResNet-18", "ours %")] == "99.00"


def test_the_precision_line_comes_from_the_records(tmp_path):
    train_record(tmp_path, TrainConfig(**CELL), 0.99, 150.0)
    train_record(tmp_path, TrainConfig(**{**CELL, "engine": "resident", "amp": "bf16"}), 0.99, 50.0)
    line = precision_line(Records.load(tmp_path))
    assert "bf16 autocast on the GPU: 1 run(s)" in line and "fp16 autocast on the GPU: 1 run(s)" in line


def test_ratios_keep_their_digits():
    assert fmt(0.005, "x") == "0.005x" and fmt(0.0123, "x") == "0.012x" and fmt(3.849, "x") == "3.85x"
