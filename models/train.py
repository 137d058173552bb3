#!/usr/bin/env python3
"""Train and export the example models of the onnx-sidecar model repository.

Regenerate (from the repository root; keep the virtual environment out of the repo):

    python3 -m venv /tmp/venv
    /tmp/venv/bin/pip install -r models/requirements.txt
    /tmp/venv/bin/python models/train.py

Everything is deterministic: fixed seeds, single-threaded BLAS, the data sets that
scikit-learn ships (nothing is downloaded). Two runs with the pinned requirements
write byte-identical files.

Written, per model NAME (iris, digits):

    models/NAME/1/model.onnx                      input `input` float32 [-1, F]
                                                  outputs `label` int64 [-1],
                                                  `probabilities` float32 [-1, C]
    models/NAME/config.yaml                       batching + the preprocess step
    models/NAME/labels.txt                        one class name per line, index order
    test/fixtures/models/NAME-heldout.json        held-out raw features + the expected
                                                  outputs of the ONNX model

The normalisation is NOT part of the ONNX graph: the graph takes already-normalised
features, and config.yaml declares the `preprocess` step the sidecar applies, in
float32, before inference:

    minmax:  x' = f32( f32(x - min) / f32(max - min) )
    zscore:  x' = f32( f32(x - mean) / std )

with x = f32(raw value) and every parameter the float32 written in config.yaml.
"""

import os

# Pin every BLAS/OpenMP pool to one thread before numpy is imported, so that floating
# point sums are taken in the same order on every run and machine.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
             "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"
os.environ["PYTHONHASHSEED"] = "0"

import json  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import sklearn  # noqa: E402
import skl2onnx  # noqa: E402
from skl2onnx import to_onnx  # noqa: E402
from skl2onnx.common.data_types import FloatTensorType  # noqa: E402
from sklearn.datasets import load_digits, load_iris  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402

SEED = 20240611
TEST_SIZE = 0.3
# ai.onnx opset 17 and ai.onnx.ml 3 are both supported by onnxruntime >= 1.14
# (so by onnxruntime-node 1.30); IR version 8 is the one that goes with opset 17.
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
IR_VERSION = 8

F32 = np.float32
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
FIXTURES = os.path.join(REPO, "test", "fixtures", "models")

MINMAX_NOTE = (
    "x = float32(raw); x' = float32(float32(x - min) / float32(max - min)), per feature, "
    "every operation in IEEE float32 (round to nearest even); min and max are the float32 "
    "values written in models/{name}/config.yaml (preprocess.input.minmax), i.e. the "
    "per-feature min and max of the training split"
)
ZSCORE_NOTE = (
    "x = float32(raw); x' = float32(float32(x - mean) / std), per feature, every "
    "operation in IEEE float32 (round to nearest even); mean and std are the float32 "
    "values written in models/{name}/config.yaml (preprocess.input.zscore), i.e. the "
    "per-feature mean and population standard deviation (ddof=0) of the training split, "
    "with a std of 0 (a constant pixel) replaced by 1"
)


def seed_everything():
    random.seed(SEED)
    np.random.seed(SEED)


def exact(v):
    """A float32 as the Python float (a double) of exactly the same value.

    Its repr is a decimal that parses to that exact value both as a double and as a
    float32, so a reader gets the same parameter whether it computes in float32 or
    stores the number in a double first.
    """
    return float(F32(v))


def short(v):
    """A float32 as the shortest decimal that reads back as the same float32."""
    return float(str(F32(v)))


def raw_number(v):
    """A raw feature as the application would send it: 5.1, or 16 for an integer."""
    v = float(v)
    return int(v) if v.is_integer() else v


def yaml_list(values):
    return "[" + ", ".join(repr(exact(v)) for v in values) + "]"


def minmax_normalise(x, lo, hi):
    x = x.astype(F32)
    lo = lo.astype(F32)
    hi = hi.astype(F32)
    out = (x - lo) / (hi - lo)  # float32 throughout: numpy keeps the dtype
    assert out.dtype == F32
    return out


def zscore_normalise(x, mean, std):
    x = x.astype(F32)
    mean = mean.astype(F32)
    std = std.astype(F32)
    out = (x - mean) / std
    assert out.dtype == F32
    return out


