"""PubMed/MEDLINE XML (efetch ``retmode=xml``, baseline and daily-update files) -> ``Record``.

Reads ``PubmedArticleSet`` (``PubmedArticle``, ``PubmedBookArticle``, ``DeleteCitation``) and the
older ``MedlineCitationSet`` (``MedlineCitation``, ``DeleteCitation``). Any other valid XML, such
as an esearch/esummary/einfo answer, another database's efetch, or an NCBI ``<ERROR>`` response,
is refused with an ``InputError`` that says which it was.
"""

from __future__ import annotations

import gc
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from xml.etree.ElementTree import Element

from ..errors import InputError
from ..records import Record, find_registrations, make_record_id, normalize_doi, normalize_pmcid
from ._common import is_digits, partial_date, registrations_in
from .safexml import ElementStream

ARTICLE_SETS = {"PubmedArticleSet", "MedlineCitationSet", "PubmedBookArticleSet"}
# MedlineCitation is a record only under MedlineCitationSet; under PubmedArticleSet it sits
# inside PubmedArticle, which ElementStream yields (and clears) after its MedlineCitation.
_RECORD_TAGS = {"PubmedArticle", "PubmedBookArticle", "DeleteCitation"}
_MEDLINE_SET_TAGS = {"MedlineCitation", "DeleteCitation"}
# How much of a foreign (non-PubMed) XML file to scan for an NCBI <ERROR> element.
_FOREIGN_SCAN_BYTES = 1 << 20

# NLM DataBankName values that are trial registries (others are GEO, GenBank, figshare, ...).
_TRIAL_REGISTRIES = {
    "clinicaltrials.gov", "isrctn", "anzctr", "chictr", "cris", "ctri", "drks", "eudract",
    "irct", "jprn", "ntr", "pactr", "rebec", "rpcec", "slctr", "tctr", "umin", "jrct",
    "prospero",
}


def _squash(text: str) -> str:
    # str.split() collapses all whitespace runs without a regex; NFC keeps text comparable.
    text = " ".join(text.split())
    return text if text.isascii() else unicodedata.normalize("NFC", text)


def _flat(elem: Element | None) -> str:
    """All text inside an element, inline markup (<i>, <sup>, MathML) flattened."""
    if elem is None:
        return ""
    return _squash("".join(elem.itertext()))


def _text(elem: Element | None, tag: str) -> str | None:
    """Stripped text of a direct child, or None when absent/empty."""
    if elem is None:
        return None
    child = elem.find(tag)
    if child is None:
        return None
    text = child.text if not len(child) else "".join(child.itertext())
    return (text.strip() or None) if text else None


def _authors(author_list: Element | None) -> list[str]:
    authors: list[str] = []
    if author_list is None:
        return authors
    for author in author_list.iterfind("Author"):
        if author.get("ValidYN") == "N":
            continue
        last = _text(author, "LastName")
        if last:
            fore = _text(author, "ForeName")
            if fore:
                authors.append(f"{last}, {fore}")
            else:
                initials = _text(author, "Initials")
                authors.append(f"{last} {initials}" if initials else last)
            continue
        collective = _flat(author.find("CollectiveName"))
        if collective:
            authors.append(collective)
    return authors


def _abstract(abstract: Element | None) -> tuple[str, list[list[str]]]:
    """The abstract text and, when any section is labelled, its [label, text] sections."""
    if abstract is None:
        return "", []
    sections: list[list[str]] = []
    labelled = False
    for part in abstract.iterfind("AbstractText"):
        text = _flat(part)
        label = (part.get("Label") or "").strip()
        labelled = labelled or bool(label)
        if text or label:
            sections.append([label, text])
    joined = " ".join(f"{label}: {text}" if label else text for label, text in sections)
    return joined.strip(), (sections if labelled else [])


