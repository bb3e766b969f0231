"""Write ``pubmed.xml``: an efetch-style ``PubmedArticleSet`` valid against the bundled DTD."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from typing import Any

from reviewpipe.snapshot_corpus import flat, registrations

__all__ = ["DOCTYPE", "ENTREZ_MONTH_DAY", "check_pubmed", "entrez_dates", "pubmed_xml",
           "split_abstract", "split_author"]

DTD_NAME = "pubmed_250101.dtd"
DOCTYPE = (
    '<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" '
    f'"https://dtd.nlm.nih.gov/ncbi/pubmed/out/{DTD_NAME}">'
)

LANGUAGE_3 = {"en": "eng", "es": "spa", "fa": "per"}
# MeSH unique IDs of the publication types; the DTD needs the attribute, not a real value.
PUBLICATION_TYPE_UI = {
    "Case Reports": "D002363", "Clinical Study": "D000068397",
    "Clinical Trial Protocol": "D000078325", "Comparative Study": "D003160",
    "Congress": "D016423", "Editorial": "D016421", "Journal Article": "D016428",
    "Meta-Analysis": "D017418", "Multicenter Study": "D016448",
    "Observational Study": "D064888", "Randomized Controlled Trial": "D016449",
    "Review": "D016454", "Systematic Review": "D000078182",
}
DATABANKS = [("NCT", "ClinicalTrials.gov"), ("ACTRN", "ANZCTR"), ("ChiCTR", "ChiCTR"),
             ("IRCT", "IRCT"), ("ISRCTN", "ISRCTN"), ("CTRI", "CTRI"), ("DRKS", "DRKS"),
             ("CRD", "PROSPERO")]

# Section labels the paraphrased abstracts use; sentence-like openers ("Steroid injection
# lowered pain faster: …") are deliberately absent so they stay inside their section.
ABSTRACT_LABELS = frozenset({
    "Aim", "Argument", "Authors", "Authors and setting", "Background", "Background and purpose",
    "Background material", "Case", "Case description", "Case presentation",
    "Clinical features", "Comparator", "Conclusion", "Conclusions", "Content", "Context",
    "Data collection and analysis", "Design", "Design and setting", "Design note",
    "Discussion", "Eligibility", "Enrolment", "Ethics and dissemination", "Findings",
    "Hypothesis", "Intervention", "Intervention and outcome", "Interventions", "Introduction",
    "Investigations", "Level of clinical evidence", "Level of evidence", "Main measures",
    "Main results", "Management and outcomes", "Material and methods",
    "Materials and methods", "Method", "Methodology", "Methods", "Methods and analysis",
    "Methods and measures", "Methods and results", "Objective", "Objectives", "Outcome",
    "Outcome measures", "Outcomes", "Participants", "Patients and methods", "Purpose",
    "Results", "Scope", "Search methods", "Selection criteria", "Setting",
    "Setting and authors", "Sponsor", "Status", "Study design", "Subjects",
    "Subjects and methods", "Trial registration",
})
_LABEL_AT = re.compile(r"(?:^|(?<=[.!?)] ))([A-Z][A-Za-z ,/&-]{0,50}): ")
_NAME_PARTICLES = frozenset({"da", "das", "de", "del", "della", "den", "der", "di", "do",
                             "dos", "du", "la", "le", "san", "ten", "ter", "van", "von"})
ENTREZ_MONTH_DAY = (6, 15)


def entrez_dates(chosen: dict[str, dict[str, Any]]) -> dict[str, tuple[int, str]]:
    """PMID → (year of the synthetic Entrez date, why that year).

    The corpus has no real Entrez dates. The printed year is used when the version shows one;
    otherwise the year of the PMID-nearest article that shows one (PMIDs are handed out in
    Entrez order, so a neighbour's year is the closest honest stand-in).
    """
    known = [(int(p), r["year"]) for p, r in chosen.items() if r.get("year") is not None]
    out: dict[str, tuple[int, str]] = {}
    for pmid, record in chosen.items():
        if record.get("year") is not None:
            out[pmid] = (record["year"], "printed year")
        elif known:
            near, year = min(known, key=lambda ky: (abs(ky[0] - int(pmid)), ky[0]))
            out[pmid] = (year, f"year of nearest PMID {near}")
        else:
            # Nothing to borrow from (tiny corpora only): a fixed, obviously synthetic year.
            out[pmid] = (2000, "no year in the set: fixed 2000")
    return out


# ----------------------------------------------------------------------------- fields


def split_abstract(text: str) -> list[tuple[str | None, str]]:
    """``[(label, text), …]`` when the paraphrase opens with a known label, else one part."""
    marks = [m for m in _LABEL_AT.finditer(text) if m.group(1) in ABSTRACT_LABELS]
    if not marks or marks[0].start() != 0:
        return [(None, text)]
    parts = []
    for mark, nxt in zip(marks, [*marks[1:], None], strict=True):
        end = nxt.start() if nxt else len(text)
        parts.append((mark.group(1), text[mark.end():end].strip()))
    return parts


def split_author(name: str) -> tuple[str, str | None, str | None]:
    """``(LastName, ForeName, Initials)`` from a printed name; characters are kept as printed.

    ``"Cotchett, Matthew P"`` splits at the comma; ``"Matthew P. Cotchett"`` takes the last
    word (plus lower-case-style particles such as "de", "van", "San") as the family name;
    ``"Cotchett MP"`` (family name then initials) keeps the initials as the given name.
    """
    words = name.split()
    initials_only = re.compile(r"[A-Z]{1,3}\.?")
    if "," in name:
        last, fore = (p.strip() for p in name.split(",", 1))
    elif len(words) == 1:
        return name, None, None
    elif initials_only.fullmatch(words[-1]):
        cut = len(words) - 1
        while cut > 1 and initials_only.fullmatch(words[cut - 1]):
            cut -= 1
        fore = " ".join(words[cut:])
        return " ".join(words[:cut]), fore, re.sub(r"[^A-Z]", "", fore)
    else:
        cut = len(words) - 1
        while cut > 1 and words[cut - 1].lower() in _NAME_PARTICLES:
            cut -= 1
        last, fore = " ".join(words[cut:]), " ".join(words[:cut])
    if not fore:
        return last, None, None
    initials = "".join(part[0] for part in re.split(r"[\s.\-]+", fore) if part and
                       part[0].isalpha()).upper()
    return last, fore, initials or None


# ----------------------------------------------------------------------------- pubmed.xml


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


def _pubmed_article(pmid: str, record: dict[str, Any], entrez_year: int) -> ET.Element:
    """One ``PubmedArticle`` from the chosen version; null fields are left out."""
    article_el = ET.Element("PubmedArticle")
    citation = _sub(article_el, "MedlineCitation", Status="MEDLINE", Owner="NLM")
    _sub(citation, "PMID", pmid, Version="1")
    article = _sub(citation, "Article", PubModel="Print")

    journal_name, year = flat(record.get("journal")), record.get("year")
    journal = _sub(article, "Journal")
    issue = _sub(journal, "JournalIssue", CitedMedium="Internet")
    for tag, key in (("Volume", "volume"), ("Issue", "issue")):
        if flat(record.get(key)):
            _sub(issue, tag, flat(record[key]))
    pub_date = _sub(issue, "PubDate")
    # PubDate needs Year or MedlineDate: an empty MedlineDate says "no date shown".
    if year is not None:
        _sub(pub_date, "Year", str(year))
    else:
        _sub(pub_date, "MedlineDate", "")
    if journal_name:
        _sub(journal, "Title", journal_name)

    _sub(article, "ArticleTitle", flat(record.get("title")))
    pages, doi = flat(record.get("pages")), flat(record.get("doi"))
    if pages or not doi:  # the DTD wants Pagination unless an ELocationID stands in
        _sub(_sub(article, "Pagination"), "MedlinePgn", pages)
    if doi:
        _sub(article, "ELocationID", doi, EIdType="doi", ValidYN="Y")
    abstract = _sub(article, "Abstract")
    for label, text in split_abstract(flat(record["abstract"])):
        _sub(abstract, "AbstractText", text, **({"Label": label} if label else {}))
    authors = [flat(a) for a in record.get("authors") or [] if flat(a)]
    if authors:
        author_list = _sub(article, "AuthorList", CompleteYN="Y")
        for name in authors:
            author = _sub(author_list, "Author", ValidYN="Y")
            last, fore, initials = split_author(name)
            _sub(author, "LastName", last)
            if fore:
                _sub(author, "ForeName", fore)
            if initials:
                _sub(author, "Initials", initials)
    _sub(article, "Language", LANGUAGE_3.get(flat(record.get("language")), "und"))
    banks: dict[str, list[str]] = defaultdict(list)
    for number in registrations(record):
        name = next((bank for prefix, bank in DATABANKS if number.startswith(prefix)), "Other")
        banks[name].append(number)
    if banks:
        bank_list = _sub(article, "DataBankList", CompleteYN="Y")
        for name, numbers in banks.items():
            bank = _sub(bank_list, "DataBank")
            _sub(bank, "DataBankName", name)
            numbers_el = _sub(bank, "AccessionNumberList")
            for number in numbers:
                _sub(numbers_el, "AccessionNumber", number)
    type_list = _sub(article, "PublicationTypeList")
    for publication_type in record["publication_types"]:
        _sub(type_list, "PublicationType", publication_type,
             UI=PUBLICATION_TYPE_UI.get(publication_type, ""))
    _sub(_sub(citation, "MedlineJournalInfo"), "MedlineTA", journal_name)

    pubmed_data = _sub(article_el, "PubmedData")
    history = _sub(pubmed_data, "History")
    month, day = ENTREZ_MONTH_DAY
    for status in ("pubmed", "medline", "entrez"):
        date = _sub(history, "PubMedPubDate", PubStatus=status)
        for tag, value in (("Year", entrez_year), ("Month", month), ("Day", day)):
            _sub(date, tag, str(value))
    _sub(pubmed_data, "PublicationStatus", "ppublish")
    ids = _sub(pubmed_data, "ArticleIdList")
    _sub(ids, "ArticleId", pmid, IdType="pubmed")
    if doi:
        _sub(ids, "ArticleId", doi, IdType="doi")
    if flat(record.get("pmcid")):
        _sub(ids, "ArticleId", flat(record["pmcid"]), IdType="pmc")
    return article_el


def pubmed_xml(chosen: dict[str, dict[str, Any]], dates: dict[str, tuple[int, str]]) -> str:
    """The whole efetch-style document as text."""
    root = ET.Element("PubmedArticleSet")
    for pmid, record in chosen.items():
        root.append(_pubmed_article(pmid, record, dates[pmid][0]))
    ET.indent(root, space="  ")
    body = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{DOCTYPE}\n{body}\n'


def check_pubmed(data: bytes, expected: list[str]) -> None:
    """Read the file back through Bio.Entrez with DTD checks (bundled DTD, no network)."""
    from Bio import Entrez  # a runtime dependency, imported late to keep import cheap

    parsed = Entrez.read(io.BytesIO(data), validate=True)
    got = [str(a["MedlineCitation"]["PMID"]) for a in parsed["PubmedArticle"]]
    if got != expected:
        raise RuntimeError(f"pubmed.xml reads back as {got}, expected {expected}")
