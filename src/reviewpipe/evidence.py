"""Direction of a reported effect: did the intervention raise or lower the outcome, or not?

`effect_direction` answers one Evidence Inference prompt ("with respect to OUTCOME, what did
INTERVENTION do relative to COMPARATOR?") from a trial abstract. Rules find the evidence
sentence and read it (steps 1-3); a small linear model, shipped as plain JSON weights
(``data/direction_model.json``, built by ``scripts/train_direction_model.py``; see
``data/direction_model.md``), then gives the label from features of that sentence and the
prompt, the rules' reading among them (step 4). Without the JSON, or with
``rules_only=True``, the rules' label stands.

1. **Find the sentence.** Every sentence is scored by how much of the outcome it names (words
   weighted by their rarity within the abstract, abbreviations the abstract defines count as
   their expansions), plus a bonus when it reports a result (a p-value, "significant",
   "higher", "vs") or sits under a RESULTS/CONCLUSIONS heading, and a penalty when it states
   aims or methods. The best sentence is the evidence; inside it, the clause (split at ";",
   "but", "whereas"…) that names the outcome is read first.
2. **Significant or not.** In order: a negation ("no significant", "did not differ",
   "similar") says no difference; else the p-value nearest after the outcome mention
   (`reviewpipe.numbers.find_p_values`; below 0.05 is significant); else a 95% CI
   (`reviewpipe.numbers.find_stats`) that excludes the null (1 for ratios, 0 otherwise); else
   the word "significant(ly)".
3. **Which way.** The direction word nearest the outcome ("higher", "reduced", "fewer"…;
   "improved"/"better" mean lower for outcomes where less is better, such as pain or
   mortality), else a ratio estimate above or below 1, else the first "a vs b" pair of numbers.
   The direction is flipped when the sentence makes the comparator its subject ("higher in the
   placebo group") or the intervention its reference ("lower than with drug X").
4. **The model.** A multinomial logistic regression (fitted on the Evidence Inference 2.0 train
   split) over binary features (`sentence_features`): the rules' label, significance and direction
   readings, p-value bands, confidence intervals against the null, which arm is named first or
   as the reference, and uni/bigrams of the sentence and of the outcome's clause with the arms
   masked as ``<i>``/``<c>``, the outcome as ``<o>``, p-values and CIs as their verdicts and
   negated words marked. Scoring is a sum of the present features' weights per label (numpy);
   loading the JSON runs no code.

Labels are the dataset's: ``"significantly increased"``, ``"significantly decreased"`` and
``"no significant difference"``. "Increased" is not "better".
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from reviewpipe.errors import InputError
from reviewpipe.evidence_rules import (
    DECREASED,
    INCREASED,
    LABELS,
    LESS_IS_BETTER,
    NO_DIFFERENCE,
    RATIO,
    STOP_WORDS,
    WITHIN,
    classify_sentence,
    evidence_sentence,
    find_mentions,
    read_sentence,
)
from reviewpipe.numbers import (
    find_p_values,
    find_stats,
    stem_word,
)

__all__ = ["DECREASED", "INCREASED", "LABELS", "MODEL_FORMAT", "NO_DIFFERENCE", "DirectionModel",
           "effect_direction", "load_direction_model"]
MODEL_FORMAT = "reviewpipe.direction_model/1"
_MODEL_RESOURCE = "data/direction_model.json"


def effect_direction(abstract: str, intervention: str, comparator: str,
                     outcome: str, *, rules_only: bool = False) -> tuple[str, str]:
    """The reported direction of ``outcome`` for ``intervention`` relative to ``comparator``.

    Parameters
    ----------
    abstract : str
        The trial's abstract (a title line first is welcome); structured headings such as
        ``"RESULTS: "`` at the start of a line are read as sections.
    intervention, comparator, outcome : str
        The prompt's three parts, as free text.
    rules_only : bool
        Read the label with the rules alone, not the shipped model (which is also skipped,
        silently, when ``data/direction_model.json`` is absent).

    Returns
    -------
    label : str
        ``INCREASED``, ``DECREASED`` or ``NO_DIFFERENCE``.
    evidence : str
        The sentence the label was read from ("" when the abstract is empty).

    Examples
    --------
    >>> effect_direction("Pain was significantly lower with dry needling than with sham "
    ...                  "(p = 0.01).", "dry needling", "sham", "pain")[0]
    'significantly decreased'
    >>> effect_direction("Pain did not differ between dry needling and sham (p = 0.40).",
    ...                  "dry needling", "sham", "pain")[0]
    'no significant difference'
    """
    found = evidence_sentence(abstract, outcome)
    if found is None:
        return NO_DIFFERENCE, ""
    sentence, aliases, o_stems = found
    model = None if rules_only else load_direction_model()
    if model is None:
        label = classify_sentence(sentence, intervention, comparator, outcome, o_stems, aliases)
    else:
        label = model.predict(sentence_features(sentence, intervention, comparator, outcome,
                                                o_stems, aliases, model.ngram))
    return label, sentence


# --------------------------------------------------------------------------------------------
# Features for the learned model
# --------------------------------------------------------------------------------------------

_NEG_CUE = re.compile(r"(?:no|not|n't|without|neither|nor|never|failed|fail|fails|lack|"
                      r"absence|ns|non-?significant\w*|insignificant\w*)", re.I)
_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-'][A-Za-z0-9]+)*|-?\d+(?:\.\d+)?%?|[;:,()<>=±]")
_SCOPE_END = frozenset(";:,()") | {"but", "whereas", "while", "although", "however"}


def _bucket_p(p: str) -> str:
    op = re.match(r"[<>=]*", p).group(0)
    try:
        value = float(p[len(op):])
    except ValueError:
        return "odd"
    if op.startswith(">"):
        return "ns"
    if value <= 0.001 and not (value == 0.001 and not op):
        return "le001"
    if value <= 0.01:
        return "le01"
    if value < 0.05 or (value == 0.05 and op.startswith("<")):
        return "lt05"
    return "ns"


def _masked_tokens(text: str, intervention: str, comparator: str, o_stems: set[str],
                   aliases: dict[str, str]) -> list[str]:
    """Lower-cased words of ``text`` with the arms as ``<i>``/``<c>``, the outcome's words as
    ``<o>``, p-values as ``<p_band>``, an estimate with its 95% CI as ``<ci_excl>`` or
    ``<ci_null>`` and other numbers as ``<num>``; runs of one mark collapse."""
    ps = find_p_values(text)
    marks = [(p.start, p.end, f"<p_{_bucket_p(p.text)}>") for p in ps]
    for stat in find_stats(text):
        if stat.kind == "ci" and stat.low is not None and stat.high is not None:
            null = 1.0 if RATIO.search(text[max(0, stat.start - 40):stat.end]) else 0.0
            inside = stat.low <= null <= stat.high
            # A p-value inside the bracket keeps its own mark.
            end = min([stat.end] + [p.start for p in ps if stat.start <= p.start < stat.end])
            marks.append((stat.start, end, "<ci_null>" if inside else "<ci_excl>"))
    for a, b, key, _ in find_mentions(text, intervention, comparator, aliases):
        marks.append((a, b, f"<{key}>"))
    out: list[str] = []
    k = 0
    marks.sort()
    for m in _TOKEN.finditer(text):
        while k < len(marks) and marks[k][1] <= m.start():
            k += 1
        if k < len(marks) and marks[k][0] <= m.start() < marks[k][1]:
            token = marks[k][2]
        else:
            word = m.group(0)
            if word[0].isdigit() or word[0] == "-":
                token = "<num%>" if word.endswith("%") else "<num>"
            elif stem_word(word) in o_stems and word.lower() not in STOP_WORDS:
                token = "<o>"
            else:
                token = word.lower()
        if not (out and token == out[-1] and token.startswith("<")):
            out.append(token)
    return out


def sentence_features(sentence: str, intervention: str, comparator: str, outcome: str,
              o_stems: set[str], aliases: dict[str, str], ngram: int = 2) -> list[str]:
    """Binary features of the evidence sentence and the prompt (names, as strings)."""
    r = read_sentence(sentence, intervention, comparator, outcome, o_stems, aliases)
    less = bool(LESS_IS_BETTER.search(outcome))
    short = {INCREASED: "inc", DECREASED: "dec", NO_DIFFERENCE: "nd"}[r.label]
    feats = {f"rule={short}", f"rule_sig={r.significant}:{r.significance_from}",
             f"rule_sig_via={r.significant}:{r.significance_via}",
             f"rule_word={r.word_sign}", f"rule_num={r.number_sign}", f"rule_flip={r.flip}",
             f"rule_signed={r.word_sign * (-1 if r.flip else 1)}",
             f"rule={short}&less={less}", "bias"}
    ps = find_p_values(sentence)
    feats |= {f"p:{_bucket_p(p.text)}" for p in ps}
    feats.add(f"p_count={min(len(ps), 3)}")
    local = [p for p in find_p_values(r.clause) if p.end > r.anchor][:1]
    feats |= {f"p_local:{_bucket_p(p.text)}" for p in local}
    for stat in find_stats(sentence):
        if stat.kind == "ci" and stat.low is not None and stat.high is not None:
            null = 1.0 if RATIO.search(sentence[max(0, stat.start - 40):stat.end]) else 0.0
            feats.add("ci_excludes_null" if not stat.low <= null <= stat.high else "ci_has_null")
    mentions = find_mentions(sentence, intervention, comparator, aliases)
    keys = "".join(k for _, _, k, _ in mentions)
    feats.add(f"first_arm={keys[:1] or '-'}")
    feats |= {f"arm:{k}{'_ref' if ref else ''}" for _, _, k, ref in mentions}
    if "i" in keys and "c" in keys:
        feats.add(f"order={'ic' if keys.index('i') < keys.index('c') else 'ci'}")
    if WITHIN.search(sentence):
        feats.add("within")
    for part, name in ((sentence, "s"), (r.clause, "c")):
        tokens = _masked_tokens(part, intervention, comparator, o_stems, aliases)
        negated = False
        for i, t in enumerate(tokens):
            if t in _SCOPE_END:
                negated = False
                continue
            feats.add(f"{name}:{t}")
            if negated:
                feats.add(f"{name}:neg_{t}")
            if _NEG_CUE.fullmatch(t):
                negated = True
            for n in range(2, ngram + 1):
                if i + n <= len(tokens):
                    feats.add(f"{name}:" + " ".join(tokens[i:i + n]))
    return sorted(feats)


# --------------------------------------------------------------------------------------------
# The learned model: plain JSON weights, scored with numpy
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DirectionModel:
    """A linear model over `sentence_features` names: score = intercept + sum of the present
    features' weights, one column per label; the label with the highest score wins."""

    version: str
    labels: tuple[str, ...]
    intercept: np.ndarray  # (n_labels,)
    index: Mapping[str, int]  # feature name -> row of coef
    coef: np.ndarray  # (n_features, n_labels)
    ngram: int = 2

    def scores(self, features: Sequence[str]) -> np.ndarray:
        rows = sorted({self.index[f] for f in features if f in self.index})
        return self.intercept + self.coef[rows].sum(axis=0)

    def predict(self, features: Sequence[str]) -> str:
        return self.labels[int(np.argmax(self.scores(features)))]


