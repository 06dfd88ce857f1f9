"""Every environment variable dlbench reads, parsed into one typed object, checked when a command starts.

``dlbench`` calls :func:`settings` before it runs a command, so a bad value
(``DLBENCH_PROGRESS_INTERVAL=abc``, ``DLBENCH_S3_REGION='mars north 1'``, a ``KFP_TOKEN`` holding a line
break, a port above 65535) is one line naming the variable and what it takes, before anything is read or
written. Readers take the value from here (``settings().progress_interval``) instead of parsing the text
again. :func:`settings` is cached on the variables' text, so a variable a caller sets for its tasks
(``run --local`` sets ``DLBENCH_PROGRESS_INTERVAL`` on a terminal) is parsed again, once.

The rules for names that must be valid beyond dlbench (an S3 bucket, a URL's port, an image tag, a
registry host) live here too, so the compile-time checks, the registry client and the store use one rule
each. The edges (``components``, ``pipelines``, ``stores``) read their variables here as well (the image
registry and tag, ``DLBENCH_INSECURE_REGISTRIES``, the S3 endpoint and keys, the KFP token and cookies);
functions of theirs that take an ``env`` mapping (for tests) parse it with :func:`parse_settings`.
``dlbench compile`` and ``submit`` also parse the whole image references the registry and tag make.
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlparse

from dlbench.errors import DlbenchError


class SettingsError(DlbenchError):
    """An environment variable holds a value dlbench cannot use."""


# Every variable below; a value of "" counts as unset.
VARIABLES = (
    "DLBENCH_LOG_LEVEL",
    "DLBENCH_PROGRESS_INTERVAL",
    "DLBENCH_MAX_RUNS",
    "DLBENCH_TRUST_DATASET_NAME",
    "DLBENCH_DATA",
    "DLBENCH_STORE",
    "DLBENCH_GIT_COMMIT",
    "DLBENCH_REGISTRY",
    "DLBENCH_IMAGE_TAG",
    "DLBENCH_INSECURE_REGISTRIES",
    "DLBENCH_S3_ENDPOINT",
    "DLBENCH_S3_SECURE",
    "DLBENCH_S3_REGION",
    "DLBENCH_S3_RETRIES",
    "DLBENCH_S3_RETRY_DEADLINE_S",
    "AWS_REGION",
    "KFP_HOST",
    "KFP_TOKEN",
    "KFP_COOKIES",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "MINIO_ACCESS_KEY",
    "MINIO_SECRET_KEY",
)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")

# Names that must be valid outside dlbench.
BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
REGION_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
# Image references, as Docker splits them: a tag, one path component of a repository, a registry host[:port].
TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
REPO_RE = re.compile(rf"^{PATH_COMPONENT}(?:/{PATH_COMPONENT})*$")
HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
HOST_RE = re.compile(rf"^{HOST_LABEL}(?:\.{HOST_LABEL})*$")
S3_KEY_PAIRS = (("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"), ("MINIO_ACCESS_KEY", "MINIO_SECRET_KEY"))


def bucket_problem(bucket: str) -> str | None:
    """Why ``bucket`` is not a valid S3 bucket name, or None."""
    if not BUCKET_RE.match(bucket) or ".." in bucket:
        return (
            f"bucket name {bucket!r} is not valid (3-63 characters: lowercase letters, digits, dots, hyphens)"
        )
    return None


def url_problem(text: str, schemes: tuple[str, ...] = ("http", "https")) -> str | None:
    """Why ``text`` is not a ``scheme://host[:port]`` URL of one of ``schemes`` (a port above 65535 too)."""
    u = urlparse(text)
    if u.scheme not in schemes or not u.netloc:
        return f"{text!r} is not a {'/'.join(schemes)} URL"
    try:
        u.port  # noqa: B018 - raises on a port out of range or not a number
    except ValueError:
        return f"{text!r} has a port that is not a number from 1 to 65535"
    if u.port == 0:
        return f"{text!r} has port 0 (a port is 1 to 65535)"
    return None


def host_problem(text: str) -> str | None:
    """Why ``text`` is not ``host[:port]`` (a port 1 to 65535), or None."""
    host, colon, port = text.rpartition(":") if ":" in text else (text, "", "")
    if not HOST_RE.match(host):
        return "not host[:port]"
    if colon and (not port.isdigit() or not 1 <= int(port) <= 65535):
        return "a port that is not a number from 1 to 65535"
    return None


