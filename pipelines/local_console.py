"""What the terminal shows of a kfp.local run (``dlbench run --local``), and its full log in a file.

By default only dlbench's own lines reach the terminal (:class:`RunOutput`): a header per task with its
position and config, the tasks' own dlbench log lines, progress on a terminal; kfp.local's log, the
tasks' full output and library warnings go to ``pipeline.log`` in the run's work folder. ``verbose``
shows all of it as well (colour codes only on a terminal).
"""

from __future__ import annotations

import collections
import contextlib
import io
import os
import re
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

from dlbench.log import ANSI, PROGRESS_LOGGER, Console, describe_config, task_header

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