def export(model, n_features, name):
    onx = to_onnx(
        model,
        initial_types=[("input", FloatTensorType([None, n_features]))],
        target_opset=TARGET_OPSET,
        options={id(model): {"zipmap": False}},
    )
    onx.ir_version = IR_VERSION
    # skl2onnx may list a domain twice (LogisticRegression: ai.onnx 17 twice); keep one
    # entry per domain, with the highest version, in a fixed order.
    opsets = {}
    for op in onx.opset_import:
        opsets[op.domain] = max(op.version, opsets.get(op.domain, 0))
    del onx.opset_import[:]
    for domain in sorted(opsets):
        onx.opset_import.add(domain=domain, version=opsets[domain])
    assert opsets.get("", 0) <= TARGET_OPSET[""], opsets
    assert opsets.get("ai.onnx.ml", 0) <= TARGET_OPSET["ai.onnx.ml"], opsets
    onx.doc_string = f"onnx-sidecar example model '{name}', generated by models/train.py"
    # Fixed names and order: input `input`; outputs `label`, `probabilities`.
    assert [i.name for i in onx.graph.input] == ["input"], onx.graph.input
    assert [o.name for o in onx.graph.output] == ["label", "probabilities"], onx.graph.output
    onnx.checker.check_model(onx, full_check=True)
    return onx


def io_signature(session):
    def sig(v):
        return f"{v.name} {v.type} {v.shape}"
    return ([sig(i) for i in session.get_inputs()], [sig(o) for o in session.get_outputs()])


