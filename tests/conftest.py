"""Shared fixtures: tiny IDX datasets written by the tests themselves, and the real Fashion-MNIST folder;
the slow tier (``make check`` leaves it out). ``make test``/``make check`` share the tests out over two
pytest-xdist workers a module at a time (``--dist loadscope``), so a module's fixtures run once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dlbench.data.idx import write_idx

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def make_idx_folder(
    folder: Path, n_train: int = 300, n_test: int = 100, seed: int = 0, gz: bool = True
) -> Path:
    """Write a small, learnable MNIST-like dataset: each class is a bright bar at its own place."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for part, n in (("train", n_train), ("t10k", n_test)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        rng.shuffle(labels)
        images = rng.integers(0, 60, size=(n, 28, 28), dtype=np.uint8)
        for i, c in enumerate(labels):
            images[i, 2 + 2 * c : 5 + 2 * c, 4:24] = 255
        ext = ".gz" if gz else ""
        write_idx(folder / f"{part}-images-idx3-ubyte{ext}", images)
        write_idx(folder / f"{part}-labels-idx1-ubyte{ext}", labels)
    return folder


@pytest.fixture
def idx_folder(tmp_path) -> Path:
    return make_idx_folder(tmp_path / "tiny")


@pytest.fixture(scope="session")
def tiny_split(tmp_path_factory) -> Path:
    """A data-step output folder (split.npz, manifest.json, record.json) over 1,000 synthetic images."""
    from dlbench.data.step import run_data

    root = tmp_path_factory.mktemp("tinydata")
    folder = make_idx_folder(root / "idx", n_train=800, n_test=200)
    out = root / "split"
    run_data("fashion-mnist", out, source="idx", root=str(folder), seed=0, log=lambda *_: None)
    return out


@pytest.fixture(scope="session")
def fashion_dir() -> Path:
    if not (FASHION_DIR / "train-images-idx3-ubyte.gz").is_file():
        pytest.fail(f"{FASHION_DIR} is missing: `make data` installs Debian's dataset-fashion-mnist")
    return FASHION_DIR


# Modules that run a whole study or pipeline (marked slow: `make check` leaves them to `make test`).
SLOW_MODULES = {"tests/pipeline/test_local_run.py", "tests/report/test_reference_smoke.py"}
# Single tests that took about 4 s or more each on a 2-core VM (2026-12-04; `make check
# PYTEST_ARGS=--durations=40` lists the slowest): trainings of the deeper models, float64 fused steps, whole
# small studies, S3 restarts. Also slow, so `make check` stays within 3 minutes; `make test` runs them.
SLOW_TESTS = frozenset(
    {
        "tests/onnx/test_onnx.py::test_cli_prints_only_json_with_the_results",
        "tests/onnx/test_onnx.py::test_every_model_exports_with_parity[resnet34]",
        "tests/onnx/test_onnx.py::test_every_model_exports_with_parity[resnet50]",
        "tests/onnx/test_onnx.py::test_trained_checkpoint_is_what_gets_exported",
        "tests/pipeline/test_data_store.py::test_a_study_reads_its_data_from_s3_end_to_end",
        "tests/reliability/test_reliability.py::test_a_failed_onnx_rerun_leaves_the_good_result_and_writes_its_failure_beside_it",
        "tests/report/test_browser.py::test_every_figure_loads_in_the_browser",
        "tests/report/test_report.py::test_cli_damaged_record_is_one_line_and_keeps_the_old_report",
        "tests/report/test_report.py::test_cli_report",
        "tests/report/test_report.py::test_record_text_cannot_inject_html_or_urls",
        "tests/report/test_report.py::test_rerun_replaces_outputs_and_ignores_its_own_record",
        "tests/report/test_report.py::test_single_epoch_runs_get_no_convergence_curves",
        "tests/store/test_s3_faults.py::test_a_server_restart_mid_upload_is_waited_out_and_the_run_verifies",
        "tests/test_registries.py::test_a_study_of_an_rgb_folder_runs_end_to_end_with_its_report",
        "tests/test_registries.py::test_every_estimator_fits_on_every_cpu_backend[hist_gradient_boosting-sklearn]",
        "tests/test_registries.py::test_every_model_family_trains_two_steps_profiles_and_exports_with_parity[resnet18]",
        "tests/test_registries.py::test_every_model_family_trains_two_steps_profiles_and_exports_with_parity[resnet34]",
        "tests/test_registries.py::test_every_model_family_trains_two_steps_profiles_and_exports_with_parity[resnet50]",
        "tests/test_registries.py::test_train_onnx_and_profile_take_an_rgb_splits_channels_size_and_classes",
        "tests/test_study.py::test_study_folders_are_never_mixed_or_overwritten_silently",
        "tests/train/test_bench.py::test_bench_prints_both_engines_and_the_ratio",
        "tests/train/test_cli.py::test_a_tiny_run",
        "tests/train/test_cli.py::test_a_tiny_run_at_the_reference_input",
        "tests/train/test_cli.py::test_diverging_run_exits_1_with_one_line",
        "tests/train/test_engines.py::test_deeper_models_fit_a_batch[resnet34]",
        "tests/train/test_engines.py::test_engines_agree_at_the_reference_input",
        "tests/train/test_engines.py::test_engines_same_first_losses",
        "tests/train/test_engines.py::test_resnet18_loss_falls_over_fresh_batches",
        "tests/train/test_fused.py::test_bench_prints_timings_ratio_and_agreement",
        "tests/train/test_fused.py::test_members_match_their_solo_runs_in_the_first_step[adam]",
        "tests/train/test_fused.py::test_members_match_their_solo_runs_in_the_first_step[sgd]",
        "tests/train/test_fused.py::test_unfused_state_round_trips_and_loads_into_torchvision",
        "tests/train/test_run_train.py::test_record_holds_the_agreed_metrics",
        "tests/train/test_run_train.py::test_resume_after_one_epoch_equals_an_uninterrupted_run",
        "tests/train/test_run_train.py::test_resume_of_a_checkpoint_written_before_the_input_fields",
        "tests/train/test_engines.py::test_deeper_models_fit_a_batch[resnet50]",
        "tests/train/test_run_train.py::test_nan_loss_stops_with_epoch_and_step_and_keeps_earlier_epochs",
        "tests/train/test_run_train.py::test_resume_after_an_interruption",
        "tests/train/test_engines.py::test_warmup_then_restore_leaves_no_trace[adam-0.001]",
    }
)


# The suite's long poles, longest first: handed out before everything else (the Makefile runs xdist with
# --no-loadscope-reorder, so modules go out in this order), so that neither worker is left with a long
# module at the end: the reference smoke study on one worker; the fused tests, then the container tests (by
# then the image build `make test` started in the background is done) and the rest on the other.
FIRST_MODULES = (
    "tests/report/test_reference_smoke.py",
    "tests/train/test_fused.py",
    "tests/images/test_container.py",
    "tests/pipeline/test_local_run.py",
)


def _module_order(item) -> int:
    module = item.nodeid.split("::", 1)[0]
    return FIRST_MODULES.index(module) - len(FIRST_MODULES) if module in FIRST_MODULES else 0


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid.split("::", 1)[0] in SLOW_MODULES or item.nodeid in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
    items.sort(key=_module_order)  # stable: within a module and among the rest, collection order
