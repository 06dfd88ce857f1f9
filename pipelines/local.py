"""Run the study pipeline on this machine with kfp.local, then put the run's bundle in a store.

``SubprocessRunner(use_venv=False)`` runs every component in the current Python environment (dlbench
installed, no pip install at run time); ``DockerRunner`` runs each in its image (``components.images``)
through the Docker API (podman works with ``DOCKER_HOST``, see README). kfp.local ignores caching, GPU
requests and kfp-kubernetes settings; everything else (ParallelFor, Collected fan-in, typed artifacts)
runs as on a cluster. Retries are left out here: kfp 2.17's local runner honours them (60 s, then
120 s backoff), and a failure on this machine is rarely transient.

Afterwards the report task's ``study`` artifact (report + records, MANIFEST.json), ``index.json`` (run
id -> step, config, status, task folder) and the weights of every run (``models/<step>/<run>/``) are
uploaded to ``<store>/<run name>/`` with the manifest last; ``dlbench fetch <run name>`` reads them back.
A folder store on the same file system keeps one copy of each file: the task outputs under ``--work``
become hard links to the stored files.

Output: by default only dlbench's own lines reach the terminal (:class:`RunOutput`): a header per task
with its position and config, the tasks' own dlbench log lines, progress on a terminal; kfp.local's log,
the tasks' full output and library warnings go to ``pipeline.log`` in the run's work folder. ``verbose``
shows all of it as well (colour codes only on a terminal).
"""

from __future__ import annotations

import codecs
import collections
import contextlib
import io
import os
import re
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from dlbench.errors import DeviceError, StepFailed
from dlbench.io import read_json
from dlbench.layout import INDEX_NAME, write_index
from dlbench.log import ANSI, PROGRESS_LOGGER, Console, describe_config, task_header
from dlbench.plan import Plan, build_plan
from dlbench.spec import StudySpec
from dlbench.store import BINARY_SUFFIXES, MANIFEST_NAME, LocalStore, StoreError, open_store
from dlbench_kfp.pipelines import PipelineError
from dlbench_kfp.pipelines.study import build_pipeline, pipeline_name

RUNNERS = ("subprocess", "docker")


def docker_mounts(spec: StudySpec) -> list:
    """Read-only bind mounts of the dataset folders the spec can read, at the same paths as on the host."""
    from docker.types import Mount

    folders = {Path("/usr/share/datasets")}
    if spec.data.root:
        folders.add(Path(spec.data.root).absolute())
    return [
        Mount(target=str(f), source=str(f), type="bind", read_only=True)
        for f in sorted(folders)
        if f.is_dir()
    ]


def make_runner(kind: str, spec: StudySpec):
    """kfp.local's runner. DockerRunner containers run as this user (their outputs land in the mounted
    pipeline root, owned by us) with the spec's dataset folders mounted read-only; ``run_container``
    starts them (see ``docker_tasks_removed_after_exit``)."""
    from kfp import local

    if kind == "subprocess":
        return local.SubprocessRunner(use_venv=False)
    if kind == "docker":
        try:
            import docker
        except ImportError:
            raise PipelineError(
                "--runner docker needs the Docker SDK for Python",
                "pip install docker (in the dev extra), and a Docker or podman API: see README",
            ) from None
        try:
            docker.from_env().ping()
        except Exception as exc:  # noqa: BLE001 - the SDK raises many types for "no engine"
            raise PipelineError(
                f"no Docker API reachable: {' '.join(str(exc).split())[:200]}",
                "start docker, or podman system service and set DOCKER_HOST",
            ) from None
        return local.DockerRunner(user=f"{os.getuid()}:{os.getgid()}", mounts=docker_mounts(spec))
    raise PipelineError(f"unknown runner {kind!r}", f"choose one of {', '.join(RUNNERS)}")


LOG_GRACE_S = 5.0  # after a container's exit, how long its follow stream may take to end


class _LogFollower(threading.Thread):
    """Prints a container's log as it comes. podman 4.3 now and then keeps a follow stream open after the
    container has exited (a test of 18 quick tasks hung on the last one); ``finish`` then prints the rest
    from a plain read of the log, so a task's log is whole either way and nothing waits forever."""

    def __init__(self, container) -> None:
        super().__init__(daemon=True)
        self.container = container
        self.lock = threading.Lock()
        self.printed = 0  # bytes of the log printed so far
        self.stopped = False
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def _print(self, chunk: bytes, final: bool = False) -> None:
        text = self.decoder.decode(chunk, final=final)
        if text:
            print(text, end="", flush=True)
        self.printed += len(chunk)

    def run(self) -> None:
        with contextlib.suppress(Exception):  # the stream ends with an error once the container is removed
            for chunk in self.container.logs(stream=True, follow=True):
                with self.lock:
                    if self.stopped:
                        return
                    self._print(chunk)

    def finish(self, grace: float) -> None:
        self.join(grace)
        with self.lock:
            self.stopped = True
            rest = b"" if not self.is_alive() else self.container.logs(stream=False)[self.printed :]
            self._print(rest, final=True)


