import pytest

from dlbench.errors import SpecError
from dlbench.plan import expand_svm, expand_train
from dlbench.spec import load_spec, parse_spec, preset_names


def test_presets_load_and_expand():
    assert {"quick", "reference"} <= set(preset_names())
    quick = load_spec("quick")
    runs = expand_train(quick)
    assert [r.engine for r in runs] == ["dataloader", "resident"]
    assert len({r.run_id for r in runs}) == 2
    assert len(expand_svm(quick)) == 2


def test_reference_covers_the_study_protocol():
    ref = load_spec("reference")
    runs = expand_train(ref)
    t1 = [r for r in runs if r.epochs == 4 and r.engine == "dataloader" and r.pin_memory and r.amp == "fp16"]
    # Table 1: 2 datasets x 2 models x 2 batch x 2 optimisers x 2 lr = 32 runs
    assert len({(r.dataset, r.model, r.batch_size, r.optimizer, r.lr) for r in t1}) == 32
    assert any(not r.pin_memory for r in runs)  # Table 3
    t4 = {(r.model, r.optimizer, r.device) for r in runs if r.epochs == 10 and r.dataset == "fashion-mnist"}
    assert {("resnet34", "sgd", "cpu"), ("resnet34", "adam", "cuda"), ("resnet50", "adam", "cpu")} <= t4
    assert {r.engine for r in runs} == {"dataloader", "resident"}
    assert {(s.backend, s.kernel) for s in expand_svm(ref)} >= {("sklearn", "rbf"), ("cuml", "poly")}


def test_run_ids_are_stable_and_config_sensitive():
    a = expand_train(load_spec("quick"))[0]
    b = expand_train(load_spec("quick"))[0]
    assert a.run_id == b.run_id and a.run_id.startswith("resnet18-")
    assert a.model_copy(update={"lr": 0.01}).run_id != a.run_id


def test_input_axes_expand_and_leave_earlier_run_ids_alone():
    # ids of runs recorded before the input fields existed (their records and folders carry them)
    assert [c.run_id for c in expand_train(load_spec("quick"))] == [
        "resnet18-aa1fe045b717",
        "resnet18-e0e7d63a558a",
    ]
    spec = parse_spec({"train": {"grids": [{"input_size": [28, 64], "in_channels": [1, 3]}]}})
    runs = expand_train(spec)
    assert [c.input_shape for c in runs] == ["1x28x28", "3x28x28", "1x64x64", "3x64x64"]
    assert len({c.run_id for c in runs}) == 4
    # the reference preset trains at 3x64x64 exactly the runs that time Tables 3 and 4, and its input grid
    from dlbench.plan import expand_grids

    grids = expand_grids(load_spec("reference"))
    at_64 = {c.run_id for c in expand_train(load_spec("reference")) if c.input_shape == "3x64x64"}
    timing = {c.run_id for g in ("table3", "table4-gpu", "table4-cpu", "input") for c in grids[g]}
    assert at_64 == timing and len(at_64) == 8 + 12


def test_duplicate_grid_points_collapse():
    spec = parse_spec({"train": {"grids": [{"models": ["resnet18"]}, {"models": ["resnet18"]}]}})
    assert len(expand_train(spec)) == 1


