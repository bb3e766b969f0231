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
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rapidfuzz import fuzz

from reviewpipe.dedupe import CANONICAL_CLUSTER_ID, load_canonical
from reviewpipe.design import classify_design, text_model
from reviewpipe.errors import InputError
from reviewpipe.memo import read_memo, stage_key, write_memo
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


def screen(protocol: Protocol, store: Store, run: Run, *, since: Run | None = None
           ) -> StageResult:
    """Decide every cluster and write ``screening.csv`` (+ conflicts and the decision log).

    With ``since`` (an update run's previous run), a cluster whose canonical record, protocol
    and screening code are unchanged keeps the machine verdict ``since`` gave it
    (``screen_memo.jsonl``) instead of being decided again; study links, duplicate
    publications and the humans' decisions are applied to every cluster as always.
    """
    model = text_model()
    threshold = protocol.screen.get("rct_threshold")
    threshold = model.threshold if threshold is None else threshold
    key = stage_key(protocol, _MEMO_MODULES, ("design_model.json",),
                    extra=[threshold, model.version])
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
    scores = model.predict_proba([f"{c.get('title') or ''} {c.get('abstract') or ''}"
                                  for c in todo]) if todo else []
    decided = [*carried.values(), *(
        decide(record, protocol, p_text=float(p), threshold=threshold, model=model.version)
        for record, p in zip(todo, scores, strict=True))]
    decided.sort(key=lambda r: r["cluster_id"])
    # Written before study links and humans change the rows: the memo holds decide()'s own.
    write_memo(run, MEMO, key, ((row["cluster_id"], row["_inputs"], row)
                                for row in decided))
    rows = decided
    apply_study_links(rows)
    flag_duplicate_publications(rows)
    for row in rows:
        row["machine_decision"], row["machine_reason"] = row["decision"], row["reason"]
    humans_path = protocol.path.with_name(f"{protocol.review_id}.decisions.csv")
    conflicts, agreement_info = apply_humans(rows, read_human_decisions(humans_path),
                                             cluster_of_record)
    rows.sort(key=lambda r: r["cluster_id"])
    run.write_csv("screening.csv", SCREENING_COLUMNS, rows)
    run.write_csv("conflicts.csv", ["cluster_id", "title", "verdicts"], conflicts)
    run.write_json("agreement.json", agreement_info)
    store.replace_rows("screening", run.run_id, (
        (r["cluster_id"], r["decision"], r["reason"], r["design"], r["p_rct"], r["decided_by"],
         r["evidence"]) for r in rows))
    # An update logs the clusters whose row it decided or changed; the others were logged
    # by the run that decided them.
    before = {} if since is None else {
        r["cluster_id"]: r for r in since.read_csv("screening.csv", "screen")}
    store.append_decisions(run.run_id, (
        {"subject": r["cluster_id"], "stage": "screen", "decision": r["decision"],
         "reason": r["reason"], "evidence": r["evidence"],
         "actor": r["decided_by"] if r["decided_by"].startswith(("human", "conflict"))
         else f"{r['decided_by']} p_rct={r['p_rct']}", "inputs_sha256": r["_inputs"]}
        for r in rows if r["cluster_id"] not in carried or _changed(r, before)))
    counts: dict[str, Any] = {"screened": len(rows), "rct_threshold": threshold,
                              "model": model.version}
    for decision in DECISIONS:
        counts[decision] = sum(r["decision"] == decision for r in rows)
    for reason in REASONS[1:]:
        counts[f"excluded_{reason}"] = sum(r["reason"] == reason for r in rows)
    counts["human_decisions"] = sum(r["decided_by"].startswith("human") for r in rows)
    counts["conflicts"] = len(conflicts)
    counts["decided_now"] = len(todo)
    outputs = ("screening.csv", "conflicts.csv", "agreement.json", MEMO)
    run.record_stage("screen", counts=counts, outputs=outputs,
                     **({"carried_from": since.run_id} if since is not None else {}))
    return StageResult("screen", counts, outputs)
