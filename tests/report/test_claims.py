"""The study's claims tested against our records: the verdict follows the numbers, both ways, and the
seed repeats' intervals decide when an effect is inside the noise."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from dlbench.report.claims import claim_verdicts, judge_one, verdict_word
from dlbench.report.collect import Records
from dlbench.report.study_tables import comparison
from dlbench.report.uncertainty import Estimate, estimate
from dlbench.spec import TrainConfig
from tests.report.conftest import T1_BASE, train_record

# Table 2's four pairs: (dataset, model, optimizer as the study labels the rows), batch 16, lr 1e-3
TABLE2 = [
    ("mnist", "resnet18", "sgd"),
    ("mnist", "resnet50", "sgd"),
    ("fashion-mnist", "resnet18", "adam"),
    ("fashion-mnist", "resnet50", "adam"),
]


def claim_row(root: Path, key: str) -> dict:
    frame = claim_verdicts(comparison(Records.load(root)))
    [row] = frame[frame["key"] == key].to_dict("records")
    return row


def write_epoch_runs(root: Path, gain_pp: float, noise_pp: list[float]) -> None:
    """Table 2's runs, once per seed: 4 epochs at a base accuracy, 10 epochs ``gain_pp`` higher, each seed's
    10-epoch run off by ``noise_pp[seed]``."""
    for ds, model, opt in TABLE2:
        base = 0.97 if ds == "mnist" else 0.9
        for seed, noise in enumerate(noise_pp):
            for epochs, acc in ((4, base), (10, base + (gain_pp + noise) / 100)):
                cfg = TrainConfig(
                    dataset=ds,
                    model=model,
                    batch_size=16,
                    optimizer=opt,
                    lr=1e-3,
                    epochs=epochs,
                    seed=seed,
                    **T1_BASE,
                )
                train_record(root, cfg, acc, 100.0 * epochs, seed=seed)


@pytest.mark.parametrize(
    "gain, noise, verdict",
    [
        (0.4, [0.0, 0.02, -0.02], "holds"),  # inside 0.3-0.5, tight repeats
        (1.5, [0.0, 0.02, -0.02], "does not hold"),  # the study's own Fashion-MNIST gains are this size
        (0.3, [0.0, 1.0, -1.0], "not resolved"),  # the seeds scatter by a point: 0.3 is inside the noise
    ],
)
def test_the_10_epoch_claim_follows_the_numbers_of_the_records(tmp_path, gain, noise, verdict):
    write_epoch_runs(tmp_path, gain, noise)
    row = claim_row(tmp_path, "epochs_gain")
    assert row["verdict"] == verdict
    # the study's own Table 2 gives +0.17 to +1.68 points: it does not hold on its numbers, whatever ours say
    assert row["study_verdict"] == "does not hold" and "+1.68 pp" in row["study_numbers_show"]
    assert "(n=3)" not in row["ours_show"] and "±" in row["ours_show"]  # every pair has its interval
    assert len(row["runs"].split()) == 4 * 2 * 3


def write_pin_runs(root: Path, speedup: float) -> None:
    for ds in ("mnist", "fashion-mnist"):
        for model in ("resnet18", "resnet50"):
            for pin, secs in ((True, 100.0), (False, 100.0 * speedup)):
                cfg = TrainConfig(
                    dataset=ds,
                    model=model,
                    batch_size=16,
                    optimizer="adam",
                    lr=1e-3,
                    epochs=4,
                    **{**T1_BASE, "pin_memory": pin},
                )
                train_record(root, cfg, 0.95, secs)


@pytest.mark.parametrize("speedup, verdict", [(1.8, "holds"), (1.1, "does not hold")])
def test_the_pin_memory_claim_on_single_runs_says_it_has_no_interval(tmp_path, speedup, verdict):
    write_pin_runs(tmp_path, speedup)
    row = claim_row(tmp_path, "pin_memory")
    assert row["verdict"] == verdict
    assert f"Fashion-MNIST ResNet-50 {speedup:.2f}x" in row["ours_show"]
    assert "one run each, no interval" in row["ours_show"]
    assert row["study_verdict"] == "does not hold" and "1.21x" in row["study_numbers_show"]


def test_a_smoke_run_draws_no_verdict_from_its_numbers(tmp_path):
    write_pin_runs(tmp_path, 1.8)
    frame = claim_verdicts(comparison(Records.load(tmp_path)), smoke=True)
    row = frame[frame["key"] == "pin_memory"].iloc[0]
    assert row["verdict"].startswith("not testable (smoke run") and row["ours_show"].startswith("SMOKE")


def test_claims_without_runs_are_not_testable_and_the_studys_contradictions_are_listed(tmp_path):
    write_pin_runs(tmp_path, 1.8)
    frame = claim_verdicts(comparison(Records.load(tmp_path)))
    assert {verdict_word(v) for v in frame["verdict"]} <= {
        "holds",
        "does not hold",
        "not resolved",
        "not testable",
    }
    gpu = frame[frame["key"] == "gpu_speedup"].iloc[0]
    assert gpu["verdict"].startswith("not testable (no comparable runs")
    # the study's Table 4 GPU times are 1.45x-2.18x its Table 2 times for the same stated settings
    t42 = frame[frame["key"] == "table4_vs_table2"].iloc[0]
    assert t42["verdict"] == "does not hold" and "2.18x" in t42["study_numbers_show"]
    # the results list and the paper disagree about Fashion-MNIST ResNet-18 Adam (91.57 % vs 91.43 %)
    said = " ".join(frame[frame["key"] == "consistency"]["study_numbers_show"])
    assert "91.57 % / 147.15 s (Results list) vs 91.43 %" in said


def test_the_report_writes_claims_csv_and_the_summary_opens_the_page(report):
    with open(report / "tables" / "claims.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {"claim", "study_says", "study_numbers_show", "ours_show", "verdict"} <= set(rows[0])
    assert len(rows) >= 8 and all(r["verdict"] for r in rows)
    html = (report / "report.html").read_text()
    first = html.index('id="summary"')
    assert first < html.index('id="claims"') < html.index('id="study-tables"')
    assert html.index('id="best_models"') < html.index('id="claims"')


def test_interval_and_verdict_rules():
    e = estimate([1.0, 2.0, 3.0])
    assert e.mean == pytest.approx(2.0) and e.half == pytest.approx(4.302653 / 3**0.5, rel=1e-5)
    assert estimate([5.0]).half is None and estimate([]) is None
    assert judge_one(Estimate(0.4, 3, 0.05), 0.3, 0.5, 0.0) == "holds"
    assert judge_one(Estimate(0.8, 3, 0.05), 0.3, 0.5, 0.0) == "does not hold"
    assert judge_one(Estimate(0.3, 3, 0.5), 0.3, 0.5, 0.0) == "not resolved"
