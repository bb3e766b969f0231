"""The dedupe rules: records of one publication become one cluster; reports of one trial, one
study.

How two records become one (every merge is logged with its rule and scores):

1. A reviewer's answers (``queries/<review>.dedupe.csv``): ``same`` joins, ``different`` keeps
   two records apart for good (no rule may join their clusters).
2. Exact keys: PMID, PMCID, normalised DOI (unless title and first author both disagree: a
   DOI pasted onto the wrong record), identical long abstracts.
3. Candidate pairs, never all pairs: records sharing one of their rarest title words (a word at
   least two records have), or the same first author, year and first page.
4. Each candidate is scored (title, authors, year, journal, volume, pages, DOI) and decided by
   the declared rules of :mod:`reviewpipe.pair_rules`; pairs near the line go to
   ``dedupe_review.csv``.

Different publications of one trial (protocol, registry entry, results paper) are linked by their
registration number as one ``study_id``, never merged.
"""

from __future__ import annotations

import gc
import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from rapidfuzz import fuzz, process

from reviewpipe.normalize import (
    doi_versions,
)
from reviewpipe.pair_rules import (
    SCREEN_TITLE,
    PairKeys,
    cut_scores,
    decide_pair,
    doi_misfiled,
    hard_conflict,
    pair_keys,
)
from reviewpipe.records import Record

RULES = "rules:dedupe-v2"
# Identical abstracts of at least this length are one publication (mirrors copy the abstract;
# a protocol and its results paper do not share one).
ABSTRACT_CHARS = 250
# Blocking: each record joins the blocks of its BLOCK_TOKENS rarest title words that at least
# two records have; blocks larger than MAX_BLOCK (common words) are skipped.
BLOCK_TOKENS = 3
MAX_BLOCK = 300
# Registration prefixes that name a trial (PROSPERO CRD numbers name reviews, so they don't link).
TRIAL_REGISTRIES = ("NCT", "ISRCTN", "ACTRN", "IRCT", "CTRI", "CHICTR", "DRKS", "EUCTR", "JPRN",
                    "KCT", "TCTR", "PACTR", "RBR", "NTR", "SLCTR")
# The queue's rows can be copied into queries/<review>.dedupe.csv with "answer" filled in.
REVIEW_COLUMNS = ["record_a", "record_b", "answer", "reason", "title", "prefix", "year_gap",
                  "first_author", "journal", "page", "volume", "authors", "doi", "title_a",
                  "title_b"]
# Bytes deleted from an abstract before it is hashed: all but ASCII letters and digits.
_NOT_ALNUM = bytes(c for c in range(128) if not chr(c).isalnum()) + bytes(range(128, 256))
# Title words too common to block on.
_STOP = frozenset(("the", "and", "for", "with", "from", "into", "its", "their", "our", "are",
                   "was", "were", "has", "have", "this", "that", "not", "but", "all", "any",
                   "can", "may", "use", "using", "study", "trial"))


@dataclass
class Clustering:
    """The outcome of deduplication."""

    cluster_of: dict[str, str]
    study_of: dict[str, str]
    merges: list[dict[str, Any]] = field(default_factory=list)
    queue: list[dict[str, Any]] = field(default_factory=list)
    study_links: list[dict[str, Any]] = field(default_factory=list)
    # Each record's keys, in record_id order (what the update index is built from).
    keys: list[PairKeys] = field(default_factory=list, repr=False)

def cluster_records(records: list[Record], *, answers: dict[frozenset[str], str] | None = None,
                    previous: dict[str, str] | None = None) -> Clustering:
    """Group records into clusters (same publication) and studies (same trial).

    The result does not depend on the order of ``records``: they are sorted by ``record_id``
    and every decision is taken in an order fixed by ids and scores.

    Parameters
    ----------
    records : list of Record
    answers : dict, optional
        A reviewer's verdict per pair, ``frozenset({id_a, id_b}) -> "same" | "different"``;
        honoured before any rule, on every run.
    previous : dict, optional
        ``record_id -> cluster_id`` from an earlier run, so clusters keep their ids.
    """
    # Keys, pairs and log rows are many small objects that form no cycles; with the collector
    # on, each burst of them re-scans every live record (a third of the time at 100k).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _cluster(records, answers or {}, previous or {})
    finally:
        if was_enabled:
            gc.enable()


