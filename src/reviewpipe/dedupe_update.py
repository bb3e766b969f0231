"""Dedupe in an update: the records new since the previous run, matched against its clusters.

A full run decides every pair of records. An update decides only pairs with a new record in
them, by the same reviewer answers, exact keys and pair rules, against every existing cluster:
old clusters keep their ids and are never split or decided again among themselves. A new
record that matches two old clusters joins them (the smaller id stays), unless their DOIs,
PMIDs or a reviewer's "different" keep them apart, as in a full run.

What an update needs of the old records is kept in each run's ``dedupe_index.json``: every
record's title words and citation key, who holds each PMID, PMCID, DOI and long abstract, the
DOIs and PMIDs of each cluster, and the clusters of each trial registration. Only the old
records a new one could match are read from ``records.jsonl``, so the work grows with the new
records, not with the review.

Blocking differs from a full run in one way: a new record meets every old record that has one
of its rarest title words, not only those whose own rarest words include it, so an update
decides a superset of the pairs a full run would. The index's key covers the code, the
protocol and the reviewer's answers; when any of them changed, or an old record changed or
left, the update clusters every record instead (:func:`extend_clusters` returns None).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from reviewpipe.clustering import (
    MAX_BLOCK,
    Clustering,
    Decider,
    _candidate_pairs,
    _exact_keys,
    abstract_key,
    block_words,
    citation_key,
    link_studies,
    new_cluster_id,
    questions,
    rare_words,
    trial_registrations,
)
from reviewpipe.memo import find_line, line_start
from reviewpipe.pair_rules import PairKeys, pair_keys
from reviewpipe.records import Record, line_record_id
from reviewpipe.runs import Run

INDEX = "dedupe_index.json"
INDEX_FORMAT = 3
EXACT = ("pmid", "pmcid", "doi")
EXACT_KEYS = (*EXACT, "abstract")
# Between the record ids of a posting (a record id holding one is filed as a list).
_SEPARATOR = "\t"


def build_index(records: list[Record], keys: list[PairKeys], cluster_of: dict[str, str],
                key: str) -> dict[str, Any]:
    """The index an update matches new records against (``keys[i]`` belongs to
    ``records[i]``)."""
    index: dict[str, Any] = {"format": INDEX_FORMAT, "key": key, "words": {},
                             "citations": {}, "exact": {name: {} for name in EXACT_KEYS},
                             "registrations": {}, "blocks": {}}
    _add(index, records, keys, cluster_of)
    counts = {w: _count(index, w) for w in index["words"]}
    blocks: dict[str, list[str]] = defaultdict(list)
    for record, k in zip(records, keys, strict=True):
        for word in rare_words(block_words(k), counts):
            if counts[word] > MAX_BLOCK:
                blocks[word].append(record.record_id)
    for word, ids in blocks.items():
        _set_postings(index, "blocks", word, ids)
    return index


def _count(index: dict[str, Any], word: str) -> int:
    """How many records have ``word`` in their title."""
    value = index["words"].get(word)
    if value is None:
        return 0
    return value.count(_SEPARATOR) + 1 if isinstance(value, str) else len(value)


def _add(index: dict[str, Any], records: list[Record], keys: list[PairKeys],
         cluster_of: dict[str, str]) -> None:
    """Add records (and their keys) to the index."""
    words: dict[str, list[str]] = defaultdict(list)
    citations: dict[str, list[str]] = defaultdict(list)
    registrations: dict[str, set[str]] = defaultdict(set)
    exact = index["exact"]
    for record, k in zip(records, keys, strict=True):
        rid = record.record_id
        for word in block_words(k):
            words[word].append(rid)
        if (cite := citation_key(k)) is not None:
            citations[_cite(cite)].append(rid)
        for name, value in _exact_values(record):
            held = exact[name].get(value)
            exact[name][value] = rid if held is None else min(held, rid)
        for reg in trial_registrations(record):
            registrations[reg].add(cluster_of[rid])
    for part, added in (("words", words), ("citations", citations)):
        for name, ids in added.items():
            _set_postings(index, part, name, [*postings(index, part, name), *ids])
    for reg, clusters in registrations.items():
        index["registrations"][reg] = sorted({*index["registrations"].get(reg, ()),
                                              *clusters})


def _exact_values(record: Record) -> list[tuple[str, str]]:
    values = [(name, getattr(record, name)) for name in EXACT]
    values.append(("abstract", abstract_key(record)))
    return [(name, value) for name, value in values if value]


def postings(index: dict[str, Any], part: str, name: str) -> list[str]:
    """The record ids filed under a title word or citation key."""
    value = index[part].get(name, ())
    return value.split(_SEPARATOR) if isinstance(value, str) else list(value)


def _set_postings(index: dict[str, Any], part: str, name: str, ids: list[str]) -> None:
    # One string per word rather than a JSON list: the index loads several times faster.
    ids = sorted(set(ids))
    joinable = not any(_SEPARATOR in rid for rid in ids)
    index[part][name] = _SEPARATOR.join(ids) if joinable else ids


def _cite(key: tuple[str, int, str]) -> str:
    return f"{key[0]}\t{key[1]}\t{key[2]}"


def index_text(index: dict[str, Any]) -> str:
    """The index as the run stores it (compact, sorted keys: same index, same bytes)."""
    return json.dumps(index, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n"


def read_index(run: Run, key: str) -> dict[str, Any] | None:
    """``run``'s index, or None when it has none or it was made under another key."""
    path = run.path(INDEX)
    if not path.is_file():
        return None
    index = json.loads(path.read_text(encoding="utf-8"))
    if index.get("format") != INDEX_FORMAT or index.get("key") != key:
        return None
    return index


