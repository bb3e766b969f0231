"""P(record reports an RCT) from its title and abstract, shipped as JSON and scored with numpy.

`RCTTextModel` is a scikit-learn estimator: TF-IDF blocks (lowercase, sublinear tf, l2 norm per
block) of word n-grams, of *prefix* n-grams (each word token cut to its first ``prefix_len``
characters, a cheap stemmer: "randomised", "randomized", "randomly" all give "rando") and,
optionally, of ``char_wb`` n-grams, feeding an equal-weight blend of two L2 logistic
regressions on the same features: a plain one and one on features scaled by their
naive-Bayes log-count ratios (NBSVM, Wang & Manning 2012). Both members are linear in the
features, so the blend is one linear model: one coefficient vector, one intercept.
`RCTTextModel.to_json` writes the vocabularies, idf vectors, blended coefficients, intercept,
params, threshold and model card as plain JSON. `from_json` and `load_default_model` rebuild an
`RCTScorer` that re-implements the TF-IDF transform with numpy and scipy.sparse, so loading a
model never unpickles anything and runs no code from the file (sklearn's persistence docs:
pickles "can execute arbitrary code").

The text of a record is ``f"{title} {abstract}"`` (see `record_text`), as at training time.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from importlib import resources
from itertools import count, repeat
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from reviewpipe.errors import InputError

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "RCTScorer",
    "RCTTextModel",
    "from_json",
    "load_default_model",
    "record_text",
]

FORMAT = "reviewpipe.rct_text_model"
# 2 added the prefix block; version 1 files (word and char blocks only) still load.
FORMAT_VERSION = 2
_READABLE_VERSIONS = (1, 2)
# sklearn's default token pattern; the scorer supports this one only, so a model file cannot
# smuggle in a regex of its own.
TOKEN_PATTERN = r"(?u)\b\w\w+\b"
_TOKEN_RE = re.compile(TOKEN_PATTERN)
_SENTINEL = -2
_SIG_DIGITS = 7
# Docs per scoring chunk: bounds memory (~1.5k char n-gram entries per abstract) and gives the
# threads work units.
_CHUNK = 2048
# Docs whose words are factorised together; bounds the Python word lists held at once.
_BATCH = 16384
_DEFAULT_RESOURCE = "data/design_model.json"


def record_text(title: str | None, abstract: str | None) -> str:
    """The text the model reads: title and abstract joined by one space."""
    return f"{title or ''} {abstract or ''}"


# --------------------------------------------------------------------------------------------
# The estimator
# --------------------------------------------------------------------------------------------


class RCTTextModel(ClassifierMixin, BaseEstimator):
    """TF-IDF (word, prefix and optionally char_wb n-grams) and a blend of two logistic
    regressions: P(text is an RCT).

    The defaults are the variant that won the dev-split CV of ``scripts/train_design_model.py``
    (out-of-fold precision at recall 0.99, among variants fast enough to score >= 10k records/s;
    see the model card).

    Parameters
    ----------
    ngram_range : tuple of int, default=(1, 2)
        Word n-gram range, ``1 <= lo <= hi <= 3``.
    min_df : int, default=2
        Minimum document frequency of a word, prefix or char n-gram.
    max_features : int or None, default=10000
        Word n-grams kept, by corpus frequency.
    prefix_len : int or None, default=5
        Length of the prefix block's tokens: each word token (sklearn's token pattern) cut to
        its first ``prefix_len`` characters, ``2 <= prefix_len <= 32``; None for no prefix
        block.
    prefix_ngram_range : tuple of int, default=(1, 1)
        Prefix n-gram range, ``1 <= lo <= hi <= 3``.
    prefix_max_features : int or None, default=None
        Prefix n-grams kept, by corpus frequency.
    char_ngram_range : tuple of int or None, default=None
        ``char_wb`` n-gram range, ``1 <= lo <= 3``, ``lo <= hi <= 6``; None for no char block.
        ``lo <= 3`` keeps sklearn's short-word special case out of reach (a padded word is
        at least 3 characters), so the numpy scorer reproduces it exactly.
    char_max_features : int or None, default=30000
        Char n-grams kept, by corpus frequency.
    C : float, default=64.0
        Inverse L2 regularisation strength of the plain logistic regression.
    nb_C : float or None, default=64.0
        Inverse L2 regularisation strength of the logistic regression on naive-Bayes-scaled
        features; None for the plain logistic regression alone. With it, the model's log-odds
        are the mean of the two members' log-odds.
    nb_alpha : float, default=0.1
        Smoothing of the naive-Bayes log-count ratios, computed on binarised features:
        ``r = log((alpha + f1) / |alpha + f1|_1) - log((alpha + f0) / |alpha + f0|_1)``, with
        ``f1``, ``f0`` the numbers of positive and negative texts holding each feature.
    class_weight : {"balanced"}, dict or None, default="balanced"
        Passed to both `LogisticRegression` members.
    max_iter : int, default=3000
        lbfgs iterations.
    threshold : float, default=0.5
        ``predict`` says the positive class when ``P >= threshold``; stored in the JSON.
    random_state : int, RandomState or None, default=0
        Passed to `LogisticRegression`; lbfgs is deterministic anyway. Pass an int for
        reproducible output across multiple function calls.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        Class labels; the second is the positive class ("reports an RCT").
    word_vectorizer_ : TfidfVectorizer
    prefix_vectorizer_ : TfidfVectorizer or None
    char_vectorizer_ : TfidfVectorizer or None
    classifier_ : LogisticRegression
        The plain member.
    nb_classifier_ : LogisticRegression or None
        The member fitted on ``X * nb_ratio_``.
    nb_ratio_ : ndarray of shape (n_features,) or None
        Naive-Bayes log-count ratio of each feature.
    coef_ : ndarray of shape (1, n_features)
        Blended coefficients: the log-odds are ``X @ coef_[0] + intercept_[0]``.
    intercept_ : ndarray of shape (1,)

    See Also
    --------
    RCTScorer : the numpy-only scorer that `from_json` builds from the saved model.

    Examples
    --------
    >>> m = RCTTextModel(min_df=1).fit(
    ...     ["patients were randomised to drug or placebo", "we report a case of gout"], [1, 0])
    >>> m.predict(["a randomised placebo trial"]).tolist()
    [1]
    """

    def __init__(
        self,
        *,
        ngram_range: tuple[int, int] = (1, 2),
        min_df: int = 2,
        max_features: int | None = 10000,
        prefix_len: int | None = 5,
        prefix_ngram_range: tuple[int, int] = (1, 1),
        prefix_max_features: int | None = None,
        char_ngram_range: tuple[int, int] | None = None,
        char_max_features: int | None = 30000,
        C: float = 64.0,
        nb_C: float | None = 64.0,
        nb_alpha: float = 0.1,
        class_weight: str | dict | None = "balanced",
        max_iter: int = 3000,
        threshold: float = 0.5,
        random_state: int | np.random.RandomState | None = 0,
    ) -> None:
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.max_features = max_features
        self.prefix_len = prefix_len
        self.prefix_ngram_range = prefix_ngram_range
        self.prefix_max_features = prefix_max_features
        self.char_ngram_range = char_ngram_range
        self.char_max_features = char_max_features
        self.C = C
        self.nb_C = nb_C
        self.nb_alpha = nb_alpha
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.threshold = threshold
        self.random_state = random_state

    def __sklearn_tags__(self):
        # Raw text in, binary out: sklearn's numeric-array checks do not apply.
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.classifier_tags.multi_class = False
        return tags

    def fit(self, X: Iterable[str], y: Iterable[Any]) -> RCTTextModel:
        """Fit the vectorizers and the logistic regressions on texts ``X`` and binary ``y``.

        Parameters
        ----------
        X : iterable of str
            One text per record, ``record_text(title, abstract)``.
        y : array-like of shape (n_texts,)
            Two classes; the larger label (by sort order) is the positive one.

        Returns
        -------
        self : RCTTextModel
        """
        self._check_params()
        texts = _as_texts(X, "X")
        y_arr = np.asarray(list(y) if not hasattr(y, "__len__") else y)
        if y_arr.ndim != 1 or len(y_arr) != len(texts):
            raise ValueError(f"y must be 1-D with one label per text ({len(texts)}); "
                             f"got shape {y_arr.shape}.")
        check_classification_targets(y_arr)
        if np.unique(y_arr).size != 2:
            raise ValueError(f"RCTTextModel is a binary classifier; y has "
                             f"{np.unique(y_arr).size} class(es).")
        self.word_vectorizer_ = TfidfVectorizer(
            lowercase=True, token_pattern=TOKEN_PATTERN, ngram_range=tuple(self.ngram_range),
            min_df=self.min_df, max_features=self.max_features, sublinear_tf=True,
            dtype=np.float64)
        blocks = [self.word_vectorizer_.fit_transform(texts)]
        self.prefix_vectorizer_ = None
        if self.prefix_len is not None:
            self.prefix_vectorizer_ = TfidfVectorizer(
                lowercase=True, tokenizer=_PrefixTokenizer(int(self.prefix_len)),
                token_pattern=None, ngram_range=tuple(self.prefix_ngram_range),
                min_df=self.min_df, max_features=self.prefix_max_features, sublinear_tf=True,
                dtype=np.float64)
            blocks.append(self.prefix_vectorizer_.fit_transform(texts))
        self.char_vectorizer_ = None
        if self.char_ngram_range is not None:
            self.char_vectorizer_ = TfidfVectorizer(
                lowercase=True, analyzer="char_wb", ngram_range=tuple(self.char_ngram_range),
                min_df=self.min_df, max_features=self.char_max_features, sublinear_tf=True,
                dtype=np.float64)
            blocks.append(self.char_vectorizer_.fit_transform(texts))
        features = sp.hstack(blocks, format="csr")
        self.classifier_ = self._logistic(self.C).fit(features, y_arr)
        self.classes_ = self.classifier_.classes_
        coef = self.classifier_.coef_[0].copy()
        intercept = float(self.classifier_.intercept_[0])
        self.nb_classifier_ = self.nb_ratio_ = None
        if self.nb_C is not None:
            self.nb_ratio_ = _nb_ratio(features, y_arr == self.classes_[1], self.nb_alpha)
            self.nb_classifier_ = self._logistic(self.nb_C).fit(
                features @ sp.diags(self.nb_ratio_), y_arr)
            coef = (coef + self.nb_classifier_.coef_[0] * self.nb_ratio_) / 2.0
            intercept = (intercept + float(self.nb_classifier_.intercept_[0])) / 2.0
        self.coef_ = coef[np.newaxis, :]
        self.intercept_ = np.array([intercept])
        return self

    def _logistic(self, C: float) -> LogisticRegression:
        return LogisticRegression(C=C, class_weight=self.class_weight, solver="lbfgs",
                                  max_iter=self.max_iter, random_state=self.random_state)

    def _features(self, X: Iterable[str]) -> sp.csr_matrix:
        check_is_fitted(self)
        texts = _as_texts(X, "X")
        blocks = [self.word_vectorizer_.transform(texts)]
        for vectorizer in (self.prefix_vectorizer_, self.char_vectorizer_):
            if vectorizer is not None:
                blocks.append(vectorizer.transform(texts))
        return sp.hstack(blocks, format="csr")

    def decision_function(self, X: Iterable[str]) -> np.ndarray:
        """Log-odds of the positive class, shape (n_texts,)."""
        features = self._features(X)  # checks fitted first
        return features @ self.coef_[0] + self.intercept_[0]

    def predict_proba(self, X: Iterable[str]) -> np.ndarray:
        """Class probabilities, shape (n_texts, 2); column 1 is P(RCT)."""
        p = expit(self.decision_function(X))
        return np.column_stack([1.0 - p, p])

    def predict(self, X: Iterable[str]) -> np.ndarray:
        """``classes_[1]`` where P(RCT) >= ``threshold``, else ``classes_[0]``."""
        p = self.predict_proba(X)[:, 1]
        return self.classes_[(p >= self.threshold).astype(int)]

    # ---- persistence -----------------------------------------------------------------------

    def to_dict(self, *, card: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The JSON-ready model: vocabularies, idf, coefficients, params, threshold, card."""
        check_is_fitted(self)
        coef = self.coef_[0]
        blocks: dict[str, Any] = {}
        start = 0
        for key, analyzer, vectorizer in (("word", "word", self.word_vectorizer_),
                                          ("prefix", "word", self.prefix_vectorizer_),
                                          ("char", "char_wb", self.char_vectorizer_)):
            if vectorizer is None:
                blocks[key] = None
                continue
            stop = start + len(vectorizer.vocabulary_)
            blocks[key] = _block_dict(analyzer, vectorizer, coef[start:stop],
                                      prefix_len=self.prefix_len if key == "prefix" else None)
            start = stop
        payload: dict[str, Any] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "version": "",
            "classes": [c.item() if hasattr(c, "item") else c for c in self.classes_],
            "threshold": _round(self.threshold),
            "intercept": _round(self.intercept_[0]),
            "params": _json_params(self.get_params(deep=False)),
            **blocks,
            "card": dict(card or {}),
        }
        payload["version"] = _version(payload)
        return payload

    def to_json(self, path: str | Path, *, card: Mapping[str, Any] | None = None) -> Path:
        """Write the model as JSON (no pickle); floats keep 7 significant digits.

        Returns
        -------
        path : Path
            The file written; a temp file is renamed into place, so readers never see half.
        """
        return _write_json(self.to_dict(card=card), Path(path))

    def _check_params(self) -> None:
        name = type(self).__name__

        def bad(param: str, rule: str) -> ValueError:
            return ValueError(f"The '{param}' parameter of {name} must be {rule}. "
                              f"Got {getattr(self, param)!r} instead.")

        if not _is_range(self.ngram_range, 1, 3, 3):
            raise bad("ngram_range", "a tuple (lo, hi) of ints with 1 <= lo <= hi <= 3")
        if self.prefix_len is not None and (not _is_int(self.prefix_len)
                                            or not 2 <= self.prefix_len <= 32):
            raise bad("prefix_len", "None or an int in the range [2, 32]")
        if not _is_range(self.prefix_ngram_range, 1, 3, 3):
            raise bad("prefix_ngram_range", "a tuple (lo, hi) of ints with 1 <= lo <= hi <= 3")
        if self.char_ngram_range is not None and not _is_range(self.char_ngram_range, 1, 3, 6):
            raise bad("char_ngram_range",
                      "None or a tuple (lo, hi) of ints with 1 <= lo <= 3 and lo <= hi <= 6")
        if not _is_int(self.min_df) or self.min_df < 1:
            raise bad("min_df", "an int in the range [1, inf)")
        for param in ("max_features", "prefix_max_features", "char_max_features"):
            value = getattr(self, param)
            if value is not None and (not _is_int(value) or value < 1):
                raise bad(param, "None or an int in the range [1, inf)")
        if not _is_real(self.C) or not self.C > 0:
            raise bad("C", "a float in the range (0, inf)")
        if self.nb_C is not None and (not _is_real(self.nb_C) or not self.nb_C > 0):
            raise bad("nb_C", "None or a float in the range (0, inf)")
        if not _is_real(self.nb_alpha) or not self.nb_alpha > 0:
            raise bad("nb_alpha", "a float in the range (0, inf)")
        if not (self.class_weight is None or self.class_weight == "balanced"
                or isinstance(self.class_weight, dict)):
            raise bad("class_weight", "'balanced', a dict or None")
        if not _is_int(self.max_iter) or self.max_iter < 1:
            raise bad("max_iter", "an int in the range [1, inf)")
        if not _is_real(self.threshold) or not 0.0 <= self.threshold <= 1.0:
            raise bad("threshold", "a float in the range [0, 1]")


