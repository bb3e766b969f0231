"""Stage 6, report: ``prisma.json`` and one self-contained ``report.html`` a reviewer reads.

The HTML has no scripts and no external resources; figures are inline SVG. It carries no run id
or clock time, so the same inputs give the same bytes.
"""

from __future__ import annotations

import html
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from reviewpipe.dedupe import canonical_line_id, load_canonical
from reviewpipe.errors import MissingInput
from reviewpipe.exports import (
    ASREVIEW_HEADER,
    asreview_csv,
    asreview_lines,
    included_ris,
    outcomes_xlsx,
    ris_entries,
    ris_entry,
)
from reviewpipe.memo import csv_rows, line_changes, stage_key
from reviewpipe.prisma import Tallies, prisma_counts, prisma_from
from reviewpipe.protocol import Protocol
from reviewpipe.runs import Run, StageResult, open_run_folder
from reviewpipe.screen import REASONS, ScreeningRows
from reviewpipe.store import Store

# What the lines an update carries from the previous report are made by.
_CARRY_MODULES = ("report", "exports")
# A screening row's decision, reason and whether a human decided it (the fields before
# decided_by, design and p_rct, never hold a comma or a quote).
_GROUP = re.compile(rb'\n[^,\n]*,([^,\n]*),([^,\n]*),[^,\n]*,[^,\n]*,"?(human)?')
# Rows PRISMA and the page read more of: included, uncertain and duplicate-report rows.
_SPECIAL = re.compile(rb"\n[^,\n]*,(?:include,|uncertain,|exclude,duplicate_report,)")
# The second field of records.csv (source) after the first (record_id, maybe quoted).
_RECORD_SOURCE = re.compile(rb'\n(?:"(?:[^"]|"")*"|[^,"\n]*),([^,"\n]*),')
_EXCLUDED_HEADERS = ["Cluster", "Title", "Design", "Decided by", "Evidence"]
_EXCLUDED_START = b"<h2 id='excluded'>Excluded records, with reasons</h2>\n"
_EXCLUDED_END = b"\n<h2 id='changes'>"
_EXCLUDED_HEAD = re.compile(r"<details><summary><b>([^<]*)</b> \(\d+\)</summary>\n<table>"
                            r"<thead><tr>(?:<th>[^<]*</th>)*</tr></thead>")
_ROW_ID = re.compile(r"<tr><td>([^<]*)</td>")

