#!/usr/bin/env python3
"""Train and export the shop's three models (and v2 of the ads model).

Regenerate (from the repository root; the virtual environment stays outside the repo):

    python3 -m venv /tmp/shopvenv
    /tmp/shopvenv/bin/pip install -r examples/shop/training/requirements.txt
    /tmp/shopvenv/bin/python examples/shop/training/train.py

It reuses models/train.py's export and float32 helpers (same pinned packages), fixed
seeds and single-threaded BLAS: two runs write byte-identical files.

Written (under examples/shop/):

    catalog.json                                  the demo shop: products, users, ads
    models/NAME/config.yaml, NAME/1/model.onnx     NAME: recommendations, search, ads
    models/NAME/labels.txt
    models-v2/ads/2/model.onnx                    ads v2, for "shipping a v2"
    expectations/NAME.json, expectations/ads-v2.json
                                                  held-out rows (raw features), what the
                                                  ONNX model answers, accuracy
    expectations/storefront.json                  what each service answers for the demo
                                                  requests (rankings, chosen ad, scores)

Every model takes `input` FP32 [-1, 8] of RAW features (the sidecar applies the
preprocess of config.yaml) and returns `label` INT64 [-1] and `probabilities` FP32 [-1, C].

The data is synthetic; each generator below documents what it draws and why.
"""

import os
import sys

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
             "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"
os.environ["PYTHONHASHSEED"] = "0"

HERE = os.path.dirname(os.path.abspath(__file__))
SHOP = os.path.dirname(HERE)
REPO = os.path.dirname(os.path.dirname(SHOP))
sys.path.insert(0, os.path.join(REPO, "models"))
sys.path.insert(0, os.path.join(SHOP, "search"))

import json  # noqa: E402
import math  # noqa: E402

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402

import train as base  # noqa: E402  models/train.py: export(), exact(), short(), ...
import features as search_features  # noqa: E402  examples/shop/search/features.py

F32 = np.float32
SEED = 20261130
TEST_SHARE = 0.3

# ---------------------------------------------------------------------------------------
# The demo shop. Services read catalog.json; every number is an exact decimal.
CATEGORIES = ["running", "outdoor", "kitchen", "books", "electronics", "garden"]