def registry_problem(text: str) -> str | None:
    """Why ``text`` is not a registry prefix ``host[:port][/path]`` or ``path`` (Docker Hub), or None."""
    first, _, rest = text.rstrip("/").partition("/")
    if "." in first or ":" in first or first == "localhost":
        if host_problem(first):
            return f"host {first!r}: {host_problem(first)}"
        if rest and not REPO_RE.match(rest):
            return f"path {rest!r} is not lowercase letters, digits and separators . _ - /"
    elif not REPO_RE.match(text.rstrip("/")):
        return "not host[:port]/path (a path of lowercase letters, digits and separators . _ - /)"
    return None


def header_problem(value: str) -> str | None:
    if any(ord(c) < 32 and c != "\t" or ord(c) == 127 for c in value):
        return "holds a line break or another control character, which an HTTP header cannot carry"
    return None


@dataclass(frozen=True)
class Settings:
    """The environment as dlbench uses it (None: unset)."""

    log_level: str = "INFO"
    progress_interval: float = 10.0
    max_runs: int | None = None
    trust_dataset_name: bool = False
    data: str | None = None
    store: str | None = None
    git_commit: str | None = None
    registry: str | None = None
    image_tag: str | None = None
    s3_endpoint: str | None = None
    s3_secure: bool | None = None
    s3_region: str | None = None
    s3_retries: int | None = None
    s3_retry_deadline_s: float | None = None
    kfp_host: str | None = None
    kfp_token: str | None = field(default=None, repr=False)
    kfp_cookies: str | None = field(default=None, repr=False)
    insecure_registries: tuple[str, ...] = ()
    s3_keys: tuple[str, str] | None = field(default=None, repr=False)  # (access key, secret), first full pair


def _bad(var: str, value: str, what: str) -> SettingsError:
    return SettingsError(f"{var}={value!r}: {what}", f"fix or unset {var}")


def _number(var: str, text: str, whole: bool, low: float, low_ok: bool = True) -> float:
    try:
        value = int(text) if whole else float(text)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or value < low or (value == low and not low_ok):
        kind = "a whole number" if whole else "a number"
        raise _bad(var, text, f"must be {kind} {'>=' if low_ok else '>'} {low:g}")
    return value


