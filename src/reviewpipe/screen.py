"""Stage 3, screen: one decision per cluster, with a reason, the evidence, and humans winning.

Order of criteria (the first failed is the reason): wrong_population, wrong_intervention,
protocol, review, wrong_design, duplicate_report. When in doubt the machine says ``uncertain``
and names the doubt, so a human decides; it never excludes on a guess.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from operator import itemgetter, methodcaller
from pathlib import Path
from typing import Any

from rapidfuzz import fuzz

from reviewpipe.dedupe import (
    CANONICAL_CLUSTER_ID,
    canonical_line_id,
    canonical_lines,
    clusters_of_records,
    load_canonical,
)
from reviewpipe.design import classify_design, text_model
from reviewpipe.errors import InputError
from reviewpipe.memo import (
    csv_line,
    csv_rows,
    line_changes,
    memo_line,
    parse_csv_line,
    read_memo,
    read_memo_lines,
    stage_key,
    write_memo,
    write_memo_lines,
)
from reviewpipe.normalize import normalize_title
from reviewpipe.pico import NOT_MET, UNCLEAR, match_criterion
from reviewpipe.protocol import Protocol
from reviewpipe.runs import Run, StageResult
from reviewpipe.store import Store

DECISIONS = ("include", "exclude", "uncertain")
REASONS = ("none", "wrong_population", "wrong_intervention", "protocol", "review", "wrong_design",
           "duplicate_report")
SCREENING_COLUMNS = ["cluster_id", "decision", "reason", "design", "p_rct", "decided_by",
                     "evidence", "doubt", "study_id", "report_of", "title", "year",
                     "machine_decision", "machine_reason"]
HUMAN_COLUMNS = ["id", "reviewer", "decision", "reason", "note", "date"]
# The machine's verdict per cluster before study links and humans, for update runs to reuse;
# any change to these modules or the design model decides every cluster again.
MEMO = "screen_memo.jsonl"
_MEMO_MODULES = ("screen", "design", "design_model", "pico", "normalize", "records")
CONSENSUS = "consensus"
_PROTOCOL_DESIGNS = {"rct_protocol", "registry_entry"}
_REVIEW_DESIGNS = {"systematic_review", "narrative_review"}
_OTHER_REPORTS = {"secondary_analysis", "conference_abstract"}
# token_set_ratio between a secondary report's title and its main report's title.
SAME_TRIAL_TITLE = 80.0
# token_sort_ratio of two included reports' topics above which a shared author makes them a
# possible duplicate publication.
DUPLICATE_TOPIC = 75.0


@dataclass(frozen=True)
class HumanDecision:
    id: str
    reviewer: str
    decision: str
    reason: str
    note: str
    date: str
    line: int


def decide(record: dict[str, Any], protocol: Protocol, *, p_text: float | None = None,
           threshold: float = 0.5, model: str = "text model") -> dict[str, Any]:
    """The machine's decision on one canonical record, before study-level checks.

    ``p_text`` is the text model's P(RCT) for the record and ``threshold`` the operating point
    (the protocol's ``screen.rct_threshold``, else the model's declared one).
    """
    criteria = protocol.criteria
    population = match_criterion("population", criteria["population"], record)
    intervention = match_criterion("intervention", criteria["intervention"], record)
    design = classify_design(record.get("title", ""), record.get("abstract", ""),
                             record.get("publication_types"), p_text=p_text,
                             threshold=threshold, model=model)
    doubt_from = protocol.screen["uncertain_from"]
    evidence = (f"population [{population.where}]: {population.evidence} | "
                f"intervention [{intervention.where}]: {intervention.evidence} | "
                f"design {design.label}: {design.evidence}")
    doubts: list[str] = []
    if population.status == NOT_MET:
        decision, reason = "exclude", "wrong_population"
    elif intervention.status == NOT_MET:
        decision, reason = "exclude", "wrong_intervention"
    elif design.label in _PROTOCOL_DESIGNS:
        decision, reason = "exclude", "protocol"
    elif design.label in _REVIEW_DESIGNS:
        decision, reason = "exclude", "review"
    elif design.label in _OTHER_REPORTS:
        decision, reason = "exclude", "duplicate_report"  # confirmed against the study below
    elif design.label == "rct" and design.p_rct >= threshold and (
            design.stated or design.p_rct >= protocol.screen["include_from"]):
        decision, reason = "include", "none"
    elif design.label == "rct" or (design.label == "other" and (
            design.p_rct >= doubt_from or "no abstract" in design.evidence)):
        # Randomisation stated but the model doubts it, or no design stated and the model
        # does not rule an RCT out: a human decides.
        decision, reason = "uncertain", "none"
        doubts.append(f"design: {design.evidence} (p_rct {design.p_rct:.3f}, operating point "
                      f"{threshold:g})")
    else:
        decision, reason = "exclude", "wrong_design"
    for criterion in (population, intervention):
        if criterion.status == UNCLEAR and decision != "exclude":
            decision, reason = "uncertain", "none"
            doubts.append(f"{criterion.name}: {criterion.evidence}")
    return {
        "cluster_id": record["cluster_id"], "study_id": record["study_id"],
        "decision": decision, "reason": reason, "design": design.label,
        "p_rct": round(design.p_rct, 4), "decided_by": design.actor, "evidence": evidence,
        "doubt": "; ".join(doubts), "title": record.get("title", ""),
        "year": record.get("year") or "", "_has_pmid": bool(record.get("pmid")),
        "_inputs": record_hash(record),
        "_has_doi": bool(record.get("doi")),
        "_english": (record.get("language") or "en").lower() in ("en", "eng"),
        "_abstract_len": len(record.get("abstract") or ""),
        "_authors": sorted({w for a in (record.get("authors") or [])[:6]
                            for w in normalize_title(a).split() if len(w) > 2}),
    }


def record_hash(record: dict[str, Any]) -> str:
    """The hash of everything :func:`decide` reads of a canonical record."""
    return hashlib.sha256(json.dumps(record, sort_keys=True, ensure_ascii=False)
                          .encode("utf-8")).hexdigest()


def _changed(row: dict[str, Any], before: dict[str, dict[str, str]]) -> bool:
    """Whether a screening row differs from the same cluster's row in the previous run."""
    old = before.get(row["cluster_id"])
    return old is None or any(str(row.get(k) if row.get(k) is not None else "") != old.get(k, "")
                              for k in ("decision", "reason", "decided_by", "evidence", "doubt"))