def write_text(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def write_bytes(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def write_fixture(path, doc, rows_keys):
    """JSON with one sample per line for the long arrays, so diffs stay readable."""
    parts = []
    for key, value in doc.items():
        if key in rows_keys:
            rows = ",\n    ".join(json.dumps(r, separators=(",", ":")) for r in value)
            parts.append(f"  {json.dumps(key)}: [\n    {rows}\n  ]")
        else:
            parts.append(f"  {json.dumps(key)}: {json.dumps(value)}")
    text = "{\n" + ",\n".join(parts) + "\n}\n"
    json.loads(text)  # well-formed
    write_text(path, text)


def build(name, model, x_raw, y, class_names, preprocess, fit_params):
    """Split, normalise, train, export, check and write one model."""
    seed_everything()
    x_train_raw, x_test_raw, y_train, y_test = train_test_split(
        x_raw, y, test_size=TEST_SIZE, stratify=y, random_state=SEED)
    n_features = x_raw.shape[1]

    normalise, params, yaml_block, note = preprocess(x_train_raw)
    x_train = normalise(x_train_raw)
    x_test = normalise(x_test_raw)

    # Train on the float32-normalised features, exactly what the graph will receive.
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model.fit(x_train.astype(np.float64), y_train, **fit_params)
    assert list(model.classes_) == list(range(len(class_names))), model.classes_

    onx = export(model, n_features, name)
    data = onx.SerializeToString()

    model_dir = os.path.join(HERE, name)
    write_bytes(os.path.join(model_dir, "1", "model.onnx"), data)
    write_text(os.path.join(model_dir, "labels.txt"), "".join(f"{c}\n" for c in class_names))
    write_text(os.path.join(model_dir, "config.yaml"), yaml_block)

    # Run the exported file with onnxruntime, on the float32-normalised test features.
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
    label, proba = sess.run(["label", "probabilities"], {"input": x_test})
    assert label.dtype == np.int64 and label.shape == (len(x_test),), (label.dtype, label.shape)
    assert proba.dtype == F32 and proba.shape == (len(x_test), len(class_names)), proba.shape
    ins, outs = io_signature(sess)

    # The ONNX model must agree with scikit-learn on every held-out sample.
    sk_label = model.predict(x_test.astype(np.float64))
    sk_proba = model.predict_proba(x_test.astype(np.float64))
    mismatches = int(np.sum(sk_label != label))
    if mismatches:
        sys.exit(f"{name}: ONNX and scikit-learn disagree on {mismatches} held-out samples")
    max_diff = float(np.max(np.abs(sk_proba - proba)))
    if max_diff > 1e-5:
        sys.exit(f"{name}: ONNX and scikit-learn probabilities differ by {max_diff}")
    # A batch of one gives the same answer as the whole batch (what the sidecar's
    # dynamic batcher relies on).
    for i in (0, len(x_test) - 1):
        l1, p1 = sess.run(None, {"input": x_test[i:i + 1]})
        assert l1[0] == label[i] and np.allclose(p1[0], proba[i], atol=1e-6)

    accuracy = float(np.mean(label == y_test))
    sk_accuracy = float(np.mean(sk_label == y_test))

    fixture = {
        "model": name,
        "version": "1",
        "input": "input",
        "datatype": "FP32",
        "shape": [len(x_test), n_features],
        "outputs": ["label", "probabilities"],
        "labels": [str(c) for c in class_names],
        "preprocess": {**params, "formula": note.format(name=name)},
        "accuracy": round(accuracy, 6),
        "probabilities_note": (
            "expected_probabilities are what Python onnxruntime "
            f"{ort.__version__} returns for the float32-normalised features, written as "
            "the shortest decimal of each float32; compare with a tolerance "
            "(e.g. 1e-5 absolute), another onnxruntime build may differ in the last bits"
        ),
        "target": [int(v) for v in y_test],
        "expected_label": [int(v) for v in label],
        "raw_features": [[raw_number(v) for v in row] for row in x_test_raw],
        "expected_probabilities": [[short(v) for v in row] for row in proba],
    }
    write_fixture(os.path.join(FIXTURES, f"{name}-heldout.json"), fixture,
                  rows_keys={"raw_features", "expected_probabilities"})

    print(f"{name}: {type(model).__name__}, train {len(x_train)} / test {len(x_test)}, "
          f"held-out accuracy {accuracy:.4f} (scikit-learn {sk_accuracy:.4f}), "
          f"max |p_onnx - p_sklearn| {max_diff:.2e}, model.onnx {len(data)} bytes")
    print(f"  inputs  {ins}")
    print(f"  outputs {outs}")
    return accuracy


def minmax_preprocess(x_train_raw):
    lo = x_train_raw.astype(F32).min(axis=0)
    hi = x_train_raw.astype(F32).max(axis=0)
    assert np.all(hi > lo)
    yaml_block = (
        "# Generated by models/train.py - do not edit by hand: rerun the script instead.\n"
        "# The ONNX graph takes already-normalised features; the sidecar applies, per feature\n"
        "# and in float32:  x' = (x - min) / (max - min), min/max taken on the training split.\n"
        "# Every number below is the exact decimal value of a float32.\n"
        "max_batch_size: 32\n"
        "dynamic_batching: { max_queue_delay_microseconds: 200 }\n"
        "preprocess:\n"
        "  input:\n"
        "    minmax:\n"
        f"      min: {yaml_list(lo)}\n"
        f"      max: {yaml_list(hi)}\n"
        "warmup: true\n"
    )
    params = {"minmax": {"min": [exact(v) for v in lo], "max": [exact(v) for v in hi]}}
    return (lambda x: minmax_normalise(x, lo, hi)), params, yaml_block, MINMAX_NOTE


def zscore_preprocess(x_train_raw):
    mean = x_train_raw.astype(np.float64).mean(axis=0).astype(F32)
    std64 = x_train_raw.astype(np.float64).std(axis=0)  # population std, ddof=0
    constant = [int(i) for i in np.flatnonzero(std64 == 0)]
    std = np.where(std64 == 0, 1.0, std64).astype(F32)
    assert np.all(std > 0)
    yaml_block = (
        "# Generated by models/train.py - do not edit by hand: rerun the script instead.\n"
        "# The ONNX graph takes already-normalised features; the sidecar applies, per feature\n"
        "# and in float32:  x' = (x - mean) / std, with the mean and the population standard\n"
        "# deviation (ddof=0) of the training split. Some pixels are constant (always 0) in\n"
        f"# the training split (feature indices {constant}): their std of 0 is replaced by 1.\n"
        "# Every number below is the exact decimal value of a float32.\n"
        "max_batch_size: 32\n"
        "dynamic_batching: { max_queue_delay_microseconds: 200 }\n"
        "preprocess:\n"
        "  input:\n"
        "    zscore:\n"
        f"      mean: {yaml_list(mean)}\n"
        f"      std: {yaml_list(std)}\n"
        "warmup: true\n"
    )
    params = {"zscore": {"mean": [exact(v) for v in mean], "std": [exact(v) for v in std],
                         "constant_features": constant}}
    return (lambda x: zscore_normalise(x, mean, std)), params, yaml_block, ZSCORE_NOTE


def main():
    print(f"numpy {np.__version__}, scikit-learn {sklearn.__version__}, "
          f"skl2onnx {skl2onnx.__version__}, onnx {onnx.__version__}, "
          f"onnxruntime {ort.__version__}")
    os.makedirs(FIXTURES, exist_ok=True)

    iris = load_iris()
    build(
        "iris",
        LogisticRegression(C=100.0, max_iter=10000, tol=1e-8, random_state=SEED),
        iris.data, iris.target, list(iris.target_names), minmax_preprocess, {},
    )

    digits = load_digits()
    build(
        "digits",
        MLPClassifier(hidden_layer_sizes=(64,), alpha=1.0, max_iter=500,
                      random_state=SEED),
        digits.data, digits.target, [str(d) for d in range(10)], zscore_preprocess, {},
    )


if __name__ == "__main__":
    main()
