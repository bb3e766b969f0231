"""Stage 4, extract: an outcomes table in which every number points back to its text.

Rules, not a model, read each included study's abstract (and a PMC full text when one is
already on disk under ``<review dir>/fulltext/<PMCID>.xml``; the stage never goes online):
sample sizes (digits or words), arms and their roles, the protocol's instruments and scales,
time points in weeks, means/SDs, medians/IQRs, mean differences with CIs, p-values and adverse
events. Each value keeps ``source`` (``abstract``, ``pmc:body``, ``pmc:Table 2 r3c2``) and a
character ``span`` ``start-end`` into that source text, and the snippet the span cuts out.

Reviewers' own extraction (``queries/<review>.extraction.csv``) wins over the rules for the same
(cluster_id, arm, instrument, timepoint_weeks); the tool never writes that file.

In ``outcomes.csv`` ``arm`` names one randomised arm (its description, abbreviations spelled
out, so a dry needling arm always names dry needling). Rows about no single arm (between-group
differences, whole-sample values) leave ``arm`` empty and say what they compare in
``contrast``. ``value_type`` is ``final``, ``change`` or ``difference`` (plus ``baseline`` for
values measured before treatment, whose ``timepoint_weeks`` is empty); a study with several
control arms has its comparison ids joined by ``;`` in ``studies.csv``.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from reviewpipe.dedupe import load_canonical
from reviewpipe.errors import InputError
from reviewpipe.jats import Article, Table, read_jats
from reviewpipe.memo import inputs_hash, read_memo, stage_key, write_memo
from reviewpipe.numbers import (
    DIGITS,
    NUMBER,
    WORD_NUMBER,
    Stat,
    TimeMention,
    enclosing_brackets,
    find_abbreviations,
    find_bare_mean_sd,
    find_p_values,
    find_stats,
    find_times,
    list_items,
    normalise_p,
    parse_number,
    split_clauses,
    split_sentences,
    stem_word,
    word_pattern,
)
from reviewpipe.protocol import Protocol
from reviewpipe.runs import Run, StageResult, sha256_file
from reviewpipe.store import Store

RULES = "rules:extract-v1"
# Each included study's machine rows before the reviewers' file, for update runs to reuse; any
# change to these modules extracts every study again.
MEMO = "extract_memo.jsonl"
_MEMO_MODULES = ("extract", "jats", "numbers", "normalize", "readers/safexml")
STUDY_COLUMNS = ["cluster_id", "first_author", "year", "n_randomised", "comparison", "arms",
                 "comparison_evidence", "title", "n_randomised_span", "arms_json",
                 "timepoints_weeks", "sources"]
OUTCOME_COLUMNS = ["cluster_id", "arm", "outcome", "instrument", "timepoint_weeks", "n", "mean",
                   "sd", "mean_change", "md", "ci_low", "ci_high", "p", "source", "span", "scale",
                   "median", "iqr_low", "iqr_high", "value_type", "snippet", "extracted_by",
                   "timepoint", "contrast", "measure", "se", "n_span", "p_span", "note"]
AE_COLUMNS = ["cluster_id", "arm", "kind", "count", "denominator", "source", "span", "snippet",
              "unit"]
HUMAN_COLUMNS = ["cluster_id", "arm", "outcome", "instrument", "timepoint_weeks", "n", "mean",
                 "sd", "mean_change", "md", "ci_low", "ci_high", "p", "reviewer", "note"]
_FLOATS = ("mean", "sd", "mean_change", "md", "ci_low", "ci_high", "timepoint_weeks")



def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Words that say nothing about what an arm received.
_STOP = _words("""
a an the and or of to in on for with without plus only alone group groups arm arms received
receiving receive treated treatment therapy protocol programme program session sessions same
who which performing performed patients participants subjects each both also either one
other first second third week weeks per time times control controls experimental
intervention case study was were is be by at from as that this their its into than then
usual routine standard care conventional
""")
_ALLOC = re.compile(r"\b(?:randomi[sz]ed|randomly|allocated|assigned|divided|distributed|"
                    r"enrolled\s+into)\b", re.I)
_PEOPLE = (r"(?:adults|patients|participants|people|persons|subjects|individuals|volunteers|"
           r"women|men|athletes|triathletes|runners|workers|players|cases)")
_GROUP_WORDS = r"(?:group|arm)"
_NOT_A_GROUP = _words("""both each either two three four this that every same other whole one
first second a the per study treatment intervention age control""")
_SHAM = re.compile(r"\b(?:sham|placebo)\b", re.I)
_WHOLE = re.compile(r"\b(?:both|all|each|every|either)(?:\s+(?:of\s+the\s+)?(?:two|three|four|"
                    r"study|the))?\s+(?:groups?|arms?)\b|\bwhole\s+sample\b|"
                    r"\ball\s+(?:patients|participants)\b|\bgroups\s+together\b", re.I)
_BETWEEN = re.compile(r"\b(?:between|differ\w*|versus|vs\.?|than|compared\s+(?:with|to)|"
                      r"relative\s+to|interaction|outperform\w*|favou?r\w*|superior|inferior|"
                      r"group\s+effect|over\s+(?:sham|placebo|control))\b", re.I)
_WITHIN = re.compile(r"\b(?:improv\w*|fell|fallen|drop\w*|reduc\w*|decreas\w*|increas\w*|"
                     r"declin\w*|within|chang\w*|lowered|rose|from\s+baseline)\b", re.I)
_CHANGE = re.compile(r"\b(?:change|reduction|improvement|decrease|increase|fell\s+by|"
                     r"reduced\s+by|improved\s+by|gain)\b", re.I)
_DIFF_CUE = re.compile(r"\b(?:mean\s+)?difference|\bMD\b|\bbetween\b|\bdiffer\w*", re.I)
_OTHER_CUE = re.compile(r"\bodds\b|\bratio\b|\b(?:OR|RR|HR|SMD|NNT|ICC)\b|number\s+needed|hazard|"
                        r"\brisk\b|standardi[sz]ed|effect\s+size|correlation", re.I)
_NOT_OUTCOME = re.compile(r"\b(?:age|aged|BMI|body\s+mass|height|weight|duration)\b", re.I)
_AE = re.compile(r"\b(?:adverse\s+(?:events?|effects?|reactions?)|side[\s-]+effects?|"
                 r"complications?)\b", re.I)


@dataclass(frozen=True)
class Evidence:
    """Where a value was read: the source name, offsets into that source text, the snippet."""

    source: str
    start: int
    end: int
    snippet: str

    @property
    def span(self) -> str:
        return f"{self.start}-{self.end}"


@dataclass
class Arm:
    """One randomised arm: its description (the ``arm`` column), role and sample size."""

    label: str
    role: str  # "dn" or "control"
    n: int | None = None
    n_evidence: Evidence | None = None
    evidence: Evidence | None = None
    aliases: frozenset[str] = frozenset()
    sentence: Evidence | None = None  # the sentence the arms were read from


@dataclass(frozen=True)
class InstrumentMention:
    name: str
    outcome: str
    scale: str
    evidence: Evidence


@dataclass
class OutcomeValue:
    """One row of ``outcomes.csv`` before it is written."""

    instrument: str
    outcome: str
    evidence: Evidence
    value_type: str
    arm: str = ""
    contrast: str = ""
    scale: str = ""
    timepoint_weeks: float | None = None
    timepoint: str = ""
    n: int | None = None
    n_span: str = ""
    mean: float | None = None
    sd: float | None = None
    se: float | None = None
    mean_change: float | None = None
    median: float | None = None
    iqr_low: float | None = None
    iqr_high: float | None = None
    md: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p: str | None = None
    p_span: str = ""
    measure: str = ""
    note: str = ""


@dataclass(frozen=True)
class AdverseEvent:
    arm: str
    kind: str
    count: int | None
    denominator: int | None
    unit: str
    evidence: Evidence


@dataclass
class Extraction:
    """Everything the rules read from one source text."""

    source: str
    n_randomised: int | None = None
    n_evidence: Evidence | None = None
    arms: list[Arm] = field(default_factory=list)
    instruments: list[InstrumentMention] = field(default_factory=list)
    timepoints: list[float] = field(default_factory=list)
    values: list[OutcomeValue] = field(default_factory=list)
    adverse_events: list[AdverseEvent] = field(default_factory=list)
    abbreviations: dict[str, str] = field(default_factory=dict)


# ------------------------------------------------------------------ small text helpers


def _tokens(text: str) -> set[str]:
    words = re.findall(r"[A-Za-z][A-Za-z0-9]+", text)
    return {stem_word(w) for w in words} - {stem_word(s) for s in _STOP}


def _catalogue(protocol: Protocol) -> list[tuple[str, str, str, list[re.Pattern[str]]]]:
    out = []
    for outcome in protocol.data.get("outcomes", []):
        for inst in outcome["instruments"]:
            aliases = sorted({inst["name"], *inst["aliases"]}, key=len, reverse=True)
            out.append((inst["name"], outcome["name"], inst.get("scale", ""),
                        [word_pattern(a) for a in aliases]))
    return out


def canonical_instrument(text: str, protocol: Protocol) -> list[str]:
    """Protocol instrument names mentioned in ``text`` (aliases resolved), in protocol order."""
    return [name for name, _, _, patterns in _catalogue(protocol)
            if any(p.search(text) for p in patterns)]


_SCALE_AFTER = re.compile(r"^\s*[(,]?\s*(?:[A-Z-]{2,8}\s*,\s*)?(?:in\s+)?(?P<s>mm|cm|0\s*(?:-|–|to)"
                          r"\s*10{1,2}(?:\s*(?:mm|cm))?|\d+-point)\b")
_SCALE_BEFORE = re.compile(r"(?P<s>\b0\s*(?:-|–|to)\s*10{1,2}(?:\s*(?:mm|cm))?|\b\d+-point|"
                           r"\b100[\s-]?mm|\b10[\s-]?cm)\b[\w\s-]{0,25}\(?\s*$")


def _scale(raw: str) -> str:
    raw = raw.lower().replace("–", "-").replace(" to ", "-").replace(" ", "")
    if raw.endswith("mm"):
        return "mm"
    if raw.endswith("cm"):
        return "cm"
    point = re.match(r"(\d+)-point", raw)
    if point:  # an 11-point scale runs 0-10, a "100-point" one 0-100
        n = int(point.group(1))
        return f"0-{n - 1}" if n in (11, 101) else f"0-{n}"
    return raw


# ------------------------------------------------------------------ the document


@dataclass
class _Doc:
    text: str
    source: str
    protocol: Protocol
    sentences: list[tuple[int, int]] = field(default_factory=list)
    abbrevs: dict[str, str] = field(default_factory=dict)
    mentions: list[tuple[int, int, str]] = field(default_factory=list)
    times: list[TimeMention] = field(default_factory=list)
    phrases: dict[str, str] = field(default_factory=dict)
    outcome_of: dict[str, str] = field(default_factory=dict)

    def ev(self, start: int, end: int) -> Evidence:
        return Evidence(self.source, start, end, self.text[start:end])

    def sentence_at(self, pos: int) -> tuple[int, int]:
        for a, b in self.sentences:
            if a <= pos < b:
                return a, b
        return 0, len(self.text)


def _doc(text: str, source: str, protocol: Protocol) -> _Doc:
    doc = _Doc(text, source, protocol, split_sentences(text), find_abbreviations(text))
    for name, outcome, _, patterns in _catalogue(protocol):
        doc.outcome_of[name] = outcome
        seen: list[tuple[int, int]] = []
        for pattern in patterns:
            for m in pattern.finditer(text):
                if not any(a <= m.start() < b for a, b in seen):
                    seen.append((m.start(), m.end()))
                    doc.mentions.append((m.start(), m.end(), name))
    doc.mentions.sort()
    doc.times = find_times(text)
    link = re.compile(r"(?P<phrase>(?:[\w-]+\s+){0,4}?[\w-]+)\s*(?:\(\s*|\s(?:on|of|with|using|by|"
                      r"in)\s+(?:the\s+|a\s+|an\s+)?(?:modified\s+|\d+[\w-]*\s+)?)$")
    stop = _STOP | {"outcome", "outcomes", "primary", "secondary", "measured", "assessed", "rated",
                    "recorded", "evaluated", "scored", "main", "measure", "measures", "its"}
    for start, _, name in doc.mentions:
        a, _ = doc.sentence_at(start)
        m = link.search(text[max(a, start - 60):start])
        if not m:
            continue
        words: list[str] = []
        tail = m.group("phrase").split()
        while tail and tail[-1].lower() in stop - _STOP:  # "Pain was rated on …"
            tail.pop()
        if tail and tail[-1].lower() in ("was", "were", "is"):
            tail.pop()
        for word in reversed(tail):
            if word.lower() in stop or not re.match(r"[A-Za-z]", word):
                break
            words.insert(0, word.lower())
        if words and not canonical_instrument(" ".join(words), protocol):
            doc.phrases.setdefault(" ".join(words), name)
    return doc


# ------------------------------------------------------------------ sample size and arms


def _total_n(doc: _Doc) -> tuple[int | None, Evidence | None]:
    """The number randomised: the best-scored "<N> <people>" or "<N> were randomised"."""
    pattern = re.compile(rf"\b(?P<n>{NUMBER})\s+(?:(?:eligible|consecutive|adult|female|male|"
                         rf"office|unique)\s+)?(?:{_PEOPLE}|(?=were\s+(?:randomi|enrolled|"
                         rf"included|allocated|assigned|recruited)))|\b{_PEOPLE}\s*\(\s*n\s*=\s*"
                         rf"(?P<n2>\d+)\s*\)", re.I)
    best: tuple[float, int, int, int] | None = None
    for match in pattern.finditer(doc.text):
        raw = match.group("n") or match.group("n2")
        value = parse_number(raw)
        if value is None or value < 4 or value != int(value):
            continue
        start = match.start("n") if match.group("n") else match.start("n2")
        end = start + len(raw)
        a, b = doc.sentence_at(start)
        sentence = doc.text[a:b]
        after = doc.text[end:min(b, end + 90)]
        score = 2.0 if (_ALLOC.search(sentence) or re.search(
            r"\b(?:enrolled|included|recruited|took\s+part|randomi)", sentence, re.I)) else 0.0
        stop = re.search(r"\b(?:screened|assessed\s+for|completed|analy[sz]ed|lost|dropped|"
                         r"excluded|withdrew|finished)\b", after, re.I)
        alloc = _ALLOC.search(after) or re.search(r"\b(?:enrolled|took\s+part)", after, re.I)
        if stop and (not alloc or stop.start() < alloc.start()):
            score -= 3
        if doc.text[:start].count("(") > doc.text[:start].count(")"):
            score -= 2
        if re.match(r"\s*(?:women|men)\b", doc.text[end:end + 8], re.I):
            score -= 1
        key = (score, -start, int(value), end)
        if score >= 1 and (best is None or key[:2] > best[:2]):
            best = (score, -start, int(value), end)
    if best is None:
        return None, None
    return best[2], doc.ev(-best[1], best[3])


def _clean_item(text: str) -> str:
    text = re.sub(r"^\s*(?:,|;|:|\b(?:and|or|to|into|either|receiving|with)\b|\s)+", "", text,
                  flags=re.I)
    text = re.sub(r"^(?:who|which)\s+(?:received|were\s+given|underwent)\s+", "", text.strip(),
                  flags=re.I)
    text = re.sub(r"^(?:the|a|an)\s+", "", text.strip(), flags=re.I)
    text = re.sub(r"^(?:the\s+)?(?:first|second|third|other)\b(?:\s+(?:group|arm))?\s*(?:was\s+)?"
                  r"(?:treated\s+with|received|with)?\s*", "", text, flags=re.I)
    text = re.sub(r"^(?:group\s+\w+|(?:the\s+)?[\w-]+\s+group)\s+(?:received|receives|"
                  r"was\s+treated\s+with|underwent)\s+", "", text, flags=re.I)
    text = re.sub(r"\s+(?:once|twice|three\s+times|\w+\s+times\s+a\s+week|for\s+\S+\s+(?:weeks?|"
                  r"days?|months?)|over\s+\S+\s+weeks?)\b.*$", "", text, flags=re.I)
    text = re.sub(r"[\s,;:.]+(?:and|or)?$", "", text.strip(), flags=re.I)
    text = re.sub(r"\s+(?:groups?|arms?)$", "", text, flags=re.I) if len(text.split()) > 1 else text
    return text.strip(" ,;:")


def _split_list(text: str) -> list[str]:
    items = [p for p in re.split(r",?\s+or\s+(?:to\s+)?", text) if p.strip()]
    if len(items) >= 2:
        if re.search(r"\b(?:groups|arms)\s*$", items[-1]) or re.search(r"\bthree|four\b", text):
            split: list[str] = []
            for item in items:
                parts = [p for p in re.split(r",\s*", item) if p.strip()]
                split.extend(parts if all(len(p.split()) <= 2 for p in parts) else [item])
            items = split
        return items
    depth, parts, last = 0, [], 0
    for i, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and ch == ",":
            parts.append(text[last:i])
            last = i + 1
    parts.append(text[last:])
    out: list[str] = []
    for part in parts:
        out.extend(re.split(r"\s+and\s+(?=(?:a|an|the|group)\b|\w+(?:-\w+)?\s+(?:group|arm)\b)",
                            part) if len(parts) == 1 else [part])
    if len(parts) > 1 and " and " in out[-1]:
        out[-1:] = re.split(r"\s+and\s+", out[-1], maxsplit=1)
    return [p for p in out if p.strip()]


def _distribute(items: list[str]) -> list[str]:
    """``real or sham trigger point dry needling`` → both arms get the shared head noun."""
    if len(items) >= 2 and len(items[-1].split()) > 1:
        tail = items[-1].split(maxsplit=1)[1]
        return [f"{item} {tail}" if len(item.split()) == 1 and item.islower() else item
                for item in items[:-1]] + [items[-1]]
    return items


_INT = rf"(?:(?<![\w.±/+-])\d+(?![\w.])|\b{WORD_NUMBER}\b)"
_LABEL = (r"(?:\bgroup\s+(?:[A-Z]|\d)\b|\b(?:the\s+)?(?:first|second|other)\b(?:\s+(?:group|arm))?|"
          r"\bone\s+(?:arm|group)\b|\b(?:the|an?)\s+(?:[\w-]+\s+){1,2}(?:group|arm)\b)")
_GIVE = r"\s*(?:received|receives|was\s+treated\s+with|treated\s+with|underwent|performed)\s+"
_Candidate = tuple[str, int | None, Evidence, Evidence | None]


def _arm_candidates(doc: _Doc) -> list[_Candidate]:
    """Arms as (description, n, evidence of the description, evidence of n).

    Sentence by sentence, the first that yields two or more arms by any rule wins; within a
    sentence the rules that also give n come first.
    """
    for a, b in doc.sentences:
        sentence = doc.text[a:b]
        if not (_ALLOC.search(sentence) or re.search(r"\b(?:group|arm)s?\b", sentence, re.I)):
            continue
        for rule in (_by_n_marks, _by_n_in_group, _by_n_received, _by_labels, _by_list):
            found = rule(doc, a, sentence)
            if len(found) >= 2 and all(desc for desc, *_ in found):
                return found
    return []


def _by_n_marks(doc: _Doc, a: int, sentence: str) -> list[_Candidate]:
    """``… to X (n = 58) or to Y (n = 53)``, ``Z (control group, n = 34)``."""
    marks = list(re.finditer(r"\(\s*(?:(?P<lab>[^()]{0,40}?),\s*)?n\s*=\s*(?P<n>\d+)\s*\)",
                             sentence))
    if len(marks) < 2 or re.search(r"\b(?:women|men|male|female)\b", marks[0].group(0), re.I):
        return []
    verb = _ALLOC.search(sentence)
    prev = verb.end() if verb and verb.end() < marks[0].start() else 0
    out = []
    for m in marks:
        chunk = re.split(r"[;:]|,?\s+(?:or|and|versus|vs\.?)\s+(?:to\s+)?(?=(?:the|a|an)\s)|"
                         r",?\s+or\s+(?:to\s+)?|\b(?:in)?to\s+(?:either\s+)?",
                         sentence[prev:m.start()])[-1]
        desc = _clean_item(chunk)
        if m.group("lab"):
            desc = f"{desc} ({m.group('lab').strip()})" if desc else m.group("lab").strip()
        out.append((desc, int(m.group("n")), doc.ev(a + prev, a + m.end()),
                    doc.ev(a + m.start("n"), a + m.end("n"))))
        prev = m.end()
    return out


def _by_n_in_group(doc: _Doc, a: int, sentence: str) -> list[_Candidate]:
    """``eight in the experimental group, who received X, and eight in the control group``."""
    found = re.finditer(
        rf"(?P<n>{_INT})\s+(?:{_PEOPLE}\s+)?(?:were\s+)?(?:in|into|to)\s+(?P<lab>(?:the|an?)\s+"
        rf"(?:[\w-]+\s+){{0,3}}?(?:group|arm))(?:,?\s*(?:who|which)\s+(?:received|were\s+treated"
        rf"\s+with|underwent|had)\s+(?P<desc>[^,;.]+))?", sentence, re.I)
    return [((f"{m.group('desc').strip()} ({_clean_item(m.group('lab'))} group)" if m.group("desc")
              else _clean_item(m.group("lab"))), int(parse_number(m.group("n")) or 0),
             doc.ev(a + m.start(), a + m.end()), doc.ev(a + m.start("n"), a + m.end("n")))
            for m in found]


def _by_n_received(doc: _Doc, a: int, sentence: str) -> list[_Candidate]:
    """``29 received MSN release and 25 received a steroid injection``."""
    found = [m for m in re.finditer(rf"(?P<n>{_INT})\s+(?:{_PEOPLE}\s+)?(?:were\s+)?(?:treated\s+"
                                    rf"with|received|underwent|given|with)\s+", sentence, re.I)
             if not re.search(r"\b(?:group|arm)\s*$", sentence[:m.start()], re.I)]  # "group 1"
    out = []
    for i, m in enumerate(found):
        stop = found[i + 1].start() if i + 1 < len(found) else len(sentence)
        desc = _clean_item(re.split(r"[;.]", sentence[m.end():stop])[0])
        out.append((desc, int(parse_number(m.group("n")) or 0), doc.ev(a + m.start(), a + stop),
                    doc.ev(a + m.start("n"), a + m.end("n"))))
    return out


def _by_labels(doc: _Doc, a: int, sentence: str) -> list[_Candidate]:
    """``group A received X; group B received Y``, ``one arm received X and the other Y``."""
    heads = [m for m in re.finditer(_LABEL + f"(?:{_GIVE})?", sentence, re.I)
             if re.search(_GIVE + "$", m.group(0), re.I) or re.match(
                 r"(?:the\s+)?(?:other|second)", m.group(0), re.I)]
    if not any(re.search(_GIVE + "$", h.group(0), re.I) for h in heads):
        return []
    out = []
    for i, m in enumerate(heads):
        stop = heads[i + 1].start() if i + 1 < len(heads) else len(sentence)
        chunk = re.split(r",\s*(?:each|both)\b|;", sentence[m.end():stop])[0]
        desc = _clean_item(re.sub(r"[\s,;]+(?:and|while|whereas)?\s*$", "", chunk))
        tag = re.match(r"group\s+\w+", m.group(0), re.I)
        out.append((f"{desc} ({tag.group(0)})" if tag and desc else desc, None,
                    doc.ev(a + m.start(), a + stop), None))
    return out


def _by_list(doc: _Doc, a: int, sentence: str) -> list[_Candidate]:
    """``allocated to real or sham needling``, ``divided into an X group and a Y group``."""
    lead = re.search(r"\b(?:randomi[sz]ed|allocated|assigned|divided|distributed|enrolled|"
                     r"randomly\s+\w+)(?:\s+\w+ly)?(?:\s+(?:by|using|with)\s+(?:an?\s+|the\s+)?"
                     r"[\w\s:-]{0,40}?)?\s+(?:either\s+)?(?:in\s*to|between|to)\s+(?:either\s+)?(?:(?:two|three|"
                     r"four|2|3|4)\s+(?:groups|arms)(?:\s+of\s+\w+)?(?:\s+by\s+[\w\s-]+?)?\s*"
                     r"(?:[:,]\s*)?)?", sentence, re.I)
    if not lead:
        return []
    rest = sentence[lead.end():]
    cut = re.search(r";|\.\s*$|\.$|,\s*(?:delivered|each|with|who|and\s+were|using|by|receiving\s+"
                    r"(?!either))|\s+and\s+were\b|\s+\(\d+\s+per\b|\s+by\s+|\s+using\s+", rest)
    rest = rest[:cut.start()] if cut else rest
    items = [i for i in _distribute([_clean_item(i) for i in _split_list(rest)]) if i]
    ev = doc.ev(a + lead.end(), a + lead.end() + len(rest))
    return [(item, None, ev, None) for item in items]


def _cointerventions(doc: _Doc) -> list[str]:
    out = []
    for m in re.finditer(r"\b(?:(?:all|both|each)(?:\s+(?:of\s+the\s+)?(?:two|three|four))?\s+"
                         r"(?:groups?|arms?)(?:\s+also)?\s+(?:received|performed|underwent|were\s+"
                         r"given)|each\s+combined\s+with|each\s+added\s+to|both\s+combined\s+with)"
                         r"\s+(?P<co>[^.;]+)", doc.text, re.I):
        co = re.split(r"\s+(?:\w+\s+(?:days?|times|sessions?)\s+(?:a|per)\s+week|once|twice|for|"
                      r"over|during|at|on|from)\b|\s*[,(]", m.group("co"))[0].strip()
        if co and len(co.split()) <= 6 and not re.match(rf"(?:\d+|{WORD_NUMBER})\b", co, re.I):
            out.append(re.sub(r"^(?:a|an|the)\s+", "", co, flags=re.I))
    return out


def _dn_terms(protocol: Protocol) -> list[re.Pattern[str]]:
    terms = list(protocol.criteria["intervention"]["terms"]) + ["needling"]
    return [word_pattern(t) for t in terms]


def find_arms(doc: _Doc) -> list[Arm]:
    """Arms with their roles; the dry needling arm first, then controls in order of mention."""
    candidates = _arm_candidates(doc)
    if len(candidates) < 2:
        return []
    co = _cointerventions(doc)
    dn_patterns = _dn_terms(doc.protocol)
    arms: list[Arm] = []
    for desc, n, ev, n_ev in candidates:
        label = desc
        for abbr, expansion in doc.abbrevs.items():
            if re.search(rf"(?<![\w-]){re.escape(abbr)}(?![\w-])", label) and (
                    expansion.lower() not in label.lower()):
                label = re.sub(rf"(?<![\w-]){re.escape(abbr)}(?![\w-])",
                               f"{expansion} ({abbr})", label, count=1)
        for extra in co:
            if not _tokens(extra) <= _tokens(label):
                label = f"{label} + {extra}"
        dn = any(p.search(label) for p in dn_patterns) and not _SHAM.search(label)
        arms.append(Arm(label=label, role="dn" if dn else "control", n=n or None,
                        n_evidence=n_ev if n else None, evidence=ev,
                        sentence=doc.ev(*doc.sentence_at(ev.start))))
    if not any(a.role == "dn" for a in arms) and any(p.search(doc.text) for p in dn_patterns):
        generic = [a for a in arms if re.search(r"\b(?:experimental|intervention|treatment|case|"
                                                r"study)\b", a.label, re.I)]
        if len(generic) == 1:
            generic[0].role = "dn"
            generic[0].label += " (dry needling)"
    _equal_n(doc, arms)
    arms.sort(key=lambda a: a.role != "dn")  # stable: controls keep their order of mention
    _aliases(doc, arms)
    return arms


def _equal_n(doc: _Doc, arms: list[Arm]) -> None:
    if all(a.n for a in arms):
        return
    for m in re.finditer(rf"(?P<n>{_INT})\s+(?:{_PEOPLE}\s+)?(?:per|in\s+each|each)\s+(?:arm|"
                         rf"group)\b|\b(?:groups|arms)\s+of\s+(?P<n2>{_INT})", doc.text, re.I):
        a, b = next(c for c in split_clauses(doc.text, *doc.sentence_at(m.start()))
                    if c[0] <= m.start() <= c[1])
        if not re.search(r"\b(?:completed|analy[sz]ed|finished|followed\s+up)\b", doc.text[a:b]):
            break
    else:
        return
    key = "n" if m.group("n") else "n2"
    value = parse_number(m.group(key))
    if value:
        for arm in arms:
            if not arm.n:
                arm.n, arm.n_evidence = int(value), doc.ev(m.start(key), m.end(key))


def _aliases(doc: _Doc, arms: list[Arm]) -> None:
    toks = [_tokens(a.label) for a in arms]
    for i, arm in enumerate(arms):
        others = set().union(*(t for j, t in enumerate(toks) if j != i)) if len(arms) > 1 else set()
        own = set(toks[i] - others) - {stem_word(w) for w in doc.outcome_of} - {"vas", "pain"}
        for abbr, expansion in doc.abbrevs.items():
            if abbr in arm.label or (_tokens(expansion) and _tokens(expansion) <= toks[i]
                                     and not _tokens(expansion) <= others):
                own.add(abbr.lower())
        for tag in re.findall(r"\bgroup\s+([A-Z0-9])\b", arm.label):
            own.add(f"group {tag.lower()}")
        for word, role in (("control", "control"), ("experimental", "dn"), ("case", "dn")):
            holders = [a for a in arms if re.search(rf"\b{word}", a.label, re.I)]
            if holders == [arm] or (not holders and arm.role == role and
                                    sum(a.role == role for a in arms) == 1):
                own.add(word)
        if arm.role == "dn" and sum(a.role == "dn" for a in arms) == 1 and not any(
                "needl" in t for t in others):
            own |= {"needl", "dn", "dry"}
        arm.aliases = frozenset(own)


def _arm_mentions(text: str, start: int, end: int, arms: list[Arm]) -> list[tuple[int, int, int]]:
    """(start, end, arm index) of words naming an arm inside ``text[start:end]``."""
    out: list[tuple[int, int, int]] = []
    for m in re.finditer(r"\bgroup\s+[A-Z0-9]\b|[A-Za-z][A-Za-z0-9]*", text[start:end]):
        word = m.group(0)
        key = word.lower() if word.startswith(("group ", "Group ")) else stem_word(word)
        if word.isupper() and len(word) > 1:
            key = word.lower()
        hits = [i for i, a in enumerate(arms) if key in a.aliases or word.lower() in a.aliases]
        if not hits and len(arms) == 2 and re.match(r"\s*group\b", text[start + m.end():]) and (
                key not in _NOT_A_GROUP):
            # "the steroid group" when the arm was described as methylprednisolone: in a
            # two-arm trial a group that is not the dry needling group is the other one
            hits = [i for i, a in enumerate(arms) if a.role == "control"]
        if len(hits) == 1:
            s, e = start + m.start(), start + m.end()
            if out and out[-1][2] == hits[0] and s - out[-1][1] <= 2:
                out[-1] = (out[-1][0], e, hits[0])
            else:
                out.append((s, e, hits[0]))
    return out


# ------------------------------------------------------------------ values


@dataclass
class _Item:
    stat: Stat  # offsets relative to the document
    kind: str   # "arm" (one arm's value), "md", "p"
    arm: int | None = None
    measure: str = ""


def _items(doc: _Doc, a: int, b: int) -> list[_Item]:
    sentence = doc.text[a:b]
    stats = [replace(s, start=s.start + a, end=s.end + a) for s in find_stats(sentence)]
    if re.search(r"\bmean|\bSD\b|\breduction|\bchange", sentence, re.I):
        for s in find_bare_mean_sd(sentence):
            s = replace(s, start=s.start + a, end=s.end + a)
            if all(s.end <= t.start or s.start >= t.end for t in stats):
                stats.append(s)
    items: list[_Item] = []
    for s in stats:
        if s.kind == "ci":
            before = doc.text[a:s.start + (doc.text[s.start:s.end].find(",") if doc.text[
                s.start] == "(" else 0)]
            cues = [(m.end(), "md") for m in _DIFF_CUE.finditer(before)]
            cues += [(m.end(), "other") for m in _OTHER_CUE.finditer(before)]
            if not cues or max(cues)[1] != "md":
                continue
            mid = re.search(r"\bfor\s+(?P<m>[^()]+?)\s*[,(\[]", doc.text[s.start:s.end])
            items.append(_Item(s, "md", measure=mid.group("m").strip() if mid else ""))
        elif s.kind in ("mean_sd", "median_iqr"):
            near = doc.text[max(a, s.start - 30):s.start].split(";")[-1]
            if _NOT_OUTCOME.search(near) or re.match(r"\s*(?:years|yrs|kg\b|%)",
                                                     doc.text[s.end:s.end + 8]):
                continue
            items.append(_Item(s, "arm"))
    for m in re.finditer(r"\bmean\s+(?P<what>(?:[\w-]+\s+){0,4}?)(?:was|were|of|had\s+fallen\s+to|"
                         r"fell\s+to|decreased\s+to|dropped\s+to|rose\s+to|increased\s+to|=)\s+",
                         sentence, re.I):
        if _NOT_OUTCOME.search(m.group("what")):
            continue
        pos = a + m.end()
        stop = re.search(r"[;(]|\.\s|$", doc.text[pos:b])
        end = pos + (stop.start() if stop else 0)
        for num in re.finditer(NUMBER, doc.text[pos:end]):
            s0, s1 = pos + num.start(), pos + num.end()
            if num.start() and not re.search(r"(?:,|\band)\s*$", doc.text[max(pos, s0 - 40):s0]):
                continue
            if any(t.start <= s0 < t.end for t in stats) or re.match(r"\s*(?:%|years|kg)",
                                                                     doc.text[s1:s1 + 6]):
                continue
            value = parse_number(num.group(0))
            if value is not None and "." in num.group(0):
                items.append(_Item(Stat(s0, s1, "mean", value), "arm"))
    if re.search(r"\bmean\s+ranks?\b", sentence, re.I):  # Mann-Whitney mean ranks, not means
        pair = rf"\(\s*(?P<x>{DIGITS})\s+(?:versus|vs\.?)\s+(?P<y>{DIGITS})"
        for m in re.finditer(pair, sentence):
            for key in ("x", "y"):
                items.append(_Item(Stat(a + m.start(key), a + m.end(key), "rank",
                                        parse_number(m.group(key))), "arm"))
    inside = [(s.start, s.end) for s in stats if s.kind == "ci"]
    for p in find_p_values(sentence):
        s0, s1 = a + p.start, a + p.end
        if not any(x <= s0 < y for x, y in inside):
            items.append(_Item(Stat(s0, s1, "p", p=p.text), "p"))
    return sorted(items, key=lambda i: i.stat.start)


def _unique(refs: list[tuple[int, str]]) -> list[str]:
    return list(dict.fromkeys(name for _, name in refs))


def _refs(doc: _Doc, start: int, end: int) -> list[tuple[int, str]]:
    """Instrument references in ``text[start:end]``: aliases, outcome phrases tied to an
    instrument elsewhere ("first-step pain" on a VAS), and outcome words when the study has
    one instrument for that outcome ("pain" → VAS)."""
    out = [(s, name) for s, e, name in doc.mentions if start <= s and e <= end]
    spans = [(s, e) for s, e, _ in doc.mentions if start <= s and e <= end]
    aliases = list(spans)

    def qualifies(p0: int, p1: int) -> bool:
        # taken already, or a word qualifying the instrument just named ("FFI pain subscale")
        return any(x < p1 and p0 < y for x, y in spans) or any(
            0 <= p0 - y <= 15 and not re.search(r"[,;()]|\b(?:and|or)\b", doc.text[y:p0])
            for _, y in aliases)

    low = doc.text[start:end].lower()
    for phrase, name in sorted(doc.phrases.items(), key=lambda kv: -len(kv[0])):
        for m in re.finditer(rf"\b{re.escape(phrase)}\b", low):
            p0, p1 = start + m.start(), start + m.end()
            if not qualifies(p0, p1):
                out.append((p0, name))
                spans.append((p0, p1))
    named = list(dict.fromkeys(name for _, _, name in doc.mentions))
    for outcome in sorted(set(doc.outcome_of.values())):
        only = [n for n in named if doc.outcome_of[n] == outcome]
        if len(only) != 1:
            continue
        for m in re.finditer(rf"\b{re.escape(outcome)}(?:al|ing)?\b", low):
            p0, p1 = start + m.start(), start + m.end()
            if not qualifies(p0, p1):
                out.append((p0, only[0]))
    return sorted(out)


def _subject(doc: _Doc, items: list[_Item], k: int, sentence: tuple[int, int],
             clause: tuple[int, int], last: list[str]) -> tuple[list[str], int]:
    """The instrument(s) a statistic is about, and where the text about it starts."""
    item, text = items[k], doc.text
    s = item.stat
    if item.measure:
        named = canonical_instrument(item.measure, doc.protocol)
        if named:
            return named[:1], clause[0]
        for phrase, name in sorted(doc.phrases.items(), key=lambda kv: -len(kv[0])):
            if phrase in item.measure.lower():
                return [name], clause[0]
        named = _unique(_refs(doc, s.start, s.end))
        if named:
            return named[:1], clause[0]
    par = enclosing_brackets(text, sentence[0], s.start) if item.kind == "p" else None
    if par:
        po, pc = par
        prev = max([i.stat.end for i in items[:k] if po < i.stat.start] + [po + 1])
        inside = _refs(doc, prev, s.start)
        if inside:  # "(VAS P = 0.732; FFI P = 0.578)"
            return [inside[-1][1]], clause[0]
        if re.match(r"\s*(?:for|in|on)\b", text[s.end:pc]) and _refs(doc, s.end, pc):
            return _unique(_refs(doc, s.end, pc)), clause[0]  # "(p = 0.001 for FHSQ and FFI)"
        group = [i for i in items if i.kind == "p" and po < i.stat.start < pc]
        if len(group) >= 2:  # "on VAS, HTI and SF-36 (P = 0.03, P = 0.006 and P = 0.002)"
            pieces = list_items(text, clause[0], po)[-len(group):]
            if len(pieces) != len(group):
                return [], po
            x, y = pieces[group.index(item)]
            return _unique(_refs(doc, x, y)), clause[0]
        opened = {enclosing_brackets(text, sentence[0], i.stat.start)
                  for i in items if i.kind == "p"}
        if len(opened - {None}) >= 2:  # "standing time (p = .002), walking distance (p <= .001)"
            x = list_items(text, clause[0], po)[-1][0] if list_items(text, clause[0], po) else po
            names = _unique(_refs(doc, x, po))
            rest = re.sub(r"\b(?:and|or|at|after|in|by|the)\b|[\s,]", "", _without_times(
                doc, x, po))
            return (names or (last if not rest else [])), x
    since = max([i.stat.end for i in items[:k] if clause[0] <= i.stat.start] + [clause[0]])
    recent = _unique(_refs(doc, since, s.start))
    if item.kind == "p" and len(recent) > 1:
        return recent, since
    for lo in (clause[0], sentence[0]):
        before = _refs(doc, lo, s.start)
        if before:
            return [before[-1][1]], clause[0]
    return [], clause[0]


def _without_times(doc: _Doc, start: int, end: int) -> str:
    text = list(doc.text[start:end])
    for t in doc.times:
        if start <= t.start and t.end <= end:
            text[t.start - start:t.end - start] = " " * (t.end - t.start)
    return "".join(text)


def _time_at(doc: _Doc, start: int, end: int, sentence: tuple[int, int],
             lead: int) -> list[TimeMention]:
    a, b = sentence
    usable = [t for t in doc.times if a <= t.start < b and not t.duration and not t.reference]
    before = [t for t in usable if t.start < start]
    if re.search(r"\b(?:every|all|each)\s+(?:time\s+point|follow-up|assessment)",
                 doc.text[lead:start], re.I):
        return []
    if before:
        last = before[-1]
        group = [t for t in before if t.label.split()[-1] == last.label.split()[-1]
                 and last.start - t.start < 40 and t.weeks is not None and last.weeks is not None]
        return group if len(group) > 1 and re.search(r"\band\b", doc.text[group[0].start:
                                                                         last.start]) else [last]
    after = [t for t in usable if t.start >= end and t.start - end <= 40
             and not re.search(r"[,;()]", doc.text[end:t.start])]
    if after:
        return after[:1]
    schedule = [t.weeks for t in doc.times if t.weeks is not None and not t.duration]
    if schedule and re.search(r"\b(?:end|last|final)\s+(?:of\s+(?:the\s+)?)?follow-up",
                              doc.text[a:b], re.I):
        return [TimeMention(start, start, max(schedule), "end of follow-up")]
    return []


def _assign_arms(doc: _Doc, items: list[_Item], arms: list[Arm], a: int, b: int) -> None:
    arm_items = [i for i in items if i.kind == "arm"]
    if not arm_items or not arms:
        return
    mentions = _arm_mentions(doc.text, a, b, arms)
    after_ok = re.compile(r"^[\s(]*(?:(?:in|after|for|with|among|on)\s+)?(?:the\s+|an?\s+)?"
                          r"(?:(?!versus\b|vs\b|than\b|and\b|or\b|but\b|compared\b)[\w-]+\s+){0,2}$",
                          re.I)
    before_ok = re.compile(r"^\s*(?:group|arm)?\s*(?:\(|:|=)\s*$|^\s*(?:group|arm)?\s+(?:was|"
                           r"were|of|had)\s*$", re.I)
    for item in arm_items:
        nxt = min([i.stat.start for i in items if i.stat.start > item.stat.start] + [b])
        for s, _, idx in mentions:
            if item.stat.end <= s < nxt and after_ok.match(doc.text[item.stat.end:s]):
                item.arm = idx
                break
        if item.arm is None:
            for _, e, idx in reversed(mentions):
                if e <= item.stat.start and before_ok.match(doc.text[e:item.stat.start]):
                    item.arm = idx
                    break
    versus = re.compile(r"^[^;()]{0,60}\b(?:versus|vs\.?|compared\s+with|against)\b[^;()]{0,25}$")
    order: list[int] = []
    k = 0
    while k + 1 < len(arm_items):  # "x versus y": a pair of arms, in the order of the last pair
        x, y = arm_items[k], arm_items[k + 1]
        if not versus.match(doc.text[x.stat.end:y.stat.start]):
            k += 1
            continue
        if len(arms) == 2:
            if x.arm is None and y.arm is not None:
                x.arm = 1 - y.arm
            elif y.arm is None and x.arm is not None:
                y.arm = 1 - x.arm
            elif x.arm is None and y.arm is None:
                near = list(dict.fromkeys(idx for _, e, idx in mentions if e <= x.stat.start))
                first = order[0] if order else (near[0] if near else None)
                if first is not None:
                    x.arm, y.arm = first, 1 - first
        if x.arm is not None and y.arm is not None:
            order = [x.arm, y.arm]
        k += 2
    if re.search(r"\brespectively\b", doc.text[a:b]):
        labelled = [i.arm for i in arm_items if i.arm is not None]
        loose = [i for i in arm_items if i.arm is None]
        if loose and labelled and len(loose) == len(labelled):
            for item, idx in zip(loose, labelled, strict=True):
                item.arm = idx
    for x, y in zip(arm_items, arm_items[1:], strict=False):  # "from A to B in group A"
        if x.arm is None and y.arm is not None and re.search(
                r"\bfrom\s*$", doc.text[a:x.stat.start]) and re.match(
                r"\s*to\s*$", doc.text[x.stat.end:y.stat.start]):
            x.arm = y.arm
    for item in arm_items:
        if item.arm is None:
            clause = next(c for c in split_clauses(doc.text, a, b)
                          if c[0] <= item.stat.start <= c[1])
            near = [idx for s, e, idx in mentions if clause[0] <= s and e <= item.stat.start]
            if near:
                item.arm = near[-1]
            elif not mentions and _WHOLE.search(doc.text[a:b]):
                item.arm = -1  # the whole sample


def _contrast(arms: list[Arm]) -> str:
    """What a between-group row compares: "<dn arm> vs <control arm>" when there are two."""
    dn = [a for a in arms if a.role == "dn"]
    controls = [a for a in arms if a.role == "control"]
    if len(dn) == 1 and len(controls) == 1:
        return f"{dn[0].label} vs {controls[0].label}"
    return "between groups"


def _values(doc: _Doc, arms: list[Arm], n_total: int | None,
            n_ev: Evidence | None) -> list[OutcomeValue]:
    out: list[OutcomeValue] = []
    contrast = _contrast(arms)
    whole = (n_total, n_ev.span if n_ev else "")
    for a, b in doc.sentences:
        items = _items(doc, a, b)
        if not items:
            continue
        _assign_arms(doc, items, arms, a, b)
        clauses = split_clauses(doc.text, a, b)
        last: list[str] = []
        for k, item in enumerate(items):
            s = item.stat
            clause = next(c for c in clauses if c[0] <= s.start <= c[1])
            names, lead = _subject(doc, items, k, (a, b), clause, last)
            if not names:
                continue
            last = names
            if item.kind != "p":
                names = names[-1:]
            times = _time_at(doc, s.start, s.end, (a, b), lead)
            prev = items[k - 1].stat if k else None
            nxt = items[k + 1].stat if k + 1 < len(items) else None
            if item.kind == "arm" and nxt and re.search(r"\bfrom\s*$", doc.text[a:s.start]) and (
                    re.match(r"\s*to\s*$", doc.text[s.end:nxt.start])):
                times = [TimeMention(s.start, s.start, None, "baseline")]  # "fell from A to B"
            elif item.kind == "arm" and prev and re.search(r"\bfrom\s*$", doc.text[
                    a:prev.start]) and re.match(r"\s*to\s*$", doc.text[prev.end:s.start]) and not [
                    t for t in times if t.weeks is not None]:
                times = [TimeMention(s.start, s.start, 0.0, "after treatment")]
            for time in times or [None]:
                for name in names:
                    row = _row(doc, item, name, time, arms, contrast, whole, (a, b), lead)
                    if row is not None:
                        out.append(row)
    return out


def _row(doc: _Doc, item: _Item, name: str, time: TimeMention | None, arms: list[Arm],
         contrast: str, whole: tuple[int | None, str], sentence: tuple[int, int],
         lead: int) -> OutcomeValue | None:
    s = item.stat
    row = OutcomeValue(instrument=name, outcome=doc.outcome_of.get(name, ""),
                       evidence=doc.ev(s.start, s.end), value_type="final",
                       measure=item.measure)
    if time is not None:
        row.timepoint_weeks, row.timepoint = time.weeks, time.label
        if time.baseline:
            row.value_type = "baseline"
        if time.label == "end of follow-up":
            row.note = "time point read as the last scheduled assessment"
    row.scale = _scale(s.unit) if s.unit in ("mm", "cm") else _instrument_scale(doc, name)
    if item.kind == "md":
        row.value_type, row.contrast = "difference", contrast
        row.md, row.ci_low, row.ci_high, row.p = s.value, s.low, s.high, s.p
        row.p_span = row.evidence.span if s.p else ""
        return row
    if item.kind == "p":
        row.p, row.p_span = s.p, f"{s.start}-{s.end}"
        text = doc.text[lead:s.start]
        named = {idx for _, _, idx in _arm_mentions(doc.text, lead, s.start, arms)}
        comparative = re.search(r"\b(?:greater|lower|higher|better|worse|larger|smaller|more|"
                                r"less)\b", text, re.I) and named
        if _BETWEEN.search(text) or len(named) > 1 or comparative or (
                not _WITHIN.search(text) and not _WHOLE.search(text)):
            row.value_type, row.contrast = "difference", contrast
        else:
            row.value_type = "baseline" if row.value_type == "baseline" else "change"
            if len(named) == 1 and not _WHOLE.search(text):
                _set_arm(row, arms[named.pop()])
            else:
                row.contrast = "all groups"
                row.n, row.n_span = whole
        return row
    if item.arm is None:
        return None
    change = _CHANGE.search(doc.text[max(sentence[0], s.start - 60):s.start])
    if s.kind == "rank":
        row.value_type, row.mean = "mean_rank", s.value
    elif s.kind == "median_iqr":
        row.median, row.iqr_low, row.iqr_high = s.value, s.low, s.high
    elif change and row.value_type != "baseline":
        row.value_type, row.mean_change, row.sd = "change", s.value, s.spread
    else:
        row.mean, row.sd = s.value, s.spread
    if row.sd is not None and re.search(r"\b(?:SEM|SE|standard\s+error)\b",
                                        doc.text[sentence[0]:sentence[1]]):
        row.se, row.sd = row.sd, None
    if item.arm == -1:
        row.contrast = "whole sample"
        row.n, row.n_span = whole
    else:
        _set_arm(row, arms[item.arm])
    return row


def _set_arm(row: OutcomeValue, arm: Arm) -> None:
    row.arm = arm.label
    if arm.n:
        row.n, row.n_span = arm.n, arm.n_evidence.span if arm.n_evidence else ""


def _instrument_scale(doc: _Doc, name: str) -> str:
    for start, end, mention in doc.mentions:
        if mention != name:
            continue
        a, b = doc.sentence_at(start)
        after = _SCALE_AFTER.match(doc.text[end:min(b, end + 20)])
        before = _SCALE_BEFORE.search(doc.text[max(a, start - 40):start])
        if after or before:
            return _scale((after or before).group("s"))
    return ""


# ------------------------------------------------------------------ adverse events


def _adverse_events(doc: _Doc, arms: list[Arm]) -> list[AdverseEvent]:
    out: list[AdverseEvent] = []
    for a, b in doc.sentences:
        sentence = doc.text[a:b]
        hit = _AE.search(sentence)
        if not hit:
            continue
        kind_m = re.search(r"(?P<k>(?:(?:minor|major|serious|severe|mild|moderate|transient|"
                           r"short-lived|local|systemic)\s+){1,3})$", sentence[:hit.start()], re.I)
        kind = (kind_m.group("k").strip().lower() if kind_m else "any")
        mentions = _arm_mentions(doc.text, a, b, arms)
        none = re.search(r"\bno\s+(?:(?:\w+\s+){0,2})(?:adverse|side|complication)|\bwithout\s+"
                         r"(?:any\s+)?(?:adverse|side|complication)|\b(?:were|was)\s+not\s+"
                         r"(?:observed|reported|recorded|seen)", sentence, re.I)
        if none:
            k = re.search(r"\b(serious|severe|major)\b", none.group(0), re.I)
            named = {idx for _, _, idx in mentions}
            arm = arms[named.pop()].label if len(named) == 1 and not _WHOLE.search(
                sentence) else ""
            out.append(AdverseEvent(arm, k.group(1).lower() if k else kind, 0, None, "",
                                    doc.ev(a + none.start(), a + none.end())))
            continue
        for m in re.finditer(rf"(?P<n>{_INT}|\ba\s+single|\bnone)(?:\s*(?:/|of|out\s+of)\s*"
                             rf"(?P<d>\d+))?\s+(?:of\s+the\s+)?(?:[\w-]+\s+){{0,2}}?(?P<unit>"
                             rf"appointments?|sessions?|participants?|patients?|people|subjects?|"
                             rf"cases?|treatments?|visits?|controls?)\b", sentence, re.I):
            value = parse_number(re.sub(r"^a\s+", "", m.group("n"), flags=re.I))
            if value is None or m.start() < hit.start() - 200:
                continue
            s0, s1 = a + m.start(), a + m.end()
            named = [idx for s, e, idx in mentions if s0 <= s < s1]
            arm = arms[named[0]].label if named else ""
            unit = m.group("unit").lower()
            unit = unit if unit.endswith("s") or unit == "people" else unit + "s"
            if unit == "controls":
                unit = "participants"
            out.append(AdverseEvent(arm, kind, int(value), int(m.group("d")) if m.group("d")
                                    else None, unit, doc.ev(s0, s1)))
    return out


# ------------------------------------------------------------------ public API


def extract_from_text(text: str, *, source: str, protocol: Protocol,
                      arms: list[Arm] | None = None) -> Extraction:
    """Read one text (an abstract, a full-text body) into an :class:`Extraction`.

    Parameters
    ----------
    text : str
        The text as stored; spans index into it unchanged.
    source : str
        Its name in the outcomes table, e.g. ``"abstract"`` or ``"pmc:body"``.
    protocol : Protocol
        Supplies instrument aliases and scales, and the dry needling terms.
    arms : list of Arm, optional
        Arms already known (from the abstract) when reading a full-text body.

    Examples
    --------
    >>> from reviewpipe.protocol import load_protocol
    >>> p = load_protocol("queries/dry-needling-pf.toml")
    >>> e = extract_from_text("Eighty-four adults were randomised.", source="abstract",
    ...                       protocol=p)
    >>> e.n_randomised
    84
    """
    doc = _doc(text or "", source, protocol)
    n_total, n_ev = _total_n(doc)
    if arms:
        arms = [replace(arm) for arm in arms]
        _aliases(doc, arms)
    else:
        arms = find_arms(doc)
    if n_total is None and arms and all(a.n for a in arms):
        n_total = sum(a.n or 0 for a in arms)
    instruments = []
    for start, end, name in doc.mentions:
        if name not in {i.name for i in instruments}:
            instruments.append(InstrumentMention(name, doc.outcome_of[name],
                                                 _instrument_scale(doc, name), doc.ev(start, end)))
    schedule = sorted({t.weeks for t in doc.times if t.weeks is not None and not t.duration
                       and not t.reference})
    return Extraction(source=source, n_randomised=n_total, n_evidence=n_ev, arms=arms,
                      instruments=instruments, timepoints=schedule,
                      values=_values(doc, arms, n_total, n_ev),
                      adverse_events=_adverse_events(doc, arms), abbreviations=doc.abbrevs)


def assign_comparison(record: dict[str, Any], arms: list[Arm],
                      protocol: Protocol) -> tuple[str, str]:
    """The protocol comparison a study makes, and the evidence that decided it.

    Each control arm is judged against the dry needling arm: sham/placebo terms → the sham
    comparison; a control whose care the dry needling arm also receives → the add-on
    comparison (the one whose ``control_terms`` say "alone"/"only"); any other treatment → the
    comparison whose ``control_terms`` it names, or the remaining "other treatment" one.
    Several control arms give several ids joined by ``;``. Returns ``("unclear", reason)``
    when there is no dry needling arm or a control arm names no treatment.
    """
    comparisons = protocol.data.get("comparisons", [])
    if not comparisons:
        return "unclear", "the protocol defines no comparisons"
    if len(arms) < 2:
        title_arms = _title_arms(record, protocol)
        if len(title_arms) < 2:
            return "unclear", "no arms found in the abstract or title"
        arms = title_arms
    dn = [a for a in arms if a.role == "dn"]
    controls = [a for a in arms if a.role == "control"]
    where = (arms[0].sentence or arms[0].evidence).snippet if (
        arms[0].sentence or arms[0].evidence) else ""
    if len(dn) != 1 or not controls:
        roles = "; ".join(f"{a.label} [{a.role}]" for a in arms)
        return "unclear", f"need one dry needling arm and a control arm, found: {roles}"

    def terms(c: dict[str, Any]) -> list[str]:
        return [t.lower() for t in c["control_terms"]]

    sham = [c for c in comparisons if {"sham", "placebo"} & set(terms(c))]
    addon = [c for c in comparisons if {"alone", "only"} & set(terms(c)) and c not in sham]
    other = [c for c in comparisons if c not in sham and c not in addon]
    ids, reasons = [], []
    for control in controls:
        label = control.label
        matched = {c["id"]: [t for t in c["control_terms"] if word_pattern(t).search(label)]
                   for c in comparisons}
        content = _care_words(label)
        if sham and matched[sham[0]["id"]]:
            choice, why = sham[0], f"control arm '{label}' names {matched[sham[0]['id']][0]!r}"
        elif addon and _adds_on(content, _care_words(dn[0].label)):
            choice, why = addon[0], (f"the dry needling arm '{dn[0].label}' gets the control "
                                     f"arm's care ('{label}') plus dry needling")
        elif other:
            best = max(other, key=lambda c: len(matched[c["id"]]))
            if matched[best["id"]]:
                why = f"control arm '{label}' names {matched[best['id']][0]!r}"
            elif content:
                why = f"control arm '{label}' is an active treatment not given with dry needling"
            else:
                return "unclear", f"control arm '{label}' does not say what it received"
            choice = best
        else:
            return "unclear", f"no protocol comparison fits control arm '{label}'"
        if choice["id"] not in ids:
            ids.append(choice["id"])
        reasons.append(f"{choice['id']}: {why}")
    return ";".join(ids), " | ".join(reasons) + (f' — arms from: "{where}"' if where else "")


def _care_words(label: str) -> set[str]:
    """Words naming what an arm received; unlike alias words, "usual care" counts."""
    keep = {"usual", "routine", "standard", "care", "conventional", "therapy", "treatment"}
    stop = {stem_word(w) for w in _STOP - keep}
    return {stem_word(w) for w in re.findall(r"[A-Za-z][A-Za-z0-9]+", label)} - stop


def _adds_on(control: set[str], dn: set[str]) -> bool:
    """Does the dry needling arm receive the control arm's care? At least half of the control's
    words recur in the dry needling arm ("stretching exercises" / "the same stretches plus DN")."""
    return bool(control) and len(control & dn) * 2 >= len(control)


def _title_arms(record: dict[str, Any], protocol: Protocol) -> list[Arm]:
    title = record.get("title") or ""
    m = re.search(r"(?:of\s+)?(?P<a>[^:]+?)\s+(?:versus|vs\.?|compared\s+with)\s+(?P<b>[^:]+?)"
                  r"(?:\s+(?:for|in|on)\s+|[:.]|$)", title, re.I)
    if not m:
        return []
    dn_patterns = _dn_terms(protocol)
    out = []
    for part in (m.group("a"), m.group("b")):
        label = re.sub(r"^(?:effects?\s+of|efficacy\s+of|the)\s+", "", part.strip(), flags=re.I)
        role = "dn" if any(p.search(label) for p in dn_patterns) and not _SHAM.search(
            label) else "control"
        out.append(Arm(label=label, role=role, evidence=Evidence("title", m.start(), m.end(),
                                                                 title[m.start():m.end()])))
    return out


def extract_from_jats(path_or_bytes: str | Path | bytes, *, protocol: Protocol,
                      arms: list[Arm] | None = None) -> tuple[Extraction, Article]:
    """Read a PMC JATS file: its abstract and body text by the text rules, and its tables.

    Table cells become values when their row names a protocol instrument and their column
    header names an arm (or says "difference"); each keeps ``pmc:<table label> r<i>c<j>`` as
    source and the offsets of the value inside the cell text.

    Raises
    ------
    InputError
        The XML declares entities (refused) or is malformed.
    """
    article = read_jats(path_or_bytes)
    first = extract_from_text(article.abstract, source="pmc:abstract", protocol=protocol,
                              arms=arms)
    found = first.arms or find_arms(_doc(article.body, "pmc:body", protocol))
    parts = [first, extract_from_text(article.body, source="pmc:body", protocol=protocol,
                                      arms=found)]
    merged = Extraction(source="pmc", arms=found,
                        n_randomised=next((p.n_randomised for p in parts if p.n_randomised),
                                          None),
                        n_evidence=next((p.n_evidence for p in parts if p.n_randomised), None))
    for part in parts:
        merged.values.extend(part.values)
        merged.adverse_events.extend(part.adverse_events)
        merged.instruments.extend(i for i in part.instruments
                                  if i.name not in {x.name for x in merged.instruments})
        merged.timepoints = sorted(set(merged.timepoints) | set(part.timepoints))
    for table in article.tables:
        merged.values.extend(table_values(table, found, protocol))
    return merged, article


def table_values(table: Table, arms: list[Arm], protocol: Protocol) -> list[OutcomeValue]:
    """Values from one table: instrument from the row (or the section row above), arm and time
    from the column header."""
    catalogue = {name: outcome for name, outcome, _, _ in _catalogue(protocol)}
    header_rows = [r for r in table.rows if r and all(c.header for c in r)]
    headers: dict[int, str] = {}
    for row in header_rows:
        for cell in row:
            if cell.text and cell.text not in headers.get(cell.col, ""):
                headers[cell.col] = f"{headers.get(cell.col, '')} {cell.text}".strip()
    out: list[OutcomeValue] = []
    current: list[str] = []
    for row in table.rows:
        if row in header_rows or not row:
            continue
        first = row[0].text
        named = canonical_instrument(first, protocol)
        section = all(not c.text for c in row[1:])
        if named:
            current = named
        elif section or (first and not find_times(first)):
            # a new heading, or a row about a measure outside the protocol ("Walking distance")
            current = []
        if not current:
            continue
        for cell in row[1:]:
            stat = cell.value
            if stat is None or stat.kind in ("range", "percent", "count_pct"):
                continue
            head = headers.get(cell.col, "")
            idx = _arm_mentions(head, 0, len(head), arms)
            diff = re.search(r"\b(?:difference|MD|between)\b", head, re.I)
            time = next((t for t in find_times(f"{first} {head}") if not t.duration), None)
            ev = Evidence(cell.source, stat.start, stat.end, cell.text[stat.start:stat.end])
            value = OutcomeValue(instrument=current[0], outcome=catalogue[current[0]],
                                 evidence=ev, value_type="final")
            if time is not None:
                value.timepoint_weeks, value.timepoint = time.weeks, time.label
                value.value_type = "baseline" if time.baseline else "final"
            if stat.kind == "p" or re.fullmatch(r"\s*p(?:[\s-]*value)?\s*", head, re.I):
                value.p, value.p_span = stat.p or (f"{stat.value:g}" if stat.value is not None
                                                   else None), ev.span
                value.value_type, value.contrast = "difference", _contrast(arms)
            elif diff:
                value.value_type, value.contrast = "difference", _contrast(arms)
                value.md, value.ci_low, value.ci_high = stat.value, stat.low, stat.high
            elif len({i for *_, i in idx}) == 1:
                _set_arm(value, arms[idx[0][2]])
                if stat.kind == "mean_sd":
                    value.mean, value.sd = stat.value, stat.spread
                elif stat.kind == "number":
                    value.mean = stat.value
                else:
                    continue
            else:
                continue
            out.append(value)
    return out


# ------------------------------------------------------------------ human extraction


def read_human_extraction(path: Path, protocol: Protocol) -> list[dict[str, Any]]:
    """Reviewers' extraction rows (``queries/<review>.extraction.csv``), checked line by line.

    Raises
    ------
    InputError
        A missing column, an unknown instrument, or a value that is not a number (names the
        line).
    """
    if not path.exists():
        return []
    names: dict[str, str] = {}
    for outcome in protocol.data.get("outcomes", []):
        for inst in outcome["instruments"]:
            names.update({a.lower(): inst["name"] for a in [inst["name"], *inst["aliases"]]})
    outcome_of = {name: outcome for name, outcome, _, _ in _catalogue(protocol)}
    rows: list[dict[str, Any]] = []
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in HUMAN_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(path, f"missing column(s) {', '.join(missing)}", line=1)
        for line, raw in enumerate(reader, start=2):
            row = {k: (v or "").strip() for k, v in raw.items() if k is not None}
            if None in raw:
                raise InputError(path, "more cells than columns", line=line)
            if not row["cluster_id"] or not row["instrument"] or not row["reviewer"]:
                raise InputError(path, "cluster_id, instrument and reviewer must not be empty",
                                 line=line)
            instrument = names.get(row["instrument"].lower())
            if instrument is None:
                raise InputError(path, f"instrument {row['instrument']!r} is not in the protocol "
                                       f"(known: {', '.join(sorted(outcome_of))})", line=line)
            out: dict[str, Any] = {**row, "instrument": instrument,
                                   "outcome": row["outcome"] or outcome_of[instrument]}
            for name in _FLOATS:
                out[name] = _human_float(path, line, name, row[name])
            out["n"] = _human_float(path, line, "n", row["n"])
            if out["n"] is not None and (out["n"] < 0 or out["n"] != int(out["n"])):
                raise InputError(path, f"n must be a whole number, got {row['n']!r}", line=line)
            out["n"] = int(out["n"]) if out["n"] is not None else None
            if row["p"] and not re.fullmatch(r"(?:[<>]=?|≤|≥)?\s*(?:0?\.\d+|[01](?:\.0+)?)",
                                             row["p"]):
                raise InputError(path, f"p must look like 0.03 or <0.001, got {row['p']!r}",
                                 line=line)
            out["p"] = normalise_p(row["p"]) if row["p"] else None
            for name in ("sd", "timepoint_weeks"):
                if out[name] is not None and out[name] < 0:
                    raise InputError(path, f"{name} must not be negative", line=line)
            if None not in (out["ci_low"], out["ci_high"]) and out["ci_low"] > out["ci_high"]:
                raise InputError(path, "ci_low is above ci_high", line=line)
            out["line"] = line
            rows.append(out)
    return rows


def _human_float(path: Path, line: int, name: str, text: str) -> float | None:
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise InputError(path, f"{name} must be a number, got {text!r}", line=line) from None
    if not math.isfinite(value):
        raise InputError(path, f"{name} must be finite, got {text!r}", line=line)
    return value


def _weeks_key(value: Any) -> str:
    if value in (None, ""):
        return ""
    return f"{round(float(value), 2):g}"


def apply_human(rows: list[dict[str, Any]], humans: list[dict[str, Any]], path: Path,
                included: set[str]) -> tuple[list[dict[str, Any]], int]:
    """Replace machine rows by reviewers' rows with the same (cluster, arm, instrument, weeks)."""
    keys = {(h["cluster_id"], h["arm"], h["instrument"], _weeks_key(h["timepoint_weeks"]))
            for h in humans if h["cluster_id"] in included}
    kept = [r for r in rows if (r["cluster_id"], r["arm"], r["instrument"],
                                _weeks_key(r["timepoint_weeks"])) not in keys]
    unused = 0
    for h in humans:
        if h["cluster_id"] not in included:
            unused += 1
            continue
        value_type = ("difference" if h["md"] is not None or not h["arm"] else "change"
                      if h["mean_change"] is not None else "final")
        kept.append({**{k: h.get(k) for k in HUMAN_COLUMNS}, "value_type": value_type,
                     "source": f"human:{path.name}", "span": f"line {h['line']}",
                     "snippet": h.get("note", ""), "extracted_by": f"human:{h['reviewer']}",
                     "timepoint": (f"{h['timepoint_weeks']:g} weeks"
                                   if h["timepoint_weeks"] is not None else ""),
                     "contrast": "" if h["arm"] else "between groups"})
    return kept, unused


