"""Reliability round three (issue 23), one table per class, through the real command line: every bad input is
one line on stderr, exit 2, no traceback, and nothing changed in the inputs, the store or the output area.

Class 1 outputs overlapping their inputs or store; class 2 files dlbench reads that do not have their shape;
class 3 environment variables; class 4 data that cannot be right; class 5 specs above the run limit; class 6
compile-time refusals; class 9 messages. The behaviours that are not a refusal (a failed rerun beside a good
result, --overwrite, --resume, a partial fetch, linear expansion) are tests of their own below.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from dlbench.data.idx import write_idx
from dlbench.store import write_manifest
from tests.conftest import make_idx_folder
from tests.test_bad_input import check_refused, run_cli, tree_hash

REPO = Path(__file__).resolve().parents[2]
CALIBRATION = REPO / "docs" / "cpu-2026-11-30" / "calibration_quick_cpu.json"
SHA = "0" * 64


def _record(step="train", status="ok", **changes) -> dict:
    rec = {
        "step": step,
        "run_id": f"{step}-abc",
        "config": {"dataset": "fashion-mnist"},
        "status": status,
        "metrics": {"test_accuracy": 0.5},
        "outputs": {},
    }
    rec.update(changes)
    return rec


def _put(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return path


def _stored_run(store: Path, name: str = "R1") -> Path:
    run = store / name
    _put(run / "spec.yaml", "name: t\n")
    _put(run / "report" / "record.json", _record("report"))
    _put(run / "report" / "report.html", "<html></html>\n")
    _put(run / "train" / "a" / "record.json", _record())
    write_manifest(run)
    return run


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Shared inputs, read-only for the table: IDX folders, a split, stores, records, specs, calibrations."""
    return build_inputs(tmp_path_factory.mktemp("reliability"))