PRODUCTS = [
    # id, name, category, price_eur, rating, reviews, ctr_30d, days_listed, tags
    ("p01", "Trail Running Shoes Ridge", "running", 129.0, 4.6, 1840, 0.071, 210, ["shoes", "trail", "running"]),
    ("p02", "Road Running Shoes Tempo", "running", 109.0, 4.3, 960, 0.058, 95, ["shoes", "road", "running"]),
    ("p03", "Running Socks Merino 3-pack", "running", 24.9, 4.7, 2210, 0.044, 400, ["socks", "merino", "running"]),
    ("p04", "GPS Running Watch Pace 2", "running", 249.0, 4.4, 530, 0.039, 60, ["watch", "gps", "running", "wireless"]),
    ("p05", "Hiking Boots Summit GTX", "outdoor", 189.0, 4.5, 1210, 0.052, 330, ["boots", "hiking", "waterproof"]),
    ("p06", "Trail Backpack 28L", "outdoor", 89.0, 4.2, 640, 0.033, 150, ["backpack", "trail", "hiking"]),
    ("p07", "Camping Stove Mini", "outdoor", 49.0, 4.0, 310, 0.027, 520, ["stove", "camping", "gas"]),
    ("p08", "Trekking Poles Carbon", "outdoor", 79.0, 4.1, 280, 0.022, 45, ["poles", "trekking", "carbon"]),
    ("p09", "Chef Knife Damascus 20cm", "kitchen", 99.0, 4.8, 1520, 0.061, 600, ["knife", "chef", "steel"]),
    ("p10", "Cast Iron Skillet 28cm", "kitchen", 45.0, 4.7, 3100, 0.066, 900, ["skillet", "pan", "cast", "iron", "cooking"]),
    ("p11", "Baking Scale Digital", "kitchen", 19.9, 4.3, 870, 0.031, 240, ["scale", "baking", "digital"]),
    ("p12", "Espresso Grinder Burr", "kitchen", 159.0, 4.2, 410, 0.029, 30, ["grinder", "coffee", "espresso"]),
    ("p13", "The Trail Runner's Guide", "books", 22.0, 4.4, 380, 0.035, 720, ["book", "trail", "running", "guide"]),
    ("p14", "Salt Fat Acid Heat", "books", 32.0, 4.9, 5400, 0.074, 1500, ["book", "cooking", "recipes"]),
    ("p15", "A Field Guide to Garden Birds", "books", 16.5, 4.5, 720, 0.026, 1100, ["book", "garden", "birds", "guide"]),
    ("p16", "Wireless Networking Explained", "books", 39.0, 3.9, 120, 0.012, 350, ["book", "wireless", "networking", "tech"]),
    ("p17", "Wireless Earbuds Sport", "electronics", 79.0, 4.1, 2650, 0.057, 120, ["earbuds", "wireless", "audio", "sport", "running"]),
    ("p18", "Noise Cancelling Headphones", "electronics", 299.0, 4.6, 4100, 0.063, 280, ["headphones", "wireless", "audio"]),
    ("p19", "Smart Plug 2-pack", "electronics", 24.0, 4.0, 1900, 0.041, 410, ["smart", "plug", "wifi"]),
    ("p20", "Portable Power Bank 20000", "electronics", 39.0, 4.3, 3300, 0.048, 510, ["power", "bank", "usb", "camping"]),
    ("p21", "Raised Garden Bed Cedar", "garden", 139.0, 4.4, 460, 0.034, 380, ["raised", "bed", "garden", "cedar"]),
    ("p22", "Pruning Shears Bypass", "garden", 29.0, 4.6, 1750, 0.049, 760, ["shears", "pruning", "garden"]),
    ("p23", "Drip Irrigation Kit", "garden", 59.0, 4.1, 530, 0.028, 200, ["drip", "irrigation", "garden", "water"]),
    ("p24", "Organic Plant Food 2kg", "garden", 14.9, 4.5, 980, 0.037, 330, ["plant", "food", "organic", "garden"]),
]

USERS = [
    # id, name, age, avg_order_eur, sessions_30d, affinity (share of past purchases per category)
    ("u-ada", "Ada", 34, 85.0, 18, {"running": 0.55, "outdoor": 0.2, "kitchen": 0.05, "books": 0.05, "electronics": 0.15, "garden": 0.0}),
    ("u-ben", "Ben", 46, 60.0, 7, {"running": 0.0, "outdoor": 0.05, "kitchen": 0.6, "books": 0.25, "electronics": 0.0, "garden": 0.1}),
    ("u-chen", "Chen", 27, 180.0, 25, {"running": 0.1, "outdoor": 0.1, "kitchen": 0.0, "books": 0.2, "electronics": 0.6, "garden": 0.0}),
    ("u-dee", "Dee", 63, 45.0, 4, {"running": 0.0, "outdoor": 0.0, "kitchen": 0.1, "books": 0.2, "electronics": 0.0, "garden": 0.7}),
]

ADS = [
    # id, advertiser, title, category, bid_eur (cost per click), hist_ctr
    ("a1", "Ridge", "Ridge trail shoes: 20% off this week", "running", 0.8, 0.045),
    ("a2", "Summit", "Summit Outdoor: the new season's boots", "outdoor", 0.65, 0.038),
    ("a3", "ChefPro", "ChefPro knives, sharpened for life", "kitchen", 0.55, 0.051),
    ("a4", "BookBox", "BookBox: a new book every month", "books", 0.3, 0.062),
    ("a5", "SoundWave", "SoundWave headphones: hear only the music", "electronics", 1.2, 0.029),
    ("a6", "GreenThumb", "GreenThumb garden club: free seeds", "garden", 0.4, 0.047),
    ("a7", "FastFibre", "FastFibre broadband: 1 Gbit/s", "electronics", 1.9, 0.012),
    ("a8", "RunClub", "RunClub: city marathon entries open", "running", 0.5, 0.058),
]

