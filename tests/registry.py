"""A real image registry on loopback for tests: Debian's ``docker-registry`` (the CNCF distribution registry).

``Registry(root).start()`` runs ``docker-registry serve`` with a config of its own (storage in ``root``,
``127.0.0.1:<free port>``, no auth; with ``users`` htpasswd basic auth). ``push_tiny_image`` puts a real,
minimal OCI image (one layer holding one file, a config, a manifest) there through the registry HTTP API,
so pre-flight tests have an existing image without building one; the container test pushes the real cpu
image with podman.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import urllib.request
from pathlib import Path

from tests.s3server import _free_port, stop_process, wait_for_port

BINARY = "docker-registry"


def registry_binary() -> str:
    found = shutil.which(BINARY) or (f"/usr/bin/{BINARY}" if Path(f"/usr/bin/{BINARY}").is_file() else None)
    if not found:
        raise RuntimeError(
            "docker-registry is missing: `make registry` (apt-get install docker-registry) installs it"
        )
    return found


class Registry:
    def __init__(self, root: Path, users: dict[str, str] | None = None):
        self.root = Path(root)
        self.port = _free_port()
        self.users = users or {}
        self.proc: subprocess.Popen | None = None
        self.root.mkdir(parents=True, exist_ok=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _config(self) -> Path:
        lines = [
            "version: 0.1",
            "log:",
            "  level: error",
            "  accesslog:",
            "    disabled: true",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {self.root / 'data'}",
            "  delete:",
            "    enabled: true",
            "http:",
            f"  addr: {self.host}",
        ]
        if self.users:
            import warnings

            with warnings.catch_warnings():  # crypt is deprecated (3.13 drops it); bcrypt hashes for htpasswd
                warnings.simplefilter("ignore", DeprecationWarning)
                import crypt
            htpasswd = self.root / "htpasswd"
            htpasswd.write_text(
                "".join(
                    f"{u}:{crypt.crypt(p, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))}\n"
                    for u, p in self.users.items()
                )
            )
            lines += ["auth:", "  htpasswd:", "    realm: test", f"    path: {htpasswd}"]
        path = self.root / "config.yml"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start(self) -> Registry:
        log = open(self.root / "registry.log", "ab")
        self.proc = subprocess.Popen(
            [registry_binary(), "serve", str(self._config())], stdout=log, stderr=log, start_new_session=True
        )
        wait_for_port(self.proc, self.port, "docker-registry", log=self.root / "registry.log")
        return self

    def stop(self) -> None:
        stop_process(self.proc)

    # ------------------------------------------------------------------ pushing without an engine
    def _request(
        self,
        method: str,
        url: str,
        data: bytes | None = None,
        headers: dict | None = None,
        auth: tuple[str, str] | None = None,
    ):
        headers = dict(headers or {})
        if auth:
            headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        if not url.startswith("http"):
            url = f"http://{self.host}{url}"
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers)

    def _blob(self, repo: str, blob: bytes, auth) -> str:
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        _, headers = self._request("POST", f"/v2/{repo}/blobs/uploads/", b"", auth=auth)
        location = headers["Location"]
        sep = "&" if "?" in location else "?"
        self._request(
            "PUT",
            f"{location}{sep}digest={digest}",
            blob,
            {"Content-Type": "application/octet-stream"},
            auth=auth,
        )
        return digest

    def push_tiny_image(
        self, repo: str, tag: str, content: str = "hello", auth: tuple[str, str] | None = None
    ) -> str:
        """Push a one-file OCI image as ``repo:tag``; return the manifest digest the registry answers."""
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w") as tar:
            data = content.encode()
            info = tarfile.TarInfo("hello.txt")
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))
        layer = gzip.compress(raw.getvalue(), mtime=0)
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {},
                "rootfs": {
                    "type": "layers",
                    "diff_ids": ["sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()],
                },
            }
        ).encode()
        layer_digest, config_digest = self._blob(repo, layer, auth), self._blob(repo, config, auth)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": config_digest,
                    "size": len(config),
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": layer_digest,
                        "size": len(layer),
                    }
                ],
            }
        ).encode()
        _, headers = self._request(
            "PUT",
            f"/v2/{repo}/manifests/{tag}",
            manifest,
            {"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
            auth=auth,
        )
        digest = headers.get("Docker-Content-Digest")
        assert digest == "sha256:" + hashlib.sha256(manifest).hexdigest(), digest
        return digest