def parse_settings(env: Mapping[str, str]) -> Settings:
    """Parse the variables in ``env``; the first bad value raises one :class:`SettingsError` line."""
    v = {k: env[k] for k in VARIABLES if env.get(k, "") != ""}
    out: dict = {}
    if "DLBENCH_LOG_LEVEL" in v:
        level = v["DLBENCH_LOG_LEVEL"].strip().upper()
        if level not in LOG_LEVELS:
            raise _bad("DLBENCH_LOG_LEVEL", v["DLBENCH_LOG_LEVEL"], f"must be one of {', '.join(LOG_LEVELS)}")
        out["log_level"] = level
    if "DLBENCH_PROGRESS_INTERVAL" in v:
        out["progress_interval"] = _number(
            "DLBENCH_PROGRESS_INTERVAL", v["DLBENCH_PROGRESS_INTERVAL"], False, 0, low_ok=False
        )
    if "DLBENCH_MAX_RUNS" in v:
        out["max_runs"] = int(_number("DLBENCH_MAX_RUNS", v["DLBENCH_MAX_RUNS"], True, 1))
    if "DLBENCH_S3_RETRIES" in v:
        out["s3_retries"] = int(_number("DLBENCH_S3_RETRIES", v["DLBENCH_S3_RETRIES"], True, 1))
    if "DLBENCH_S3_RETRY_DEADLINE_S" in v:
        out["s3_retry_deadline_s"] = _number(
            "DLBENCH_S3_RETRY_DEADLINE_S", v["DLBENCH_S3_RETRY_DEADLINE_S"], False, 0
        )
    if "DLBENCH_TRUST_DATASET_NAME" in v:
        word = v["DLBENCH_TRUST_DATASET_NAME"].strip().lower()
        if word not in TRUE_WORDS + FALSE_WORDS:
            raise _bad("DLBENCH_TRUST_DATASET_NAME", v["DLBENCH_TRUST_DATASET_NAME"], "must be 1 or 0")
        out["trust_dataset_name"] = word in TRUE_WORDS
    if "DLBENCH_S3_SECURE" in v:
        word = v["DLBENCH_S3_SECURE"].strip().lower()
        if word not in TRUE_WORDS + FALSE_WORDS:
            raise _bad(
                "DLBENCH_S3_SECURE", v["DLBENCH_S3_SECURE"], "must be 1 or 0 (true/false, yes/no, on/off)"
            )
        out["s3_secure"] = word in TRUE_WORDS
    for var in ("DLBENCH_S3_REGION", "AWS_REGION"):
        if var in v and not REGION_RE.match(v[var]):
            raise _bad(
                var, v[var], "is not a region name (lowercase letters, digits and '-', e.g. us-east-1)"
            )
    region = v.get("DLBENCH_S3_REGION") or v.get("AWS_REGION")
    if region:
        out["s3_region"] = region
    if "DLBENCH_S3_ENDPOINT" in v:
        text = v["DLBENCH_S3_ENDPOINT"].strip()
        problem = url_problem(text) if "://" in text else url_problem(f"http://{text}")
        if problem or ("://" not in text and "/" in text):
            raise _bad(
                "DLBENCH_S3_ENDPOINT", text, "must be host:port or an http(s) URL with a port 1 to 65535"
            )
        out["s3_endpoint"] = text
    if "KFP_HOST" in v:
        problem = url_problem(v["KFP_HOST"].strip().rstrip("/"))
        if problem:
            raise _bad("KFP_HOST", v["KFP_HOST"], "must be an http(s) URL, e.g. http://localhost:8080")
        out["kfp_host"] = v["KFP_HOST"]
    for var, key in (("KFP_TOKEN", "kfp_token"), ("KFP_COOKIES", "kfp_cookies")):
        if var in v:
            problem = header_problem(v[var])
            if problem:
                raise SettingsError(f"{var} {problem}", f"set {var} to the value on one line")
            out[key] = v[var]
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "MINIO_ACCESS_KEY", "MINIO_SECRET_KEY"):
        if var in v and header_problem(v[var]):
            raise SettingsError(f"{var} {header_problem(v[var])}", f"set {var} to the key on one line")
    for key_var, secret_var in S3_KEY_PAIRS:
        if "s3_keys" not in out and key_var in v and secret_var in v:
            out["s3_keys"] = (v[key_var], v[secret_var])
    if "DLBENCH_IMAGE_TAG" in v:
        if not TAG_RE.match(v["DLBENCH_IMAGE_TAG"]):
            raise _bad(
                "DLBENCH_IMAGE_TAG",
                v["DLBENCH_IMAGE_TAG"],
                "is not a valid tag (up to 128 letters, digits, '_', '.', '-'; not starting with '.' or '-')",
            )
        out["image_tag"] = v["DLBENCH_IMAGE_TAG"]
    if "DLBENCH_REGISTRY" in v:
        problem = registry_problem(v["DLBENCH_REGISTRY"])
        if problem:
            raise SettingsError(
                f"DLBENCH_REGISTRY={v['DLBENCH_REGISTRY']!r}: {problem}",
                "set DLBENCH_REGISTRY to e.g. ghcr.io/you or localhost:5000",
            )
        out["registry"] = v["DLBENCH_REGISTRY"].rstrip("/")
    if "DLBENCH_INSECURE_REGISTRIES" in v:
        hosts = tuple(h.strip() for h in v["DLBENCH_INSECURE_REGISTRIES"].split(",") if h.strip())
        for host in hosts:
            problem = host_problem(host)
            if problem:
                verb = "is" if problem.startswith("not") else "has"
                listed = v["DLBENCH_INSECURE_REGISTRIES"]
                raise SettingsError(
                    f"DLBENCH_INSECURE_REGISTRIES={listed!r}: {host!r} {verb} {problem}",
                    "give comma-separated host[:port], e.g. registry.local:5000",
                )
        out["insecure_registries"] = hosts
    if "DLBENCH_STORE" in v:
        store = v["DLBENCH_STORE"]
        if store.startswith("s3://"):
            bucket = urlparse(store).netloc
            problem = bucket_problem(bucket) if bucket else "names no bucket"
            if problem:
                raise SettingsError(
                    f"DLBENCH_STORE={store!r}: {problem}", "give s3://bucket/prefix or a folder"
                )
        out["store"] = store
    for var, key in (("DLBENCH_DATA", "data"), ("DLBENCH_GIT_COMMIT", "git_commit")):
        if var in v:
            out[key] = v[var]
    return Settings(**out)


@functools.lru_cache(maxsize=8)
def _cached(items: tuple[tuple[str, str], ...]) -> Settings:
    return parse_settings(dict(items))


def settings() -> Settings:
    """The settings of the current environment (parsed once per distinct set of values)."""
    return _cached(tuple((k, os.environ[k]) for k in VARIABLES if k in os.environ))


def environment_settings(env: Mapping[str, str] | None = None) -> Settings:
    """:func:`settings`, or those of ``env`` when a caller (a test) passes its own variables."""
    if env is None:
        return settings()
    return _cached(tuple((k, env[k]) for k in VARIABLES if k in env))