# The demo requests the storefront makes, whose answers expectations/storefront.json holds.
DEMO_REQUESTS = [
    {"user": "u-ada", "product": "p01", "q": "trail running shoes", "hour": 19},
    {"user": "u-ben", "product": "p10", "q": "cooking book", "hour": 8},
    {"user": "u-chen", "product": "p18", "q": "wireless audio", "hour": 22},
    {"user": "u-dee", "product": "p22", "q": "garden guide", "hour": 11},
]
RECOMMENDATIONS_LIMIT = 4
SEARCH_LIMIT = 5

# ---------------------------------------------------------------------------------------
# Feature definitions shared with the services (documented in examples/shop/README.md).

RECOMMENDATIONS_FEATURES = ["user_age", "user_avg_order_eur", "user_sessions_30d",
                            "category_affinity", "price_eur", "rating", "reviews",
                            "price_to_avg_order"]
ADS_FEATURES = ["user_age", "user_sessions_30d", "category_affinity", "bid_eur",
                "ad_hist_ctr", "position", "hour_of_day", "page_category_match"]
# The ads model's min-max bounds are the documented domain of each feature, not the
# training split's extremes, so that every version of the model shares one config.yaml.
ADS_BOUNDS = ([18, 0, 0, 0.05, 0, 1, 0, 0], [80, 60, 1, 3.0, 0.2, 4, 23, 1])


def recommendations_row(user, product):
    """The model's input row for (user, product); the Node service computes the same."""
    _, _, age, avg_order, sessions, affinity = user
    _, _, category, price, rating, reviews, _, _, _ = product
    return [age, avg_order, sessions, affinity[category], price, rating, reviews, price / avg_order]


def ads_row(user, ad, page_product, hour, position=1):
    """The model's input row for showing `ad` to `user` on `page_product`'s page; the Go
    service computes the same."""
    _, _, age, _, sessions, affinity = user
    _, _, _, category, bid, hist_ctr = ad
    return [age, sessions, affinity[category], bid, hist_ctr, position, hour,
            1 if page_product[2] == category else 0]


# ---------------------------------------------------------------------------------------
# Generators. Each draws features from distributions shaped like a real shop's, then a
# label from a known latent model plus noise (so the achievable accuracy is bounded by
# the noise, as with real behaviour data).

def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def gen_recommendations(rng, n):
    """Did the user buy the product shown on their home page (1) or not (0)?

    Users: age uniform 18..75; average order lognormal around 70 EUR; sessions in 30
    days Poisson(8) + 1; category affinity Beta(0.6, 1.8) (most users buy mostly in one
    or two categories). Products: price lognormal around 60 EUR (sd 0.8 in log space,
    2.5..600), rating normal(4.3, 0.35) on 1..5 in tenths, reviews lognormal around 600.
    Purchase logit = -2.1 + 3.4 affinity + 0.9 (rating - 4.3) + 0.22 ln(1 + reviews / 100)
    - 1.3 max(0, price / avg_order - 1.2) + 0.03 sessions - 0.004 (age - 45), plus a
    logistic noise of the user's mood: the label is a Bernoulli draw of that probability.
    """
    age = rng.integers(18, 76, n)
    avg_order = np.clip(np.round(rng.lognormal(math.log(70), 0.5, n), 2), 8, 400)
    sessions = rng.poisson(8, n) + 1
    affinity = np.round(rng.beta(0.6, 1.8, n), 2)
    price = np.clip(np.round(rng.lognormal(math.log(60), 0.8, n), 1), 2.5, 600)
    rating = np.clip(np.round(rng.normal(4.3, 0.35, n), 1), 1, 5)
    reviews = np.clip(np.round(rng.lognormal(math.log(600), 1.1, n)), 0, 20000)
    ratio = price / avg_order
    logit = (-2.1 + 3.4 * affinity + 0.9 * (rating - 4.3) + 0.22 * np.log1p(reviews / 100)
             - 1.3 * np.maximum(0, ratio - 1.2) + 0.03 * sessions - 0.004 * (age - 45))
    y = (rng.random(n) < sigmoid(logit)).astype(np.int64)
    x = np.stack([age, avg_order, sessions, affinity, price, rating, reviews, ratio], axis=1)
    return x.astype(np.float64), y


