"""The pipeline verbs: ``compile``, ``submit``, ``run --local``, ``fetch``.

They drive the edge packages ``pipelines`` and ``components`` (kfp, the minio SDK), imported inside the
handlers only, so ``dlbench --help`` and the step commands work without kfp installed.
"""

from __future__ import annotations

import argparse
import importlib
import os

from dlbench.cli import refuse_empty_paths
from dlbench.errors import DlbenchError

STORE_ENV = "DLBENCH_STORE"
DEFAULT_STORE = "runs/pipeline"
COMPILE_DIR = "runs/pipelines"  # compile's default output: runs/pipelines/<spec name>.yaml
STORE_HELP = (
    "where runs are kept: a folder, or s3://bucket/prefix (endpoint and keys from DLBENCH_S3_ENDPOINT, "
    "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) (default: $DLBENCH_STORE, else " + DEFAULT_STORE + ")"
)


def _edge(module: str, needs: tuple[str, ...] = ("kfp",)):
    """Import an edge module (and ``needs``, which it imports lazily) with a one-line error when the extra
    is missing."""
    try:
        for name in needs:
            importlib.import_module(name)
        return importlib.import_module(module)
    except ImportError as exc:
        raise DlbenchError(
            f"this command needs the KFP edge packages ({exc.name} is not importable)",
            "pip install 'dlbench[kfp]' in a checkout of the repository",
        ) from None


IMAGES_EPILOG = (
    "images: DLBENCH_REGISTRY (default ghcr.io/dlbench) and DLBENCH_IMAGE_TAG (default the version) "
    "name them, as for make push REGISTRY=... TAG=...; registry logins are read from "
    "~/.docker/config.json or ${XDG_RUNTIME_DIR}/containers/auth.json; plain-HTTP registries: "
    "DLBENCH_INSECURE_REGISTRIES=host:port (loopback ones are allowed)"
)


def _default_store() -> str:
    from dlbench.settings import settings

    return settings().store or DEFAULT_STORE


def _publish_default() -> str:
    """The store URL a cluster run publishes to (components.storage.STORE_URL), for the help text."""
    try:
        from dlbench_kfp.components.storage import STORE_URL
    except ImportError:
        return "the cluster's store"
    return STORE_URL


SMOKE_HELP = (
    "a wiring test: every run of the spec on the CPU with a few hundred images, two steps per epoch and "
    "at most two epochs (the planned count recorded), cuML and the CUDA execution providers replaced by "
    "their CPU counterparts; the report says its numbers are meaningless"
)


def _check_parallelism(n: int) -> None:
    if n < 1:
        raise DlbenchError(
            f"--parallelism must be at least 1 (got {n})", "1 runs one task of a loop at a time"
        )


def add_spec_options(p, groups: str = "one task per group") -> None:
    """``--spec`` and ``--fuse``, the same on every command that plans a study."""
    p.add_argument("--spec", default="quick", help="preset name (quick, reference) or a YAML file")
    p.add_argument(
        "--fuse",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"train compatible GPU runs as fused groups, {groups} (default: the spec's train.fuse); "
        "CPU runs and grids that compare timings stay solo",
    )


def _add_image_options(p) -> None:
    p.add_argument(
        "--pin-digests",
        action="store_true",
        help="name every image by the digest its registry holds now (name@sha256:...), not by tag",
    )


def register(sub) -> None:
    for add in (_register_compile, _register_submit, _register_run, _register_publish, _register_fetch):
        add(sub)


