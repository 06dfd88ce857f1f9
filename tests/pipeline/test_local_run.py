"""``dlbench run --local`` runs every step of a tiny study through kfp.local into an S3 server on loopback;
``dlbench fetch`` brings the report and records back intact."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from dlbench.cli import main
from dlbench.io import read_json, sha256_file
from dlbench.store import MANIFEST_NAME, verify_tree
from dlbench_kfp.stores.s3 import S3Store

REPO = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-9;]*m")
TASKS = ("data", "train-cpu", "svm-cpu", "profile", "onnx-cpu", "report")
STEPS = {"data", "train", "svm", "profile", "onnx", "report"}


def dlbench(*args: str, env: dict, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dlbench", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "TQDM_DISABLE": "1", **env},
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def local_run(tiny_spec, s3_server, tmp_path_factory):
    work = tmp_path_factory.mktemp("kfp")
    result = dlbench(
        "run",
        "--local",
        "--spec",
        str(tiny_spec),
        "--store",
        "s3://made-by-run/runs",
        "--create-bucket",
        "--work",
        str(work),
        env=s3_server.env(),
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    run = re.search(r"^run: (\S+)$", result.stdout, re.M).group(1)
    log_file = Path(re.search(r"^full log: (\S+)$", result.stdout, re.M).group(1))
    return {
        "result": result,
        "run": run,
        "work": work / run,
        "log_file": log_file,
        "log": log_file.read_text(),
    }


def test_every_step_ran_through_kfp_local(local_run):
    assert local_run["log_file"] == local_run["work"] / "pipeline.log"
    for task in TASKS:
        assert f"Task '{task}' finished with status SUCCESS" in local_run["log"], task
    assert "Pipeline 'dlbench-tiny' finished with status SUCCESS" in local_run["log"]
    assert not ANSI.search(local_run["log"])
    outputs = {p.parent.name for p in local_run["work"].rglob("executor_output.json")}
    assert set(TASKS) <= outputs


def test_the_console_shows_dlbench_lines_only(local_run):
    """Captured as a pipe: a short log of dlbench's own lines, each task named once with its position;
    kfp.local's log (executor inputs, artifact dumps) and library warnings are in the log file only."""
    out = local_run["result"].stderr + local_run["result"].stdout
    lines = out.splitlines()
    assert len(lines) < 60, out
    assert not ANSI.search(out)
    assert "Warning" not in out and "warnings.warn" not in out and "executor_input" not in out
    assert "executor_input" in local_run["log"]  # ... which the full log keeps
    headers = [line for line in lines if line.startswith("[")]
    named = sorted(h.split("]")[0] + "]" for h in headers)  # kfp.local's order of independent tasks varies
    assert named == sorted(f"[{step} 1/1]" for step in STEPS), headers
    (train,) = [h for h in headers if h.startswith("[train")]
    assert re.fullmatch(
        r"\[train 1/1\] resnet18 resident bs=32 adam 1e-3 1 ep fashion-mnist cpu "
        r"\(id resnet18-[0-9a-f]{12}\)",
        train,
    ), train
    assert re.search(r"epoch 1/1: train loss [0-9.]+, val loss", out)  # one line per epoch, below its header
    index = read_json(local_run["work"] / "index.json")["runs"]
    assert {v["step"] for v in index.values()} == {"train", "svm"}
    assert train.endswith(f"(id {next(k for k, v in index.items() if v['step'] == 'train')})")


def test_report_and_records_are_in_the_s3_server(local_run, s3_server):
    run = local_run["run"]
    assert f"report: s3://made-by-run/runs/{run}/report/report.html" in local_run["result"].stdout
    store = S3Store.from_url("s3://made-by-run/runs", env=s3_server.env())
    keys = {o.key for o in store.list(run)}
    assert {
        f"{run}/{MANIFEST_NAME}",
        f"{run}/report/report.html",
        f"{run}/report/report.md",
        f"{run}/spec.yaml",
    } <= keys
    import json

    records = [json.loads(store.read_bytes(k)) for k in keys if k.endswith("/record.json")]
    assert {r["step"] for r in records} == STEPS
    assert all(r["status"] == "ok" for r in records), [(r["step"], r.get("error")) for r in records]
    assert any(k.startswith(f"{run}/models/train/") and k.endswith(".pt") for k in keys)
    assert any(k.startswith(f"{run}/models/onnx/") and k.endswith(".onnx") for k in keys)


