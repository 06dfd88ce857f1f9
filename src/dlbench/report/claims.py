"""The study's claims, tested: what it says, what its own numbers show, what ours show, and a verdict.

Each claim is a function of the comparison frame (:func:`dlbench.report.study_tables.comparison`) that
returns the effects it is about (a speedup, an accuracy gain, ...) as the study printed them and as we
measured them, :class:`~dlbench.report.uncertainty.Estimate` each (a mean and, over seed repeats, a 95 %
interval). :func:`judge` turns effects and the claimed range into a verdict:

- ``holds``: every effect lies in the claimed range (with an interval: its interval reaches the range and
  excludes "no effect");
- ``does not hold``: an effect lies outside the range (with an interval: all of it);
- ``not resolved``: an interval holds both the range and "no effect" (the effect is inside the noise);
- ``not testable (why)``: the runs that decide it are missing, or this is a smoke run.

A single run has no interval: its verdict is decided on its value and says "one run each". The study's
internal contradictions (two of its tables printing different numbers for the same stated settings) are
claims too, judged on its own numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from dlbench.report import reference as ref
from dlbench.report.collect import dataset_label, model_label
from dlbench.report.document import Item, builder
from dlbench.report.uncertainty import Estimate, difference, ratio

HOLDS, FAILS, UNRESOLVED = "holds", "does not hold", "not resolved"
VERDICTS = (HOLDS, FAILS, UNRESOLVED, "not testable")
INF = math.inf


@dataclass
class Effect:
    """One measured effect of a claim: where (e.g. "MNIST ResNet-18"), the study's value, ours."""

    where: str
    study: Estimate | None
    ours: Estimate | None
    runs: tuple[str, ...] = ()


@dataclass
class Claim:
    key: str
    claim: str
    study_says: str
    unit: str  # "x" (a ratio), "pp" (percentage points), "R²"
    low: float
    high: float
    null: float  # the value of "no effect"
    effects: Callable[[pd.DataFrame], list[Effect]]
    internal: bool = False  # a claim about the study's own tables (judged on its numbers)
    range_text: str | None = None  # the claimed range in words, where the numbers read badly


# --------------------------------------------------------------------------- verdicts


def judge_one(e: Estimate, low: float, high: float, null: float) -> str:
    """The verdict on one effect against the claimed range [low, high] ("no effect" is ``null``)."""
    if e.half is None:
        return HOLDS if low <= e.mean <= high else FAILS
    if e.high < low or e.low > high:
        return FAILS
    if e.low <= null <= e.high:
        return UNRESOLVED
    return HOLDS


def judge(estimates: list[Estimate], low: float, high: float, null: float) -> str | None:
    """The verdict on all of a claim's effects (None when there are none): any effect outside the range
    decides "does not hold", then any inside the noise "not resolved"."""
    if not estimates:
        return None
    verdicts = [judge_one(e, low, high, null) for e in estimates]
    for v in (FAILS, UNRESOLVED):
        if v in verdicts:
            return v
    return HOLDS


def _show(e: Estimate, unit: str) -> str:
    if unit == "front":
        return "on the front" if e.mean >= 1 else "off the front"
    if unit == "dx":
        sign = "-" if e.mean < 0 else "+"
        return sign + _x(abs(e.mean)) + (f" ± {_x(e.half)}" if e.half is not None else "")
    if unit == "x":
        return f"{_x(e.mean)}" + (f" ± {_x(e.half)}" if e.half is not None else "")
    if unit == "pp":
        return f"{e.mean:+.2f}" + (f" ± {e.half:.2f}" if e.half is not None else "") + " pp"
    return f"{e.mean:.3f}"


def _x(v: float) -> str:
    """A ratio with its digits: 0.005x, not 0.01x."""
    return f"{v:.2f}x" if abs(v) >= 0.1 else f"{v:.2g}x"


