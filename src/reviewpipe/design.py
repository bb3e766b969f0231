"""Study design of a record: publication types first, then text cues.

Labels use the corpus vocabulary: rct · rct_protocol · registry_entry · systematic_review ·
narrative_review · nonrandomized · case_report · secondary_analysis · conference_abstract · other.
Each call returns the label, a probability that the record reports an RCT and the evidence.
PubMed's own traps are handled: protocols and economic analyses tagged "Randomized Controlled
Trial" are recognised by their text before the tag is believed.
"""

from __future__ import annotations

import csv
import io
import multiprocessing
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reviewpipe.errors import InputError

DESIGN_LABELS = (
    "rct", "rct_protocol", "registry_entry", "systematic_review", "narrative_review",
    "nonrandomized", "case_report", "secondary_analysis", "conference_abstract", "other",
)
RULES_VERSION = "design-rules-v1"


def _rx(pattern: str) -> re.Pattern[str]:
    # Patterns are matched against lower-cased text: no IGNORECASE, which is several times
    # slower on long abstracts.
    return re.compile(pattern)


# Ordered: the first cue that fires decides. Each is (label, pattern, where) with where in
# title / text (title + abstract); _TRIGGERS below lets most records skip most patterns.
_CUES: list[tuple[str, re.Pattern[str], str]] = [
    ("registry_entry", _rx(r"\b(?:registry record|trial registration record|study type:\s*"
                           r"interventional|recruitment status|estimated (?:study )?completion"
                           r"|estimated enrollment)\b"), "text"),
    ("rct_protocol", _rx(r"\bprotocol\b"), "title"),
    ("rct_protocol", _rx(r"\bwill be randomi[sz]ed\b|\bwill be (?:randomly )?(?:allocated|assigned)"
                         r"\b|\bwill be recruited\b|\bthis protocol\b|\bstudy protocol (?:for|of)"
                         r"\b"), "text"),
    ("systematic_review", _rx(r"\bsystematic(?:al)? review\b|\bmeta-?analys[ie]s\b"
                              r"|\bscoping review\b|\bumbrella review\b"), "title"),
    ("systematic_review", _rx(r"\bdatabases were (?:systematically )?searched\b|\bwe searched\b"
                              r"|\bwere searched from inception\b|\bthis (?:systematic )?review\b"
                              r"|\bthis meta-?analysis\b"), "text"),
    ("narrative_review", _rx(r"\b(?:narrative|literature|clinical|critical) review\b"
                             r"|\breview of the literature\b|\bcurrent concepts\b|\breview\s*$"),
     "title"),
    ("secondary_analysis", _rx(r"\bsecondary analysis\b|\bpost[- ]hoc\b|\bcost[- ]effectiveness\b"
                               r"|\bcost[- ]utility\b|\beconomic evaluation\b|\bsub-?group "
                               r"analysis\b"), "title"),
    ("secondary_analysis", _rx(r"\bthis (?:secondary|post[- ]hoc|economic) (?:analysis|"
                               r"evaluation)\b|\bcost[- ]effectiveness analysis alongside\b"),
     "text"),
    ("conference_abstract", _rx(r"\b(?:oral presentation|poster presentation|conference "
                                r"abstract|meeting abstract|congress abstract|presented at the)"
                                r"\b"), "text"),
    ("case_report", _rx(r"\bcase report\b|\bcase series\b|\ba case of\b|\bcase study\b"),
     "title"),
    ("other", _rx(r"\bdelphi\b|\bconsensus\b|\bsurvey\b|\bqualitative\b|\binterviews?\b"
                  r"|\bcross-sectional\b|\bcadaver|\bguideline"), "title"),
]
# "no randomised trial had evaluated it" is background, not this record's design.
_RCT_TEXT = _rx(r"(?<!\bno )(?<!\bnot )(?<!\bwithout )\brandomi[sz]ed "
                r"(?:controlled |clinical |placebo-controlled |sham-controlled )?(?:trial|study)\b"
                r"|\brandomly (?:allocated|assigned|divided)\b"
                r"|\brandomi[sz]ed (?:into|to)\b|\brandomi[sz]ation\b|\brct\b")