def test_fetch_downloads_them_intact(local_run, s3_server, tmp_path, monkeypatch, capsys):
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    run, dest = local_run["run"], tmp_path / "fetched"
    assert main(["fetch", run, "--store", "s3://made-by-run/runs", "--to", str(dest)]) == 0
    out = capsys.readouterr().out
    assert f"report: {dest}/report/report.html" in out
    assert verify_tree(dest) == []
    assert "<html" in (dest / "report" / "report.html").read_text()[:2000].lower()
    assert not (dest / "models").exists()  # weights only with --models
    # the profile task counted every input channel count asked for; the report set the reference
    # study's published GFLOPs beside the one row counted in the setting they match
    with open(dest / "report" / "tables" / "model_complexity.csv", newline="") as f:
        table9 = {row["input"]: row for row in csv.DictReader(f)}
    assert set(table9) == {"1x28x28", "1x64x64", "3x28x28", "3x64x64"}
    assert table9["3x64x64"]["study_gflops"] == "0.2961"
    assert round(float(table9["3x64x64"]["forward_gflops"]), 4) == 0.2961
    assert {table9[k]["study_gflops"] for k in table9 if k != "3x64x64"} == {""}
    # the spec came through KFP (a protobuf Struct: floats, sorted keys) as it was: integers, field order
    import yaml

    from dlbench.spec import StudySpec

    spec = yaml.safe_load((dest / "spec.yaml").read_text())
    assert list(spec) == list(StudySpec.model_fields)
    grid = spec["train"]["grids"][0]
    assert all(type(v) is int for v in grid["batch_size"] + grid["epochs"]) and type(spec["seed"]) is int
    # the records are byte-identical to what the pipeline's tasks wrote
    (train_rec,) = list((dest / "train").glob("*/record.json"))
    (kfp_rec,) = [
        p
        for p in local_run["work"].rglob("record.json")
        if read_json(p)["step"] == "train" and "report" not in p.parts
    ]
    assert train_rec.read_bytes() == kfp_rec.read_bytes()
    # again: nothing to download; with --models the checkpoint arrives and matches
    assert main(["fetch", run, "--store", "s3://made-by-run/runs", "--to", str(dest), "--models"]) == 0
    out = capsys.readouterr().out
    assert "already there and verified" in out
    (ckpt,) = list((dest / "models" / "train").glob("*/*.pt"))
    assert sha256_file(ckpt) == sha256_file(kfp_rec.parent / ckpt.name)


def test_runs_lists_the_run_in_the_store(local_run, s3_server, monkeypatch, capsys):
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    assert main(["runs", "s3://made-by-run/runs", "--json"]) == 0
    import json

    (row,) = json.loads(capsys.readouterr().out)
    assert row["name"] == local_run["run"] and row["spec"] == "tiny" and row["status"] == "ok"
    assert row["kind"] == "pipeline run"
    assert row["report"] == f"s3://made-by-run/runs/{local_run['run']}/report/report.html"


def test_no_secret_in_logs_records_or_store(local_run, s3_server):
    secret = s3_server.secret_key.encode()
    assert secret not in (local_run["result"].stdout + local_run["result"].stderr).encode()
    for root in (local_run["work"], s3_server.root):
        for p in root.rglob("*"):
            if p.is_file():
                assert secret not in p.read_bytes(), p


def test_bad_store_settings_fail_before_running(tiny_spec, s3_server, tmp_path):
    work = tmp_path / "kfp"
    cases = [
        ({}, "s3://no-such-bucket/runs", "bucket 'no-such-bucket' does not exist"),
        (
            {"AWS_SECRET_ACCESS_KEY": "wrong-secret-0123456789"},
            "s3://dlbench/runs",
            "rejected the credentials",
        ),
        (
            {"DLBENCH_S3_ENDPOINT": "http://127.0.0.1:9", "DLBENCH_S3_RETRIES": "1"},
            "s3://dlbench/runs",
            "unreachable (connection refused)",
        ),
    ]
    for env, store, message in cases:
        result = dlbench(
            "run",
            "--local",
            "--spec",
            str(tiny_spec),
            "--store",
            store,
            "--work",
            str(work),
            env={**s3_server.env(), **env},
            timeout=120,
        )
        assert result.returncode == 2, result.stderr
        assert message in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert not work.exists() or not any(work.iterdir())  # nothing ran


