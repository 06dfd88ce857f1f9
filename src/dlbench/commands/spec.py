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
        for cfg in expand_train(spec):
            print(f"train {cfg.run_id}  {cfg.dataset} {cfg.model} bs={cfg.batch_size} {cfg.optimizer} "
                  f"lr={cfg.lr:g} epochs={cfg.epochs} {cfg.device} {cfg.engine} pin={cfg.pin_memory} amp={cfg.amp}")
        for cfg in expand_svm(spec):
            print(f"svm   {cfg.run_id}  {cfg.dataset} {cfg.backend} {cfg.kernel} C={cfg.C:g} "
                  f"gamma={cfg.gamma} n_train={cfg.n_train or 'all'}")
    return 0
