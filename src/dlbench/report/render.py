"""Markdown and self-contained HTML from the report's items, through the Jinja templates in ``templates/``.

This module only turns DataFrames into header and body cells (spans for the study's pivoted columns,
classes for published columns and "not run" cells); the templates lay the page out. The HTML needs
nothing outside the file: CSS inline, figures as base64 PNG ``data:`` URIs, no script, and no text in it
forms a URL (a ``://`` from a record's text is written with an entity for its colon).
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
from markupsafe import Markup, escape

from dlbench.report.collect import NotRun
from dlbench.report.document import Item, KeyValues, Section

NUMERIC = re.compile(r"^[+\-−]?[\d,]*\.?\d+(x| %)?$")
HASH = re.compile(r"^[0-9a-f]{32,}$")  # a SHA-256 or a git commit: broken anywhere, so its column fits


def esc(text: Any) -> Markup:
    """HTML-escape, and keep any ``scheme://`` in record text from being a URL in the file."""
    return Markup(str(escape(str(text))).replace("://", "&#58;//"))


def _text(v: Any) -> str:
    return "not run" if isinstance(v, NotRun) else ("—" if v is None else str(v))


def _is_study(label: Any) -> bool:
    return str(label).startswith("study")


def table_cells(view: pd.DataFrame) -> dict[str, list]:
    """Header rows (label, span, class) and body rows (text, class, reason) of a display frame."""
    cols = list(view.columns)
    tuples = [c if isinstance(c, tuple) else (c,) for c in cols]
    levels = max(len(t) for t in tuples) if tuples else 1
    tuples = [t + ("",) * (levels - len(t)) for t in tuples]
    has_index = not isinstance(view.index, pd.RangeIndex)
    names = [n or "" for n in view.index.names] if has_index else []
    header = []
    for lev in range(levels):
        row = (
            [{"text": esc(n), "span": 1, "rowspan": levels, "cls": "idx"} for n in names] if lev == 0 else []
        )
        i = 0
        while i < len(tuples):
            j = i
            while (
                j + 1 < len(tuples) and tuples[j + 1][: lev + 1] == tuples[i][: lev + 1] and lev < levels - 1
            ):
                j += 1
            label = tuples[i][lev]
            cls = " ".join(
                x for x in ("grp" if lev < levels - 1 else "", "ref" if _is_study(label) else "") if x
            )
            row.append({"text": esc(label), "span": j - i + 1, "rowspan": 1, "cls": cls})
            i = j + 1
        header.append(row)
    rows = []
    prev: tuple = ()
    for idx, values in zip(view.index, view.itertuples(index=False, name=None), strict=True):
        idx_t = idx if isinstance(idx, tuple) else (idx,)
        row = []
        if has_index:
            for k, v in enumerate(idx_t):
                same = prev[: k + 1] == idx_t[: k + 1]
                row.append({"text": "" if same else esc(v), "cls": "idx", "reason": None})
        prev = idx_t
        for t, v in zip(tuples, values, strict=True):
            text = _text(v)
            cls = [
                c
                for c in (
                    "num" if NUMERIC.match(text) or text in ("not run", "—") else "",
                    "ref" if any(_is_study(x) for x in t) else "",
                    "hash" if HASH.match(text) else "wrap" if len(text) > 40 else "",
                )
                if c
            ]
            row.append(
                {
                    "text": esc(text),
                    "cls": " ".join(cls),
                    "reason": esc(v.reason) if isinstance(v, NotRun) else None,
                }
            )
        rows.append(row)
    return {"header": header, "rows": rows}


def md_table(view: pd.DataFrame) -> str:
    has_index = not isinstance(view.index, pd.RangeIndex)
    names = [n or "" for n in view.index.names] if has_index else []
    heads = [
        " · ".join(str(x) for x in (c if isinstance(c, tuple) else (c,)) if str(x)) for c in view.columns
    ]

    def cell(v: Any) -> str:
        return _text(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(names + heads) + " |", "|" + "---|" * (len(names) + len(heads))]
    for idx, values in zip(view.index, view.itertuples(index=False, name=None), strict=True):
        idx_t = (idx if isinstance(idx, tuple) else (idx,)) if has_index else ()
        lines.append("| " + " | ".join([cell(x) for x in idx_t] + [cell(v) for v in values]) + " |")
    return "\n".join(lines)


def data_uri(png: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")


def all_notes(item: Item) -> list[str]:
    """The item's notes plus the reason of every "not run" cell, each once."""
    out = list(item.notes)
    if item.view is not None:
        for v in item.view.to_numpy().ravel():
            if isinstance(v, NotRun) and v.reason and f"not run: {v.reason}" not in out:
                out.append(f"not run: {v.reason}")
    return out


def _finalize(v: Any) -> Any:
    return v if isinstance(v, Markup) or not isinstance(v, str) else esc(v)


_LOADER = jinja2.PackageLoader("dlbench.report", "templates")
_HTML = jinja2.Environment(
    loader=_LOADER, autoescape=True, undefined=jinja2.StrictUndefined, finalize=_finalize
)
_MD = jinja2.Environment(
    loader=_LOADER, autoescape=False, undefined=jinja2.StrictUndefined, keep_trailing_newline=True
)


def _context(
    title: str, subtitle: str, banner: dict, sections: list[Section], environment: list[KeyValues], html: bool
) -> dict[str, Any]:
    items = [i for s in sections for i in s.items]
    ctx: dict[str, Any] = {
        "title": title,
        "subtitle": subtitle,
        "banner": banner,
        "sections": sections,
        "environment": environment,
        "all_notes": {i.key: [esc(n) if html else n for n in all_notes(i)] for i in items},
    }
    views = [(i.key, i.view) for i in items if i.view is not None and i.not_run is None]
    views += [(kv.key, kv.view) for kv in environment if kv.view is not None]
    if html:
        ctx["tables"] = {k: table_cells(v) for k, v in views}
        ctx["images"] = {i.key: data_uri(i.image) for i in items if i.image is not None and i.not_run is None}
    else:
        ctx["md_tables"] = {k: md_table(v) for k, v in views}
        ctx["figure_link"] = "embedded in report.html (this Markdown links no image files)"
    return ctx


def render_markdown(
    title: str, subtitle: str, banner: dict, sections: list[Section], environment: list[KeyValues]
) -> str:
    text = _MD.get_template("report.md.j2").render(
        **_context(title, subtitle, banner, sections, environment, False)
    )
    return re.sub(r"\n{3,}", "\n\n", text).rstrip() + "\n"


def render_html(
    title: str,
    subtitle: str,
    banner: dict,
    sections: list[Section],
    environment: list[KeyValues],
    footer: str,
) -> str:
    css = (Path(__file__).parent / "templates" / "report.css").read_text()
    ctx = _context(title, subtitle, banner, sections, environment, True)
    return _HTML.get_template("report.html.j2").render(css=Markup(css), footer=footer, **ctx)