_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2329;
background:#fff}main{max-width:1100px;margin:0 auto;padding:24px 32px 64px}
h1{font-size:26px;margin:8px 0 4px}h2{font-size:20px;margin:36px 0 8px;border-bottom:2px solid
#e3e7ec;padding-bottom:4px}h3{font-size:16px;margin:20px 0 6px}.muted{color:#5b6670}
table{border-collapse:collapse;width:100%;margin:8px 0 16px;font-size:13px}th,td{border:1px solid
#d8dde3;padding:4px 6px;text-align:left;vertical-align:top}th{background:#f3f5f8}
td.num{text-align:right;font-variant-numeric:tabular-nums}code{font-size:12px;word-break:break-all}
.badge{display:inline-block;padding:1px 6px;border-radius:8px;font-size:12px;background:#eef2f6}
.include{background:#dff3e4}.exclude{background:#fbe4e4}.uncertain{background:#fff3cd}
figure{margin:12px 0 24px}nav a{margin-right:12px}details{margin:6px 0}
"""


def report(protocol: Protocol, store: Store, run: Run, *, since: Run | None = None
           ) -> StageResult:
    """Write ``prisma.json``, ``report.html`` and the exports from the run's artifacts.

    With ``since`` (an update run's previous run, reported by the same code), a cluster
    whose screening row and canonical record did not change keeps its lines of ``since``'s
    report (its row among the excluded records), ``asreview.csv`` and ``included.ris``, and
    the counts come from a few columns (:func:`_parts_since`): the same bytes as a report
    from scratch, at the cost of what changed.
    """
    search_info = json.loads(run.require("search.json", "search").read_text(encoding="utf-8"))
    key = stage_key(protocol, _CARRY_MODULES)
    parts = None if since is None else _parts_since(store, run, since, search_info, key)
    carried = {"carried_from": since.run_id} if parts is not None and since is not None else {}
    if parts is None:
        parts = _parts(store, run, search_info)
    run.write_json("prisma.json", parts.counts)
    page = render_report(protocol, run, search_info, parts.counts, parts.screening,
                         parts.changes, excluded=parts.excluded)
    run.write_text("report.html", page)
    outputs = ("prisma.json", "report.html", *write_exports(run, parts.ris, parts.asreview))
    summary = {"included_studies": parts.counts["included"]["studies"],
               "awaiting_human": parts.counts["awaiting_human"], "changed": len(parts.changes)}
    run.record_stage("report", counts=summary, outputs=outputs, carry_key=key, **carried)
    return StageResult("report", summary, outputs)


@dataclass(frozen=True)
class _Parts:
    """What the report is made of. ``screening`` holds every row, or (from
    :func:`_parts_since`) those of included and uncertain clusters, which is all
    :func:`render_report` reads of it when ``excluded`` is given."""

    counts: dict[str, Any]
    changes: list[dict[str, str]]
    screening: list[dict[str, str]]
    excluded: str
    ris: str
    asreview: bytes


def _parts(store: Store, run: Run, search_info: dict[str, Any]) -> _Parts:
    """The report's parts from every row of the run's artifacts."""
    records = run.read_csv("records.csv", "search")
    clusters = run.read_csv("clusters.csv", "dedupe")
    screening = run.read_csv("screening.csv", "screen")
    counts = prisma_counts(search_info, records, clusters, screening)
    previous = _previous_run(store, run)
    changes = [] if previous is None or not previous.path("screening.csv").exists() else (
        _decision_changes({r["cluster_id"]: r for r in previous.read_csv("screening.csv", "")},
                          {r["cluster_id"]: r for r in screening}, previous.run_id))
    canonical = load_canonical(run)
    included = {s["cluster_id"] for s in screening if s["decision"] == "include"}
    return _Parts(counts, changes, screening, _excluded(screening),
                  included_ris([c for c in canonical if c["cluster_id"] in included]),
                  asreview_csv(canonical, screening).encode("utf-8"))


def _parts_since(store: Store, run: Run, since: Run, search_info: dict[str, Any], key: str
                 ) -> _Parts | None:
    """The report's parts from ``since``'s report and exports plus what changed since.

    A cluster's row of the excluded records and of ``asreview.csv``, and its RIS entry, are
    functions of its screening row and canonical line (and of this code, which ``key``
    covers); those lines are carried for every cluster whose row and line are the same as in
    ``since``. PRISMA counts read four leading columns of every row (a regex over the bytes)
    and parse only the included, uncertain and duplicate-report rows. None when ``since`` or
    its files do not allow it (another code key, a field with a line break, ``since`` not
    being the run the changes are counted from).
    """
    previous = _previous_run(store, run)
    if (since.manifest.get("stages", {}).get("report", {}).get("carry_key") != key
            or previous is None or previous.run_id != since.run_id):
        return None
    now, before = ScreeningRows.read(run), ScreeningRows.read(since)
    sources = _records_per_source(run)
    if now is None or before is None or sources is None:
        return None
    groups = Counter(_GROUP.findall(now.data))
    if groups.total() != len(now.rows):
        return None
    changed = {c for c, _ in set(now.rows.items()).symmetric_difference(before.rows.items())}
    special = {c: now.row(c) for c in sorted(now.ids_of_lines_with(_SPECIAL))}
    included = [c for c, row in special.items() if row["decision"] == "include"]
    old_ris = _read_ris(since)
    rebuilt = _rebuilt(run, since)
    if old_ris is None or rebuilt is None:
        return None
    redo = sorted((changed | rebuilt) & now.rows.keys())
    records = _canonical_records(run, [*redo, *(
        c for c in included if c not in old_ris or c in rebuilt)])
    excluded = _excluded_since(since, now, changed)
    asreview = _asreview_since(since, before, now, [records[c] for c in redo])
    if excluded is None or asreview is None:
        return None
    ris = "\n".join(old_ris[c] if c in old_ris and c not in rebuilt else ris_entry(records[c])
                    for c in included)
    counts = prisma_from(search_info, Tallies(
        per_source=sources, clusters=len(now.rows),
        verdicts=Counter({(d.decode(), r.decode(), bool(h)): n
                          for (d, r, h), n in groups.items()}),
        included=[row for row in special.values() if row["decision"] == "include"],
        duplicate_reports=[row for row in special.values() if row["decision"] == "exclude"]))
    changes = _decision_changes({c: before.row(c) for c in changed & before.rows.keys()},
                                {c: now.row(c) for c in changed & now.rows.keys()},
                                since.run_id)
    return _Parts(counts, changes, list(special.values()), excluded, ris, asreview)


def write_exports(run: Run, ris: str, asreview: bytes) -> tuple[str, ...]:
    """outcomes.xlsx, included.ris and asreview.csv beside the report."""
    run.write_bytes("outcomes.xlsx", outcomes_xlsx(_maybe_csv(run, "outcomes.csv"),
                                                   _maybe_csv(run, "studies.csv"),
                                                   _maybe_csv(run, "effects.csv")))
    run.write_text("included.ris", ris)
    run.write_bytes("asreview.csv", asreview)
    return ("outcomes.xlsx", "included.ris", "asreview.csv")


def _records_per_source(run: Run) -> Counter[str] | None:
    """Records read per source, from the second column of ``records.csv``; None unless every
    row is one line whose leading fields the regex reads."""
    expected = run.manifest.get("stages", {}).get("dedupe", {}).get("counts", {}).get(
        "records")
    data = run.require("records.csv", "search").read_bytes()
    sources = Counter(_RECORD_SOURCE.findall(data))
    if sources.total() != expected or data.count(b"\n") != expected + 1:
        return None
    return Counter({source.decode(): n for source, n in sources.items()})


def _rebuilt(run: Run, since: Run) -> set[str] | None:
    """The clusters whose canonical line is new or changed since ``since``: the screen stage's
    record of them if it screened this update from ``since``, else a comparison of the two
    files' lines."""
    screened = run.manifest.get("stages", {}).get("screen", {})
    if screened.get("carried_from") == since.run_id and "changed_clusters" in screened:
        return set(screened["changed_clusters"])
    _, added = line_changes(since.require("canonical.jsonl", "dedupe").read_bytes(),
                            run.require("canonical.jsonl", "dedupe").read_bytes())
    ids = set()
    for line in added:
        cluster_id = canonical_line_id(line)
        if cluster_id is None:
            return None
        ids.add(cluster_id)
    return ids


def _canonical_records(run: Run, cluster_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The canonical records of a few clusters."""
    out = {c["cluster_id"]: c for c in load_canonical(run, cluster_ids)}
    missing = sorted(set(cluster_ids) - out.keys())
    if missing:
        raise MissingInput(f"{run.path('canonical.jsonl')}: no canonical record of "
                           f"{', '.join(missing[:5])}")
    return out


def _read_ris(since: Run) -> dict[str, str] | None:
    path = since.path("included.ris")
    return ris_entries(path.read_text(encoding="utf-8")) if path.exists() else None


def _excluded_since(since: Run, now: ScreeningRows, changed: set[str]) -> str | None:
    """The excluded records' section: ``since``'s rows, but those of ``changed`` clusters
    from their row now. None unless ``since``'s section reads back to its own text."""
    page = since.path("report.html").read_bytes() if since.path("report.html").exists() else b""
    start, end = page.rfind(_EXCLUDED_START), page.rfind(_EXCLUDED_END)
    if start < 0 or end < start:
        return None
    section = page[start + len(_EXCLUDED_START):end].decode("utf-8")
    by_reason: dict[str, dict[str, str]] = {}
    words = {_e(r.replace("_", " ")): r for r in REASONS[1:]}
    # Cell text is escaped, so "<" only ever starts a tag: splitting at tags is exact.
    for block in (section + "\n").split("</details>\n")[:-1]:
        head, _, rest = block.partition("<tbody>")
        body, _, tail = rest.rpartition("</tbody></table>\n")
        match = _EXCLUDED_HEAD.fullmatch(head)
        rows = body.split("</tr>")
        if match is None or match.group(1) not in words or tail or rows.pop() != "":
            return None
        ids = _ROW_ID.findall(body)
        if len(ids) != len(rows):
            return None
        by_reason[words[match.group(1)]] = dict(zip(ids, rows, strict=True))
    if _excluded_html(by_reason) != section or "&" in "".join(map("".join, by_reason.values())):
        return None  # not read back whole; or an escaped id, whose order might differ
    for rows in by_reason.values():
        for cluster_id in changed & rows.keys():
            del rows[cluster_id]
    added = set()
    for cluster_id in sorted(changed & now.rows.keys()):
        row = now.row(cluster_id)
        if row["decision"] == "exclude":
            if _e(cluster_id) != cluster_id:
                return None
            by_reason.setdefault(row["reason"], {})[cluster_id] = _excluded_row(row)
            added.add(row["reason"])
    return _excluded_html({r: dict(sorted(rows.items())) if r in added else rows
                           for r, rows in by_reason.items()})


def _asreview_since(since: Run, before: ScreeningRows, now: ScreeningRows,
                    redo: list[dict[str, Any]]) -> bytes | None:
    """``asreview.csv``: ``since``'s rows, but those of the ``redo`` clusters (their canonical
    records) written again and those of clusters gone left out."""
    path = since.path("asreview.csv")
    rows = csv_rows(path.read_bytes(), len(before.rows) + 1) if path.exists() else None
    if rows is None or rows[0] != ASREVIEW_HEADER[:-1].encode():
        return None
    ids = list(map(str.encode, before.rows))
    if not all(map(bytes.__contains__, rows[1:], map(b",%s,".__mod__, ids))):
        return None  # not one row per cluster in the order of since's clusters
    by_cluster = dict(zip(before.rows, rows[1:], strict=True))
    for cluster_id in before.rows.keys() - now.rows.keys():
        del by_cluster[cluster_id]
    lines = asreview_lines(redo, [now.row(r["cluster_id"]) for r in redo])
    for record, line in zip(redo, lines, strict=True):
        by_cluster[record["cluster_id"]] = line[:-1].encode("utf-8")
    return b"\n".join([ASREVIEW_HEADER[:-1].encode(),
                       *map(by_cluster.__getitem__, sorted(by_cluster))]) + b"\n"


def render_report(protocol: Protocol, run: Run, search_info: dict[str, Any],
                  counts: dict[str, Any], screening: list[dict[str, str]],
                  changes: list[dict[str, str]], *, excluded: str | None = None) -> str:
    """The whole HTML page as a string; ``excluded`` is the excluded records' section, if
    made already (else it is made from ``screening``)."""
    review = protocol.data["review"]
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(review['title'])} — reviewpipe report</title>",
        f"<style>{_CSS}</style></head><body><main>",
        f"<h1>{_e(review['title'])}</h1>",
        f"<p class='muted'>Review <code>{_e(protocol.review_id)}</code> · protocol sha256 "
        f"<code>{_e(protocol.sha256[:16])}</code> · reviewpipe "
        f"{_e(run.manifest.get('reviewpipe_version', ''))}"
        + (f" · reproduces {_e(review['reference'])}" if review.get("reference") else "")
        + "</p>",
        "<nav><a href='#prisma'>PRISMA flow</a><a href='#search'>Search</a>"
        "<a href='#included'>Included studies</a><a href='#effects'>Effects</a>"
        "<a href='#outcomes'>Outcomes</a><a href='#human'>Needs a human</a>"
        "<a href='#excluded'>Excluded</a><a href='#changes'>Changes</a></nav>",
        "<h2 id='prisma'>PRISMA 2020 flow</h2>", prisma_svg(counts),
        "<h2 id='search'>Search (PRISMA-S)</h2>", _search_table(search_info),
        "<h2 id='included'>Included studies</h2>", _included(run, screening),
        "<h2 id='effects'>Pooled effects</h2>", _effects(run),
        "<h2 id='outcomes'>Extracted outcomes</h2>", _outcomes(run),
        "<h2 id='human'>Records that need a human</h2>", _uncertain(screening, run),
        "<h2 id='excluded'>Excluded records, with reasons</h2>",
        _excluded(screening) if excluded is None else excluded,
        "<h2 id='changes'>What changed since the previous run</h2>", _changes_html(changes),
        "</main></body></html>",
    ]
    return "\n".join(parts) + "\n"


def prisma_svg(counts: dict[str, Any]) -> str:
    """The PRISMA 2020 flow diagram as inline SVG."""
    ident = counts["identification"]

    def lines(title: str, items: dict[str, int]) -> list[str]:
        return [title] + [f"  {name} (n = {n})" for name, n in sorted(items.items())]

    left = lines(f"Records identified (n = {ident['total']})", {
        **{f"Database: {k}": v for k, v in ident["databases"].items()},
        **{f"Register: {k}": v for k, v in ident["registers"].items()},
        **{f"Other: {k}": v for k, v in ident["other_methods"].items()}})
    excluded = counts["excluded"]
    reasons = [f"  {r.replace('_', ' ')} (n = {n})" for r, n in excluded["by_reason"].items()
               if n]
    boxes = [
        (20, 20, 470, left),
        (530, 20, 360, [f"Duplicate records removed (n = {counts['duplicates_removed']})"]),
        (20, 0, 470, [f"Records screened (n = {counts['records_screened']})"]),
        (530, 0, 360, [f"Records excluded (n = {excluded['total']})",
                       f"  by automation (n = {excluded['by_automation']})",
                       f"  by a reviewer (n = {excluded['by_human']})", *reasons]),
        (20, 0, 470, [f"Awaiting a human decision (n = {counts['awaiting_human']})"]),
        (20, 0, 470, [f"Studies included (n = {counts['included']['studies']})",
                      f"Reports of included studies (n = "
                      f"{counts['included']['reports_of_included_studies']})"]),
    ]
    out, arrows = [], []
    row_y: dict[int, int] = {}
    left_bottom = row_bottom = None  # bottom of the last left box, and of its whole row
    for index, (x, _, width, text) in enumerate(boxes):
        height = 18 * len(text) + 16
        if x == 20:
            by = 20 if row_bottom is None else row_bottom + 40
            if left_bottom is not None:
                arrows.append((255, left_bottom, 255, by))
            row_y[index] = by
            left_bottom = row_bottom = by + height
        else:
            by = row_y[index - 1]
            arrows.append((490, by + 20, 530, by + 20))
            row_bottom = max(row_bottom, by + height)
        out.append(f'<rect x="{x}" y="{by}" width="{width}" height="{height}" rx="4" '
                   f'fill="#f7f9fb" stroke="#4a5a6a"/>')
        for i, line in enumerate(text):
            weight = "600" if i == 0 else "400"
            out.append(f'<text x="{x + 10}" y="{by + 22 + 18 * i}" font-size="13" '
                       f'font-weight="{weight}" xml:space="preserve">{_e(line)}</text>')
    for x1, y1, x2, y2 in arrows:
        out.append(f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#4a5a6a" '
                   f'marker-end="url(#arrow)"/>')
    height = row_bottom + 20
    return (f'<figure><svg xmlns="http://www.w3.org/2000/svg" width="910" height="{height}" '
            f'viewBox="0 0 910 {height}" role="img" aria-label="PRISMA 2020 flow diagram" '
            f'font-family="system-ui,sans-serif"><defs><marker id="arrow" markerWidth="8" '
            f'markerHeight="8" refX="7" refY="4" orient="auto"><path d="M0,0 L8,4 L0,8 z" '
            f'fill="#4a5a6a"/></marker></defs>' + "".join(out) + "</svg></figure>")


def _search_table(info: dict[str, Any]) -> str:
    rows = []
    for s in info["sources"]:
        window = ""
        if s.get("maxdate"):
            window = f"{s.get('mindate') or ''} – {s['maxdate']}"
            window += f" ({s['datetype']})" if s.get("datetype") else " (publication date)"
        query = s.get("query") or ""
        translation = s.get("translation") or ("not available offline"
                                               if s.get("mode") == "snapshot" else "")
        rows.append([s.get("label") or s["database"], s.get("kind", ""), s.get("mode", ""),
                     f"<code>{_e(query)}</code>" if query else "",
                     f"<code>{_e(translation)}</code>" if translation else "", _e(window),
                     _e(s.get("searched_at") or "snapshot"), _num(s["count"]),
                     f"<code>{_e(s.get('file') or s.get('raw_dir') or '')}</code><br>"
                     f"<code>{_e((s.get('sha256') or '')[:16])}</code>"])
    notes = "".join(f"<p class='muted'>{_e(s['note'])}</p>" for s in info["sources"]
                    if s.get("note"))
    return _table(["Source", "Kind", "Mode", "Query", "NCBI translation", "Window",
                   "Searched", "Records", "File / sha256"], rows, raw=True) + notes


def _included(run: Run, screening: list[dict[str, str]]) -> str:
    studies = _maybe_csv(run, "studies.csv")
    if studies:
        return _table(["Cluster", "First author", "Year", "n randomised", "Comparison", "Arms"],
                      [[s["cluster_id"], s["first_author"], s["year"], s["n_randomised"],
                        s["comparison"], s["arms"]] for s in studies])
    included = [s for s in screening if s["decision"] == "include"]
    return _table(["Cluster", "Title", "Year", "Design"],
                  [[s["cluster_id"], s["title"], s["year"], s["design"]] for s in included])


def _effects(run: Run) -> str:
    effects = _maybe_csv(run, "effects.csv")
    if not effects:
        return "<p>No effect could be pooled from the extracted numbers.</p>"
    rows = [[e["comparison"], e["outcome"], e["time_window"], e["measure"], e["value_type"],
             e["k"], _ci(e["estimate"], e["ci_low"], e["ci_high"]), e["i2"], e["tau2"],
             _ci("", e["pi_low"], e["pi_high"]).strip(), e["model"]] for e in effects]
    parts = [_table(["Comparison", "Outcome", "Time window", "Measure", "Values", "k",
                     "Estimate [95% CI]", "I² %", "τ²", "Prediction interval", "Model"], rows)]
    for effect in effects:
        if effect["forest"] and (run.dir / effect["forest"]).exists():
            svg = (run.dir / effect["forest"]).read_text(encoding="utf-8")
            parts.append(f"<figure>{svg}</figure>")
    return "\n".join(parts)


def _outcomes(run: Run) -> str:
    outcomes = _maybe_csv(run, "outcomes.csv")
    if not outcomes:
        return "<p>No outcomes extracted.</p>"
    columns = ["cluster_id", "arm", "outcome", "instrument", "timepoint_weeks", "n", "mean",
               "sd", "mean_change", "md", "ci_low", "ci_high", "p", "source", "span"]
    return _table(columns, [[o.get(c, "") for c in columns] for o in outcomes])


def _uncertain(screening: list[dict[str, str]], run: Run) -> str:
    rows = [[s["cluster_id"], s["title"], s["design"], s["p_rct"], s["doubt"]]
            for s in screening if s["decision"] == "uncertain"]
    conflicts = _maybe_csv(run, "conflicts.csv")
    extra = ""
    if conflicts:
        extra = "<h3>Reviewer conflicts</h3>" + _table(
            ["Cluster", "Title", "Verdicts"],
            [[c["cluster_id"], c["title"], c["verdicts"]] for c in conflicts])
    queue = _maybe_csv(run, "dedupe_review.csv")
    if queue:
        extra += (f"<h3>Possible duplicates to check ({len(queue)})</h3>" + _table(
            ["Record A", "Record B", "Title similarity", "Title A", "Title B"],
            [[q["record_a"], q["record_b"], q["title"], q["title_a"], q["title_b"]]
             for q in queue]))
    if not rows:
        return "<p>None.</p>" + extra
    return (f"<p>{len(rows)} records: the machine was in doubt and asks a reviewer (record the "
            f"verdict in <code>queries/&lt;review&gt;.decisions.csv</code>).</p>"
            + _table(["Cluster", "Title", "Design", "P(RCT)", "What is in doubt"], rows)
            + extra)


def _excluded(screening: list[dict[str, str]]) -> str:
    by_reason: dict[str, dict[str, str]] = defaultdict(dict)
    for row in screening:
        if row["decision"] == "exclude":
            by_reason[row["reason"]][row["cluster_id"]] = _excluded_row(row)
    return _excluded_html(by_reason)


def _excluded_row(row: dict[str, str]) -> str:
    return _open_row([row["cluster_id"], row["title"], row["design"], row["decided_by"],
                       row["evidence"]])


def _excluded_html(by_reason: dict[str, dict[str, str]]) -> str:
    """The excluded records' section from each reason's rows (``cluster_id -> <tr>``)."""
    parts = []
    for reason in REASONS[1:]:
        rows = by_reason.get(reason)
        if not rows:
            continue
        parts.append(f"<details><summary><b>{_e(reason.replace('_', ' '))}</b> "
                     f"({len(rows)})</summary>")
        parts.append(_table_html(_EXCLUDED_HEADERS, rows.values()))
        parts.append("</details>")
    return "\n".join(parts) or "<p>None.</p>"


def _previous_run(store: Store, run: Run) -> Run | None:
    """The previous complete run of this review, if its folder is there."""
    row = store.db.execute(
        "SELECT run_id FROM runs WHERE status = 'complete' AND run_id != ? "
        "ORDER BY run_id DESC LIMIT 1", (run.run_id,)).fetchone()
    if not row:
        return None
    try:  # run folders are siblings in the review's runs/ folder
        return open_run_folder(run.dir.parent / row[0])
    except (MissingInput, OSError, ValueError, KeyError):  # deleted or foreign: no comparison
        return None


def _decision_changes(old: dict[str, dict[str, str]], new: dict[str, dict[str, str]],
                      previous_run: str) -> list[dict[str, str]]:
    """Screening decisions that differ between ``old`` and ``new`` rows (by cluster id)."""
    changes = []
    for cluster_id in sorted(set(old) | set(new)):
        before, after = old.get(cluster_id), new.get(cluster_id)
        was = f"{before['decision']}/{before['reason']}" if before else "absent"
        now = f"{after['decision']}/{after['reason']}" if after else "absent"
        if was != now:
            title = (after or before or {}).get("title", "")
            changes.append({"cluster_id": cluster_id, "title": title, "before": was,
                            "after": now, "previous_run": previous_run})
    return changes


def _changes_html(changes: list[dict[str, str]]) -> str:
    if not changes:
        # No run id here: a rerun on the same inputs must give the same bytes.
        return "<p>No screening decision differs from the previous complete run, if any.</p>"
    return (f"<p>Compared with run <code>{_e(changes[0]['previous_run'])}</code>:</p>"
            + _table(["Cluster", "Title", "Before", "Now"],
                     [[c["cluster_id"], c["title"], c["before"], c["after"]] for c in changes]))


def _maybe_csv(run: Run, name: str) -> list[dict[str, str]]:
    return run.read_csv(name, "") if (run.dir / name).exists() else []


def _table(headers: list[str], rows: list[list[Any]], *, raw: bool = False) -> str:
    return _table_html(headers, [_open_row(row, raw=raw) for row in rows])


def _table_html(headers: list[str], rows: Iterable[str]) -> str:
    """A table of rows made by :func:`_open_row` (closed here, at C speed)."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "</tr>".join(rows)
    return (f"<table><thead><tr>{head}</tr></thead><tbody>{body + '</tr>' if body else ''}"
            "</tbody></table>")


def _open_row(row: list[Any], *, raw: bool = False) -> str:
    """A table row without its closing tag."""
    cells = []
    for value in row:
        text = str(value) if raw else _e(value)
        if not raw and str(value) in ("include", "exclude", "uncertain"):
            text = f"<span class='badge {value}'>{text}</span>"
        cells.append(f"<td>{text}</td>")
    return "<tr>" + "".join(cells)


def _ci(estimate: str, low: str, high: str) -> str:
    if not low and not high:
        return estimate
    return f"{estimate} [{low}, {high}]"


def _num(value: Any) -> str:
    return _e(value)


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)
