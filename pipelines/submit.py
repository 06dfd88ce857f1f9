"""Send the study pipeline to a KFP API: upload (or reuse) the pipeline version, create a run, maybe wait.

- The pipeline is named after the spec (``dlbench-quick``); its version is named after the compiled
  YAML's SHA-256, so submitting the same pipeline twice reuses the version instead of piling up copies.
- Before anything else the pre-flight (``pipelines.preflight``) checks that every image of the compiled
  pipeline resolves in its registry and the spec's datasets in the store exist (``preflight=False``
  skips it); then the host's ``/apis/v2beta1/healthz`` is asked, with a short timeout: a URL that
  is not a KFP API fails in one line instead of kfp.Client's 25 s of retries.
- ``wait`` polls the run itself: ``kfp.Client.wait_for_run_completion`` never returns for a CANCELED run.
- Authentication: ``$KFP_TOKEN`` is sent as a bearer token, ``$KFP_COOKIES`` as cookies (e.g. an
  ``authservice_session=...`` cookie of a Kubeflow login); neither is printed.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dlbench.plan import build_plan
from dlbench.settings import settings
from dlbench.spec import StudySpec
from dlbench_kfp.pipelines import PipelineError
from dlbench_kfp.pipelines.study import compile_pipeline, pipeline_name

FINAL_STATES = {"SUCCEEDED", "SKIPPED", "FAILED", "CANCELED"}
TOKEN_ENV = "KFP_TOKEN"
COOKIES_ENV = "KFP_COOKIES"


def normalise_host(host: str) -> str:
    host = host.strip().rstrip("/")
    if not host.startswith(("http://", "https://")):
        raise PipelineError(
            f"--host {host!r} needs a scheme", "e.g. http://localhost:8080 (a port-forward of ml-pipeline-ui)"
        )
    from dlbench.settings import url_problem

    problem = url_problem(host)
    if problem:
        raise PipelineError(f"--host {problem}", "e.g. http://localhost:8080 (a port is 1 to 65535)")
    return host


def _auth_headers() -> dict[str, str]:
    """$KFP_TOKEN and $KFP_COOKIES, as :mod:`dlbench.settings` parsed them (no line break in either)."""
    s = settings()
    headers = {}
    if s.kfp_token:
        headers["Authorization"] = f"Bearer {s.kfp_token}"
    if s.kfp_cookies:
        headers["Cookie"] = s.kfp_cookies
    return headers


def check_kfp_api(host: str, timeout: float = 10.0) -> dict[str, Any]:
    """GET ``<host>/apis/v2beta1/healthz``; a one-line PipelineError unless a KFP API answers."""
    url = f"{host}/apis/v2beta1/healthz"
    req = urllib.request.Request(url, headers={"Accept": "application/json", **_auth_headers()})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body, ctype, status = resp.read(65536), resp.headers.get("Content-Type", ""), resp.status
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            raise PipelineError(
                f"the KFP API at {host} refused us (HTTP {exc.code})",
                f"set {TOKEN_ENV} (bearer token) or {COOKIES_ENV} (session cookie)",
            ) from None
        raise PipelineError(
            f"{host} is not a KFP API: GET /apis/v2beta1/healthz answered HTTP {exc.code}",
            "point --host at the KFP UI or API (e.g. kubectl port-forward svc/ml-pipeline-ui 8080:80)",
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise PipelineError(
            f"KFP host {host} unreachable ({' '.join(str(reason).split())[:120]})",
            "check --host and that the port-forward or ingress is up",
        ) from None
    if status != 200:
        raise PipelineError(f"{host} is not a KFP API: healthz answered HTTP {status}")
    try:
        data = json.loads(body)
    except ValueError:
        hint = "a login page? set KFP_COOKIES or KFP_TOKEN" if "html" in ctype else "check --host"
        raise PipelineError(
            f"{host} is not a KFP API: healthz answered {ctype or 'no content type'}, not JSON", hint
        ) from None
    if not isinstance(data, dict):
        raise PipelineError(f"{host} is not a KFP API: healthz answered {type(data).__name__}, not an object")
    return data


@contextlib.contextmanager
def _quiet():
    """kfp.Client prints links and warns on every call; we print our own lines."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def _api_error(action: str, exc: Exception, host: str) -> PipelineError:
    status = getattr(exc, "status", None)
    body = getattr(exc, "body", None)
    detail = ""
    if body:
        try:
            parsed = json.loads(body)
            detail = parsed.get("message") or parsed.get("error") or ""
        except (ValueError, AttributeError):
            detail = str(body)
    detail = " ".join(str(detail or exc).split())[:240]
    where = f"HTTP {status}" if status else type(exc).__name__
    return PipelineError(f"could not {action} at {host} ({where}): {detail}")


def make_client(host: str, namespace: str | None = None):
    import kfp

    kwargs: dict[str, Any] = {"host": host}
    s = settings()
    if s.kfp_token:
        kwargs["existing_token"] = s.kfp_token
    if s.kfp_cookies:
        kwargs["cookies"] = s.kfp_cookies
    if namespace:
        kwargs["namespace"] = namespace
    with _quiet():
        try:
            return kfp.Client(**kwargs)
        except Exception as exc:  # noqa: BLE001 - one clear line instead of the SDK's traceback
            raise _api_error("connect", exc, host) from None


