from __future__ import annotations

import json

import yaml


def register(sub) -> None:
    from dlbench.cli import add_command

    p = add_command(sub, "spec", "show, validate or expand a study spec (preset name or YAML file)")
    p.add_argument("action", choices=["show", "validate", "expand", "presets"],
                   help="show: print the resolved spec as YAML; validate: check it; expand: list every run "
                        "with its id; presets: list the shipped presets")
    p.add_argument("spec", nargs="?", default="quick", help="preset name or path to a YAML spec")
    p.set_defaults(func=run)


def run(args) -> int:
    from dlbench.spec import (
        check_local_inputs,
        expand_svm,
        expand_train,
        load_spec,
        preset_names,
        require_runs,
    )

    if args.action == "presets":
        print("\n".join(preset_names()))
        return 0
    spec = load_spec(args.spec)
    if args.action == "show":
        print(yaml.safe_dump(json.loads(spec.model_dump_json()), sort_keys=False), end="")
    elif args.action == "validate":
        train, svm = require_runs(spec)
        check_local_inputs(spec, args.spec)
        print(f"{args.spec}: ok ({len(train)} training runs, {len(svm)} SVM runs)")
    else:
        from dlbench.report.reference import cells_for, describe
        from dlbench.spec import expand_grids

        grids: dict[str, list[str]] = {}
        for name, configs in expand_grids(spec).items():
            for c in configs:
                grids.setdefault(c.run_id, []).append(name)
        n_cells: set[str] = set()

        def fills(cells: list[str]) -> str:
            n_cells.update(cells)
            return "\n      fills: " + "; ".join(describe(c) for c in cells) if cells else ""

        for cfg in expand_train(spec):
            planned = "".join(f" (planned {k} {v})" for k, v in (cfg.planned or {}).items())
            print(f"train {cfg.run_id}  {cfg.dataset} {cfg.model} bs={cfg.batch_size} {cfg.optimizer} "
                  f"lr={cfg.lr:g} epochs={cfg.epochs} {cfg.device} {cfg.engine} pin={cfg.pin_memory} amp={cfg.amp}"
                  f"{' ' + cfg.input_shape if cfg.input_shape != '1x28x28' else ''}{planned}"
                  f"  [grid {', '.join(grids.get(cfg.run_id, []))}]" + fills(cells_for(cfg.model_dump())))
        for cfg in expand_svm(spec):
            planned = "".join(f" (planned {k} {v})" for k, v in (cfg.planned or {}).items())
            print(f"svm   {cfg.run_id}  {cfg.dataset} {cfg.backend} {cfg.kernel} C={cfg.C:g} "
                  f"gamma={cfg.gamma} n_train={cfg.n_train or 'all'}{planned}"
                  + fills(cells_for(cfg.model_dump(), "svm")))
        from dlbench.report.reference import published

        print(f"published cells filled: {len(n_cells)} of {len(published())}")
    return 0
