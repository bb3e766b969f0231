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
   split) over binary features (`_features`): the rules' label, significance and direction
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
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from reviewpipe.errors import InputError
from reviewpipe.numbers import (
    find_abbreviations,
    find_p_values,
    find_stats,
    find_times,
    split_clauses,
    split_sentences,
    stem_word,
)

__all__ = ["DECREASED", "INCREASED", "LABELS", "MODEL_FORMAT", "NO_DIFFERENCE", "DirectionModel",
           "effect_direction", "load_direction_model"]

INCREASED = "significantly increased"
DECREASED = "significantly decreased"
NO_DIFFERENCE = "no significant difference"
LABELS = (INCREASED, DECREASED, NO_DIFFERENCE)
MODEL_FORMAT = "reviewpipe.direction_model/1"
_MODEL_RESOURCE = "data/direction_model.json"


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


_STOP = _wordset("""a an the and or of to in on for with without by at from as that this was were is
are be been not no than after before during between among within into per vs versus we our
their its it both each all any total mean overall patients patient group groups arm arms
participants subjects who which using use used versus mg kg day days daily week weeks month
months year years dose doses level levels""")
_ARM_GENERIC = _wordset("""group groups arm arms treatment treated therapy receiving received
receive patients participants subjects plus alone only mg kg ml g daily once twice day days
week weeks dose doses iv oral intervention""")
_CONTROL = frozenset(stem_word(w) for w in ("control", "controls", "placebo", "untreated",
                                            "sham"))
_NEGATION = re.compile(
    r"\bno(?:\s+\w+){0,2}?\s+(?:significant|significance|statistically|difference|differences|"
    r"change|changes|effect|effects|benefit|evidence)\b|\bnot\s+(?:\w+\s+)?(?:significant|"
    r"significantly|statistically|differ\w*|change\w*|affect\w*|improv\w*|reduc\w*|increas\w*|"
    r"decreas\w*|associated|superior|inferior|better|worse)|\bn\.?s\.?\b|\bnon-?significant\w*"
    r"|\bsimilar\w*|\bcomparable\b|\bequivalent\b|\bunchanged\b|\bunaffected\b|\bfailed to\b"
    r"|\binsignificant\w*|\bno between-group\b|\bnot reach\b|\bequally\b|\btended\b"
    r"|\btrend\b", re.I)
# Changes within each arm are not the comparison the prompt asks about.
_WITHIN = re.compile(r"\b(?:both|all|each)\s+(?:\w+\s+)?(?:groups?|arms?|sides?|treatments?)\b|"
                     r"\bwithin[\s-]group|\bfrom baseline\b|\bover time\b", re.I)
_BETWEEN = re.compile(r"\bthan\b|\bcompared\b|\bversus\b|\bvs\b|\bbetween\b|\bgreater\b|"
                      r"\bmore\b|\bless\b|\bdiffer", re.I)
_SIGNIFICANT = re.compile(r"\bsignifican\w*|\bstatistically\b", re.I)
_UP = re.compile(r"\b(?:higher|greater|increas\w*|more|longer|larger|elevat\w*|raised|rose|"
                 r"rise|gain\w*|enhanc\w*|boost\w*|exceed\w*|prolong\w*|augment\w*|"
                 r"superior|faster|accelerat\w*|doubl\w*)\b", re.I)
_DOWN = re.compile(r"\b(?:lower|less|reduc\w*|decreas\w*|fewer|shorter|smaller|declin\w*|fell|"
                   r"drop\w*|lowered|attenuat\w*|diminish\w*|suppress\w*|inhibit\w*|"
                   r"prevent\w*|slower|inferior|minimi[sz]\w*|halved|cut)\b", re.I)
_GOOD = re.compile(r"\b(?:improv\w*|better|benefi\w*|favou?r\w*|effective|relie\w*|eased)\b",
                   re.I)
