"""The local-folder store and the backend registry. What every backend does (round trips, atomic publish,
checksums, resume, refusals) is tested against this one too, in test_contract.py."""

from __future__ import annotations

import pytest

from dlbench import store as store_module
from dlbench.store import LocalStore, StoreError, build_manifest, open_store, register_store_backend


def test_build_manifest_skips_partial_files(tmp_path):
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "b.txt.part").write_text("partial")
    assert [e["path"] for e in build_manifest(tmp_path)["files"]] == ["a.txt"]


def test_unknown_store_scheme_is_one_line_error():
    with pytest.raises(StoreError, match="unsupported store URL"):
        open_store("gs://bucket/x")


def test_a_registered_backend_serves_its_url_scheme(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "BACKENDS", dict(store_module.BACKENDS))

    @register_store_backend
    class Shelf(LocalStore):
        scheme = "shelf"

        @classmethod
        def from_url(cls, url, create_bucket=False):
            return cls(tmp_path / url.removeprefix("shelf://"))

    shelf = open_store("shelf://runs")
    assert isinstance(shelf, Shelf) and shelf.root == tmp_path / "runs"
    folder = open_store(f"file://{tmp_path}/runs")
    assert type(folder) is LocalStore and folder.root == tmp_path / "runs"
    path = open_store(tmp_path / "runs")
    assert type(path) is LocalStore and path.root == tmp_path / "runs"