def apply_study_links(rows: list[dict[str, Any]]) -> None:
    """One counted report per trial: other reports of an included trial are duplicate_report."""
    by_study: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_study[row["study_id"]].append(row)
    for members in by_study.values():
        included = [r for r in members if r["decision"] == "include"]
        if included:
            primary = min(included, key=_report_rank)
            for row in included:
                if row is not primary:
                    row.update(decision="exclude", reason="duplicate_report",
                               report_of=primary["cluster_id"],
                               evidence=f"{row['evidence']} | another report of study "
                                        f"{row['study_id']}, counted as {primary['cluster_id']}")
    included_all = [r for r in rows if r["decision"] == "include"]
    for row in rows:
        if row["reason"] != "duplicate_report" or row["design"] not in _OTHER_REPORTS:
            continue
        main = [r for r in by_study[row["study_id"]] if r["decision"] == "include"]
        how = f"same study {row['study_id']} (shared registration)"
        if not main:
            scored = [(_same_trial(row, r), r["cluster_id"], r) for r in included_all]
            main = [r for score, _, r in sorted(scored, key=lambda t: (-t[0], t[1])) if score]
            how = "title and authors of the main report"
        if main:
            row["evidence"] += f" | main report of the trial: {main[0]['cluster_id']} ({how})"
            row["report_of"] = main[0]["cluster_id"]
        else:
            row.update(decision="uncertain", reason="none",
                       doubt=f"a {row['design'].replace('_', ' ')} whose main trial report is "
                             "not among the records: find the main report")


_DESIGN_WORDS = re.compile(
    r"\b(?:a |an |the )?(?:randomi[sz]ed (?:controlled |clinical )?(?:trial|study)|rct|"
    r"secondary analysis of|post hoc analysis of|cost (?:effectiveness|utility)(?: analysis)? of|"
    r"economic evaluation of|comparing|comparison of|effects? of|efficacy of|effectiveness of|"
    r"pilot|preliminary|conference abstract|abstract)\b")


