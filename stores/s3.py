"""The S3 backend of ``dlbench.store`` (MinIO, SeaweedFS, AWS S3, rclone serve s3), on the minio SDK.

Configuration comes from the environment only (never from code, flags or the pipeline YAML):

=========================  =====================================================================
``DLBENCH_S3_ENDPOINT``    ``http://host:port`` or ``https://host`` (the scheme decides TLS); a bare
                           ``host:port`` uses TLS unless ``DLBENCH_S3_SECURE=0``
``AWS_ACCESS_KEY_ID``      access key (``MINIO_ACCESS_KEY`` is read when this is unset)
``AWS_SECRET_ACCESS_KEY``  secret key (``MINIO_SECRET_KEY`` is read when this is unset)
``DLBENCH_S3_REGION``      region, default ``AWS_REGION`` or ``us-east-1`` (minio-py then skips its
                           bucket-location probe, which some S3 servers refuse)
``DLBENCH_S3_RETRY_DEADLINE_S``  seconds an operation keeps retrying transient errors (a refused
                           connection, HTTP 5xx, SlowDown), default 90: a server restart (SeaweedFS
                           answers again after ~18 s) is waited out. Backoff 1, 2, 4, 8, then 10 s.
``DLBENCH_S3_RETRIES``     at most this many attempts per operation (default: no cap but the deadline)
=========================  =====================================================================

An upload that fails for good has its incomplete multipart uploads aborted (so they do not pile up on
the server) where the server still answers; publishing a run (``pipelines.local_publish.publish_run``, after
``dlbench run --local`` and in ``dlbench publish``) also aborts any left under the run's prefix first.

The bucket and prefix come from the store URL ``s3://bucket/prefix``. On a cluster the keys reach
a task from a Kubernetes Secret (``kfp.kubernetes.use_secret_as_env``, see ``pipelines/study.py``).

Integrity: every object is stored with its SHA-256 as user metadata (``x-amz-meta-sha256``). After an
upload the object's size and ETag are compared with the local bytes (ETag = MD5 for a single PUT, or
MD5-of-part-MD5s for a multipart upload of known part size; a server whose ETag is neither, e.g. with
SSE-KMS, is checked by reading the object back). A mismatch deletes the object. A PUT or multipart
upload only becomes visible at its key when complete, so an interrupted upload leaves nothing there;
trees add ``MANIFEST.json`` last (``Store.put_tree``).

Importing this module registers the backend for ``s3://`` URLs (``dlbench.store.open_store`` imports it
on first use). The settings are read in ``stores.s3_config``, SDK and network errors are classified in
``stores.s3_errors``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import certifi
import urllib3
from minio import Minio
from minio.error import InvalidResponseError, S3Error

from dlbench.io import CHUNK
from dlbench.store import (
    ChecksumMismatch,
    FileDigest,
    ObjectInfo,
    Store,
    StoreError,
    join_key,
    register_store_backend,
)
from dlbench_kfp.stores.s3_config import (
    DEFAULT_DEADLINE_S,
    ENDPOINT_ENV,
    credentials_from_env,
    deadline_from_env,
    env_settings,
    parse_endpoint,
    retries_from_env,
    split_url,
)
from dlbench_kfp.stores.s3_errors import classify, is_no_such_upload, no_bucket_hint

T = TypeVar("T")
# urllib3 logs each retry as a warning; our own message (one line, after the last attempt) says it all.
logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)

MAX_BACKOFF_S = 10.0
SHA_META = "x-amz-meta-sha256"
MIN_PART = 5 * 1024 * 1024
DEFAULT_PART = 16 * 1024 * 1024
MAX_PARTS = 10_000
_ETAG_RE = re.compile(r"^[0-9a-f]{32}(-\d+)?$")


class _ProgressAdapter:
    """minio-py's progress protocol (set_meta/update) onto a ``tick(n)`` callable; never counts twice."""

    def __init__(self, tick: Callable[[int], None] | None, state: dict[str, int]):
        self.tick, self.state, self.seen = tick, state, 0

    def set_meta(self, object_name: str, total_length: int) -> None:
        pass

    def update(self, size: int) -> None:
        self.seen += size
        if self.tick and self.seen > self.state["reported"]:
            self.tick(self.seen - self.state["reported"])
            self.state["reported"] = self.seen