@dataclass
class Extension:
    """An update's clustering: every record's cluster, and what changed since the last run."""

    clustering: Clustering
    new: list[str]
    changed: set[str]
    removed: set[str]
    records: dict[str, Record]
    index: dict[str, Any]


def extend_clusters(run: Run, since: Run, answers: dict[frozenset[str], str], key: str
                    ) -> Extension | None:
    """Cluster the records of ``run`` that ``since`` did not have into ``since``'s clusters.

    Returns None when that cannot stand for a full run: ``since`` has no index under ``key``,
    or one of its records changed or is gone. ``clustering.merges`` holds only the merges
    made now; ``clustering.queue`` the whole review queue.
    """
    index = read_index(since, key)
    if index is None:
        return None
    cluster_of, previous_study = _previous_clusters(since)
    lines = RecordLines.of_update(run, since, cluster_of)
    if lines is None:
        return None
    new = [Record.from_json(line) for line in lines.added]
    new_keys = [pair_keys(r) for r in new]
    frequency = _frequency(index, new_keys)
    blocks = _common_blocks(index, new, new_keys, lines, frequency)
    wanted = _candidates(index, new, new_keys, answers, cluster_of, blocks, frequency)
    # Every record of a cluster a new one could join: the DOIs and PMIDs of all of them decide
    # whether a rule may join it (as in a full run).
    touched = {cluster_of[rid] for rid in wanted}
    wanted.update(rid for rid, cid in cluster_of.items() if cid in touched)
    parsed = {r.record_id: r for r in new}
    parsed.update((rid, Record.from_json(lines.line(rid))) for rid in wanted)
    order = sorted(parsed)
    records = [parsed[rid] for rid in order]
    keys_of = {r.record_id: k for r, k in zip(new, new_keys, strict=True)}
    keys = [keys_of.get(rid) or pair_keys(parsed[rid]) for rid in order]
    is_new = np.array([rid not in cluster_of for rid in order], dtype=bool)

    decider = Decider(records, keys)
    _join_old_clusters(decider, cluster_of)
    decider.apply_answers(answers)
    _exact_keys(records, keys, decider.forest, decider.join, decider.queue)
    decider.decide(_candidate_pairs(keys, decider.forest,
                                    *_blocks(index, order, keys, is_new, blocks, frequency),
                                    only=is_new))

    changed, into = _assign(decider, cluster_of, is_new)
    removed = set(into)
    index = _update_index(index, new, new_keys, cluster_of, into, blocks)
    study_of, links = link_studies(set(cluster_of.values()), index["registrations"])
    changed |= {cid for cid, study in study_of.items() if previous_study.get(cid) != study}
    queue = questions([*since.read_csv("dedupe_review.csv", "dedupe"), *decider.queue],
                      cluster_of, [sorted(pair) for pair in answers
                                   if len(pair) == 2 and pair <= cluster_of.keys()])
    clustering = Clustering(cluster_of=cluster_of, study_of=study_of, merges=decider.merges,
                            queue=queue, study_links=links)
    members = [rid for rid, cid in cluster_of.items() if cid in changed]
    for rid in members:
        if rid not in parsed:
            parsed[rid] = Record.from_json(lines.line(rid))
    return Extension(clustering=clustering, new=sorted(r.record_id for r in new),
                     changed=changed, removed=removed,
                     records={rid: parsed[rid] for rid in members}, index=index)