def _pub_date(journal_issue: Element | None) -> tuple[int | None, str | None]:
    """Year and partial ISO date from JournalIssue/PubDate (Year, else MedlineDate)."""
    if journal_issue is None:
        return None, None
    pub_date = journal_issue.find("PubDate")
    if pub_date is None:
        return None, None
    year = _text(pub_date, "Year")
    if year and is_digits(year):
        return int(year), partial_date(year, _text(pub_date, "Month"), _text(pub_date, "Day"))
    medline_date = _text(pub_date, "MedlineDate") or ""
    # "2018 Jul-Aug", "1998 Dec-1999 Jan", "Winter 2017": the first 4-digit run is the year,
    # and the word after it (if a month) the month.
    tokens = medline_date.replace("-", " ").split()
    for position, token in enumerate(tokens):
        if len(token) == 4 and is_digits(token):
            month = tokens[position + 1] if position + 1 < len(tokens) else None
            return int(token), partial_date(token, month)
    return None, None


def _history_date(history: Element | None, status: str) -> str | None:
    if history is None:
        return None
    for date in history.iterfind("PubMedPubDate"):
        if date.get("PubStatus") == status:
            return partial_date(_text(date, "Year"), _text(date, "Month"), _text(date, "Day"))
    return None


def _ids(id_list: Element | None, ids: dict[str, str]) -> None:
    if id_list is None:
        return
    for article_id in id_list.iterfind("ArticleId"):
        kind = article_id.get("IdType")
        if kind in ("doi", "pmc") and kind not in ids and article_id.text:
            ids[kind] = article_id.text.strip()


def _registrations(article: Element | None, *texts: str) -> list[str]:
    found: list[str] = []
    if article is not None:
        for bank in article.iterfind("DataBankList/DataBank"):
            name = (_text(bank, "DataBankName") or "").lower()
            for number in bank.iterfind("AccessionNumberList/AccessionNumber"):
                value = (number.text or "").strip()
                if not value:
                    continue
                # Normalised when the number has a known shape; a registry's own odd-shaped
                # number (UMIN, jRCT, ...) is kept as given; GEO/GenBank/... ids are not trials.
                numbers = find_registrations(value)
                if not numbers and name in _TRIAL_REGISTRIES:
                    numbers = [value]
                found.extend(n for n in numbers if n not in found)
    found.extend(r for r in registrations_in(*texts) if r not in found)
    return found


def _comments(citation: Element) -> list[list[str]]:
    out: list[list[str]] = []
    for item in citation.iterfind("CommentsCorrectionsList/CommentsCorrections"):
        ref = _text(item, "PMID") or _squash(item.findtext("RefSource") or "")
        out.append([item.get("RefType") or "", ref])
    return out


def _source_id(pmid_elem: Element | None, pmid: str) -> str:
    # Versioned PMIDs (F1000Research-style) repeat the PMID with Version 2, 3, ...: keep them
    # apart so every record_id in a file is unique; version 1 keeps the bare PMID.
    version = pmid_elem.get("Version") if pmid_elem is not None else None
    if is_digits(version) and version != "1":
        return f"{pmid}.v{version}"
    return pmid