def test_fetch_of_an_unknown_run_is_one_line(s3_server, tmp_path, monkeypatch, capsys):
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    assert main(["fetch", "no-such-run", "--store", "s3://dlbench/runs", "--to", str(tmp_path / "x")]) == 2
    assert "no run 'no-such-run'" in capsys.readouterr().err


def test_docker_runner_without_a_docker_api_is_one_line(tiny_spec, tmp_path):
    result = dlbench(
        "run",
        "--local",
        "--runner",
        "docker",
        "--spec",
        str(tiny_spec),
        "--store",
        str(tmp_path / "s"),
        "--work",
        str(tmp_path / "kfp"),
        env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"},
        timeout=120,
    )
    assert result.returncode == 2 and "no Docker API reachable" in result.stderr
    assert result.stderr.count("\n") == 1


def test_a_missing_data_root_is_refused_before_any_work(tiny_spec, tmp_path):
    import yaml

    spec = yaml.safe_load(tiny_spec.read_text())
    spec["data"]["root"] = str(tmp_path / "no-such-idx-folder")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(spec))
    result = dlbench(
        "run",
        "--local",
        "--spec",
        str(bad),
        "--store",
        str(tmp_path / "store"),
        "--work",
        str(tmp_path / "kfp"),
        env={},
        timeout=300,
    )
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "data.root" in result.stderr and "does not exist" in result.stderr
    assert not (tmp_path / "kfp").exists() and not (tmp_path / "store").exists()


def test_a_task_failure_ends_the_run_like_a_study(tiny_spec, tmp_path):
    """A dataset the data task refuses (a damaged file) is recorded as failed, the runs on it too; the report
    is written and stored, and the run exits 1 listing them, with no task traceback."""
    import yaml

    from tests.conftest import make_idx_folder

    idx = make_idx_folder(tmp_path / "idx", n_train=800, n_test=200)
    (idx / "train-images-idx3-ubyte.gz").write_bytes(b"\0\0\x0f\x01" + b"\0" * 100)  # damaged: bad magic
    spec = yaml.safe_load(tiny_spec.read_text())
    spec["data"]["root"] = str(idx)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(spec))
    result = dlbench(
        "run",
        "--local",
        "--spec",
        str(bad),
        "--store",
        str(tmp_path / "store"),
        "--work",
        str(tmp_path / "kfp"),
        env={},
        timeout=600,
    )
    out = ANSI.sub("", result.stdout)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr + result.stdout
    failed = [line for line in out.splitlines() if line.startswith("failed: ")]
    assert any(
        line.startswith("failed: data/fashion-mnist: ") and "wrong magic number" in line for line in failed
    )
    assert any(line.startswith("failed: train/") for line in failed)
    assert re.search(r"^report: .*report/report.html$", out, re.M)
    run = re.search(r"^run: (\S+)$", out, re.M).group(1)
    assert (tmp_path / "store" / run / "report" / "report.html").is_file()
    assert (tmp_path / "store" / run / MANIFEST_NAME).is_file()
    # the console named the failure below its task's header; kfp.local's log stayed in the file
    assert "[data 1/1] fashion-mnist" in result.stderr and "wrong magic number" in result.stderr
    assert "Executing task" not in result.stdout + result.stderr
    # --verbose: kfp.local's own log and every task's whole output as well (no colour codes in a pipe)
    verbose = dlbench(
        "run",
        "--local",
        "--verbose",
        "--spec",
        str(bad),
        "--store",
        str(tmp_path / "store2"),
        "--work",
        str(tmp_path / "kfp2"),
        env={},
        timeout=600,
    )
    assert verbose.returncode == 1
    shown = verbose.stdout + verbose.stderr
    assert "Executing task 'data'" in shown and "Got executor_input" in shown and "[data 1/1]" in shown
    assert not ANSI.search(shown)