def run_container(client, image: str, command: list[str], volumes: dict[str, Any], **run_args: Any) -> int:
    """One kfp.local task in a container: stream its log, return its exit code, then remove it.

    kfp 2.17's own ``run_docker_container`` starts the container with ``auto_remove=True`` and reads its
    log and exit code afterwards. When the container is gone first, a 404 (Docker, and podman mostly) is
    taken as success whatever the exit code (ten quick tasks exiting 0, 1, 2 all returned 0 through podman
    here), and podman 4.3's occasional 500 "no such container" as a crash (it failed a CI run once). Here
    the exit code comes from ``wait`` while a thread prints the log, and the container is removed only
    after both are read; Ctrl-C removes it too.
    """
    import docker

    if ":" not in image.rsplit("/", 1)[-1]:
        image = f"{image}:latest"
    try:
        client.images.get(image)
        print(f"Found image {image!r}\n")
    except docker.errors.ImageNotFound:
        print(f"Pulling image {image!r}")
        client.images.pull(image)
        print("Image pull complete\n")
    run_args.pop("auto_remove", None)
    container = client.containers.run(
        image=image, command=command, detach=True, stdout=True, stderr=True, volumes=volumes, **run_args
    )
    try:
        follower = _LogFollower(container)
        follower.start()
        code = int(container.wait()["StatusCode"])
        follower.finish(LOG_GRACE_S)
        return code
    finally:
        with contextlib.suppress(docker.errors.APIError):
            container.remove(force=True)


@contextlib.contextmanager
def docker_tasks_removed_after_exit() -> Iterator[None]:
    """While open, kfp.local's DockerRunner starts its containers with ``run_container``."""
    from kfp.local import docker_task_handler

    original = docker_task_handler.run_docker_container
    docker_task_handler.run_docker_container = run_container
    try:
        yield
    finally:
        docker_task_handler.run_docker_container = original


def model_files(run_dir: Path, exclude: Path) -> list[tuple[Path, str]]:
    """(file, key) for the weights of every train / svm / onnx run below kfp.local's run folder."""
    out = []
    for rec_path in sorted(run_dir.rglob("record.json")):
        folder = rec_path.parent
        if exclude in folder.parents or folder == exclude:
            continue
        rec = read_json(rec_path)
        step = rec.get("step")
        if step not in ("train", "svm", "onnx"):
            continue
        name = (rec.get("config") or {}).get("model") if step == "onnx" else rec.get("run_id")
        for f in sorted(folder.iterdir()):
            if f.is_file() and f.name.endswith(BINARY_SUFFIXES):
                out.append((f, f"models/{step}/{name or folder.name}/{f.name}"))
    return out


def failed_records(bundle: Path) -> list[str]:
    out = []
    for rec_path in sorted(bundle.rglob("record.json")):
        rec = read_json(rec_path)
        if rec.get("status") != "ok":
            out.append(f"{rec_path.parent.relative_to(bundle)}: {rec.get('error') or rec.get('status')}")
    return out


def check_gpu_here(p: Plan) -> None:
    """kfp.local runs every task on this machine: a spec with GPU runs needs a GPU here, checked before any
    work (the ONNX step records absent GPU providers as unavailable, so it does not count)."""
    gpu_runs = sum(len(t.configs) for t in p.train if t.gpu)
    svm_gpu = len(p.group("svm_gpu"))
    need = [f"{gpu_runs} train run(s) on cuda"] if gpu_runs else []
    need += [f"{svm_gpu} cuML SVM run(s)"] if svm_gpu else []
    if not need:
        return
    import torch

    if not torch.cuda.is_available():
        raise DeviceError(
            f"the spec asks for a GPU ({', '.join(need)}) but no CUDA device is visible here",
            "run it here with train device [cpu] and svm backends [sklearn], or send it to a "
            "cluster with GPU nodes: dlbench submit --host URL",
        )


