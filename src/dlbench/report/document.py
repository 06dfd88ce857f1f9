"""The report's document model: its sections (:class:`Section`), their tables and figures (:class:`Item`),
the environment's blocks (:class:`KeyValues`), and how a value reads (:func:`fmt`, :func:`view_of`).

A table is two DataFrames: ``frame`` holds raw values (written to ``tables/<key>.csv`` with pandas, the
study's published values as printed, ours unrounded) and ``view`` holds the strings a reader sees, in the
study's layout (a pivot, its columns a MultiIndex). A value that does not exist because a step failed or
was not run reads "not run" (the reason in the notes), never a zero.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from dlbench.report.collect import NotRun, dataset_label, device_label, model_label, num

NOT_RUN = "not run"
NONE = "—"


@dataclass
class Item:
    """One table or figure of the report, or the reason it is not there. ``key`` names what it shows: the
    HTML element id, ``tables/<key>.csv`` and its entry in summary.json's ``not_run``; ``title`` carries
    the number a reader sees (the study's for its own tables and figures, ours after them)."""

    key: str
    kind: str  # table | figure
    title: str
    caption: str = ""
    frame: pd.DataFrame | None = None
    view: pd.DataFrame | None = None
    image: Path | None = None
    not_run: NotRun | None = None
    notes: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    # the part of the report it belongs to: study (one of the study's tables or figures), ours (an extra
    # one), summary
    part: str = "ours"

    @property
    def table(self) -> pd.DataFrame | None:
        return self.view


@dataclass
class Section:
    """A part of the report (the study's tables, its figures, ours, status) and its items in order."""

    key: str
    title: str
    intro: str = ""
    items: list[Item] = field(default_factory=list)


@dataclass
class KeyValues:
    """A small titled block of facts (environment): a table, or preformatted text (the spec)."""

    key: str
    title: str
    view: pd.DataFrame | None = None
    text: str | None = None
    notes: list[str] = field(default_factory=list)


def fmt(value: Any, kind: str = "text") -> str:
    """A value as a person reads it. None is "—" (not recorded / not applicable)."""
    if isinstance(value, NotRun):
        return NOT_RUN
    if value is None or (isinstance(value, float) and value != value):
        return NONE
    if isinstance(value, str) and kind in ("pct", "s", "ms", "study"):
        return value  # a published value, as printed
    if kind == "dataset":
        return dataset_label(value)
    if kind == "model":
        return model_label(value)
    if kind == "device":
        return device_label(value)
    if kind == "bool":
        return "on" if value else "off"
    f = num(value)
    if f is None:
        return str(value)
    if kind == "int":
        return f"{int(round(f)):,}"
    if kind == "lr":
        mant, exp = f"{f:.0e}".split("e")
        return f"{mant}e{int(exp)}" if mant != "1" else f"1e{int(exp)}"
    if kind in ("pct", "s2"):
        return f"{f:.2f}"
    if kind == "pp":
        return f"{f:+.2f}"
    if kind in ("s", "ms"):
        return f"{f:.2f}"  # as the study prints its times
    if kind == "x":
        return f"{f:.2f}x" if abs(f) >= 0.1 or f == 0 else f"{f:.2g}x"  # 0.005x, not 0.01x
    if kind == "ips":
        return f"{f:,.0f}" if f >= 100 else f"{f:.3g}"
    if kind == "gflops":
        return f"{f:.4f}"
    if kind in ("m", "mb"):
        return f"{f:.2f}"
    if kind == "float":
        return f"{f:.3g}" if abs(f) < 100 else f"{f:,.0f}"
    return str(value)


def builder(
    kind: str, title: str, caption: str = "", *, part: str = "ours", needs: str | None = None
) -> Callable[[Callable[..., None]], Callable[..., Item]]:
    """Declare the builder of one table or figure; its key is the function's name (what it shows).

    The decorated ``fn(item, *args)`` fills the :class:`Item` made here from the declaration (frame and
    view, image, notes, sources, or ``not_run``); callers call ``fn(*args)`` and get the item. With
    ``needs`` (the first argument then the :class:`~dlbench.report.collect.Records`), a step without a
    finished run makes the item not run with that step's reason, and ``fn`` is not called.
    """

    def declare(fn: Callable[..., None]) -> Callable[..., Item]:
        def build(*args: Any) -> Item:
            item = Item(fn.__name__, kind, title, caption=caption, part=part)
            if needs is not None and not args[0].ok(needs):
                item.not_run = args[0].reason(needs)
            else:
                fn(item, *args)
            return item

        build.__name__, build.__qualname__, build.__doc__ = fn.__name__, fn.__qualname__, fn.__doc__
        return build

    return declare


def view_of(frame: pd.DataFrame, kinds: dict[str, str], labels: dict[str, str] | None = None) -> pd.DataFrame:
    """A flat display frame: each column formatted by its kind, renamed to its label."""
    out = pd.DataFrame({c: [fmt(v, kinds.get(c, "text")) for v in frame[c]] for c in kinds if c in frame})
    return out.rename(columns=labels or {})


def run_ids(recs) -> list[str]:
    return sorted({str(r.get("run_id")) for r in recs if r is not None})