def _range(c: Claim) -> str:
    if c.range_text:
        return c.range_text
    u = "" if c.unit == "R²" else (" pp" if c.unit == "pp" else "x")
    if c.unit == "R²":
        return f"R² ≥ {c.low:g}"
    if c.high == INF:
        return f"≥ {c.low:g}{u}"
    if c.low == -INF:
        return f"≤ {c.high:g}{u}"
    return f"{c.low:g}{u} to {c.high:g}{u}"


# --------------------------------------------------------------------------- effects


def _pub(v: str) -> Estimate | None:
    f = ref.value(v)
    return Estimate(f, 1) if f is not None else None


def _where(r: pd.Series, *keys: str) -> str:
    bits = {
        "dataset": dataset_label(r["dataset"]),
        "model": model_label(r["model"]),
        "optimizer": {"sgd": "SGD", "adam": "Adam"}.get(r["optimizer"], r["optimizer"]),
    }
    return " ".join(bits[k] for k in keys)


def _runs(*rows: pd.Series) -> tuple[str, ...]:
    lists = [r.get(k) for r in rows for k in ("ours_runs", "time_runs")]
    ids = (x for v in lists if isinstance(v, str) for x in v.split())
    return tuple(dict.fromkeys(ids))


def _secs(r: pd.Series) -> Estimate | None:
    e = r.get("_secs")
    return e if isinstance(e, Estimate) else None


def _acc(r: pd.Series) -> Estimate | None:
    e = r.get("_acc")
    return e if isinstance(e, Estimate) else None


def _pairs(C: pd.DataFrame, table: str, by: list[str], axis: str) -> list[tuple[pd.Series, pd.Series]]:
    rows = C[C["table"] == table]
    out = []
    for _, g in rows.groupby(by, sort=False):
        vals = list(dict.fromkeys(g[axis]))
        if len(vals) == 2:
            out.append((g[g[axis] == vals[0]].iloc[0], g[g[axis] == vals[1]].iloc[0]))
    return out


def pin_memory_effects(C: pd.DataFrame) -> list[Effect]:
    """Table 3: time with pin_memory off / time with it on, per dataset and model."""
    out = []
    for on, off in _pairs(C, "table3", ["dataset", "model"], "pin_memory"):
        if on["pin_memory"] != "true":
            on, off = off, on
        out.append(
            Effect(
                _where(on, "dataset", "model"),
                ratio(_pub(off["study_seconds"]), _pub(on["study_seconds"])),
                ratio(_secs(off), _secs(on)),
                _runs(on, off),
            )
        )
    return out


def gpu_speedup_effects(C: pd.DataFrame) -> list[Effect]:
    """Table 4: CPU time / GPU time, per model and optimizer."""
    out = []
    for a, b in _pairs(C, "table4", ["model", "optimizer"], "device"):
        cpu, gpu = (a, b) if a["device"] == "cpu" else (b, a)
        out.append(
            Effect(
                _where(cpu, "model", "optimizer"),
                ratio(_pub(cpu["study_seconds"]), _pub(gpu["study_seconds"])),
                ratio(_secs(cpu), _secs(gpu)),
                _runs(cpu, gpu),
            )
        )
    return out


def speedup_growth_effects(C: pd.DataFrame) -> list[Effect]:
    """Table 4: the GPU speedup of each model minus that of the next smaller one, per optimizer."""
    sp = gpu_speedup_effects(C)
    out = []
    for opt in ("SGD", "Adam"):
        mine = [e for e in sp if e.where.endswith(opt)]
        for small, big in zip(mine, mine[1:], strict=False):
            out.append(
                Effect(
                    f"{big.where.split()[0]} over {small.where}",
                    difference(big.study, small.study),
                    difference(big.ours, small.ours),
                    small.runs + big.runs,
                )
            )
    return out


