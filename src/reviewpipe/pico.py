"""PICO criteria: does a record's own study concern the protocol's population and intervention?

A term counts where the record states what it studies: the title, MeSH, keywords, or an abstract
sentence that describes its participants, aim or methods. A single passing mention elsewhere (a
neck-pain trial whose background lists plantar fasciitis) does not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from reviewpipe.normalize import fix_mojibake, strip_accents

MET, NOT_MET, UNCLEAR = "met", "not_met", "unclear"
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z(])")
_OWN_STUDY = re.compile(
    r"\b(?:patients?|participants?|adults?|people|subjects?|individuals?|women|men|runners?|"
    r"athletes?|volunteers?|cases)\b.{0,40}\b(?:with|suffering|diagnosed|having|who had)\b"
    r"|\b(?:aims?|objectives?|purpose|goal)\b|\bthis (?:\w+ )?(?:study|trial)\b|\bwhether\b"
    r"|\bwe (?:compared|tested|"
    r"evaluated|assessed|investigated|examined|randomi[sz]ed)\b|\bto (?:evaluate|compare|"
    r"investigate|assess|determine|examine|test)\b|\bwere (?:randomi[sz]ed|randomly|allocated|"
    r"assigned|recruited|enrolled|included|treated)\b|\b(?:group|arm)s? (?:received|underwent|"
    r"was given)\b|\breceived\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Criterion:
    """One criterion's verdict with the field or sentence that decided it."""

    name: str
    status: str
    evidence: str
    where: str


def _fold(text: str) -> str:
    return strip_accents(fix_mojibake(text or "")).lower()


def _pattern(terms: list[str]) -> re.Pattern[str] | None:
    folded = sorted({_fold(t) for t in terms if t.strip()}, key=len, reverse=True)
    if not folded:
        return None
    alternatives = "|".join(re.escape(t).replace(r"\ ", r"[\s-]+") for t in folded)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")


def match_criterion(name: str, spec: dict[str, Any], record: dict[str, Any]) -> Criterion:
    """Judge one criterion (population, intervention…) on one canonical record."""
    pattern = _pattern(spec.get("terms", []))
    if pattern is None:
        return Criterion(name, MET, "no terms given: criterion not applied", "protocol")
    title = record.get("title") or ""
    if pattern.search(_fold(title)):
        return Criterion(name, MET, title, "title")
    mesh_wanted = {_fold(m) for m in spec.get("mesh", [])}
    for heading in record.get("mesh") or []:
        if _fold(heading).split("/")[0].strip() in mesh_wanted:
            return Criterion(name, MET, heading, "mesh")
    for keyword in record.get("keywords") or []:
        if pattern.search(_fold(keyword)):
            return Criterion(name, MET, keyword, "keywords")
    abstract = record.get("abstract") or ""
    sentences = [s for s in _SENTENCE.split(abstract) if s.strip()]
    # An abbreviation the record defines for a term ("plantar fasciitis (PF)") counts as the term.
    short = {m.group(1) for m in (re.search(rf"{pattern.pattern}\s*\(([a-z]{{2,6}})\)",
                                            _fold(s)) for s in sentences) if m}
    if short:
        pattern = re.compile(rf"{pattern.pattern}|(?<!\w)(?:{'|'.join(sorted(short))})(?!\w)")
    hits = [s for s in sentences if pattern.search(_fold(s))]
    own = [s for s in hits if _OWN_STUDY.search(s)]
    if own:
        return Criterion(name, MET, own[0].strip(), "abstract")
    if len(hits) >= 2:
        return Criterion(name, MET, hits[0].strip(), "abstract")
    if hits:
        return Criterion(name, NOT_MET,
                         f"mentioned only in passing: {hits[0].strip()}", "abstract")
    if not abstract.strip():
        return Criterion(name, UNCLEAR, "no abstract, and the title does not name it", "title")
    return Criterion(name, NOT_MET, "not named in title, abstract, MeSH or keywords", "record")
