"""``dlbench submit`` against a local HTTP server that speaks the KFP v2 REST API kfp.Client uses."""

from __future__ import annotations

import http.server
import json
import threading

import pytest
import yaml

from dlbench.cli import main
from tests.pipeline.kfp_fake import API, FakeKfp


@pytest.fixture
def kfp_api():
    with FakeKfp() as fake:
        yield fake


def submit(kfp_api, tiny_spec, *extra):
    """Submit without the pre-flight: the default images are not in a registry reachable here
    (tests/pipeline/test_preflight.py checks the pre-flight against a real registry)."""
    return main(
        [
            "submit",
            "--host",
            kfp_api.url,
            "--spec",
            str(tiny_spec),
            "--experiment",
            "bench",
            "--no-preflight",
            *extra,
        ]
    )


def test_submit_uploads_the_pipeline_and_creates_a_run(kfp_api, tiny_spec, capsys):
    assert submit(kfp_api, tiny_spec, "--run-name", "first", "--publish-to", "s3://dlbench/runs") == 0
    out = capsys.readouterr().out
    (run_id,) = kfp_api.runs
    assert f"run id: {run_id}" in out and f"UI: {kfp_api.url}/#/runs/details/{run_id}" in out
    # the uploaded pipeline is the compiled study of this spec
    (upload,) = kfp_api.uploads
    doc = next(yaml.safe_load_all(upload["yaml"]))
    assert upload["name"] == "dlbench-tiny" and doc["pipelineInfo"]["name"] == "dlbench-tiny"
    assert {
        "comp-data",
        "comp-train-cpu",
        "comp-svm-cpu",
        "comp-profile",
        "comp-onnx-cpu",
        "comp-report",
    } <= set(doc["components"])
    # the run: in the experiment, on that pipeline version, with the parameter we passed
    run = kfp_api.runs[run_id]
    (exp_id,) = kfp_api.experiments
    assert kfp_api.experiments[exp_id]["display_name"] == "bench"
    assert run["experiment_id"] == exp_id and run["display_name"] == "first"
    (pid,) = kfp_api.pipelines
    assert run["pipeline_version_reference"] == {
        "pipeline_id": pid,
        "pipeline_version_id": kfp_api.versions[pid][0]["pipeline_version_id"],
    }
    assert run["runtime_config"]["parameters"] == {"publish_to": "s3://dlbench/runs"}
    assert kfp_api.requests_to("GET", f"{API}/healthz")


def test_same_pipeline_reuses_its_version(kfp_api, tiny_spec, capsys):
    assert submit(kfp_api, tiny_spec) == 0
    assert submit(kfp_api, tiny_spec) == 0  # content-named version uploaded once
    n_uploads = len(kfp_api.uploads)
    capsys.readouterr()
    assert submit(kfp_api, tiny_spec) == 0
    out = capsys.readouterr().out
    assert len(kfp_api.uploads) == n_uploads == 2 and len(kfp_api.runs) == 3
    assert "reusing pipeline dlbench-tiny version" in out
    (pid,) = kfp_api.pipelines
    assert [v["display_name"].startswith("dlbench-tiny") for v in kfp_api.versions[pid]] == [True, True]
    assert len(kfp_api.experiments) == 1  # the experiment is found by name, not created again


def test_wait_returns_on_a_cancelled_run(kfp_api, tiny_spec, capsys):
    kfp_api.run_states = ["RUNNING", "CANCELING", "CANCELED"]
    assert submit(kfp_api, tiny_spec, "--wait", "--poll", "0.05") == 1
    out = capsys.readouterr().out
    assert "ended CANCELED" in out
    assert len(kfp_api.requests_to("GET", f"{API}/runs/[^/]+")) == 3


def test_wait_success_exits_zero(kfp_api, tiny_spec, capsys):
    kfp_api.run_states = ["PENDING", "RUNNING", "SUCCEEDED"]
    assert submit(kfp_api, tiny_spec, "--wait", "--poll", "0.05") == 0
    out = capsys.readouterr().out
    run_id = next(iter(kfp_api.runs))
    assert "ended SUCCEEDED" in out and f"dlbench fetch {run_id} --store s3://dlbench/runs" in out


class _Plain(http.server.BaseHTTPRequestHandler):
    status, body, ctype = 404, b"<html>not found</html>", "text/html"

    def do_GET(self):
        self.send_response(self.status)
        self.send_header("Content-Type", self.ctype)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize(
    "status, body, ctype, expected",
    [
        (
            404,
            b"<html>nope</html>",
            "text/html",
            "is not a KFP API: GET /apis/v2beta1/healthz answered HTTP 404",
        ),
        (200, b"<html>login</html>", "text/html", "is not a KFP API: healthz answered text/html, not JSON"),
        (401, b"{}", "application/json", "refused us (HTTP 401)"),
    ],
)
def test_a_host_that_is_not_a_kfp_api_is_one_line(tiny_spec, capsys, status, body, ctype, expected):
    handler = type("H", (_Plain,), {"status": status, "body": body, "ctype": ctype})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        rc = main(
            [
                "submit",
                "--host",
                f"http://127.0.0.1:{server.server_port}",
                "--spec",
                str(tiny_spec),
                "--no-preflight",
            ]
        )
    finally:
        server.shutdown()
        server.server_close()
    err = capsys.readouterr().err
    assert rc == 2 and expected in err and err.count("\n") == 1


def test_unreachable_host_and_missing_scheme(tiny_spec, capsys):
    from tests.s3server import _free_port

    assert (
        main(
            [
                "submit",
                "--host",
                f"http://127.0.0.1:{_free_port()}",
                "--spec",
                str(tiny_spec),
                "--no-preflight",
            ]
        )
        == 2
    )
    assert "unreachable" in capsys.readouterr().err
    assert main(["submit", "--host", "localhost:8080", "--spec", str(tiny_spec), "--no-preflight"]) == 2
    assert "needs a scheme" in capsys.readouterr().err


def test_spec_with_zero_runs_is_refused_before_contacting_kfp(kfp_api, tmp_path, capsys):
    spec = tmp_path / "empty.yaml"
    spec.write_text(json.dumps({"name": "empty", "train": {"grids": []}, "svm": {"backends": []}}))
    assert main(["submit", "--host", kfp_api.url, "--spec", str(spec)]) == 2
    assert "expands to zero train runs and zero SVM runs" in capsys.readouterr().err
    assert kfp_api.requests == []
