"""Reviewers' own extraction (``queries/<review>.extraction.csv``): read, checked
line by line, and put in place of the machine's rows."""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path
from typing import Any

from reviewpipe.errors import InputError
from reviewpipe.extract_doc import instrument_catalogue
from reviewpipe.numbers import (
    normalise_p,
)
from reviewpipe.protocol import Protocol

HUMAN_COLUMNS = ["cluster_id", "arm", "outcome", "instrument", "timepoint_weeks", "n", "mean",
                 "sd", "mean_change", "md", "ci_low", "ci_high", "p", "reviewer", "note"]
FLOAT_COLUMNS = ("mean", "sd", "mean_change", "md", "ci_low", "ci_high", "timepoint_weeks")


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
    outcome_of = {name: outcome for name, outcome, _, _ in instrument_catalogue(protocol)}
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
            for name in FLOAT_COLUMNS:
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
