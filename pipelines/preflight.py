"""Pre-flight of ``dlbench submit`` and ``dlbench compile --check``: what a run needs, checked here first.

A typo in a registry name otherwise costs a whole run's scheduling (ImagePullBackOff on the cluster), a
dataset never pushed costs the data task. Checked, before anything is uploaded or submitted:

- every image the compiled pipeline references resolves in its registry (``pipelines.registry``: the
  registry HTTP API, with the credentials ``docker login`` / ``podman login`` stored);
- every dataset the spec reads from the store (``data.root: s3://...``) is there, as ``dlbench data push``
  leaves it: ``<root>/<dataset>/MANIFEST.json`` and each file it lists, with its size. This needs the
  store's endpoint and keys here (``DLBENCH_S3_ENDPOINT``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``);
  without them the check is skipped and a note says so.

The spec's device catalog (``devices:``) was checked when the spec loaded (a node selector without a value,
a price below zero, an unknown device name: one line each); pre-flight names the node pools the run will
ask for, so a selector no node carries is caught by eye before the tasks wait in Pending.

Each problem is one line naming it and its fix. ``--no-preflight`` skips all of it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dlbench.spec import StudySpec
from dlbench_kfp.pipelines import PipelineError


class PreflightError(PipelineError):
    """One or more things a run needs are missing; each problem on its own line."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        n = len(problems)
        super().__init__(
            f"pre-flight found {n} problem{'s' if n != 1 else ''}",
            "fix them, or pass --no-preflight to skip the check",
        )

    def one_line(self) -> str:  # a line per problem: the CLI prints them under the summary
        return super().one_line() + "".join(f"\n  {p}" for p in self.problems)


def check_images(images: list[str], timeout: float = 10.0) -> list[str]:
    """One line per image its registry does not hold (or cannot be asked about)."""
    from dlbench_kfp.pipelines import registry

    problems, clients = [], {}
    for image in images:
        try:
            registry.resolve(image, timeout=timeout, clients=clients)
        except registry.RegistryError as exc:
            problems.append(exc.one_line())
    return problems


def _store_credentials_at_hand(env: dict[str, str] | None = None) -> bool:
    from dlbench.settings import environment_settings

    s = environment_settings(env)
    return bool(s.s3_endpoint and s.s3_keys)


def check_datasets(spec: StudySpec) -> tuple[list[str], list[str]]:
    """(problems, notes) about the datasets the spec names in the store."""
    from dlbench.data.remote import dataset_in_store
    from dlbench.store import StoreError, open_store
    from dlbench_kfp.pipelines.study import is_store_url

    root = spec.data.root
    if not is_store_url(root):
        notes = []
        if root:
            notes.append(
                f"data.root {root} is a path: pods read it only if the image or a volume holds it "
                "(dlbench data push puts datasets in the store, data.root: s3://... reads them there)"
            )
        elif spec.data.source in ("auto", "torchvision"):
            notes.append(
                "data.root is not set: the data task downloads the datasets, which needs internet "
                "in the pods (dlbench data push + data.root: s3://... needs none)"
            )
        return [], notes
    if not _store_credentials_at_hand():
        return [], [
            f"datasets in {root} not checked: no store credentials here (set DLBENCH_S3_ENDPOINT, "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY to check them)"
        ]
    try:
        store = open_store(root)
    except StoreError as exc:
        return [f"datasets in {root}: {exc.one_line()}"], []
    problems = []
    for dataset in spec.data.datasets:
        try:
            prefix, manifest = dataset_in_store(store, dataset)
            for entry in manifest["files"]:
                info = store.info(f"{prefix}/{entry['path']}".strip("/"))
                if info is None or info.size != entry["bytes"]:
                    what = (
                        "missing"
                        if info is None
                        else f"{info.size:,} bytes, its manifest says {entry['bytes']:,}"
                    )
                    problems.append(
                        f"dataset {dataset}: {store.describe(prefix)}/{entry['path']} {what} "
                        f"(push it again: dlbench data push --dataset {dataset} --store {root})"
                    )
        except StoreError as exc:
            problems.append(f"dataset {dataset}: {exc.one_line()}")
    return problems, []


def device_notes(spec: StudySpec) -> list[str]:
    """One note naming the catalog devices the run's tasks are scheduled on, when the spec has a catalog."""
    from dlbench.devices import describe
    from dlbench.plan import build_plan

    if not spec.devices:
        return []
    p = build_plan(spec)
    used = dict.fromkeys([*(t.device_name for t in (*p.train, *p.svm)), p.onnx.device_name])
    cat = spec.catalog()
    return [
        "tasks go to the node pools "
        + "; ".join(describe(n, cat[n]) for n in used)
        + " (a node_selector no node carries leaves its tasks Pending)"
    ]


def preflight(
    spec: StudySpec, yaml_path: str | os.PathLike, log: Callable[[str], Any] = print, timeout: float = 10.0
) -> None:
    """Check the compiled pipeline's images and the spec's store datasets; a PreflightError lists every
    problem."""
    from dlbench_kfp.pipelines.registry import images_in

    images = images_in(Path(yaml_path).read_text())
    problems = check_images(images, timeout=timeout)
    data_problems, notes = check_datasets(spec)
    problems += data_problems
    for note in notes + device_notes(spec):
        log(f"pre-flight: note: {note}")
    if problems:
        raise PreflightError(problems)
    found = (
        "1 image found in its registry"
        if len(images) == 1
        else f"{len(images)} images found in their registries"
    )
    log(
        f"pre-flight: {found}"
        + ("" if notes else f", datasets found in {spec.data.root}" if spec.data.root else "")
    )
