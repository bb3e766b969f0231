"""Rank the records that still need a human, learning from the humans' decisions so far.

With both includes and excludes decided by humans, a linear SVM on TF-IDF word 1-2-grams (title
counted twice) is fitted on them and scores the rest, as ASReview's default model (ELAS u4)
does; before that (cold start) records are ranked by the machine's own P(RCT).

The TF-IDF vocabulary and weights come from *all* records, labelled or not: the pending texts
are at hand anyway, and a vocabulary learnt from a handful of labelled records cannot see the
words that set the next relevant record apart.

The same model drives :func:`simulate_screening`, which replays a finished review (labels known)
the way ``asreview simulate`` does, so :func:`wss_at` and :func:`recall_at` can measure it
(``scripts/eval_ranking.py``).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import sparse

from reviewpipe.dedupe import load_canonical
from reviewpipe.protocol import Protocol
from reviewpipe.runs import Run

# Tuned on SYNERGY by scripts/eval_ranking.py (means over 8 prior draws; ASReview tuned ELAS u4
# on the same collection): C in 0.3-1 and a relevant:irrelevant weight ratio of 4-20 were all
# within noise of each other; counting the title twice gained ~0.02-0.03 WSS@95.
SVM_C = 0.3
RELEVANT_WEIGHT_RATIO = 10.0


def record_text(title: str | None, abstract: str | None) -> str:
    """The text the ranker reads: title twice, then abstract.

    Titles are short and chosen to name the topic, so their words deserve more weight than the
    abstract's.
    """
    title = (title or "").strip()
    return f"{title} {title} {abstract or ''}".strip()


def text_features(texts: Sequence[str]) -> sparse.csr_matrix:
    """TF-IDF word 1-2-grams (sublinear tf, terms in > 95% of records dropped), one row a text.

    Raises
    ------
    ValueError
        When no text has a usable word (sklearn's "empty vocabulary").
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    # max_df is a share; on a tiny corpus it could drop every term, so it is only applied when
    # there are enough records for "95% of them" to mean something.
    max_df = 0.95 if len(texts) >= 20 else 1.0
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, max_df=max_df)
    return vectorizer.fit_transform(list(texts)).tocsr()


def relevance_scores(features_labelled: Any, labels: Sequence[int], features_pending: Any, *,
                     random_state: int = 0) -> np.ndarray:
    """Signed distances from a weighted linear SVM fitted on the labelled rows (higher first).

    Both classes must be present in ``labels``.
    """
    from sklearn.svm import LinearSVC

    y = np.asarray(labels, dtype=int)
    n_relevant = int(y.sum())
    n_irrelevant = len(y) - n_relevant
    if not n_relevant or not n_irrelevant:
        raise ValueError("relevance_scores needs both relevant and irrelevant labelled records")
    # Relevant records are rare and missing one costs more than reading an extra irrelevant one,
    # so the relevant class as a whole weighs RELEVANT_WEIGHT_RATIO times the irrelevant class;
    # weights are rescaled to mean 1 so that C keeps its meaning as the labelled set grows.
    weights = np.where(y == 1, 1.0, n_relevant / (RELEVANT_WEIGHT_RATIO * n_irrelevant))
    weights *= len(y) / weights.sum()
    model = LinearSVC(C=SVM_C, random_state=random_state)
    model.fit(features_labelled, y, sample_weight=weights)
    return model.decision_function(features_pending)


def rank_for_human(texts_labelled: list[str], labels: list[int], texts_pending: list[str],
                   fallback: list[float], *, random_state: int = 0) -> list[float]:
    """Relevance scores in (0, 1) for the pending texts (higher first).

    Returns ``fallback`` unchanged until both classes have been labelled, or when the texts have
    no usable words. Scores are a monotone squashing of SVM margins: an order, not probabilities.
    """
    if len(set(labels)) < 2 or not texts_pending:
        return list(fallback)
    try:
        features = text_features(list(texts_labelled) + list(texts_pending))
    except ValueError:  # empty vocabulary: nothing to learn from
        return list(fallback)
    n = len(texts_labelled)
    margins = relevance_scores(features[:n], labels, features[n:], random_state=random_state)
    return [float(s) for s in 1.0 / (1.0 + np.exp(-margins))]