def _register_compile(sub) -> None:
    from dlbench.cli import add_command

    p = add_command(
        sub,
        "compile",
        "compile the study pipeline of a spec to KFP v2 YAML",
        description="Build the KFP v2 pipeline of a study spec (one task per train and SVM config, GPU tasks "
        "requesting nvidia.com/gpu) and compile it to YAML. The YAML holds image names and the name "
        "of the Kubernetes Secret with the store keys, never a key.",
        epilog="examples:\n  dlbench compile --spec quick             # runs/pipelines/quick.yaml\n"
        "  dlbench compile --spec reference --out reference.yaml\n"
        "  DLBENCH_REGISTRY=registry.example.com/me dlbench compile --spec quick --pin-digests --check "
        "--out study.yaml\n" + IMAGES_EPILOG,
    )
    add_spec_options(p)
    p.add_argument(
        "--out",
        default=None,
        metavar="FILE",
        help=f"where to write the YAML (default: {COMPILE_DIR}/<spec name>.yaml)",
    )
    _add_image_options(p)
    p.add_argument(
        "--check",
        action="store_true",
        help="pre-flight before writing: every image resolves in its registry, the spec's datasets "
        "in the store exist (what dlbench submit checks)",
    )
    p.add_argument(
        "--parallelism",
        type=int,
        default=1,
        help="runs of one loop executing at once (more disturbs timings on shared nodes)",
    )
    p.add_argument(
        "--publish-to",
        default=None,
        metavar="URL",
        help="default of the pipeline's publish_to parameter: the store URL the report task uploads the "
        f"run's bundle to, '' for none (default: {_publish_default()})",
    )
    p.set_defaults(func=run_compile)


def _register_submit(sub) -> None:
    from dlbench.cli import add_command, finite_float

    p = add_command(
        sub,
        "submit",
        "send the study pipeline to a KFP API and start a run",
        description="Compile the spec's pipeline, upload it to KFP (or reuse the version with the same "
        "content), create a run in an experiment and print its id and UI link. With --wait, poll until the "
        "run ends (CANCELED included) and exit 0 only if it SUCCEEDED.",
        epilog="example: kubectl -n kubeflow port-forward svc/ml-pipeline-ui 8080:80 &\n"
        "         dlbench submit --host http://localhost:8080 --spec quick --wait\n"
        "auth: $KFP_TOKEN (bearer token) or $KFP_COOKIES (session cookie) when the API needs them\n"
        "pre-flight (before anything is uploaded): every image resolves in its registry, the spec's datasets "
        "in the store exist; --no-preflight skips it\n" + IMAGES_EPILOG,
    )
    p.add_argument("--host", default=None, help="KFP URL, e.g. http://localhost:8080 (default: $KFP_HOST)")
    p.add_argument("--experiment", default="dlbench", help="experiment to run in (created if missing)")
    add_spec_options(p)
    p.add_argument("--run-name", default=None, help="run name (default: <spec name>-<timestamp>)")
    p.add_argument("--namespace", default=None, help="user namespace (multi-user Kubeflow)")
    p.add_argument("--parallelism", type=int, default=1, help="runs of one loop executing at once")
    p.add_argument(
        "--publish-to",
        default=None,
        metavar="URL",
        help=f"store URL the report task uploads the bundle to, '' for none (default: {_publish_default()})",
    )
    _add_image_options(p)
    p.add_argument(
        "--no-preflight",
        dest="preflight",
        action="store_false",
        help="skip the pre-flight check of images and datasets",
    )
    p.add_argument("--wait", action="store_true", help="wait for the run to end and show its state changes")
    p.add_argument(
        "--poll", type=finite_float, default=10.0, help="seconds between status checks with --wait"
    )
    p.add_argument(
        "--timeout",
        type=finite_float,
        default=None,
        help="give up waiting after this many seconds (default: wait until the run ends)",
    )
    p.set_defaults(func=run_submit)


def _register_run(sub) -> None:
    from dlbench.cli import add_command

    p = add_command(
        sub,
        "run",
        "run the study pipeline on this machine with kfp.local",
        description="Run the same pipeline a cluster runs, here: kfp.local's SubprocessRunner executes every "
        "component in this Python environment (or DockerRunner in the images). Afterwards the run's "
        "report, records and weights go to the store under the run's name, MANIFEST.json last.",
        epilog="examples:\n  dlbench run --local --spec quick\n"
        "  DLBENCH_S3_ENDPOINT=http://127.0.0.1:9000 AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... \\\n"
        "    dlbench run --local --spec quick --store s3://dlbench/runs --create-bucket",
    )
    p.add_argument(
        "--local", action="store_true", help="run here with kfp.local (required; see dlbench submit)"
    )
    p.add_argument(
        "--runner",
        default="subprocess",
        choices=["subprocess", "docker"],
        help="subprocess: this venv; docker: each component in its image (Docker or podman API)",
    )
    add_spec_options(p)
    p.add_argument("--store", default=None, help=STORE_HELP)
    p.add_argument("--create-bucket", action="store_true", help="create the S3 bucket when it does not exist")
    p.add_argument(
        "--work",
        default="runs/kfp-local",
        metavar="DIR",
        help="kfp.local's pipeline root: every task's outputs, pipeline.log and index.json per run",
    )
    p.add_argument("--parallelism", type=int, default=1, help="runs of one loop executing at once")
    p.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="also show kfp.local's log and every task's full output (always written to pipeline.log "
        "in the run's work folder)",
    )
    p.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    p.set_defaults(func=run_local)