def build_inputs(root: Path) -> Path:
    """The inputs of the table below ``root`` (also what tests/reliability/sweep.py sweeps with)."""
    from dlbench.data.step import run_data

    idx = make_idx_folder(root / "idx", n_train=800, n_test=200)
    run_data("fashion-mnist", root / "split", source="idx", root=str(idx), seed=0, log=lambda *_: None)
    # another train run's folder (no last.pt): --resume onto it must not start over there
    _put(
        root / "other-run" / "record.json",
        _record(run_id="resnet18-someoneelse", outputs={"c": {"path": "best.pt"}}),
    )
    (root / "other-run" / "best.pt").write_bytes(b"their weights")
    # a checkpoint folder for onnx --out
    _put(root / "ckpt" / "record.json", _record(outputs={"checkpoint": {"path": "best.pt"}}))
    (root / "ckpt" / "best.pt").write_bytes(b"weights")

    # class 4: IDX files of the wrong element type, labels missing a class, a class too small for every part
    int8 = shutil.copytree(idx, root / "idx-int8")
    images = np.random.default_rng(0).integers(-128, 127, size=(800, 28, 28)).astype(np.int8)
    write_idx(int8 / "train-images-idx3-ubyte.gz", images)
    nine = shutil.copytree(idx, root / "idx-nine")
    for part, n in (("train", 800), ("t10k", 200)):
        write_idx(nine / f"{part}-labels-idx1-ubyte.gz", (np.arange(n) % 9).astype(np.uint8))
    tiny_class = shutil.copytree(idx, root / "idx-tiny-class")
    for part, n in (("train", 800), ("t10k", 200)):
        labels = (np.arange(n) % 9).astype(np.uint8)
        if part == "train":
            labels[:2] = 9  # class 9: two images in all, three parts to fill
        write_idx(tiny_class / f"{part}-labels-idx1-ubyte.gz", labels)

    # stores: a good run, and manifests that are not manifests
    _stored_run(root / "store")
    for name, manifest in {
        "st-list": [],
        "st-nosha": {"format": "dlbench-manifest/1", "files": [{"path": "spec.yaml", "bytes": 8}]},
        "st-dotdot": {
            "format": "dlbench-manifest/1",
            "files": [{"path": "../outside.txt", "bytes": 1, "sha256": SHA}],
        },
        "st-files-str": {"format": "dlbench-manifest/1", "files": "all of them"},
    }.items():
        _put(root / name / "R" / "MANIFEST.json", manifest)

    # records that are not records
    _put(root / "rec-metrics-str" / "t" / "record.json", _record(metrics="high"))
    _put(root / "rec-config-str" / "t" / "record.json", _record(config="resnet18"))
    (root / "rec-dir" / "t" / "record.json").mkdir(parents=True)
    _put(root / "rec-acc5" / "t" / "record.json", _record(metrics={"test_accuracy": 5.0}))
    _put(root / "rec-status" / "t" / "record.json", _record(status="great"))
    _put(root / "rec-list" / "t" / "record.json", [1, 2])

    # a data-step manifest that names no known dataset
    shutil.copytree(root / "split", root / "split-bad-manifest")
    m = json.loads((root / "split" / "manifest.json").read_text())
    _put(root / "split-bad-manifest" / "manifest.json", {**m, "dataset": ["fashion-mnist"]})

    # calibrations with a zero and a text step time
    cal = json.loads(CALIBRATION.read_text())
    first = next(iter(cal["shapes"]))
    for name, value in (("cal-zero", 0), ("cal-text", "fast"), ("cal-negative", -1.0)):
        bad = copy.deepcopy(cal)
        bad["shapes"][first]["seconds_per_step"] = value
        _put(root / f"{name}.json", bad)

    # study folders whose spec.yaml is damaged
    _put(root / "st-yaml" / "spec.yaml", "name: [unclosed\n")
    _put(root / "st-yaml-list" / "spec.yaml", "- a\n- b\n")
    _put(root / "st-yaml-noname" / "spec.yaml", "seed: 0\n")

    # specs: one whose data.root lies inside the study folder it writes, one above the run limit
    good = {
        "name": "t",
        "data": {"datasets": ["fashion-mnist"], "source": "idx", "root": str(idx)},
        "train": {"grids": [{"models": ["resnet18"]}]},
    }
    inside = copy.deepcopy(good)
    inside["data"]["root"] = str(root / "study-holding-data" / "idx")
    shutil.copytree(idx, root / "study-holding-data" / "idx")
    _put(root / "study-holding-data" / "spec.yaml", yaml.safe_dump(inside))
    _put(root / "inside.yaml", yaml.safe_dump(inside))
    huge = copy.deepcopy(good)
    huge["train"]["grids"] = [{"models": ["resnet18"], "lr": [1e-3 + i * 1e-6 for i in range(101)]}]
    huge["train"]["grids"][0]["batch_size"] = list(range(1, 101))
    _put(root / "huge.yaml", yaml.safe_dump(huge))
    s3root = copy.deepcopy(good)
    s3root["data"]["root"] = "s3://Bad_Bucket/datasets"
    _put(root / "s3-bad-bucket.yaml", yaml.safe_dump(s3root))
    (root / "a-file").write_text("not a folder\n")

    # kfp.local work folders (dlbench publish): a task's record that is not a record; a folder as index.json
    for name in ("kfp-bad-record", "kfp-index-dir"):
        bundle = root / name / "RUN" / "report-task" / "study"
        _put(bundle / "spec.yaml", "name: t\n")
        _put(bundle / "report" / "record.json", _record("report"))
        write_manifest(bundle)
        _put(root / name / "RUN" / "train-task" / "out" / "record.json", _record())
    bad = _record("svm", config="linear")
    _put(root / "kfp-bad-record" / "RUN" / "svm-task" / "out" / "record.json", bad)
    (root / "kfp-index-dir" / "RUN" / "index.json").mkdir()
    # a pickle that is no checkpoint (torch warns of its protocol before refusing it): as best.pt and last.pt
    import pickle

    for name in ("pickle-ckpt", "pickle-last"):
        _put(root / name / "record.json", _record(outputs={}))
        (root / name / ("best.pt" if name == "pickle-ckpt" else "last.pt")).write_bytes(
            pickle.dumps({"weights": {1, 2}}, protocol=4)
        )
    # a study folder whose index.json is a folder (the study would fail writing it, at its end)
    _put(root / "st-index-dir" / "spec.yaml", "name: quick\n")
    (root / "st-index-dir" / "index.json").mkdir()
    (root / "loop").symlink_to("loop")
    return root