class StuckLogContainer:
    """A container whose follow stream stops after its first chunk and never ends (as podman 4.3's does now
    and then after the container exits); a plain read returns the whole log."""

    def __init__(self, chunks: list[bytes], streamed: int) -> None:
        self.chunks, self.streamed = chunks, streamed
        self.release = threading.Event()

    def logs(self, stream: bool = False, follow: bool = False):
        if not stream:
            return b"".join(self.chunks)
        return self._follow()

    def _follow(self):
        yield from self.chunks[: self.streamed]
        self.release.wait()  # stuck until the test ends
        yield b"late chunk that must not be printed\n"


def test_a_task_log_whose_stream_never_ends_is_printed_whole_once(capsys):
    from dlbench_kfp.pipelines.local import _LogFollower

    # "é" split across two chunks, as a byte stream may cut it
    chunks = [b"epoch 1 loss 0.5\ncaf\xc3", b"\xa9\n", b"epoch 2 loss 0.3\n", b"done\n"]
    container = StuckLogContainer(chunks, streamed=2)
    follower = _LogFollower(container)
    follower.start()
    follower.finish(grace=0.2)  # the stream is stuck: the rest comes from a plain read
    container.release.set()
    follower.join(5)
    assert capsys.readouterr().out == "epoch 1 loss 0.5\ncafé\nepoch 2 loss 0.3\ndone\n"


def test_a_task_log_whose_stream_ends_is_printed_as_it_came(capsys):
    from dlbench_kfp.pipelines.local import _LogFollower

    container = StuckLogContainer([b"one\n", b"two\n"], streamed=2)
    container.release.set()  # the stream ends right after the last chunk
    container._follow = lambda: iter(container.chunks)
    follower = _LogFollower(container)
    follower.start()
    follower.finish(grace=30)
    assert not follower.is_alive()
    assert capsys.readouterr().out == "one\ntwo\n"


class _Terminal:
    """A stream that says it is a terminal."""

    def __init__(self) -> None:
        import io

        self.buffer = io.StringIO()

    def write(self, text: str) -> int:
        return self.buffer.write(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return True


def _feed(output, lines: list[str]) -> None:
    output.feed("".join(line + "\n" for line in lines))


TASK_OUTPUT = [
    "    [KFP Executor 2026-11-29 22:06:37,417 INFO]: Got executor_input:",
    "    22:06:46 INFO dlbench.progress: resnet18 resident epoch 1/1 10/66 (3.0s) loss=1.9",
    "    22:06:46 INFO dlbench.component: resnet18-9e02a5d31827 epoch 1/1: train loss 1.5559",
    "    /x/kfp/local/subprocess_task_handler.py:81: RuntimeWarning: You may be attemping to run",
]


def test_progress_and_colour_only_on_a_terminal(tmp_path, monkeypatch):
    from dlbench.log import Console
    from dlbench_kfp.pipelines.local_console import RunOutput

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    term = _Terminal()
    output = RunOutput(Console(term), tmp_path, {"train": 1})
    _feed(output, TASK_OUTPUT)
    output.console.header("[train 1/1] resnet18")
    output.close()
    shown = term.buffer.getvalue()
    assert "\r\x1b[K" in shown and "epoch 1/1 10/66" in shown  # the progress line, overwritten by the next
    assert "\x1b[1m[train 1/1] resnet18\x1b[0m" in shown
    assert "RuntimeWarning" not in shown and "executor_input" not in shown
    assert "RuntimeWarning" in output.log_path.read_text()
    # a pipe: no progress line, no colour; NO_COLOR on a terminal: no colour
    import io

    pipe = io.StringIO()
    output = (
        RunOutput(Console(pipe), tmp_path / "p", {"train": 1}) if (tmp_path / "p").mkdir() is None else None
    )
    _feed(output, TASK_OUTPUT)
    output.console.header("[train 1/1] resnet18")
    output.close()
    assert pipe.getvalue() == "  resnet18-9e02a5d31827 epoch 1/1: train loss 1.5559\n[train 1/1] resnet18\n"
    monkeypatch.setenv("NO_COLOR", "1")
    assert not Console(_Terminal()).color