class RecordLines:
    """A run's records.jsonl lines, found by record id (the file is sorted by it), and the
    lines of records the run before did not have."""

    def __init__(self, data: bytes, added: list[bytes]) -> None:
        self.data = data
        self.added = added

    @classmethod
    def of_update(cls, run: Run, since: Run, cluster_of: dict[str, str]
                  ) -> RecordLines | None:
        """None unless every record of ``since`` is in ``run``, unchanged."""
        data = run.require("records.jsonl", "search").read_bytes()
        search = run.manifest.get("stages", {}).get("search", {})
        if search.get("carried_from") == since.run_id and "new_records" in search:
            # The search stage copied since's lines and added these: no need to read them.
            lines = cls(data, [])
            lines.added = [lines.line(rid) for rid in search["new_records"]]
            return lines
        ids_lines = [(_record_id(line), line) for line in data.split(b"\n") if line]
        old = [line for rid, line in ids_lines if rid in cluster_of]
        if not _unchanged(since, old, len(cluster_of)):
            return None
        return cls(data, [line for rid, line in ids_lines if rid not in cluster_of])

    def line(self, record_id: str) -> bytes:
        line = find_line(self.data, record_id, _record_id)
        if line is None:
            raise KeyError(f"records.jsonl has no record {record_id}")
        return line


def _unchanged(since: Run, old: list[bytes], expected: int) -> bool:
    """Whether ``old`` are ``since``'s records.jsonl lines, all of them and unchanged."""
    if len(old) != expected:
        return False
    digest = since.manifest.get("artifacts", {}).get("records.jsonl")
    text = b"".join(line + b"\n" for line in old)
    if digest:  # the hash the run recorded: no need to read its file again
        return hashlib.sha256(text).hexdigest() == digest
    return text == since.require("records.jsonl", "search").read_bytes()


def _record_id(line: bytes) -> str:
    return line_record_id(line) or ""


def _previous_clusters(since: Run) -> tuple[dict[str, str], dict[str, str]]:
    """``record_id -> cluster_id`` and ``cluster_id -> study_id`` of ``since``."""
    import csv

    cluster_of: dict[str, str] = {}
    study_of: dict[str, str] = {}
    with since.require("clusters.csv", "dedupe").open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        for record_id, cluster_id, study_id in reader:
            cluster_of[record_id] = cluster_id
            study_of[cluster_id] = study_id
    return cluster_of, study_of


