"""What `pip install dlbench` puts on sys.path: dlbench from src/, the edges under the one namespace
dlbench_kfp (components/, pipelines/, stores/ mapped with package-dir), every package folder listed, and
nothing importable under a generic top-level name (`components`, `pipelines`, `stores`) outside the
checkout."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOL = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def package_folders() -> dict[str, Path]:
    """Every folder with an __init__.py below the mapped roots, by the package name it installs as."""
    found = {}
    for prefix, folder in TOOL["package-dir"].items():
        base = ROOT / folder
        for init in base.rglob("__init__.py"):
            rel = init.parent.relative_to(base).parts
            name = ".".join(([prefix] if prefix else []) + list(rel))
            if name and "__pycache__" not in rel:
                found[name] = init.parent
    return found


def test_every_package_folder_is_installed_and_every_listed_package_exists():
    listed, folders = set(TOOL["packages"]), package_folders()
    assert set(folders) - listed == set(), "a package folder pyproject.toml does not install"
    assert listed - set(folders) == set(), "pyproject.toml lists a package that has no folder"
    assert {n.split(".")[0] for n in listed} == {"dlbench", "dlbench_kfp"}


def test_outside_the_checkout_only_dlbench_and_dlbench_kfp_import(tmp_path):
    code = (
        "import importlib, json\n"
        "out = {}\n"
        "for name in ('components', 'pipelines', 'stores', 'dlbench_kfp.components.runtime',\n"
        "             'dlbench_kfp.pipelines.study', 'dlbench_kfp.stores.s3', 'dlbench.cli'):\n"
        "    try:\n"
        "        out[name] = importlib.import_module(name).__file__\n"
        "    except ImportError:\n"
        "        out[name] = None\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    found = __import__("json").loads(proc.stdout)
    assert found["components"] is None and found["pipelines"] is None and found["stores"] is None, found
    assert Path(found["dlbench_kfp.components.runtime"]) == ROOT / "components" / "runtime.py"
    assert Path(found["dlbench_kfp.pipelines.study"]) == ROOT / "pipelines" / "study.py"
    assert Path(found["dlbench_kfp.stores.s3"]) == ROOT / "stores" / "s3.py"
    assert Path(found["dlbench.cli"]) == ROOT / "src" / "dlbench" / "cli.py"