def gen_ads(rng, n):
    """Was the ad clicked (1) or not (0)?

    Impressions: user age uniform 18..79, sessions in 30 days Poisson(9), the user's
    affinity to the ad's category Beta(0.6, 1.8), bid (cost per click) lognormal around
    0.6 EUR on 0.05..3, the ad's historical CTR Beta(2, 40) (about 5 %), slot position
    1..4, hour of day 0..23 (more traffic in the evening), whether the page shows a product
    of the ad's category (30 %).
    Click logit = -3.1 + 2.3 affinity + 1.0 page_match + 16 hist_ctr - 0.5 (position - 1)
    + 1.0 [18 <= hour <= 22] - 0.8 [hour <= 6] + 0.012 sessions - 0.01 (age - 40)
    (bid does not drive clicks; it enters the ad auction as eCPM = p(click) x bid).
    The evening bump is not linear in the hour: logistic regression (v1) cannot capture
    it, the small MLP of v2 can.
    """
    age = rng.integers(18, 80, n)
    sessions = np.minimum(rng.poisson(9, n), 60)
    affinity = np.round(rng.beta(0.6, 1.8, n), 2)
    bid = np.clip(np.round(rng.lognormal(math.log(0.6), 0.6, n), 2), 0.05, 3.0)
    hist_ctr = np.round(rng.beta(2, 40, n), 3)
    position = rng.integers(1, 5, n)
    hour_weights = np.array([1, 1, 1, 1, 1, 1, 2, 3, 4, 4, 4, 4, 5, 4, 4, 4, 4, 5, 6, 7, 7, 6, 4, 2], dtype=float)
    hour = rng.choice(24, n, p=hour_weights / hour_weights.sum())
    page_match = (rng.random(n) < 0.3).astype(np.int64)
    logit = (-3.1 + 2.3 * affinity + 1.0 * page_match + 16 * hist_ctr - 0.5 * (position - 1)
             + 1.0 * ((hour >= 18) & (hour <= 22)) - 0.8 * (hour <= 6) + 0.012 * sessions
             - 0.01 * (age - 40))
    y = (rng.random(n) < sigmoid(logit)).astype(np.int64)
    x = np.stack([age, sessions, affinity, bid, hist_ctr, position, hour, page_match], axis=1)
    return x.astype(np.float64), y


def gen_search(rng, n_queries, per_query):
    """How relevant is the product to the query: grade 0 (not), 1, 2, 3 (exactly it)?

    Queries of 1-3 terms; per query `per_query` candidates from the first stage. For each
    candidate: matched terms ~ Binomial(terms, 0.45), title_match = matched / terms; BM25
    = sum over matched terms of U(1.2, 3.2) plus a tag-only match now and then (as
    features.py computes on the catalog: 0..~9); category_match Bernoulli(0.6) when a term
    matched, else 0.2; rating normal(4.3, 0.35) on 1..5 in tenths; log10(1 + reviews)
    with reviews lognormal around 600; price lognormal around 60 EUR; CTR over 30 days
    Beta(2, 40); days listed uniform 5..1500.
    Latent relevance = 1.8 title_match + 0.25 bm25 + 1.0 category_match + 0.5 (rating -
    4.3) + 0.15 log_reviews + 10 ctr - 0.0002 days + normal(0, 0.35), cut at 0.9, 1.9
    and 2.8 into the grades (the judges' noise).
    """
    n = n_queries * per_query
    groups = np.repeat(np.arange(n_queries), per_query)
    terms = np.repeat(rng.integers(1, 4, n_queries), per_query)
    matched = rng.binomial(terms, 0.45)
    title_match = matched / terms
    bm25 = np.zeros(n)
    for i in range(n):
        bm25[i] = rng.uniform(1.2, 3.2, matched[i]).sum()
    tag_only = (rng.random(n) < 0.35) & (matched < terms)
    bm25 = bm25 + tag_only * rng.uniform(0.8, 2.5, n)
    category_match = np.where(matched > 0, rng.random(n) < 0.6, rng.random(n) < 0.2).astype(np.int64)
    rating = np.clip(np.round(rng.normal(4.3, 0.35, n), 1), 1, 5)
    reviews = np.clip(np.round(rng.lognormal(math.log(600), 1.1, n)), 0, 20000)
    log_reviews = np.log10(1 + reviews)
    price = np.clip(np.round(rng.lognormal(math.log(60), 0.8, n), 1), 2.5, 600)
    ctr = np.round(rng.beta(2, 40, n), 3)
    days = rng.integers(5, 1501, n)
    latent = (1.8 * title_match + 0.25 * bm25 + 1.0 * category_match + 0.5 * (rating - 4.3)
              + 0.15 * log_reviews + 10 * ctr - 0.0002 * days + rng.normal(0, 0.35, n))
    y = np.digitize(latent, [0.9, 1.9, 2.8]).astype(np.int64)
    x = np.stack([bm25, title_match, category_match, rating, log_reviews, price, ctr, days], axis=1)
    return x, y, groups