def _model_from_dict(payload: Any, source: str) -> DirectionModel:
    try:
        if payload.get("format") != MODEL_FORMAT:
            raise ValueError(f"format is {payload.get('format')!r}")
        labels = tuple(payload["labels"])
        if sorted(labels) != sorted(LABELS):
            raise ValueError(f"labels {labels!r}")
        intercept = np.asarray(payload["intercept"], dtype=float)
        names = sorted(payload["weights"])
        coef = np.asarray([payload["weights"][n] for n in names], dtype=float)
        coef = coef.reshape(len(names), len(labels))
        if intercept.shape != (len(labels),) or not np.isfinite(coef).all():
            raise ValueError("intercept or weights of the wrong shape or not finite")
        ngram = int(payload["params"]["ngram"])
        return DirectionModel(str(payload["version"]), labels, intercept,
                              {n: i for i, n in enumerate(names)}, coef, ngram)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise InputError(source, f"not a valid {MODEL_FORMAT} model: {exc}") from exc


@lru_cache(maxsize=1)
def _shipped_model() -> DirectionModel | None:
    resource = resources.files("reviewpipe").joinpath(_MODEL_RESOURCE)
    try:
        raw = resource.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        payload = json.loads(raw)
    except ValueError as exc:
        raise InputError(str(resource), f"not a JSON model file ({exc})") from exc
    return _model_from_dict(payload, str(resource))


def load_direction_model(path: str | Path | None = None) -> DirectionModel | None:
    """The effect-direction model in ``path`` (default: the shipped
    ``data/direction_model.json``, or None when it is absent and the rules must answer alone).

    The file is plain JSON (feature names and weights); loading it runs nothing from it.
    """
    if path is None:
        return _shipped_model()
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(str(path), f"cannot read the model file ({exc.strerror})") from exc
    except ValueError as exc:
        raise InputError(str(path), f"not a JSON model file ({exc})") from exc
    return _model_from_dict(payload, str(path))