def _candidates(index: dict[str, Any], new: list[Record], new_keys: list[PairKeys],
                answers: dict[frozenset[str], str], cluster_of: dict[str, str],
                blocks: dict[str, set[str]], frequency: dict[str, int]) -> set[str]:
    """The old records a new one could be joined with: same exact key, a shared rare title
    word or citation key, or a reviewer's answer naming them."""
    wanted: set[str] = set()
    exact = index["exact"]
    for record in new:
        for name, value in _exact_values(record):
            if value in exact[name]:
                wanted.add(exact[name][value])
    for k in new_keys:
        for word in rare_words(block_words(k), frequency):
            wanted.update(_word_block(index, word, frequency, blocks))
        if (cite := citation_key(k)) is not None:
            wanted.update(postings(index, "citations", _cite(cite)))
    for pair in answers:
        wanted.update(rid for rid in pair if rid in cluster_of)
    return wanted & cluster_of.keys()


def _word_block(index: dict[str, Any], word: str, frequency: dict[str, int],
                blocks: dict[str, set[str]]) -> list[str]:
    """The records a new record with ``word`` among its rarest words is paired with.

    A full run pairs the records that have the word among their own rarest, unless more than
    MAX_BLOCK do. Up to MAX_BLOCK records have the word at all: every one of them (a superset).
    More: those that had it among their rarest when they were indexed (``blocks``).
    """
    if frequency[word] <= MAX_BLOCK:
        return postings(index, "words", word)
    members = blocks.get(word, set())
    return sorted(members) if len(members) <= MAX_BLOCK else []


def _common_blocks(index: dict[str, Any], new: list[Record], new_keys: list[PairKeys],
                   lines: RecordLines, frequency: dict[str, int]) -> dict[str, set[str]]:
    """For each title word of a new record that more than MAX_BLOCK records have: the records
    (old and new) that have it among their rarest words. A word that passes MAX_BLOCK with this
    update has its holders read to find them; for one that was past it, the index holds them
    (as of when each record was indexed)."""
    out: dict[str, set[str]] = {}
    counts: dict[str, int] = {}

    def count(word: str) -> int:
        if word not in counts:
            counts[word] = frequency.get(word) or _count(index, word)
        return counts[word]

    added = Counter(w for k in new_keys for w in block_words(k))
    for word, n in sorted(frequency.items()):
        if n <= MAX_BLOCK:
            continue
        if n - added[word] > MAX_BLOCK:
            out[word] = set(postings(index, "blocks", word))
        else:  # passes MAX_BLOCK now: which of its holders have it among their rarest?
            out[word] = set()
            for rid in postings(index, "words", word):
                words = block_words(pair_keys(Record.from_json(lines.line(rid))))
                if word in rare_words(words, {w: count(w) for w in words}):
                    out[word].add(rid)
    for record, k in zip(new, new_keys, strict=True):
        for word in rare_words(block_words(k), frequency):
            if word in out:
                out[word].add(record.record_id)
    return out


def _frequency(index: dict[str, Any], new_keys: list[PairKeys]) -> dict[str, int]:
    """How many records (old and new) have each title word of a new record (computed once
    per update: candidates, common blocks and pair blocks all read it)."""
    counts = Counter(w for k in new_keys for w in block_words(k))
    return {w: n + _count(index, w) for w, n in counts.items()}


def _blocks(index: dict[str, Any], order: list[str], keys: list[PairKeys], is_new: np.ndarray,
            blocks: dict[str, set[str]], frequency: dict[str, int]
            ) -> tuple[list[list[int]], list[list[int]]]:
    """Each new record's rarest-word and citation blocks, with the old records in them."""
    at = {rid: i for i, rid in enumerate(order)}
    words: dict[str, set[int]] = defaultdict(set)
    citations: dict[str, set[int]] = defaultdict(set)
    for i in np.nonzero(is_new)[0].tolist():
        for word in rare_words(block_words(keys[i]), frequency):
            if members := _word_block(index, word, frequency, blocks):
                words[word].add(i)
                words[word].update(at[rid] for rid in members if rid in at)
            elif frequency[word] <= MAX_BLOCK:
                words[word].add(i)
        if (cite := citation_key(keys[i])) is not None:
            citations[_cite(cite)].add(i)
            citations[_cite(cite)].update(
                at[rid] for rid in postings(index, "citations", _cite(cite)))
    return ([sorted(words[w]) for w in sorted(words)],
            [sorted(citations[c]) for c in sorted(citations)])