_NONRANDOM_TEXT = _rx(r"\bnon-?randomi[sz]ed\b|\bquasi-?experimental\b|\bcohort\b"
                      r"|\bretrospective\b|\bcross-?sectional\b|\bobservational\b"
                      r"|\bpre-?post\b|\bbefore[- ]and[- ]after\b|\bsingle[- ]group\b"
                      r"|\bsingle[- ]arm\b|\bcase[- ]control\b|\bpilot study\b")
# Substrings one of which every match of the cue with the same index contains.
_TRIGGERS: list[tuple[str, ...]] = [
    ("registry", "registration", "study type", "recruitment", "estimated"),
    ("protocol",),
    ("will be", "this protocol", "study protocol"),
    ("review", "analys"),
    ("searched", "this review", "this systematic", "this meta"),
    ("review", "current concepts"),
    ("secondary", "hoc", "cost", "economic", "group analysis"),
    ("this secondary", "this post", "this economic", "alongside"),
    ("presentation", "abstract", "presented at"),
    ("case",),
    ("delphi", "consensus", "survey", "qualitative", "interview", "cross-sectional", "cadaver",
     "guideline"),
]
_RCT_TRIGGERS = ("random", "rct")
_NONRANDOM_TRIGGERS = ("random", "experimental", "cohort", "retrospective", "sectional",
                       "observational", "pre-post", "prepost", "pre post", "before", "single",
                       "control", "pilot")
_PT_MAP = [
    ("registry_entry", {"registry record"}),
    ("rct_protocol", {"clinical trial protocol"}),
    ("systematic_review", {"systematic review", "meta-analysis"}),
    ("narrative_review", {"review"}),
    ("case_report", {"case reports"}),
    ("conference_abstract", {"congress"}),
]


@dataclass(frozen=True)
class Design:
    label: str
    p_rct: float
    evidence: str
    actor: str = RULES_VERSION
    # True when the design is stated (a publication type or the text's own words), False when
    # it rests on the text model alone.
    stated: bool = True


def classify_design(title: str, abstract: str, publication_types: list[str] | None = None,
                    *, p_text: float | None = None, threshold: float = 0.5,
                    model: str = "text model") -> Design:
    """Design label, P(RCT report) and the evidence that decided.

    Parameters
    ----------
    p_text : float, optional
        A text model's P(RCT) for records without publication types; without it the rules'
        own cue score is used.
    threshold : float
        The operating point: a record with no design cue but ``p_text`` at or above it is
        taken as an RCT report.
    model : str
        The text model's name and version, for the evidence.
    """
    types = {t.strip().lower() for t in publication_types or []}
    title = title or ""
    text = f"{title} {abstract or ''}"
    low_title, low_text = title.lower(), text.lower()
    if len(low_text) != len(text):  # a character whose lower case is longer: quote that
        text = low_text
    for (label, pattern, where), triggers in zip(_CUES, _TRIGGERS, strict=True):
        haystack = low_title if where == "title" else low_text
        if not any(t in haystack for t in triggers):
            continue
        match = pattern.search(haystack)
        if match:
            return Design(label, 0.02, f"text: '{_context(text, match)}'")
    for label, wanted in _PT_MAP:
        hit = types & wanted
        if hit:
            return Design(label, 0.02, f"publication type: {sorted(hit)[0].title()}")
    if "randomized controlled trial" in types:
        return Design("rct", 0.99, "publication type: Randomized Controlled Trial")
    nonrandom = _NONRANDOM_TEXT.search(low_text) if any(
        t in low_text for t in _NONRANDOM_TRIGGERS) else None
    rct = _RCT_TEXT.search(low_text) if any(t in low_text for t in _RCT_TRIGGERS) else None
    if nonrandom and (not rct or re.search(r"non-?randomi", nonrandom.group(0))):
        return Design("nonrandomized", 0.05, f"text: '{_context(text, nonrandom)}'")
    if types & {"observational study", "comparative study"} and not rct:
        return Design("nonrandomized", 0.05, "publication type: Observational/Comparative Study")
    if rct:
        if p_text is None:
            return Design("rct", 0.9, f"text: '{_context(text, rct)}'")
        return Design("rct", p_text, f"text: '{_context(text, rct)}'; {model} "
                                     f"p={p_text:.3f}", actor=model)
    if p_text is not None and p_text >= threshold:
        return Design("rct", p_text, f"{model} p={p_text:.3f} >= {threshold:g}; randomisation "
                                     "not stated", actor=model, stated=False)
    if not (abstract or "").strip():
        return Design("other", p_text if p_text is not None else 0.3,
                      "no abstract: design not stated in the title")
    return Design("other", p_text if p_text is not None else 0.1,
                  "no randomisation or other design stated")


