"""The effect-direction rules: find the sentence that reports an outcome, then read
whether and which way it differs between the arms (steps 1-3 of :mod:`reviewpipe.evidence`)."""

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from reviewpipe.numbers import (
    find_abbreviations,
    find_p_values,
    find_stats,
    find_times,
    split_clauses,
    split_sentences,
    stem_word,
)

INCREASED = "significantly increased"
DECREASED = "significantly decreased"
NO_DIFFERENCE = "no significant difference"
LABELS = (INCREASED, DECREASED, NO_DIFFERENCE)


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


STOP_WORDS = _wordset("""a an the and or of to in on for with without by at from as that this
was were is are be been not no than after before during between among within into per vs versus
we our their its it both each all any total mean overall patients patient group groups arm arms
participants subjects who which using use used versus mg kg day days daily week weeks month
months year years dose doses level levels
""")
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
WITHIN = re.compile(r"\b(?:both|all|each)\s+(?:\w+\s+)?(?:groups?|arms?|sides?|treatments?)\b|"
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
LESS_IS_BETTER = re.compile(
    r"pain|mortality|death|adverse|complication|infection|nausea|vomit|relapse|recurren|"
    r"toxicit|side.effect|anxiety|depress|fatigue|stress|bleed|exacerbation|hospitali[sz]ation|"
    r"readmission|length of (?:hospital )?stay|failure|tension|anger|confusion|negative", re.I)
_REFERENCE_CUE = re.compile(r"(?:\bthan|\bcompared\s+(?:with|to)|\bversus|\bvs\.?|\brelative\s+to|"
                            r"\bin\s+comparison\s+(?:with|to)|\bover|\bagainst|\bwhen\s+compared"
                            r"\s+(?:with|to))(?:\s+(?:that|those|the|in|of|with|for|a|an))*\s*$",
                            re.I)
RATIO = re.compile(r"\b(?:odds|hazard|risk|rate)\s+ratios?\b|\b(?:OR|RR|HR|IRR|aOR|aHR)\b")
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


def evidence_sentence(abstract: str, outcome: str) -> tuple[str, dict[str, str],
                                                              set[str]] | None:
    """The sentence that best reports ``outcome``, the abstract's abbreviations, the outcome's
    stems; None when the abstract is empty."""
    sentences = _sentences(abstract or "")
    if not sentences:
        return None
    aliases = abbreviations_of(abstract)
    o_stems = stems_of(outcome, aliases)
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


def stems_of(text: str, aliases: dict[str, str]) -> set[str]:
    """Content-word stems of ``text``; an abbreviation also brings its expansion's stems."""
    stems = set()
    for w in _words(text):
        if w.lower() in STOP_WORDS or (len(w) < 2 and not w.isupper()):
            continue
        stems.add(stem_word(w))
        if w in aliases:
            stems |= {stem_word(x) for x in _words(aliases[w]) if x.lower() not in STOP_WORDS}
    # An expansion named in full also matches its abbreviation in the abstract.
    for abbr, expansion in aliases.items():
        exp = {stem_word(x) for x in _words(expansion) if x.lower() not in STOP_WORDS}
        if exp and exp <= stems:
            stems.add(stem_word(abbr))
    return stems


def abbreviations_of(text: str) -> dict[str, str]:
    return find_abbreviations(text or "")


def _sentence_stems(text: str) -> set[str]:
    return {stem_word(w) for w in _words(text) if w.lower() not in STOP_WORDS}


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


def classify_sentence(sentence: str, intervention: str, comparator: str, outcome: str,
              o_stems: set[str], aliases: dict[str, str]) -> str:
    return read_sentence(sentence, intervention, comparator, outcome, o_stems, aliases).label


def read_sentence(sentence: str, intervention: str, comparator: str, outcome: str,
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
             re.finditer(r"[A-Za-z][A-Za-z0-9'-]*", text) if m.group(0).lower() not in STOP_WORDS]
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
    if WITHIN.search(local) and not _BETWEEN.search(local):
        return False, "within"
    if after or ps:
        return _p_significant((after or ps)[0].text), "p"
    for stat in find_stats(text):
        if stat.kind == "ci" and stat.low is not None and stat.high is not None:
            null = 1.0 if RATIO.search(text[max(0, stat.start - 40):stat.end]) else 0.0
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
    less_is_better = bool(LESS_IS_BETTER.search(outcome))
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
    ratio = RATIO.search(text)
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
    mine = {s for s in stems_of(arm, aliases) if not s[0].isdigit()}
    mine -= {stem_word(w) for w in _ARM_GENERIC}
    theirs = stems_of(other, aliases)
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


def find_mentions(text: str, intervention: str, comparator: str,
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
    mentions = find_mentions(text, intervention, comparator, aliases)
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
    mentions = find_mentions(text, intervention, comparator, aliases)
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