def _register_publish(sub) -> None:
    from dlbench.cli import add_command

    p = add_command(
        sub,
        "publish",
        "upload a finished kfp.local run to the store again (after a failed upload)",
        description="Upload the run a dlbench run --local left in its --work folder (report, records and "
        "weights) to the store under the run's name, MANIFEST.json last, then check every stored "
        "object against the manifest. For a run whose upload failed: its error names this command.",
        epilog="example: dlbench publish dlbench-tiny-2026-01-01-12-00-00-000000 --work runs/kfp-local "
        "--store s3://dlbench/runs",
    )
    p.add_argument(
        "run", metavar="RUN", help="run name (the folder below --work; dlbench run --local prints it)"
    )
    p.add_argument("--work", default="runs/kfp-local", help="the --work folder of dlbench run --local")
    p.add_argument("--store", default=None, help=STORE_HELP)
    p.add_argument("--create-bucket", action="store_true", help="create the S3 bucket when it does not exist")
    p.set_defaults(func=run_publish)


def _register_fetch(sub) -> None:
    from dlbench.cli import add_command

    p = add_command(
        sub,
        "fetch",
        "download a run's report and records from the store, verified",
        description="Find the run in the store (a name from dlbench run --local, or a KFP run id whose "
        "report task published there or whose bundle sits below a KFP pipeline root), then download every "
        "file of its MANIFEST.json, checking size and SHA-256. Interrupted fetches resume; files "
        "already there and intact are skipped. A progress bar shows on a terminal.",
        epilog="examples:\n  dlbench fetch dlbench-quick-2026-01-01-12-00-00-000000 --to runs/fetched\n"
        "  dlbench fetch 7c1e...-run-id --store s3://dlbench/runs --to runs/cluster-run",
    )
    p.add_argument("run", metavar="RUN", help="run name or KFP run id")
    p.add_argument("--to", required=True, help="folder to download into (created)")
    p.add_argument("--store", default=None, help=STORE_HELP)
    p.add_argument(
        "--models", action="store_true", help="also download weights (checkpoints, ONNX, SVM models)"
    )
    p.set_defaults(func=run_fetch)


def _check_images() -> None:
    """The image references the environment names (DLBENCH_REGISTRY, DLBENCH_IMAGE_TAG) parse as references:
    a cluster would otherwise fail to pull them at the end of the run, not here."""
    images = _edge("dlbench_kfp.components.images", needs=())
    registry = _edge("dlbench_kfp.pipelines.registry", needs=())
    for ref in images.current().values():
        try:
            registry.parse_reference(ref)
        except DlbenchError as exc:
            raise DlbenchError(
                f"{exc.message} (from DLBENCH_REGISTRY / DLBENCH_IMAGE_TAG)",
                "set DLBENCH_REGISTRY to host[:port]/path and DLBENCH_IMAGE_TAG to a tag of letters, digits, "
                "'_', '.', '-'",
            ) from None


def _check_publish_to(publish_to: str | None) -> None:
    """``--publish-to``: a valid ``s3://bucket/prefix`` or a folder path, refused here rather than when the
    report task tries to publish at the end of a cluster run."""
    from dlbench.settings import bucket_problem

    if publish_to is None:
        return
    hint = "give s3://bucket/prefix, or a folder the cluster's pods can write"
    if publish_to.strip() == "" or publish_to != publish_to.strip() or any(ord(c) < 32 for c in publish_to):
        raise DlbenchError(f"--publish-to {publish_to!r}: not a store location", hint)
    if "://" in publish_to:
        scheme, _, rest = publish_to.partition("://")
        if scheme not in ("s3", "file"):
            raise DlbenchError(
                f"--publish-to {publish_to!r}: scheme {scheme!r} is not s3:// or file://", hint
            )
        if scheme == "s3":
            bucket = rest.split("/", 1)[0]
            problem = bucket_problem(bucket) if bucket else "no bucket named"
            if problem:
                raise DlbenchError(f"--publish-to {publish_to!r}: {problem}", hint)