class _PrefixTokenizer:
    """sklearn's default tokens (of lowercased text), each cut to its first ``length`` chars."""

    def __init__(self, length: int) -> None:
        self.length = length

    def __call__(self, text: str) -> list[str]:
        k = self.length
        return [token[:k] for token in _TOKEN_RE.findall(text)]


def _nb_ratio(features: sp.csr_matrix, positive: np.ndarray, alpha: float) -> np.ndarray:
    """Naive-Bayes log-count ratio of each feature over binarised ``features``."""
    present = features.copy()
    present.eliminate_zeros()
    present.data = np.ones_like(present.data)
    pos = alpha + np.asarray(present[positive].sum(axis=0)).ravel()
    neg = alpha + np.asarray(present[~positive].sum(axis=0)).ravel()
    return np.log(pos / pos.sum()) - np.log(neg / neg.sum())


# --------------------------------------------------------------------------------------------
# The numpy scorer
# --------------------------------------------------------------------------------------------


class RCTScorer:
    """P(RCT) from a saved model, with numpy and scipy.sparse only.

    Build it with `from_json` or `load_default_model`; the payload is validated, never executed.

    Attributes
    ----------
    threshold : float
        The operating point declared in the file (a protocol may override it).
    version : str
        Model id: format version plus a hash of weights and threshold.
    card : dict
        Provenance and metrics (training data, params, CV and test metrics).
    classes : list
        ``classes[1]`` is the positive class.
    """

    def __init__(self, payload: Mapping[str, Any], *, source: str = "<dict>") -> None:
        try:
            self._load(payload)
        except (AttributeError, KeyError, TypeError, ValueError, IndexError) as exc:
            raise InputError(source, f"not a valid {FORMAT} model: {exc}") from exc

    @classmethod
    def from_json(cls, path: str | Path) -> RCTScorer:
        """Load a model file written by `RCTTextModel.to_json`."""
        path = Path(path)
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise InputError(path, f"cannot read the model file ({exc.strerror})") from exc
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(path, f"not a JSON model file ({exc})") from exc
        return cls(payload, source=str(path))

    def _load(self, payload: Mapping[str, Any]) -> None:
        if not isinstance(payload, Mapping) or payload.get("format") != FORMAT:
            raise ValueError(f"'format' must be {FORMAT!r}")
        format_version = payload.get("format_version")
        if format_version not in _READABLE_VERSIONS or isinstance(format_version, bool):
            raise ValueError(f"'format_version' {format_version!r} is not one of "
                             f"{_READABLE_VERSIONS}; refit the model with this reviewpipe")
        if format_version < 2 and payload.get("prefix") is not None:
            raise ValueError("a version 1 model has no 'prefix' block")
        self.classes = list(payload["classes"])
        if len(self.classes) != 2:
            raise ValueError("'classes' must list two labels")
        self.threshold = float(payload["threshold"])
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError("'threshold' must be in [0, 1]")
        self.intercept = float(payload["intercept"])
        self.version = str(payload["version"])
        self.card = dict(payload.get("card") or {})
        self.params = dict(payload.get("params") or {})
        self._word = _WordBlock(payload["word"])
        if self._word.prefix_len is not None:
            raise ValueError("the 'word' block takes whole tokens (no 'prefix_len')")
        self._prefix = None
        if payload.get("prefix") is not None:
            self._prefix = _WordBlock(payload["prefix"])
            if self._prefix.prefix_len is None:
                raise ValueError("the 'prefix' block needs 'prefix_len'")
        self._char = None if payload.get("char") is None else _CharBlock(payload["char"])

    def decision_function(self, texts: Iterable[str], *, n_jobs: int = 1) -> np.ndarray:
        """Log-odds of an RCT, shape (n_texts,)."""
        texts = _as_texts(texts, "texts")
        workers = _n_jobs(n_jobs)
        parts = [self._decision_batch(texts[a:b], workers) for a, b in _spans(len(texts), _BATCH)]
        return np.concatenate(parts) if parts else np.zeros(0)

    def predict_proba(self, texts: Iterable[str], *, n_jobs: int = 1) -> np.ndarray:
        """P(RCT) for each text, shape (n_texts,).

        Parameters
        ----------
        texts : iterable of str
            ``record_text(title, abstract)`` per record.
        n_jobs : int, default=1
            Threads for the per-chunk numpy work. Word-only models gain nothing from a second
            one (the Python word split dominates); char n-gram models gain ~10-15%.
        """
        return expit(self.decision_function(texts, n_jobs=n_jobs))

    def predict(self, texts: Iterable[str], *, threshold: float | None = None) -> np.ndarray:
        """``classes[1]`` where P(RCT) >= threshold (default: the file's), else ``classes[0]``."""
        cut = self.threshold if threshold is None else threshold
        p = self.predict_proba(texts)
        return np.asarray(self.classes)[(p >= cut).astype(int)]

    def _decision_batch(self, texts: list[str], workers: int) -> np.ndarray:
        words = _Words(texts)
        # One regex pass over all distinct words, split by a sentinel token: lowercased text
        # holds no ASCII capitals, so "ZZ" cannot be a real token (nor a prefix of one).
        # Tokens never cross whitespace, so this is the documents' tokenisation too.
        found = _TOKEN_RE.findall(" ZZ ".join([*words.unique, ""]))
        word_tokens, toks_per_word, word_start = self._word.tokenise(found)
        # The prefix block cuts the same tokens: one per token, laid out alike.
        prefix_tokens = None if self._prefix is None else self._prefix.tokenise(found)[0]
        char_counts = None if self._char is None else self._char.word_counts(words.unique)

        def score(span: tuple[int, int]) -> np.ndarray:
            start, stop = span
            word_ids, words_per_doc = words.docs(start, stop)
            z = np.full(stop - start, self.intercept)
            gather, doc = _token_occurrences(toks_per_word, word_start, word_ids, words_per_doc)
            z += self._word.scores(word_tokens[gather], doc, stop - start)
            if prefix_tokens is not None:
                z += self._prefix.scores(prefix_tokens[gather], doc, stop - start)
            if char_counts is not None:
                z += self._char.scores(char_counts, word_ids, words_per_doc)
            return z

        spans = _spans(len(texts), _CHUNK)
        if workers == 1 or len(spans) == 1:
            return np.concatenate([score(span) for span in spans])
        # The per-chunk work is numpy and scipy.sparse loops that release the GIL, so threads
        # overlap; the Python-level word factorisation above runs once per batch.
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return np.concatenate(list(pool.map(score, spans)))