def _filter(name: str) -> str:
    return json.dumps({"predicates": [{"operation": "EQUALS", "key": "display_name", "stringValue": name}]})


def upload_or_reuse(client, yaml_path: Path, name: str, description: str, host: str) -> tuple[str, str, bool]:
    """(pipeline_id, version_id, uploaded?) for the YAML: a version of the same content (name) is reused."""
    digest = hashlib.sha256(yaml_path.read_bytes()).hexdigest()[:12]
    version_name = f"{name}-{digest}"
    with _quiet():
        try:
            pipeline_id = client.get_pipeline_id(name)
            if pipeline_id is None:  # a new pipeline: KFP makes this YAML its first version
                p = client.upload_pipeline(str(yaml_path), pipeline_name=name, description=description)
                versions = client.list_pipeline_versions(p.pipeline_id, page_size=1).pipeline_versions or []
                if not versions:
                    raise PipelineError(f"KFP at {host} created pipeline {name} without a version")
                return p.pipeline_id, versions[0].pipeline_version_id, True
            found = (
                client.list_pipeline_versions(
                    pipeline_id, page_size=100, filter=_filter(version_name)
                ).pipeline_versions
                or []
            )
            for v in found:
                if v.display_name == version_name:
                    return pipeline_id, v.pipeline_version_id, False
            v = client.upload_pipeline_version(
                str(yaml_path), version_name, pipeline_id=pipeline_id, description=description
            )
            return pipeline_id, v.pipeline_version_id, True
        except PipelineError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise _api_error("upload the pipeline", exc, host) from None


def submit(
    spec: StudySpec,
    host: str,
    experiment: str = "dlbench",
    run_name: str | None = None,
    parallelism: int = 1,
    publish_to: str | None = None,
    namespace: str | None = None,
    pin_digests: bool = False,
    preflight: bool = True,
    log: Callable[[str], Any] = print,
) -> dict[str, Any]:
    """Compile ``spec`` (pre-flight checked), upload or reuse its pipeline version, create a run; return ids
    and the UI link. Nothing reaches the KFP API when the pre-flight fails."""
    host = normalise_host(host)
    build_plan(spec)  # a spec with no runs is refused before anything is sent
    name = pipeline_name(spec)
    with tempfile.TemporaryDirectory(prefix="dlbench-submit-") as tmp:
        yaml_path = compile_pipeline(
            spec,
            Path(tmp) / f"{name}.yaml",
            parallelism=parallelism,
            publish_to=publish_to,
            pin_digests=pin_digests,
        )
        if preflight:
            from dlbench_kfp.pipelines.preflight import preflight as check

            check(spec, yaml_path, log=log)
        check_kfp_api(host)
        client = make_client(host, namespace)
        description = f"dlbench study {spec.name!r}" + (f": {spec.description}" if spec.description else "")
        pipeline_id, version_id, uploaded = upload_or_reuse(client, yaml_path, name, description, host)
    log(("uploaded" if uploaded else "reusing") + f" pipeline {name} version {version_id}")
    with _quiet():
        try:
            exp = client.create_experiment(experiment, namespace=namespace)
            job = run_name or f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}"
            params = {} if publish_to is None else {"publish_to": publish_to}
            run = client.run_pipeline(
                experiment_id=exp.experiment_id,
                job_name=job,
                pipeline_id=pipeline_id,
                version_id=version_id,
                params=params,
            )
        except Exception as exc:  # noqa: BLE001
            raise _api_error("create the run", exc, host) from None
    link = f"{host}/#/runs/details/{run.run_id}"
    return {
        "run_id": run.run_id,
        "run_name": job,
        "link": link,
        "pipeline_id": pipeline_id,
        "version_id": version_id,
        "experiment_id": exp.experiment_id,
        "uploaded": uploaded,
    }


def wait_for_run(
    host: str,
    run_id: str,
    poll: float = 10.0,
    timeout: float | None = None,
    namespace: str | None = None,
    log: Callable[[str], Any] = print,
    client=None,
) -> str:
    """Poll the run until it ends (SUCCEEDED, FAILED, CANCELED, SKIPPED) or ``timeout``; return its state."""
    host = normalise_host(host)
    client = client or make_client(host, namespace)
    start, last, errors = time.monotonic(), None, 0
    while True:
        try:
            with _quiet():
                run = client.get_run(run_id)
            errors = 0
        except Exception as exc:  # noqa: BLE001 - a blip in the port-forward should not end the wait
            errors += 1
            if errors >= 5:
                raise _api_error(f"read run {run_id}", exc, host) from None
            time.sleep(poll)
            continue
        state = str(run.state or "RUNTIME_STATE_UNSPECIFIED")
        if state != last:
            log(f"run {run_id}: {state} ({time.monotonic() - start:.0f} s)")
            last = state
        if state in FINAL_STATES:
            return state
        if timeout is not None and time.monotonic() - start > timeout:
            raise PipelineError(
                f"run {run_id} still {state} after {timeout:.0f} s",
                "it keeps running on the cluster; wait again or open the UI link",
            )
        time.sleep(poll)