def _topic(title: str) -> str:
    """A title without its design words: what the trial is about."""
    return " ".join(_DESIGN_WORDS.sub(" ", normalize_title(title)).split())


def _report_rank(row: dict[str, Any]) -> tuple[Any, ...]:
    """Which of several reports of one trial to count: indexed, with a DOI, in English, fullest."""
    return (not row["_has_pmid"], not row["_has_doi"], not row["_english"],
            -row["_abstract_len"], row["cluster_id"])


def flag_duplicate_publications(rows: list[dict[str, Any]]) -> None:
    """Two included reports with the same first authors, year and topic: ask a human.

    A trial published twice (e.g. in two languages) must be counted once, but two trials by one
    team in one year are possible too, so the later-ranked report goes to a human, not out.
    """
    included = sorted((r for r in rows if r["decision"] == "include"), key=_report_rank)
    for i, later in enumerate(included):
        for earlier in included[:i]:
            if earlier["decision"] != "include":
                continue
            years = [y for y in (earlier["year"], later["year"]) if y]
            close = len(years) < 2 or abs(int(years[0]) - int(years[1])) <= 1
            if close and _same_trial(later, earlier) >= 1000 + DUPLICATE_TOPIC:
                later.update(decision="uncertain", reason="none",
                             doubt=f"possibly the same trial as {earlier['cluster_id']} published "
                                   "twice (same authors, year and topic): count it once")
                break


def _same_trial(report: dict[str, Any], main: dict[str, Any]) -> float:
    """How surely a conference abstract or secondary analysis reports ``main``'s trial.

    0 when the topics differ or both author lists are known and share no name; otherwise the
    topic similarity, plus the number of shared author names, plus the full-title similarity
    as a tie-breaker (so the most specific match ranks first).
    """
    topic_a, topic_b = _topic(report["title"]), _topic(main["title"])
    if fuzz.token_set_ratio(topic_a, topic_b) < SAME_TRIAL_TITLE:
        return 0.0
    shared = len(set(report["_authors"]).intersection(main["_authors"]))
    if report["_authors"] and main["_authors"] and not shared:
        return 0.0
    return 1000.0 * shared + fuzz.token_sort_ratio(topic_a, topic_b)


def read_human_decisions(path: Path) -> list[HumanDecision]:
    """Reviewers' decisions (``queries/<review>.decisions.csv``); the machine never writes it."""
    if not path.exists():
        return []
    out: list[HumanDecision] = []
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"id", "reviewer", "decision"} - set(reader.fieldnames or [])
        if missing:
            raise InputError(path, f"missing column(s) {', '.join(sorted(missing))}", line=1)
        for line, row in enumerate(reader, start=2):
            decision = (row.get("decision") or "").strip().lower()
            reason = (row.get("reason") or "none").strip().lower() or "none"
            if decision not in DECISIONS:
                raise InputError(path, f"decision must be one of {', '.join(DECISIONS)}, "
                                       f"got {decision!r}", line=line)
            if reason not in REASONS:
                raise InputError(path, f"reason must be one of {', '.join(REASONS)}, "
                                       f"got {reason!r}", line=line)
            if decision == "exclude" and reason == "none":
                raise InputError(path, "an exclusion needs a reason", line=line)
            if not (row.get("id") or "").strip() or not (row.get("reviewer") or "").strip():
                raise InputError(path, "id and reviewer must not be empty", line=line)
            out.append(HumanDecision(row["id"].strip(), row["reviewer"].strip(), decision, reason,
                                     (row.get("note") or "").strip(),
                                     (row.get("date") or "").strip(), line))
    return out


