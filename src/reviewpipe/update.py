"""Scheduled rerun: PubMed records added since the last search, and a watch on included ones.

``update_review`` asks PubMed only for records whose Entrez date (``edat``) falls after the last
successful search (minus a small overlap) and up to today, keeps those not seen before, and
clusters them with the previous records (old clusters keep their ids); only the clusters whose
canonical record changed are screened and extracted again, every other verdict being carried
forward from the previous run; pooling and the report are redone. It writes ``new-trials.csv`` /
``new-trials.md``. It also re-fetches the included PMIDs and flags retractions, errata,
expressions of concern and deletions.
Exit code: 0 when nothing needs a human, 3 when something does (errors raise: exit 1).
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from reviewpipe.dedupe import clusters_of_records, load_canonical
from reviewpipe.pipeline import check_reviewer_files, open_review, stage_functions, started_run
from reviewpipe.readers import read_records
from reviewpipe.records import Record
from reviewpipe.runs import (
    STAGES,
    Run,
    atomic_write,
    dumps,
    open_run,
)
from reviewpipe.screen import ScreeningRows, included_clusters
from reviewpipe.search import extend_search, record_sources, search_sources
from reviewpipe.store import Store

OVERLAP_DAYS = 7
# Stages that take ``since``: only the clusters whose canonical record changed (those new
# records joined or formed) are screened and extracted again, the rest carried forward; merges
# and verdicts the previous run logged are not logged again.
INCREMENTAL_STAGES = ("dedupe", "screen", "extract", "report")
UPDATE_SOURCE = "pubmed-update"
NEEDS_HUMAN_EXIT = 3
WATCHED = {"RetractionIn": "retracted", "RetractionOf": "is a retraction notice",
           "ErratumIn": "erratum", "ExpressionOfConcernIn": "expression of concern",
           "RepublishedIn": "republished", "UpdateIn": "updated"}
NEW_TRIAL_COLUMNS = ["cluster_id", "new_record_ids", "pmid", "title", "year", "decision",
                     "reason", "design", "p_rct", "needs_human", "doubt", "evidence"]
WATCH_COLUMNS = ["cluster_id", "pmid", "flag", "detail"]


@dataclass
class UpdateResult:
    """What an update found and where it wrote its report."""

    exit_code: int
    mindate: str
    maxdate: str
    count: int
    new_records: int
    needs_human: int
    flagged: int
    report_dir: Path
    run: Run | None


def update_review(root: str | Path, review_id: str, *, environ: Mapping[str, str] | None = None,
                  today: date | None = None, **config: Any) -> UpdateResult:
    """Search PubMed for records added since the last search and screen only what is new.

    Parameters
    ----------
    environ : mapping, optional
        ``NCBI_EMAIL`` (required), ``NCBI_API_KEY``, ``REVIEWPIPE_EUTILS_URL``.
    today : date, optional
        The end of the window (default: today, UTC).
    **config
        Overrides for :class:`reviewpipe.entrez.EntrezConfig` (e.g. ``backoff`` in tests).
    """
    from reviewpipe.entrez import EntrezConfig
    from reviewpipe.entrez_fetch import fetch_pubmed_ids
    from reviewpipe.entrez_search import search_pubmed

    protocol, paths = open_review(root, review_id)
    check_reviewer_files(protocol)
    previous = open_run(paths)
    pubmed = protocol.pubmed
    if not pubmed:
        from reviewpipe.errors import MissingInput

        raise MissingInput(f"{protocol.path}: no [search.pubmed] table, so nothing to update.")
    entrez = EntrezConfig.from_env(os.environ if environ is None else environ,
                                   **{"batch_size": pubmed["batch_size"], **config})
    today = today or datetime.now(UTC).date()
    with Store.open(paths.store) as store:
        last = store.last_update()
        since = _parse(last["maxdate"]) if last else _last_search(previous, pubmed["maxdate"])
        mindate = (since - timedelta(days=OVERLAP_DAYS)).strftime("%Y/%m/%d")
        maxdate = today.strftime("%Y/%m/%d")
        query = " ".join(pubmed["query"].split())
        key = hashlib.sha256(query.encode()).hexdigest()[:8]
        raw_dir = store.raw_dir / UPDATE_SOURCE / f"{mindate.replace('/', '')}-" \
            f"{maxdate.replace('/', '')}-{key}"
        found = search_pubmed(query, mindate=mindate, maxdate=maxdate, datetype="edat",
                              raw_dir=raw_dir, config=entrez)
        # (source, pmid) of the previous records, from the store: parsing them all would
        # make every update cost as much as the review is big.
        previous_records = record_sources(store, previous)
        known = {pmid for _, pmid in previous_records if pmid}
        wanted = set(found.pmids) - known
        new: dict[str, Record] = {}
        for path in found.efetch_files():
            for record in read_records(path, source=UPDATE_SOURCE, format="pubmed-xml",
                                       database="PubMed"):
                if record.pmid in wanted and not record.deleted:
                    new.setdefault(record.pmid, record)
        watch = _watch(previous, store, entrez, maxdate, fetch_pubmed_ids)
        info = {**found.to_manifest(), "source": UPDATE_SOURCE, "database": "PubMed",
                "kind": "database", "mode": "live", "label": f"PubMed update ({mindate} – "
                f"{maxdate}, entrez date)", "count": len(new), "hits": found.count}
        run = None
        if new:
            with started_run(protocol, paths, store, live=True) as run:
                _stages_with_new(protocol, store, run, previous, previous_records,
                                 list(new.values()), info)
                trials = _new_trials(run, {f"{UPDATE_SOURCE}:{p}" for p in new})
                needs_human = sum(t["needs_human"] == "yes" for t in trials) + len(watch)
                for name, data in _reports(trials, watch, mindate, maxdate, found.count,
                                           len(new)).items():
                    run.write_bytes(name, data)
                run.manifest["update"] = {"mindate": mindate, "maxdate": maxdate,
                                          "new_records": len(new), "needs_human": needs_human}
            report_dir = run.dir
        else:
            report_dir = paths.review_dir / "update"
            needs_human = len(watch)
            for name, data in _reports([], watch, mindate, maxdate, found.count, 0).items():
                atomic_write(report_dir / name, data)
        store.record_update(searched_at=found.searched_at, mindate=mindate, maxdate=maxdate,
                            count=found.count, new_records=len(new),
                            run_id=run.run_id if run else None, needs_human=needs_human)
    return UpdateResult(exit_code=NEEDS_HUMAN_EXIT if needs_human else 0, mindate=mindate,
                        maxdate=maxdate, count=found.count, new_records=len(new),
                        needs_human=needs_human, flagged=len(watch), report_dir=report_dir,
                        run=run)


def _stages_with_new(protocol: Any, store: Store, run: Run, previous: Run,
                     records: list[tuple[str, str | None]], new: list[Record],
                     info: dict[str, Any]) -> None:
    """Write ``previous``'s records (``records``: their source and PMID) plus the new ones
    into ``run``; run every later stage."""
    sources = [s for s in search_sources(previous) if s["source"] != UPDATE_SOURCE]
    earlier = [pmid for source, pmid in records if source == UPDATE_SOURCE]
    if earlier:  # records found by earlier updates stay, under one combined source
        had = set(earlier)
        new = [r for r in new if r.pmid not in had]
        info = {**info, "count": len(earlier) + len(new), "earlier_updates": len(earlier)}
    # Every previous record stays: its lines and rows are copied, only the new ones written.
    extend_search(store, run, protocol.review_id, previous, new, [*sources, info], live=True)
    functions = stage_functions()
    for name in STAGES[1:]:
        if name in INCREMENTAL_STAGES:  # only what the new records touch is done again
            functions[name](protocol, store, run, since=previous)
        else:
            functions[name](protocol, store, run)


def _new_trials(run: Run, new_ids: set[str]) -> list[dict[str, Any]]:
    new_by_cluster: dict[str, list[str]] = {}
    for record_id, cluster_id in clusters_of_records(run, new_ids).items():
        new_by_cluster.setdefault(cluster_id, []).append(record_id)
    canonical = {c["cluster_id"]: c for c in load_canonical(run, new_by_cluster)}
    out = []
    for row in _screening_rows(run, new_by_cluster):
        record = canonical.get(row["cluster_id"], {})
        out.append({
            "cluster_id": row["cluster_id"],
            "new_record_ids": ";".join(sorted(new_by_cluster[row["cluster_id"]])),
            "pmid": record.get("pmid") or "", "title": row["title"], "year": row["year"],
            "decision": row["decision"], "reason": row["reason"], "design": row["design"],
            "p_rct": row["p_rct"],
            "needs_human": "yes" if row["decision"] in ("include", "uncertain") else "no",
            "doubt": row["doubt"], "evidence": row["evidence"]})
    return sorted(out, key=lambda r: (r["needs_human"] != "yes", r["cluster_id"]))


def _screening_rows(run: Run, cluster_ids: Mapping[str, Any]) -> list[dict[str, str]]:
    """The screening rows of a few clusters (only those parsed)."""
    rows = ScreeningRows.read(run)
    if rows is not None:
        return [rows.row(c) for c in sorted(cluster_ids) if c in rows.rows]
    return [r for r in run.read_csv("screening.csv", "screen") if r["cluster_id"] in cluster_ids]


def _watch(previous: Run, store: Store, entrez: Any, maxdate: str,
           fetch: Any) -> list[dict[str, str]]:
    """Re-fetch included PMIDs; flag retractions, errata, concerns and deletions."""
    wanted = included_clusters(previous)
    included = {c["pmid"]: c["cluster_id"] for c in load_canonical(previous, wanted)
                if c.get("pmid")}
    if not included:
        return []
    digest = hashlib.sha256(",".join(sorted(included)).encode()).hexdigest()[:8]
    raw_dir = store.raw_dir / "pubmed-watch" / f"{maxdate.replace('/', '')}-{digest}"
    result = fetch(sorted(included), raw_dir=raw_dir, config=entrez)
    flags: list[dict[str, str]] = []
    for pmid in result.missing:
        flags.append({"cluster_id": included[pmid], "pmid": pmid, "flag": "missing",
                      "detail": "PubMed no longer returns this PMID"})
    seen: set[str] = set()
    for path in result.efetch_files():
        for record in read_records(path, source="watch", format="pubmed-xml"):
            if record.pmid not in included or (record.pmid, record.deleted) in seen:
                continue
            seen.add(record.pmid)
            if record.deleted:
                flags.append({"cluster_id": included[record.pmid], "pmid": record.pmid,
                              "flag": "deleted", "detail": "DeleteCitation"})
            for ref_type, ref in record.comments_corrections:
                if ref_type in WATCHED:
                    flags.append({"cluster_id": included[record.pmid], "pmid": record.pmid,
                                  "flag": WATCHED[ref_type], "detail": f"{ref_type} {ref}"})
    return sorted(flags, key=lambda f: (f["cluster_id"], f["flag"], f["detail"]))


def _reports(trials: list[dict[str, Any]], watch: list[dict[str, str]], mindate: str,
             maxdate: str, hits: int, new: int) -> dict[str, bytes]:
    """new-trials.csv, new-trials.md, watch.csv and update.json, as bytes."""

    def table(columns: list[str], rows: list[dict[str, Any]]) -> bytes:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue().encode("utf-8")

    human = [t for t in trials if t["needs_human"] == "yes"]
    lines = [f"# New trials: PubMed entrez date {mindate} – {maxdate}", "",
             f"{hits} PubMed records in the window, {new} not seen before; "
             f"{len(human)} need a human, {len(watch)} included records flagged.", ""]
    if human:
        lines += ["## Need a human", ""]
        lines += [f"- **{t['title'] or t['new_record_ids']}** ({t['year']}), PMID {t['pmid']}: "
                  f"machine says {t['decision']}" + (f" — {t['doubt']}" if t["doubt"] else "")
                  + f" (cluster `{t['cluster_id']}`)" for t in human]
        lines.append("")
    if watch:
        lines += ["## Included records flagged", ""]
        lines += [f"- PMID {w['pmid']} (cluster `{w['cluster_id']}`): {w['flag']} — "
                  f"{w['detail']}" for w in watch]
        lines.append("")
    if not human and not watch:
        lines += ["Nothing needs a human.", ""]
    summary = {"mindate": mindate, "maxdate": maxdate, "hits": hits, "new_records": new,
               "needs_human": len(human), "flagged": len(watch)}
    return {"new-trials.csv": table(NEW_TRIAL_COLUMNS, trials),
            "new-trials.md": "\n".join(lines).encode("utf-8"),
            "watch.csv": table(WATCH_COLUMNS, watch),
            "update.json": dumps(summary).encode("utf-8")}


def _last_search(previous: Run, protocol_maxdate: str) -> date:
    """When the last search ended: a live search's date, else the protocol's window end."""
    for source in previous.manifest.get("search", []):
        if source.get("source") in ("pubmed", UPDATE_SOURCE) and source.get("mode") == "live":
            stamp = source.get("maxdate") if source["source"] == UPDATE_SOURCE else (
                source.get("searched_at") or "")[:10]
            if stamp:
                return _parse(stamp)
    return _parse(protocol_maxdate)


def _parse(value: str) -> date:
    parts = [int(p) for p in value.replace("-", "/").split("/")]
    parts += [1] * (3 - len(parts))
    return date(parts[0], parts[1], parts[2])
