"""Features of one (query, product) pair for the search re-ranker: the ONE definition,
used by the search service at request time and by examples/shop/training/train.py to
write the demo expectations (training data is drawn from the same definitions, see
train.py's generator). Standard library only.

The eight features, in the order of the model's input columns:

  0 bm25           BM25 (k1 1.2, b 0.75) of the query terms in the product's title
                   and tags, over the catalog as the corpus
  1 title_match    share of the query's terms that occur in the title (0..1)
  2 category_match 1 if the query names the product's category (a keyword of
                   CATEGORY_WORDS), else 0
  3 rating         average review stars (1..5)
  4 log_reviews    log10(1 + number of reviews)
  5 price_eur      price in euros
  6 ctr_30d        share of the product's search impressions clicked in 30 days
  7 days_listed    days since the product was listed

The model's config.yaml z-scores every column (mean/std of the training split).
"""
import math
import re

FEATURES = ["bm25", "title_match", "category_match", "rating", "log_reviews",
            "price_eur", "ctr_30d", "days_listed"]

CATEGORY_WORDS = {
    "running": {"running", "run", "runner", "jogging", "marathon"},
    "outdoor": {"outdoor", "hiking", "camping", "trek", "trekking"},
    "kitchen": {"kitchen", "cooking", "cook", "baking", "chef"},
    "books": {"book", "books", "novel", "reading", "guide"},
    "electronics": {"electronics", "audio", "gadget", "tech", "wireless"},
    "garden": {"garden", "gardening", "plants", "plant", "lawn"},
}

K1 = 1.2
B = 0.75


def tokens(text):
    return re.findall(r"[a-z0-9]+", text.lower())


def query_terms(query):
    """Distinct terms, in order of first appearance."""
    seen = []
    for t in tokens(query):
        if t not in seen:
            seen.append(t)
    return seen


def query_category(terms):
    for category in sorted(CATEGORY_WORDS):
        if any(t in CATEGORY_WORDS[category] for t in terms):
            return category
    return None


class Index:
    """BM25 statistics of the catalog's documents (title + tags)."""

    def __init__(self, products):
        self.products = products
        self.docs = {p["id"]: tokens(p["name"] + " " + " ".join(p["tags"])) for p in products}
        self.n = len(products)
        self.avgdl = sum(len(d) for d in self.docs.values()) / self.n
        self.df = {}
        for d in self.docs.values():
            for t in set(d):
                self.df[t] = self.df.get(t, 0) + 1

    def bm25(self, terms, product_id):
        doc = self.docs[product_id]
        score = 0.0
        for t in terms:
            tf = doc.count(t)
            if tf == 0:
                continue
            df = self.df[t]
            idf = math.log(1.0 + (self.n - df + 0.5) / (df + 0.5))
            score += idf * tf * (K1 + 1) / (tf + K1 * (1 - B + B * len(doc) / self.avgdl))
        return score

    def candidates(self, query):
        """Products sharing at least one term with the query (the first stage), in catalog order."""
        terms = query_terms(query)
        return [p for p in self.products if any(t in self.docs[p["id"]] for t in terms)]

    def features(self, query, product):
        terms = query_terms(query)
        title = set(tokens(product["name"]))
        title_match = (sum(1 for t in terms if t in title) / len(terms)) if terms else 0.0
        category = query_category(terms)
        return [
            self.bm25(terms, product["id"]),
            title_match,
            1.0 if category == product["category"] else 0.0,
            float(product["rating"]),
            math.log10(1 + product["reviews"]),
            float(product["price_eur"]),
            float(product["ctr_30d"]),
            float(product["days_listed"]),
        ]