_BAD = re.compile(r"\b(?:wors\w*|deteriorat\w*|aggravat\w*|poorer)\b", re.I)
# Outcomes where less is better: "improved pain" means less pain.
# Kept to unmistakable harms: annotators read "improved <score>" as an increase.
_LESS_IS_BETTER = re.compile(
    r"pain|mortality|death|adverse|complication|infection|nausea|vomit|relapse|recurren|"
    r"toxicit|side.effect|anxiety|depress|fatigue|stress|bleed|exacerbation|hospitali[sz]ation|"
    r"readmission|length of (?:hospital )?stay|failure|tension|anger|confusion|negative", re.I)
_REFERENCE_CUE = re.compile(r"(?:\bthan|\bcompared\s+(?:with|to)|\bversus|\bvs\.?|\brelative\s+to|"
                            r"\bin\s+comparison\s+(?:with|to)|\bover|\bagainst|\bwhen\s+compared"
                            r"\s+(?:with|to))(?:\s+(?:that|those|the|in|of|with|for|a|an))*\s*$",
                            re.I)
_RATIO = re.compile(r"\b(?:odds|hazard|risk|rate)\s+ratios?\b|\b(?:OR|RR|HR|IRR|aOR|aHR)\b")
_RESULT_CUE = re.compile(r"\bsignifican|\bdiffer|\bhigher\b|\blower\b|\bgreater\b|\breduc|"
                         r"\bincreas|\bdecreas|\bimprov|\bsimilar\b|\bcomparable\b|\bvs\b|"
                         r"\bversus\b|\bcompared\b|\bthan\b|%|\bfewer\b|\bless\b|\bmore\b", re.I)
_AIM = re.compile(r"\b(?:aims?|aimed|objectives?|purpose|hypothes\w*|to (?:evaluate|compare|"
                  r"assess|determine|investigate|examine|test)|we (?:evaluated|investigated|"
                  r"compared|assessed|examined|studied)|were (?:randomi[sz]ed|randomly|"
                  r"allocated|assigned|recruited|enrolled)|(?:primary|secondary) "
                  r"(?:end[- ]?points?|outcomes?)(?: measures?)? (?:was|were)|(?:was|were) "
                  r"(?:recorded|measured|assessed|evaluated|compared|analy[sz]ed|determined|calculated|examined|"
                  r"collected|obtained|monitored)(?! (?:to be|as) )|using analysis|analysis of "
                  r"(?:co)?variance)\b", re.I)
_HEADING = re.compile(r"^\s*([A-Z][A-Z /&-]{2,40}):\s*")
_NUM_PAIR = re.compile(r"(?<![\w.])(-?\d+(?:\.\d+)?)\s*%?[^;()\d]{0,40}?\b(?:vs\.?|versus|and|"
                       r"compared\s+(?:with|to)|to)\s+(-?\d+(?:\.\d+)?)")


@dataclass(frozen=True)
class _Sentence:
    start: int
    end: int
    text: str
    section: str


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
    found = _evidence_sentence(abstract, outcome)
    if found is None:
        return NO_DIFFERENCE, ""
    sentence, aliases, o_stems = found
    model = None if rules_only else load_direction_model()
    if model is None:
        label = _classify(sentence, intervention, comparator, outcome, o_stems, aliases)
    else:
        label = model.predict(_features(sentence, intervention, comparator, outcome, o_stems,
                                        aliases, model.ngram))
    return label, sentence


def _evidence_sentence(abstract: str, outcome: str) -> tuple[str, dict[str, str],
                                                              set[str]] | None:
    """The sentence that best reports ``outcome``, the abstract's abbreviations, the outcome's
    stems; None when the abstract is empty."""
    sentences = _sentences(abstract or "")
    if not sentences:
        return None
    aliases = _aliases(abstract)
    o_stems = _stems(outcome, aliases)
    o_times = {t.weeks for t in find_times(outcome) if t.weeks is not None}
    best = max(sentences, key=lambda s: (_relevance(s, o_stems, sentences, o_times), -s.start))
    return best.text, aliases, o_stems


# --------------------------------------------------------------------------------------------
# Finding the sentence
# --------------------------------------------------------------------------------------------


