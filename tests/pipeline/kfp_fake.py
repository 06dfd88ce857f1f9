"""A local HTTP server speaking the part of the KFP v2 REST API that kfp.Client uses to submit a run.

It keeps pipelines, versions, experiments and runs in memory and records every request (method, path,
query, body), so a test can check what ``dlbench submit`` sent. Run states are scripted per test.
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

API = "/apis/v2beta1"


class FakeKfp:
    def __init__(self):
        self.requests: list[dict] = []
        self.pipelines: dict[str, dict] = {}
        self.versions: dict[str, list[dict]] = {}
        self.uploads: list[dict] = []  # {"kind", "name", "yaml"}
        self.experiments: dict[str, dict] = {}
        self.runs: dict[str, dict] = {}
        self.run_states: list[str] = ["SUCCEEDED"]  # what GET run answers, one per poll (the last repeats)
        self._ids = itertools.count(1)
        self._polls: dict[str, int] = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def new_id(self, kind: str) -> str:
        return f"{kind}-{next(self._ids):04d}"

    def requests_to(self, method: str, pattern: str) -> list[dict]:
        return [r for r in self.requests if r["method"] == method and re.fullmatch(pattern, r["path"])]

    # ------------------------------------------------------------------ the API
    def handle(self, method: str, path: str, query: dict, body: bytes, ctype: str) -> tuple[int, dict]:
        q = {k: v[0] for k, v in query.items()}
        if method == "GET" and path == f"{API}/healthz":
            return 200, {"multi_user": False}
        if method == "GET" and path == f"{API}/pipelines":
            name = _filter_value(q.get("filter"))
            found = [p for p in self.pipelines.values() if name is None or p["display_name"] == name]
            return 200, {"pipelines": found, "total_size": len(found)} if found else {}
        if method == "POST" and path == f"{API}/pipelines/upload":
            yaml_text = _multipart_file(body, ctype)
            pid, vid = self.new_id("pipeline"), self.new_id("version")
            p = {"pipeline_id": pid, "display_name": q["name"], "description": q.get("description", "")}
            self.pipelines[pid] = p
            self.versions[pid] = [{"pipeline_id": pid, "pipeline_version_id": vid, "display_name": q["name"]}]
            self.uploads.append({"kind": "pipeline", "name": q["name"], "yaml": yaml_text})
            return 200, p
        m = re.fullmatch(f"{API}/pipelines/([^/]+)/versions", path)
        if method == "GET" and m:
            name = _filter_value(q.get("filter"))
            vs = [v for v in self.versions.get(m.group(1), []) if name is None or v["display_name"] == name]
            return 200, {"pipeline_versions": vs, "total_size": len(vs)} if vs else {}
        if method == "POST" and path == f"{API}/pipelines/upload_version":
            yaml_text = _multipart_file(body, ctype)
            pid = q["pipelineid"]
            v = {"pipeline_id": pid, "pipeline_version_id": self.new_id("version"), "display_name": q["name"]}
            self.versions[pid].append(v)
            self.uploads.append({"kind": "version", "name": q["name"], "yaml": yaml_text})
            return 200, v
        if method == "GET" and path == f"{API}/experiments":
            name = _filter_value(q.get("filter"))
            found = [e for e in self.experiments.values() if e["display_name"] == name]
            return 200, {"experiments": found, "total_size": len(found)} if found else {}
        if method == "POST" and path == f"{API}/experiments":
            e = json.loads(body)
            e["experiment_id"] = self.new_id("experiment")
            self.experiments[e["experiment_id"]] = e
            return 200, e
        if method == "POST" and path == f"{API}/runs":
            run = json.loads(body)
            run.update(run_id=self.new_id("run"), state="PENDING")
            self.runs[run["run_id"]] = run
            return 200, run
        m = re.fullmatch(f"{API}/runs/([^/]+)", path)
        if method == "GET" and m and m.group(1) in self.runs:
            n = self._polls.get(m.group(1), 0)
            self._polls[m.group(1)] = n + 1
            state = self.run_states[min(n, len(self.run_states) - 1)]
            return 200, {**self.runs[m.group(1)], "state": state}
        return 404, {"error": f"no route {method} {path}", "code": 5}

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _do(self, method):
                u = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                ctype = self.headers.get("Content-Type", "")
                fake.requests.append(
                    {
                        "method": method,
                        "path": u.path,
                        "query": parse_qs(u.query),
                        "body": body,
                        "headers": dict(self.headers),
                    }
                )
                status, payload = fake.handle(method, u.path, parse_qs(u.query), body, ctype)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._do("GET")

            def do_POST(self):
                self._do("POST")

            def log_message(self, *args):
                pass

        return Handler


def _filter_value(text: str | None) -> str | None:
    if not text:
        return None
    preds = json.loads(text).get("predicates") or []
    return preds[0].get("string_value", preds[0].get("stringValue")) if preds else None


def _multipart_file(body: bytes, ctype: str) -> str:
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body
    )
    for part in msg.iter_parts():
        if part.get_param("name", header="content-disposition") == "uploadfile":
            return part.get_content() if isinstance(part.get_content(), str) else part.get_content().decode()
    raise AssertionError("no uploadfile part in the upload request")