# ------------------------------------------------------------------ the stage


def _first_author(record: dict[str, Any]) -> str:
    authors = record.get("authors") or []
    if not authors:
        return ""
    name = authors[0]
    if "," in name:
        return name.split(",")[0].strip()
    parts = name.split()
    while len(parts) > 1 and re.fullmatch(r"[A-Z]{1,3}\.?", parts[-1]):
        parts.pop()
    return " ".join(parts)


def _value_row(cluster_id: str, v: OutcomeValue) -> dict[str, Any]:
    return {
        "cluster_id": cluster_id, "arm": v.arm, "outcome": v.outcome, "instrument": v.instrument,
        "timepoint_weeks": v.timepoint_weeks, "n": v.n, "mean": v.mean, "sd": v.sd,
        "mean_change": v.mean_change, "md": v.md, "ci_low": v.ci_low, "ci_high": v.ci_high,
        "p": v.p, "source": v.evidence.source, "span": v.evidence.span, "scale": v.scale,
        "median": v.median, "iqr_low": v.iqr_low, "iqr_high": v.iqr_high,
        "value_type": v.value_type, "snippet": v.evidence.snippet, "extracted_by": RULES,
        "timepoint": v.timepoint, "contrast": v.contrast, "measure": v.measure, "se": v.se,
        "n_span": v.n_span, "p_span": v.p_span, "note": v.note,
    }


