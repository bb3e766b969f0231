"""Stage 6, report: ``prisma.json`` and one self-contained ``report.html`` a reviewer reads.

The HTML has no scripts and no external resources; figures are inline SVG. It carries no run id
or clock time, so the same inputs give the same bytes.
"""

from __future__ import annotations

import html
import json
from collections import defaultdict
from typing import Any

from reviewpipe.prisma import prisma_counts
from reviewpipe.protocol import Protocol
from reviewpipe.runs import ReviewPaths, Run, StageResult, open_run
from reviewpipe.screen import REASONS
from reviewpipe.store import Store

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


def report(protocol: Protocol, store: Store, run: Run) -> StageResult:
    """Write ``prisma.json`` and ``report.html`` from the run's artifacts."""
    search_info = json.loads(run.require("search.json", "search").read_text(encoding="utf-8"))
    records = run.read_csv("records.csv", "search")
    clusters = run.read_csv("clusters.csv", "dedupe")
    screening = run.read_csv("screening.csv", "screen")
    counts = prisma_counts(search_info, records, clusters, screening)
    run.write_json("prisma.json", counts)
    changes = _changes(store, run, screening)
    page = render_report(protocol, run, search_info, counts, screening, changes)
    run.write_text("report.html", page)
    outputs = ("prisma.json", "report.html", *write_exports(run, screening))
    summary = {"included_studies": counts["included"]["studies"],
               "awaiting_human": counts["awaiting_human"], "changed": len(changes)}
    run.record_stage("report", counts=summary, outputs=outputs)
    return StageResult("report", summary, outputs)


def write_exports(run: Run, screening: list[dict[str, str]]) -> tuple[str, ...]:
    """outcomes.xlsx, included.ris and asreview.csv beside the report."""
    from reviewpipe.dedupe import load_canonical
    from reviewpipe.exports import asreview_csv, included_ris, outcomes_xlsx

    canonical = load_canonical(run)
    included = {s["cluster_id"] for s in screening if s["decision"] == "include"}
    run.write_bytes("outcomes.xlsx", outcomes_xlsx(_maybe_csv(run, "outcomes.csv"),
                                                   _maybe_csv(run, "studies.csv"),
                                                   _maybe_csv(run, "effects.csv")))
    run.write_text("included.ris", included_ris(
        [c for c in canonical if c["cluster_id"] in included]))
    run.write_text("asreview.csv", asreview_csv(canonical, screening))
    return ("outcomes.xlsx", "included.ris", "asreview.csv")


def render_report(protocol: Protocol, run: Run, search_info: dict[str, Any],
                  counts: dict[str, Any], screening: list[dict[str, str]],
                  changes: list[dict[str, str]]) -> str:
    """The whole HTML page as a string."""
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
        "<h2 id='excluded'>Excluded records, with reasons</h2>", _excluded(screening),
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
    by_reason: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in screening:
        if row["decision"] == "exclude":
            by_reason[row["reason"]].append(row)
    parts = []
    for reason in REASONS[1:]:
        rows = by_reason.get(reason, [])
        if not rows:
            continue
        parts.append(f"<details><summary><b>{_e(reason.replace('_', ' '))}</b> "
                     f"({len(rows)})</summary>")
        parts.append(_table(["Cluster", "Title", "Design", "Decided by", "Evidence"],
                            [[r["cluster_id"], r["title"], r["design"], r["decided_by"],
                              r["evidence"]] for r in rows]))
        parts.append("</details>")
    return "\n".join(parts) or "<p>None.</p>"


def _changes(store: Store, run: Run, screening: list[dict[str, str]]) -> list[dict[str, str]]:
    """Screening decisions that differ from the previous complete run of this review."""
    row = store.db.execute(
        "SELECT run_id FROM runs WHERE status = 'complete' AND run_id != ? "
        "ORDER BY run_id DESC LIMIT 1", (run.run_id,)).fetchone()
    if not row:
        return []
    paths = ReviewPaths(root=run.dir.parent.parent.parent.parent.parent,
                        review_id=run.manifest.get("review", ""))
    try:
        previous = open_run(paths, row[0])
    except Exception:  # a deleted or foreign run folder: nothing to compare
        return []
    old_path = previous.dir / "screening.csv"
    if not old_path.exists():
        return []
    old = {r["cluster_id"]: r for r in previous.read_csv("screening.csv", "screen")}
    new = {r["cluster_id"]: r for r in screening}
    changes = []
    for cluster_id in sorted(set(old) | set(new)):
        before, after = old.get(cluster_id), new.get(cluster_id)
        was = f"{before['decision']}/{before['reason']}" if before else "absent"
        now = f"{after['decision']}/{after['reason']}" if after else "absent"
        if was != now:
            title = (after or before or {}).get("title", "")
            changes.append({"cluster_id": cluster_id, "title": title, "before": was,
                            "after": now, "previous_run": previous.run_id})
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
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for value in row:
            text = str(value) if raw else _e(value)
            if not raw and str(value) in ("include", "exclude", "uncertain"):
                text = f"<span class='badge {value}'>{text}</span>"
            cells.append(f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _ci(estimate: str, low: str, high: str) -> str:
    if not low and not high:
        return estimate
    return f"{estimate} [{low}, {high}]"


def _num(value: Any) -> str:
    return _e(value)


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)