# ---------------------------------------------------------------------------------------

def split(rng, n_groups, groups):
    """Held-out split by group (a query's candidates stay together), seeded."""
    test_groups = rng.permutation(n_groups)[: int(round(n_groups * TEST_SHARE))]
    test = np.isin(groups, test_groups)
    return ~test, test


def session(data):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])


def minmax_block(name, lo, hi, comment):
    return (
        f"# Generated by examples/shop/training/train.py - do not edit by hand: rerun it.\n"
        f"# {name}: the ONNX graph takes normalised features; the sidecar applies, per feature\n"
        f"# and in float32, x' = (x - min) / (max - min). {comment}\n"
        "# Every number below is the exact decimal value of a float32.\n"
        "max_batch_size: 64\n"
        "dynamic_batching: { max_queue_delay_microseconds: 200 }\n"
        "preprocess:\n"
        "  input:\n"
        "    minmax:\n"
        f"      min: {base.yaml_list(lo)}\n"
        f"      max: {base.yaml_list(hi)}\n"
        "warmup: true\n"
    )


def zscore_block(name, mean, std, comment):
    return (
        f"# Generated by examples/shop/training/train.py - do not edit by hand: rerun it.\n"
        f"# {name}: the ONNX graph takes normalised features; the sidecar applies, per feature\n"
        f"# and in float32, x' = (x - mean) / std. {comment}\n"
        "# Every number below is the exact decimal value of a float32.\n"
        "max_batch_size: 64\n"
        "dynamic_batching: { max_queue_delay_microseconds: 200 }\n"
        "preprocess:\n"
        "  input:\n"
        "    zscore:\n"
        f"      mean: {base.yaml_list(mean)}\n"
        f"      std: {base.yaml_list(std)}\n"
        "warmup: true\n"
    )


def ndcg_at(k, groups, y, score):
    total, count = 0.0, 0
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        order = idx[np.argsort(-score[idx], kind="stable")][:k]
        ideal = np.sort(y[idx])[::-1][:k]
        disc = 1 / np.log2(np.arange(2, k + 2))
        dcg = float(np.sum((2.0 ** y[order] - 1) * disc[: len(order)]))
        idcg = float(np.sum((2.0 ** ideal - 1) * disc[: len(ideal)]))
        if idcg > 0:
            total += dcg / idcg
            count += 1
    return total / count


def fit_export(name, model, x_train_n, y_train, n_classes, doc):
    model.fit(x_train_n.astype(np.float64), y_train)
    assert list(model.classes_) == list(range(n_classes)), model.classes_
    onx = base.export(model, x_train_n.shape[1], name)
    onx.doc_string = doc
    return model, onx.SerializeToString()


