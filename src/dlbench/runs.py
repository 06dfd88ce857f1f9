"""``dlbench runs``: what studies and pipeline runs a folder or a store holds.

A run is any folder with a ``spec.yaml`` (a ``dlbench study`` folder, or a pipeline run's bundle in a store,
which also has ``MANIFEST.json``) or with a ``report/record.json`` (step commands run one by one, then
``dlbench report``), found at most ``MAX_DEPTH`` folders down and not inside another run.
For each: its name (path below the root), the spec's name, when it ran, a status from its records, and
its report. Its records and ``index.json`` are read through their schemas (:mod:`dlbench.schemas`): a
damaged one makes the run's status ``damaged: <file>: field ...`` (the other runs are still listed).
"""

from __future__ import annotations

import json
import os
from typing import Any

import yaml

from dlbench.layout import INDEX_NAME
from dlbench.schemas import IndexFile, RecordFile
from dlbench.store import MANIFEST_NAME, PARTIAL_NAME, Store

MAX_DEPTH = 3


def _read_json(store: Store, key: str) -> dict[str, Any]:
    try:
        data = json.loads(store.read_bytes(key))
    except Exception:  # noqa: BLE001 - an unreadable record counts as missing
        return {}
    return data if isinstance(data, dict) else {}


def _damaged(store: Store, keys: list[str], model) -> str | None:
    """The first of ``keys`` that does not fit its schema, as one line naming the file and the field."""
    from dlbench.errors import DlbenchError
    from dlbench.schemas import check_file

    for key in keys:
        where = store.describe(key)
        try:
            data = json.loads(store.read_bytes(key))
        except ValueError as exc:
            return f"{where}: not JSON ({' '.join(str(exc).split())[:80]})"
        except Exception as exc:  # noqa: BLE001 - a folder, a link loop, a store error
            return f"{where}: cannot read ({' '.join(str(exc).split())[:80]})"
        try:
            check_file(data, model, where)
        except DlbenchError as exc:
            return exc.message
    return None


def list_runs(store: Store) -> list[dict[str, Any]]:
    """Every run below the store's root, newest first."""
    keys = {o.key for o in store.list()}
    marks = ("spec.yaml", "report/record.json", PARTIAL_NAME)
    found = {k[: -len(m) - 1] for k in keys for m in marks if k.endswith(f"/{m}")}
    found |= {""} if any(m in keys for m in marks) else set()
    prefixes = sorted(found, key=lambda p: (p.count("/"), p))
    runs: list[str] = []
    for p in prefixes:
        depth = 0 if not p else p.count("/") + 1
        if depth > MAX_DEPTH or any(p.startswith(f"{r}/") or r == "" for r in runs):
            continue
        runs.append(p)
    out = []
    for p in runs:
        base = f"{p}/" if p else ""
        try:
            spec = (
                yaml.safe_load(store.read_bytes(f"{base}spec.yaml")) or {}
                if f"{base}spec.yaml" in keys
                else {"name": "(steps)"}
            )
        except Exception:  # noqa: BLE001
            spec = {}
        record_keys = [k for k in sorted(keys) if k.startswith(base) and k.endswith("/record.json")]
        records = [_read_json(store, k) for k in record_keys]
        index_keys = [f"{base}{INDEX_NAME}"] if f"{base}{INDEX_NAME}" in keys else []
        damaged = _damaged(store, record_keys, RecordFile) or _damaged(store, index_keys, IndexFile)
        failed = sum(1 for r in records if r.get("status") not in ("ok", None))
        running = sum(1 for r in records if r.get("status") == "running")
        report = _read_json(store, f"{base}report/record.json")
        when = report.get("ended") or max(
            (r.get("ended") or r.get("started") or "" for r in records), default=""
        )
        if f"{base}{PARTIAL_NAME}" in keys:
            status = "partial fetch (dlbench fetch it again)"
        elif damaged:
            status = f"damaged: {damaged}"
        elif not report:
            status = "no report yet" if not running else f"{running} running"
        elif failed:
            status = f"{failed} failed"
        else:
            status = "ok"
        html = f"{base}report/report.html"
        out.append(
            {
                "name": p or ".",
                "spec": spec.get("name", "?") if isinstance(spec, dict) else "?",
                "date": when[:16].replace("T", " "),
                "status": status,
                "records": len(records),
                "kind": "pipeline run" if f"{base}{MANIFEST_NAME}" in keys else "study",
                "report": store.describe(html) if html in keys else "",
            }
        )
    out.sort(key=lambda r: r["date"], reverse=True)
    return out


def format_runs(rows: list[dict[str, Any]]) -> str:
    cols = [
        ("name", "NAME"),
        ("spec", "SPEC"),
        ("date", "DATE (UTC)"),
        ("status", "STATUS"),
        ("report", "REPORT"),
    ]
    table = [[h for _, h in cols]] + [[str(r[k]) for k, _ in cols] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(cols) - 1)]
    lines = []
    for row in table:
        lines.append(
            "  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=False)) + "  " + row[-1]
        )
    return "\n".join(line.rstrip() for line in lines)


def is_local(url: str | os.PathLike) -> bool:
    text = str(url)
    return "://" not in text or text.startswith("file://")
