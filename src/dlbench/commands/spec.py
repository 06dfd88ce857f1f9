from __future__ import annotations

import argparse
import json
import os

import yaml


def register(sub) -> None:
    from dlbench.cli import add_command

    p = add_command(sub, "spec", "show, validate or expand a study spec (preset name or YAML file)")
    p.add_argument(
        "action",
        choices=["show", "validate", "expand", "presets"],
        help="show: print the resolved spec as YAML; validate: check it; expand: list every run "
        "with its id; presets: list the shipped presets",
    )
    p.add_argument("spec", nargs="?", default="quick", help="preset name or path to a YAML spec")
    p.add_argument(
        "--fuse",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="expand as with --fuse: compatible GPU runs listed (and estimated) as fused groups",
    )
    p.add_argument(
        "--estimate",
        action="store_true",
        help="expand: also print each run's and the study's projected time (needs --calibrate or "
        "--calibration FILE)",
    )
    p.add_argument(
        "--calibrate",
        action="store_true",
        help="measure a few dozen steps of each distinct model/batch/engine shape here first "
        "(with --calibration FILE: add to it and save it)",
    )
    p.add_argument(
        "--calibration",
        metavar="FILE",
        default=None,
        help="a stored calibration (JSON) to project from, e.g. one measured on the GPU machine",
    )
    p.add_argument(
        "--device",
        action="append",
        default=None,
        help="calibrate the runs of this device (repeatable): cpu, cuda or a name of the spec's devices: "
        "catalog, measured here as its kind; default: cpu, and cuda when visible",
    )
    p.add_argument(
        "--compare",
        metavar="STUDY_DIR",
        default=None,
        help="print a finished study's measured times beside the estimate",
    )
    p.set_defaults(func=run)


def run(args) -> int:
    from dlbench.plan import expand_svm, require_runs, skipped_svm, train_tasks, with_fuse
    from dlbench.spec import check_local_inputs, load_spec, preset_names

    if args.action == "presets":
        print("\n".join(preset_names()))
        return 0
    from dlbench.cli import refuse_empty_paths

    refuse_empty_paths(args, "compare", "calibration")
    spec = with_fuse(load_spec(args.spec), args.fuse)
    if args.estimate or args.calibrate:
        return run_estimate(args, spec)
    given = [
        f for f, v in (("--calibration", args.calibration), ("--compare", args.compare)) if v is not None
    ]
    given += ["--device"] if args.device else []
    if given:  # an option that would be ignored: the user meant an estimate
        from dlbench.errors import SpecError

        raise SpecError(
            f"{', '.join(given)} go{'es' if len(given) == 1 else ''} with --estimate or --calibrate",
            f"add --estimate with --calibrate or --calibration FILE, or leave {', '.join(given)} out",
        )
    if args.action == "show":
        print(yaml.safe_dump(json.loads(spec.model_dump_json()), sort_keys=False), end="")
    elif args.action == "validate":
        train, svm = require_runs(spec)
        check_local_inputs(spec, args.spec)
        print(f"{args.spec}: ok ({len(train)} training runs, {len(svm)} SVM runs)")
    else:
        from dlbench.models import is_fusable
        from dlbench.plan import expand_grids
        from dlbench.report.reference import cells_for, describe

        grids: dict[str, list[str]] = {}
        for name, configs in expand_grids(spec).items():
            for c in configs:
                grids.setdefault(c.run_id, []).append(name)
        n_cells: set[str] = set()
        strict = {c for t in train_tasks(spec) for cfg in t for c in cells_for(cfg.model_dump())}
        accuracy = strict | {
            c for t in train_tasks(spec) for cfg in t for c in cells_for(cfg.model_dump(), accuracy_only=True)
        }

        def fills(cells: list[str], fast: list[str] = (), timed: list[str] = ()) -> str:
            fast = [c for c in fast if c not in strict and c not in cells]
            timed = [c for c in timed if c not in cells]  # at the study's input: time (and accuracy if alone)
            n_cells.update(cells, fast, timed)
            told = [describe(c) for c in cells] + [f"{describe(c)} (accuracy only)" for c in fast]
            told += [f"{describe(c)} (time{'' if c in accuracy else ', accuracy'})" for c in timed]
            return "\n      fills: " + "; ".join(told) if told else ""

        for task in train_tasks(spec):
            for i, cfg in enumerate(task):
                group = "" if len(task) == 1 else f"  [fused group of {len(task)}, member {i + 1}]"
                if len(task) == 1 and spec.train.fuse and not is_fusable(cfg.model):
                    group = f"  [solo: {cfg.model} cannot be fused]"
                planned = "".join(f" (planned {k} {v})" for k, v in (cfg.planned or {}).items())
                print(
                    f"train {cfg.run_id}  {cfg.dataset} {cfg.model} bs={cfg.batch_size} {cfg.optimizer} "
                    f"lr={cfg.lr:g} epochs={cfg.epochs} {_device(cfg)} {cfg.engine} "
                    f"pin={cfg.pin_memory} amp={cfg.amp}"
                    f"{' ' + cfg.input_shape if cfg.input_shape != '1x28x28' else ''}"
                    f"{f' seed={cfg.seed}' if spec.seeds else ''}{planned}"
                    f"  [grid {', '.join(grids.get(cfg.run_id, []))}]{group}"
                    + fills(
                        cells_for(cfg.model_dump()),
                        cells_for(cfg.model_dump(), accuracy_only=True),
                        cells_for(cfg.model_dump(), time=True),
                    )
                )
        for cfg in expand_svm(spec):
            planned = "".join(f" (planned {k} {v})" for k, v in (cfg.planned or {}).items())
            what = cfg.kernel if cfg.estimator == "svm" else cfg.estimator
            print(
                f"svm   {cfg.run_id}  {cfg.dataset} {cfg.backend} {what} C={cfg.C:g} "
                f"gamma={cfg.gamma} n_train={cfg.n_train or 'all'}"
                f"{' on ' + cfg.device_name if cfg.device_name else ''}{planned}"
                + fills(cells_for(cfg.model_dump(), "svm"))
            )
        for note in skipped_svm(spec):
            print(f"svm   (not run: {note})")
        from dlbench.report.reference import published

        print(f"published cells filled: {len(n_cells)} of {len(published())}")
    return 0