def apply_humans(rows: list[dict[str, Any]], humans: list[HumanDecision],
                 cluster_of_record: dict[str, str]) -> tuple[list[dict], dict[str, Any]]:
    """Override machine rows with human decisions; list conflicts; Cohen's kappa per pair."""
    by_cluster = {row["cluster_id"]: row for row in rows}
    latest: dict[str, dict[str, HumanDecision]] = defaultdict(dict)
    unknown: list[str] = []
    for human in humans:
        cluster_id = human.id if human.id in by_cluster else cluster_of_record.get(human.id)
        if cluster_id is None:
            unknown.append(human.id)
            continue
        latest[cluster_id][human.reviewer] = human  # a later line by the same reviewer wins
    conflicts: list[dict[str, Any]] = []
    for cluster_id, by_reviewer in sorted(latest.items()):
        row = by_cluster[cluster_id]
        if CONSENSUS in by_reviewer:
            chosen = [by_reviewer[CONSENSUS]]
        else:
            verdicts = {(h.decision, h.reason) for h in by_reviewer.values()}
            if len(verdicts) > 1:
                conflicts.append({
                    "cluster_id": cluster_id, "title": row["title"],
                    "verdicts": "; ".join(f"{r}: {h.decision}/{h.reason}"
                                          for r, h in sorted(by_reviewer.items()))})
                row.update(decision="uncertain", reason="none", decided_by="conflict",
                           doubt="reviewers disagree: " + conflicts[-1]["verdicts"])
                continue
            chosen = list(by_reviewer.values())
        human = sorted(chosen, key=lambda h: h.reviewer)[0]
        row.update(decision=human.decision, reason=human.reason,
                   decided_by="human:" + ",".join(sorted(h.reviewer for h in chosen)),
                   evidence=f"{row['evidence']} | human note: {human.note}" if human.note
                   else row["evidence"], doubt="")
    return conflicts, {"kappa": agreement(latest), "unknown_ids": sorted(set(unknown))}


def agreement(latest: dict[str, dict[str, HumanDecision]]) -> list[dict[str, Any]]:
    """Cohen's kappa on include/exclude/uncertain for each pair of reviewers with shared items."""
    from sklearn.metrics import cohen_kappa_score

    reviewers = sorted({r for by in latest.values() for r in by if r != CONSENSUS})
    out = []
    for i, a in enumerate(reviewers):
        for b in reviewers[i + 1:]:
            shared = [(by[a].decision, by[b].decision) for by in latest.values()
                      if a in by and b in by]
            if not shared:
                continue
            first, second = zip(*shared, strict=True)
            if len(set(first) | set(second)) == 1:
                kappa = 1.0
            else:
                kappa = float(cohen_kappa_score(first, second))
            out.append({"reviewers": f"{a} vs {b}", "items": len(shared),
                        "agreed": sum(x == y for x, y in shared), "kappa": round(kappa, 4)})
    return out


class ScreeningRows:
    """A run's ``screening.csv`` as raw rows by cluster id, in file order (by cluster id);
    :meth:`row` parses one."""

    def __init__(self, data: bytes, rows: dict[str, bytes]) -> None:
        self.data = data
        self.rows = rows

    @classmethod
    def read(cls, run: Run) -> ScreeningRows | None:
        """None when the file does not hold the screened count the manifest gives, one row a
        line (a field with a line break, or a file from another version)."""
        screened = run.manifest.get("stages", {}).get("screen", {}).get("counts", {}).get(
            "screened")
        if not isinstance(screened, int):
            return None
        data = run.require("screening.csv", "screen").read_bytes()
        lines = csv_rows(data, screened + 1)
        if lines is None or lines[0] != _SCREENING_HEADER:
            return None
        ids = list(map(itemgetter(0), map(methodcaller("partition", b","), lines[1:])))
        if b'"' in b"".join(ids):  # a quoted id: not a row per line as read here
            return None
        return cls(data, dict(zip(map(bytes.decode, ids), lines[1:], strict=True)))

    def row(self, cluster_id: str) -> dict[str, str]:
        """One row, as ``Run.read_csv`` gives it."""
        return parse_csv_line(SCREENING_COLUMNS, self.rows[cluster_id])

    def ids_of_lines_with(self, *patterns: re.Pattern[bytes]) -> set[str]:
        """Clusters whose row holds one of ``patterns``."""
        return lines_with(self.data, _CSV_FIRST, *patterns)


_INCLUDED = re.compile(rb"\n([^,\n]*),include,")


