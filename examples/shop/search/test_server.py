"""The search service against a real sidecar serving examples/shop/models.

    cd examples/shop/search && python -m unittest -v test_server     (npm run build first;
    a Python with requirements.txt installed: examples/shop/test.sh makes one)
"""
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SHOP = os.path.dirname(HERE)
REPO = os.path.dirname(os.path.dirname(SHOP))
sys.path.insert(0, HERE)

import features  # noqa: E402
import server  # noqa: E402


def load(name):
    with open(os.path.join(SHOP, name), encoding="utf-8") as f:
        return json.load(f)


class Sidecar:
    """A real `onnx-sidecar serve` on free ports (the repository's dist/)."""

    def __init__(self, model, socket_dir=None):
        main = os.path.join(REPO, "dist", "cli", "main.js")
        if not os.path.exists(main):
            raise RuntimeError(f"{main} is missing: run npm run build in {REPO} first")
        args = ["node", main, "serve", "--model-repository", os.path.join(SHOP, "models"),
                "--model", model, "--port", "0", "--grpc-port", "0", "--metrics-port", "0",
                "--metrics-host", "127.0.0.1", "--workers", "1", "--threads", "1"]
        if socket_dir:
            args += ["--socket-dir", socket_dir]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.log = []
        self.url = self.grpc = None
        deadline = time.monotonic() + 60
        for line in self.proc.stdout:
            self.log.append(line)
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("msg") == "onnx-sidecar serving":
                self.url, self.grpc = rec["inference"], rec["grpc"]
                break
        if self.url is None:
            self.stop()
            raise RuntimeError("sidecar exited before serving:\n" + "".join(self.log))
        threading.Thread(target=lambda: [self.log.append(x) for x in self.proc.stdout], daemon=True).start()
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/v2/health/ready") as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("sidecar not ready after 60 s:\n" + "".join(self.log))
            time.sleep(0.1)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=60)
        self.proc.stdout.close()


def call(base, path, body=None):
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(base + path, data=data, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


class Service:
    def __init__(self, address):
        self.app = server.Search(load("catalog.json"), address)
        self.http = server.serve(self.app, 0, "127.0.0.1", access_log=False)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.http.server_address[1]}"

    def stop(self):
        self.http.shutdown()
        self.http.server_close()
        self.app.close()


class SearchOverGrpc(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.heldout = load("expectations/search.json")
        cls.storefront = load("expectations/storefront.json")
        cls.sidecar = Sidecar("search")
        cls.service = Service(server.sidecar_address({"ONNX_SIDECAR_GRPC_ADDRESS": cls.sidecar.grpc}))

    @classmethod
    def tearDownClass(cls):
        cls.service.stop()
        cls.sidecar.stop()

    def test_healthz(self):
        status, body = call(self.service.base, "/healthz")
        self.assertEqual(status, 200)
        self.assertEqual(body, {"ready": True, "model": "search", "sidecar": self.sidecar.grpc})

    def test_score_matches_heldout(self):
        status, body = call(self.service.base, "/score", {"rows": self.heldout["raw_features"]})
        self.assertEqual(status, 200, body)
        self.assertEqual(body["model_version"], "1")
        self.assertIsInstance(body["sidecar_ms"], float)
        self.assertEqual(body["label"], self.heldout["expected_label"])
        worst = max(abs(p - e) for row, erow in zip(body["probabilities"], self.heldout["expected_probabilities"])
                    for p, e in zip(row, erow))
        self.assertLess(worst, 1e-5)
        correct = sum(1 for a, b in zip(body["label"], self.heldout["target"]) if a == b)
        self.assertEqual(round(correct / len(self.heldout["target"]), 6), self.heldout["accuracy"])
        for s, row in zip(body["scores"], body["probabilities"]):
            self.assertAlmostEqual(s, sum(k * p for k, p in enumerate(row)), places=9)

    def test_features_of_a_demo_pair(self):
        products = load("catalog.json")["products"]
        index = features.Index(products)
        row = index.features("trail running shoes", products[0])  # p01, Trail Running Shoes Ridge
        self.assertEqual(row[1:], [1.0, 1.0, 4.6, row[4], 129.0, 0.071, 210.0])
        self.assertAlmostEqual(row[4], 3.2650538, places=6)  # log10(1 + 1840)
        self.assertGreater(row[0], 0)
        self.assertEqual([p["id"] for p in index.candidates("cooking")], ["p10", "p14"])

    def test_search_matches_expectations(self):
        limit = self.storefront["search_limit"]
        for demo in self.storefront["demos"]:
            q = demo["request"]["q"]
            status, body = call(self.service.base, f"/search?q={urllib.parse.quote(q)}&limit={limit}")
            self.assertEqual(status, 200, body)
            self.assertEqual(body["model_version"], "1")
            self.assertEqual([r["id"] for r in body["results"]], [r["id"] for r in demo["search"]], q)
            for got, want in zip(body["results"], demo["search"]):
                self.assertAlmostEqual(got["score"], want["score"], delta=1e-4)

    def test_no_candidates_means_no_sidecar_call(self):
        status, body = call(self.service.base, "/search?q=zzzz")
        self.assertEqual((status, body["results"]), (200, []))

    def test_bad_requests(self):
        self.assertEqual(call(self.service.base, "/search")[0], 400)
        self.assertEqual(call(self.service.base, "/score", {"rows": [[1, 2]]})[0], 400)
        self.assertEqual(call(self.service.base, "/score", {"rows": [[True] * 8]})[0], 400)
        self.assertEqual(call(self.service.base, "/score", b"nope")[0], 400)
        self.assertEqual(call(self.service.base, "/nope")[0], 404)


class SearchOverUnixSocket(unittest.TestCase):
    """ONNX_SIDECAR_GRPC_SOCKET (onnx-sidecar.io/socket: "true") wins over the TCP address."""

    def test_score_over_the_socket_then_sidecar_gone(self):
        heldout = load("expectations/search.json")
        with tempfile.TemporaryDirectory() as tmp:
            sidecar = Sidecar("search", socket_dir=tmp)
            try:
                address = server.sidecar_address({"ONNX_SIDECAR_GRPC_SOCKET": os.path.join(tmp, "grpc.sock"),
                                                   "ONNX_SIDECAR_GRPC_ADDRESS": "127.0.0.1:1"})
                self.assertEqual(address, f"unix://{tmp}/grpc.sock")
                service = Service(address)
                try:
                    status, body = call(service.base, "/score", {"rows": heldout["raw_features"][:100]})
                    self.assertEqual(status, 200, body)
                    self.assertEqual(body["label"], heldout["expected_label"][:100])
                    sidecar.stop()
                    self.assertEqual(call(service.base, "/healthz")[0], 503)
                    status, body = call(service.base, "/search?q=garden")
                    self.assertEqual(status, 503, body)
                finally:
                    service.stop()
            finally:
                sidecar.stop()

    def test_missing_socket_file_falls_back_to_tcp(self):
        self.assertEqual(server.sidecar_address({"ONNX_SIDECAR_GRPC_SOCKET": "/nonexistent/grpc.sock",
                                                 "ONNX_SIDECAR_GRPC_ADDRESS": "127.0.0.1:9"}), "127.0.0.1:9")
        self.assertEqual(server.sidecar_address({}), "127.0.0.1:8501")


if __name__ == "__main__":
    unittest.main()