def _device(cfg) -> str:
    """A run's device as the spec named it: ``cuda``, or a catalog name with its kind, ``h100 (cuda)``."""
    return f"{cfg.device_name} ({cfg.device})" if cfg.device_name else cfg.device


def run_estimate(args, spec) -> int:
    from dlbench.errors import SpecError
    from dlbench.estimate import (
        actual_seconds,
        calibrate,
        check_devices,
        estimate,
        format_estimate,
        load_calibration,
        save_calibration,
    )
    from dlbench.log import get_logger

    if args.action != "expand":
        raise SpecError(
            f"--estimate / --calibrate go with `dlbench spec expand`, not {args.action}",
            f"run dlbench spec expand {args.spec} --estimate --calibrate",
        )
    if not args.calibrate and not args.calibration:
        raise SpecError(
            "--estimate needs step times: --calibrate (measure here) or --calibration FILE",
            f"run dlbench spec expand {args.spec} --estimate --calibrate",
        )
    check_devices(args.device, spec)
    if args.calibrate and any(spec.catalog()[d].kind == "cuda" for d in args.device or []):
        import torch

        from dlbench.errors import DeviceError

        if not torch.cuda.is_available():
            raise DeviceError(
                "--calibrate --device cuda: no CUDA GPU is visible here, so nothing can be measured on it",
                "calibrate on the machine with the GPU, or leave the cuda devices out of --device",
            )
    actual = actual_seconds(args.compare) if args.compare else None  # a bad folder fails before measuring
    cal = None
    if args.calibration and (not args.calibrate or os.path.exists(args.calibration)):
        cal = load_calibration(args.calibration)
    if args.calibrate:
        cal = calibrate(spec, devices=args.device, log=get_logger("dlbench.estimate").info, existing=cal)
        if args.calibration:
            save_calibration(cal, args.calibration)
            print(f"calibration: {args.calibration}")
    if args.estimate or not args.calibration:
        print(format_estimate(estimate(spec, cal), actual))
    return 0