def included_clusters(run: Run) -> list[str]:
    """The clusters ``run``'s screening included, in cluster order: a search of the file's
    bytes when it holds a row per line (as many line ends as rows), else read as CSV."""
    data = run.require("screening.csv", "screen").read_bytes()
    screened = run.manifest.get("stages", {}).get("screen", {}).get("counts", {}).get(
        "screened")
    if data.startswith(_SCREENING_HEADER + b"\n") and data.count(b"\n") == (
            screened + 1 if isinstance(screened, int) else -1):
        return sorted(m.group(1).decode() for m in _INCLUDED.finditer(data))
    return sorted(cluster_id for cluster_id, decision in run.read_columns(
        "screening.csv", "screen", ("cluster_id", "decision")) if decision == "include")


def lines_with(data: bytes, key: re.Pattern[bytes], *patterns: re.Pattern[bytes]) -> set[str]:
    """The keys (``key`` matched at a line's start) of the lines of ``data`` that hold one
    of ``patterns`` (or, for one that starts with a newline, that it starts just before).
    The search runs at C speed; Python sees only the matches."""
    out = set()
    for pattern in patterns:
        for match in pattern.finditer(data):
            found = key.match(data, data.rfind(b"\n", 0, match.start() + 1) + 1)
            if found:
                out.add(found.group(1).decode())
    return out


_SCREENING_HEADER = ",".join(SCREENING_COLUMNS).encode()
_CSV_FIRST = re.compile(rb"([^,\n]*),")
_MEMO_ID = re.compile(rb'\{"id": "([^"]*)"')
# Memo rows whose verdict study links or duplicate-publication flags can change: decide()'s
# inclusions and its other reports of a trial (see apply_study_links).
_LINKABLE = re.compile("|".join(['"decision": "include"', *(
    f'"design": "{d}"' for d in sorted(_OTHER_REPORTS))]).encode())
# Rows a human decided (or disagreed on): a changed or withdrawn decision changes them.
_BY_HUMAN = (re.compile(rb"human:"), re.compile(rb",conflict,"))  # literals: fast search
_COUNTED = ("screened", *DECISIONS, *(f"excluded_{r}" for r in REASONS[1:]), "human_decisions")


@dataclass(frozen=True)
class _Screened:
    tally: Counter[str]
    conflicts: list[dict[str, Any]]
    agreement: dict[str, Any]
    decided_now: int
    # The clusters whose canonical line is new or changed since ``since`` (an update's).
    changed: list[str] | None = None


def screen(protocol: Protocol, store: Store, run: Run, *, since: Run | None = None
           ) -> StageResult:
    """Decide every cluster and write ``screening.csv`` (+ conflicts and the decision log).

    With ``since`` (an update run's previous run), a cluster whose canonical record, protocol
    and screening code are unchanged keeps the machine verdict ``since`` gave it
    (``screen_memo.jsonl``) instead of being decided again. Study links, duplicate
    publications and the humans' decisions can change other clusters' rows, so those are
    redone for every cluster they can touch (:func:`_screen_update`) and the other rows are
    carried from ``since`` as they are; the artifacts are what deciding every cluster gives.
    """
    model = text_model()
    threshold = protocol.screen.get("rct_threshold")
    threshold = model.threshold if threshold is None else threshold
    key = stage_key(protocol, _MEMO_MODULES, ("design_model.json",),
                    extra=[threshold, model.version])
    humans_path = protocol.path.with_name(f"{protocol.review_id}.decisions.csv")
    humans = read_human_decisions(humans_path)
    done = None if since is None else _screen_update(
        protocol, store, run, since, key, model, threshold, humans)
    if done is None:
        done = _screen_all(protocol, store, run, since, key, model, threshold, humans)
    run.write_csv("conflicts.csv", ["cluster_id", "title", "verdicts"], done.conflicts)
    run.write_json("agreement.json", done.agreement)
    counts: dict[str, Any] = {k: done.tally[k] for k in _COUNTED}
    counts.update(rct_threshold=threshold, model=model.version, conflicts=len(done.conflicts),
                  decided_now=done.decided_now)
    outputs = ("screening.csv", "conflicts.csv", "agreement.json", MEMO)
    info: dict[str, Any] = {} if since is None else {"carried_from": since.run_id}
    if done.changed is not None:  # for the report, which carries the other clusters' lines
        info["changed_clusters"] = done.changed
    run.record_stage("screen", counts=counts, outputs=outputs, **info)
    return StageResult("screen", counts, outputs)


