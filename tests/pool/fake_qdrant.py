"""A tiny fake Qdrant REST server on 127.0.0.1 that records every request qdrant-client sends.

It answers just enough of the API for ``open_pool(url=...)`` to create a collection, write,
retrieve and run its queries: points are kept in memory and every query returns the stored points
of the requested ids or tenant (score 0, no ranking -- the pool re-scores exactly). No Qdrant
server exists here: the tests check the requests the library *would* send to a cluster.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

VERSION = "1.20.0"


class FakeQdrant:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.collections: dict[str, dict[str, Any]] = {}
        self.points: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _body(self) -> Any:
                n = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(n) if n else b""
                return json.loads(raw) if raw else None

            def _send(self, data: Any, status: int = 200) -> None:
                raw = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _handle(self) -> None:
                url = urlparse(self.path)
                body = self._body()
                with fake.lock:
                    fake.requests.append(
                        {"method": self.command, "path": url.path, "query": parse_qs(url.query), "body": body, "headers": dict(self.headers)}
                    )
                    result = fake.route(self.command, url.path, body)
                if result is _ROOT:
                    self._send({"title": "qdrant - vector search engine", "version": VERSION, "commit": "fake"})
                elif result is _NOT_FOUND:
                    self._send({"status": {"error": f"Not found: {url.path}"}, "time": 0.0}, 404)
                else:
                    self._send({"result": result, "status": "ok", "time": 0.0001})

            do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> "FakeQdrant":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def find(self, method: str, path_regex: str) -> list[dict[str, Any]]:
        """Recorded requests whose method and path match."""
        return [r for r in self.requests if r["method"] == method and re.fullmatch(path_regex, r["path"])]

    # -- the API ----------------------------------------------------------------------------------
    @staticmethod
    def _select(point: dict[str, Any], with_payload: Any, with_vector: Any) -> dict[str, Any]:
        payload = point["payload"]
        if with_payload in (False, None):
            payload = None
        elif isinstance(with_payload, list):
            payload = {k: v for k, v in payload.items() if k in with_payload}
        vector = point["vector"]
        if with_vector in (False, None):
            vector = None
        elif isinstance(with_vector, list):
            vector = {k: v for k, v in vector.items() if k in with_vector}
        return {"id": point["id"], "payload": payload, "vector": vector}

    def _tenant_points(self, flt: Any) -> list[dict[str, Any]]:
        tenant = None
        for cond in (flt or {}).get("must") or []:
            if cond.get("key") == "tenant":
                tenant = cond["match"]["value"]
        return [p for p in self.points.values() if tenant is None or p["payload"].get("tenant") == tenant]

    def route(self, method: str, path: str, body: Any) -> Any:
        if path == "/":
            return _ROOT
        m = re.fullmatch(r"/collections/([^/]+)(/.*)?", path)
        if not m:
            return _NOT_FOUND
        name, rest = m.group(1), m.group(2) or ""
        if rest == "/exists":
            return {"exists": name in self.collections}
        if rest == "" and method == "PUT":
            self.collections[name] = body
            return True
        if rest == "/index" and method == "PUT":
            return {"operation_id": 1, "status": "completed"}
        if rest == "/shards" and method == "PUT":
            return True
        if rest == "/points" and method == "PUT":
            for p in body["points"]:
                self.points[str(p["id"])] = {"id": str(p["id"]), "payload": p.get("payload") or {}, "vector": p.get("vector") or {}}
            return {"operation_id": 2, "status": "completed"}
        if rest == "/points" and method == "POST":  # retrieve
            ids = [str(i) for i in body["ids"]]
            return [self._select(self.points[i], body.get("with_payload"), body.get("with_vector")) for i in ids if i in self.points]
        if rest == "/points/scroll":
            pts = self._tenant_points(body.get("filter"))
            return {"points": [self._select(p, body.get("with_payload"), body.get("with_vector")) for p in pts], "next_page_offset": None}
        if rest == "/points/count":
            return {"count": len(self._tenant_points(body.get("filter")))}
        if rest == "/points/query":
            if body.get("offset"):
                return {"points": []}  # "past the end": the dense score at rank M does not exist
            pts = self._tenant_points(body.get("filter"))[: body.get("limit") or 10]
            return {"points": [{**self._select(p, body.get("with_payload"), body.get("with_vector")), "version": 0, "score": 0.0} for p in pts]}
        return _NOT_FOUND


_ROOT = object()
_NOT_FOUND = object()