def run_local(
    spec: StudySpec,
    store_url: str | os.PathLike = "runs/pipeline",
    runner: str = "subprocess",
    work_dir: str | os.PathLike = "runs/kfp-local",
    parallelism: int = 1,
    create_bucket: bool = False,
    log: Callable[[str], Any] | None = None,
    verbose: bool = False,
    console: Console | None = None,
) -> dict[str, Any]:
    """Run ``spec`` through kfp.local; upload the bundle and weights to ``store_url``; return a summary."""
    p = build_plan(spec)
    check_gpu_here(p)
    store = open_store(store_url, create_bucket=create_bucket)  # a bad store fails before hours of training
    runner_obj = make_runner(runner, spec)
    console = console or Console()
    log = log or console.line
    log(f"pipeline {pipeline_name(spec)}: {p.describe()}; results to {store.describe()}")
    from kfp import local

    work = Path(work_dir).absolute()
    work.mkdir(parents=True, exist_ok=True)
    local.init(runner=runner_obj, pipeline_root=str(work), raise_on_error=True)
    fn = build_pipeline(spec, parallelism=parallelism, publish_to="", retries=False)
    docker_tasks = docker_tasks_removed_after_exit() if runner == "docker" else contextlib.nullcontext()
    totals = {
        "data": 1,
        "train": len(p.group("train_cpu")) + len(p.group("train_gpu")),
        "svm": len(p.svm),
        "profile": 1,
        "onnx": 1,
        "report": 1,
    }
    output = RunOutput(console, work, totals, verbose=verbose)
    try:
        with docker_tasks, output.capturing():
            task = fn(publish_to="")
    except RuntimeError as exc:
        first = " ".join(ANSI.sub("", str(exc)).split())[:300]  # kfp.local colours names
        where = "the task's log is above" + (f"; all of it in {output.log_path}" if output.log_path else "")
        raise StepFailed(f"local pipeline run failed: {first}", where) from None
    finally:
        output.close()
    study = task.outputs["Output"]
    bundle = Path(study.path)
    run_dir = _run_dir(bundle, work)
    info = publish_run(
        run_dir, store, bundle=bundle, log=log, store_url=str(store_url), work_dir=str(work_dir)
    )
    return {**info, "kfp_root": str(run_dir), "log": str(output.log_path) if output.log_path else None}


def find_bundle(run_dir: Path) -> Path:
    """The report task's ``study`` artifact below a kfp.local run folder: the folder with MANIFEST.json."""
    found = sorted(p.parent for p in run_dir.rglob(MANIFEST_NAME) if (p.parent / "report").is_dir())
    if len(found) != 1:
        raise PipelineError(
            f"{run_dir}: {'no' if not found else len(found)} report bundles "
            f"({MANIFEST_NAME} beside report/) below the run folder",
            "pass the folder of a kfp.local run that reached its report task",
        )
    return found[0]


def publish_run(
    run_dir: str | os.PathLike,
    store,
    bundle: Path | None = None,
    log: Callable[[str], Any] = print,
    store_url: str | None = None,
    work_dir: str | None = None,
) -> dict[str, Any]:
    """Upload a kfp.local run (its report bundle, and the weights of every run as ``models/...``) to
    ``<store>/<run name>/``, MANIFEST.json last, then check every stored object against the manifest.

    Used after ``run --local`` and again by ``dlbench publish`` when that upload failed; a second upload
    of the same run replaces what a failed one left. A failure names the folder holding the complete run
    and the command that publishes it again. Returns a summary.
    """
    run_dir = Path(run_dir)
    bundle = bundle or find_bundle(run_dir)
    try:
        return _publish(run_dir, store, bundle, log)
    except StoreError as exc:
        again = (
            f"dlbench publish {run_dir.name} --work {work_dir or run_dir.parent} "
            f"--store {store_url or store.url}"
        )
        raise StoreError(
            f"storing run {run_dir.name} failed: {exc.message}; the complete run is in {run_dir}",
            f"{exc.hint + '; then ' if exc.hint else ''}publish it again with: {again}",
        ) from None


def _publish(run_dir: Path, store, bundle: Path, log: Callable[[str], Any]) -> dict[str, Any]:
    run_name = run_dir.name
    index = write_index(run_dir, run_dir / INDEX_NAME, exclude=bundle)
    abort = getattr(store, "abort_incomplete", None)
    if abort:  # what an upload cut short by a dead server may have left on a server that keeps it
        abort(run_name, quick=True)
    with tempfile.TemporaryDirectory(prefix="dlbench-publish-", dir=run_dir.parent) as tmp:
        stage = Path(tmp) / run_name
        shutil.copytree(bundle, stage)
        shutil.copy2(index, stage / INDEX_NAME)
        models = model_files(run_dir, exclude=bundle)
        for src, key in models:
            dest = stage / key
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(src, dest)
        manifest = store.put_tree(stage, run_name, log=log)
    problems = verify_stored(store, run_name)
    if problems:
        raise StoreError(
            f"{store.describe(run_name)} does not match its {MANIFEST_NAME}: {'; '.join(problems[:3])}"
            + (f" and {len(problems) - 3} more" if len(problems) > 3 else ""),
            "publish it again",
        )
    if isinstance(store, LocalStore):
        keep_one_copy(
            store.root / run_name,
            [(bundle / f["path"], f["path"]) for f in manifest["files"]]
            + [(src, key) for src, key in models]
            + [(index, INDEX_NAME)],
        )
    return {
        "run": run_name,
        "store": store.describe(run_name),
        "report": store.describe(f"{run_name}/report/report.html"),
        "files": len(manifest["files"]),
        "bytes": manifest["total_bytes"],
        "models": len(models),
        "failed": failed_records(bundle),
        "index": store.describe(f"{run_name}/{INDEX_NAME}"),
    }