def _screen_all(protocol: Protocol, store: Store, run: Run, since: Run | None, key: str,
                model: Any, threshold: float, humans: list[HumanDecision]) -> _Screened:
    """Screen every cluster, reusing the machine verdicts of ``since``'s memo that still
    hold; every row goes through Python."""
    memo = read_memo(since, MEMO, key)
    # A canonical line is its record as record_hash serialises it, so a line's hash finds its
    # memo row without parsing the line.
    carried: dict[str, dict[str, Any]] = {}
    if memo:
        with run.require("canonical.jsonl", "dedupe").open(encoding="utf-8") as handle:
            for line in handle:
                match = CANONICAL_CLUSTER_ID.search(line)
                if match and match.group(1) in memo:
                    digest = hashlib.sha256(line.rstrip("\n").encode("utf-8")).hexdigest()
                    if memo[match.group(1)][0] == digest:
                        carried[match.group(1)] = memo[match.group(1)][1]
    cluster_of_record = {r["record_id"]: r["cluster_id"]
                         for r in run.read_csv("clusters.csv", "dedupe")}
    uncarried = set(cluster_of_record.values()) - carried.keys()
    todo = load_canonical(run, uncarried if carried else None)
    decided = [*carried.values(), *_decide_all(todo, protocol, model, threshold)]
    decided.sort(key=lambda r: r["cluster_id"])
    # Written before study links and humans change the rows: the memo holds decide()'s own.
    write_memo(run, MEMO, key, ((row["cluster_id"], row["_inputs"], row)
                                for row in decided))
    rows = decided
    conflicts, agreement_info = _link_and_apply_humans(rows, humans, cluster_of_record)
    run.write_csv("screening.csv", SCREENING_COLUMNS, rows)
    store.replace_rows("screening", run.run_id, map(_store_row, rows))
    # An update logs the clusters whose row it decided or changed; the others were logged
    # by the run that decided them.
    before = {} if since is None else {
        r["cluster_id"]: r for r in since.read_csv("screening.csv", "screen")}
    store.append_decisions(run.run_id, (
        _log_entry(r) for r in rows if r["cluster_id"] not in carried or _changed(r, before)))
    return _Screened(_tally(rows), conflicts, agreement_info, len(todo))


def _screen_update(protocol: Protocol, store: Store, run: Run, since: Run, key: str,
                   model: Any, threshold: float, humans: list[HumanDecision]
                   ) -> _Screened | None:
    """Screen an update run from ``since``'s artifacts, at the cost of what changed.

    Only clusters whose canonical line changed are decided. A carried row can still change
    through study links and duplicate-publication flags, which only touch decide()'s
    inclusions and its other reports of a trial (read from the memo), and through the
    humans' decisions (the clusters named now, and those a human decided before): those
    rows are redone, from their memo rows, exactly as :func:`_screen_all` does them, and
    every other row is ``since``'s line, which deciding it again would give. Store rows are
    copied by SQLite. None when ``since``'s memo, rows, counts or store rows do not allow it.
    """
    memo = read_memo_lines(since, MEMO, key)
    before = ScreeningRows.read(since)
    if not memo or before is None or list(before.rows) != list(memo):
        return None
    previous = since.manifest["stages"]["screen"]["counts"]
    stored = store.db.execute("SELECT COUNT(*) FROM screening WHERE run_id = ?",
                              (since.run_id,)).fetchone()[0]
    if stored != len(memo) or any(not isinstance(previous.get(k), int) for k in _COUNTED):
        return None
    changed, vanished = _canonical_changes(run, since)
    if None in changed or None in vanished or not vanished <= memo.keys():
        return None

    lines = dict(memo)
    for cluster_id in vanished:
        del lines[cluster_id]
    todo = [json.loads(changed[c]) for c in sorted(changed)]
    for row in _decide_all(todo, protocol, model, threshold):
        lines[row["cluster_id"]] = memo_line(row["cluster_id"], row["_inputs"], row).encode()
    memo_data = write_memo_lines(run, MEMO, key, lines)

    named = {h.id for h in humans}
    cluster_of_record = clusters_of_records(run, named - lines.keys())
    redo = (changed.keys() | lines_with(memo_data, _MEMO_ID, _LINKABLE)
            | (named & lines.keys()) | set(cluster_of_record.values())
            | (before.ids_of_lines_with(*_BY_HUMAN) & lines.keys()))
    rows = [json.loads(lines[c])["row"] for c in sorted(redo)]
    conflicts, agreement_info = _link_and_apply_humans(rows, humans, cluster_of_record)

    after = dict(before.rows)
    for cluster_id in vanished:
        del after[cluster_id]
    after.update((r["cluster_id"], csv_line(SCREENING_COLUMNS, r)) for r in rows)
    run.write_bytes("screening.csv", b"\n".join(
        [_SCREENING_HEADER, *map(after.__getitem__, sorted(after))]) + b"\n")
    store.carry_rows("screening", since.run_id, run.run_id, "cluster_id",
                     map(_store_row, rows), dropped=vanished)
    old = {c: before.row(c) for c in (redo | vanished) & before.rows.keys()}
    store.append_decisions(run.run_id, (
        _log_entry(r) for r in rows if r["cluster_id"] in changed or _changed(r, old)))
    tally = Counter({k: previous[k] for k in _COUNTED})
    tally.subtract(_tally(old.values()))
    tally.update(_tally(rows))
    return _Screened(tally, conflicts, agreement_info, len(todo), sorted(changed))


