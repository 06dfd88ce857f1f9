"""What the S3 backend makes of an exception from the minio SDK or the network: one line that names the
problem, whether it is worth retrying (a refused connection, HTTP 5xx, SlowDown), and a hint."""

from __future__ import annotations

from minio.error import InvalidResponseError, S3Error, ServerError
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import MaxRetryError, SSLError

from dlbench_kfp.stores.s3_config import ENDPOINT_ENV

AUTH_CODES = {"AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidToken", "ExpiredToken"}
TRANSIENT_CODES = {
    "SlowDown",
    "InternalError",
    "ServiceUnavailable",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "XMinioServerNotInitialized",
    "OperationAborted",
}


def classify(exc: BaseException, endpoint: str, bucket: str) -> tuple[str, bool, str | None]:
    """(one-line reason, transient?, hint) for an exception from the SDK or the network; any other
    exception is raised again."""
    if isinstance(exc, S3Error):
        if exc.code in AUTH_CODES:
            return (
                f"the S3 server at {endpoint} rejected the credentials ({exc.code})",
                False,
                "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and the key's bucket policy",
            )
        if exc.code == "NoSuchBucket":
            return (f"bucket {bucket!r} does not exist at {endpoint}", False, no_bucket_hint(bucket))
        return f"{exc.code}: {exc.message}", exc.code in TRANSIENT_CODES, None
    if isinstance(exc, ServerError):
        return f"server error HTTP {exc.status_code} from {endpoint}", exc.status_code >= 500, None
    if isinstance(exc, InvalidResponseError):
        text = " ".join(str(exc).split())[:160]
        return (f"{endpoint} does not answer like an S3 server ({text})", False, f"check {ENDPOINT_ENV}")
    if isinstance(exc, MaxRetryError):
        inner = exc.reason
        why = short_net(inner) if inner is not None else "no answer"
        if isinstance(inner, SSLError):
            return f"TLS to {endpoint} failed ({why})", False, f"check the scheme in {ENDPOINT_ENV}"
        return (
            f"S3 endpoint {endpoint} unreachable ({why})",
            True,
            f"check {ENDPOINT_ENV} and that the server runs",
        )
    if isinstance(exc, Urllib3Error | ConnectionError | TimeoutError):
        return (
            f"connection to {endpoint} failed ({short_net(exc)})",
            True,
            f"check {ENDPOINT_ENV} and that the server runs",
        )
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}", False, None
    raise exc


def no_bucket_hint(bucket: str) -> str:
    # valid for every verb: fetch has no --create-bucket, and a run cannot be in a bucket that is not there
    return (
        f"check the bucket in the store URL; to create it, dlbench run --local --create-bucket, "
        f"or mc mb ALIAS/{bucket}"
    )


def is_no_such_upload(exc: BaseException) -> bool:
    """The server does not know the multipart upload (rclone answers so, in XML minio-py may not parse)."""
    return getattr(exc, "code", None) == "NoSuchUpload" or "NoSuchUpload" in str(exc)


def short_net(exc: BaseException) -> str:
    text = str(exc)
    for needle, short in (
        ("Connection refused", "connection refused"),
        ("timed out", "timed out"),
        ("Name or service not known", "unknown host"),
        ("nodename nor servname", "unknown host"),
        ("Temporary failure in name resolution", "unknown host"),
        ("CERTIFICATE_VERIFY_FAILED", "TLS certificate not trusted"),
        ("WRONG_VERSION_NUMBER", "a plain-HTTP port? use http:// in " + ENDPOINT_ENV),
        ("Connection reset", "connection reset"),
        ("Connection aborted", "connection aborted"),
        ("RemoteDisconnected", "server closed the connection"),
        ("IncompleteRead", "transfer cut short"),
    ):
        if needle in text:
            return short
    return type(exc).__name__