def _check_data_root(spec) -> None:
    """An ``s3://`` data root with a bucket name S3 refuses, refused at compile time."""
    from dlbench.settings import bucket_problem

    root = spec.data.root
    if root and str(root).startswith("s3://"):
        bucket = str(root)[5:].split("/", 1)[0]
        problem = bucket_problem(bucket) if bucket else "no bucket named"
        if problem:
            raise DlbenchError(f"data.root {root!r}: {problem}", "fix data.root in the spec")


def run_compile(args) -> int:
    from dlbench.io import check_out_file
    from dlbench.plan import require_runs, with_fuse
    from dlbench.spec import load_spec

    _check_parallelism(args.parallelism)
    if args.out is not None and args.out.strip() == "":
        raise DlbenchError(
            "--out '': not a file name", "give a file path, e.g. --out runs/pipelines/quick.yaml"
        )
    _check_publish_to(args.publish_to)
    _check_images()
    study = _edge("dlbench_kfp.pipelines.study")
    spec = with_fuse(load_spec(args.spec), args.fuse)
    target = args.out or os.path.join(
        COMPILE_DIR, f"{study.pipeline_name(spec).removeprefix('dlbench-')}.yaml"
    )
    require_runs(spec)
    _check_data_root(spec)
    check_out_file(target)
    check = None
    if args.check:
        preflight = _edge("dlbench_kfp.pipelines.preflight")
        check = lambda path: preflight.preflight(spec, path)  # noqa: E731
    out = study.compile_pipeline(
        spec,
        target,
        parallelism=args.parallelism,
        publish_to=args.publish_to,
        pin_digests=args.pin_digests,
        check=check,
    )
    print(f"{out} ({study.describe_plan(spec)})")
    return 0


def run_submit(args) -> int:
    from dlbench.plan import with_fuse
    from dlbench.settings import settings
    from dlbench.spec import load_spec

    args.host = args.host or settings().kfp_host
    if not args.host:
        raise DlbenchError("no KFP host", "pass --host http://HOST:PORT or set KFP_HOST")
    _check_parallelism(args.parallelism)
    _check_publish_to(args.publish_to)
    _check_images()
    if args.poll <= 0:
        raise DlbenchError(f"--poll must be > 0 seconds (got {args.poll:g})")
    if args.timeout is not None and args.timeout <= 0:
        raise DlbenchError(
            f"--timeout must be > 0 seconds (got {args.timeout:g})", "leave it out to wait until the end"
        )
    sub = _edge("dlbench_kfp.pipelines.submit")
    spec = with_fuse(load_spec(args.spec), args.fuse)
    _check_data_root(spec)
    info = sub.submit(
        spec,
        args.host,
        experiment=args.experiment,
        run_name=args.run_name,
        parallelism=args.parallelism,
        publish_to=args.publish_to,
        namespace=args.namespace,
        pin_digests=args.pin_digests,
        preflight=args.preflight,
    )
    print(f"run id: {info['run_id']}")
    print(f"run name: {info['run_name']}")
    print(f"UI: {info['link']}")
    if not args.wait:
        return 0
    state = sub.wait_for_run(
        args.host, info["run_id"], poll=args.poll, timeout=args.timeout, namespace=args.namespace
    )
    print(f"run {info['run_id']} ended {state}")
    if state == "SUCCEEDED":
        storage = _edge("dlbench_kfp.components.storage", needs=())
        where = args.publish_to if args.publish_to is not None else storage.STORE_URL
        where = where or storage.PIPELINE_ROOT  # not published: the bundle is below KFP's pipeline root
        print(f"fetch the report: dlbench fetch {info['run_id']} --store {where} --to runs/{info['run_id']}")
    return 0 if state == "SUCCEEDED" else 1