# (id, arguments, extra environment, expected text in the one line); {I} the inputs, {O} the case's own area
CASES = [
    # ------------------------------------------------------------ class 1: output overlaps input or store
    (
        "data-out-is-root",
        "data --dataset fashion-mnist --root {I}/idx --out {I}/idx",
        {},
        "same folder as --root",
    ),
    (
        "data-out-inside-root",
        "data --dataset fashion-mnist --root {I}/idx --out {I}/idx/split",
        {},
        "lies inside --root",
    ),
    (
        "data-out-holds-root",
        "data --dataset fashion-mnist --root {I}/study-holding-data/idx --out {I}/study-holding-data",
        {},
        "holds --root",
    ),
    ("svm-out-inside-split", "svm --split {I}/split --out {I}/split/svm", {}, "lies inside --split"),
    ("train-out-holds-split", "train --split {I}/split --out {I}", {}, "holds --split"),
    (
        "onnx-out-is-checkpoint-folder",
        "onnx --model resnet18 --checkpoint {I}/ckpt/best.pt --out {I}/ckpt",
        {},
        "same folder as the --checkpoint folder",
    ),
    (
        "report-out-is-records",
        "report --records {I}/rec-acc5 --out {I}/rec-acc5 --overwrite",
        {},
        "same folder as --records",
    ),
    ("report-out-holds-records", "report --records {I}/rec-acc5/t --out {I}/rec-acc5", {}, "holds --records"),
    (
        "study-out-holds-data-root",
        "study --spec {I}/inside.yaml --out {I}/study-holding-data --overwrite",
        {},
        "holds data.root",
    ),
    ("fetch-to-inside-store", "fetch R1 --store {I}/store --to {I}/store/R1", {}, "lies inside --store"),
    ("fetch-to-is-store", "fetch R1 --store {I}/store --to {I}/store", {}, "same folder as --store"),
    (
        "run-work-is-store",
        "run --local --spec quick --work {O}/w --store {O}/w",
        {},
        "--work {O}/w is the same folder as --store",
    ),
    (
        "run-work-inside-store",
        "run --local --spec quick --work {O}/s/w --store {O}/s",
        {},
        "lies inside --store",
    ),
    ("publish-store-is-work", "publish earlier --work {O} --store {O}", {}, "same folder as --work"),
    (
        "publish-store-inside-work",
        "publish earlier --work {O} --store {O}/earlier/s",
        {},
        "lies inside --work",
    ),
    # ------------------------------------------------------------ class 7: --resume onto another run
    (
        "train-resume-onto-another-run",
        "train --split {I}/split --out {I}/other-run --resume --max-steps-per-epoch 1",
        {},
        "holds another run (resnet18-someoneelse) and no last.pt",
    ),
    # ------------------------------------------------------------ class 2: files that do not have their shape
    (
        "fetch-manifest-list",
        "fetch R --store {I}/st-list --to {O}/f",
        {},
        "a JSON a list where an object must be",
    ),
    (
        "fetch-manifest-no-sha",
        "fetch R --store {I}/st-nosha --to {O}/f",
        {},
        "field files.0.sha256: Field required",
    ),
    (
        "fetch-manifest-dotdot",
        "fetch R --store {I}/st-dotdot --to {O}/f",
        {},
        "must be a relative path inside",
    ),
    ("fetch-manifest-files-str", "fetch R --store {I}/st-files-str --to {O}/f", {}, "field files"),
    (
        "data-store-manifest-list",
        "data --dataset fashion-mnist --root file://{I}/st-list/R --out {O}/d",
        {},
        "a JSON a list where an object must be",
    ),
    (
        "report-metrics-str",
        "report --records {I}/rec-metrics-str --out {O}/r",
        {},
        "field metrics: Input should be a valid dictionary (got a string)",
    ),
    (
        "report-config-str",
        "report --records {I}/rec-config-str --out {O}/r",
        {},
        "field config: Input should be a valid dictionary",
    ),
    ("report-record-is-dir", "report --records {I}/rec-dir --out {O}/r", {}, "a folder where a file must be"),
    (
        "report-accuracy-5",
        "report --records {I}/rec-acc5 --out {O}/r",
        {},
        "test_accuracy = 5.0 is outside 0 to 1",
    ),
    ("report-status-unknown", "report --records {I}/rec-status --out {O}/r", {}, "field status"),
    ("report-record-list", "report --records {I}/rec-list --out {O}/r", {}, "a JSON a list where an object"),
    (
        "svm-manifest-dataset-list",
        "svm --split {I}/split-bad-manifest --out {O}/s",
        {},
        "manifest.json: field dataset",
    ),
    (
        "estimate-zero-step",
        "spec expand quick --estimate --calibration {I}/cal-zero.json",
        {},
        "seconds_per_step must be > 0 seconds (got 0)",
    ),
    (
        "estimate-text-step",
        "spec expand quick --estimate --calibration {I}/cal-text.json",
        {},
        "seconds_per_step must be a number of seconds (got a string)",
    ),
    (
        "estimate-negative-step",
        "spec expand quick --estimate --calibration {I}/cal-negative.json",
        {},
        "must be > 0 seconds",
    ),
    (
        "study-spec-yaml-damaged",
        "study --spec quick --out {I}/st-yaml --resume",
        {},
        "spec.yaml is damaged (not valid YAML",
    ),
    ("study-spec-yaml-list", "study --spec quick --out {I}/st-yaml-list", {}, "damaged spec.yaml"),
    (
        "study-spec-yaml-noname",
        "study --spec quick --out {I}/st-yaml-noname",
        {},
        "field name: Field required",
    ),
    # ------------------------------------------------------------ class 3: environment variables
    (
        "env-progress-abc",
        "spec validate quick",
        {"DLBENCH_PROGRESS_INTERVAL": "abc"},
        "DLBENCH_PROGRESS_INTERVAL='abc'",
    ),
    ("env-progress-zero", "spec validate quick", {"DLBENCH_PROGRESS_INTERVAL": "0"}, "must be a number > 0"),
    ("env-region", "spec validate quick", {"DLBENCH_S3_REGION": "mars north 1"}, "is not a region name"),
    ("env-log-level", "spec validate quick", {"DLBENCH_LOG_LEVEL": "loud"}, "DLBENCH_LOG_LEVEL='loud'"),
    (
        "env-token-crlf",
        "spec validate quick",
        {"KFP_TOKEN": "abc\r\nX-Evil: 1"},
        "KFP_TOKEN holds a line break",
    ),
    ("env-cookies-lf", "spec validate quick", {"KFP_COOKIES": "a=b\nc"}, "KFP_COOKIES holds a line break"),
    (
        "env-endpoint-port",
        "spec validate quick",
        {"DLBENCH_S3_ENDPOINT": "http://127.0.0.1:70000"},
        "port 1 to 65535",
    ),
    ("env-kfp-host-port", "spec validate quick", {"KFP_HOST": "http://127.0.0.1:99999"}, "KFP_HOST="),
    ("env-retries", "spec validate quick", {"DLBENCH_S3_RETRIES": "many"}, "DLBENCH_S3_RETRIES='many'"),
    ("env-secure", "spec validate quick", {"DLBENCH_S3_SECURE": "maybe"}, "DLBENCH_S3_SECURE='maybe'"),
    ("env-max-runs", "spec validate quick", {"DLBENCH_MAX_RUNS": "0"}, "DLBENCH_MAX_RUNS='0'"),
    ("env-store-bucket", "runs", {"DLBENCH_STORE": "s3://A_B/runs"}, "bucket name 'A_B' is not valid"),
    # ------------------------------------------------------------ class 4: data that cannot be right
    (
        "data-idx-int8",
        "data --dataset fashion-mnist --root {I}/idx-int8 --out {O}/d",
        {},
        "element type 0x09 (int8), not unsigned bytes",
    ),
    (
        "data-missing-class",
        "data --dataset fashion-mnist --root {I}/idx-nine --out {O}/d",
        {},
        "has no images of class 9",
    ),
    (
        "data-class-too-small-for-parts",
        "data --dataset fashion-mnist --root {I}/idx-tiny-class --out {O}/d",
        {},
        "would hold no image of class 9",
    ),
    (
        "svm-n-train-below-classes",
        "svm --split {I}/split --out {O}/s --n-train 5",
        {},
        "fewer than the 10 classes",
    ),
    # ------------------------------------------------------------ class 5: the run limit
    (
        "spec-above-run-limit",
        "spec validate {I}/huge.yaml",
        {},
        "asks for 10,101 runs, more than the limit of 10,000",
    ),
    (
        "spec-above-lowered-limit",
        "spec validate quick",
        {"DLBENCH_MAX_RUNS": "2"},
        "more than the limit of 2",
    ),
    ("compile-above-run-limit", "compile --spec {I}/huge.yaml --out {O}/p.yaml", {}, "more than the limit"),
    # ------------------------------------------------------------ class 6: compile-time refusals
    (
        "compile-bad-tag",
        "compile --spec quick --out {O}/p.yaml",
        {"DLBENCH_IMAGE_TAG": "bad tag!"},
        "is not a valid tag",
    ),
    (
        "compile-bad-registry",
        "compile --spec quick --out {O}/p.yaml",
        {"DLBENCH_REGISTRY": "Bad Registry/x"},
        "DLBENCH_REGISTRY='Bad Registry/x': not host[:port]/path",
    ),
    ("compile-out-empty", "compile --spec quick --out=", {}, "--out '': not a file name"),
    (
        "compile-publish-bad-bucket",
        "compile --spec quick --out {O}/p.yaml --publish-to s3://Bad_B/x",
        {},
        "bucket name 'Bad_B' is not valid",
    ),
    (
        "compile-publish-http",
        "compile --spec quick --out {O}/p.yaml --publish-to http://host/x",
        {},
        "scheme 'http' is not s3:// or file://",
    ),
    (
        "compile-publish-empty",
        "compile --spec quick --out {O}/p.yaml --publish-to=",
        {},
        "not a store location",
    ),
    (
        "compile-s3-root-bad-bucket",
        "compile --spec {I}/s3-bad-bucket.yaml --out {O}/p.yaml",
        {},
        "data.root 's3://Bad_Bucket/datasets': bucket name",
    ),
    (
        "submit-publish-bad-bucket",
        "submit --host http://127.0.0.1:9 --publish-to s3://Bad_B/x",
        {},
        "bucket name 'Bad_B' is not valid",
    ),
    (
        "submit-host-port",
        "submit --host http://127.0.0.1:70000",
        {},
        "port that is not a number from 1 to 65535",
    ),
    (
        "publish-record-config-str",
        "publish RUN --work {I}/kfp-bad-record --store {O}/st",
        {},
        "svm-task/out/record.json: field config",
    ),
    (
        "publish-index-is-folder",
        "publish RUN --work {I}/kfp-index-dir --store {O}/st",
        {},
        "RUN/index.json: a folder where dlbench writes its index.json",
    ),
    (
        "study-index-is-folder",
        "study --spec quick --out {I}/st-index-dir --resume",
        {},
        "st-index-dir/index.json: a folder where dlbench writes its index.json",
    ),
    (
        "onnx-checkpoint-pickle",
        "onnx --model resnet18 --checkpoint {I}/pickle-ckpt/best.pt --out {O}/o",
        {},
        "it holds more than tensors, or is not a PyTorch file",
    ),
    (
        "train-resume-pickle-last",
        "train --split {I}/split --out {I}/pickle-last --resume --max-steps-per-epoch 1",
        {},
        "last.pt: not a readable checkpoint (it holds more than tensors",
    ),
    (
        "spec-compare-without-estimate",
        "spec expand quick --compare {I}/rec-acc5",
        {},
        "--compare goes with --estimate or --calibrate",
    ),
    ("spec-device-without-estimate", "spec expand quick --device cpu", {}, "--device goes with --estimate"),
    ("spec-compare-empty", "spec expand quick --estimate --compare=", {}, "--compare '': empty path"),
    # ------------------------------------------------------------ class 3 (the edges' variables)
    ("env-tag-any-command", "spec validate quick", {"DLBENCH_IMAGE_TAG": "bad tag!"}, "DLBENCH_IMAGE_TAG="),
    ("env-registry-port", "runs {I}", {"DLBENCH_REGISTRY": "reg:99999/x"}, "port that is not a number"),
    (
        "env-insecure-registries",
        "compile --spec quick --out {O}/p.yaml",
        {"DLBENCH_INSECURE_REGISTRIES": "good:5000,bad host"},
        "DLBENCH_INSECURE_REGISTRIES='good:5000,bad host': 'bad host' is not host[:port]",
    ),
    (
        "env-s3-key-lf",
        "fetch R1 --store {I}/store --to {O}/f",
        {"AWS_SECRET_ACCESS_KEY": "abc\ndef"},
        "AWS_SECRET_ACCESS_KEY holds a line break",
    ),
    (
        "env-store-bucket-publish",
        "publish earlier --work {O}",
        {"DLBENCH_STORE": "s3://x/runs"},
        "bucket name 'x' is not valid",
    ),
    # ------------------------------------------------------------ class 9: messages that say what is wrong
    ("runs-file", "runs {I}/a-file", {}, "a-file: a file, not a folder"),
    ("runs-empty", "runs ", {}, "STORE_OR_FOLDER '': empty path"),
    ("publish-in-dot", "publish nope --work .", {}, "no run 'nope' in . ("),
    # an input folder given as a file, a missing path or a link loop: said as such, not "no run"
    (
        "train-split-file",
        "train --split {I}/a-file --out {O}/t",
        {},
        "--split {I}/a-file: a file, not a folder",
    ),
    ("classical-split-loop", "classical --split {I}/loop --out {O}/c", {}, "a symlink that leads nowhere"),
    (
        "fetch-store-file",
        "fetch R1 --store {I}/a-file --to {O}/f",
        {},
        "--store {I}/a-file: a file, not a folder",
    ),
    ("fetch-store-missing", "fetch R1 --store {I}/nope --to {O}/f", {}, "--store {I}/nope: folder not found"),
    (
        "publish-work-file",
        "publish R --work {I}/a-file --store {O}/s",
        {},
        "--work {I}/a-file: a file, not a",
    ),
    (
        "publish-work-missing",
        "publish R --work {I}/nope --store {O}/s",
        {},
        "--work {I}/nope: folder not found",
    ),
    ("runs-loop", "runs {I}/loop", {}, "loop: a symlink that leads nowhere"),
]


