"""Run a whole study in this process, task after task of its plan (:mod:`dlbench.plan`), into one folder
(laid out as :mod:`dlbench.layout` says, the same shape a pipeline run's bundle has). A task that fails is
recorded (:mod:`dlbench.runner`) and the study goes on with the tasks that do not depend on it.

A study folder is never mixed or overwritten silently (:func:`prepare_out`): the default folder is named
after the spec (``runs/<spec name>``); a folder that already holds a study is refused unless the caller
asks to ``resume`` it (the same study: runs whose record says ``ok`` are skipped, by run id) or to
``overwrite`` it.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import yaml

from dlbench.errors import DlbenchError
from dlbench.layout import (
    INDEX_NAME,
    SPEC_NAME,
    StudyLayout,
    check_index_path,
    clear_study,
    record_ok,
    write_index,
)
from dlbench.log import describe_config, get_logger, task_header
from dlbench.plan import DataTask, SvmTask, TrainTask, build_plan
from dlbench.runner import (
    Outcome,
    run_data_task,
    run_onnx_task,
    run_profile_task,
    run_report_task,
    run_svm_task,
    run_train_task,
)
from dlbench.spec import StudySpec

log = get_logger("dlbench.study")


class StudyFolderError(DlbenchError):
    """The output folder holds something a study must not mix with or overwrite silently."""


def default_out(spec: StudySpec, parent: str | os.PathLike = "runs") -> Path:
    """``runs/<spec name>`` (``runs/<spec name>-smoke`` for a smoke run): every study gets a folder of its own
    unless told otherwise, and a smoke run never lands where the real study would."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", spec.name).strip("-.") or "study"
    return Path(parent) / (f"{name}-smoke" if spec.smoke else name)


def _resolved(spec: StudySpec) -> dict:
    return json.loads(spec.model_dump_json())


def prepare_out(
    spec: StudySpec,
    out_dir: str | os.PathLike,
    resume: bool = False,
    overwrite: bool = False,
    flag: str = "--out",
) -> str:
    """Check ``out_dir`` before any work: ``"new"`` (absent or empty), ``"resume"`` (it holds this study and
    ``resume``), ``"overwrite"`` (it held a study and was emptied). Anything else raises
    :class:`StudyFolderError` and changes nothing."""
    out = Path(out_dir)
    if resume and overwrite:
        raise StudyFolderError("--resume and --overwrite exclude each other", "choose one")
    if not out.exists():
        return "new"
    if not out.is_dir():
        raise StudyFolderError(f"{flag} {out} is a file, not a folder", f"choose another {flag}")
    if not any(out.iterdir()):
        return "new"
    check_index_path(out / INDEX_NAME)
    held = out / SPEC_NAME
    if not held.is_file():
        raise StudyFolderError(
            f"{flag} {out} is not empty and holds no study (no {SPEC_NAME})",
            f"choose an empty or new folder with {flag}",
        )
    old = _held_spec(held, flag)
    old_name = old.get("name")
    new = _resolved(spec)
    done = sum(
        record_ok(d) for step in ("train", "svm") if (out / step).is_dir() for d in (out / step).iterdir()
    )
    if overwrite:
        kept = clear_study(out)
        if kept:
            log.info(
                f"--overwrite: removed the earlier study in {out}; kept {len(kept)} file(s) dlbench did not "
                f"write, e.g. {kept[0].relative_to(out)}"
            )
        return "overwrite"
    if old_name != spec.name:
        raise StudyFolderError(
            f"{flag} {out} holds another study, {old_name!r}, not {spec.name!r}",
            f"choose another {flag} (the default is {default_out(spec)}), or add --overwrite to replace it",
        )
    if not resume:
        raise StudyFolderError(
            f"{flag} {out} already holds study {spec.name!r} ({done} runs done)",
            "add --resume to skip the runs already done, --overwrite to start again, or choose "
            f"another {flag}",
        )
    if old.get("data") != new["data"] or old.get("seed") != new["seed"]:
        raise StudyFolderError(
            f"{flag} {out} holds study {spec.name!r} with other data settings or seed; resuming "
            "would mix two splits",
            "add --overwrite to start again, or choose another " + flag,
        )
    return "resume"


