"""PRISMA 2020 flow counts from a run's artifacts, with the arithmetic checked."""

from __future__ import annotations

from collections import Counter
from typing import Any

from reviewpipe.screen import REASONS
from reviewpipe.search import PUBMED_SOURCE


class PrismaError(AssertionError):
    """The counts do not add up: a bug, never user input."""


def prisma_counts(search_info: dict[str, Any], records: list[dict[str, str]],
                  clusters: list[dict[str, str]], screening: list[dict[str, str]]
                  ) -> dict[str, Any]:
    """PRISMA 2020 counts: identification per source, duplicates, screening, reasons, studies.

    Parameters
    ----------
    search_info : the run's ``search.json``
    records, clusters, screening : rows of ``records.csv``, ``clusters.csv``, ``screening.csv``
    """
    read_per_source = Counter(r["source"] for r in records)
    boxes: dict[str, dict[str, int]] = {"database": {}, "register": {}, "other": {}}
    for source in search_info["sources"]:
        name = source.get("label") or source["database"]
        if source["source"] == PUBMED_SOURCE:
            name = "PubMed"
        boxes[source["kind"]][name] = read_per_source.get(source["source"], 0)
    identified = sum(read_per_source.values())
    cluster_ids = {c["cluster_id"] for c in clusters}
    study_of = {c["cluster_id"]: c["study_id"] for c in clusters}
    decisions = Counter(s["decision"] for s in screening)
    excluded = [s for s in screening if s["decision"] == "exclude"]
    by_reason = {reason: sum(s["reason"] == reason for s in excluded) for reason in REASONS[1:]}
    by_human = sum(s["decided_by"].startswith("human") for s in excluded)
    included = [s for s in screening if s["decision"] == "include"]
    included_studies = {study_of[s["cluster_id"]] for s in included}
    # Other reports of an included trial: linked by registration (study_id) or named as the
    # report of an included cluster (a conference abstract or secondary analysis).
    included_ids = {s["cluster_id"] for s in included}
    other_reports = [s for s in excluded if s["reason"] == "duplicate_report" and (
        study_of[s["cluster_id"]] in included_studies or s.get("report_of") in included_ids)]
    counts = {
        "identification": {
            "databases": boxes["database"], "registers": boxes["register"],
            "other_methods": boxes["other"], "total": identified,
        },
        "duplicates_removed": identified - len(cluster_ids),
        "records_screened": len(screening),
        "excluded": {
            "total": len(excluded), "by_reason": by_reason,
            "by_automation": len(excluded) - by_human, "by_human": by_human,
        },
        "awaiting_human": decisions.get("uncertain", 0),
        "included": {
            "reports": len(included), "studies": len(included_studies),
            "reports_of_included_studies": len(included) + len(other_reports),
        },
    }
    check_prisma(counts, per_source=dict(read_per_source))
    return counts


def check_prisma(counts: dict[str, Any], *, per_source: dict[str, int]) -> None:
    """Raise PrismaError unless every PRISMA box adds up."""
    ident = counts["identification"]
    listed = sum(ident["databases"].values()) + sum(ident["registers"].values()) + sum(
        ident["other_methods"].values())
    problems = []
    if listed != ident["total"] or sum(per_source.values()) != ident["total"]:
        problems.append(f"identified per source ({listed}) != records read ({ident['total']})")
    if counts["duplicates_removed"] != ident["total"] - counts["records_screened"]:
        problems.append("duplicates removed != identified - clusters")
    excluded = counts["excluded"]
    if sum(excluded["by_reason"].values()) != excluded["total"]:
        problems.append("exclusions by reason do not add up")
    if excluded["total"] + counts["awaiting_human"] + counts["included"]["reports"] != counts[
            "records_screened"]:
        problems.append("excluded + uncertain + included != screened")
    if problems:
        raise PrismaError("; ".join(problems))