def epochs_gain_effects(C: pd.DataFrame) -> list[Effect]:
    """Table 2: accuracy at 10 epochs minus accuracy at 4, per dataset and model."""
    out = []
    for a, b in _pairs(C, "table2", ["dataset", "model"], "epochs"):
        four, ten = (a, b) if a["epochs"] == "4" else (b, a)
        out.append(
            Effect(
                _where(four, "dataset", "model"),
                difference(_pub(ten["study_accuracy_pct"]), _pub(four["study_accuracy_pct"])),
                difference(_acc(ten), _acc(four)),
                _runs(four, ten),
            )
        )
    return out


def svm_slowness_effects(C: pd.DataFrame) -> list[Effect]:
    """SVM fit time / the fastest ResNet training time (whole training, any published cell), per dataset
    and kernel."""
    out = []
    timed = C[(C["table"] != "svm") & (C["study_seconds"] != "")]
    for _, s in C[C["table"] == "svm"].iterrows():
        t = timed[timed["dataset"] == s["dataset"]]
        study_fast = min((float(x) for x in t["study_seconds"]), default=None)
        ours_t = [e for _, r in t.iterrows() if (e := _secs(r)) is not None]
        ours_fast = min(ours_t, key=lambda e: e.mean) if ours_t else None
        fit = s.get("ours_fit_ms")
        ours_fit = Estimate(float(fit) / 1000, 1) if isinstance(fit, float) and fit == fit else None
        sf = ref.value(s["study_fit_ms"])
        out.append(
            Effect(
                f"{dataset_label(s['dataset'])} {'RBF' if s['model'] == 'svm-rbf' else 'polynomial'}",
                ratio(Estimate(sf / 1000, 1), Estimate(study_fast, 1)) if sf and study_fast else None,
                ratio(ours_fit, ours_fast),
                _runs(s),
            )
        )
    return out


def _r2(x: list[float], y: list[float]) -> float | None:
    if len(x) < 3 or len(set(x)) < 2:
        return None
    n = len(x)
    mx, my = sum(x) / n, sum(y) / n
    sxx = sum((a - mx) ** 2 for a in x)
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    syy = sum((b - my) ** 2 for b in y)
    return 1.0 if syy == 0 else (sxy * sxy) / (sxx * syy)


def gflops_linear_effects(C: pd.DataFrame) -> list[Effect]:
    """Table 4: R² of the least-squares line of GPU training time against GFLOPs, per optimizer."""
    out = []
    rows = C[(C["table"] == "table4") & (C["device"] == "cuda")]
    for opt, g in rows.groupby("optimizer", sort=False):
        xs = [float(v) for v in g["study_gflops"]]
        ys = [float(v) for v in g["study_seconds"]]
        ours = [
            (x, e.mean) for x, (_, r) in zip(xs, g.iterrows(), strict=True) if (e := _secs(r)) is not None
        ]
        r2s, r2o = _r2(xs, ys), _r2([a for a, _ in ours], [b for _, b in ours])
        out.append(
            Effect(
                {"sgd": "SGD", "adam": "Adam"}.get(opt, opt),
                Estimate(r2s, 1) if r2s is not None else None,
                Estimate(r2o, 1) if r2o is not None else None,
                _runs(*[r for _, r in g.iterrows()]),
            )
        )
    return out


def pareto_effects(C: pd.DataFrame) -> list[Effect]:
    """Per dataset: 1 when a ResNet-18 Adam point is on the accuracy/time Pareto front, else 0."""
    out = []
    timed = C[(C["table"] != "svm") & (C["study_seconds"] != "") & (C["study_accuracy_pct"] != "")]
    for ds, g in timed.groupby("dataset", sort=False):
        pts = [(float(r["study_seconds"]), float(r["study_accuracy_pct"])) for _, r in g.iterrows()]
        labels = [(r["model"], r["optimizer"]) for _, r in g.iterrows()]
        study = _on_front(pts, labels)
        ours_rows = g.drop_duplicates("run_id")
        ours_rows = ours_rows[[_secs(r) is not None and _acc(r) is not None for _, r in ours_rows.iterrows()]]
        opts = [(_secs(r).mean, _acc(r).mean) for _, r in ours_rows.iterrows()]
        ol = [(r["model"], r["optimizer"]) for _, r in ours_rows.iterrows()]
        ours = _on_front(opts, ol) if len(opts) >= 2 and ("resnet18", "adam") in ol else None
        out.append(Effect(dataset_label(ds), study, ours, _runs(*[r for _, r in ours_rows.iterrows()])))
    return out


