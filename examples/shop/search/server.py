"""The shop's search service: first-stage retrieval by term match over the catalog, then
a learning-to-rank re-ranker, the `search` model, run by the sidecar next to it. No ML
code here: features.py computes the features, Triton's stock gRPC client
(`tritonclient.grpc`) sends them to the sidecar, which applies the model's z-score
normalisation (config.yaml) and runs it.

  GET  /search?q=trail+running+shoes[&limit=5]
       {"model","model_version","sidecar_ms","query","results":[{"id","name",...,"score"}]}
       score: the expected relevance grade, sum over k of k x P(grade k), 0..3
  POST /score  {"rows": [[8 raw features], ...]}  the model's answer for raw rows
       {"model","model_version","sidecar_ms","label","probabilities","scores"}
  GET  /healthz  200 {"ready": true, ...} once the sidecar has the model ready, else 503

Environment: PORT (default 8080; 0 picks a free one), HOST (default 0.0.0.0; "::" for
IPv6 and IPv4), MODEL (default search), CATALOG
(default ../catalog.json beside this folder), and what the injector sets:
ONNX_SIDECAR_GRPC_SOCKET (used when the file exists: unix://<path>), else
ONNX_SIDECAR_GRPC_ADDRESS (default 127.0.0.1:8501).
"""
import json
import os
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import features  # noqa: E402

MAX_BATCH = 64  # the model's max_batch_size (config.yaml); larger requests go in chunks
GRADES = np.arange(4, dtype=np.float64)


def sidecar_address(env=os.environ):
    path = env.get("ONNX_SIDECAR_GRPC_SOCKET", "")
    if path and os.path.exists(path):
        return f"unix://{path}"
    return env.get("ONNX_SIDECAR_GRPC_ADDRESS") or "127.0.0.1:8501"


class HttpError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class Search:
    """Everything but HTTP: the catalog index and the sidecar client."""

    def __init__(self, catalog, address, model="search"):
        self.catalog = catalog
        self.index = features.Index(catalog["products"])
        self.address = address
        self.model = model
        self.client = grpcclient.InferenceServerClient(address)

    def close(self):
        self.client.close()

    def ready(self):
        try:
            return bool(self.client.is_model_ready(self.model))
        except InferenceServerException:
            return False

    def score(self, rows):
        started = time.perf_counter()
        labels, probabilities, version = [], [], None
        try:
            for i in range(0, len(rows), MAX_BATCH):
                chunk = np.array(rows[i:i + MAX_BATCH], dtype=np.float32)
                x = grpcclient.InferInput("input", list(chunk.shape), "FP32")
                x.set_data_from_numpy(chunk)
                res = self.client.infer(self.model, [x], outputs=[
                    grpcclient.InferRequestedOutput("label"),
                    grpcclient.InferRequestedOutput("probabilities")])
                labels.extend(int(v) for v in res.as_numpy("label"))
                probabilities.append(res.as_numpy("probabilities"))
                version = res.get_response().model_version
        except InferenceServerException as err:
            status = 503 if "UNAVAILABLE" in str(err.status()) else 502
            raise HttpError(status, f"sidecar: {err.message()}") from None
        sidecar_ms = round((time.perf_counter() - started) * 1000, 3)
        proba = np.concatenate(probabilities)
        scores = proba.astype(np.float64) @ GRADES
        return {"model": self.model, "model_version": version, "sidecar_ms": sidecar_ms,
                "label": labels, "probabilities": proba.tolist(), "scores": scores.tolist()}

    def search(self, query, limit):
        candidates = self.index.candidates(query)
        if not candidates:
            return {"model": self.model, "model_version": None, "sidecar_ms": 0.0,
                    "query": query, "results": []}
        answer = self.score([self.index.features(query, p) for p in candidates])
        scores = answer["scores"]
        order = sorted(range(len(candidates)), key=lambda i: -scores[i])  # stable: ties keep catalog order
        results = [{"id": candidates[i]["id"], "name": candidates[i]["name"],
                    "category": candidates[i]["category"], "price_eur": candidates[i]["price_eur"],
                    "score": round(scores[i], 6)} for i in order[:limit]]
        return {"model": self.model, "model_version": answer["model_version"],
                "sidecar_ms": answer["sidecar_ms"], "query": query, "results": results}


def valid_rows(rows):
    return (isinstance(rows, list) and 0 < len(rows) <= 10000 and all(
        isinstance(r, list) and len(r) == len(features.FEATURES)
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in r)
        for r in rows))


def make_handler(app, access_log=True):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # one JSON line per request on stderr
            if access_log:
                sys.stderr.write(json.dumps({"msg": "request", "line": fmt % args}) + "\n")

        def send(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def handle_one(self, method):
            url = urlparse(self.path)
            query = parse_qs(url.query)
            if method == "GET" and url.path == "/healthz":
                ready = app.ready()
                return self.send(200 if ready else 503,
                                 {"ready": ready, "model": app.model, "sidecar": app.address})
            if method == "GET" and url.path == "/search":
                q = query.get("q", [""])[0].strip()
                if not q:
                    raise HttpError(400, "give the query as ?q=")
                try:
                    limit = min(max(int(query.get("limit", ["5"])[0]), 1), 50)
                except ValueError:
                    raise HttpError(400, "limit: an integer") from None
                return self.send(200, app.search(q, limit))
            if method == "POST" and url.path == "/score":
                length = int(self.headers.get("content-length") or 0)
                if length > 1 << 20:
                    raise HttpError(413, "body over 1 MiB")
                try:
                    body = json.loads(self.rfile.read(length) or b"null")
                except ValueError:
                    raise HttpError(400, "body is not JSON") from None
                rows = body.get("rows") if isinstance(body, dict) else None
                if not valid_rows(rows):
                    raise HttpError(400, f"rows: 1 to 10000 arrays of {len(features.FEATURES)} numbers "
                                         f"({', '.join(features.FEATURES)})")
                return self.send(200, app.score(rows))
            raise HttpError(404, "not found: GET /search?q=..., POST /score, GET /healthz")

        def dispatch(self, method):
            try:
                self.handle_one(method)
            except HttpError as err:
                self.send(err.status, {"error": str(err)})
            except Exception as err:  # a bug: say so, keep serving
                self.send(500, {"error": f"internal: {err}"})

        def do_GET(self):
            self.dispatch("GET")

        def do_POST(self):
            self.dispatch("POST")

    return Handler


def serve(app, port, host="0.0.0.0", access_log=True):
    cls = ThreadingHTTPServer
    if ":" in host:  # "::": every IPv6 and (dual-stack) IPv4 address
        cls = type("ThreadingHTTPServer6", (ThreadingHTTPServer,), {"address_family": socket.AF_INET6})
    server = cls((host, port), make_handler(app, access_log))
    server.daemon_threads = True
    return server


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    catalog_file = os.environ.get("CATALOG") or os.path.join(here, "..", "catalog.json")
    with open(catalog_file, encoding="utf-8") as f:
        catalog = json.load(f)
    app = Search(catalog, sidecar_address(), os.environ.get("MODEL") or "search")
    server = serve(app, int(os.environ.get("PORT") or 8080), os.environ.get("HOST") or "0.0.0.0")
    print(json.dumps({"msg": "search listening", "port": server.server_address[1],
                      "sidecar": app.address, "model": app.model}), flush=True)
    import signal
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    server.server_close()
    app.close()


if __name__ == "__main__":
    main()