def _sentences(text: str) -> list[_Sentence]:
    out = []
    offset = 0
    section = ""
    for line in text.splitlines(keepends=True):
        heading = _HEADING.match(line)
        body_at = 0
        if heading:
            section = heading.group(1).strip().lower()
            body_at = heading.end()
        body = line[body_at:]
        for a, b in split_sentences(body):
            s = body[a:b].strip()
            if s:
                out.append(_Sentence(offset + body_at + a, offset + body_at + b, s, section))
        offset += len(line)
    return out


def _words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z][A-Za-z0-9]*(?:[-'][A-Za-z0-9]+)*|\d+", text)


def _stems(text: str, aliases: dict[str, str]) -> set[str]:
    """Content-word stems of ``text``; an abbreviation also brings its expansion's stems."""
    stems = set()
    for w in _words(text):
        if w.lower() in _STOP or (len(w) < 2 and not w.isupper()):
            continue
        stems.add(stem_word(w))
        if w in aliases:
            stems |= {stem_word(x) for x in _words(aliases[w]) if x.lower() not in _STOP}
    # An expansion named in full also matches its abbreviation in the abstract.
    for abbr, expansion in aliases.items():
        exp = {stem_word(x) for x in _words(expansion) if x.lower() not in _STOP}
        if exp and exp <= stems:
            stems.add(stem_word(abbr))
    return stems


def _aliases(text: str) -> dict[str, str]:
    return find_abbreviations(text or "")


def _sentence_stems(text: str) -> set[str]:
    return {stem_word(w) for w in _words(text) if w.lower() not in _STOP}


def _time_match(text: str, o_times: set[float]) -> float:
    """Bonus when a sentence names the outcome's time point ("at 1 year"), malus for another."""
    if not o_times:
        return 0.0
    times = {t.weeks for t in find_times(text) if t.weeks is not None and not t.duration}
    if not times:
        return 0.0
    return 0.15 if times & o_times else -0.15


def _relevance(sent: _Sentence, o_stems: set[str], all_sents: Sequence[_Sentence],
               o_times: set[float]) -> float:
    if not o_stems:
        return 0.0
    n = len(all_sents)
    have = _sentence_stems(sent.text)
    total = got = 0.0
    for stem in o_stems:
        df = sum(stem in _sentence_stems(s.text) for s in all_sents)
        weight = math.log(1 + n / (1 + df)) if df else 0.3  # unseen words say little
        total += weight
        if stem in have:
            got += weight
    score = got / total if total else 0.0
    if find_p_values(sent.text) or _RESULT_CUE.search(sent.text):
        score += 0.25
    if find_p_values(sent.text) or _SIGNIFICANT.search(sent.text):
        score += 0.1
    if re.match(r"results?|findings", sent.section):
        score += 0.2
    elif re.match(r"conclusions?|interpretation", sent.section):
        score += 0.1
    elif re.match(r"background|introduction|objectives?|aims?|purpose|methods?|design|"
                  r"patients|participants|setting", sent.section):
        score -= 0.25
    if _AIM.search(sent.text) and not find_p_values(sent.text):
        score -= 0.3
    return score + _time_match(sent.text, o_times)


# --------------------------------------------------------------------------------------------
# Reading the sentence
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Reading:
    """What the rules read in one sentence, kept for the learned model's features."""

    label: str
    clause: str
    anchor: int
    significant: bool
    significance_from: str  # "clause", "sentence" or "direction" (no test reported)
    significance_via: str  # "negation", "within", "p", "ci", "word" or "none"
    word_sign: int  # the direction word nearest the outcome (or a ratio), before any flip
    number_sign: int  # the arms' numbers compared, when no direction word was found
    flip: bool


def _classify(sentence: str, intervention: str, comparator: str, outcome: str,
              o_stems: set[str], aliases: dict[str, str]) -> str:
    return _read(sentence, intervention, comparator, outcome, o_stems, aliases).label


def _read(sentence: str, intervention: str, comparator: str, outcome: str,
          o_stems: set[str], aliases: dict[str, str]) -> _Reading:
    clauses = [sentence[a:b] for a, b in split_clauses(sentence, 0, len(sentence))]
    clauses = [c for c in clauses if c.strip()] or [sentence]
    clause = max(clauses, key=lambda c: len(o_stems & _sentence_stems(c)))
    anchor = _anchor(clause, o_stems)
    significant, via = _significance_why(clause, anchor)
    source = "clause"
    if significant is None and clause != sentence:
        significant, via = _significance_why(sentence, _anchor(sentence, o_stems))
        source = "sentence"
    word_sign = _direction(clause, anchor, outcome)
    if significant is None:
        # No test is reported: a stated change ("creatinine rose by 11%") was read by the
        # annotators as a finding, a bare description as none.
        significant = word_sign != 0
        source = "direction"
    if word_sign == 0 and clause != sentence:
        word_sign = _direction(sentence, _anchor(sentence, o_stems), outcome)
    flip = _flip(sentence, intervention, comparator, aliases)
    number_sign = 0
    if word_sign == 0:
        number_sign = (_numbers_direction(clause, intervention, comparator, aliases)
                       or _numbers_direction(sentence, intervention, comparator, aliases))
    if not significant:
        label = NO_DIFFERENCE
    elif word_sign:
        label = INCREASED if word_sign * (-1 if flip else 1) > 0 else DECREASED
    elif number_sign:
        label = INCREASED if number_sign > 0 else DECREASED  # already read arm by arm
    else:
        # "increased" is the commoner significant label.
        label = DECREASED if flip else INCREASED
    return _Reading(label, clause, anchor, significant, source, via, word_sign, number_sign,
                    flip)


def _anchor(text: str, o_stems: set[str]) -> int:
    """Offset of the outcome mention in ``text``: the run of words naming most of the outcome.

    "mean arterial pressure … arterial partial pressure of oxygen" anchors at the second.
    """
    words = [(m.start(), stem_word(m.group(0))) for m in
             re.finditer(r"[A-Za-z][A-Za-z0-9'-]*", text) if m.group(0).lower() not in _STOP]
    width = max(3, len(o_stems) + 2)
    best, at = 0, 0
    for i, (start, stem) in enumerate(words):
        if stem not in o_stems:
            continue
        hits = len({w for _, w in words[i:i + width]} & o_stems)
        if hits > best:
            best, at = hits, start
    return at


def _significance_why(text: str, anchor: int) -> tuple[bool | None, str]:
    """True/False when ``text`` says whether the difference is significant, else None; and
    what said so: "negation", "within", "p", "ci", "word" or "none".

    Only the stretch around the outcome mention is read for negations and p-values, so "no
    significant change in X, but a significant fall in Y (p = 0.01)" answers for each.
    """
    ps = find_p_values(text)
    after = [p for p in ps if p.end > anchor]
    stop = after[0].end if after else min(len(text), anchor + 150)
    # A p-value before the mention closes the previous finding; read from there on.
    start = max([anchor - 80, 0] + [p.end for p in ps if p.end <= anchor])
    local = text[start:stop]
    if _NEGATION.search(local):
        return False, "negation"
    if _WITHIN.search(local) and not _BETWEEN.search(local):
        return False, "within"
    if after or ps:
        return _p_significant((after or ps)[0].text), "p"
    for stat in find_stats(text):
        if stat.kind == "ci" and stat.low is not None and stat.high is not None:
            null = 1.0 if _RATIO.search(text[max(0, stat.start - 40):stat.end]) else 0.0
            return not stat.low <= null <= stat.high, "ci"
    if _SIGNIFICANT.search(local):
        return True, "word"
    return None, "none"


def _p_significant(p: str) -> bool:
    op = re.match(r"[<>=]*", p).group(0)
    try:
        value = float(p[len(op):])
    except ValueError:
        return False
    if op.startswith("<"):
        return value <= 0.05
    if op.startswith(">"):
        return False
    return value < 0.05


def _direction(text: str, anchor: int, outcome: str) -> int:
    """+1 / -1 from the direction word nearest the outcome mention; 0 when none."""
    less_is_better = bool(_LESS_IS_BETTER.search(outcome))
    found: list[tuple[int, int]] = []
    for pattern, sign in ((_UP, 1), (_DOWN, -1), (_GOOD, -1 if less_is_better else 1),
                          (_BAD, 1 if less_is_better else -1)):
        for m in pattern.finditer(text):
            # "more/less" before an adjective that carries its own direction is a modifier.
            if m.group(0).lower() in ("more", "less") and re.match(
                    r"\s+(?:\w+ly\s+)?(?:effective|likely|pronounced|frequent\w*|common)",
                    text[m.end():]):
                continue
            found.append((abs(m.start() - anchor) + (0 if m.start() < anchor else 5), sign))
    if found:
        return min(found)[1]
    ratio = _RATIO.search(text)
    if ratio:
        for stat in find_stats(text[ratio.start():]):
            if stat.kind == "ci" and stat.value is not None and stat.value != 1:
                return 1 if stat.value > 1 else -1
    return 0


def _arm_stems(arm: str, other: str, aliases: dict[str, str]) -> set[str]:
    """Stems that name this arm and not the other; bracketed labels and aliases included.

    An arm that is the absence of something ("no supplementation") is named by the words
    abstracts use for controls, never by the thing it lacks.
    """
    if re.match(r"\s*(?:no|without|none|non)\b", arm, re.I):
        return set(_CONTROL)
    mine = {s for s in _stems(arm, aliases) if not s[0].isdigit()}
    mine -= {stem_word(w) for w in _ARM_GENERIC}
    theirs = _stems(other, aliases)
    own = mine - theirs
    if re.search(r"\b(?:placebo|control|sham|usual|standard)", arm, re.I):
        own |= set(_CONTROL) - theirs
    return own


def _labels(arm: str) -> list[re.Pattern[str]]:
    """Patterns for an arm's short labels: "group A" / "A group", bracketed "(CTX)"."""
    out = []
    for m in re.finditer(r"\b(?:group|arm)\s+([A-Z]{1,3}\d*|\d+|I{1,3}V?|IV)\b", arm, re.I):
        label = re.escape(m.group(1))
        out.append(re.compile(rf"\b(?:group|arm)\s+{label}\b|\b{label}\s+(?:group|arm)\b", re.I))
    for m in re.finditer(r"[(\[]\s*([A-Z][A-Za-z0-9-]*[A-Z0-9][A-Za-z0-9-]*)\s*[)\]]", arm):
        label = m.group(1)
        if len(label) >= 2 and not re.fullmatch(r"(?:group|arm)", label, re.I):
            out.append(re.compile(rf"(?<![\w-]){re.escape(label)}(?![\w-])"))
    return out


def _mentions(text: str, intervention: str, comparator: str,
              aliases: dict[str, str]) -> list[tuple[int, int, str, bool]]:
    """``(start, end, "i" or "c", is_reference)`` for each arm mention in ``text``."""
    found: list[tuple[int, int, str]] = []
    for arm, other, key in ((intervention, comparator, "i"), (comparator, intervention, "c")):
        mine = _labels(arm)
        theirs = {p.pattern for p in _labels(other)}
        for pattern in mine:
            if pattern.pattern not in theirs:
                found += [(m.start(), m.end(), key) for m in pattern.finditer(text)]
    i_stems = _arm_stems(intervention, comparator, aliases)
    c_stems = _arm_stems(comparator, intervention, aliases)
    for m in re.finditer(r"[A-Za-z][A-Za-z0-9'-]*", text):
        stem = stem_word(m.group(0))
        if (stem in i_stems) != (stem in c_stems):
            found.append((m.start(), m.end(), "i" if stem in i_stems else "c"))
    out = []
    for a, b, key in sorted(set(found)):
        if out and a < out[-1][1]:
            continue
        before = text[max(0, a - 40):a]
        ref = bool(_REFERENCE_CUE.search(before) or re.search(r"\bnot\s+(?:the\s+)?$", before))
        out.append((a, b, key, ref))
    return out


def _flip(text: str, intervention: str, comparator: str, aliases: dict[str, str]) -> bool:
    """True when ``text`` makes the comparator the subject of the comparison."""
    mentions = _mentions(text, intervention, comparator, aliases)
    i_subj = any(k == "i" and not r for _, _, k, r in mentions)
    c_subj = any(k == "c" and not r for _, _, k, r in mentions)
    i_ref = any(k == "i" and r for _, _, k, r in mentions)
    c_ref = any(k == "c" and r for _, _, k, r in mentions)
    if i_subj != c_subj:
        return c_subj
    if i_ref != c_ref:
        return i_ref
    subjects = [k for _, _, k, r in mentions if not r]
    return bool(subjects) and subjects[0] == "c"


def _numbers_direction(text: str, intervention: str, comparator: str,
                       aliases: dict[str, str]) -> int:
    """+1 / -1 from the intervention's and comparator's numbers in ``text``; 0 if unclear."""
    mentions = _mentions(text, intervention, comparator, aliases)
    pvals = [(p.start, p.end) for p in find_p_values(text)]
    numbers = [(m.start(), m.end(), float(m.group(0))) for m in
               re.finditer(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\d.])", text)
               if not any(a <= m.start() < b for a, b in pvals)]
    pair = _NUM_PAIR.search(text)
    if pair:
        keys = [k for a, _, k, _ in mentions if a < pair.start()][-2:]
        if len(keys) == 2 and keys[0] != keys[1]:
            x, y = float(pair.group(1)), float(pair.group(2))
            sign = (x > y) - (x < y)
            return sign if keys[0] == "i" else -sign
    value: dict[str, float] = {}
    for k, (_, b, key, _) in enumerate(mentions):
        stop = mentions[k + 1][0] if k + 1 < len(mentions) else len(text)
        after = [v for s, _, v in numbers if b <= s < min(stop, b + 60)]
        if after and key not in value:
            value[key] = after[0]
    if len(value) == 2 and value["i"] != value["c"]:
        return 1 if value["i"] > value["c"] else -1
    return 0


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
            null = 1.0 if _RATIO.search(text[max(0, stat.start - 40):stat.end]) else 0.0
            inside = stat.low <= null <= stat.high
            # A p-value inside the bracket keeps its own mark.
            end = min([stat.end] + [p.start for p in ps if stat.start <= p.start < stat.end])
            marks.append((stat.start, end, "<ci_null>" if inside else "<ci_excl>"))
    for a, b, key, _ in _mentions(text, intervention, comparator, aliases):
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
            elif stem_word(word) in o_stems and word.lower() not in _STOP:
                token = "<o>"
            else:
                token = word.lower()
        if not (out and token == out[-1] and token.startswith("<")):
            out.append(token)
    return out


def _features(sentence: str, intervention: str, comparator: str, outcome: str,
              o_stems: set[str], aliases: dict[str, str], ngram: int = 2) -> list[str]:
    """Binary features of the evidence sentence and the prompt (names, as strings)."""
    r = _read(sentence, intervention, comparator, outcome, o_stems, aliases)
    less = bool(_LESS_IS_BETTER.search(outcome))
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
            null = 1.0 if _RATIO.search(sentence[max(0, stat.start - 40):stat.end]) else 0.0
            feats.add("ci_excludes_null" if not stat.low <= null <= stat.high else "ci_has_null")
    mentions = _mentions(sentence, intervention, comparator, aliases)
    keys = "".join(k for _, _, k, _ in mentions)
    feats.add(f"first_arm={keys[:1] or '-'}")
    feats |= {f"arm:{k}{'_ref' if ref else ''}" for _, _, k, ref in mentions}
    if "i" in keys and "c" in keys:
        feats.add(f"order={'ic' if keys.index('i') < keys.index('c') else 'ci'}")
    if _WITHIN.search(sentence):
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
    """A linear model over `_features` names: score = intercept + sum of the present features'
    weights, one column per label; the label with the highest score wins."""

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