def _cluster(records: list[Record], answers: dict[frozenset[str], str],
             previous: dict[str, str]) -> Clustering:
    records = sorted(records, key=lambda r: r.record_id)
    keys = [pair_keys(r) for r in records]
    decider = Decider(records, keys)
    known = decider.apply_answers(answers)
    _exact_keys(records, keys, decider.forest, decider.join, decider.queue)
    decider.decide(_candidate_pairs(keys, decider.forest, *_blocks(keys)))
    members: dict[int, list[str]] = defaultdict(list)
    for i, rid in enumerate(decider.ids):
        members[decider.forest.find(i)].append(rid)
    cluster_of = _stable_ids(members.values(), previous, prefix="C")
    kept = questions(decider.queue, cluster_of, [pair for pair, _ in known])
    study_of, links = _studies(records, cluster_of)
    return Clustering(cluster_of=cluster_of, study_of=study_of, merges=decider.merges,
                      queue=kept, study_links=links, keys=keys)


class Decider:
    """The union-find over ``records`` (sorted by id) with the merge log and review queue
    its decisions write; the same rules join records in a full run and in an update."""

    def __init__(self, records: list[Record], keys: list[PairKeys]) -> None:
        self.records, self.keys = records, keys
        self.ids = [r.record_id for r in records]
        self.index = {rid: i for i, rid in enumerate(self.ids)}
        self.forest = _Forest(keys)
        self.merges: list[dict[str, Any]] = []
        self.queue: list[dict[str, Any]] = []

    def apply_answers(self, answers: dict[frozenset[str], str]
                      ) -> list[tuple[list[str], str]]:
        """Keep reviewers' "different" pairs apart and join their "same" pairs; returns the
        answers about these records, in a fixed order."""
        known = sorted((sorted(pair), answer) for pair, answer in answers.items()
                       if len(pair) == 2 and pair <= self.index.keys())
        for (a, b), answer in known:
            if answer == "different":
                self.forest.forbid(self.index[a], self.index[b])
        for (a, b), answer in known:
            if answer == "same":
                self.join(self.index[a], self.index[b], "reviewer:same", {})
        return known

    def join(self, i: int, j: int, rule: str, scores: dict[str, Any]) -> None:
        a, b = sorted((i, j))
        # Exact keys and reviewers outrank the DOI/PMID check; rules do not.
        clash = "" if rule.startswith(("exact:", "reviewer:")) else self.forest.clash(a, b)
        if clash:
            self.queue.append(_queue_row(self.records[a], self.records[b], clash, scores))
        elif self.forest.union(a, b):
            self.merges.append({"record_a": self.ids[a], "record_b": self.ids[b], "rule": rule,
                                **scores})

    def decide(self, pairs: Iterable[tuple[int, int]]) -> None:
        """Decide candidate pairs in the order given (best title score first)."""
        find = self.forest.find
        for i, j in pairs:
            if find(i) != find(j):
                verdict, rule, scores = decide_pair(self.keys[i], self.keys[j])
                if verdict == "merge":
                    self.join(i, j, rule, scores)
                elif verdict == "review":
                    self.queue.append(_queue_row(self.records[i], self.records[j], rule,
                                                 scores))


def questions(queue: Iterable[dict[str, Any]], cluster_of: dict[str, str],
              answered: Iterable[Iterable[str]]) -> list[dict[str, Any]]:
    """The review queue: one question per pair of clusters (the two records that came closest),
    none inside one cluster, and none that a reviewer has answered already."""
    done = {frozenset(cluster_of[rid] for rid in pair if rid in cluster_of)
            for pair in answered}
    best: dict[frozenset[str], dict[str, Any]] = {}
    for row in sorted(queue, key=lambda q: (-float(q.get("title") or 0), q["record_a"],
                                            q["record_b"])):
        pair = frozenset((cluster_of[row["record_a"]], cluster_of[row["record_b"]]))
        if len(pair) == 2 and pair not in done:
            best.setdefault(pair, row)
    return sorted(best.values(), key=lambda q: (q["record_a"], q["record_b"]))


