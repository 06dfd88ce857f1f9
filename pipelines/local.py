"""Run the study pipeline on this machine with kfp.local, then put the run's bundle in a store.

``SubprocessRunner(use_venv=False)`` runs every component in the current Python environment (dlbench
installed, no pip install at run time); ``DockerRunner`` runs each in its image (``components.images``)
through the Docker API (podman works with ``DOCKER_HOST``, see README). kfp.local ignores caching, GPU
requests and kfp-kubernetes settings; everything else (ParallelFor, Collected fan-in, typed artifacts)
runs as on a cluster. Retries are left out here: kfp 2.17's local runner honours them (60 s, then
120 s backoff), and a failure on this machine is rarely transient.

Afterwards the run is published (``local_publish``: the bundle, ``index.json`` and the weights to
``<store>/<run name>/``, the manifest last); what the terminal shows meanwhile is ``local_console``'s.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from dlbench.errors import DeviceError, StepFailed
from dlbench.log import ANSI, Console
from dlbench.plan import Plan, build_plan
from dlbench.spec import StudySpec
from dlbench.store import open_store
from dlbench_kfp.pipelines import PipelineError
from dlbench_kfp.pipelines.local_console import RunOutput
from dlbench_kfp.pipelines.local_publish import publish_run
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


def check_gpu_here(p: Plan) -> None:
    """kfp.local runs every task on this machine: a spec with GPU runs needs a GPU here, checked before any
    work (the ONNX step records absent GPU providers as unavailable, so it does not count)."""
    gpu_runs = sum(len(t.configs) for t in p.train if t.gpu)
    svm_gpu = len(p.stage("svm_gpu"))
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
        "train": len(p.stage("train_cpu")) + len(p.stage("train_gpu")),
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


def _run_dir(bundle: Path, work: Path) -> Path:
    """kfp.local writes ``<pipeline_root>/<pipeline>-<timestamp>/<task>/<output>``: the run folder."""
    p = bundle
    while p.parent != work and p.parent != p:
        p = p.parent
    if p.parent != work:
        raise PipelineError(f"the report artifact {bundle} is not below the local pipeline root {work}")
    return p