def _context(text: str, match: re.Match[str], width: int = 60) -> str:
    start = max(0, match.start() - width)
    end = min(len(text), match.end() + width)
    snippet = " ".join(text[start:end].split())
    return ("…" if start else "") + snippet + ("…" if end < len(text) else "")


def classify_csv(input_path: Path, output_path: Path) -> int:
    """Add ``p_rct`` and ``design`` to a CSV of ``id, title, abstract[, publication_types]``."""
    rows, fieldnames = _read_design_csv(input_path)
    designs = classify_many([(r.get("title") or "", r.get("abstract") or "",
                              [t for t in (r.get("publication_types") or "").split(";") if t])
                             for r in rows])
    buffer = io.StringIO()
    columns = [*fieldnames, *(c for c in ("p_rct", "design") if c not in fieldnames)]
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row, design in zip(rows, designs, strict=True):
        writer.writerow({**row, "p_rct": f"{design.p_rct:.4f}", "design": design.label})
    output_path.write_text(buffer.getvalue(), encoding="utf-8")
    return len(rows)


PARALLEL_FROM = 4000  # records; below this a second process costs more than it saves


def classify_many(items: list[tuple[str, str, list[str]]],
                  threshold: float | None = None, *, workers: int | None = None
                  ) -> list[Design]:
    """Classify many records: the text model and the rules, over ``workers`` processes.

    Parameters
    ----------
    workers : int, optional
        Processes to use (default: one per core for ``PARALLEL_FROM`` records or more). Each
        gets a contiguous chunk, so the output order is the input order.
    """
    model = text_model()
    cut = model.threshold if threshold is None else threshold
    workers = workers or (min(os.cpu_count() or 1, 8) if len(items) >= PARALLEL_FROM else 1)
    if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
        size = -(-len(items) // workers)
        chunks = [items[i:i + size] for i in range(0, len(items), size)]
        # fork: the children share the loaded model instead of loading it again.
        with multiprocessing.get_context("fork").Pool(len(chunks)) as pool:
            parts = pool.starmap(_classify_chunk, [(chunk, cut) for chunk in chunks])
        return [design for part in parts for design in part]
    return _classify_chunk(items, cut)


def _classify_chunk(items: list[tuple[str, str, list[str]]], threshold: float) -> list[Design]:
    model = text_model()
    p_text = [float(p) for p in model.predict_proba([f"{t} {a}" for t, a, _ in items])] if (
        items) else []
    return [classify_design(t, a, pts, p_text=p, threshold=threshold, model=model.version)
            for (t, a, pts), p in zip(items, p_text, strict=True)]


def text_model() -> Any:
    """The shipped RCT text model (JSON, no pickle), loaded once per process."""
    from reviewpipe.design_model import load_default_model

    return load_default_model()


def _read_design_csv(path: Path) -> tuple[list[dict[str, str]], list[str]]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            fieldnames = list(reader.fieldnames or [])
            missing = {"id", "title", "abstract"} - set(fieldnames)
            if missing:
                raise InputError(path, f"missing column(s) {', '.join(sorted(missing))}", line=1)
            rows = []
            for row in reader:
                if None in row:
                    raise InputError(path, "more fields than the header has",
                                     line=reader.line_num)
                rows.append(row)
            return rows, fieldnames
    except UnicodeDecodeError as exc:
        raise InputError(path, f"not UTF-8 text ({exc.reason})") from exc
    except csv.Error as exc:
        raise InputError(path, f"malformed CSV: {exc}") from exc
