"""The S3 backend's settings, read from the environment only (the table is in ``stores.s3``), and the
store URL ``s3://bucket/prefix``. Imports no SDK, so checks such as the pre-flight can use the names."""

from __future__ import annotations

import os
from urllib.parse import urlparse

from dlbench.settings import bucket_problem
from dlbench.store import StoreError

ENDPOINT_ENV = "DLBENCH_S3_ENDPOINT"
SECURE_ENV = "DLBENCH_S3_SECURE"
REGION_ENV = "DLBENCH_S3_REGION"
RETRIES_ENV = "DLBENCH_S3_RETRIES"
DEADLINE_ENV = "DLBENCH_S3_RETRY_DEADLINE_S"
DEFAULT_DEADLINE_S = 90.0
KEY_ENVS = (("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"), ("MINIO_ACCESS_KEY", "MINIO_SECRET_KEY"))


def parse_endpoint(text: str, secure_env: str | None = None) -> tuple[str, bool]:
    """``http://host:9000`` -> ("host:9000", False); ``host:9000`` -> ("host:9000", $DLBENCH_S3_SECURE)."""
    text = text.strip()
    if "://" in text:
        u = urlparse(text)
        if u.scheme not in ("http", "https") or not u.netloc:
            raise StoreError(f"{ENDPOINT_ENV}={text!r} is not an http(s) URL", "e.g. http://minio.local:9000")
        if u.path not in ("", "/") or u.query:
            raise StoreError(
                f"{ENDPOINT_ENV}={text!r} has a path; the S3 endpoint is scheme://host:port only",
                "put the bucket and prefix in the store URL s3://bucket/prefix",
            )
        return u.netloc, u.scheme == "https"
    if "/" in text or not text:
        raise StoreError(f"{ENDPOINT_ENV}={text!r} is not host:port or an http(s) URL")
    secure = (secure_env or "1").strip().lower() not in ("0", "false", "no", "off")
    return text, secure


def credentials_from_env(env: dict[str, str] | None = None) -> tuple[str, str]:
    env = os.environ if env is None else env
    for key_var, secret_var in KEY_ENVS:
        if env.get(key_var) and env.get(secret_var):
            return env[key_var], env[secret_var]
    raise StoreError(
        "no S3 credentials in the environment",
        "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or MINIO_ACCESS_KEY and MINIO_SECRET_KEY)",
    )


def retries_from_env(env: dict[str, str]) -> int | None:
    """``DLBENCH_S3_RETRIES``: at most this many attempts per operation; None (unset) means no cap."""
    try:
        retries = int(env[RETRIES_ENV]) if env.get(RETRIES_ENV) else None
        if retries is not None and retries < 1:
            raise ValueError
    except ValueError:
        raise StoreError(
            f"{RETRIES_ENV}={env.get(RETRIES_ENV)!r} is not a whole number of 1 or more"
        ) from None
    return retries


def deadline_from_env(env: dict[str, str]) -> float:
    """``DLBENCH_S3_RETRY_DEADLINE_S``: seconds an operation keeps retrying transient errors."""
    try:
        deadline = float(env[DEADLINE_ENV]) if env.get(DEADLINE_ENV) else DEFAULT_DEADLINE_S
        if not 0 <= deadline < float("inf"):
            raise ValueError
    except ValueError:
        raise StoreError(
            f"{DEADLINE_ENV}={env.get(DEADLINE_ENV)!r} is not a number of seconds >= 0"
        ) from None
    return deadline


def split_url(url: str) -> tuple[str, str]:
    u = urlparse(url)
    if u.scheme != "s3" or not u.netloc:
        raise StoreError(f"{url!r} is not an s3://bucket/prefix URL")
    bucket = u.netloc
    problem = bucket_problem(bucket)
    if problem:
        raise StoreError(problem, "choose a valid bucket name")
    return bucket, u.path.strip("/")
