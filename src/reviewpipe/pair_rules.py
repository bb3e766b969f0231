"""Whether two records are one publication: their keys, scores and the declared merge rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from rapidfuzz import fuzz, process

from reviewpipe.normalize import (
    author_keys,
    author_overlap,
    doi_versions,
    first_page,
    is_english_edition,
    is_group_author,
    is_meeting,
    journal_prefix,
    journals_match,
    name_words,
    normalize_issue,
    normalize_pages,
    normalize_volume,
    pages_agree,
    pages_overlap,
    title_keys,
    title_numbers,
)
from reviewpipe.records import Record

# Declared thresholds (fuzz.ratio, 0-100, on normalised titles). Tuned on the bib-dedupe
# benchmark and the corpus work_ids (scripts/eval_dedupe.py), never on the 100k generator.
MERGE_TITLE = 95.0
REVIEW_TITLE = 85.0
# A pair is scored in full only when its titles reach this, or it shares a citation key.
SCREEN_TITLE = 60.0
# A title of at least this many characters that the other title starts with was cut by an
# export's length limit (Ovid and WoS cut near 150-250 characters).
CUT_CHARS = 60
# ... and the two share their first CUT_HEAD characters (checked before any cut is scored).
CUT_HEAD = 16
# Same first author, year, volume and page range: titles need only reach this (one may be a
# translation, or carry a subtitle the other lacks); below it, the author lists must agree too.
CITATION_TITLE = 70.0
# Titles this short ("Editorial", "Reply") merge only when pages or volume agree as well.
SHORT_TITLE_WORDS = 4
AUTHORS_COMPARED = 6


@dataclass(slots=True)
class PairKeys:
    title: str
    variants: tuple[str, ...]
    flags: frozenset[str]
    names: tuple[str, ...]
    group: bool
    venue: bool
    edition: bool
    surname: str
    surnames: tuple[str, ...]
    year: int | None
    journals: tuple[str, ...]
    volume: str
    issue: str
    page: str
    pages: str
    doi: str | None
    pmid: str | None


def doi_misfiled(a: PairKeys, b: PairKeys) -> bool:
    """One DOI on two records whose titles and first authors both disagree."""
    if not (a.title and b.title and a.surname and b.surname):
        return False
    return title_score(a, b)[0] < SCREEN_TITLE and same_first_author(a, b) is False


def pair_keys(record: Record) -> PairKeys:
    variants, flags = title_keys(record.title)
    authors = author_keys(record.authors, limit=AUTHORS_COMPARED)
    journals = tuple(j for j in (record.journal, record.journal_iso) if j)
    return PairKeys(
        title=variants[0] if variants else "", variants=variants, flags=flags,
        names=tuple(name_words(record.authors)),
        group=bool(record.authors) and is_group_author(record.authors[0]),
        venue=bool(record.journal) and is_meeting(record.journal or ""),
        edition=any(is_english_edition(j) for j in journals),
        surname=authors[0][0] if authors else "", surnames=tuple(a[0] for a in authors),
        year=record.year, journals=journals, volume=normalize_volume(record.volume),
        issue=normalize_issue(record.issue), page=first_page(record.pages),
        pages=normalize_pages(record.pages), doi=record.doi, pmid=record.pmid,
    )


def cut_scores(titles: np.ndarray, left: np.ndarray, right: np.ndarray,
                scores: np.ndarray) -> np.ndarray:
    """Title scores of the shorter title against the longer one cut to the same length.

    Only for pairs of long titles of different lengths that are not near-equal already.
    """
    lengths = np.fromiter((len(t) for t in titles), dtype=np.int64, count=len(titles))
    # A cut title starts like the whole one: compare the first CUT_HEAD characters (as ids)
    # before building any cut string.
    heads: dict[str, int] = {}
    head = np.fromiter((heads.setdefault(t[:CUT_HEAD], len(heads)) for t in titles),
                       dtype=np.int64, count=len(titles))
    la, lb = lengths[left], lengths[right]
    out = np.zeros(len(left), dtype=np.float32)
    which = np.nonzero((np.minimum(la, lb) >= CUT_CHARS) & (np.abs(la - lb) >= CUT_HEAD // 2)
                       & (head[left] == head[right]) & (scores < MERGE_TITLE))[0]
    if not len(which):
        return out
    shorts, longs = [], []
    for i, j in zip(left[which].tolist(), right[which].tolist(), strict=True):
        a, b = sorted((titles[i], titles[j]), key=len)
        shorts.append(a)
        longs.append(b[:len(a)])
    out[which] = process.cpdist(shorts, longs, scorer=fuzz.ratio, workers=-1,
                                dtype=np.float32)
    return out


def title_score(a: PairKeys, b: PairKeys) -> tuple[float, str]:
    """The best title similarity and where it came from: whole, cut, or a variant."""
    best = fuzz.ratio(a.title, b.title)
    source = "title"
    short, long = sorted((a.title, b.title), key=len)
    if best < 100 and len(short) >= CUT_CHARS and len(long) > len(short):
        cut = fuzz.ratio(short, long[:len(short)], score_cutoff=best + 0.01)
        if cut > best:
            best, source = cut, "cut"
    if best < MERGE_TITLE and (len(a.variants) > 1 or len(b.variants) > 1):
        for va in a.variants:
            for vb in b.variants:
                score = fuzz.ratio(va, vb, score_cutoff=best + 0.01)
                if score > best:
                    best, source = score, "variant"
    return best, source


def same_first_author(a: PairKeys, b: PairKeys) -> bool | None:
    """Same first author? Spelling slips, lost characters and name order are forgiven.

    None when either has no author, or one is a group and the other a person ("ALTS Group"
    vs "Solomon D": exports differ on whether the group is listed).
    """
    if not a.surname or not b.surname or a.group != b.group:
        return None
    if a.surname == b.surname or any(w in b.names for w in a.names):
        return True
    short, long = sorted((a.surname, b.surname), key=len)
    if len(short) >= 4 and short in long:
        return True  # "quintrec" in "lequintrec"
    return len(short) >= 3 and fuzz.ratio(a.surname, b.surname) >= 80


def hard_conflict(a: PairKeys, b: PairKeys, *, flags: bool = True) -> str:
    """What proves two records are different publications, or "".

    ``flags``: also when one title says protocol, erratum, reply, review or retraction and the
    other does not. Off for identical abstracts, where an uploader's title may have lost the
    word.
    """
    if a.doi and b.doi and a.doi != b.doi and not doi_versions(a.doi, b.doi):
        return "different DOI"
    if a.pmid and b.pmid and a.pmid != b.pmid:
        return "different PMID"
    if flags and a.title and b.title and a.flags != b.flags:
        return "publication type words differ"
    if a.year and b.year and abs(a.year - b.year) > 1:
        return "years differ by more than 1"
    return ""


def decide_pair(a: PairKeys, b: PairKeys) -> tuple[str, str, dict[str, Any]]:
    """``(verdict, rule or reason, scores)``; verdict is "merge", "review" or "none".

    Declared rules, in order (``located``: same volume and the same page range):

    - never merged: different DOIs (other than versions of one item), different PMIDs, years
      more than 1 apart, a publication-type word (protocol, erratum, reply, review,
      retraction) in one title only, unless the pair is located with the same first author
      and year;
    - soft disagreements, each of which stops a merge and may send the pair to a human:
      authors differ; journals differ (unless located, or both are meeting names); volumes
      differ; same volume but another issue and other pages; one is a journal's English
      edition; the numbers in the titles differ; a year apart without the journal and the
      volume, pages or whole author list agreeing;
    - ``fuzzy:title>=95``: titles >= MERGE_TITLE and no soft disagreement (a title under
      SHORT_TITLE_WORDS words also needs pages, DOI or journal and volume);
    - ``fuzzy:title-cut`` / ``fuzzy:title-variant``: the same when one title is the other cut
      short, or they match in one language only; also needs the same year and first author;
    - ``fuzzy:citation``: located, same year and first author, no soft disagreement, titles
      >= CITATION_TITLE (one may be a translation) or, below it, the author lists and page
      ranges agree and the journal does not disagree;
    - review: titles >= MERGE_TITLE with at most two soft disagreements (not journal and year
      together) and authors not differing, or titles >= REVIEW_TITLE by the same first author
      in the same year with none.
    """
    title, source = title_score(a, b) if a.title and b.title else (0.0, "title")
    year_gap = abs(a.year - b.year) if a.year and b.year else None
    first = same_first_author(a, b)
    overlap = author_overlap(frozenset(a.surnames), frozenset(b.surnames))
    authors = None if first is None else bool(first or (overlap or 0) >= 0.5)
    journal = (any(journals_match(x, y) for x in a.journals for y in b.journals)
               if a.journals and b.journals else None)
    volume = (a.volume == b.volume) if a.volume and b.volume else None
    page = (a.page == b.page) if a.page and b.page else None
    doi = (a.doi == b.doi) if a.doi and b.doi else None
    scores = {"title": round(title, 1), "prefix": source != "title", "year_gap": year_gap,
              "first_author": first, "journal": journal, "page": page, "volume": volume,
              "authors": round(overlap, 2) if overlap is not None else None, "doi": doi}
    # Volume and the whole page range agreeing place both in one spot of one journal, whatever
    # its name says (a book series, a section title, a name cut short).
    located = bool(volume and page and pages_agree(a.pages, b.pages))
    # ... and then a design word in one title only is a subtitle one export kept, not another
    # publication: a protocol, erratum or reply never shares the pages of its paper.
    hard = hard_conflict(a, b, flags=not (located and first and year_gap == 0))
    if hard:
        return "none", hard, scores
    strong_authors = bool(first and (overlap or 0) >= 0.8)
    soft = []
    if authors is False:
        soft.append("authors differ")
    if journal is False and not (located and a.edition == b.edition) and not (
            a.venue and b.venue):
        soft.append("journals differ")
    if volume is False:
        soft.append("volumes differ")
    elif volume and a.issue and b.issue and a.issue != b.issue and not pages_overlap(
            a.pages, b.pages):
        # Same volume, another issue, other pages: an erratum printed under the original's
        # title, or a second part.
        soft.append("issue and pages differ")
    if a.edition != b.edition:
        soft.append("different editions")
    if source != "cut" and not located and title_numbers(a.title) != title_numbers(b.title):
        soft.append("numbers in titles differ")
    # Online-first and print issues are often a year apart; the journal (and volume, pages
    # or the whole author list) must then say it is one article.
    if year_gap == 1 and not (doi or (journal and (volume or page or strong_authors))):
        soft.append("a year apart")
    if title >= MERGE_TITLE and not soft:
        if len(min(a.title, b.title, key=len).split()) < SHORT_TITLE_WORDS and not (
                page or doi or (journal and volume)):
            return "review", "short title, no pages to confirm", scores
        if source == "title":
            return "merge", f"fuzzy:title>={MERGE_TITLE:g}", scores
        if year_gap == 0 and first:
            return "merge", f"fuzzy:title-{source}", scores
    if located and year_gap == 0 and not soft and a.title and b.title and (
            first or (first is None and title >= REVIEW_TITLE)) and (
            title >= CITATION_TITLE or (
                strong_authors and "-" in a.pages and "-" in b.pages
                and (journal or any(journal_prefix(x, y) for x in a.journals
                                    for y in b.journals)))):
        return "merge", "fuzzy:citation", scores
    # A human sees only pairs one fact away from a merge: the same title in two venues or a
    # year apart, or a near title by the same first author in the same year.
    if title >= MERGE_TITLE and authors is not False and len(soft) <= 2 and not (
            {"journals differ", "a year apart"} <= set(soft)):
        return "review", "; ".join(soft) or "title matches, other fields missing", scores
    if title >= REVIEW_TITLE and first and year_gap in (0, None) and not soft:
        return "review", f"title {title:.0f} < {MERGE_TITLE:g}", scores
    return "none", "; ".join(soft), scores
