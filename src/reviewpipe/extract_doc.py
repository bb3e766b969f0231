"""What the extraction rules share: the result types, the vocabulary, and the
document (sentences, numbers, times, instrument mentions) they read."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from reviewpipe.numbers import (
    TimeMention,
    find_abbreviations,
    find_times,
    split_sentences,
    stem_word,
    word_pattern,
)
from reviewpipe.protocol import Protocol


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Words that say nothing about what an arm received.
STOP_WORDS = _words("""
a an the and or of to in on for with without plus only alone group groups arm arms received
receiving receive treated treatment therapy protocol programme program session sessions same
who which performing performed patients participants subjects each both also either one
other first second third week weeks per time times control controls experimental
intervention case study was were is be by at from as that this their its into than then
usual routine standard care conventional
""")
ALLOC = re.compile(r"\b(?:randomi[sz]ed|randomly|allocated|assigned|divided|distributed|"
                   r"enrolled\s+into)\b", re.I)
PEOPLE = (r"(?:adults|patients|participants|people|persons|subjects|individuals|volunteers|"
          r"women|men|athletes|triathletes|runners|workers|players|cases)")
_GROUP_WORDS = r"(?:group|arm)"
NOT_A_GROUP = _words("""both each either two three four this that every same other whole one
first second a the per study treatment intervention age control""")
SHAM_CUE = re.compile(r"\b(?:sham|placebo)\b", re.I)
WHOLE = re.compile(r"\b(?:both|all|each|every|either)(?:\s+(?:of\s+the\s+)?(?:two|three|four|"
                   r"study|the))?\s+(?:groups?|arms?)\b|\bwhole\s+sample\b|"
                   r"\ball\s+(?:patients|participants)\b|\bgroups\s+together\b", re.I)
BETWEEN = re.compile(r"\b(?:between|differ\w*|versus|vs\.?|than|compared\s+(?:with|to)|"
                     r"relative\s+to|interaction|outperform\w*|favou?r\w*|superior|inferior|"
                     r"group\s+effect|over\s+(?:sham|placebo|control))\b", re.I)
WITHIN = re.compile(r"\b(?:improv\w*|fell|fallen|drop\w*|reduc\w*|decreas\w*|increas\w*|"
                    r"declin\w*|within|chang\w*|lowered|rose|from\s+baseline)\b", re.I)
CHANGE = re.compile(r"\b(?:change|reduction|improvement|decrease|increase|fell\s+by|"
                    r"reduced\s+by|improved\s+by|gain)\b", re.I)
DIFF_CUE = re.compile(r"\b(?:mean\s+)?difference|\bMD\b|\bbetween\b|\bdiffer\w*", re.I)
OTHER_CUE = re.compile(r"\bodds\b|\bratio\b|\b(?:OR|RR|HR|SMD|NNT|ICC)\b|number\s+needed|hazard|"
                       r"\brisk\b|standardi[sz]ed|effect\s+size|correlation", re.I)
NOT_OUTCOME = re.compile(r"\b(?:age|aged|BMI|body\s+mass|height|weight|duration)\b", re.I)
AE_CUE = re.compile(r"\b(?:adverse\s+(?:events?|effects?|reactions?)|side[\s-]+effects?|"
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


def word_tokens(text: str) -> set[str]:
    words = re.findall(r"[A-Za-z][A-Za-z0-9]+", text)
    return {stem_word(w) for w in words} - {stem_word(s) for s in STOP_WORDS}


def instrument_catalogue(protocol: Protocol) -> list[tuple[str, str, str, list[re.Pattern[str]]]]:
    out = []
    for outcome in protocol.data.get("outcomes", []):
        for inst in outcome["instruments"]:
            aliases = sorted({inst["name"], *inst["aliases"]}, key=len, reverse=True)
            out.append((inst["name"], outcome["name"], inst.get("scale", ""),
                        [word_pattern(a) for a in aliases]))
    return out


def canonical_instrument(text: str, protocol: Protocol) -> list[str]:
    """Protocol instrument names mentioned in ``text`` (aliases resolved), in protocol order."""
    return [name for name, _, _, patterns in instrument_catalogue(protocol)
            if any(p.search(text) for p in patterns)]


SCALE_AFTER = re.compile(r"^\s*[(,]?\s*(?:[A-Z-]{2,8}\s*,\s*)?(?:in\s+)?(?P<s>mm|cm|0\s*(?:-|–|to)"
                         r"\s*10{1,2}(?:\s*(?:mm|cm))?|\d+-point)\b")
SCALE_BEFORE = re.compile(r"(?P<s>\b0\s*(?:-|–|to)\s*10{1,2}(?:\s*(?:mm|cm))?|\b\d+-point|"
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
class Doc:
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


def build_doc(text: str, source: str, protocol: Protocol) -> Doc:
    doc = Doc(text, source, protocol, split_sentences(text), find_abbreviations(text))
    for name, outcome, _, patterns in instrument_catalogue(protocol):
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
    stop = STOP_WORDS | {"outcome", "outcomes", "primary", "secondary", "measured", "assessed",
                         "rated", "recorded", "evaluated", "scored", "main", "measure",
                         "measures", "its"}
    for start, _, name in doc.mentions:
        a, _ = doc.sentence_at(start)
        m = link.search(text[max(a, start - 60):start])
        if not m:
            continue
        words: list[str] = []
        tail = m.group("phrase").split()
        while tail and tail[-1].lower() in stop - STOP_WORDS:  # "Pain was rated on …"
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