def simulate_screening(features: Any, labels: Sequence[int], prior_idx: Sequence[int], *,
                       random_state: int = 0, retrain_every: int = 1,
                       retrain_every_from: int = 100) -> list[int]:
    """Replay screening of a labelled collection; the order in which records get screened.

    The ``prior_idx`` records are screened first (ASReview's "prior knowledge"); then the model
    is fitted on the screened records, the top-ranked unscreened record is screened (its label
    revealed), and so on until every relevant record is found, as ``asreview simulate`` stops
    by default. Remaining records follow in the last ranking's order, which leaves every recall
    metric unchanged.

    Parameters
    ----------
    features
        One row per record (e.g. :func:`text_features`), fitted on all records as ASReview does.
    labels
        1 relevant, 0 irrelevant, one per record.
    prior_idx
        Row numbers screened before any model is fitted.
    random_state
        Passed to the classifier.
    retrain_every, retrain_every_from
        Refit after every record until ``retrain_every_from`` records are screened, then after
        every ``retrain_every`` records (1: always, as ASReview does); between refits the
        previous ranking is followed.

    Returns
    -------
    list of int
        A permutation of ``range(len(labels))``: priors first, in the given order.
    """
    y = np.asarray(labels, dtype=int)
    n = len(y)
    if retrain_every < 1:
        raise ValueError("retrain_every must be >= 1")
    if len(set(prior_idx)) != len(prior_idx) or not all(0 <= i < n for i in prior_idx):
        raise ValueError("prior_idx must be distinct row numbers")
    order = [int(i) for i in prior_idx]
    screened = np.zeros(n, dtype=bool)
    screened[order] = True
    to_find = int(y.sum()) - int(y[order].sum())
    queue: deque[int] = deque()  # the current ranking's unscreened records, best first
    since_fit = 0
    while to_find > 0 and len(order) < n:
        due = len(order) < retrain_every_from or since_fit >= retrain_every
        if not queue or due:
            queue = deque(_rank_pool(features, y, order, screened, random_state))
            since_fit = 0
        record = queue.popleft()
        order.append(record)
        screened[record] = True
        to_find -= int(y[record])
        since_fit += 1
    # The last ranking holds exactly the unscreened records; with no ranking yet, row order.
    order.extend(queue if queue else np.flatnonzero(~screened).tolist())
    return order


def _rank_pool(features: Any, y: np.ndarray, order: list[int], screened: np.ndarray,
               random_state: int) -> list[int]:
    pool = np.flatnonzero(~screened)
    labelled = np.asarray(order)
    if len(set(y[labelled].tolist())) < 2:
        # Nothing to learn from yet: top-down, as ASReview does without both classes.
        return pool.tolist()
    scores = relevance_scores(features[labelled], y[labelled], features[pool],
                              random_state=random_state)
    # Ties go to the lower row number, as in ASReview's stable argsort.
    return pool[np.lexsort((pool, -scores))].tolist()


def _relevant_positions(labels_in_order: Sequence[int]) -> np.ndarray:
    y = np.asarray(labels_in_order, dtype=int)
    if not y.sum():
        raise ValueError("no relevant record: recall is undefined")
    return np.flatnonzero(y == 1) + 1  # 1-based: records screened when each was found


def wss_at(labels_in_order: Sequence[int], recall: float = 0.95) -> float:
    """Work saved over sampling at ``recall`` (Cohen et al. 2006).

    ``(N - n) / N - (1 - recall)``, where ``n`` is the number of records screened, in this
    order, until ``ceil(recall * relevant)`` relevant records were found; ``N`` all records.
    Random order saves 0 on average; the best possible is ``1 - relevant_needed / N - (1 -
    recall)``.
    """
    if not 0 < recall <= 1:
        raise ValueError("recall must be in (0, 1]")
    positions = _relevant_positions(labels_in_order)
    # The epsilon keeps 0.95 * 20 = 19.000000000000004 from asking for a 20th record.
    needed = max(1, math.ceil(recall * len(positions) - 1e-9))
    n_total = len(labels_in_order)
    return (n_total - int(positions[needed - 1])) / n_total - (1 - recall)


def recall_at(labels_in_order: Sequence[int], k: int) -> float:
    """Share of the relevant records found among the first ``k`` screened."""
    if k < 0:
        raise ValueError("k must be >= 0")
    positions = _relevant_positions(labels_in_order)
    return float(np.sum(positions <= k)) / len(positions)


def next_for_human(protocol: Protocol, run: Run, n: int) -> list[dict[str, Any]]:
    """The next ``n`` clusters needing a human, most likely includes first."""
    screening = run.read_csv("screening.csv", "screen")
    canonical = {c["cluster_id"]: c for c in load_canonical(run)}

    def text(cluster_id: str) -> str:
        record = canonical[cluster_id]
        return record_text(record.get("title"), record.get("abstract"))

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