def _citation_record(citation: Element, pubmed_data: Element | None, *, path: str, source: str,
                     database: str, index: int) -> Record:
    """A Record from a MedlineCitation (and the PubmedData that follows it, when present)."""
    pmid_elem = citation.find("PMID")
    pmid = (pmid_elem.text or "").strip() if pmid_elem is not None else ""
    if not is_digits(pmid):
        raise InputError(path, f"article has no valid PMID ({pmid!r})", record=index)
    article = citation.find("Article")
    journal = article.find("Journal") if article is not None else None
    journal_issue = journal.find("JournalIssue") if journal is not None else None

    title = _flat(article.find("ArticleTitle")) if article is not None else ""
    if not title and article is not None:
        title = _flat(article.find("VernacularTitle"))
    abstract, sections = _abstract(article.find("Abstract") if article is not None else None)

    ids: dict[str, str] = {}
    if pubmed_data is not None:
        _ids(pubmed_data.find("ArticleIdList"), ids)
    if article is not None and "doi" not in ids:
        for eloc in article.iterfind("ELocationID"):
            if eloc.get("EIdType") == "doi" and eloc.text:
                ids["doi"] = eloc.text.strip()
                break

    year, published = _pub_date(journal_issue)
    if year is None and article is not None:
        article_date = article.find("ArticleDate")
        text = _text(article_date, "Year")
        if text and is_digits(text):
            year = int(text)

    pages = None
    if article is not None:
        pagination = article.find("Pagination")
        pages = _text(pagination, "MedlinePgn")
        if not pages and pagination is not None:
            start, end = _text(pagination, "StartPage"), _text(pagination, "EndPage")
            pages = f"{start}-{end}" if start and end else start

    journal_iso = _text(journal, "ISOAbbreviation") or _text(
        citation.find("MedlineJournalInfo"), "MedlineTA")
    languages = article.iterfind("Language") if article is not None else iter(())
    language = next((lang.text.strip() for lang in languages if lang.text), None)

    return Record(
        record_id="",
        source=source,
        source_id=_source_id(pmid_elem, pmid),
        database=database,
        file=path,
        pmid=pmid,
        pmcid=normalize_pmcid(ids.get("pmc")) if ids.get("pmc") else None,
        doi=normalize_doi(ids.get("doi")),
        title=title,
        abstract=abstract,
        abstract_sections=sections,
        authors=_authors(article.find("AuthorList") if article is not None else None),
        journal=_text(journal, "Title"),
        journal_iso=journal_iso,
        year=year,
        volume=_text(journal_issue, "Volume"),
        issue=_text(journal_issue, "Issue"),
        pages=pages,
        language=language,
        publication_types=[_squash(p.text) for p in article.iterfind(
            "PublicationTypeList/PublicationType") if p.text] if article is not None else [],
        mesh=[_squash(d.text) for d in citation.iterfind(
            "MeshHeadingList/MeshHeading/DescriptorName") if d.text],
        keywords=[k for k in (_flat(k) for k in citation.iterfind("KeywordList/Keyword")) if k],
        registrations=_registrations(article, title, abstract),
        comments_corrections=_comments(citation),
        entrez_date=_history_date(
            pubmed_data.find("History") if pubmed_data is not None else None, "entrez"),
        published_date=published,
        raw_file=path,
        raw_index=index,
    )


def _book_record(book_article: Element, *, path: str, source: str, database: str,
                 index: int) -> Record:
    """A Record from a PubmedBookArticle (NCBI Bookshelf chapter or book)."""
    document = book_article.find("BookDocument")
    if document is None:
        raise InputError(path, "PubmedBookArticle has no BookDocument", record=index)
    pmid_elem = document.find("PMID")
    pmid = (pmid_elem.text or "").strip() if pmid_elem is not None else ""
    if not is_digits(pmid):
        raise InputError(path, f"book article has no valid PMID ({pmid!r})", record=index)
    book = document.find("Book")
    book_title = _flat(book.find("BookTitle")) if book is not None else ""
    chapter_title = _flat(document.find("ArticleTitle"))
    abstract, sections = _abstract(document.find("Abstract"))
    ids: dict[str, str] = {}
    _ids(document.find("ArticleIdList"), ids)
    book_data = book_article.find("PubmedBookData")
    if book_data is not None:
        _ids(book_data.find("ArticleIdList"), ids)
    year, published = _pub_date(book)
    author_lists = document.findall("AuthorList")
    if not author_lists and book is not None:
        author_lists = book.findall("AuthorList")
    # Editors are listed as an AuthorList Type="editors"; keep the authors when there are any.
    chosen = next((a for a in author_lists if a.get("Type") != "editors"),
                  author_lists[0] if author_lists else None)
    title = chapter_title or book_title
    languages = document.iterfind("Language")
    return Record(
        record_id="",
        source=source,
        source_id=_source_id(pmid_elem, pmid),
        database=database,
        file=path,
        pmid=pmid,
        pmcid=normalize_pmcid(ids.get("pmc")) if ids.get("pmc") else None,
        doi=normalize_doi(ids.get("doi")),
        title=title,
        abstract=abstract,
        abstract_sections=sections,
        authors=_authors(chosen),
        journal=book_title if chapter_title and book_title else None,
        year=year,
        language=next((lang.text.strip() for lang in languages if lang.text), None),
        publication_types=[_squash(p.text) for p in document.iterfind("PublicationType")
                           if p.text],
        keywords=[k for k in (_flat(k) for k in document.iterfind("KeywordList/Keyword")) if k],
        registrations=registrations_in(title, abstract),
        entrez_date=_history_date(
            book_data.find("History") if book_data is not None else None, "entrez"),
        published_date=published,
        raw_file=path,
        raw_index=index,
    )