def evaluate(name, version, model, data, normalise, x_test_raw, y_test, labels, preprocess_params,
             features, extra_metrics, groups=None):
    """Runs the exported graph on the normalised held-out rows, checks it against
    scikit-learn, and returns the held-out fixture."""
    x_test = normalise(x_test_raw)
    sess = session(data)
    label, proba = sess.run(["label", "probabilities"], {"input": x_test})
    sk_label = model.predict(x_test.astype(np.float64))
    sk_proba = model.predict_proba(x_test.astype(np.float64))
    if int(np.sum(sk_label != label)):
        sys.exit(f"{name}: ONNX and scikit-learn disagree on {int(np.sum(sk_label != label))} rows")
    diff = float(np.max(np.abs(sk_proba - proba)))
    if diff > 1e-5:
        sys.exit(f"{name}: ONNX and scikit-learn probabilities differ by {diff}")
    accuracy = float(np.mean(label == y_test))
    metrics = {"accuracy": round(accuracy, 6)}
    metrics.update(extra_metrics(y_test, proba, groups))
    fixture = {
        "model": name.split("-")[0],
        "version": version,
        "input": "input",
        "datatype": "FP32",
        "shape": [len(x_test), x_test.shape[1]],
        "features": features,
        "outputs": ["label", "probabilities"],
        "labels": labels,
        "preprocess": preprocess_params,
        **metrics,
        "probabilities_note": (
            f"expected_probabilities: Python onnxruntime {ort.__version__} on the float32-"
            "normalised raw_features; compare with a tolerance (1e-5 absolute)"),
        "target": [int(v) for v in y_test],
        "expected_label": [int(v) for v in label],
        "raw_features": [[base.raw_number(v) for v in row] for row in x_test_raw],
        "expected_probabilities": [[base.short(v) for v in row] for row in proba],
    }
    print(f"{name} v{version}: {type(model).__name__}, test {len(x_test)} rows, "
          + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
          + f", model.onnx {len(data)} bytes, max |onnx - sklearn| {diff:.1e}")
    return fixture, sess


def binary_metrics(y, proba, _groups):
    return {"auc": round(float(roc_auc_score(y, proba[:, 1])), 6),
            "positive_rate": round(float(np.mean(y)), 6)}


def write_model(name, data, config, labels, repo="models", version="1"):
    d = os.path.join(SHOP, repo, name)
    base.write_bytes(os.path.join(d, version, "model.onnx"), data)
    if config is not None:
        base.write_text(os.path.join(d, "config.yaml"), config)
        base.write_text(os.path.join(d, "labels.txt"), "".join(f"{c}\n" for c in labels))


def write_expectations(name, fixture):
    base.write_fixture(os.path.join(SHOP, "expectations", f"{name}.json"), fixture,
                       rows_keys={"raw_features", "expected_probabilities"})


def f32_run(sess, normalise, rows):
    x = np.array(rows, dtype=np.float64)
    label, proba = sess.run(["label", "probabilities"], {"input": normalise(x)})
    return label, proba


