"""PMC full text: a JATS article's text read by the text rules, and its tables
read cell by cell."""

from __future__ import annotations

import re
from pathlib import Path

from reviewpipe.extract_arms import arm_mentions, find_arms
from reviewpipe.extract_doc import (
    Arm,
    Evidence,
    Extraction,
    OutcomeValue,
    build_doc,
    canonical_instrument,
    instrument_catalogue,
)
from reviewpipe.extract_values import contrast_of, extract_from_text, set_arm
from reviewpipe.jats import Article, Table, read_jats
from reviewpipe.numbers import (
    find_times,
)
from reviewpipe.protocol import Protocol


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
    found = first.arms or find_arms(build_doc(article.body, "pmc:body", protocol))
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
    catalogue = {name: outcome for name, outcome, _, _ in instrument_catalogue(protocol)}
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
            idx = arm_mentions(head, 0, len(head), arms)
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
                value.value_type, value.contrast = "difference", contrast_of(arms)
            elif diff:
                value.value_type, value.contrast = "difference", contrast_of(arms)
                value.md, value.ci_low, value.ci_high = stat.value, stat.low, stat.high
            elif len({i for *_, i in idx}) == 1:
                set_arm(value, arms[idx[0][2]])
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