@pytest.mark.parametrize("case, template, env, expect", CASES, ids=[c[0] for c in CASES])
def test_refused_in_one_line_and_nothing_changed(world, tmp_path, case, template, env, expect):
    work = tmp_path / "work"
    earlier = work / "earlier"
    earlier.mkdir(parents=True)
    (earlier / "record.json").write_text('{"status": "ok"}\n')
    (earlier / "notes.txt").write_text("mine\n")
    args = [a.replace("{I}", str(world)).replace("{O}", str(work)) for a in template.split(" ")]
    before = (tree_hash(work), tree_hash(world))
    result = run_cli(args, cwd=work, env=env)
    check_refused(result, expect.replace("{O}", str(work)).replace("{I}", str(world)))
    assert (tree_hash(work), tree_hash(world)) == before


def test_every_class_and_command_has_cases():
    commands = {c[1].split(" ")[0] for c in CASES}
    assert commands >= {
        "data",
        "svm",
        "train",
        "onnx",
        "report",
        "study",
        "fetch",
        "run",
        "publish",
        "compile",
    }
    assert len(CASES) >= 60


# ---------------------------------------------------------------------------------------------- class 1


def test_overwrite_removes_only_what_dlbench_wrote(tmp_path):
    """study --overwrite (clear_study): records, the outputs they list and the layout's files go; a file the
    user put there stays, and so does a run folder without a record."""
    from dlbench.layout import clear_study

    root = tmp_path / "study"
    _put(root / "spec.yaml", "name: t\n")
    _put(root / "index.json", {"runs": {}})
    run = root / "train" / "r1"
    _put(run / "record.json", _record(outputs={"checkpoint": {"path": "best.pt"}}))
    (run / "best.pt").write_bytes(b"w")
    (run / "last.pt").write_bytes(b"w")
    _put(
        root / "report" / "record.json",
        _record("report", outputs={"t": {"path": str(root / "report/t.csv")}}),
    )
    (root / "report" / "t.csv").write_text("a\n")
    _put(root / "notes.md", "my notes\n")
    _put(run / "my-plot.png", "png")
    _put(root / "train" / "handmade" / "best.pt", "not dlbench's")
    kept = clear_study(root)
    assert sorted(p.relative_to(root).as_posix() for p in kept) == [
        "notes.md",
        "train/handmade/best.pt",
        "train/r1/my-plot.png",
    ]
    assert not (root / "report").exists() and not (root / "spec.yaml").exists()


