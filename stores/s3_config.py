"""The S3 backend's settings, read from the environment only (the table is in ``stores.s3``), and the
store URL ``s3://bucket/prefix``. Imports no SDK, so checks such as the pre-flight can use the names."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlparse

from dlbench.settings import S3_KEY_PAIRS, SettingsError, bucket_problem, environment_settings
from dlbench.store import StoreError

ENDPOINT_ENV = "DLBENCH_S3_ENDPOINT"
SECURE_ENV = "DLBENCH_S3_SECURE"
REGION_ENV = "DLBENCH_S3_REGION"
RETRIES_ENV = "DLBENCH_S3_RETRIES"
DEADLINE_ENV = "DLBENCH_S3_RETRY_DEADLINE_S"
DEFAULT_DEADLINE_S = 90.0
KEY_ENVS = S3_KEY_PAIRS


def parse_endpoint(text: str, secure_env: str | bool | None = None) -> tuple[str, bool]:
    """``http://host:9000`` -> ("host:9000", False); ``host:9000`` -> ("host:9000", $DLBENCH_S3_SECURE)
    (``secure_env``: the parsed setting, or its text; unset means HTTPS)."""
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
    if isinstance(secure_env, bool):
        return text, secure_env
    secure = (secure_env or "1").strip().lower() not in ("0", "false", "no", "off")
    return text, secure


def credentials_from_env(env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """The first full pair of :data:`KEY_ENVS` in ``env`` (default: the environment), as parsed at start."""
    keys = env_settings(env).s3_keys
    if keys:
        return keys
    raise StoreError(
        "no S3 credentials in the environment",
        "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or MINIO_ACCESS_KEY and MINIO_SECRET_KEY)",
    )


def env_settings(env: Mapping[str, str] | None = None):
    """``env`` (default: the environment) parsed by :mod:`dlbench.settings` (the one parser of every
    variable); a bad value is one StoreError line naming the variable."""
    try:
        return environment_settings(env)
    except SettingsError as exc:
        raise StoreError(exc.message, exc.hint) from None


def retries_from_env(env: Mapping[str, str]) -> int | None:
    """``DLBENCH_S3_RETRIES``: at most this many attempts per operation; None (unset) means no cap."""
    return env_settings(env).s3_retries


def deadline_from_env(env: Mapping[str, str]) -> float:
    """``DLBENCH_S3_RETRY_DEADLINE_S``: seconds an operation keeps retrying transient errors."""
    deadline = env_settings(env).s3_retry_deadline_s
    return DEFAULT_DEADLINE_S if deadline is None else deadline


def split_url(url: str) -> tuple[str, str]:
    u = urlparse(url)
    if u.scheme != "s3" or not u.netloc:
        raise StoreError(f"{url!r} is not an s3://bucket/prefix URL")
    bucket = u.netloc
    problem = bucket_problem(bucket)
    if problem:
        raise StoreError(problem, "choose a valid bucket name")
    return bucket, u.path.strip("/")
