"""Images by digest and the pre-flight of ``submit`` / ``compile --check``, against a real registry.

The registry is Debian's docker-registry (the CNCF distribution registry) on loopback; a tiny real OCI
image is pushed to it through its HTTP API and stands in for the cpu image (the tiny study runs on the
CPU only, so the cpu image is the one image its pipeline references). The KFP API is the fake one
(tests/pipeline/kfp_fake.py), which records every request: a failed pre-flight must leave it untouched.
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from dlbench.cli import main
from dlbench_kfp.components import images
from dlbench_kfp.pipelines import registry
from tests.conftest import make_idx_folder
from tests.pipeline.conftest import tiny_spec_dict
from tests.pipeline.kfp_fake import FakeKfp
from tests.registry import Registry

TAG = "t1"


@pytest.fixture(scope="module")
def reg(tmp_path_factory):
    server = Registry(tmp_path_factory.mktemp("registry")).start()
    server.digest = server.push_tiny_image("dlbench/dlbench-cpu", TAG)
    yield server
    server.stop()


@pytest.fixture
def names(reg, monkeypatch, tmp_path):
    """Images named as `make push REGISTRY=<reg>/dlbench TAG=t1` pushed them; no logins on this machine."""
    monkeypatch.setenv(images.REGISTRY_ENV, f"{reg.host}/dlbench")
    monkeypatch.setenv(images.TAG_ENV, TAG)
    for var in ("REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR", "DOCKER_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return reg


@pytest.fixture
def kfp_api():
    with FakeKfp() as fake:
        yield fake


def executor_images(path) -> set[str]:
    pipeline = next(yaml.safe_load_all(path.read_text()))
    return {e["container"]["image"] for e in pipeline["deploymentSpec"]["executors"].values()}


def test_compile_pin_digests_names_every_image_by_the_digest_pushed(names, tiny_spec, tmp_path, capsys):
    out = tmp_path / "pinned.yaml"
    assert main(["compile", "--spec", str(tiny_spec), "--out", str(out), "--pin-digests", "--check"]) == 0
    assert executor_images(out) == {f"{names.host}/dlbench/dlbench-cpu@{names.digest}"}
    assert "pre-flight: 1 image found in its registry" in capsys.readouterr().out
    # without --pin-digests the YAML names the tag the environment gives, read when compiling
    assert main(["compile", "--spec", str(tiny_spec), "--out", str(out)]) == 0
    assert executor_images(out) == {f"{names.host}/dlbench/dlbench-cpu:{TAG}"}


def test_submit_with_images_present_passes_preflight_and_runs_pinned(names, kfp_api, tiny_spec, capsys):
    assert main(["submit", "--host", kfp_api.url, "--spec", str(tiny_spec), "--pin-digests"]) == 0
    out = capsys.readouterr().out
    assert "pre-flight: 1 image found" in out and len(kfp_api.runs) == 1
    (upload,) = kfp_api.uploads
    doc = next(yaml.safe_load_all(upload["yaml"]))
    assert {e["container"]["image"] for e in doc["deploymentSpec"]["executors"].values()} == {
        f"{names.host}/dlbench/dlbench-cpu@{names.digest}"
    }


@pytest.mark.parametrize(
    "registry_env, tag, expected",
    [
        (
            "{host}/dlbench",
            "nope",
            "image {host}/dlbench/dlbench-cpu:nope: no tag 'nope' in {host}/dlbench/dlbench-cpu "
            "(it has t1) (push this tag (make push REGISTRY=... TAG=...)",
        ),
        (
            "{host}/elsewhere",
            TAG,
            "image {host}/elsewhere/dlbench-cpu:t1: repository elsewhere/dlbench-cpu does not "
            "exist in {host} (push the images there (make push REGISTRY=...)",
        ),
    ],
)
def test_submit_with_a_missing_image_fails_in_one_line_before_any_kfp_call(
    names, kfp_api, tiny_spec, monkeypatch, capsys, registry_env, tag, expected
):
    monkeypatch.setenv(images.REGISTRY_ENV, registry_env.format(host=names.host))
    monkeypatch.setenv(images.TAG_ENV, tag)
    assert main(["submit", "--host", kfp_api.url, "--spec", str(tiny_spec), "--wait"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == (
        "dlbench: error: pre-flight found 1 problem (fix them, or pass --no-preflight to skip the check)"
    )
    assert len(err) == 2 and err[1].startswith("  " + expected.format(host=names.host)), err
    assert kfp_api.requests == [], "nothing may reach the KFP API when the pre-flight fails"
    # --no-preflight submits anyway (the cluster would then fail to pull)
    assert main(["submit", "--host", kfp_api.url, "--spec", str(tiny_spec), "--no-preflight"]) == 0
    assert len(kfp_api.runs) == 1


def test_compile_check_and_pin_write_nothing_when_an_image_is_missing(
    names, tiny_spec, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "study.yaml"
    out.write_text("previous\n")
    monkeypatch.setenv(images.TAG_ENV, "nope")
    assert main(["compile", "--spec", str(tiny_spec), "--out", str(out), "--check"]) == 2
    assert "no tag 'nope'" in capsys.readouterr().err
    assert main(["compile", "--spec", str(tiny_spec), "--out", str(out), "--pin-digests"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no tag 'nope'" in err
    assert out.read_text() == "previous\n" and [p.name for p in tmp_path.iterdir()] == ["study.yaml"]


def test_an_unreachable_registry_is_one_line(names, tiny_spec, tmp_path, monkeypatch, capsys):
    from tests.s3server import _free_port

    monkeypatch.setenv(images.REGISTRY_ENV, f"127.0.0.1:{_free_port()}/dlbench")
    assert main(["compile", "--spec", str(tiny_spec), "--out", str(tmp_path / "x.yaml"), "--check"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "unreachable (connection refused)" in err[1]


def test_basic_auth_registry_uses_the_login_in_the_engines_auth_file(
    tmp_path, tiny_spec, monkeypatch, capsys
):
    server = Registry(tmp_path / "reg", users={"alice": "s3cret-pass"}).start()
    try:
        digest = server.push_tiny_image("team/dlbench-cpu", TAG, auth=("alice", "s3cret-pass"))
        monkeypatch.setenv(images.REGISTRY_ENV, f"{server.host}/team")
        monkeypatch.setenv(images.TAG_ENV, TAG)
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        for var in ("REGISTRY_AUTH_FILE", "DOCKER_CONFIG"):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
        out = tmp_path / "x.yaml"
        assert main(["compile", "--spec", str(tiny_spec), "--out", str(out), "--check"]) == 2
        err = capsys.readouterr().err
        assert "refused access to team/dlbench-cpu: HTTP 401; no login for it was found" in err
        assert f"docker login {server.host}" in err
        # podman login writes ${XDG_RUNTIME_DIR}/containers/auth.json
        auth = tmp_path / "run" / "containers" / "auth.json"
        auth.parent.mkdir(parents=True)
        auth.write_text(
            json.dumps({"auths": {server.host: {"auth": base64.b64encode(b"alice:s3cret-pass").decode()}}})
        )
        assert main(["compile", "--spec", str(tiny_spec), "--out", str(out), "--check", "--pin-digests"]) == 0
        assert executor_images(out) == {f"{server.host}/team/dlbench-cpu@{digest}"}
        assert "s3cret-pass" not in capsys.readouterr().out
        # a wrong password is refused in one line, naming the stored login
        auth.write_text(
            json.dumps({"auths": {server.host: {"auth": base64.b64encode(b"alice:wrong").decode()}}})
        )
        assert main(["compile", "--spec", str(tiny_spec), "--out", str(out), "--check"]) == 2
        assert "with the stored login" in capsys.readouterr().err
    finally:
        server.stop()


class _TokenRegistry(BaseHTTPRequestHandler):
    """The bearer-token flow of ghcr.io / Docker Hub: 401 with a challenge, a token from the realm, 200."""

    digest = "sha256:" + "ab" * 32
    seen: list = []

    def do_HEAD(self):
        self._answer()

    def do_GET(self):
        self._answer()

    def _answer(self):
        host = f"127.0.0.1:{self.server.server_port}"
        self.seen.append((self.command, self.path, self.headers.get("Authorization")))
        if self.path.startswith("/token"):
            ok = self.headers.get("Authorization") == "Basic " + base64.b64encode(b"bob:pw").decode()
            body = json.dumps({"token": "tok-bob" if ok else "tok-anon"}).encode()
            return self._send(200, body, {"Content-Type": "application/json"})
        if self.path == "/v2/":
            return self._send(200, b"{}")
        if self.headers.get("Authorization") != "Bearer tok-bob":
            challenge = (
                f'Bearer realm="http://{host}/token",service="{host}",scope="repository:org/dlbench-cpu:pull"'
            )
            return self._send(401, b"", {"WWW-Authenticate": challenge})
        if self.path == f"/v2/org/dlbench-cpu/manifests/{TAG}":
            return self._send(200, b"", {"Docker-Content-Digest": self.digest})
        return self._send(404, b"")

    def _send(self, status, body, headers=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_bearer_token_flow_with_a_docker_config_login(tmp_path, monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TokenRegistry)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host = f"127.0.0.1:{server.server_port}"
    try:
        monkeypatch.setenv("HOME", str(tmp_path))
        for var in ("REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR", "DOCKER_CONFIG"):
            monkeypatch.delenv(var, raising=False)
        (tmp_path / ".docker").mkdir()
        (tmp_path / ".docker" / "config.json").write_text(
            json.dumps({"auths": {f"https://{host}": {"auth": base64.b64encode(b"bob:pw").decode()}}})
        )
        assert registry.resolve(f"{host}/org/dlbench-cpu:{TAG}") == _TokenRegistry.digest
        token_calls = [s for s in _TokenRegistry.seen if s[1].startswith("/token")]
        assert token_calls and "scope=repository%3Aorg%2Fdlbench-cpu%3Apull" in token_calls[-1][1]
        assert (
            registry.pin(f"{host}/org/dlbench-cpu:{TAG}") == f"{host}/org/dlbench-cpu@{_TokenRegistry.digest}"
        )
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    "text, parts",
    [
        ("ghcr.io/dlbench/dlbench-cpu:0.1.0", ("ghcr.io", "dlbench/dlbench-cpu", "0.1.0", None)),
        ("python:3.11-slim", ("docker.io", "library/python", "3.11-slim", None)),
        ("me/app", ("docker.io", "me/app", "latest", None)),
        ("localhost:5000/a/b@sha256:" + "0" * 64, ("localhost:5000", "a/b", None, "sha256:" + "0" * 64)),
        ("127.0.0.1:5000/ns/name:tag", ("127.0.0.1:5000", "ns/name", "tag", None)),
    ],
)
def test_references_split_as_docker_does(text, parts):
    ref = registry.parse_reference(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == parts


def test_a_malformed_reference_is_one_line():
    with pytest.raises(registry.RegistryError, match="not a valid repository name"):
        registry.parse_reference("ghcr.io/DLBench/Cpu:1")


# ------------------------------------------------------------------------------------------- datasets


def test_preflight_checks_the_datasets_the_spec_reads_from_the_store(
    names, kfp_api, s3_server, tmp_path, monkeypatch, capsys
):
    spec = tiny_spec_dict("s3://dlbench/preflight-datasets")
    path = tmp_path / "s3spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    for k, v in s3_server.env().items():
        monkeypatch.setenv(k, v)
    assert main(["submit", "--host", kfp_api.url, "--spec", str(path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and err[1] == (
        "  dataset fashion-mnist: no Fashion-MNIST in the store: "
        "s3://dlbench/preflight-datasets/fashion-mnist/MANIFEST.json does not exist (dlbench data push "
        "--dataset fashion-mnist --store s3://dlbench/preflight-datasets)"
    )
    assert kfp_api.requests == []
    idx = make_idx_folder(tmp_path / "idx", 100, 50)
    assert (
        main(
            [
                "data",
                "push",
                "--dataset",
                "fashion-mnist",
                "--root",
                str(idx),
                "--store",
                "s3://dlbench/preflight-datasets",
            ]
        )
        == 0
    )
    assert main(["submit", "--host", kfp_api.url, "--spec", str(path)]) == 0
    assert "datasets found in s3://dlbench/preflight-datasets" in capsys.readouterr().out
    # the data task of such a pipeline gets the store's Secret and ConfigMap
    (upload,) = kfp_api.uploads
    platform = list(yaml.safe_load_all(upload["yaml"]))[1]
    assert "exec-data" in platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    # without store credentials the datasets are not checked, and the user is told so
    for k in s3_server.env():
        monkeypatch.delenv(k)
    assert main(["compile", "--spec", str(path), "--out", str(tmp_path / "x.yaml"), "--check"]) == 0
    assert (
        "datasets in s3://dlbench/preflight-datasets not checked: no store credentials here"
        in capsys.readouterr().out
    )
