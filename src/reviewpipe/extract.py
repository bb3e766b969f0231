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

This module is the stage; the rules are in :mod:`~reviewpipe.extract_doc` (the document and the
result types), :mod:`~reviewpipe.extract_arms`, :mod:`~reviewpipe.extract_values`,
:mod:`~reviewpipe.extract_tables` and :mod:`~reviewpipe.comparisons`; reviewers' rows in
:mod:`~reviewpipe.human_extraction`.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from reviewpipe.comparisons import assign_comparison
from reviewpipe.dedupe import load_canonical
from reviewpipe.extract_doc import Extraction, OutcomeValue
from reviewpipe.extract_tables import extract_from_jats
from reviewpipe.extract_values import extract_from_text
from reviewpipe.human_extraction import apply_human, read_human_extraction
from reviewpipe.memo import inputs_hash, read_memo, stage_key, write_memo
from reviewpipe.protocol import Protocol
from reviewpipe.runs import Run, StageResult, sha256_file
from reviewpipe.screen import included_clusters
from reviewpipe.store import Store

RULES = "rules:extract-v1"
# Each included study's machine rows before the reviewers' file, for update runs to reuse; any
# change to these modules extracts every study again.
MEMO = "extract_memo.jsonl"
_MEMO_MODULES = ("extract", "extract_doc", "extract_arms", "extract_values", "extract_tables",
                 "comparisons", "jats", "numbers", "normalize", "readers/safexml")
STUDY_COLUMNS = ["cluster_id", "first_author", "year", "n_randomised", "comparison", "arms",
                 "comparison_evidence", "title", "n_randomised_span", "arms_json",
                 "timepoints_weeks", "sources"]
OUTCOME_COLUMNS = ["cluster_id", "arm", "outcome", "instrument", "timepoint_weeks", "n", "mean",
                   "sd", "mean_change", "md", "ci_low", "ci_high", "p", "source", "span", "scale",
                   "median", "iqr_low", "iqr_high", "value_type", "snippet", "extracted_by",
                   "timepoint", "contrast", "measure", "se", "n_span", "p_span", "note"]
AE_COLUMNS = ["cluster_id", "arm", "kind", "count", "denominator", "source", "span", "snippet",
              "unit"]


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
    included = set(included_clusters(run))
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
