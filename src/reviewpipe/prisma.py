"""PRISMA 2020 flow counts from a run's artifacts, with the arithmetic checked."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from reviewpipe.screen import REASONS
from reviewpipe.search import PUBMED_SOURCE


class PrismaError(AssertionError):
    """The counts do not add up: a bug, never user input."""


@dataclass(frozen=True)
class Tallies:
    """What PRISMA counts are made of: records read per source, how many clusters, each
    screened cluster's (decision, reason, decided by a human), and the rows (cluster_id,
    study_id, report_of) of the included and duplicate-report clusters."""

    per_source: Counter[str]
    clusters: int
    verdicts: Counter[tuple[str, str, bool]]
    included: list[dict[str, str]]
    duplicate_reports: list[dict[str, str]]


def prisma_counts(search_info: dict[str, Any], records: list[dict[str, str]],
                  clusters: list[dict[str, str]], screening: list[dict[str, str]]
                  ) -> dict[str, Any]:
    """PRISMA 2020 counts: identification per source, duplicates, screening, reasons, studies.

    Parameters
    ----------
    search_info : the run's ``search.json``
    records, clusters, screening : rows of ``records.csv``, ``clusters.csv``, ``screening.csv``
    """
    study_of = {c["cluster_id"]: c["study_id"] for c in clusters}

    def with_study(row: dict[str, str]) -> dict[str, str]:
        return {**row, "study_id": study_of[row["cluster_id"]]}

    return prisma_from(search_info, Tallies(
        per_source=Counter(r["source"] for r in records), clusters=len(study_of),
        verdicts=Counter((s["decision"], s["reason"], s["decided_by"].startswith("human"))
                         for s in screening),
        included=[with_study(s) for s in screening if s["decision"] == "include"],
        duplicate_reports=[with_study(s) for s in screening if s["decision"] == "exclude"
                           and s["reason"] == "duplicate_report"]))


def prisma_from(search_info: dict[str, Any], tallies: Tallies) -> dict[str, Any]:
    """PRISMA 2020 counts from tallies (an update counts what changed, not every row)."""
    read_per_source = tallies.per_source
    boxes: dict[str, dict[str, int]] = {"database": {}, "register": {}, "other": {}}
    for source in search_info["sources"]:
        name = source.get("label") or source["database"]
        if source["source"] == PUBMED_SOURCE:
            name = "PubMed"
        boxes[source["kind"]][name] = read_per_source.get(source["source"], 0)
    identified = sum(read_per_source.values())
    verdicts = tallies.verdicts
    excluded = sum(n for (decision, _, _), n in verdicts.items() if decision == "exclude")
    by_reason = {reason: sum(n for (decision, why, _), n in verdicts.items()
                             if decision == "exclude" and why == reason)
                 for reason in REASONS[1:]}
    by_human = sum(n for (decision, _, human), n in verdicts.items()
                   if decision == "exclude" and human)
    included = tallies.included
    included_studies = {s["study_id"] for s in included}
    # Other reports of an included trial: linked by registration (study_id) or named as the
    # report of an included cluster (a conference abstract or secondary analysis).
    included_ids = {s["cluster_id"] for s in included}
    other_reports = [s for s in tallies.duplicate_reports if (
        s["study_id"] in included_studies or s.get("report_of") in included_ids)]
    counts = {
        "identification": {
            "databases": boxes["database"], "registers": boxes["register"],
            "other_methods": boxes["other"], "total": identified,
        },
        "duplicates_removed": identified - tallies.clusters,
        "records_screened": verdicts.total(),
        "excluded": {
            "total": excluded, "by_reason": by_reason,
            "by_automation": excluded - by_human, "by_human": by_human,
        },
        "awaiting_human": sum(n for (decision, _, _), n in verdicts.items()
                              if decision == "uncertain"),
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