def _sort_key(row: dict[str, Any]) -> tuple[Any, ...]:
    weeks = row.get("timepoint_weeks")
    span = str(row.get("span") or "")
    start = int(span.split("-")[0]) if re.match(r"^\d+-\d+$", span) else -1
    return (row["cluster_id"], row.get("outcome") or "", row.get("instrument") or "",
            weeks is None or weeks == "", float(weeks) if weeks not in (None, "") else 0.0,
            row.get("arm") or "", row.get("contrast") or "", row.get("value_type") or "",
            row.get("source") or "", start, span)


def study_rows(cluster_id: str, record: dict[str, Any], extraction: Extraction,
               protocol: Protocol) -> tuple[dict[str, Any], list[dict[str, Any]],
                                            list[dict[str, Any]]]:
    """The studies.csv row, outcome rows and adverse-event rows of one study."""
    comparison, evidence = assign_comparison(record, extraction.arms, protocol)
    arms_json = [{"arm": a.label, "role": a.role, "n": a.n,
                  "n_span": a.n_evidence.span if a.n_evidence else "",
                  "source": a.evidence.source if a.evidence else ""} for a in extraction.arms]
    study = {
        "cluster_id": cluster_id, "first_author": _first_author(record),
        "year": record.get("year") or "", "n_randomised": extraction.n_randomised,
        "comparison": comparison, "comparison_evidence": evidence,
        "arms": "; ".join(f"{a.label} (n={a.n if a.n else '?'})" for a in extraction.arms),
        "title": record.get("title") or "",
        "n_randomised_span": (f"{extraction.n_evidence.source}:{extraction.n_evidence.span}"
                              if extraction.n_evidence else ""),
        "arms_json": arms_json, "timepoints_weeks": ";".join(
            f"{w:g}" for w in extraction.timepoints),
        "sources": extraction.source,
    }
    values = [_value_row(cluster_id, v) for v in extraction.values]
    with_values = {v.instrument for v in extraction.values}
    for mention in extraction.instruments:
        if mention.name not in with_values:
            values.append({"cluster_id": cluster_id, "arm": "", "outcome": mention.outcome,
                           "instrument": mention.name, "timepoint_weeks": None,
                           "source": mention.evidence.source, "span": mention.evidence.span,
                           "scale": mention.scale, "value_type": "",
                           "snippet": mention.evidence.snippet, "extracted_by": RULES,
                           "note": "instrument reported; no numbers in the text"})
    events = [{"cluster_id": cluster_id, "arm": e.arm, "kind": e.kind, "count": e.count,
               "denominator": e.denominator, "source": e.evidence.source,
               "span": e.evidence.span, "snippet": e.evidence.snippet, "unit": e.unit}
              for e in extraction.adverse_events]
    return study, values, events