class _TrackingMinio(Minio):
    """minio-py's client, remembering the multipart uploads it began and has not completed or aborted, so an
    upload cut short by a dead server can be aborted once the server answers again (minio-py's own abort
    is tried at once, when the server is usually still gone)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.open_uploads: dict[str, str] = {}  # upload id -> object name

    def _create_multipart_upload(self, bucket_name, object_name, headers):
        upload_id = super()._create_multipart_upload(bucket_name, object_name, headers)
        self.open_uploads[upload_id] = object_name
        return upload_id

    def _complete_multipart_upload(self, bucket_name, object_name, upload_id, parts, *args, **kwargs):
        result = super()._complete_multipart_upload(
            bucket_name, object_name, upload_id, parts, *args, **kwargs
        )
        self.open_uploads.pop(upload_id, None)
        return result

    def _abort_multipart_upload(self, bucket_name, object_name, upload_id):
        super()._abort_multipart_upload(bucket_name, object_name, upload_id)
        self.open_uploads.pop(upload_id, None)


@register_store_backend
class S3Store(Store):
    scheme = "s3"

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint: str,
        secure: bool,
        access_key: str,
        secret_key: str,
        region: str = "us-east-1",
        retries: int | None = None,
        backoff: float = 1.0,
        part_size: int = DEFAULT_PART,
        parallel_uploads: int = 3,
        connect_timeout: float = 5.0,
        read_timeout: float = 300.0,
        deadline: float = DEFAULT_DEADLINE_S,
    ):
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.endpoint = f"{'https' if secure else 'http'}://{endpoint}"
        self.url = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self.retries = None if retries is None else max(1, retries)
        self.backoff, self.deadline = backoff, max(0.0, deadline)
        self.part_size = max(MIN_PART, part_size)
        self.parallel_uploads = parallel_uploads
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
            maxsize=10,
            cert_reqs="CERT_REQUIRED",
            ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
            retries=urllib3.Retry(total=1, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
        )
        # The keys live only inside the client (never on self, never in a message).
        self._client = _TrackingMinio(
            endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=region,
            http_client=http,
        )

    def __repr__(self) -> str:
        return f"S3Store({self.url!r}, endpoint={self.endpoint!r})"

    @classmethod
    def from_url(
        cls, url: str, create_bucket: bool = False, env: dict[str, str] | None = None, **kwargs: Any
    ) -> S3Store:
        bucket, prefix = split_url(url)
        s = env_settings(env)  # every variable parsed once (dlbench.settings)
        if not s.s3_endpoint:
            raise StoreError(
                f"{ENDPOINT_ENV} is not set", f"export {ENDPOINT_ENV}=http://HOST:9000 for {url}"
            )
        endpoint, secure = parse_endpoint(s.s3_endpoint, s.s3_secure)
        access, secret = credentials_from_env(env)
        region = s.s3_region or "us-east-1"
        retries, deadline = retries_from_env(env), deadline_from_env(env)
        kwargs.setdefault("retries", retries)
        kwargs.setdefault("deadline", deadline)
        store = cls(
            bucket,
            prefix,
            endpoint=endpoint,
            secure=secure,
            access_key=access,
            secret_key=secret,
            region=region,
            **kwargs,
        )
        store.check_bucket(create=create_bucket)
        return store

    # ------------------------------------------------------------------ errors and retries
    def _reason(self, exc: BaseException) -> tuple[str, bool, str | None]:
        """(one-line reason, transient?, hint) for an exception from the SDK or the network."""
        return classify(exc, self.endpoint, self.bucket)

    def _retry_delay(self, attempt: int, started: float) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None when the attempts or the deadline are
        spent. Exponential backoff with jitter, capped at MAX_BACKOFF_S; the last wait ends at the
        deadline."""
        if self.retries is not None and attempt >= self.retries:
            return None
        left = self.deadline - (time.monotonic() - started)
        if left <= 0:
            return None
        delay = min(self.backoff * 2 ** (attempt - 1), MAX_BACKOFF_S) * (0.8 + 0.4 * random.random())
        return min(delay, left)

    def _call(self, action: str, fn: Callable[[], T]) -> T:
        """Run ``fn`` with retries on transient errors (exponential backoff up to the deadline), else one
        clear StoreError."""
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                return fn()
            except (StoreError, KeyboardInterrupt):
                raise
            except Exception as exc:  # noqa: BLE001 - classified right below
                reason, transient, hint = self._reason(exc)
                delay = self._retry_delay(attempt, started) if transient else None
                if delay is None:
                    raise StoreError(
                        f"could not {action}: {reason}{_tries(attempt, started)}", hint
                    ) from None
                time.sleep(delay)

    def _key(self, key: str) -> str:
        return join_key(self.prefix, key)

    # ------------------------------------------------------------------ bucket
    def check_bucket(self, create: bool = False) -> None:
        exists = self._call(f"reach bucket {self.bucket!r}", lambda: self._client.bucket_exists(self.bucket))
        if exists:
            return
        if not create:
            self._call(f"reach bucket {self.bucket!r}", self._confirm_missing_bucket)
            raise StoreError(
                f"bucket {self.bucket!r} does not exist at {self.endpoint}", no_bucket_hint(self.bucket)
            )
        self._call(f"create bucket {self.bucket!r}", lambda: self._client.make_bucket(self.bucket))

    def _confirm_missing_bucket(self) -> None:
        """A HEAD that says 404 may come from any web server; a listing proves it is S3 talking."""
        try:
            next(iter(self._client.list_objects(self.bucket)), None)
        except S3Error as exc:
            if exc.code == "NoSuchBucket":
                return
            raise
        except InvalidResponseError as exc:  # some servers' error XML minio-py cannot parse (rclone's)
            if "<Code>NoSuchBucket</Code>" in str(exc):
                return
            raise

    # ------------------------------------------------------------------ primitives
    def _open(self, path: Path):
        return open(path, "rb")

    def _part_size(self, size: int) -> int:
        need = -(-size // MAX_PARTS)
        part = max(self.part_size, need)
        return -(-part // (1 << 20)) * (1 << 20)

    def put_file(self, path, key, progress=None) -> ObjectInfo:
        src = Path(path)
        if not src.is_file():
            raise StoreError(f"{src} is not a file")
        full = self._key(key)
        size = src.stat().st_size
        part = self._part_size(size)
        digest = FileDigest.of(src, part_size=part)
        state = {"reported": 0}

        tries = [0]

        def upload():
            tries[0] += 1
            with self._open(src) as f:
                return self._client.put_object(
                    self.bucket,
                    full,
                    f,
                    length=size,
                    part_size=part,
                    metadata={"sha256": digest.sha256},
                    progress=_ProgressAdapter(progress, state),
                    num_parallel_uploads=self.parallel_uploads,
                )

        try:
            result = self._call(f"upload {src.name} to {self.describe(key)}", upload)
        except StoreError:
            self.abort_incomplete(key, quick=True, exact=True)  # minio-py's own abort fails with the server
            raise
        if tries[0] > 1:  # an attempt cut short may have left its multipart upload behind
            self.abort_incomplete(key, quick=True, exact=True)
        stat = self._call(f"check {self.describe(key)}", lambda: self._client.stat_object(self.bucket, full))
        problem = None
        if stat.size != size:
            problem = f"size {stat.size:,} instead of {size:,}"
        elif (stat.metadata or {}).get(SHA_META) not in (None, digest.sha256):
            problem = "stored SHA-256 differs from the file's"
        else:
            etags = {str(e).strip('"') for e in (stat.etag, getattr(result, "etag", None)) if e}
            known = {digest.md5, digest.multipart_etag} - {None}
            if any(_ETAG_RE.match(e) for e in etags):
                if not etags & known:
                    problem = f"ETag {sorted(etags)[0]} does not match the file's MD5"
            elif _sha256_stream(self._read(key, 0)) != digest.sha256:
                problem = "bytes read back differ from the file"
        if problem:
            try:
                self._client.remove_object(self.bucket, full)
            except Exception:  # noqa: BLE001 - best effort; the error below is what matters
                pass
            raise ChecksumMismatch(
                f"upload of {src.name} to {self.describe(key)} is corrupt: {problem}",
                "the object was deleted; try again",
            )
        return ObjectInfo(key, size, digest.sha256)

    def info(self, key) -> ObjectInfo | None:
        full = self._key(key)

        def stat():
            try:
                return self._client.stat_object(self.bucket, full)
            except S3Error as exc:
                if exc.code in ("NoSuchKey", "NoSuchObject", "ResourceNotFound"):
                    return None
                raise

        st = self._call(f"read {self.describe(key)}", stat)
        if st is None:
            return None
        return ObjectInfo(key, st.size, (st.metadata or {}).get(SHA_META))

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        full = self._key(prefix)
        base = f"{self.prefix}/" if self.prefix else ""
        if full and not full.endswith("/"):
            full += "/"

        def run():
            return [
                o
                for o in self._client.list_objects(self.bucket, prefix=full or None, recursive=True)
                if not o.is_dir
            ]

        objs = self._call(f"list {self.describe(prefix)}", run)
        return sorted((ObjectInfo(o.object_name[len(base) :], o.size) for o in objs), key=lambda o: o.key)

    def delete(self, key) -> None:
        self._call(
            f"delete {self.describe(key)}", lambda: self._client.remove_object(self.bucket, self._key(key))
        )

    def _read(self, key, offset=0) -> Iterator[bytes]:
        full = self._key(key)
        resp = self._call(
            f"download {self.describe(key)}",
            lambda: self._client.get_object(self.bucket, full, offset=offset),
        )
        try:
            yield from resp.stream(CHUNK)
        finally:
            resp.close()
            resp.release_conn()

    def get_file(self, key, path, sha256=None, size=None, progress=None) -> Path:
        """Download with retries; each retry resumes from the ``.part`` already on disk."""
        download = super().get_file
        return self._call(
            f"download {self.describe(key)}",
            lambda: download(key, path, sha256=sha256, size=size, progress=progress),
        )

    # ------------------------------------------------------------------ incomplete multipart uploads
    def _abort(self, key: str, upload_id: str) -> None:
        """Abort one multipart upload; one the server no longer knows (restarted, aborted before) is done."""
        try:
            self._client._abort_multipart_upload(self.bucket, key, upload_id)
        except (S3Error, InvalidResponseError) as exc:
            if not is_no_such_upload(exc):
                raise
            self._client.open_uploads.pop(upload_id, None)

    def incomplete_uploads(self, prefix: str = "", exact: bool = False) -> list[tuple[str, str]]:
        """(key, upload id) of every multipart upload begun and neither completed nor aborted under the
        folder ``prefix`` (with ``exact``: at the key ``prefix``)."""
        full = self._key(prefix)
        if full and not full.endswith("/") and not exact:
            full += "/"

        def run():
            out, key_marker, id_marker = [], None, None
            while True:
                try:
                    res = self._client._list_multipart_uploads(
                        self.bucket, prefix=full or None, key_marker=key_marker, upload_id_marker=id_marker
                    )
                except (S3Error, InvalidResponseError) as exc:  # rclone answers NoSuchUpload for none
                    if not is_no_such_upload(exc):
                        raise
                    return out
                out += [
                    (u.object_name, u.upload_id) for u in res.uploads if not exact or u.object_name == full
                ]
                if not res.is_truncated:
                    return out
                key_marker, id_marker = res.next_key_marker, res.next_upload_id_marker

        return self._call(f"list incomplete uploads under {self.describe(prefix)}", run)

    def abort_incomplete(self, prefix: str = "", quick: bool = False, exact: bool = False) -> int:
        """Abort the incomplete multipart uploads under ``prefix`` (a key or a folder); returns how many.
        With ``quick`` one attempt each and no error (cleanup after a failure, the server may be gone)."""
        saved = self.retries
        if quick:
            self.retries = 1
        full = self._key(prefix)
        try:
            found = {
                (k, u)
                for u, k in self._client.open_uploads.items()
                if (k == full if exact else k.startswith(full.rstrip("/") + "/" if full else ""))
            }
            found |= set(self.incomplete_uploads(prefix, exact=exact))
            for key, upload_id in sorted(found):
                self._call(
                    f"abort the incomplete upload of {key}", lambda k=key, u=upload_id: self._abort(k, u)
                )
            return len(found)
        except StoreError:
            if quick:
                return 0
            raise
        finally:
            self.retries = saved


def _tries(attempt: int, started: float) -> str:
    if attempt <= 1:
        return ""
    return f" after {attempt} attempts in {time.monotonic() - started:.0f} s"


def _sha256_stream(chunks: Iterator[bytes]) -> str:
    h = hashlib.sha256()
    for c in chunks:
        h.update(c)
    return h.hexdigest()