def main():
    rng = np.random.default_rng(SEED)
    out = {}

    # --- recommendations: MLP on min-max features (bounds: the training split) ---------
    x, y = gen_recommendations(rng, 5000)
    train, test = split(rng, len(y), np.arange(len(y)))
    lo = x[train].astype(F32).min(axis=0)
    hi = x[train].astype(F32).max(axis=0)
    rec_norm = (lambda v: base.minmax_normalise(v, lo, hi))
    model, data = fit_export(
        "recommendations",
        MLPClassifier(hidden_layer_sizes=(16,), alpha=1e-3, max_iter=600, random_state=SEED),
        rec_norm(x[train]), y[train], 2,
        "onnx-sidecar shop: P(purchase | user, product), examples/shop/training/train.py")
    params = {"minmax": {"min": [base.exact(v) for v in lo], "max": [base.exact(v) for v in hi]}}
    fixture, rec_sess = evaluate("recommendations", "1", model, data, rec_norm, x[test], y[test],
                                 ["no_purchase", "purchase"], params, RECOMMENDATIONS_FEATURES,
                                 binary_metrics)
    write_model("recommendations", data, minmax_block(
        "recommendations", lo, hi, "min/max: the training split's."), ["no_purchase", "purchase"])
    write_expectations("recommendations", fixture)
    out["recommendations"] = fixture

    # --- search: MLP on z-scored features, graded relevance 0..3 ----------------------
    x, y, groups = gen_search(rng, 500, 10)
    train, test = split(rng, 500, groups)
    mean = x[train].mean(axis=0).astype(F32)
    std = x[train].std(axis=0).astype(F32)
    search_norm = (lambda v: base.zscore_normalise(v, mean, std))
    model, data = fit_export(
        "search",
        MLPClassifier(hidden_layer_sizes=(24,), alpha=1e-3, max_iter=800, random_state=SEED),
        search_norm(x[train]), y[train], 4,
        "onnx-sidecar shop: relevance grade of (query, product), examples/shop/training/train.py")

    def search_metrics(yt, proba, g):
        score = proba @ np.arange(4)
        return {"ndcg_at_5": round(ndcg_at(5, g, yt, score), 6)}

    params = {"zscore": {"mean": [base.exact(v) for v in mean], "std": [base.exact(v) for v in std]}}
    fixture, search_sess = evaluate("search", "1", model, data, search_norm, x[test], y[test],
                                    ["0", "1", "2", "3"], params, search_features.FEATURES,
                                    search_metrics, groups[test])
    fixture["score_note"] = "the service's score = sum over grades k of k x probabilities[k]"
    write_model("search", data, zscore_block(
        "search", mean, std, "mean/std (ddof 0): the training split's."), ["0", "1", "2", "3"])
    write_expectations("search", fixture)

    # --- ads: logistic regression (v1) and a small MLP on 3x the data (v2) -------------
    lo_ads = np.array(ADS_BOUNDS[0], dtype=F32)
    hi_ads = np.array(ADS_BOUNDS[1], dtype=F32)
    ads_norm = (lambda v: base.minmax_normalise(v, lo_ads, hi_ads))
    ads_params = {"minmax": {"min": [base.exact(v) for v in lo_ads], "max": [base.exact(v) for v in hi_ads]}}
    x, y = gen_ads(rng, 24000)
    train, test = split(rng, len(y), np.arange(len(y)))
    test_idx = np.flatnonzero(test)[:1500]  # held-out rows written to the fixture
    v1_train = np.flatnonzero(train)[:6000]
    v2_train = np.flatnonzero(train)
    ads_config = minmax_block(
        "ads", lo_ads, hi_ads,
        "min/max: the documented\n# domain of each feature (shared by every version).")
    model, data = fit_export(
        "ads", LogisticRegression(C=1.0, max_iter=2000, random_state=SEED),
        ads_norm(x[v1_train]), y[v1_train], 2,
        "onnx-sidecar shop: P(click | impression) v1, examples/shop/training/train.py")
    fixture, ads_sess = evaluate("ads", "1", model, data, ads_norm, x[test_idx], y[test_idx],
                                 ["no_click", "click"], ads_params, ADS_FEATURES, binary_metrics)
    write_model("ads", data, ads_config, ["no_click", "click"])
    write_expectations("ads", fixture)

    model2, data2 = fit_export(
        "ads", MLPClassifier(hidden_layer_sizes=(16,), alpha=1e-3, max_iter=600, random_state=SEED + 2),
        ads_norm(x[v2_train]), y[v2_train], 2,
        "onnx-sidecar shop: P(click | impression) v2, examples/shop/training/train.py")
    fixture2, ads2_sess = evaluate("ads-v2", "2", model2, data2, ads_norm, x[test_idx], y[test_idx],
                                   ["no_click", "click"], ads_params, ADS_FEATURES, binary_metrics)
    write_model("ads", data2, None, None, repo="models-v2", version="2")
    write_expectations("ads-v2", fixture2)

    # --- the demo shop and what each service answers for the demo requests -------------
    catalog = {
        "note": "Generated by examples/shop/training/train.py. Demo data: products, users, ads.",
        "products": [dict(zip(["id", "name", "category", "price_eur", "rating", "reviews", "ctr_30d",
                               "days_listed", "tags"], p)) for p in PRODUCTS],
        "users": [dict(zip(["id", "name", "age", "avg_order_eur", "sessions_30d", "affinity"], u)) for u in USERS],
        "ads": [dict(zip(["id", "advertiser", "title", "category", "bid_eur", "hist_ctr"], a)) for a in ADS],
    }
    base.write_text(os.path.join(SHOP, "catalog.json"), json.dumps(catalog, indent=1) + "\n")

    users = {u[0]: u for u in USERS}
    products = {p[0]: p for p in PRODUCTS}
    index = search_features.Index(catalog["products"])
    demos = []
    min_gap = {"recommendations": 1.0, "search": 1.0, "ads": 1.0, "ads_v2": 1.0}

    def gap(key, sorted_scores, k):
        """Smallest difference between neighbours in the top k and at the cut: how far
        a ranking is from a tie (float32 noise between ONNX Runtime builds is ~1e-7)."""
        for i in range(min(k, len(sorted_scores) - 1)):
            min_gap[key] = min(min_gap[key], float(sorted_scores[i] - sorted_scores[i + 1]))

    for req in DEMO_REQUESTS:
        user = users[req["user"]]
        page = products[req["product"]]
        # recommendations: every product but the one on the page, by P(purchase)
        cands = [p for p in PRODUCTS if p[0] != page[0]]
        _, proba = f32_run(rec_sess, rec_norm, [recommendations_row(user, p) for p in cands])
        scores = proba[:, 1]
        order = np.argsort(-scores, kind="stable")
        gap("recommendations", scores[order], RECOMMENDATIONS_LIMIT)
        recs = [{"id": cands[i][0], "score": base.short(scores[i])} for i in order[:RECOMMENDATIONS_LIMIT]]
        # search: first-stage candidates re-ranked by expected grade
        scands = index.candidates(req["q"])
        rows = [index.features(req["q"], p) for p in scands]
        _, proba = f32_run(search_sess, search_norm, rows)
        sscores = (proba.astype(np.float64) @ np.arange(4)).astype(np.float64)
        sorder = np.argsort(-sscores, kind="stable")
        gap("search", sscores[sorder], min(SEARCH_LIMIT, len(scands)))
        results = [{"id": scands[i]["id"], "score": round(float(sscores[i]), 6)} for i in sorder[:SEARCH_LIMIT]]
        # ads: every ad in slot 1, the highest eCPM = P(click) x bid wins
        ad_answers = {}
        for key, sess in (("ads", ads_sess), ("ads_v2", ads2_sess)):
            _, proba = f32_run(sess, ads_norm, [ads_row(user, a, page, req["hour"]) for a in ADS])
            p = proba[:, 1].astype(np.float64)
            ecpm = p * np.array([a[4] for a in ADS])
            aorder = np.argsort(-ecpm, kind="stable")
            gap(key, ecpm[aorder], 1)
            best = int(aorder[0])
            ad_answers[key] = {"id": ADS[best][0], "p_click": base.short(proba[best, 1]),
                               "ecpm": round(float(ecpm[best]), 6)}
        demos.append({"request": req, "recommendations": recs, "search": results,
                      "ad": ad_answers["ads"], "ad_v2": ad_answers["ads_v2"]})
    storefront = {
        "note": ("What the services answer for the storefront's demo requests (generated by "
                 "train.py from catalog.json and the models). Rankings are by score, highest "
                 "first, ties in catalog order; scores are float32 model outputs (compare with "
                 "1e-4). ad: with ads v1 serving; ad_v2: with ads v2 serving."),
        "recommendations_limit": RECOMMENDATIONS_LIMIT,
        "search_limit": SEARCH_LIMIT,
        "min_score_gap": {k: round(v, 6) for k, v in min_gap.items()},
        "demos": demos,
    }
    base.write_text(os.path.join(SHOP, "expectations", "storefront.json"),
                    json.dumps(storefront, indent=1) + "\n")
    print("demo: smallest score gap between ranked neighbours:", storefront["min_score_gap"])
    for d in demos:
        print(" ", d["request"]["user"], [r["id"] for r in d["recommendations"]],
              [r["id"] for r in d["search"]], d["ad"]["id"], d["ad_v2"]["id"])


if __name__ == "__main__":
    main()