def _on_front(points: list[tuple[float, float]], labels: list[tuple[str, str]]) -> Estimate | None:
    from dlbench.report.figures import pareto_front

    if len(points) < 2:
        return None
    front = {labels[i] for i in pareto_front(points)}
    return Estimate(1.0 if ("resnet18", "adam") in front else 0.0, 1)


def _same_settings(table_a: str, table_b: str, **match: str) -> Callable[[pd.DataFrame], list[Effect]]:
    """Two published cells with the same stated settings: the ratio of their times (1 = consistent)."""

    def effects(C: pd.DataFrame) -> list[Effect]:
        out = []
        for ds, model in (("fashion-mnist", "resnet18"), ("fashion-mnist", "resnet50")):
            sel = {"dataset": ds, "model": model, **match}
            a = _cell(C, table_a, **sel)
            b = _cell(C, table_b, **sel)
            if a is None or b is None:
                continue
            out.append(
                Effect(
                    f"{dataset_label(ds)} {model_label(model)}",
                    ratio(_pub(a["study_seconds"]), _pub(b["study_seconds"])),
                    ratio(_secs(a), _secs(b)),
                    _runs(a, b),
                )
            )
        return out

    return effects


def _cell(C: pd.DataFrame, table: str, **match: str) -> pd.Series | None:
    rows = C[C["table"] == table]
    for k, v in match.items():
        rows = rows[rows[k] == v]
    return rows.iloc[0] if len(rows) else None


def _as_run(cell: pd.Series) -> dict:
    """The config of a run with exactly a cell's stated settings and what the study fixes for all."""
    c = {**ref.FIXED, **ref._stated(cell)}
    return {**c, "amp": ref.STUDY_AMP.get(str(c.get("device")))}


def _printed(cell: pd.Series) -> str:
    return (
        " / ".join(
            f"{cell[k]} {u}" for k, u in (("test_accuracy_pct", "%"), ("train_seconds", "s")) if cell[k]
        )
        + f" ({ref.TABLE_TITLES[cell['table']]})"
    )


def contradictions() -> list[tuple[str, str, str]]:
    """Where the study contradicts itself, from its published cells alone: a results-list run whose
    settings other cells state with other numbers, and a results-list run whose numbers other cells
    print under other settings. (what, the results list's numbers, the others')."""
    pub = ref.published()
    out = []
    for _, cell in pub[pub["table"] == "all-runs"].iterrows():
        same = set(ref.cells_for(_as_run(cell))) - {cell["cell"]}
        others = pub[pub["cell"].isin(same)]
        differ = [
            o
            for _, o in others.iterrows()
            if any(o[k] and cell[k] and o[k] != cell[k] for k in ("test_accuracy_pct", "train_seconds"))
        ]
        if differ:
            out.append(
                (
                    f"{ref.describe(cell['cell'])}: the same settings, other numbers",
                    _printed(cell),
                    "; ".join(_printed(o) for o in differ),
                )
            )
        twins = pub[
            (pub["table"] != "all-runs")
            & (pub["train_seconds"] != "")
            & (pub["train_seconds"] == cell["train_seconds"])
            & (pub["test_accuracy_pct"] == cell["test_accuracy_pct"])
            & ~pub["cell"].isin(same)
        ]
        for _, t in twins.iterrows():
            diff = [s for s in ref.SETTINGS if t[s] and cell[s] and t[s] != cell[s]]
            if diff:
                out.append(
                    (
                        f"{ref.describe(cell['cell'])}: the same numbers under other settings",
                        _printed(cell),
                        f"{_printed(t)} states {', '.join(f'{s} {t[s]}' for s in diff)}",
                    )
                )
    return out


