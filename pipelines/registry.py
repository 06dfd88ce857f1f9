"""Ask an image registry (the Docker Registry HTTP API v2) whether an image exists, and for its digest.

``resolve(reference)`` sends ``HEAD /v2/<repository>/manifests/<tag or digest>`` with ``Accept`` for the
OCI and Docker v2 manifest (and index) types and returns the ``Docker-Content-Digest`` it answers: the
digest ``docker pull name@sha256:...`` and Kubernetes pull. What a failure means is told apart:

- 404 on the manifest, then ``GET /v2/<repository>/tags/list``: 404 ``NAME_UNKNOWN`` -> no such repository,
  200 -> the repository exists without that tag (the tags it has are named);
- 401: the registry's ``WWW-Authenticate`` challenge is answered, ``Basic`` with the user's credentials,
  ``Bearer`` by fetching a pull token from the realm it names (anonymously when there are no credentials,
  as public images on ghcr.io or Docker Hub need);
- connection and TLS failures name the host.

Credentials are read, never written or printed, from the files ``docker login`` and ``podman login``
write: ``$REGISTRY_AUTH_FILE``, ``$XDG_RUNTIME_DIR/containers/auth.json``,
``~/.config/containers/auth.json``, ``$DOCKER_CONFIG/config.json`` (default ``~/.docker/config.json``);
the first entry for the registry host wins. Credential helpers (``credsStore``) are not run.

Plain HTTP: a registry on a loopback address (``localhost``, ``127.0.0.1``), or one named in
``$DLBENCH_INSECURE_REGISTRIES`` (comma-separated ``host[:port]``, like Docker's insecure-registries), is
tried over HTTPS without certificate checks and then over HTTP. Every other one needs valid HTTPS.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from dlbench.settings import REPO_RE, TAG_RE, environment_settings
from dlbench_kfp.pipelines import PipelineError

INSECURE_ENV = "DLBENCH_INSECURE_REGISTRIES"
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_TAG_RE = TAG_RE  # one rule each, shared with the check of DLBENCH_IMAGE_TAG / DLBENCH_REGISTRY
_REPO_RE = REPO_RE


class RegistryError(PipelineError):
    """An image reference is malformed, or its registry cannot tell us its digest.

    ``kind``: ``missing-tag``, ``missing-repository``, ``denied``, ``unreachable``, ``invalid``.
    """

    def __init__(self, message: str, hint: str | None = None, kind: str = "unreachable"):
        super().__init__(message, hint)
        self.kind = kind


@dataclass(frozen=True)
class Reference:
    """``registry/repository[:tag][@digest]``, split as Docker does."""

    registry: str  # host[:port] as written ("docker.io" for Docker Hub)
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    @property
    def api_host(self) -> str:
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    def __str__(self) -> str:
        return self.name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    def pinned(self, digest: str) -> str:
        """``registry/repository@sha256:...``: the tag is dropped, the digest alone names the image."""
        return f"{self.name}@{digest}"


def parse_reference(text: str) -> Reference:
    """Split an image reference; ``python:3.11`` -> docker.io/library/python:3.11 (Docker's rules)."""
    ref = text.strip()
    digest = None
    if "@" in ref:
        ref, digest = ref.split("@", 1)
        if not _DIGEST_RE.match(digest):
            raise RegistryError(f"image {text!r}: {digest!r} is not a sha256 digest", kind="invalid")
    tag = None
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        ref, tag = ref.rsplit(":", 1)
        if not _TAG_RE.match(tag):
            raise RegistryError(f"image {text!r}: {tag!r} is not a valid tag", kind="invalid")
    if tag is None and digest is None:
        tag = "latest"
    first, _, rest = ref.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first, rest
    else:
        registry, repository = DOCKER_HUB, ref
        if "/" not in repository:
            repository = f"library/{repository}"
    if not _REPO_RE.match(repository):
        raise RegistryError(
            f"image {text!r}: {repository!r} is not a valid repository name",
            "lowercase letters, digits and separators . _ - /",
            kind="invalid",
        )
    return Reference(registry, repository, tag, digest)


# ---------------------------------------------------------------------------------------------- credentials


def auth_files(env: dict[str, str] | None = None) -> list[Path]:
    """Where docker and podman keep logins, in the order they are read."""
    env = os.environ if env is None else env
    home = Path(env.get("HOME") or Path.home())
    files = []
    if env.get("REGISTRY_AUTH_FILE"):
        files.append(Path(env["REGISTRY_AUTH_FILE"]))
    if env.get("XDG_RUNTIME_DIR"):
        files.append(Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    files.append(home / ".config" / "containers" / "auth.json")
    files.append(
        Path(env["DOCKER_CONFIG"]) / "config.json"
        if env.get("DOCKER_CONFIG")
        else home / ".docker" / "config.json"
    )
    return files


def _auth_keys(registry: str) -> list[str]:
    keys = [
        registry,
        f"https://{registry}",
        f"http://{registry}",
        f"https://{registry}/v1/",
        f"https://{registry}/v2/",
    ]
    if registry == DOCKER_HUB:
        keys += ["https://index.docker.io/v1/", "index.docker.io", DOCKER_HUB_API]
    return keys


def credentials(registry: str, env: dict[str, str] | None = None) -> tuple[str, str] | None:
    """(user, password) for ``registry`` from the first auth file with an entry for it, else None."""
    for path in auth_files(env):
        try:
            auths = json.loads(path.read_text()).get("auths") or {}
        except (OSError, ValueError, AttributeError):
            continue
        for key in _auth_keys(registry):
            entry = auths.get(key)
            if not isinstance(entry, dict):
                continue
            if entry.get("auth"):
                try:
                    user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
                except (ValueError, UnicodeDecodeError):
                    continue
                return user, password
            if entry.get("username") and entry.get("password"):
                return entry["username"], entry["password"]
    return None


# ---------------------------------------------------------------------------------------------- HTTP


def _is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def insecure(host: str, env: dict[str, str] | None = None) -> bool:
    """A loopback registry, or one listed in ``$DLBENCH_INSECURE_REGISTRIES`` (of ``env``, default the
    environment, parsed by :mod:`dlbench.settings`)."""
    return _is_loopback(host) or host in environment_settings(env).insecure_registries


class _Redirect(urllib.request.HTTPRedirectHandler):
    """Follow redirects for HEAD too, and drop the Authorization header on the way (as Docker does)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        new = urllib.request.Request(
            newurl,
            method=req.get_method(),
            headers={k: v for k, v in req.header_items() if k.lower() != "authorization"},
        )
        return new


def _opener(verify: bool) -> urllib.request.OpenerDirector:
    ctx = ssl.create_default_context(cafile=os.environ.get("SSL_CERT_FILE") or None)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx), _Redirect())


@dataclass
class _Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def _short(exc: BaseException) -> str:
    reason = getattr(exc, "reason", exc)
    text = " ".join(str(reason).split())
    for needle, short in (
        ("Connection refused", "connection refused"),
        ("timed out", "timed out"),
        ("Name or service not known", "unknown host"),
        ("Temporary failure in name resolution", "unknown host"),
        ("CERTIFICATE_VERIFY_FAILED", "TLS certificate not trusted"),
        ("WRONG_VERSION_NUMBER", "it does not speak HTTPS"),
    ):
        if needle in text:
            return short
    return text[:120] or type(exc).__name__


class RegistryClient:
    """One registry host: scheme chosen once (HTTPS, or HTTP where allowed), auth answered per repository."""

    def __init__(self, registry: str, timeout: float = 10.0, env: dict[str, str] | None = None):
        self.registry = registry
        self.api_host = DOCKER_HUB_API if registry == DOCKER_HUB else registry
        self.timeout = timeout
        self.env = os.environ if env is None else env
        self.insecure = insecure(self.api_host, self.env)
        self.creds = credentials(registry, self.env)
        self._base: str | None = None
        self._tokens: dict[str, str] = {}

    # -------------------------------------------------------------- transport
    def _send(self, url: str, method: str, headers: dict[str, str]) -> _Answer:
        req = urllib.request.Request(url, method=method, headers=headers)
        try:
            with _opener(verify=not self.insecure).open(req, timeout=self.timeout) as resp:
                return _Answer(
                    resp.status,
                    {k.lower(): v for k, v in resp.headers.items()},
                    resp.read(1 << 20) if method != "HEAD" else b"",
                )
        except urllib.error.HTTPError as exc:
            body = exc.read(1 << 16) if method != "HEAD" else b""
            return _Answer(exc.code, {k.lower(): v for k, v in (exc.headers or {}).items()}, body)

    def _base_url(self) -> str:
        """https://host, or http://host for a registry allowed plain HTTP that does not answer HTTPS."""
        if self._base is not None:
            return self._base
        schemes = ("https", "http") if self.insecure else ("https",)
        last: BaseException | None = None
        for scheme in schemes:
            try:
                self._send(f"{scheme}://{self.api_host}/v2/", "GET", {})
                self._base = f"{scheme}://{self.api_host}"
                return self._base
            except (urllib.error.URLError, OSError) as exc:
                last = exc
        why = _short(last) if last else "no answer"
        hint = (
            "check the registry host and port, and that it runs"
            if self.insecure or "HTTPS" not in why
            else f"if it serves plain HTTP, add it to {INSECURE_ENV} (e.g. {INSECURE_ENV}={self.api_host})"
        )
        if "certificate" in why:
            hint = (
                f"install its CA in the system trust store or SSL_CERT_FILE, or list it in {INSECURE_ENV} "
                "to skip verification"
            )
        raise RegistryError(f"registry {self.registry} unreachable ({why})", hint, kind="unreachable")

    # -------------------------------------------------------------- auth
    def _basic(self) -> str | None:
        if not self.creds:
            return None
        return "Basic " + base64.b64encode(f"{self.creds[0]}:{self.creds[1]}".encode()).decode()

    def _token(self, challenge: str, repository: str) -> str:
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        realm = params.pop("realm", None)
        if not realm:
            raise RegistryError(
                f"registry {self.registry} asked for a token without naming where to get it", kind="denied"
            )
        params.setdefault("scope", f"repository:{repository}:pull")
        if self.creds:
            params.setdefault("account", self.creds[0])
        url = realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(params)
        headers = {"Authorization": self._basic()} if self.creds else {}
        try:
            ans = self._send(url, "GET", headers)
        except (urllib.error.URLError, OSError) as exc:
            raise RegistryError(
                f"token service of {self.registry} unreachable ({_short(exc)})", kind="unreachable"
            ) from None
        if ans.status in (401, 403):
            raise self._denied(repository, "the token service refused the credentials")
        try:
            data = json.loads(ans.body)
            return data.get("token") or data["access_token"]
        except (ValueError, KeyError, TypeError):
            raise RegistryError(
                f"token service of {self.registry} answered HTTP {ans.status} without a token", kind="denied"
            ) from None

    def _denied(self, repository: str, why: str) -> RegistryError:
        login = f"docker login {self.registry} (or podman login {self.registry})"
        if self.creds:
            return RegistryError(
                f"registry {self.registry} refused access to {repository}: {why} with the stored login",
                f"check the login has pull access: {login}",
                kind="denied",
            )
        return RegistryError(
            f"registry {self.registry} refused access to {repository}: {why}; no login for it was found",
            f"{login}; a private or missing repository also answers this way",
            kind="denied",
        )

    def request(
        self, method: str, path: str, repository: str, headers: dict[str, str] | None = None
    ) -> _Answer:
        """``method`` on ``/v2/<path>``, answering one 401 challenge (Basic or Bearer)."""
        url = f"{self._base_url()}/v2/{path}"
        headers = dict(headers or {})
        token = self._tokens.get(repository)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            ans = self._send(url, method, headers)
            if ans.status == 401:
                challenge = ans.headers.get("www-authenticate", "")
                scheme = challenge.split(" ", 1)[0].lower()
                if scheme == "bearer":
                    token = self._token(challenge.split(" ", 1)[1] if " " in challenge else "", repository)
                    self._tokens[repository] = token
                    headers["Authorization"] = f"Bearer {token}"
                elif scheme == "basic" and self.creds:
                    headers["Authorization"] = self._basic()
                else:
                    raise self._denied(repository, "HTTP 401")
                ans = self._send(url, method, headers)
        except (urllib.error.URLError, OSError) as exc:
            raise RegistryError(
                f"registry {self.registry} unreachable ({_short(exc)})",
                "check the registry host and that it runs",
                kind="unreachable",
            ) from None
        if ans.status == 401:
            raise self._denied(repository, "HTTP 401")
        return ans

    # -------------------------------------------------------------- the questions
    def digest(self, ref: Reference) -> str:
        """The manifest digest of ``ref`` (its tag, or its digest confirmed to exist)."""
        target = ref.digest or ref.tag
        ans = self.request(
            "HEAD", f"{ref.repository}/manifests/{target}", ref.repository, {"Accept": MANIFEST_TYPES}
        )
        if ans.status == 200:
            digest = ans.headers.get("docker-content-digest")
            if ref.digest:
                return ref.digest
            if not digest or not _DIGEST_RE.match(digest):
                raise RegistryError(
                    f"registry {self.registry} answered for {ref} without a Docker-Content-Digest header",
                    "use a registry that implements the Docker Registry HTTP API v2",
                )
            return digest
        if ans.status == 404:
            raise self._missing(ref)
        if ans.status == 403:
            raise self._denied(ref.repository, "HTTP 403")
        raise RegistryError(
            f"registry {self.registry} answered HTTP {ans.status} for {ref}",
            "check the registry's logs",
            kind="unreachable",
        )

    def tags(self, repository: str) -> list[str] | None:
        """The repository's tags, or None when the registry says the repository does not exist."""
        ans = self.request("GET", f"{repository}/tags/list", repository, {"Accept": "application/json"})
        if ans.status == 404:
            return None
        if ans.status != 200:
            return []
        try:
            return list(json.loads(ans.body).get("tags") or [])
        except (ValueError, AttributeError):
            return []

    def _missing(self, ref: Reference) -> RegistryError:
        try:
            tags = self.tags(ref.repository)
        except RegistryError:
            tags = []
        what = f"digest {ref.digest}" if ref.digest else f"tag {ref.tag!r}"
        if tags is None:
            return RegistryError(
                f"image {ref}: repository {ref.repository} does not exist in {self.registry}",
                "push the images there (make push REGISTRY=...), or fix DLBENCH_REGISTRY",
                kind="missing-repository",
            )
        have = f"it has {', '.join(sorted(tags)[:8])}" if tags else "it has no tags"
        return RegistryError(
            f"image {ref}: no {what} in {ref.name} ({have})",
            "push this tag (make push REGISTRY=... TAG=...), or set DLBENCH_IMAGE_TAG to one it has",
            kind="missing-tag",
        )


def resolve(
    reference: str,
    timeout: float = 10.0,
    env: dict[str, str] | None = None,
    clients: dict[str, RegistryClient] | None = None,
) -> str:
    """The ``sha256:`` digest the registry holds for ``reference``; RegistryError (one line) otherwise."""
    ref = parse_reference(reference)
    clients = {} if clients is None else clients
    client = clients.get(ref.registry) or clients.setdefault(
        ref.registry, RegistryClient(ref.registry, timeout, env)
    )
    return client.digest(ref)


def pin(reference: str, **kwargs) -> str:
    """``reference`` as ``registry/repository@sha256:...`` of what its registry holds now."""
    return parse_reference(reference).pinned(resolve(reference, **kwargs))


# ---------------------------------------------------------------------------------------------- compiled YAML

_IMAGE_LINE = re.compile(r"^(\s+image:\s+)(\S+)\s*$", re.M)


def images_in(yaml_text: str) -> list[str]:
    """Every distinct container image a compiled KFP pipeline references, in order of appearance."""
    return list(dict.fromkeys(m.group(2).strip("'\"") for m in _IMAGE_LINE.finditer(yaml_text)))


def replace_images(yaml_text: str, mapping: dict[str, str]) -> str:
    """The YAML with each ``image:`` value found in ``mapping`` replaced (the rest of the text untouched)."""

    def sub(m: re.Match) -> str:
        old = m.group(2).strip("'\"")
        return m.group(1) + mapping.get(old, m.group(2))

    return _IMAGE_LINE.sub(sub, yaml_text)