def _join_old_clusters(decider: Decider, cluster_of: dict[str, str]) -> None:
    """Join the old records that share a cluster, silently: the merges were logged when they
    were made. The forest then holds each old cluster's DOIs and PMIDs, as in a full run."""
    first: dict[str, int] = {}
    for i, rid in enumerate(decider.ids):
        if rid in cluster_of:
            if cluster_of[rid] in first:
                decider.forest.union(first[cluster_of[rid]], i)
            else:
                first[cluster_of[rid]] = i


def _assign(decider: Decider, cluster_of: dict[str, str], is_new: np.ndarray
            ) -> tuple[set[str], dict[str, str]]:
    """Give every new record a cluster id in ``cluster_of`` (the old cluster it joined, the
    smallest if it joined several, else a new one); returns the clusters that changed and
    ``removed -> kept`` for old clusters merged into another."""
    groups: dict[int, list[str]] = defaultdict(list)
    for i, rid in enumerate(decider.ids):
        groups[decider.forest.find(i)].append(rid)
    changed: set[str] = set()
    into: dict[str, str] = {}
    used = set(cluster_of.values())
    for root in sorted({decider.forest.find(i) for i in np.nonzero(is_new)[0].tolist()}):
        ids = groups[root]
        old = sorted({cluster_of[rid] for rid in ids if rid in cluster_of})
        if old:
            keep = old[0]
            into.update((gone, keep) for gone in old[1:])
        else:
            keep = new_cluster_id(min(ids), used)
            used.add(keep)
        changed.add(keep)
        for rid in ids:
            if rid not in cluster_of:
                cluster_of[rid] = keep
    if into:
        for rid, cid in cluster_of.items():
            if cid in into:
                cluster_of[rid] = into[cid]
    return changed, into


def _update_index(index: dict[str, Any], new: list[Record], new_keys: list[PairKeys],
                  cluster_of: dict[str, str], into: dict[str, str],
                  blocks: dict[str, set[str]]) -> dict[str, Any]:
    """The index with the new records added and merged clusters renamed: what
    :func:`build_index` over all records gives, but for the common words' blocks, which keep
    the old records that had a word among their rarest when they were indexed."""
    if into:
        index["registrations"] = {reg: sorted({into.get(c, c) for c in clusters})
                                  for reg, clusters in index["registrations"].items()}
    _add(index, new, new_keys, cluster_of)
    for word, ids in blocks.items():
        _set_postings(index, "blocks", word, list(ids))
    return index


def extended_lines(previous: bytes, replaced: dict[str, bytes], removed: set[str],
                   key_of: Callable[[bytes], str | None]) -> bytes:
    """``previous`` (lines sorted by ``key_of``, each ending in a newline) with the lines of
    ``replaced`` put in at their places (a line of the same key replaced) and those of
    ``removed`` keys taken out. Only the lines a binary search probes are read; the rest are
    copied as they are."""
    edits = sorted({**dict.fromkeys(removed), **replaced}.items())
    out: list[bytes] = []
    done = 0  # previous[:done] is in out
    for key, line in edits:
        at = line_start(previous, key, key_of, done)
        out.append(previous[done:at])
        done = at
        end = previous.find(b"\n", at) + 1
        if end and key_of(previous[at:end - 1]) == key:
            done = end  # the line of this key goes (or is replaced)
        if line is not None:
            out.append(line + b"\n")
    out.append(previous[done:])
    return b"".join(out)