def test_a_failed_onnx_rerun_leaves_the_good_result_and_writes_its_failure_beside_it(tmp_path):
    """onnx with an impossible tolerance into a folder holding a good run: the good run stays as it was."""
    from tests.test_bad_input import run_cli

    out = tmp_path / "onnx"
    base = "onnx --model resnet18 --batch-sizes 1 --iterations 1 --warmup 0 --input-size 32 --out".split()
    good = run_cli([*base, str(out)], cwd=tmp_path)
    assert good.returncode == 0, good.stderr[-2000:]
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert json.loads(before["record.json"])["status"] == "ok"
    bad = run_cli([*base, str(out), "--tolerance", "1e-30"], cwd=tmp_path)
    assert bad.returncode == 1, bad.stderr[-2000:]
    assert "Traceback" not in bad.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.name != "record.failed.json"} == before
    failed = json.loads((out / "record.failed.json").read_text())
    assert failed["status"] == "failed" and "tolerance" in failed["error"]


# ---------------------------------------------------------------------------------------------- class 7


def test_resume_does_not_keep_a_run_whose_checkpoint_is_gone_or_cut_short(tmp_path):
    from dlbench.layout import record_ok

    run = tmp_path / "r"
    (run).mkdir()
    (run / "best.pt").write_bytes(b"0123456789")
    _put(
        run / "record.json", _record(outputs={"checkpoint": {"path": "best.pt", "bytes": 10, "sha256": SHA}})
    )
    assert record_ok(run)
    (run / "best.pt").write_bytes(b"01234")
    assert not record_ok(run)
    (run / "best.pt").unlink()
    assert not record_ok(run)
    for damaged in ({"metrics": {"test_accuracy": 5.0}}, {"config": "resnet18"}):  # a record that is not one
        _put(run / "record.json", _record(**damaged))
        assert not record_ok(run)