@pytest.mark.parametrize(
    "data, message",
    [
        (
            {"train": {"grids": [{"optimizer": ["rmsprop"]}]}},
            "train.grids.0.optimizer.0: Input should be 'sgd' or 'adam' (got 'rmsprop')",
        ),
        (
            {"train": {"grids": [{"models": ["vgg16"]}]}},
            "train.grids.0.models.0: Value error, unknown model 'vgg16' (choose one of resnet18, resnet34, "
            "resnet50, or timm:NAME / tv:NAME",
        ),
        (
            {"train": {"grids": [{"batch_size": [0]}]}},
            "train.grids.0.batch_size.0: Input should be greater than 0 (got 0)",
        ),
        ({"train": {"grids": [{"lr": [-1]}]}}, "train.grids.0.lr.0: Input should be greater than 0 (got -1)"),
        (
            {"data": {"datasets": ["cifar10"]}},
            "data: Value error, datasets: unknown 'cifar10'; choose from mnist, fashion-mnist, or set source "
            "folder (or npz) and root to read your own data",
        ),
        (
            {"data": {"fractions": [0.5, 0.1, 0.1]}},
            "data.fractions: Value error, train/val/test fractions must be positive and sum to 1",
        ),
        ({"svm": {"C": 0}}, "svm.C: Input should be greater than 0 (got 0)"),
        ({"svm": {"kernels": ["linear"]}}, "svm.kernels.0: Input should be 'rbf' or 'poly' (got 'linear')"),
        ({"svm": {"gamma": -1.0}}, "svm.gamma"),
        (
            {"onnx": {"providers": ["openvino"]}},
            "onnx.providers.0: Input should be 'cpu', 'cuda' or 'tensorrt'",
        ),
        ({"onnx": {"batch_sizes": []}}, "onnx.batch_sizes: List should have at least 1 item"),
        (
            {"profile": {"in_channels": [1, 0]}},
            "profile.in_channels.1: Input should be greater than 0 (got 0)",
        ),
        (
            {"train": {"grids": [{"input_size": [4]}]}},
            "train.grids.0.input_size.0: Input should be greater than or equal to 8 (got 4)",
        ),
        (
            {"train": {"grids": [{"in_channels": [2]}]}},
            "train.grids.0.in_channels.0: Input should be 1 or 3 (got 2)",
        ),
        ({"epochs": 3}, "epochs: unknown field"),
        (
            {"train": {"grids": [{"device": ["tpu"]}]}},
            "train.grids.0.device: device 'tpu' is not in the catalog (known: cpu, cuda)",
        ),
        (
            {"data": {"datasets": ["mnist"]}, "train": {"grids": [{"datasets": ["fashion-mnist"]}]}},
            "not in data.datasets",
        ),
    ],
)
def test_bad_fields_name_field_and_allowed_values(data, message):
    with pytest.raises(SpecError) as info:
        parse_spec(data, "test.yaml")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_yaml_and_missing_file(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("train: [unclosed")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(str(p))
    with pytest.raises(SpecError, match="neither a preset .* nor a file"):
        load_spec(str(tmp_path / "none.yaml"))


@pytest.mark.parametrize(
    "data, message",
    [
        (
            {"data": {"subsampel": 10}},
            "data.subsampel: unknown field, did you mean subsample? "
            "(allowed: datasets, fractions, root, size, source, subsample)",
        ),
        (
            {"train": {"grids": [{"modls": ["resnet18"]}]}},
            "train.grids.0.modls: unknown field, did you mean models?",
        ),
        ({"svm": {"kernel": ["rbf"]}}, "svm.kernel: unknown field, did you mean kernels?"),
    ],
)
def test_unknown_field_names_the_allowed_ones(data, message):
    with pytest.raises(SpecError) as info:
        parse_spec(data, "test.yaml")
    assert message in str(info.value)


@pytest.mark.parametrize("command", [["spec", "validate"], ["study", "--out", "OUT", "--spec"]])
def test_spec_with_zero_runs_is_refused_before_any_work(tmp_path, capsys, command):
    from dlbench.cli import main

    spec = tmp_path / "zero.yaml"
    spec.write_text("name: zero\ntrain: {grids: []}\nsvm: {backends: []}\n")
    out = tmp_path / "study"
    args = [str(out) if a == "OUT" else a for a in command] + [str(spec)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "dlbench: error: spec 'zero' expands to zero train runs and zero SVM runs (give train.grids at "
        "least one grid, or svm.backends, svm.estimators and svm.kernels at least one entry)"
    ]
    assert not out.exists()


def test_smoke_spec_keeps_every_run_on_the_cpu_and_what_it_planned():
    from dlbench.plan import expand_svm, expand_train, smoke_spec
    from dlbench.report.reference import cells_for, published
    from dlbench.spec import load_spec

    ref = load_spec("reference")
    smoke = smoke_spec(ref)
    full, runs = expand_train(ref), expand_train(smoke)
    assert len(runs) == len(full)  # every run kept, each at most two epochs, the planned count recorded
    assert [(c.planned or {}).get("epochs", c.epochs) for c in runs] == [c.epochs for c in full]
    assert {c.epochs for c in runs} == {2} and {c.epochs for c in full} == {4, 10}
    assert all(
        c.device == "cpu" and c.smoke and c.max_steps_per_epoch == 2 and c.num_workers == 0 for c in runs
    )
    planned = {(c.planned or {}).get("device", c.device) for c in runs}
    assert planned == {"cpu", "cuda"}
    assert all(c.amp == "off" for c in runs)  # autocast planned for the GPU is emulated or slow on a CPU
    svm = expand_svm(smoke)
    assert {c.backend for c in svm} == {"sklearn"} and {(c.planned or {}).get("backend") for c in svm} == {
        None,
        "cuml",
    }
    assert smoke.data.subsample == 300 and smoke.onnx.providers == ["cpu"]
    # each smoke run stands in at the published cells its planned run fills (its accuracy, or its time at
    # the study's input): all 77
    cells = {x for c in runs for t in (False, True) for x in cells_for(c.model_dump(), time=t)} | {
        x for c in svm for x in cells_for(c.model_dump(), "svm")
    }
    assert len(cells) == len(published()) == 77
    # the smoke marks stay out of the ids of ordinary runs
    assert [c.run_id for c in expand_train(ref)] == [c.run_id for c in full]
    assert all(c.run_id not in {f.run_id for f in full} for c in runs)


def test_expand_names_the_published_cells_each_run_fills(capsys):
    from dlbench import cli

    assert cli.main(["spec", "expand", "reference"]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith("published cells filled: 77 of 77")
    assert "fills: Table 4 fashion-mnist resnet18 cuda sgd 10ep pin on" in out
    assert "[grid table4-cpu]" in out and "amp=off" in out


def test_seeds_repeat_every_training_run_and_keep_the_one_seed_ids():
    base = {"train": {"grids": [{"models": ["resnet18"], "engine": ["dataloader", "resident"]}]}}
    one = expand_train(parse_spec(base))
    three = expand_train(parse_spec({**base, "seeds": [0, 1, 2]}))
    assert [(c.engine, c.seed) for c in three] == [
        (e, s) for e in ("dataloader", "resident") for s in (0, 1, 2)
    ]
    assert len({c.run_id for c in three}) == 6
    # seed 0's runs are the runs a spec without seeds has (their records and folders are reused)
    assert [c.run_id for c in three if c.seed == 0] == [c.run_id for c in one]
    assert len(expand_svm(parse_spec({**base, "seeds": [0, 1, 2]}))) == len(expand_svm(parse_spec(base)))


def test_seeds_must_be_distinct_and_non_negative():
    with pytest.raises(SpecError, match="seeds must be distinct"):
        parse_spec({"seeds": [0, 0]})
    with pytest.raises(SpecError, match="seeds"):
        parse_spec({"seeds": [-1]})
    with pytest.raises(SpecError, match="seeds"):
        parse_spec({"seeds": []})


# --------------------------------------------------------------------------- classical estimators


def test_a_spec_lists_classical_estimators_one_run_per_dataset_and_backend():
    from dlbench.plan import skipped_svm

    svm = {"backends": ["sklearn", "sklearnex"], "kernels": ["rbf", "poly"], "n_train": 2000}
    plain = parse_spec({"svm": svm})
    spec = parse_spec({"svm": {**svm, "estimators": ["svm", "random_forest", "hist_gradient_boosting"]}})
    runs = expand_svm(spec)
    # the SVMs keep the ids they have without estimators; each other estimator runs once per backend it has
    assert [c.run_id for c in runs if c.estimator == "svm"] == [c.run_id for c in expand_svm(plain)]
    assert sorted((c.estimator, c.backend) for c in runs if c.estimator != "svm") == [
        ("hist_gradient_boosting", "sklearn"),
        ("random_forest", "sklearn"),
        ("random_forest", "sklearnex"),
    ]
    assert all(c.run_id.startswith(c.estimator.replace("_", "-") + "-") for c in runs if c.estimator != "svm")
    assert skipped_svm(spec) == ["hist_gradient_boosting has no sklearnex backend"]
    only = parse_spec({"svm": {"estimators": ["logistic_regression"]}})
    assert [c.estimator for c in expand_svm(only)] == ["logistic_regression"]  # no SVM


def test_spec_expand_lists_the_estimators_and_what_is_not_run(tmp_path, capsys):
    from dlbench.cli import main

    path = tmp_path / "c.yaml"
    path.write_text(
        "name: c\ntrain: {grids: []}\n"
        "svm: {backends: [sklearn, sklearnex], estimators: [svm, hist_gradient_boosting]}\n"
    )
    assert main(["spec", "expand", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.count("svm   svm-rbf-") == 2
    assert "svm   hist-gradient-boosting-" in out and " sklearn hist_gradient_boosting " in out
    assert "not run: hist_gradient_boosting has no sklearnex backend" in out
    assert main(["spec", "validate", str(path)]) == 0
    assert "(0 training runs, 3 SVM runs)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "svm, message",
    [
        (
            {"estimators": ["random_forrest"]},
            "svm.estimators.0: Value error, unknown estimator 'random_forrest' (did you mean random_forest?)",
        ),
        (
            {"estimators": ["random_forest"], "kernels": ["poly"]},
            "svm.kernels: the kernels are the svm estimator's, but svm.estimators ['random_forest'] has no "
            "svm",
        ),
        (
            {"estimators": ["hist_gradient_boosting"], "backends": ["cuml"]},
            "svm.estimators: hist_gradient_boosting has none of svm.backends ['cuml'] (it has sklearn)",
        ),
        ({"estimators": ["svm", "svm"]}, "svm.estimators: list each estimator once"),
    ],
)
def test_a_bad_estimator_list_is_one_line_naming_the_field(svm, message):
    from dlbench.errors import SpecError
    from dlbench.spec import parse_spec

    with pytest.raises(SpecError) as exc:
        parse_spec({"svm": svm})
    text = exc.value.one_line()
    assert message in text and "\n" not in text


def test_the_estimate_counts_each_estimator_from_its_calibration():
    from dlbench.estimate import estimate
    from dlbench.spec import parse_spec

    spec = parse_spec(
        {"train": {"grids": []}, "svm": {"estimators": ["svm", "random_forest"], "n_train": 1200}}
    )
    cal = {
        "format": 1,
        "shapes": {},
        "svm": {
            "n_fit": 600,
            "n_predict": 400,
            "kernels": {"rbf": {"fit_seconds": 1.0, "predict_seconds": 0.0}},
            "estimators": {"random_forest": {"fit_seconds": 1.0, "predict_seconds": 0.0}},
        },
    }
    runs = {r["run"].split("-")[0]: r["seconds"] for r in estimate(spec, cal)["svm"]}
    assert runs == {"svm": pytest.approx(4.0), "random": pytest.approx(2.0)}  # quadratic vs linear
    del cal["svm"]["estimators"]
    assert estimate(spec, cal)["not_calibrated"] == ["random_forest"]


def test_a_resolved_spec_without_svm_reloads():
    import json

    import yaml

    spec = parse_spec({"svm": {"estimators": ["random_forest"]}})
    again = parse_spec(yaml.safe_load(yaml.safe_dump(json.loads(spec.model_dump_json()))))
    assert [c.run_id for c in expand_svm(again)] == [c.run_id for c in expand_svm(spec)]