class _Words:
    """Whitespace words of a batch of texts, factorised: each distinct word is tokenised and
    cut into char n-grams once, however often it occurs."""

    def __init__(self, texts: list[str]) -> None:
        # One split of the whole batch, documents separated by "Q": lowercased text holds no
        # ASCII capitals, so the separator cannot be a word of a document.
        flat = " Q ".join([t.lower() for t in texts]).split()
        index: dict[str, int] = {"Q": -1}
        # setdefault with a counter gives each word the position of its first occurrence.
        first = np.fromiter(map(index.setdefault, flat, count()), dtype=np.int64,
                            count=len(flat))
        separator = first == -1
        bounds = np.concatenate(([-1], np.flatnonzero(separator), [len(flat)]))
        self.words_per_doc = np.diff(bounds) - 1
        self.indptr = np.zeros(len(texts) + 1, dtype=np.int64)
        np.cumsum(self.words_per_doc, out=self.indptr[1:])
        del index["Q"]
        remap = np.empty(len(flat), dtype=np.int64)
        remap[np.fromiter(index.values(), dtype=np.int64, count=len(index))] = np.arange(
            len(index))
        self.ids = remap[first[~separator]]
        self.unique = list(index)

    def docs(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Word ids and words per document of documents ``start:stop``."""
        return (self.ids[self.indptr[start]:self.indptr[stop]],
                self.words_per_doc[start:stop])


class _Block:
    """One TF-IDF block of a saved model: vocabulary, idf and coefficients."""

    analyzer = ""

    def __init__(self, block: Mapping[str, Any]) -> None:
        if block.get("analyzer") != self.analyzer:
            raise ValueError(f"block analyzer must be {self.analyzer!r}")
        if (block.get("lowercase") is not True or block.get("sublinear_tf") is not True
                or block.get("norm") != "l2"):
            raise ValueError("only lowercase=True, sublinear_tf=True, norm='l2' are supported")
        vocabulary = block["vocabulary"]
        if not isinstance(vocabulary, Mapping):
            raise ValueError("'vocabulary' must map term to index")
        n = len(vocabulary)
        self.terms: list[str] = [""] * n
        for term, j in vocabulary.items():
            if not isinstance(j, int) or not 0 <= j < n or self.terms[j]:
                raise ValueError(f"vocabulary index of {term!r} is bad or repeated")
            if not isinstance(term, str) or not term:
                raise ValueError("vocabulary terms must be non-empty strings")
            self.terms[j] = term
        self.idf = _float_array(block["idf"], n, "idf")
        self.coef = _float_array(block["coef"], n, "coef")
        lo, hi = block["ngram_range"]
        self.ngram_range = (int(lo), int(hi))
        self.n_features = n

    def _tfidf_scores(self, counts: sp.csr_matrix) -> np.ndarray:
        """``x @ coef`` with x = l2-normalised ``(1 + log count) * idf``, as sklearn computes.

        ``counts`` (owned by the caller; CSR without repeated entries) is overwritten in place.
        """
        value = np.log(counts.data, dtype=np.float64)  # counts are float32 integers
        value += 1.0
        value *= self.idf[counts.indices]
        counts.data = value
        dot = counts @ self.coef
        np.square(value, out=value)
        norm = np.sqrt(counts @ np.ones(self.n_features))
        norm[norm == 0.0] = 1.0  # sklearn's normalize leaves an empty row at zero
        return dot / norm


class _WordBlock(_Block):
    """Word n-grams of sklearn's default token pattern (maximal runs of >= 2 word chars);
    with ``prefix_len``, of those tokens cut to their first ``prefix_len`` characters."""

    analyzer = "word"

    def __init__(self, block: Mapping[str, Any]) -> None:
        super().__init__(block)
        if block.get("token_pattern") != TOKEN_PATTERN:
            raise ValueError(f"only token_pattern {TOKEN_PATTERN!r} is supported")
        self.prefix_len = block.get("prefix_len")
        if self.prefix_len is not None and (not _is_int(self.prefix_len)
                                            or not 2 <= self.prefix_len <= 32):
            raise ValueError("'prefix_len' must be None or an int in [2, 32]")
        lo, hi = self.ngram_range
        if not 1 <= lo <= hi <= 3:
            raise ValueError("word ngram_range must satisfy 1 <= lo <= hi <= 3")
        grams = [t.split(" ") for t in self.terms]
        self.tokens: dict[str, int] = {}
        for tok in sorted({tok for g in grams for tok in g}):
            self.tokens[tok] = len(self.tokens)
        self.n_tokens = len(self.tokens)
        self._lookup = {**self.tokens, "ZZ": _SENTINEL}
        if self.n_tokens ** hi >= 2 ** 62:
            raise ValueError("too many distinct tokens to key the n-grams")
        # Token id -1 (not in the vocabulary) indexes the last slot of these arrays, which
        # says "no feature" / "cannot be here".
        self.unigram = np.full(self.n_tokens + 1, -1, dtype=np.int64)
        by_n: dict[int, tuple[list[int], list[int]]] = {n: ([], []) for n in range(2, hi + 1)}
        for j, gram in enumerate(grams):
            if not lo <= len(gram) <= hi:
                raise ValueError(f"term {self.terms[j]!r} is outside ngram_range")
            ids = [self.tokens[tok] for tok in gram]
            if len(ids) == 1:
                self.unigram[ids[0]] = j
            else:
                key = 0
                for i in ids:
                    key = key * self.n_tokens + i
                by_n[len(ids)][0].append(key)
                by_n[len(ids)][1].append(j)
        # Per n: a hash table of the n-gram keys and, per position, which tokens occur there
        # in some n-gram term (a cheap filter before the lookup).
        self.ngrams: dict[int, tuple[_KeyTable, list[np.ndarray]]] = {}
        for n, (keys, feats) in by_n.items():
            keys_arr = np.asarray(keys, dtype=np.int64)
            at = []
            for k in range(n):
                mask = np.zeros(self.n_tokens + 1, dtype=bool)
                mask[(keys_arr // self.n_tokens ** (n - 1 - k)) % self.n_tokens] = True
                mask[-1] = False
                at.append(mask)
            self.ngrams[n] = (_KeyTable(keys, feats), at)

    def tokenise(self, found: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Token ids (-1: not in the vocabulary) of each distinct word, laid end to end, with
        the count and start of each word's run.

        ``found`` holds the tokens of the distinct words, each word's followed by "ZZ"."""
        if self.prefix_len is not None:
            # "ZZ" is its own prefix (prefix_len >= 2), so the separators survive the cut.
            k = self.prefix_len
            found = [token[:k] for token in found]
        ids = np.fromiter(map(self._lookup.get, found, repeat(-1)), dtype=np.int64,
                          count=len(found))
        ends = np.flatnonzero(ids == _SENTINEL)
        toks_per_word = np.diff(ends, prepend=-1) - 1
        return ids[ids != _SENTINEL], toks_per_word, np.cumsum(toks_per_word) - toks_per_word

    def scores(self, seq: np.ndarray, doc: np.ndarray, n_docs: int) -> np.ndarray:
        """Log-odds contributions of ``n_docs`` documents whose token ids, end to end, are
        ``seq``, with ``doc`` the (sorted) document of each token."""
        total = len(seq)
        rows, cols = [], []
        lo, hi = self.ngram_range
        for n in range(lo, hi + 1):
            if total < n:
                continue
            if n == 1:
                feat = self.unigram[seq]
                hit = np.flatnonzero(feat >= 0)
                rows.append(doc[hit])
                cols.append(feat[hit])
                continue
            table, at = self.ngrams[n]
            m = total - n + 1
            ok = doc[:m] == doc[n - 1:]
            for k in range(n):
                ok &= at[k][seq[k:k + m]]
            cand = np.flatnonzero(ok)
            if not len(cand):
                continue
            key = seq[cand]
            for k in range(1, n):
                key = key * self.n_tokens + seq[cand + k]
            feat = table.lookup(key)
            found = feat >= 0
            rows.append(doc[cand[found]])
            cols.append(feat[found])
        counts = _count_matrix(rows, cols, (n_docs, self.n_features))
        return self._tfidf_scores(counts)


def _token_occurrences(toks_per_word: np.ndarray, word_start: np.ndarray, word_ids: np.ndarray,
                       words_per_doc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each token of a run of documents sits in the per-distinct-word token list, and
    the document it belongs to (``word_ids``: the documents' words, end to end)."""
    per_occurrence = toks_per_word[word_ids]
    total = int(per_occurrence.sum())
    occurrence_start = np.cumsum(per_occurrence) - per_occurrence
    gather = np.arange(total) - np.repeat(occurrence_start - word_start[word_ids],
                                          per_occurrence)
    doc_of_word = np.repeat(np.arange(len(words_per_doc)), words_per_doc)
    return gather, np.repeat(doc_of_word, per_occurrence)


class _KeyTable:
    """Open-addressing hash table from non-negative int64 keys to feature indices.

    Kept at most 1/4 full, so a vectorised lookup resolves almost every key in one probe.
    """

    _MULT = 0x9E3779B97F4A7C15  # Fibonacci hashing: the top bits of key * 2**64/phi

    def __init__(self, keys: Sequence[int], values: Sequence[int]) -> None:
        self.bits = max(4, (4 * len(keys) - 1).bit_length())
        size = 1 << self.bits
        self.keys = np.full(size, -1, dtype=np.int64)
        self.values = np.full(size, -1, dtype=np.int64)
        self.probes = 1
        for key, value in zip(keys, values, strict=True):
            slot, probes = self._slot(key), 1
            while self.keys[slot] != -1:
                slot, probes = (slot + 1) & (size - 1), probes + 1
            self.keys[slot], self.values[slot] = key, value
            self.probes = max(self.probes, probes)

    def _slot(self, key: int) -> int:
        return ((key * self._MULT) & (2 ** 64 - 1)) >> (64 - self.bits)

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """The value of each key, -1 where a key is absent."""
        out = np.full(len(keys), -1, dtype=np.int64)
        todo = np.arange(len(keys))
        slot = ((keys.astype(np.uint64) * np.uint64(self._MULT))
                >> np.uint64(64 - self.bits)).astype(np.int64)
        for _ in range(self.probes):
            held = self.keys[slot]
            hit = held == keys
            out[todo[hit]] = self.values[slot[hit]]
            going = ~hit & (held != -1)
            if not going.any():
                break
            todo, keys = todo[going], keys[going]
            slot = (slot[going] + 1) & (len(self.keys) - 1)
        return out


class _CharBlock(_Block):
    """sklearn's ``char_wb`` n-grams: windows inside each space-padded whitespace word."""

    analyzer = "char_wb"

    def __init__(self, block: Mapping[str, Any]) -> None:
        super().__init__(block)
        lo, hi = self.ngram_range
        if not (1 <= lo <= 3 and lo <= hi <= 6):
            raise ValueError("char ngram_range must satisfy 1 <= lo <= 3, lo <= hi <= 6")
        alphabet = sorted({c for t in self.terms for c in t})
        self.n_codes = len(alphabet) + 1  # code 0: a character no term contains
        dtype = np.int16 if self.n_codes < 2 ** 15 else np.int32
        self.codes = np.zeros(0x110000, dtype=dtype)
        for i, c in enumerate(alphabet, start=1):
            self.codes[ord(c)] = i
        # A trie over the terms with dense transitions; node 0 is the dead state, 1 the root.
        nodes: dict[str, int] = {"": 1}
        for term in self.terms:
            if not lo <= len(term) <= hi:
                raise ValueError(f"term {term!r} is outside ngram_range")
            for k in range(1, len(term) + 1):
                nodes.setdefault(term[:k], len(nodes) + 1)
        n_nodes = len(nodes) + 1
        if n_nodes * self.n_codes > 2 ** 31 - 1:
            raise ValueError("char vocabulary too large for the scorer")
        self.step = np.zeros((n_nodes, self.n_codes), dtype=np.int32)
        for prefix, node in nodes.items():
            if prefix:
                self.step[nodes[prefix[:-1]], self.codes[ord(prefix[-1])]] = node
        self.step = self.step.ravel()
        self.feature = np.full(n_nodes, -1, dtype=np.int64)
        for j, term in enumerate(self.terms):
            self.feature[nodes[term]] = j

    def word_counts(self, unique_words: list[str]) -> sp.csr_matrix:
        """Char n-gram counts of each distinct word, shape (n_words, n_features)."""
        if not unique_words:
            return sp.csr_matrix((0, self.n_features), dtype=np.float32)
        lo, hi = self.ngram_range
        # Each word padded on its own, as sklearn does: a window that straddles two padded
        # words holds an inner space, and no term does, so it matches nothing.
        padded = " " + "  ".join(unique_words) + " "
        cps = np.frombuffer(padded.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        codes = self.codes[cps].astype(np.int32)
        length = len(codes)
        lengths = np.fromiter(map(len, unique_words), dtype=np.int64, count=len(unique_words))
        owner = np.repeat(np.arange(len(unique_words)), lengths + 2)
        state = np.ones(length, dtype=np.int32)
        rows, cols = [], []
        for k in range(hi):
            m = length - k
            if m <= 0:
                break
            state = self.step[state[:m] * self.n_codes + codes[k:]]
            if k + 1 >= lo:
                feat = self.feature[state]
                hit = np.flatnonzero(feat >= 0)
                rows.append(owner[hit])
                cols.append(feat[hit])
        return _count_matrix(rows, cols, (len(unique_words), self.n_features))

    def scores(self, word_counts: sp.csr_matrix, word_ids: np.ndarray,
               words_per_doc: np.ndarray) -> np.ndarray:
        n_docs = len(words_per_doc)
        indptr = np.zeros(n_docs + 1, dtype=np.int64)
        np.cumsum(words_per_doc, out=indptr[1:])
        doc_words = sp.csr_matrix((np.ones(len(word_ids), dtype=np.float32), word_ids, indptr),
                                  shape=(n_docs, word_counts.shape[0]))
        # Repeated words collapse first (linear-time sum): the product has fewer terms to add.
        doc_words = doc_words + sp.csr_matrix(doc_words.shape, dtype=np.float32)
        # Summing over each document's words gives its char n-gram counts.
        counts = (doc_words @ word_counts).tocsr()
        return self._tfidf_scores(counts)


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def from_json(path: str | Path) -> RCTScorer:
    """Load a saved model as an `RCTScorer` (JSON only; nothing is unpickled or executed)."""
    return RCTScorer.from_json(path)


@lru_cache(maxsize=1)
def load_default_model() -> RCTScorer:
    """The model shipped in ``reviewpipe/data/design_model.json``, loaded once per process.

    Examples
    --------
    >>> model = load_default_model()
    >>> p = model.predict_proba(["Patients were randomly allocated to drug or placebo."])
    >>> p.shape
    (1,)
    """
    resource = resources.files("reviewpipe").joinpath(_DEFAULT_RESOURCE)
    try:
        payload = json.loads(resource.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(str(resource), f"cannot load the shipped model ({exc}); reinstall "
                         "reviewpipe or rerun scripts/train_design_model.py") from exc
    return RCTScorer(payload, source=str(resource))


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _as_texts(X: Iterable[str], name: str) -> list[str]:
    if isinstance(X, str):
        raise ValueError(f"{name} must be an iterable of texts, not a single string.")
    if hasattr(X, "ndim") and getattr(X, "ndim", 1) != 1:
        raise ValueError(f"{name} must be 1-D (one text per record); got {X.ndim} dimensions.")
    texts = list(X)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise ValueError(f"{name}[{i}] must be a str; got {type(t).__name__}. "
                             "Use record_text(title, abstract) for missing parts.")
    return texts


def _count_matrix(rows: Sequence[np.ndarray], cols: Sequence[np.ndarray],
                  shape: tuple[int, int]) -> sp.csr_matrix:
    """Counts of (row, col) pairs; each ``rows[i]`` is sorted, so it is a CSR matrix as it is.

    Adding CSR matrices that hold repeated entries takes scipy's general path, which sums
    them in linear time with a dense row accumulator: no sort, unlike ``sum_duplicates``. The
    result has no repeats (its column order within a row is arbitrary, which is fine here).
    """
    # float32 holds counts exactly (< 2**24) and halves the memory traffic.
    total = sp.csr_matrix(shape, dtype=np.float32)
    for r, c in zip(rows, cols, strict=True):
        indptr = np.zeros(shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(r, minlength=shape[0]), out=indptr[1:])
        total = total + sp.csr_matrix((np.ones(len(c), dtype=np.float32), c, indptr),
                                      shape=shape)
    return total


def _spans(n: int, size: int) -> list[tuple[int, int]]:
    """``[start, stop)`` spans of at most ``size`` items, of near-equal length."""
    parts = -(-n // size)
    bounds = [round(i * n / parts) for i in range(parts + 1)] if parts else []
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def _n_jobs(n_jobs: int) -> int:
    if not _is_int(n_jobs) or n_jobs < 1:
        raise ValueError(f"n_jobs must be an int >= 1; got {n_jobs!r}.")
    return int(n_jobs)


def _float_array(values: Any, n: int, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != (n,):
        raise ValueError(f"'{name}' must hold {n} numbers; got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"'{name}' holds a non-finite number")
    return arr


def _round(x: float) -> float:
    return float(f"{float(x):.{_SIG_DIGITS}g}")


def _rounded(values: np.ndarray) -> list[float]:
    return [float(f"{v:.{_SIG_DIGITS}g}") for v in values.tolist()]


def _block_dict(analyzer: str, vectorizer: TfidfVectorizer, coef: np.ndarray, *,
                prefix_len: int | None = None) -> dict[str, Any]:
    vocab = sorted(vectorizer.vocabulary_.items(), key=lambda kv: kv[1])
    block: dict[str, Any] = {"analyzer": analyzer, "lowercase": True, "sublinear_tf": True,
                             "norm": "l2", "ngram_range": list(vectorizer.ngram_range)}
    if analyzer == "word":
        block["token_pattern"] = TOKEN_PATTERN
    if prefix_len is not None:
        block["prefix_len"] = int(prefix_len)
    block["vocabulary"] = {term: int(j) for term, j in vocab}
    block["idf"] = _rounded(vectorizer.idf_)
    block["coef"] = _rounded(coef)
    return block


def _json_params(params: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in sorted(params.items()):
        if isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, np.random.RandomState):
            value = "RandomState"
        elif isinstance(value, dict):
            value = {str(k): v for k, v in value.items()}
        out[key] = value
    return out


def _version(payload: Mapping[str, Any]) -> str:
    weights = {k: v for k, v in payload.items() if k not in ("version", "card")}
    digest = hashlib.sha256(json.dumps(weights, sort_keys=True, ensure_ascii=False,
                                       separators=(",", ":")).encode("utf-8")).hexdigest()
    return f"rct-text-{FORMAT_VERSION}-{digest[:12]}"


def _write_json(payload: Mapping[str, Any], path: Path) -> Path:
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":")) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def _is_int(value: Any) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _is_range(value: Any, lo_min: int, lo_max: int, hi_max: int) -> bool:
    if not isinstance(value, tuple | list) or len(value) != 2:
        return False
    lo, hi = value
    return _is_int(lo) and _is_int(hi) and lo_min <= lo <= lo_max and lo <= hi <= hi_max
