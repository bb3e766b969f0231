"""Rank the records that still need a human, learning from the humans' decisions so far.

With both includes and excludes decided by humans, a TF-IDF + logistic regression model (fixed
random_state) is fitted on them and scores the rest, as ASReview does; before that (cold start)
records are ranked by the machine's own P(RCT).
"""

from __future__ import annotations

from typing import Any

from reviewpipe.dedupe import load_canonical
from reviewpipe.protocol import Protocol
from reviewpipe.runs import Run


def rank_for_human(texts_labelled: list[str], labels: list[int], texts_pending: list[str],
                   fallback: list[float], *, random_state: int = 0) -> list[float]:
    """Relevance scores for the pending texts (higher first)."""
    if len(set(labels)) < 2:
        return list(fallback)
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    features = vectorizer.fit_transform(texts_labelled)
    model = LogisticRegression(class_weight="balanced", max_iter=1000,
                               random_state=random_state)
    model.fit(features, labels)
    return [float(p) for p in model.predict_proba(vectorizer.transform(texts_pending))[:, 1]]


def next_for_human(protocol: Protocol, run: Run, n: int) -> list[dict[str, Any]]:
    """The next ``n`` clusters needing a human, most likely includes first."""
    screening = run.read_csv("screening.csv", "screen")
    canonical = {c["cluster_id"]: c for c in load_canonical(run)}

    def text(cluster_id: str) -> str:
        record = canonical[cluster_id]
        return f"{record.get('title') or ''} {record.get('abstract') or ''}"

    decided = [r for r in screening if r["decided_by"].startswith("human")
               and r["decision"] in ("include", "exclude")]
    pending = [r for r in screening if r["decision"] == "uncertain"]
    scores = rank_for_human([text(r["cluster_id"]) for r in decided],
                            [int(r["decision"] == "include") for r in decided],
                            [text(r["cluster_id"]) for r in pending],
                            [float(r["p_rct"] or 0) for r in pending],
                            random_state=protocol.seed)
    ranked = sorted(zip(scores, pending, strict=True),
                    key=lambda pair: (-pair[0], pair[1]["cluster_id"]))
    return [{"cluster_id": row["cluster_id"], "score": score, "title": row["title"],
             "doubt": row["doubt"]} for score, row in ranked[:n]]
