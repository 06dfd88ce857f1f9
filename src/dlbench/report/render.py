"""Markdown and self-contained HTML from the report's items.

The HTML needs nothing outside the file: CSS is inline, figures are base64 PNG ``data:`` URIs, there
is no script, and no text in it forms a URL (a ``://`` coming from a record's text is written with an
entity for its colon, so it reads the same but is never a reference).
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlbench.report.collect import NotRun
from dlbench.report.tables import Item, Table, fmt

NUMERIC_KINDS = {"int", "float", "lr", "pct", "s", "ms", "x", "ips", "gflops", "m", "mb"}


@dataclass
class Section:
    key: str
    title: str
    intro: str = ""
    items: list[Item] = field(default_factory=list)


@dataclass
class KeyValues:
    """A small titled block of facts (environment), rendered as a two-column list or a table."""

    key: str
    title: str
    table: Table | None = None
    text: str | None = None        # preformatted (spec YAML)
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- Markdown

def _md_cell(value: Any, kind: str) -> str:
    return fmt(value, kind).replace("|", "\\|").replace("\n", " ")


def md_table(table: Table) -> str:
    head = "| " + " | ".join(c.label.replace("|", "\\|") for c in table.columns) + " |"
    sep = "|" + "|".join("---:" if c.kind in NUMERIC_KINDS else "---" for c in table.columns) + "|"
    body = ["| " + " | ".join(_md_cell(row.get(c.key), c.kind) for c in table.columns) + " |" for row in table.rows]
    return "\n".join([head, sep, *body])


def md_item(item: Item, figures_rel: str = "figures") -> str:
    out = [f"### {item.title}", ""]
    if item.caption:
        out += [item.caption, ""]
    if item.not_run is not None:
        out += [f"> **not run**: {item.not_run.reason}", ""]
        return "\n".join(out)
    if item.table is not None:
        out += [md_table(item.table), ""]
        out += [f"- {n}" for n in item.all_notes()]
        if item.all_notes():
            out.append("")
    if item.image is not None:
        out += [f"![{item.title}]({figures_rel}/{item.image.name})", ""]
    if item.sources:
        shown = ", ".join(f"`{s}`" for s in item.sources[:12])
        more = f" and {len(item.sources) - 12} more" if len(item.sources) > 12 else ""
        out += [f"<sub>From {len(item.sources)} record(s): {shown}{more}.</sub>", ""]
    return "\n".join(out)


def render_markdown(title: str, subtitle: str, cards: list[tuple[str, str, str]], sections: list[Section],
                    environment: list[KeyValues]) -> str:
    out = [f"# {title}", "", subtitle, ""]
    if cards:
        out += ["## Headline numbers", "", "| | |", "|---|---|"]
        out += [f"| {label} | **{value}** {detail} |" for label, value, detail in cards]
        out.append("")
    for s in sections:
        out += [f"## {s.title}", ""]
        if s.intro:
            out += [s.intro, ""]
        out += [md_item(i) for i in s.items]
    out += ["## Environment and provenance", ""]
    for kv in environment:
        out += [f"### {kv.title}", ""]
        if kv.table is not None:
            out += [md_table(kv.table), ""]
        if kv.text is not None:
            out += ["```yaml", kv.text.rstrip(), "```", ""]
        out += [f"- {n}" for n in kv.notes]
        if kv.notes:
            out.append("")
    return "\n".join(out).rstrip() + "\n"


# --------------------------------------------------------------------------- HTML

CSS = """
:root { --fg:#1d2330; --muted:#5b6475; --line:#dfe3ea; --bg:#ffffff; --band:#f6f8fb; --accent:#2457c5;
        --ref:#fbf6e9; --nr:#8a5a00; --nrbg:#fff4dc; }
* { box-sizing: border-box; }
body { margin:0; background:#eef1f6; color:var(--fg);
       font: 15px/1.5 "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1320px; margin: 0 auto; padding: 28px 32px 60px; background: var(--bg); min-height:100vh; }
header h1 { margin: 0 0 4px; font-size: 28px; }
header .sub { color: var(--muted); margin: 0; }
nav.toc { margin: 18px 0 8px; padding: 10px 14px; background: var(--band); border-radius: 8px; font-size: 14px; }
nav.toc a { color: var(--accent); text-decoration: none; margin-right: 16px; white-space: nowrap; }
h2 { margin: 36px 0 10px; padding-bottom: 6px; border-bottom: 2px solid var(--line); font-size: 22px; }
h3 { margin: 26px 0 6px; font-size: 17px; }
p.caption { margin: 0 0 10px; color: var(--muted); }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(230px, 1fr)); gap: 12px; }
.card { border: 1px solid var(--line); border-radius: 10px; padding: 12px 14px; background: var(--band); }
.card .label { color: var(--muted); font-size: 13px; }
.card .value { font-size: 24px; font-weight: bold; margin: 2px 0; }
.card .detail { font-size: 12px; color: var(--muted); }
.card.nr .value { color: var(--nr); font-size: 18px; }
.tablewrap { overflow-x: auto; border: 1px solid var(--line); border-radius: 8px; }
table { border-collapse: collapse; width: 100%; font-size: 13.5px; }
th, td { padding: 6px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { background: var(--band); font-weight: 600; vertical-align: bottom; min-width: 4.5em; }
td { white-space: nowrap; }
td.wrap { white-space: normal; min-width: 16em; }
td.hash { white-space: normal; word-break: break-all; min-width: 18em; font-family: "DejaVu Sans Mono", monospace;
          font-size: 12px; }
th.n { text-align: right; }
tbody tr:nth-child(even) td { background: #fafbfd; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
th.ref, td.ref { background: var(--ref) !important; color: #5c4a1a; }
th.ref { font-style: italic; }
span.nr { display: inline-block; padding: 0 7px; border-radius: 9px; background: var(--nrbg); color: var(--nr);
          font-size: 12px; font-weight: 600; white-space: nowrap; }
td.err { color: #a12020; font-family: "DejaVu Sans Mono", monospace; font-size: 12.5px; }
ul.notes { margin: 8px 0 0; padding-left: 20px; color: var(--muted); font-size: 13px; }
.notrun { border: 1px dashed #e0b860; background: var(--nrbg); border-radius: 8px; padding: 10px 14px; }
.notrun b { color: var(--nr); }
figure { margin: 8px 0 0; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 8px; background: #fff; }
details.src { margin-top: 6px; font-size: 12.5px; color: var(--muted); }
details.src code, code { font-family: "DejaVu Sans Mono", monospace; font-size: 12px; }
pre { background: var(--band); border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px;
      overflow-x: auto; font-size: 12.5px; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
"""


def esc(text: Any) -> str:
    """HTML-escape, and keep any ``scheme://`` in record text from being a URL in the file."""
    return html.escape(str(text), quote=True).replace("://", "&#58;//")


def _cell(value: Any, kind: str, ref: bool, key: str) -> str:
    cls = []
    if kind in NUMERIC_KINDS:
        cls.append("num")
    if ref:
        cls.append("ref")
    if isinstance(value, NotRun):
        inner = f'<span class="nr" title="{esc(value.reason)}">not run</span>'
    else:
        text = fmt(value, kind)
        inner = esc(text)
        if key == "error":
            cls.append("err")
        if kind == "hash":
            cls.append("hash")
        elif len(text) > 32 and kind not in NUMERIC_KINDS:
            cls.append("wrap")
    c = f' class="{" ".join(cls)}"' if cls else ""
    return f"<td{c}>{inner}</td>"


def html_table(table: Table) -> str:
    def th(c) -> str:
        cls = " ".join(x for x in ("ref" if c.ref else "", "n" if c.kind in NUMERIC_KINDS else "") if x)
        return f'<th class="{cls}">{esc(c.label)}</th>' if cls else f"<th>{esc(c.label)}</th>"

    head = "".join(th(c) for c in table.columns)
    body = "".join("<tr>" + "".join(_cell(row.get(c.key), c.kind, c.ref, c.key) for c in table.columns) + "</tr>"
                   for row in table.rows)
    return f'<div class="tablewrap"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def data_uri(png: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")


def html_item(item: Item) -> str:
    out = [f'<div class="item" id="{esc(item.key)}"><h3>{esc(item.title)}</h3>']
    if item.caption:
        out.append(f'<p class="caption">{esc(item.caption)}</p>')
    if item.not_run is not None:
        out.append(f'<div class="notrun"><b>not run</b>: {esc(item.not_run.reason)}</div></div>')
        return "".join(out)
    if item.table is not None:
        out.append(html_table(item.table))
        notes = item.all_notes()
        if notes:
            out.append('<ul class="notes">' + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>")
    if item.image is not None:
        out.append(f'<figure><img alt="{esc(item.title)}" src="{data_uri(item.image)}"></figure>')
    if item.sources:
        ids = ", ".join(f"<code>{esc(s)}</code>" for s in item.sources)
        out.append(f'<details class="src"><summary>From {len(item.sources)} record(s)</summary>{ids}</details>')
    out.append("</div>")
    return "".join(out)


def render_html(title: str, subtitle: str, cards: list[tuple[str, str, str]], sections: list[Section],
                environment: list[KeyValues], footer: str) -> str:
    toc = ['<a href="#headline">Headline numbers</a>'] if cards else []
    toc += [f'<a href="#{esc(s.key)}">{esc(s.title)}</a>' for s in sections]
    toc.append('<a href="#environment">Environment and provenance</a>')
    body = [f"<header><h1>{esc(title)}</h1><p class=\"sub\">{esc(subtitle)}</p></header>",
            f'<nav class="toc">{"".join(toc)}</nav>']
    if cards:
        cs = []
        for label, value, detail in cards:
            nr = " nr" if value == "not run" else ""
            cs.append(f'<div class="card{nr}"><div class="label">{esc(label)}</div>'
                      f'<div class="value">{esc(value)}</div><div class="detail">{esc(detail)}</div></div>')
        body.append(f'<section id="headline"><h2>Headline numbers</h2><div class="cards">{"".join(cs)}</div>'
                    "</section>")
    for s in sections:
        intro = f'<p class="caption">{esc(s.intro)}</p>' if s.intro else ""
        body.append(f'<section id="{esc(s.key)}"><h2>{esc(s.title)}</h2>{intro}'
                    + "".join(html_item(i) for i in s.items) + "</section>")
    env = ['<section id="environment"><h2>Environment and provenance</h2>']
    for kv in environment:
        env.append(f'<div class="item" id="{esc(kv.key)}"><h3>{esc(kv.title)}</h3>')
        if kv.table is not None:
            env.append(html_table(kv.table))
        if kv.text is not None:
            env.append(f"<pre>{esc(kv.text.rstrip())}</pre>")
        if kv.notes:
            env.append('<ul class="notes">' + "".join(f"<li>{esc(n)}</li>" for n in kv.notes) + "</ul>")
        env.append("</div>")
    env.append("</section>")
    body += env
    body.append(f"<footer>{esc(footer)}</footer>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(title)}</title><style>{CSS}</style></head>\n<body><main>"
            + "\n".join(body) + "</main></body></html>\n")