def _merge_fulltext(abstract: Extraction, full: Extraction) -> Extraction:
    """Full-text values replace abstract values of the same arm, instrument, time and type."""
    covered = {(v.arm, v.contrast, v.instrument, v.timepoint_weeks, v.value_type)
               for v in full.values}
    kept = [v for v in abstract.values
            if (v.arm, v.contrast, v.instrument, v.timepoint_weeks, v.value_type) not in covered]
    names = {i.name for i in abstract.instruments}
    return replace(abstract, values=kept + full.values,
                   instruments=abstract.instruments + [i for i in full.instruments
                                                       if i.name not in names],
                   adverse_events=abstract.adverse_events + full.adverse_events,
                   arms=abstract.arms or full.arms,
                   n_randomised=abstract.n_randomised or full.n_randomised,
                   n_evidence=abstract.n_evidence if abstract.n_randomised else full.n_evidence,
                   timepoints=sorted(set(abstract.timepoints) | set(full.timepoints)),
                   source=f"{abstract.source};{full.source}")


def extract(protocol: Protocol, store: Store, run: Run, *, since: Run | None = None
            ) -> StageResult:
    """Extract every included study; write studies.csv, outcomes.csv and adverse_events.csv.

    With ``since`` (an update run's previous run), a study whose canonical record, full text,
    protocol and extraction code are unchanged keeps the rows ``since`` extracted
    (``extract_memo.jsonl``); the reviewers' extraction file is applied to all as always.
    """
    screening = run.read_csv("screening.csv", "screen")
    included = {row["cluster_id"] for row in screening if row.get("decision") == "include"}
    records = {rec["cluster_id"]: rec for rec in load_canonical(run, included)}
    fulltext_dir = store.path.parent / "fulltext"
    key = stage_key(protocol, _MEMO_MODULES)
    memo = read_memo(since, MEMO, key)
    studies, outcomes, events = [], [], []
    entries = []
    used_fulltext = extracted_now = 0
    for cluster_id in sorted(included):
        record = records.get(cluster_id, {"cluster_id": cluster_id})
        pmcid = record.get("pmcid")
        full_path = fulltext_dir / f"{pmcid}.xml" if pmcid else None
        has_full = full_path is not None and full_path.is_file()
        inputs = inputs_hash(record, sha256_file(full_path) if has_full else None)
        if memo.get(cluster_id, ("",))[0] == inputs:
            study, values, aes = memo[cluster_id][1]
        else:
            extraction = extract_from_text(record.get("abstract") or "", source="abstract",
                                           protocol=protocol)
            if has_full:
                full, _ = extract_from_jats(full_path, protocol=protocol,
                                            arms=extraction.arms or None)
                extraction = _merge_fulltext(extraction, full)
            study, values, aes = study_rows(cluster_id, record, extraction, protocol)
            extracted_now += 1
        used_fulltext += has_full
        entries.append((cluster_id, inputs, [study, values, aes]))
        studies.append(study)
        outcomes.extend(values)
        events.extend(aes)
    # Rows as CSV will read them back, so a reused row and a new one are the same bytes.
    write_memo(run, MEMO, key, entries)
    human_path = protocol.path.with_name(f"{protocol.review_id}.extraction.csv")
    humans = read_human_extraction(human_path, protocol)
    outcomes, unused = apply_human(outcomes, humans, human_path, included)
    outcomes.sort(key=_sort_key)
    events.sort(key=lambda r: (r["cluster_id"], r["source"], int(r["span"].split("-")[0]),
                               r["arm"], r["kind"]))
    run.write_csv("studies.csv", STUDY_COLUMNS, studies)
    run.write_csv("outcomes.csv", OUTCOME_COLUMNS, outcomes)
    run.write_csv("adverse_events.csv", AE_COLUMNS, events)
    counts: dict[str, Any] = {
        "studies": len(studies),
        "with_n_randomised": sum(1 for s in studies if s["n_randomised"]),
        "fulltext": used_fulltext,
        "outcome_rows": len(outcomes),
        "value_rows": sum(1 for r in outcomes if r.get("value_type")),
        "instrument_only_rows": sum(1 for r in outcomes if not r.get("value_type")),
        "human_rows": sum(1 for r in outcomes if str(r.get("extracted_by")).startswith("human")),
        "human_rows_not_included": unused,
        "adverse_event_rows": len(events),
        "extracted_now": extracted_now,
    }
    for study in studies:
        for cid in study["comparison"].split(";"):
            counts[f"comparison_{cid}"] = counts.get(f"comparison_{cid}", 0) + 1
    outputs = ("studies.csv", "outcomes.csv", "adverse_events.csv", MEMO)
    run.record_stage("extract", counts=counts, outputs=outputs)
    return StageResult("extract", counts, outputs)