def test_fused_resume_onto_another_engines_run_is_refused_and_keeps_its_checkpoints(world, tmp_path):
    out = tmp_path / "t"
    _put(
        out / "record.json", _record(outputs={"checkpoint": {"path": "best.pt"}, "last": {"path": "last.pt"}})
    )
    (out / "best.pt").write_bytes(b"best")
    (out / "last.pt").write_bytes(b"last")
    before = tree_hash(out)
    args = ["train", "--split", str(world / "split"), "--out", str(out), "--engine", "fused", "--resume"]
    result = run_cli(args, cwd=tmp_path)
    check_refused(result, "the fused engine does not resume")
    assert tree_hash(out) == before


# ---------------------------------------------------------------------------------------------- class 8


def test_a_failed_fetch_leaves_a_folder_marked_partial_that_runs_does_not_list_as_ok(tmp_path):
    store = tmp_path / "store"
    run = _stored_run(store)
    (run / "report" / "report.html").write_text("<html>changed after the manifest</html>\n")
    to = tmp_path / "fetched"
    result = run_cli(["fetch", "R1", "--store", str(store), "--to", str(to)], cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert (to / "FETCH-PARTIAL.json").is_file()
    listed = run_cli(["runs", str(tmp_path), "--json"], cwd=tmp_path)
    rows = {r["name"]: r["status"] for r in json.loads(listed.stdout)}
    assert rows["fetched"].startswith("partial fetch"), rows
    # the store made whole again, the fetch completes and the mark goes
    write_manifest(run)
    again = run_cli(["fetch", "R1", "--store", str(store), "--to", str(to)], cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert not (to / "FETCH-PARTIAL.json").exists()
    rows = {
        r["name"]: r["status"]
        for r in json.loads(run_cli(["runs", str(tmp_path), "--json"], cwd=tmp_path).stdout)
    }
    assert rows["fetched"] == "ok"


def test_fetch_into_a_folder_holding_a_file_where_a_folder_must_go_is_one_line(tmp_path):
    store = tmp_path / "store"
    _stored_run(store)
    to = tmp_path / "to"
    _put(to / "report", "a file named like the report folder\n")
    before = tree_hash(to)
    result = run_cli(["fetch", "R1", "--store", str(store), "--to", str(to)], cwd=tmp_path)
    check_refused(result, "a file is where a folder must go")
    assert tree_hash(to) == before


@pytest.mark.parametrize(
    "name, content, expect",
    [
        ("index.json", "[1, 2]", "index.json: not a dlbench file (a JSON a list"),
        ("index.json", '{"runs": {"x": {"step": "train"}}}', "index.json: field runs.x.status: Field"),
        ("index.json", "{not json", "index.json: not JSON"),
        ("train/a/record.json", '{"step": "train", "status": "great"}', "record.json: field status"),
    ],
)
def test_runs_lists_a_run_with_a_damaged_index_or_record_as_damaged(tmp_path, name, content, expect):
    """dlbench runs reads each run's records and index.json through their schemas: the damaged run's status
    names the file and the field, the other runs are listed as before, and nothing is changed."""
    good, bad = _stored_run(tmp_path / "runs", "good"), _stored_run(tmp_path / "runs", "bad")
    _put(good / "index.json", {"runs": {"a": {"step": "train", "status": "ok", "folder": "train/a"}}})
    _put(bad / name, content)
    before = tree_hash(tmp_path)
    result = run_cli(["runs", str(tmp_path / "runs"), "--json"], cwd=tmp_path)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    rows = {r["name"]: r["status"] for r in json.loads(result.stdout)}
    assert rows["good"] == "ok"
    assert rows["bad"].startswith("damaged: ") and expect in rows["bad"], rows["bad"]
    assert tree_hash(tmp_path) == before


# ---------------------------------------------------------------------------------------------- class 3


def test_the_edges_variables_are_parsed_by_settings_and_env_mappings_still_work():
    """The variables of components / pipelines / stores come from dlbench.settings; their functions that take
    an env mapping parse that mapping the same way (a bad value: one line naming the variable)."""
    from dlbench.settings import SettingsError, parse_settings
    from dlbench.store import StoreError
    from dlbench_kfp.pipelines.registry import insecure
    from dlbench_kfp.stores.s3_config import credentials_from_env, parse_endpoint

    assert insecure("reg.local:5000", {"DLBENCH_INSECURE_REGISTRIES": " reg.local:5000 ,other"})
    assert not insecure("reg.local:5000", {})
    assert insecure("127.0.0.1:5000", {})
    keys = {"MINIO_ACCESS_KEY": "k", "MINIO_SECRET_KEY": "s", "AWS_ACCESS_KEY_ID": "half"}
    assert credentials_from_env(keys) == ("k", "s")
    with pytest.raises(StoreError, match="no S3 credentials"):
        credentials_from_env({"AWS_ACCESS_KEY_ID": "half"})
    with pytest.raises(StoreError, match="AWS_ACCESS_KEY_ID holds a line break"):
        credentials_from_env({"AWS_ACCESS_KEY_ID": "a\r\nb", "AWS_SECRET_ACCESS_KEY": "s"})
    assert parse_endpoint("minio:9000", False) == ("minio:9000", False)
    assert parse_endpoint("minio:9000", "off") == ("minio:9000", False)
    assert parse_settings({"DLBENCH_REGISTRY": "localhost:5000/team/"}).registry == "localhost:5000/team"
    assert parse_settings({"DLBENCH_IMAGE_TAG": "0.1.0-rc_1"}).image_tag == "0.1.0-rc_1"
    for env, text in (
        ({"DLBENCH_IMAGE_TAG": "-x"}, "DLBENCH_IMAGE_TAG='-x': is not a valid tag"),
        ({"DLBENCH_REGISTRY": "ghcr.io/Team"}, "path 'Team' is not lowercase"),
        ({"DLBENCH_INSECURE_REGISTRIES": "h:0"}, "'h:0' has a port that is not a number from 1 to 65535"),
    ):
        with pytest.raises(SettingsError, match=text.replace("(", r"\(").replace(")", r"\)")):
            parse_settings(env)
    assert "secret" not in repr(parse_settings({"KFP_TOKEN": "secret", "MINIO_ACCESS_KEY": "secret"}))


def test_the_image_names_follow_the_variables(monkeypatch):
    from dlbench_kfp.components import images

    monkeypatch.setenv("DLBENCH_REGISTRY", "localhost:5000/t")
    monkeypatch.setenv("DLBENCH_IMAGE_TAG", "dev")
    assert images.current()["cpu"] == "localhost:5000/t/dlbench-cpu:dev"


# ---------------------------------------------------------------------------------------------- class 5


def test_grid_expansion_computes_each_run_id_once(monkeypatch):
    """Linear: 2,000 runs cost 2,000 run-id hashes, not one per pair of runs."""
    from dlbench import configs
    from dlbench.plan import expand_grids
    from dlbench.spec import parse_spec

    calls = {"n": 0}
    original = configs.TrainConfig._id_part

    def counted(self):
        calls["n"] += 1
        return original(self)

    monkeypatch.setattr(configs.TrainConfig, "_id_part", counted)
    spec = parse_spec(
        {
            "name": "big",
            "data": {"datasets": ["fashion-mnist"]},
            "train": {
                "grids": [
                    {
                        "models": ["resnet18"],
                        "lr": [1e-3 + i * 1e-6 for i in range(200)],
                        "batch_size": list(range(1, 11)),
                    }
                ]
            },
        }
    )
    runs = expand_grids(spec)
    assert sum(len(v) for v in runs.values()) == 2000
    assert calls["n"] == 2000


def test_the_run_limit_can_be_raised(world, tmp_path):
    result = run_cli(
        ["spec", "validate", str(world / "huge.yaml")], cwd=tmp_path, env={"DLBENCH_MAX_RUNS": "20000"}
    )
    assert result.returncode == 0, result.stderr[-2000:]


# ---------------------------------------------------------------------------------------------- class 2


def test_a_symlink_loop_in_a_records_folder_is_not_followed(tmp_path):
    from dlbench.record import find_records

    root = tmp_path / "recs"
    _put(root / "t" / "record.json", _record())
    os.symlink("..", root / "t" / "up")
    os.symlink("self", root / "self")
    assert [Path(r["_dir"]).name for r in find_records(root)] == ["t"]


def test_an_onnx_export_whose_train_runs_all_failed_is_stopped_not_run_untrained(tmp_path, monkeypatch):
    """The data step failed, so every train run failed: no untrained model is exported and timed in their
    place; the ONNX task gets a failed record naming the runs. A model with no train runs still exports."""
    import dlbench.onnxrt.step
    from dlbench.plan import build_plan
    from dlbench.runner import run_onnx_task
    from dlbench.spec import parse_spec

    spec = parse_spec(
        {"train": {"grids": [{"models": ["resnet18"]}]}, "onnx": {"models": ["resnet18", "resnet34"]}}
    )
    cfg = {"dataset": "fashion-mnist", "model": "resnet18", "stem": "imagenet"}
    _put(
        tmp_path / "train" / "r18" / "record.json", _record(status="failed", config=cfg, run_id="resnet18-x")
    )
    calls = []
    monkeypatch.setattr(dlbench.onnxrt.step, "onnx_step", lambda *a, **k: calls.append(a[0].model) or {})
    outcomes = run_onnx_task(build_plan(spec).onnx, tmp_path / "train", tmp_path / "onnx", lambda *_: None)
    assert (
        not outcomes["resnet18"].ok
        and "every train run of it at this input failed" in outcomes["resnet18"].error
    )
    rec = json.loads((tmp_path / "onnx" / "resnet18" / "record.json").read_text())
    assert rec["status"] == "failed" and "resnet18-x" in rec["error"]
    assert calls == ["resnet34"] and outcomes["resnet34"].ok


def test_a_dataset_name_its_fingerprints_contradict_is_kept_only_when_the_user_says_so(tmp_path):
    """Fashion-MNIST's files named MNIST: refused (the SHA-256 says so); with DLBENCH_TRUST_DATASET_NAME=1 the
    name is kept and the manifest says it is unverified and why."""
    from tests.conftest import FASHION_DIR

    if not (FASHION_DIR / "train-images-idx3-ubyte.gz").is_file():
        pytest.fail(f"{FASHION_DIR} is missing: `make data` installs Debian's dataset-fashion-mnist")
    out = tmp_path / "d"
    args = [
        "data",
        "--dataset",
        "mnist",
        "--root",
        str(FASHION_DIR),
        "--subsample",
        "1000",
        "--out",
        str(out),
    ]
    check_refused(run_cli(args, cwd=tmp_path), "(by its SHA-256), not MNIST")
    assert not out.exists()
    ok = run_cli(args, cwd=tmp_path, env={"DLBENCH_TRUST_DATASET_NAME": "1"})
    assert ok.returncode == 0, ok.stderr[-2000:]
    source = json.loads((out / "manifest.json").read_text())["source"]
    assert source["verified"] is False and "kept as the user said" in source["verification"]