class _Forest:
    """Union-find over record indices that keeps apart what must stay apart.

    Reviewers' "different" pairs never end up in one cluster, and a rule (not an exact key)
    never joins two clusters whose DOIs or PMIDs differ: a copy without a DOI that matches
    two records with different DOIs joins the better match only.
    """

    def __init__(self, keys: list[PairKeys]) -> None:
        self.parent = list(range(len(keys)))
        self.apart: list[tuple[int, int]] = []
        self.ids = {i: ({k.doi} if k.doi else set(), {k.pmid} if k.pmid else set())
                    for i, k in enumerate(keys) if k.doi or k.pmid}

    def find(self, x: int) -> int:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def forbid(self, a: int, b: int) -> None:
        self.apart.append((a, b))

    def clash(self, a: int, b: int) -> str:
        """Why the clusters of a and b may not be joined by a rule, or ""."""
        ra, rb = self.find(a), self.find(b)
        (doi_a, pmid_a), (doi_b, pmid_b) = (self.ids.get(ra, ((), ())),
                                            self.ids.get(rb, ((), ())))
        if doi_a and doi_b and not any(x == y or doi_versions(x, y)
                                       for x in doi_a for y in doi_b):
            return "would join clusters with different DOIs"
        if pmid_a and pmid_b and not pmid_a & pmid_b:
            return "would join clusters with different PMIDs"
        return ""

    def union(self, a: int, b: int) -> bool:
        """Join the clusters of a and b; False when they are one already or must stay apart."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        for x, y in self.apart:
            if {self.find(x), self.find(y)} == {ra, rb}:
                return False
        keep, gone = min(ra, rb), max(ra, rb)
        self.parent[gone] = keep
        if gone in self.ids:
            doi, pmid = self.ids.pop(gone)
            mine = self.ids.setdefault(keep, (set(), set()))
            mine[0].update(doi)
            mine[1].update(pmid)
        return True

    def roots(self) -> np.ndarray:
        return np.fromiter((self.find(i) for i in range(len(self.parent))), dtype=np.int64,
                           count=len(self.parent))


def _exact_keys(records: list[Record], keys: list[PairKeys], forest: _Forest, join: Any,
                queue: list[dict[str, Any]]) -> None:
    """PMID, PMCID, DOI and identical long abstracts, in a fixed order."""
    for name in ("pmid", "pmcid", "doi"):
        groups: dict[str, list[int]] = defaultdict(list)
        for i, record in enumerate(records):
            value = getattr(record, name)
            if value:
                groups[value].append(i)
        for value, members in sorted(groups.items()):
            for other in members[1:]:
                first = members[0]
                if name == "doi" and doi_misfiled(keys[first], keys[other]):
                    queue.append(_queue_row(records[first], records[other],
                                            "same DOI, different title and authors",
                                            {"key": value}))
                    continue
                join(first, other, f"exact:{name}", {"key": value})
    by_abstract: dict[str, list[int]] = defaultdict(list)
    for i, record in enumerate(records):
        if (digest := abstract_key(record)) is not None:
            by_abstract[digest].append(i)
    for digest, members in sorted(by_abstract.items()):
        for other in members[1:]:
            if not hard_conflict(keys[members[0]], keys[other], flags=False):
                join(members[0], other, "exact:abstract", {"key": digest[:12]})


def block_words(keys: PairKeys) -> tuple[str, ...]:
    """The title words a record may be blocked on (every language's title)."""
    return tuple({w for v in keys.variants for w in v.split() if len(w) > 2 and w not in _STOP})


def citation_key(keys: PairKeys) -> tuple[str, int, str] | None:
    """First author, year and first page, when all three are known."""
    if keys.surname and keys.year and len(keys.page) > 1:
        return (keys.surname, keys.year, keys.page)
    return None


def rare_words(words: Iterable[str], frequency: Any) -> list[str]:
    """A record's BLOCK_TOKENS rarest words among those at least two records have."""
    rare = sorted((frequency[w], w) for w in words if frequency[w] > 1)
    return [word for _, word in rare[:BLOCK_TOKENS]]


def _blocks(keys: list[PairKeys]) -> tuple[list[list[int]], list[list[int]]]:
    """Title-word blocks and citation blocks of a full run (lists of record indices)."""
    # One string object per distinct word, held in tuples: sets per record would cost
    # hundreds of megabytes at 100k.
    canon: dict[str, str] = {}
    words = [tuple(canon.setdefault(w, w) for w in block_words(k)) for k in keys]
    frequency = Counter(w for ws in words for w in ws)
    blocks: dict[Any, list[int]] = defaultdict(list)
    for i, ws in enumerate(words):
        for word in rare_words(ws, frequency):
            blocks[word].append(i)
    citation: dict[tuple[str, int, str], list[int]] = defaultdict(list)
    for i, k in enumerate(keys):
        if (key := citation_key(k)) is not None:
            citation[key].append(i)
    return list(blocks.values()), list(citation.values())


def abstract_key(record: Record) -> str | None:
    """The digest under which identical long abstracts meet, or None for a short one."""
    if len(record.abstract) < ABSTRACT_CHARS:
        return None
    # ASCII letters and digits only, lower case: spacing, punctuation and markup differ
    # between exports of one abstract. The first and last 500 of them stand for the whole
    # (bytes.translate: a regex over 100k abstracts takes seconds).
    text = record.abstract
    head = text[:800].lower().encode("ascii", "ignore").translate(None, _NOT_ALNUM)
    tail = text[-800:].lower().encode("ascii", "ignore").translate(None, _NOT_ALNUM)
    if len(head) < ABSTRACT_CHARS * 0.8:
        return None
    return hashlib.sha1(head[:500] + b"|" + tail[-500:]).hexdigest()


def _candidate_pairs(keys: list[PairKeys], forest: _Forest, word_blocks: list[list[int]],
                     citation_blocks: list[list[int]], only: np.ndarray | None = None
                     ) -> Iterable[tuple[int, int]]:
    """Candidate pairs (i < j) worth deciding, best title score first.

    Blocks: the rarest shared title words, and (first author, year, first page). Pairs in one
    cluster already are dropped (and, with ``only``, pairs where neither side is marked); the
    title score of every other pair is computed at once in C (``rapidfuzz.process.cpdist``),
    and only pairs that reach SCREEN_TITLE, share a citation key, or carry a second-language
    title go on to ``decide_pair``.
    """
    n = len(keys)
    # A pair is coded (i * n + j) * 2 + cited, so one sort finds the distinct pairs and
    # whether any of their blocks was a citation key.
    chunks = [_block_pairs(members, n) * 2 for members in word_blocks
              if 1 < len(members) <= MAX_BLOCK]
    chunks += [_block_pairs(members, n) * 2 + 1 for members in citation_blocks
               if 1 < len(members) <= MAX_BLOCK]
    if not chunks:
        return
    codes = np.concatenate(chunks)
    roots = forest.roots()
    codes = codes[roots[(codes >> 1) // n] != roots[(codes >> 1) % n]]
    if only is not None:
        codes = codes[only[(codes >> 1) // n] | only[(codes >> 1) % n]]
    codes.sort()  # not np.unique: numpy 2's hash-based unique is 100x slower on int64
    pair = codes >> 1
    last = np.ones(len(codes), dtype=bool)  # the last of equal pairs carries "cited"
    last[:-1] = pair[1:] != pair[:-1]
    cited = (codes[last] & 1).astype(bool)
    left, right = pair[last] // n, pair[last] % n
    # An object array indexes without making a Python int per pair (memory at 100k).
    titles = np.array([k.title for k in keys], dtype=object)
    scores = process.cpdist(titles[left], titles[right], scorer=fuzz.ratio, workers=-1,
                            dtype=np.float32)
    scores = np.maximum(scores, cut_scores(titles, left, right, scores))
    multi = np.fromiter((len(k.variants) > 1 for k in keys), dtype=bool, count=n)
    worth = (scores >= SCREEN_TITLE) | cited | multi[left] | multi[right]
    left, right, scores = left[worth], right[worth], scores[worth]
    order = np.lexsort((right, left, -scores))
    yield from zip(left[order].tolist(), right[order].tolist(), strict=True)


def _block_pairs(members: list[int], n: int) -> np.ndarray:
    """All pairs of one block as codes ``i * n + j`` with i < j."""
    if len(members) == 2:  # most blocks: skip numpy's overhead
        i, j = sorted(members)
        return np.array([i * n + j] if i != j else [], dtype=np.int64)
    m = np.asarray(sorted(set(members)), dtype=np.int64)
    a, b = _upper_pairs(len(m))
    return m[a] * n + m[b]


@lru_cache(maxsize=MAX_BLOCK + 1)
def _upper_pairs(size: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(size, k=1)


def _queue_row(a: Record, b: Record, reason: str, scores: dict[str, Any]) -> dict[str, Any]:
    first, second = sorted((a, b), key=lambda r: r.record_id)
    return {**{k: v for k, v in scores.items() if k in REVIEW_COLUMNS},
            "record_a": first.record_id, "record_b": second.record_id, "reason": reason,
            "title_a": first.title, "title_b": second.title}


def _stable_ids(groups: Iterable[list[str]], previous: dict[str, str], prefix: str
                ) -> dict[str, str]:
    """Cluster ids that survive reruns: an old id when a member had one, else a content hash.

    The hash is of the cluster's smallest record id, so it depends on no input order.
    """
    out: dict[str, str] = {}
    used: set[str] = set()
    for ids in sorted((sorted(g) for g in groups), key=lambda g: g[0]):
        old = sorted({previous[r] for r in ids if r in previous} - used)
        cluster_id = old[0] if old else new_cluster_id(ids[0], used, prefix)
        used.add(cluster_id)
        for rid in ids:
            out[rid] = cluster_id
    return out


def new_cluster_id(smallest: str, used: set[str], prefix: str = "C") -> str:
    """A new cluster's id: a hash of its smallest record id, rehashed while taken."""
    cluster_id = prefix + hashlib.sha1(smallest.encode("utf-8")).hexdigest()[:10]
    while cluster_id in used:
        cluster_id = prefix + hashlib.sha1(cluster_id.encode("utf-8")).hexdigest()[:10]
    return cluster_id


def _studies(records: list[Record], cluster_of: dict[str, str]
             ) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Link clusters that share a trial registration number into one study."""
    by_registration: dict[str, set[str]] = defaultdict(set)
    for record in records:
        for reg in trial_registrations(record):
            by_registration[reg].add(cluster_of[record.record_id])
    return link_studies(set(cluster_of.values()), by_registration)


def trial_registrations(record: Record) -> list[str]:
    """The record's registration numbers that name a trial, upper case."""
    return [reg.upper() for reg in record.registrations
            if reg.upper().startswith(TRIAL_REGISTRIES)]


def link_studies(cluster_ids: Iterable[str], by_registration: dict[str, Any]
                 ) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Study ids (the smallest linked cluster id, as ``S…``) and the links that made them."""
    parent = {cid: cid for cid in cluster_ids}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    links = []
    for reg, clusters in sorted(by_registration.items()):
        ordered = sorted(clusters)
        for other in ordered[1:]:
            ra, rb = find(ordered[0]), find(other)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
        if len(ordered) > 1:
            links.extend({"cluster_id": cid, "registration": reg} for cid in ordered)
    study_of = {cid: "S" + find(cid)[1:] for cid in parent}
    for link in links:
        link["study_id"] = study_of[link["cluster_id"]]
    return study_of, links
