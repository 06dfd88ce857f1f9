"""``dlbench``: the command line for people and containers. Each step registers one subcommand.

Errors a user can fix print one line (``dlbench: error: ...``) and exit 2 (1 for a step that ran and
failed); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from dlbench import __version__
from dlbench.errors import DlbenchError

# Modules with ``register(subparsers)``; each adds one subcommand whose handler is ``args.func(args)``.
COMMAND_MODULES = [
    "dlbench.commands.data",
    "dlbench.commands.spec",
    "dlbench.commands.study",
    "dlbench.commands.train",
    "dlbench.commands.svm",
    "dlbench.commands.profile",
    "dlbench.commands.onnx",
    "dlbench.commands.report",
    "dlbench.commands.pipeline",
    "dlbench.commands.runs",
]

EPILOG = """examples:
  dlbench data --dataset fashion-mnist --out runs/demo/data/fashion-mnist
  dlbench spec show quick            # print a preset study spec
  dlbench spec expand reference      # list the runs a spec expands to
  dlbench train --split runs/demo/data/fashion-mnist --out runs/demo/train/r18 --epochs 1
  dlbench svm --split runs/demo/data/fashion-mnist --out runs/demo/svm/rbf --n-train 10000
  dlbench profile --models resnet18 resnet50 --input-sizes 28 224 --out runs/demo/profile
  dlbench onnx --model resnet18 --batch-sizes 1 64 --out runs/demo/onnx/resnet18
  dlbench study --spec quick          # every step in this process, into runs/quick
  dlbench report --records runs/quick  # report.html of a study folder
  dlbench runs                        # the studies and pipeline runs under runs/
  dlbench compile --spec quick        # KFP v2 YAML: runs/pipelines/quick.yaml
  dlbench run --local --spec quick    # the same pipeline here with kfp.local
  dlbench submit --host http://localhost:8080 --spec quick --wait
  dlbench fetch RUN --to runs/fetched # a run's report and records from the store

Every option's default is shown in its help (dlbench <command> --help)."""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Every option's real default, once: none for required options, flags and options whose default is
    "not set" (None: their help says what happens then), and none added where the help states it already."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (
            action.default is None
            or action.default is False
            or action.required
            or "default" in text
            or action.default is argparse.SUPPRESS
            or isinstance(action, argparse._VersionAction)
        ):
            return text
        return super()._get_help_string(action)


class ArgumentParser(argparse.ArgumentParser):
    """Usage errors as one line naming the problem and where help is, not the whole usage block."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="dlbench",
        description="Benchmark ResNet-18/34/50 against SVMs on MNIST and Fashion-MNIST, CPU and GPU, "
        "step by step or as one study.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"dlbench {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def finite_float(text: str, rule: str = "") -> float:
    """argparse type: a finite number (inf and nan are refused: no step can use them). ``rule`` completes the
    message of a type built on this one, e.g. ``" > 0, 'scale' or 'auto'"``."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a number{rule} (got {text!r})" if rule else f"not a number: {text!r}"
        ) from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number{rule} (got {text!r})")
    return value


def add_command(sub, name: str, help: str, description: str | None = None, epilog: str | None = None):
    """Add a subcommand with the shared formatter (defaults shown in every option's help)."""
    return sub.add_parser(
        name, help=help, description=description or help, epilog=epilog, formatter_class=HelpFormatter
    )


def add_split_options(p) -> None:
    """``--split``, ``--out`` and ``--dataset`` of a step that reads a `dlbench data` split (train, svm)."""
    p.add_argument("--split", required=True, help="data-step folder (holds split.npz and manifest.json)")
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument(
        "--dataset",
        default=None,
        help="dataset of the split (mnist, fashion-mnist) (default: read from the split's manifest.json)",
    )


def split_input(split, dataset: str | None = None) -> dict[str, int]:
    """What a model needs of a split's images, for the options left out: ``in_channels``, ``input_size``
    (the side of square images) and ``num_classes``, from its manifest (``shape``, ``classes``), else from
    the dataset's registry entry; {} when neither says."""
    from dlbench.configs import INPUT_SIZE_RANGE
    from dlbench.data.registry import DATASETS
    from dlbench.data.step import split_manifest

    manifest = split_manifest(split) or {}
    entry = DATASETS.get(dataset or manifest.get("dataset") or "")
    shape = manifest.get("shape") or (list(entry.shape) if entry else None)
    classes = manifest.get("classes") or (list(entry.classes) if entry else None)
    out: dict[str, int] = {}
    if shape:
        c, h, w = shape
        out["in_channels"] = int(c)
        if h == w and INPUT_SIZE_RANGE[0] <= h <= INPUT_SIZE_RANGE[1]:
            out["input_size"] = int(h)
    if classes:
        out["num_classes"] = len(classes)
    return out


def refuse_empty_paths(args, *names: str, positional: dict[str, str] | None = None) -> None:
    """An option given as an empty string (``--out=``, ``--records ''``) is refused by name, instead of being
    read as the current folder; ``positional`` maps positional arguments to check to their metavar
    (``dlbench runs ''``)."""
    from dlbench.errors import DlbenchError

    for name in (*names, *(positional or {})):
        value = getattr(args, name, None)
        values = value if isinstance(value, list | tuple) else [value]  # nargs="+" options: each one
        if any(v is not None and str(v).strip() == "" for v in values):
            flag = (positional or {}).get(name) or "--" + name.replace("_", "-")
            raise DlbenchError(
                f"{flag} '': empty path", f"give {flag} a path, or leave it out where it may be"
            )


def split_dataset_of(args) -> str:
    """The dataset of ``args.split`` (``--dataset``, else its manifest's); a one-line error if missing."""
    from dlbench.data.step import split_dataset
    from dlbench.errors import DataError
    from dlbench.io import check_in_dir

    if str(args.split).strip() == "":
        raise DataError("--split '': empty path", "pass the folder `dlbench data` wrote")
    check_in_dir(args.split, "--split", "run `dlbench data` first and pass its output folder")
    return args.dataset if args.dataset is not None else split_dataset(args.split)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        from dlbench.settings import settings

        settings()  # every environment variable, checked before the command touches anything
        result = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here rather than at exit
    except BrokenPipeError:
        # the reader went away (dlbench spec expand reference | head): end quietly, as cat does
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except DlbenchError as exc:
        print(f"dlbench: error: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("dlbench: interrupted; files already written are kept", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