def _held_spec(held: Path, flag: str) -> dict:
    """The study ``spec.yaml`` of an output folder, checked (:class:`dlbench.schemas.HeldSpec`): a damaged
    one is named as such instead of being read as "another study, None"."""
    from dlbench.schemas import HeldSpec, check_file

    hint = f"move {held} away if the folder is yours, or choose another {flag}"
    try:
        data = yaml.safe_load(held.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise StudyFolderError(
            f"{flag} {held.parent}: its {SPEC_NAME} is damaged "
            f"(not valid YAML: {' '.join(str(exc).split())})",
            hint,
        ) from None
    except OSError as exc:
        raise StudyFolderError(f"{held}: cannot read ({exc.strerror or exc})", hint) from None
    try:
        check_file(data, HeldSpec, held, "study spec")
    except DlbenchError as exc:
        raise StudyFolderError(f"{flag} {held.parent}: damaged {SPEC_NAME}: {exc.message}", hint) from None
    return data


def run_study(
    spec: StudySpec, out_dir: str | os.PathLike, resume: bool = False, fuse: bool | None = None
) -> dict:
    """Run every task of the spec's plan (:func:`dlbench.plan.build_plan`) into ``out_dir``, laid out as
    :class:`dlbench.layout.StudyLayout` says; return a summary {step: {ok: n, failed: [...], skipped: n}}.

    ``fuse`` (default: the spec's ``train.fuse``) trains compatible GPU runs as fused groups; each member
    still gets its own ``train/<run_id>/`` folder. Failures follow :mod:`dlbench.runner`'s policy: recorded,
    and the study goes on with the tasks that do not depend on them.

    With ``resume``, data sets and train / SVM runs whose record in ``out_dir`` says ``ok`` are kept and
    skipped (matched by run id, the hash of the config); profile, ONNX and the report run again. The caller
    checks the folder first (:func:`prepare_out`).
    """
    plan = build_plan(spec, fuse=fuse)  # a study with no runs is refused before the data step
    lay = StudyLayout(Path(out_dir))
    lay.root.mkdir(parents=True, exist_ok=True)
    lay.spec.write_text(yaml.safe_dump(_resolved(spec), sort_keys=False))
    walk = _Walk(plan.counts(), resume)
    data_ok = {t.dataset: walk.data(t, lay) for t in plan.data}
    for task in plan.train:
        walk.train(task, lay, data_ok)
    for task in plan.svm:
        walk.svm(task, lay, data_ok)
    if plan.profile.models:  # a study of classical estimators only has no model to profile
        walk.header(
            "profile",
            ", ".join(plan.profile.models)
            + " at "
            + ", ".join(str(s) for s in plan.profile.input_sizes)
            + " px",
        )
        walk.count("profile", run_profile_task(plan.profile, lay.profile, get_logger("dlbench.profile").info))
    walk.header("onnx", ", ".join(plan.onnx.models))
    for outcome in run_onnx_task(
        plan.onnx, lay.runs("train"), lay.onnx_root, get_logger("dlbench.onnx").info
    ).values():
        walk.count("onnx", outcome)
    write_index(lay.root)
    walk.header("report")
    walk.count("report", run_report_task(lay.root, lay.report, get_logger("dlbench.report").info))
    return walk.summary


class _Walk:
    """The study's progress through its plan: numbered task headers, resume skips and the summary."""

    KEPT = ": done before, kept (--resume)"

    def __init__(self, totals: dict[str, int], resume: bool) -> None:
        self.totals, self.resume = totals, resume
        self.position: dict[str, int] = {}
        self.summary: dict[str, dict] = {}

    def header(self, step: str, what: str = "", run_id: str | None = None, note: str = "") -> None:
        self.position[step] = self.position.get(step, 0) + 1
        log.info(task_header(step, self.position[step], self.totals.get(step, 1), what, run_id) + note)

    def _entry(self, step: str) -> dict:
        return self.summary.setdefault(step, {"ok": 0, "failed": []})

    def count(self, step: str, outcome: Outcome, runs: int = 1) -> bool:
        entry = self._entry(step)
        if outcome.ok:
            entry["ok"] += runs
        else:
            entry["failed"].extend({"run": r, "error": outcome.error} for r in outcome.failed_runs)
        return outcome.ok

    def kept(self, step: str, folder: Path) -> bool:
        """With --resume, a run whose record says ok is kept and skipped."""
        if self.resume and record_ok(folder):
            entry = self._entry(step)
            entry["skipped"] = entry.get("skipped", 0) + 1
            return True
        return False

    def data(self, task: DataTask, lay: StudyLayout) -> bool:
        if self.kept("data", lay.data(task.dataset)):
            self.header("data", task.dataset, note=self.KEPT)
            return True
        self.header("data", task.dataset)
        return self.count(
            "data", run_data_task(task, lay.data(task.dataset), get_logger("dlbench.data").info)
        )

    def train(self, task: TrainTask, lay: StudyLayout, data_ok: dict[str, bool]) -> None:
        todo = []
        for cfg in task.configs:
            what = describe_config("train", cfg.model_dump()) + (
                f" (fused x{len(task.configs)})" if task.fused else ""
            )
            if self.kept("train", lay.run("train", cfg.run_id)):
                self.header("train", what, cfg.run_id, self.KEPT)
                continue
            self.header("train", what, cfg.run_id)
            todo.append(cfg)
        missing = sorted({c.dataset for c in todo if not data_ok.get(c.dataset)})
        if missing:
            for cfg in todo:
                log.warning(
                    f"train {cfg.run_id} skipped: the data step for {', '.join(missing)} did not succeed"
                )
            return
        if todo:
            task = TrainTask(tuple(todo))
            # a smoke run's resume checkpoint (weights and optimizer state, 130-280 MB) is of no use
            outcome = run_train_task(
                task,
                lay.data_root,
                [lay.run("train", c.run_id) for c in todo],
                get_logger("dlbench.train").info,
                keep_resume_checkpoint=not todo[0].smoke,
            )
            self.count("train", outcome, runs=len(todo))

    def svm(self, task: SvmTask, lay: StudyLayout, data_ok: dict[str, bool]) -> None:
        cfg = task.config
        what = describe_config("svm", cfg.model_dump())
        if self.kept("svm", lay.run("svm", cfg.run_id)):
            self.header("svm", what, cfg.run_id, self.KEPT)
            return
        self.header("svm", what, cfg.run_id)
        if not data_ok.get(cfg.dataset):
            log.warning(f"svm {cfg.run_id} skipped: the data step for {cfg.dataset} did not succeed")
            return
        self.count(
            "svm",
            run_svm_task(task, lay.data_root, lay.run("svm", cfg.run_id), get_logger("dlbench.svm").info),
        )