def verify_stored(store, prefix: str) -> list[str]:
    """Problems of a stored run against its MANIFEST.json: objects missing, or of another size or SHA-256."""
    manifest = store.read_manifest(prefix)
    problems = []
    for e in manifest["files"]:
        info = store.info(f"{prefix}/{e['path']}")
        if info is None:
            problems.append(f"{e['path']}: missing")
        elif info.size != e["bytes"] or (info.sha256 and info.sha256 != e["sha256"]):
            problems.append(f"{e['path']}: size or SHA-256 differs")
    return problems


def keep_one_copy(stored: Path, pairs: list[tuple[Path, str]]) -> int:
    """Replace each task output under the work folder with a hard link to its stored copy (same bytes, one
    copy on disk). Files on another file system, or that differ, are left as they are. Returns the count."""
    n = 0
    for src, key in pairs:
        dest = stored / key
        try:
            if not src.is_file() or src.is_symlink() or not dest.is_file() or src.samefile(dest):
                continue
            if src.stat().st_size != dest.stat().st_size:
                continue
            tmp = src.with_name(f".{src.name}.link")
            os.link(dest, tmp)
            os.replace(tmp, src)
            n += 1
        except OSError:
            continue
    return n


# kfp.local's warnings that say nothing about this pipeline: every SubprocessRunner task warns that the
# image is not a Python image (dlbench is installed here, which is the point), and set_display_name has
# no effect locally.
KNOWN_WARNINGS = (
    (RuntimeWarning, r"You may be attemping to run a task that uses custom or non-Python base image"),
    (UserWarning, r"Task '.*': settings \['display_name'\] have no effect in the current local runner"),
)
# A dlbench log line from inside a task: "12:00:00 INFO dlbench.component: message" (indented by kfp.local).
TASK_LINE = re.compile(r"^\s*\d\d:\d\d:\d\d (INFO|WARNING|ERROR|CRITICAL) (dlbench[\w.]*): (.*)$")
FAILURE_TAIL = 15  # lines of a failed task's output shown on the console


class _Capture(io.TextIOBase):
    """Stands in for sys.stdout and sys.stderr while kfp.local runs (it prints the tasks' output)."""

    def __init__(self, sink: RunOutput) -> None:
        self.sink = sink

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.sink.feed(text)
        return len(text)

    def isatty(self) -> bool:
        return False


