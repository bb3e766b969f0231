"""Perturbed copies of bibliographic records: a seeded generator of known duplicates.

Benchmarks and tests need duplicates whose truth is known. ``make_duplicates`` takes real
records (e.g. a PubMed daily-update file) and adds copies of them as another database's export
would print them. Each copy is a fresh draw of the perturbations below; the probabilities are
data (``PERTURBATIONS``) so a report can print what the benchmark was made of.

=================  ==========================================================================
perturbation       what a copy does
=================  ==========================================================================
``pmid``           keeps the PMID (otherwise dropped: the copy comes from Embase, Scopus…)
``doi``            drops the DOI
``abstract``       drops the abstract; otherwise ``abstract_note`` may append a copyright line
``typo``           1-2 character edits (swap, drop, double, replace) in title words
``case``           title in upper, lower or title case
``period``         adds or removes the title's trailing period
``markup``         wraps one title word in ``<i>…</i>``
``translation``    appends a bracketed language tag (``[Chinese]``)
``author_format``  always: "Family GI", "Family, G. I.", "G. I. Family" or full given names
``et_al``          keeps three authors and adds "et al."
``journal``        the ISO abbreviation instead of the full title (or the other way round)
``year``           year ± 1 (online-first vs print)
``pages``          ``123-129`` ↔ ``123-9``, or an en dash
``volume``         drops volume and issue
=================  ==========================================================================

Example
-------
>>> from reviewpipe.records import Record
>>> original = Record(record_id="pubmed:1", source="pubmed", source_id="1", pmid="1",
...                   title="Dry needling for heel pain.", authors=["Cotchett, Matthew P"],
...                   journal="Physical therapy", journal_iso="Phys Ther", year=2014,
...                   pages="1083-94", doi="10.2522/ptj.20130255")
>>> records, truth = make_duplicates([original], 3, random_state=0)
>>> len(records), sorted(set(truth.values()))
(3, ['1'])
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import numpy as np
from sklearn.utils import check_random_state

from reviewpipe.normalize import normalize_pages, parse_author
from reviewpipe.records import Record

__all__ = ["PERTURBATIONS", "make_duplicates", "perturb_record"]

PERTURBATIONS: dict[str, float] = {
    "pmid": 0.15, "doi": 0.5, "abstract": 0.4, "abstract_note": 0.3, "typo": 0.3,
    "case": 0.2, "period": 0.3, "markup": 0.05, "translation": 0.03, "et_al": 0.15,
    "journal": 0.6, "year": 0.1, "pages": 0.5, "volume": 0.1,
}
_LANGUAGES = ("Chinese", "Spanish", "German", "French", "Japanese", "Russian")
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def perturb_record(record: Record, random_state: Any = None, *, copy: int = 1) -> Record:
    """One copy of ``record`` as another export might print it.

    Parameters
    ----------
    record : Record
        The original; it is not changed.
    random_state : None, int or numpy.random.RandomState, default=None
        Pass an int for reproducible output across multiple function calls.
    copy : int, default=1
        Number of this copy; the copy's id is ``copy:<source_id>-<copy>``.
    """
    rng = check_random_state(random_state)
    p = PERTURBATIONS

    def happens(name: str) -> bool:
        return bool(rng.random_sample() < p[name])

    source_id = f"{record.source_id}-{copy}"
    out = dataclasses.replace(
        record, record_id=f"copy:{source_id}", source="copy", source_id=source_id,
        database="Copy", file="", raw_file=None, raw_index=None, pmcid=None,
        authors=list(record.authors), abstract_sections=[],
    )
    out.pmid = record.pmid if happens("pmid") else None
    out.doi = None if happens("doi") else record.doi
    if happens("abstract"):
        out.abstract = ""
    elif record.abstract and happens("abstract_note"):
        out.abstract = f"{record.abstract} Copyright {record.year or ''} the authors."
    out.title = _perturb_title(record.title, rng, happens)
    out.authors = _perturb_authors(record.authors, rng, happens("et_al"))
    if happens("journal"):
        full, iso = record.journal, record.journal_iso
        out.journal, out.journal_iso = (iso, None) if rng.random_sample() < 0.7 else (full, None)
    if record.year and happens("year"):
        out.year = record.year + (1 if rng.random_sample() < 0.5 else -1)
    if record.pages and happens("pages"):
        out.pages = _perturb_pages(record.pages, rng)
    if happens("volume"):
        out.volume = out.issue = None
    return out


def make_duplicates(records: list[Record], size: int, random_state: Any = None
                    ) -> tuple[list[Record], dict[str, str]]:
    """``size`` records: originals drawn from ``records`` plus perturbed copies, and the truth.

    ``round(size * len(records) / max(size, 100_000))`` originals are drawn at random, so the
    ratio of originals to copies is the same at every size up to 100,000: from the 20,788
    records of a PubMed daily-update file, 100,000 uses every original and adds 79,212 copies
    (3 or 4 each), 25,000 draws 5,197 originals. Copies go to the originals in turn, in a
    random order.

    Parameters
    ----------
    records : list of Record
        Distinct publications (records sharing a PMID count as one).
    size : int
        How many records to return, originals included.
    random_state : None, int or numpy.random.RandomState, default=None
        Pass an int for reproducible output across multiple function calls.

    Returns
    -------
    records : list of Record
        Originals and copies, shuffled.
    truth : dict
        ``record_id -> group``: records of one group are one publication (the group is the
        original's PMID, or its record_id when it has none).
    """
    rng = check_random_state(random_state)
    if size < 1 or not records:
        return [], {}
    keep = min(len(records), size, max(1, round(size * len(records) / max(size, 100_000))))
    chosen = sorted(rng.choice(len(records), size=keep, replace=False).tolist())
    originals = [records[i] for i in chosen]
    group = {r.record_id: r.pmid or r.record_id for r in originals}
    out = list(originals)
    truth = dict(group)
    copies = [0] * len(originals)
    order = rng.permutation(len(originals)).tolist()
    for k in range(size - len(originals)):
        index = order[k % len(order)]
        copies[index] += 1
        copy = perturb_record(originals[index], rng, copy=copies[index])
        truth[copy.record_id] = group[originals[index].record_id]
        out.append(copy)
    permutation = rng.permutation(len(out)).tolist()
    return [out[i] for i in permutation], truth


def _perturb_title(title: str, rng: np.random.RandomState, happens: Any) -> str:
    text = title
    if happens("typo"):
        for _ in range(1 + int(rng.random_sample() < 0.4)):
            text = _typo(text, rng)
    if happens("case"):
        style = rng.randint(3)
        text = text.upper() if style == 0 else text.lower() if style == 1 else text.title()
    if happens("period"):
        text = text[:-1] if text.endswith(".") else text + "."
    if happens("markup"):
        words = text.split()
        if words:
            i = rng.randint(len(words))
            words[i] = f"<i>{words[i]}</i>"
            text = " ".join(words)
    if happens("translation"):
        text = f"{text} [{_LANGUAGES[rng.randint(len(_LANGUAGES))]}]"
    return text


def _typo(text: str, rng: np.random.RandomState) -> str:
    """One character edit inside a word of at least four letters."""
    spots = [m.span() for m in re.finditer(r"[A-Za-z]{4,}", text)]
    if not spots:
        return text
    start, end = spots[rng.randint(len(spots))]
    i = start + 1 + rng.randint(end - start - 1)  # keep the first letter, as typists do
    kind = rng.randint(4)
    if kind == 0 and i + 1 < end:
        return text[:i] + text[i + 1] + text[i] + text[i + 2:]
    if kind == 1:
        return text[:i] + text[i + 1:]
    if kind == 2:
        return text[:i] + text[i] + text[i:]
    return text[:i] + _LETTERS[rng.randint(26)] + text[i + 1:]


def _perturb_authors(authors: list[str], rng: np.random.RandomState, et_al: bool) -> list[str]:
    style = rng.randint(4)
    out = []
    for author in authors:
        family_words = author.split(",")[0].strip() if "," in author else None
        family, initials = parse_author(author)
        if not family:
            continue
        given = author.split(",", 1)[1].strip() if "," in author else ""
        name = family_words or family.title()
        letters = initials.upper()
        if style == 0:
            out.append(f"{name} {letters}".strip())
        elif style == 1:
            out.append(f"{name}, " + " ".join(f"{c}." for c in letters) if letters else name)
        elif style == 2:
            out.append(" ".join([*(f"{c}." for c in letters), name]))
        else:
            # Full given names when the original has them ("Cotchett, Matthew P").
            out.append(f"{given} {name}".strip() if given and not given.isupper() else
                       " ".join([*(f"{c}." for c in letters), name]))
    if et_al and len(out) > 3:
        out = [*out[:3], "et al."]
    return out


def _perturb_pages(pages: str, rng: np.random.RandomState) -> str:
    full = normalize_pages(pages)
    match = re.fullmatch(r"(\d+)-(\d+)", full)
    if not match:
        return pages
    start, end = match.groups()
    kind = rng.randint(3)
    if kind == 0:
        return full
    if kind == 1:
        common = 0
        while common < len(end) - 1 and common < len(start) and start[common] == end[common]:
            common += 1
        return f"{start}-{end[common:]}"  # 123-129 -> 123-9
    return f"{start}\u2013{end}"