CLAIMS: list[Claim] = [
    Claim(
        "epochs_gain",
        "10 epochs add 0.3-0.5 points of accuracy over 4",
        "Training for 10 instead of 4 epochs improves test accuracy by about 0.3-0.5 points (Table 2).",
        "pp",
        0.3,
        0.5,
        0.0,
        epochs_gain_effects,
    ),
    Claim(
        "pin_memory",
        "pin_memory=True makes training 1.5x-2x faster",
        'pin_memory=True gives "1.5x to 2x" faster training (Table 3: time off / time on).',
        "x",
        1.5,
        2.0,
        1.0,
        pin_memory_effects,
    ),
    Claim(
        "gpu_speedup",
        "The GPU trains 4x-5x faster than the CPUs",
        'The A30 gives a "4x-5x" speedup over the dual Xeon CPUs (Table 4: CPU time / GPU time).',
        "x",
        4.0,
        5.0,
        1.0,
        gpu_speedup_effects,
    ),
    Claim(
        "speedup_grows",
        "The GPU speedup grows with model size",
        "~4x for ResNet-18, ~4.8x for ResNet-34, ~5x for ResNet-50 (Figure 6): each larger model's speedup "
        "minus the smaller one's is positive.",
        "dx",
        1e-9,
        INF,
        0.0,
        speedup_growth_effects,
        range_text="each larger model > the smaller",
    ),
    Claim(
        "gflops_linear",
        "GPU training time is linear in GFLOPs",
        "Figure 7: a linear relation between the models' GFLOPs and their GPU training time (10 epochs); "
        "tested as R² of the least-squares line ≥ 0.9 (three models per optimizer).",
        "R²",
        0.9,
        1.0,
        -INF,
        gflops_linear_effects,
    ),
    Claim(
        "svm_slower",
        "SVM training is orders of magnitude slower than the ResNets",
        'SVM training is "orders of magnitude" slower than ResNet training: tested as SVM fit time / the '
        "fastest ResNet whole training on the same dataset ≥ 10x.",
        "x",
        10.0,
        INF,
        1.0,
        svm_slowness_effects,
    ),
    Claim(
        "pareto",
        "ResNet-18 with Adam is Pareto-optimal in accuracy vs time",
        "ResNet-18 with Adam is the best accuracy/time trade-off (Figure 3a): tested as a ResNet-18 Adam "
        "point on the Pareto front of every dataset's timed cells (1 = on it).",
        "front",
        1.0,
        1.0,
        0.0,
        pareto_effects,
        range_text="on the Pareto front",
    ),
    Claim(
        "table4_vs_table2",
        "Tables 2 and 4 time the same GPU runs alike (internal consistency)",
        "Fashion-MNIST, Adam, 10 epochs on the GPU appears in Table 2 (batch 16) and Table 4 (batch not "
        "stated): the same stated settings; tested as Table 4 time / Table 2 time within 0.9x-1.1x.",
        "x",
        0.9,
        1.1,
        1.0,
        _same_settings("table4", "table2", optimizer="adam", epochs="10", device="cuda"),
        internal=True,
    ),
]


# --------------------------------------------------------------------------- the table


