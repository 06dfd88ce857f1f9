"""Readable logs and honest progress: a bar on a terminal, one line every few seconds otherwise.

Containers and KFP capture stderr to a file, where a tqdm bar becomes one giant ``\\r`` line; so a
bar is shown only when stderr is a TTY, and elsewhere :class:`Progress` logs a plain line at most
every ``interval`` seconds (plus the last one).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_CONFIGURED = False


def get_logger(name: str = "dlbench") -> logging.Logger:
    global _CONFIGURED
    if not _CONFIGURED:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
        root = logging.getLogger("dlbench")
        root.addHandler(handler)
        root.setLevel(os.environ.get("DLBENCH_LOG_LEVEL", "INFO").upper())
        root.propagate = False
        _CONFIGURED = True
    return logging.getLogger(name)


def use_bar() -> bool:
    if os.environ.get("TQDM_DISABLE") == "1":
        return False
    return sys.stderr.isatty()


class Progress:
    """Wrap an iterable; ``set(**stats)`` attaches numbers (loss, img/s) shown in the bar or log line."""

    def __init__(self, iterable: Iterable[T], total: int | None = None, desc: str = "",
                 interval: float = 10.0, logger: logging.Logger | None = None):
        self.iterable = iterable
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self.desc = desc
        self.interval = interval
        self.logger = logger or get_logger()
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
