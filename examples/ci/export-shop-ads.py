#!/usr/bin/env python3
"""The export step of examples/ci for the demo shop's ads model: trains and exports ads v2
with skl2onnx, exactly as the shop does (examples/shop/training/train.py, which reuses
models/train.py), and writes one model version directory:

    OUT/model.onnx                  the exported graph
    OUT/golden/expectations.json    golden cases for this version (onnx-sidecar check):
                                    the first 8 held-out rows and what the exported
                                    graph answers for them (Python onnxruntime)

usage: python examples/ci/export-shop-ads.py OUT

train.py writes next to itself (it finds the shop from its own path), so it runs in a
scratch copy of the three files it needs, and the checkout is never changed. Fixed seeds
and pinned packages (examples/shop/training/requirements.txt): the same model.onnx as the
committed examples/shop/models-v2/ads/2/model.onnx, byte for byte; this script says so.

Your own pipeline replaces this file with its training job. What the rest of the pipeline
needs from it is only OUT/model.onnx (and, if you keep them, OUT/golden/*.json).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
# train.py's imports, at the same places relative to each other as in the checkout.
SOURCES = ["models/train.py", "examples/shop/training/train.py", "examples/shop/search/features.py"]
GOLDEN_ROWS = 8


def golden_case(fixture):
    """The first rows of a shop expectations file as one golden case (docs/check.md)."""
    rows = fixture["raw_features"][:GOLDEN_ROWS]
    return {
        "name": f"first {len(rows)} held-out rows of ads v{fixture['version']} (examples/ci/export-shop-ads.py)",
        "atol": 1e-05,
        "inputs": [{"name": fixture["input"], "datatype": fixture["datatype"],
                    "shape": [len(rows), fixture["features"] if isinstance(fixture["features"], int)
                              else len(fixture["features"])], "data": rows}],
        "outputs": [
            {"name": "label", "data": fixture["expected_label"][:GOLDEN_ROWS]},
            {"name": "probabilities", "shape": [len(rows), len(fixture["labels"])],
             "data": fixture["expected_probabilities"][:GOLDEN_ROWS]},
        ],
    }


def main():
    if len(sys.argv) != 2 or sys.argv[1].startswith("-"):
        sys.exit("usage: python examples/ci/export-shop-ads.py OUT")
    out = os.path.abspath(sys.argv[1])
    with tempfile.TemporaryDirectory(prefix="export-shop-ads-") as scratch:
        for rel in SOURCES:
            os.makedirs(os.path.join(scratch, os.path.dirname(rel)), exist_ok=True)
            shutil.copyfile(os.path.join(REPO, rel), os.path.join(scratch, rel))
        train = os.path.join(scratch, "examples/shop/training/train.py")
        # train.py prints its metrics; they go to stderr so stdout stays this script's.
        subprocess.run([sys.executable, train], cwd=scratch, check=True, stdout=sys.stderr)
        shop = os.path.join(scratch, "examples/shop")
        model = os.path.join(shop, "models-v2/ads/2/model.onnx")
        with open(os.path.join(shop, "expectations/ads-v2.json")) as f:
            fixture = json.load(f)
        os.makedirs(os.path.join(out, "golden"), exist_ok=True)
        shutil.copyfile(model, os.path.join(out, "model.onnx"))
        os.chmod(os.path.join(out, "model.onnx"), 0o644)
        with open(os.path.join(out, "golden", "expectations.json"), "w") as f:
            json.dump(golden_case(fixture), f, indent=1)
            f.write("\n")
    with open(os.path.join(out, "model.onnx"), "rb") as a, \
            open(os.path.join(REPO, "examples/shop/models-v2/ads/2/model.onnx"), "rb") as b:
        same = a.read() == b.read()
    print(f"export-shop-ads: wrote {out}/model.onnx ("
          + ("identical to" if same else "differs from")
          + " examples/shop/models-v2/ads/2/model.onnx) and golden/expectations.json", file=sys.stderr)


if __name__ == "__main__":
    main()