def run_local(args) -> int:
    from dlbench.plan import with_fuse
    from dlbench.spec import load_spec

    if not args.local:
        raise DlbenchError(
            "dlbench run runs the pipeline on this machine: add --local",
            "to run it on a cluster use dlbench submit --host URL",
        )
    from dlbench.io import check_out_dir
    from dlbench.plan import require_runs
    from dlbench.spec import check_local_inputs

    _check_parallelism(args.parallelism)
    refuse_empty_paths(args, "work", "store")
    spec = with_fuse(load_spec(args.spec), args.fuse)
    if args.smoke:
        from dlbench.plan import smoke_spec

        spec = smoke_spec(spec)
    require_runs(spec)
    check_local_inputs(spec, args.spec)
    store_url = args.store or _default_store()
    check_out_dir(args.work, "--work", {"--store": store_url, "data.root": spec.data.root})
    _check_local_store(store_url, {"--work": args.work, "data.root": spec.data.root})
    local = _edge("dlbench_kfp.pipelines.local")
    info = local.run_local(
        spec,
        store_url=args.store or _default_store(),
        runner=args.runner,
        work_dir=args.work,
        parallelism=args.parallelism,
        create_bucket=args.create_bucket,
        verbose=args.verbose,
    )
    print(f"run: {info['run']}")
    print(f"stored: {info['store']} ({info['files']} files, {info['bytes']:,} bytes)")
    print(f"runs by id: {info['index']}")
    if info.get("log"):
        print(f"full log: {info['log']}")
    print(f"report: {info['report']}")
    for line in info["failed"]:
        print(f"failed: {line}")
    return 1 if info["failed"] else 0


def _check_local_store(url: str, inputs: dict | None = None) -> None:
    """A folder store must be writable before a run's work starts (an S3 store is checked by opening it),
    and must not overlap the folders named in ``inputs`` (the work folder, the data root)."""
    from dlbench.io import check_out_dir

    if "://" not in url or url.startswith("file://"):
        check_out_dir(url.removeprefix("file://"), "--store", inputs)


def run_publish(args) -> int:
    from pathlib import Path

    from dlbench.io import check_in_dir
    from dlbench.log import get_logger
    from dlbench.store import open_store

    refuse_empty_paths(args, "work", "store")
    check_in_dir(args.work, "--work", "pass the --work folder dlbench run --local used")
    name = args.run.strip("/")
    run_dir = Path(args.work) / name
    if not name or "/" in name or name in (".", "..") or not run_dir.is_dir():
        raise DlbenchError(
            f"no run {args.run!r} in {args.work}",
            "pass the run name dlbench run --local printed and the --work folder it used",
        )
    _check_local_store(args.store or _default_store(), {"--work": args.work})
    publish = _edge("dlbench_kfp.pipelines.local_publish")
    bundle = publish.find_bundle(run_dir)
    store = open_store(args.store or _default_store(), create_bucket=args.create_bucket)
    info = publish.publish_run(
        run_dir,
        store,
        bundle=bundle,
        log=get_logger("dlbench.pipeline").info,
        store_url=args.store or _default_store(),
        work_dir=args.work,
    )
    print(
        f"stored: {info['store']} ({info['files']} files, {info['bytes']:,} bytes), verified against "
        f"its MANIFEST.json"
    )
    print(f"report: {info['report']}")
    return 0


def run_fetch(args) -> int:
    from dlbench.io import check_in_dir, check_out_dir
    from dlbench.log import get_logger
    from dlbench.store import fetch_run, open_store

    refuse_empty_paths(args, "to", "store")
    url = args.store or _default_store()
    check_out_dir(args.to, "--to", {"--store": url})
    if "://" not in url or url.startswith("file://"):
        check_in_dir(
            url.removeprefix("file://"),
            "--store",
            "give the folder runs are stored in, or s3://bucket/prefix",
        )
    store = open_store(url)
    summary = fetch_run(store, args.run, args.to, models=args.models, log=get_logger("dlbench.fetch").info)
    print(
        f"fetched {summary['downloaded']} files ({summary['bytes']:,} bytes), {summary['skipped']} already "
        f"there and verified, from {store.describe(summary['prefix'])} into {args.to}"
    )
    from dlbench.layout import StudyLayout

    report = StudyLayout(args.to).report_html
    if os.path.isfile(report):
        print(f"report: {report}")
    return 0