def claim_verdicts(C: pd.DataFrame, smoke: bool = False) -> pd.DataFrame:
    """One row per claim: claim, study_says, study_numbers_show, ours_show, verdict (and the study's own
    verdict, the runs behind ours)."""
    rows = []
    for c in CLAIMS:
        effects = c.effects(C)
        study = [e.study for e in effects if e.study is not None]
        ours = [e for e in effects if e.ours is not None]
        sv = judge(study, c.low, c.high, c.null)
        ov = judge([e.ours for e in ours], c.low, c.high, c.null)
        study_show = "; ".join(f"{e.where} {_show(e.study, c.unit)}" for e in effects if e.study is not None)
        ours_show = "; ".join(f"{e.where} {_show(e.ours, c.unit)}" for e in ours)
        single = ours and all(e.ours.half is None for e in ours)
        if c.internal:
            verdict = sv or "not testable (the study prints no numbers for it)"
            ours_show = "a claim about the study's own tables; ours at the same cells: " + (
                ours_show or "not run"
            )
        elif ov is None:
            missing = len(effects) - len(ours)
            verdict = (
                f"not testable (no comparable runs of ours for {missing} of {len(effects)} effect(s): see "
                "the tables' notes)"
            )
        elif smoke:
            verdict = "not testable (smoke run: its numbers are meaningless)"
        else:
            verdict = ov
            if len(ours) < len(effects):
                verdict += f" ({len(ours)} of {len(effects)} effects measured)"
        if single and not c.internal:
            ours_show += " (one run each, no interval)"
        rows.append(
            {
                "claim": c.claim,
                "study_says": c.study_says,
                "claimed_range": _range(c),
                "study_numbers_show": (study_show or "no published numbers")
                + (f" → {sv} on the study's numbers" if sv else ""),
                "ours_show": ("SMOKE: " if smoke and ours else "") + (ours_show or "no comparable runs"),
                "verdict": verdict,
                "study_verdict": sv or "not testable",
                "internal": c.internal,
                "smoke": smoke,
                "runs": " ".join(dict.fromkeys(r for e in effects for r in e.runs)),
                "key": c.key,
            }
        )
    rows += _contradiction_rows(C, smoke)
    return pd.DataFrame(rows)


def _contradiction_rows(C: pd.DataFrame, smoke: bool) -> list[dict]:
    """The study's internal contradictions (:func:`contradictions`), each a claim of consistency that its
    own numbers refute; ours: the run that fills those cells."""
    out = []
    for what, listed, others in contradictions():
        out.append(
            {
                "claim": f"One run, one set of numbers: {what.split(':')[0]} (internal consistency)",
                "study_says": "Its paper and its repository's results list report one run at these settings.",
                "claimed_range": "the same values",
                "study_numbers_show": f"{what.split(': ')[1]}: results list {listed} vs {others} → does not "
                "hold on the study's numbers",
                "ours_show": "a claim about the study's own tables; one run of ours stands at these cells",
                "verdict": FAILS,
                "study_verdict": FAILS,
                "internal": True,
                "smoke": smoke,
                "runs": "",
                "key": "consistency",
            }
        )
    return out


def verdict_word(v: str) -> str:
    """The verdict's word (``not testable (why)`` -> ``not testable``)."""
    return next((w for w in VERDICTS if str(v).startswith(w)), str(v))


@builder(
    "table",
    "The study's claims, tested",
    "Each claim the study's text makes, what its own numbers show, what ours show, and a verdict: holds, "
    "does not hold, not resolved (the effect is inside the noise of our repeats), or not testable (why).",
    part="summary",
)
def claims(item: Item, C: pd.DataFrame, smoke: bool) -> None:
    frame = claim_verdicts(C, smoke)
    item.frame = frame
    item.view = frame[["claim", "claimed_range", "study_numbers_show", "ours_show", "verdict"]].rename(
        columns={
            "claim": "claim",
            "claimed_range": "claimed",
            "study_numbers_show": "the study's own numbers show",
            "ours_show": "ours show",
            "verdict": "verdict",
        }
    )
    item.notes = [
        "Verdicts on ours use the 95 % intervals of our seed repeats where a setting ran two or more times "
        "(spec seeds); with one run each they are decided on the values alone, which cannot tell an effect "
        "from seed noise.",
        "Ours are the runs at the claim's published cells (the study's tables above), at our input and "
        "precision (the tables' notes); the study probably trained at 3x64x64 (its GFLOPs), ours at the "
        "input named there.",
    ]
    if smoke:
        item.notes.insert(0, "SMOKE RUN: our numbers are meaningless; no verdict is drawn from them.")
    item.sources = sorted({r for rs in frame["runs"] for r in str(rs).split() if r})