def _deleted(pmid: str, *, path: str, source: str, database: str, index: int) -> Record:
    return Record(record_id=make_record_id(source, pmid), source=source, source_id=pmid,
                  database=database, file=path, pmid=pmid, deleted=True, raw_file=path,
                  raw_index=index)


def iter_pubmed_xml(path: str | Path, *, source: str = "pubmed",
                    database: str = "PubMed") -> Iterator[Record]:
    """Stream Records from a PubMed/MEDLINE XML file (``.xml`` or ``.xml.gz``).

    ``DeleteCitation`` PMIDs come out as ``deleted=True`` records with an empty title.
    ``raw_index`` counts every record yielded, in file order.

    Raises
    ------
    InputError
        Malformed XML, entity declarations, a file that is not a PubMed article set, an NCBI
        error response, or an article without a PMID.
    """
    where = str(path)
    stream = ElementStream(path, ())
    root_tag = stream.root_tag
    if root_tag not in ARTICLE_SETS:
        raise _foreign(where, root_tag)
    stream.tags = frozenset(_MEDLINE_SET_TAGS if root_tag == "MedlineCitationSet"
                            else _RECORD_TAGS)
    index = 0
    for elem in stream:
        tag = elem.tag
        if tag == "PubmedArticle":
            citation = elem.find("MedlineCitation")
            if citation is None:
                raise InputError(where, "PubmedArticle has no MedlineCitation", record=index)
            record = _citation_record(citation, elem.find("PubmedData"), path=where,
                                      source=source, database=database, index=index)
        elif tag == "MedlineCitation":
            record = _citation_record(elem, None, path=where, source=source,
                                      database=database, index=index)
        elif tag == "PubmedBookArticle":
            record = _book_record(elem, path=where, source=source, database=database,
                                  index=index)
        else:  # DeleteCitation
            for pmid_elem in elem.iterfind("PMID"):
                pmid = (pmid_elem.text or "").strip()
                if is_digits(pmid):
                    yield _deleted(pmid, path=where, source=source, database=database,
                                   index=index)
                    index += 1
            continue
        record.record_id = make_record_id(source, record.source_id)
        yield record
        index += 1


def _foreign(path: str, root_tag: str) -> InputError:
    """The error for valid XML that is not an article set, quoting NCBI's <ERROR> if any."""
    # NCBI error answers put <ERROR> near the top; do not read a big foreign file through.
    for error in ElementStream(path, {"ERROR"}, limit=_FOREIGN_SCAN_BYTES):
        message = _flat(error)
        if message:  # espell answers carry an empty <ERROR/> when all is well
            return InputError(path, f"NCBI error response: {message}")
    return InputError(path, f"not a PubMed article set (root element {root_tag})")


def read_pubmed_xml(path: str | Path, *, source: str = "pubmed",
                    database: str = "PubMed") -> list[Record]:
    """All Records of a PubMed/MEDLINE XML file; see ``iter_pubmed_xml``."""
    # Building ~20k Records (each with several lists) sets off repeated full cyclic-GC passes
    # over everything built so far: about a quarter of the parse time on a daily-update file.
    # Records and parsed elements form no cycles, so pausing the collector loses nothing.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return list(iter_pubmed_xml(path, source=source, database=database))
    finally:
        if was_enabled:
            gc.enable()
