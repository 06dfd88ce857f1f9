"""Every step has the one contract the runner calls, ``run(config, inputs, out, log)``."""

from __future__ import annotations

import importlib
import inspect

from dlbench.plan import DataTask, OnnxTask, ProfileTask, SvmTask, TrainTask
from dlbench.runner import STEPS


def test_every_step_of_the_plan_has_the_one_contract():
    tasks = (DataTask, TrainTask, SvmTask, ProfileTask, OnnxTask)
    assert {t.step for t in tasks} | {"report"} <= set(STEPS)
    for step, module in STEPS.items():
        run = importlib.import_module(module).run
        assert list(inspect.signature(run).parameters) == ["config", "inputs", "out", "log"], step
