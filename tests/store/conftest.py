"""Store test fixtures: an S3 server on loopback (rclone serve s3) and the environment pointing at it."""

from __future__ import annotations

import pytest

from tests.s3server import S3Server


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    server = S3Server(tmp_path_factory.mktemp("s3") / "data").start()
    yield server
    server.stop()


@pytest.fixture
def own_s3_server(tmp_path):
    """A server of the test's own, which the test may kill and restart."""
    server = S3Server(tmp_path / "s3data").start()
    yield server
    server.stop()


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    return s3_server