class RunOutput:
    """What a person sees of a kfp.local run, and the full log in a file.

    kfp.local's task loop is wrapped so each task starts with a header (``[train 2/6] ... (id ...)``);
    everything kfp.local and the tasks print goes to ``pipeline.log`` in the run's work folder (colour codes
    removed), and the tasks' own dlbench lines are relayed below their header (progress lines only as a
    status line on a terminal). With ``verbose`` everything is shown as well.
    """

    def __init__(self, console: Console, work: Path, totals: dict[str, int], verbose: bool = False) -> None:
        self.console, self.work, self.totals, self.verbose = console, work, totals, verbose
        self.counts: dict[str, int] = collections.Counter()
        self.lock = threading.RLock()
        self.buffer = ""
        self.tail: collections.deque[str] = collections.deque(maxlen=200)
        self.log_path: Path | None = work / f".dlbench-run-{os.getpid()}.log"
        self.file = open(self.log_path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self.passthrough = console.stream if verbose else None
        self.started = 0.0

    # ------------------------------------------------------------------ lines
    def feed(self, text: str) -> None:
        with self.lock:
            self.buffer += text
            *lines, self.buffer = self.buffer.split("\n")
            for line in lines:
                self._line(line)

    def _line(self, line: str) -> None:
        plain = ANSI.sub("", line)
        self.file.write(plain + "\n")
        self.tail.append(plain)
        if self.passthrough is not None:
            self.console.line(line if self.console.color else plain)
            return
        m = TASK_LINE.match(plain)
        if not m:
            return
        level, name, message = m.groups()
        if name == PROGRESS_LOGGER:
            self.console.status(message)
        elif level == "INFO":
            self.console.detail(message)
        else:
            self.console.detail(f"{level.lower()}: {message}")

    # ------------------------------------------------------------------ tasks
    def _begin(self, component_name: str, arguments: dict, run_folder: Path) -> None:
        if (
            self.log_path is not None and self.log_path.parent == self.work
        ):  # first task: the run's folder is known
            run_folder.mkdir(parents=True, exist_ok=True)
            final = run_folder / "pipeline.log"
            os.replace(self.log_path, final)
            self.log_path = final
            self.console.line(f"full log (kfp.local, every task's output): {final}")
        step = component_name.removeprefix("comp-").split("-")[0]
        self.counts[step] += 1
        what, run_id = "", None
        if step in ("train", "svm") and isinstance(arguments.get("config"), dict):
            what = describe_config(step, arguments["config"])
            run_id = _run_id(step, arguments["config"])
        elif step == "data" and isinstance(arguments.get("data_spec"), dict):
            what = ", ".join(arguments["data_spec"].get("datasets") or [])
        elif step in ("profile", "onnx") and arguments.get("models"):
            what = ", ".join(str(m) for m in arguments["models"])
            if step == "profile" and arguments.get("input_sizes"):
                what += " at " + ", ".join(f"{int(s)}" for s in arguments["input_sizes"]) + " px"
        self.tail.clear()
        self.started = time.perf_counter()
        self.console.header(
            task_header(
                step, self.counts[step], max(self.totals.get(step, 1), self.counts[step]), what, run_id
            )
        )

    def _end(self, ok: bool) -> None:
        if ok or self.passthrough is not None:
            return
        self.console.error(
            f"  task failed after {time.perf_counter() - self.started:.1f} s; the end of its output:"
        )
        lines = [x for x in self.tail if x.strip() and not x.startswith(("---", "    [KFP Executor"))]
        for x in lines[-FAILURE_TAIL:]:
            self.console.line("  | " + x.strip())

    @contextlib.contextmanager
    def capturing(self) -> Iterator[None]:
        """While open: kfp.local's tasks announced, its output captured, its known warnings silenced."""
        from kfp.local import status, task_dispatcher

        original = task_dispatcher.run_single_task_implementation

        def run_task(*args, **kwargs):
            with self.lock:
                self._begin(
                    kwargs.get("component_name", ""),
                    kwargs.get("arguments") or {},
                    Path(kwargs.get("pipeline_root", self.work))
                    / str(kwargs.get("pipeline_resource_name", "")).split("/")[0],
                )
            ok = False
            try:
                outputs, task_status = original(*args, **kwargs)
                ok = task_status == status.Status.SUCCESS
                return outputs, task_status
            finally:
                with self.lock:
                    self._end(ok)

        capture = _Capture(self)
        env_before = os.environ.get("DLBENCH_PROGRESS_INTERVAL")
        if self.console.tty and env_before is None:
            os.environ["DLBENCH_PROGRESS_INTERVAL"] = "2"  # the tasks' progress lines feed the status line
        task_dispatcher.run_single_task_implementation = run_task
        try:
            with (
                warnings.catch_warnings(),
                contextlib.redirect_stdout(capture),
                contextlib.redirect_stderr(capture),
            ):
                if not self.verbose:
                    for category, message in KNOWN_WARNINGS:
                        warnings.filterwarnings("ignore", message=message, category=category)
                yield
        finally:
            task_dispatcher.run_single_task_implementation = original
            if env_before is None:
                os.environ.pop("DLBENCH_PROGRESS_INTERVAL", None)
            with self.lock:
                if self.buffer:
                    self._line(self.buffer)
                    self.buffer = ""
            self.console.done()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.file.close()


def _run_id(step: str, config: dict) -> str | None:
    from dlbench.spec import SvmConfig, TrainConfig

    try:
        return (TrainConfig if step == "train" else SvmConfig).model_validate(config).run_id
    except Exception:  # noqa: BLE001 - the header only; the task validates the config itself
        return None


def _run_dir(bundle: Path, work: Path) -> Path:
    """kfp.local writes ``<pipeline_root>/<pipeline>-<timestamp>/<task>/<output>``: the run folder."""
    p = bundle
    while p.parent != work and p.parent != p:
        p = p.parent
    if p.parent != work:
        raise PipelineError(f"the report artifact {bundle} is not below the local pipeline root {work}")
    return p
