"""Readable logs and honest progress: a bar on a terminal, one line every few seconds otherwise.

Containers and KFP capture stderr to a file, where a tqdm bar becomes one giant ``\\r`` line; so a
bar is shown only when stderr is a TTY, and elsewhere :class:`Progress` logs a plain line at most
every ``interval`` seconds (plus the last one), through the ``dlbench.progress`` logger so that a
reader of the log (``dlbench run --local``) can tell progress from results.

Task headers (``[train 2/6] resnet18 resident bs=64 adam 1e-3 ... (id resnet18-...)``) come from
:func:`task_header`, the same in ``dlbench study`` and ``dlbench run --local``.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from dlbench.settings import settings

T = TypeVar("T")
_CONFIGURED = False
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
PROGRESS_LOGGER = "dlbench.progress"


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (a redirect, a test's capture), not the stream that
    was there when logging was configured."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def _level() -> str:
    """$DLBENCH_LOG_LEVEL; a bad value is the command's one-line refusal (``dlbench.cli`` checks the settings
    before it runs a command), so a logger made at import time still gets a level."""
    from dlbench.errors import DlbenchError

    try:
        return settings().log_level
    except DlbenchError:
        return "INFO"


def get_logger(name: str = "dlbench") -> logging.Logger:
    global _CONFIGURED
    if not _CONFIGURED:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
        root = logging.getLogger("dlbench")
        root.addHandler(handler)
        root.setLevel(_level())
        root.propagate = False
        _CONFIGURED = True
    return logging.getLogger(name)


def use_bar() -> bool:
    if os.environ.get("TQDM_DISABLE") == "1":
        return False
    return sys.stderr.isatty()


class Progress:
    """Wrap an iterable; ``set(**stats)`` attaches numbers (loss, img/s) shown in the bar or log line."""

    def __init__(
        self,
        iterable: Iterable[T],
        total: int | None = None,
        desc: str = "",
        interval: float | None = None,
        logger: logging.Logger | None = None,
    ):
        self.iterable = iterable
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self.desc = desc
        if interval is None:  # dlbench run --local asks its tasks for more frequent lines on a terminal
            interval = settings().progress_interval
        self.interval = interval
        self.logger = logger or get_logger(PROGRESS_LOGGER)
        self.stats: dict[str, str] = {}
        self._bar = None
        if use_bar():
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, desc=desc, leave=False, dynamic_ncols=True)

    def set(self, **stats) -> None:
        self.stats = {k: (f"{v:.4g}" if isinstance(v, float) else str(v)) for k, v in stats.items()}
        if self._bar is not None:
            self._bar.set_postfix(self.stats, refresh=False)

    def __iter__(self) -> Iterator[T]:
        start = last = time.perf_counter()
        n = 0
        try:
            for item in self.iterable:
                yield item
                n += 1
                if self._bar is not None:
                    self._bar.update(1)
                    continue
                now = time.perf_counter()
                if now - last >= self.interval or (self.total is not None and n == self.total):
                    last = now
                    of = f"/{self.total}" if self.total else ""
                    extra = " ".join(f"{k}={v}" for k, v in self.stats.items())
                    self.logger.info(f"{self.desc} {n}{of} ({now - start:.1f}s) {extra}".strip())
        finally:
            if self._bar is not None:
                self._bar.close()


# ------------------------------------------------------------------------------------ task headers


def use_color(stream) -> bool:
    """Colour only on a terminal, and not with NO_COLOR set or TERM=dumb."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def format_lr(lr: float) -> str:
    """1e-3 rather than 0.001: the way learning rates are written in papers and specs."""
    if lr >= 0.01:
        return f"{lr:g}"
    mantissa, exp = f"{lr:e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exp)}"


def describe_config(step: str, config: dict) -> str:
    """One short phrase for a run's config (a spec's TrainConfig / SvmConfig as a dict)."""
    c = {
        k: (int(v) if isinstance(v, float) and v.is_integer() and k != "lr" else v) for k, v in config.items()
    }
    if step == "train":
        words = [
            c.get("model"),
            c.get("engine"),
            f"bs={c.get('batch_size')}",
            c.get("optimizer"),
            format_lr(float(c.get("lr", 0))),
            f"{c.get('epochs')} ep",
            c.get("dataset"),
            f"{c['device_name']} ({c.get('device')})" if c.get("device_name") else c.get("device"),
        ]
        if c.get("amp") not in (None, "off"):
            words.append(str(c["amp"]))
        if c.get("input_size") not in (None, 28) or c.get("in_channels") not in (None, 1):
            size = c.get("input_size") or 28
            words.append(f"{c.get('in_channels') or 1}x{size}x{size}")
        if c.get("pin_memory") is False and c.get("engine") == "dataloader" and c.get("device") == "cuda":
            words.append("no-pin")
        return " ".join(str(w) for w in words if w is not None)
    if step == "svm":
        n = c.get("n_train")
        words = [
            c.get("backend"),
            c.get("kernel") if c.get("estimator") in (None, "svm") else c["estimator"],
            f"C={float(c.get('C', 0)):g}",
            f"n_train={n or 'all'}",
            c.get("dataset"),
            f"on {c['device_name']}" if c.get("device_name") else None,
        ]
        return " ".join(str(w) for w in words if w is not None)
    return ""


def task_header(step: str, k: int, n: int, what: str = "", run_id: str | None = None) -> str:
    """``[train 2/6] resnet18 resident bs=64 adam 1e-3 ... (id resnet18-9e02a5d31827)``."""
    text = f"[{step} {k}/{n}]"
    if what:
        text += f" {what}"
    if run_id:
        text += f" (id {run_id})"
    return text


class Console:
    """dlbench's own lines for a person, on ``stream`` (stderr): plain lines, colour only on a terminal,
    and there a status line that the next line overwrites (progress)."""

    BOLD, DIM, RED, RESET = "\x1b[1m", "\x1b[2m", "\x1b[31m", "\x1b[0m"

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.tty = bool(isatty and isatty())
        self.color = use_color(self.stream)
        self._status = False

    def _paint(self, text: str, style: str) -> str:
        return f"{style}{text}{self.RESET}" if self.color and style else text

    def _clear(self) -> None:
        if self._status:
            self.stream.write("\r\x1b[K")
            self._status = False

    def line(self, text: str, style: str = "") -> None:
        self._clear()
        self.stream.write(self._paint(text, style) + "\n")
        self.stream.flush()

    def header(self, text: str) -> None:
        self.line(text, self.BOLD)

    def detail(self, text: str) -> None:
        self.line(f"  {text}")

    def error(self, text: str) -> None:
        self.line(text, self.RED)

    def status(self, text: str) -> None:
        """A transient line on a terminal (overwritten by the next one); nothing elsewhere."""
        if not self.tty:
            return
        width = 120
        try:
            width = os.get_terminal_size(self.stream.fileno()).columns - 1
        except (OSError, ValueError, AttributeError):
            pass
        self._clear()
        self.stream.write(self._paint(f"  {text}"[: max(width, 20)], self.DIM))
        self.stream.flush()
        self._status = True

    def done(self) -> None:
        self._clear()
        self.stream.flush()