def _canonical_changes(run: Run, since: Run) -> tuple[dict[Any, bytes], set[Any]]:
    """The canonical lines that are new or changed since ``since`` (by cluster id), and the
    clusters gone: as dedupe recorded them when it built this run from ``since``, else by
    comparing the two files."""
    dedupe = run.manifest.get("stages", {}).get("dedupe", {})
    if dedupe.get("carried_from") == since.run_id and "changed_clusters" in dedupe:
        changed = canonical_lines(run, dedupe["changed_clusters"])
        if len(changed) == len(dedupe["changed_clusters"]):
            return dict(changed), set(dedupe["removed_clusters"])
    gone, added = line_changes(since.require("canonical.jsonl", "dedupe").read_bytes(),
                               run.require("canonical.jsonl", "dedupe").read_bytes())
    changed = {canonical_line_id(line): line for line in added}
    return changed, {canonical_line_id(line) for line in gone} - changed.keys()


def _decide_all(records: list[dict[str, Any]], protocol: Protocol, model: Any,
                threshold: float) -> list[dict[str, Any]]:
    scores = model.predict_proba([f"{c.get('title') or ''} {c.get('abstract') or ''}"
                                  for c in records]) if records else []
    return [decide(record, protocol, p_text=float(p), threshold=threshold, model=model.version)
            for record, p in zip(records, scores, strict=True)]


def _link_and_apply_humans(rows: list[dict[str, Any]], humans: list[HumanDecision],
                           cluster_of_record: dict[str, str]
                           ) -> tuple[list[dict], dict[str, Any]]:
    """Study links, duplicate publications, then the humans; rows stay sorted by cluster."""
    apply_study_links(rows)
    flag_duplicate_publications(rows)
    for row in rows:
        row["machine_decision"], row["machine_reason"] = row["decision"], row["reason"]
    conflicts, agreement_info = apply_humans(rows, humans, cluster_of_record)
    rows.sort(key=lambda r: r["cluster_id"])
    return conflicts, agreement_info


def _store_row(r: dict[str, Any]) -> tuple[Any, ...]:
    return (r["cluster_id"], r["decision"], r["reason"], r["design"], r["p_rct"],
            r["decided_by"], r["evidence"])


def _log_entry(r: dict[str, Any]) -> dict[str, Any]:
    return {"subject": r["cluster_id"], "stage": "screen", "decision": r["decision"],
            "reason": r["reason"], "evidence": r["evidence"],
            "actor": r["decided_by"] if r["decided_by"].startswith(("human", "conflict"))
            else f"{r['decided_by']} p_rct={r['p_rct']}", "inputs_sha256": r["_inputs"]}


def _tally(rows: Iterable[dict[str, Any]]) -> Counter[str]:
    """What rows add to the stage's counts (the keys of ``_COUNTED``, and others)."""
    tally: Counter[str] = Counter()
    for row in rows:
        tally["screened"] += 1
        tally[row["decision"]] += 1
        tally[f"excluded_{row['reason']}"] += 1
        tally["human_decisions"] += row["decided_by"].startswith("human")
    return tally
