"""Build the bundled offline snapshot ``data/snapshots/<review>/`` from the topic corpus.

The corpus (``../shared/corpus/records.jsonl``) holds one line per page version of a
publication. The snapshot turns it into the files a real multi-database search would have left
behind, so that reviewpipe reads it through its ordinary parsers:

- ``pubmed.xml``: a PubMed efetch-style ``PubmedArticleSet``, one article per distinct PMID,
  valid against the ``pubmed_250101.dtd`` that Biopython bundles;
- ``publisher-pmc.ris``, ``registries.ris``, ``indexes-mirrors.ris``: every other version, split
  by the kind of site it came from (see ``HOST_KINDS``);
- ``README.md``: what the snapshot is and is not, the rules used, and a SHA-256 manifest.

Labels (``work_id``, ``design``, ``eligible``, ``exclusion_reason``) are never written. The build
is deterministic: the same corpus gives byte-identical files.

Example
-------
``python -m reviewpipe.snapshot --corpus ../shared/corpus/records.jsonl
--out data/snapshots/dry-needling-pf``
"""

from __future__ import annotations

import argparse
import hashlib
import io
import ipaddress
import json
import os
import re
import sys
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from reviewpipe.errors import InputError, ReviewpipeError

__all__ = ["HOST_KINDS", "build_snapshot", "load_corpus", "main", "source_kind"]

PUBMED_FILE = "pubmed.xml"
PUBLISHER, REGISTRIES, INDEXES = "publisher-pmc", "registries", "indexes-mirrors"
RIS_FILES = {kind: f"{kind}.ris" for kind in (PUBLISHER, REGISTRIES, INDEXES)}
README_FILE = "README.md"

DTD_NAME = "pubmed_250101.dtd"
DOCTYPE = (
    '<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" '
    f'"https://dtd.nlm.nih.gov/ncbi/pubmed/out/{DTD_NAME}">'
)

STR_FIELDS = ("title", "journal", "volume", "issue", "pages", "doi", "pmid", "pmcid",
              "registration")
LABEL_FIELDS = ("work_id", "design", "eligible", "exclusion_reason")

# Where each site kind goes. Keys are hosts or parent domains; the longest match wins, so
# ``pmc.ncbi.nlm.nih.gov`` and ``www.ncbi.nlm.nih.gov`` can differ. Library-proxy hosts
# (``0-www-…brum.beds.ac.uk``) are listed under the site they proxy.
HOST_KINDS: dict[str, str] = {
    # PMC, publishers' own platforms (incl. hosting/resolver/proxy front-ends, congress
    # organisers and a publisher's staging site), and sites that are the original publisher.
    "pmc.ncbi.nlm.nih.gov": PUBLISHER,
    "0-www-mdpi-com.brum.beds.ac.uk": PUBLISHER,
    "ajpojournals.org": PUBLISHER, "advbiores.net": PUBLISHER,
    "apodc-2019.p.asnevents.com.au": PUBLISHER, "biomedcentral.com": PUBLISHER,
    "bmj.com": PUBLISHER, "bmjjournals.com": PUBLISHER, "cjns.gums.ac.ir": PUBLISHER,
    "cochranelibrary.com": PUBLISHER,
    "develop-sr3snxi-tt7lcx6s5gdv4.us-4.platformsh.site": PUBLISHER,
    "dovepress.com": PUBLISHER, "dx.doi.org": PUBLISHER, "err.eg.net": PUBLISHER,
    "erar.springeropen.com": PUBLISHER, "eurjther.com": PUBLISHER,
    "frontiersin.org": PUBLISHER, "heel-spur.info": PUBLISHER, "hindawi.com": PUBLISHER,
    "highwire.org": PUBLISHER, "ijms.sums.ac.ir": PUBLISHER,
    "informahealthcare.com": PUBLISHER, "inventi.in": PUBLISHER, "ircmj.com": PUBLISHER,
    "jfas.org": PUBLISHER, "jfootankleres.com": PUBLISHER, "jmums.mazums.ac.ir": PUBLISHER,
    "jneonatalsurg.com": PUBLISHER, "journalmsr.com": PUBLISHER,
    "journals.humankinetics.com": PUBLISHER, "jrms.mui.ac.ir": PUBLISHER,
    "kmuj.kmu.edu.pk": PUBLISHER, "link.springer.com": PUBLISHER,
    "linkinghub.elsevier.com": PUBLISHER, "mdpi.com": PUBLISHER, "medcentral.com": PUBLISHER,
    "medicopublication.com": PUBLISHER, "medscimonit.com": PUBLISHER,
    "mjiri.iums.ac.ir": PUBLISHER, "ptj.uswr.ac.ir": PUBLISHER,
    "rehabilityjournal.com": PUBLISHER, "revesppod.com": PUBLISHER, "sjmms.net": PUBLISHER,
    "smj.org.sg": PUBLISHER, "springermedicine.com": PUBLISHER, "wjgnet.com": PUBLISHER,
    "world.physio": PUBLISHER, "xiahepublishing.com": PUBLISHER,
    # Trial registries and the sites that mirror their entries.
    "anzctr.org.au": REGISTRIES, "clinconnect.io": REGISTRIES,
    "clinicaltrialcompass.org": REGISTRIES, "clinicaltrials.gov": REGISTRIES,
    "clincosm.com": REGISTRIES, "crick.ai": REGISTRIES, "ctv.veeva.com": REGISTRIES,
    "ichgcp.net": REGISTRIES, "inclinicaltrials.com": REGISTRIES, "meddatax.com": REGISTRIES,
    "medifind.com": REGISTRIES, "obesityhealthmatters.com": REGISTRIES,
    "participaid.co": REGISTRIES, "trial.medpath.com": REGISTRIES, "trials.co": REGISTRIES,
    "trialx.com": REGISTRIES,
    # PubMed itself (only versions not chosen for pubmed.xml would land here), other indexes,
    # library catalogues and institutional repositories, aggregators, and mirrors: document
    # sharing, blogs and clinic sites reposting abstracts, SEO/spam copies.
    "pubmed.ncbi.nlm.nih.gov": INDEXES, "www.ncbi.nlm.nih.gov": INDEXES,
    "pubmed.gov": INDEXES, "0-www-ncbi-nlm-nih-gov.brum.beds.ac.uk": INDEXES,
    "123docz.net": INDEXES, "1library.net": INDEXES, "abcdocz.com": INDEXES,
    "ai-bt.com": INDEXES, "blogspot.com": INDEXES, "booksci.cn": INDEXES,
    "c.coek.info": INDEXES, "cn1699.cn": INDEXES, "cricutcom-setup.com": INDEXES,
    "cuir.car.chula.ac.th": INDEXES, "dialnet.unirioja.es": INDEXES,
    "discovery.researcher.life": INDEXES, "doaj.org": INDEXES, "docksci.com": INDEXES,
    "docslib.org": INDEXES, "doczz.net": INDEXES, "econpapers.repec.org": INDEXES,
    "eurekamag.com": INDEXES, "exonmedical.com": INDEXES, "explore.openaire.eu": INDEXES,
    "fdocument.pub": INDEXES, "fdokumen.com": INDEXES, "fitforthem.unipa.it": INDEXES,
    "globalauthorid.com": INDEXES, "ideas.repec.org": INDEXES,
    "integrative-archives.com": INDEXES, "integrativedryneedling.com": INDEXES,
    "jeonwal.com": INDEXES, "katalog.k.utb.cz": INDEXES, "katalog.lib.cas.cz": INDEXES,
    "libmast.utm.my": INDEXES, "lubbockacupuncture.com": INDEXES,
    "medicinelakex1.com": INDEXES, "medluna.com": INDEXES, "medworm.com": INDEXES,
    "metajournal.com": INDEXES, "nydnrehab.com": INDEXES, "oalib.com": INDEXES,
    "omicsdi.org": INDEXES, "ouci.dntb.gov.ua": INDEXES, "painpluscpn.ca": INDEXES,
    "pdffox.com": INDEXES, "peeref.com": INDEXES, "pesquisa.bvsalud.org": INDEXES,
    "physiospot.com": INDEXES, "podac.info": INDEXES, "prideseotools.com": INDEXES,
    "produccioncientifica.ucm.es": INDEXES, "qxmd.com": INDEXES, "readbyqxmd.com": INDEXES,
    "readkong.com": INDEXES, "scholars.latrobe.edu.au": INDEXES,
    "scholarworks.atsu.edu": INDEXES, "scite.ai": INDEXES, "scribd.com": INDEXES,
    "search.pedro.org.au": INDEXES, "searchworks.staging.jioinstitute.edu.in": INDEXES,
    "slideshare.net": INDEXES, "studylib.es": INDEXES, "tmno.ch": INDEXES,
    "tomesphere.com": INDEXES, "unboundmedicine.com": INDEXES, "vdocument.in": INDEXES,
    "vdocuments.site": INDEXES, "zendy.io": INDEXES, "zhixidata.com": INDEXES,
}
# ICH GCP mirrors registry entries, but its /publications/ pages are copies of PubMed records.
PATH_RULES: list[tuple[str, re.Pattern[str], str]] = [
    ("ichgcp.net", re.compile(r"/clinical-trials-registry/publications/"), INDEXES),
]

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
RIS_TYPES = [("Registry Record", "DBASE"), ("Academic Dissertation", "THES"),
             ("Congress", "CONF"), ("Patient Education Handout", "ELEC")]

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
_NEWLINES = re.compile(r"\s*[\r\n]+\s*")
ENTREZ_MONTH_DAY = (6, 15)


# ----------------------------------------------------------------------------- corpus


def load_corpus(path: Path) -> list[dict[str, Any]]:
    """Read and check ``records.jsonl``; raise ``InputError`` naming the first bad line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(path, "corpus file not found; pass --corpus") from None
    except UnicodeDecodeError as exc:
        raise InputError(path, f"not UTF-8 ({exc.reason})") from None
    records: list[dict[str, Any]] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(path, f"not a JSON object ({exc.msg})", line=number) from None
        problem = _record_problem(record)
        if problem:
            raise InputError(path, problem, line=number)
        rec_id = record["rec_id"]
        if rec_id in first_line:
            raise InputError(path, f"duplicate rec_id {rec_id!r} (first on line "
                                   f"{first_line[rec_id]})", line=number)
        first_line[rec_id] = number
        records.append(record)
    if not records:
        raise InputError(path, "corpus has no records")
    return records


def _record_problem(record: Any) -> str | None:
    """What is wrong with one parsed corpus line, or None."""
    if not isinstance(record, dict):
        return "not a JSON object"
    for key in ("rec_id", "source_url", "abstract"):
        if not isinstance(record.get(key), str) or not record[key].strip():
            return f"'{key}' must be a non-empty string"
    if not urlsplit(record["source_url"]).hostname:
        return f"'source_url' has no host: {record['source_url']!r}"
    for key in (*STR_FIELDS, "language"):
        if record.get(key) is not None and not isinstance(record[key], str):
            return f"'{key}' must be a string or null"
    year = record.get("year")
    if year is not None and (isinstance(year, bool) or not isinstance(year, int)):
        return "'year' must be an integer or null"
    authors = record.get("authors")
    if authors is not None and not (isinstance(authors, list)
                                    and all(isinstance(a, str) for a in authors)):
        return "'authors' must be a list of strings or null"
    types = record.get("publication_types")
    if not (isinstance(types, list) and all(isinstance(t, str) for t in types)):
        return "'publication_types' must be a list of strings"
    if record.get("pmid") and not record["pmid"].isdigit():
        return f"'pmid' must be digits: {record['pmid']!r}"
    return None


# ----------------------------------------------------------------------------- sources


def source_host(url: str) -> str:
    """The page's host, lower-case, without port or a trailing dot."""
    return (urlsplit(url).hostname or "").rstrip(".").lower()


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def source_kind(record: dict[str, Any]) -> tuple[str, str]:
    """``(kind, rule)`` for a record: which RIS file it goes to and why."""
    url = record["source_url"]
    host, path = source_host(url), urlsplit(url).path
    for domain, pattern, kind in PATH_RULES:
        if (host == domain or host.endswith("." + domain)) and pattern.search(path):
            return kind, f"path {domain}{pattern.pattern}"
    parts = host.split(".")
    for i in range(len(parts)):
        domain = ".".join(parts[i:])
        if domain in HOST_KINDS:
            return HOST_KINDS[domain], f"table {domain}"
    if _is_ip(host):
        return INDEXES, "fallback: IP address"
    if record["publication_types"] == ["Registry Record"]:
        return REGISTRIES, "fallback: Registry Record"
    return INDEXES, "fallback: unknown host"


def is_pubmed_page(url: str) -> bool:
    """True for a PubMed page: pubmed.ncbi.nlm.nih.gov, pubmed.gov, ncbi…/pubmed (or proxied)."""
    host, path = source_host(url), urlsplit(url).path
    ncbi = "ncbi.nlm.nih.gov" in host or "ncbi-nlm-nih-gov" in host
    return "pubmed" in host or (ncbi and path.startswith("/pubmed"))


def choose_pubmed_versions(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """PMID → the version pubmed.xml is built from (a PubMed page first, else lowest rec_id)."""
    versions: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in sorted(records, key=lambda r: r["rec_id"]):
        if record.get("pmid"):
            versions[record["pmid"]].append(record)
    chosen = {}
    for pmid, group in versions.items():
        pages = [r for r in group if is_pubmed_page(r["source_url"])]
        chosen[pmid] = (pages or group)[0]
    return dict(sorted(chosen.items(), key=lambda kv: int(kv[0])))


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


def flat(value: Any) -> str:
    """Text with newline runs collapsed to one space; everything else kept as printed."""
    return _NEWLINES.sub(" ", "" if value is None else str(value)).strip()


def registrations(record: dict[str, Any]) -> list[str]:
    """Registration numbers as printed, split where one field lists several."""
    return [p for p in re.split(r"[;,\s]+", record.get("registration") or "") if p]


def split_pages(pages: str) -> tuple[str, str | None]:
    """``"1083-94"`` → ``("1083", "94")`` as printed (no expansion); one page → (page, None)."""
    parts = re.split(r"\s*[-\u2013]\s*", pages)
    if len(parts) == 2 and all(parts):
        return parts[0], parts[1]
    return pages, None


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


def ris_type(record: dict[str, Any]) -> str:
    for publication_type, ty in RIS_TYPES:
        if publication_type in record["publication_types"]:
            return ty
    return "JOUR"


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


def _check_pubmed(data: bytes, expected: list[str]) -> None:
    """Read the file back through Bio.Entrez with DTD checks (bundled DTD, no network)."""
    from Bio import Entrez  # a runtime dependency, imported late to keep import cheap

    parsed = Entrez.read(io.BytesIO(data), validate=True)
    got = [str(a["MedlineCitation"]["PMID"]) for a in parsed["PubmedArticle"]]
    if got != expected:
        raise RuntimeError(f"pubmed.xml reads back as {got}, expected {expected}")


# ----------------------------------------------------------------------------- RIS


def ris_record(record: dict[str, Any]) -> str:
    """One RIS record: fields as printed, nulls omitted, ``ID`` = rec_id."""
    lines: list[tuple[str, str]] = [
        ("TY", ris_type(record)), ("ID", record["rec_id"]),
        ("DB", source_host(record["source_url"])), ("UR", flat(record["source_url"])),
    ]
    lines.append(("TI", flat(record.get("title"))))
    lines += [("AU", flat(a)) for a in record.get("authors") or []]
    journal = flat(record.get("journal"))
    lines += [("JO", journal), ("T2", journal)]
    year = record.get("year")
    lines += [("PY", "" if year is None else str(year)), ("VL", flat(record.get("volume"))),
              ("IS", flat(record.get("issue")))]
    pages = flat(record.get("pages"))
    if pages:
        start, end = split_pages(pages)
        lines += [("SP", start), ("EP", end or "")]
    lines += [("DO", flat(record.get("doi"))), ("AN", flat(record.get("pmid"))),
              ("C2", flat(record.get("pmcid"))), ("LA", flat(record.get("language"))),
              ("M3", "; ".join(flat(t) for t in record["publication_types"] if flat(t)))]
    lines += [("N1", f"Registration: {number}") for number in registrations(record)]
    lines.append(("AB", flat(record["abstract"])))
    text = "".join(f"{tag}  - {value}\n" for tag, value in lines if value)
    return text + "ER  - \n"


def ris_file(records: Iterable[dict[str, Any]]) -> str:
    return "\n".join(ris_record(r) for r in sorted(records, key=lambda r: r["rec_id"]))


def _check_ris(data: bytes, expected: list[str]) -> None:
    """Read the file back with rispy's defaults and compare the ids."""
    import rispy  # runtime dependency, imported late

    got = [entry.get("id") for entry in rispy.loads(data.decode("utf-8"))]
    if got != expected:
        raise RuntimeError(f"RIS reads back {len(got)} ids, expected {len(expected)}")


# ----------------------------------------------------------------------------- build


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write(path: Path, data: bytes) -> None:
    """Write via a temporary file and rename, so a failed build leaves no half file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def build_snapshot(corpus_path: Path, out_dir: Path) -> dict[str, dict[str, Any]]:
    """Build the snapshot files from the corpus.

    Parameters
    ----------
    corpus_path : Path
        ``records.jsonl`` of the topic corpus.
    out_dir : Path
        Directory to write ``pubmed.xml``, the three RIS files and ``README.md`` into.

    Returns
    -------
    dict
        File name → ``{"records": int, "sha256": str}`` for each data file.

    Raises
    ------
    InputError
        When the corpus is missing or a line is malformed (names the line).
    """
    corpus_path, out_dir = Path(corpus_path), Path(out_dir)
    records = load_corpus(corpus_path)
    chosen = choose_pubmed_versions(records)
    for record in chosen.values():
        if not record["publication_types"]:
            raise InputError(corpus_path, "PubMed version has no publication type",
                             record=record["rec_id"])
    dates = entrez_dates(chosen)
    chosen_ids = {r["rec_id"] for r in chosen.values()}
    by_kind: dict[str, list[dict[str, Any]]] = {kind: [] for kind in RIS_FILES}
    rules: dict[str, str] = {}
    for record in records:
        if record["rec_id"] not in chosen_ids:
            kind, rules[record["rec_id"]] = source_kind(record)
            by_kind[kind].append(record)

    placed = Counter(chosen_ids)
    for group in by_kind.values():
        placed.update(r["rec_id"] for r in group)
    if set(placed) != {r["rec_id"] for r in records} or any(n != 1 for n in placed.values()):
        raise RuntimeError("snapshot does not place every corpus record exactly once")

    files: dict[str, bytes] = {PUBMED_FILE: pubmed_xml(chosen, dates).encode("utf-8")}
    _check_pubmed(files[PUBMED_FILE], list(chosen))
    counts = {PUBMED_FILE: len(chosen)}
    for kind, name in RIS_FILES.items():
        files[name] = ris_file(by_kind[kind]).encode("utf-8")
        _check_ris(files[name], sorted(r["rec_id"] for r in by_kind[kind]))
        counts[name] = len(by_kind[kind])
    summary = {name: {"records": counts[name], "sha256": sha256(data)}
               for name, data in files.items()}
    readme = render_readme(corpus_path, records, chosen, dates, by_kind, rules, summary)

    out_dir.mkdir(parents=True, exist_ok=True)
    for name, data in [*files.items(), (README_FILE, readme.encode("utf-8"))]:
        _write(out_dir / name, data)
    return summary


# ----------------------------------------------------------------------------- README


def render_readme(corpus_path: Path, records: list[dict[str, Any]],
                  chosen: dict[str, dict[str, Any]], dates: dict[str, tuple[int, str]],
                  by_kind: dict[str, list[dict[str, Any]]], rules: dict[str, str],
                  summary: dict[str, dict[str, Any]]) -> str:
    """The snapshot's README: provenance, rules, host table and SHA-256 manifest."""
    corpus_hash = sha256(corpus_path.read_bytes())
    by_pmid: dict[str, list[str]] = defaultdict(list)
    for record in records:
        if record.get("pmid"):
            by_pmid[record["pmid"]].append(record["rec_id"])
    month, day = ENTREZ_MONTH_DAY
    pmid_rows = []
    for pmid, record in chosen.items():
        year, basis = dates[pmid]
        others = ", ".join(sorted(set(by_pmid[pmid]) - {record["rec_id"]})) or "-"
        pmid_rows.append(f"| {pmid} | {record['rec_id']} | {source_host(record['source_url'])}"
                         f" | {year}-{month:02d}-{day:02d} | {basis} | {others} |")
    hosts: Counter[tuple[str, str, str]] = Counter()
    for kind, group in by_kind.items():
        for record in group:
            hosts[(source_host(record["source_url"]), kind, rules[record["rec_id"]])] += 1
    host_rows = [f"| {host} | {kind} | {rule} | {n} |"
                 for (host, kind, rule), n in sorted(hosts.items())]
    manifest = [f"| {name} | {info['records']} | `{info['sha256']}` |"
                for name, info in summary.items()]
    table = "\n".join
    return README_TEMPLATE.format(
        n_records=len(records), corpus_name=corpus_path.name, corpus_hash=corpus_hash,
        n_pmids=len(chosen), month=month, day=day,
        manifest=table(manifest), pmid_rows=table(pmid_rows), host_rows=table(host_rows),
    )


README_TEMPLATE = """\
# Offline snapshot: dry needling for plantar heel pain (`dry-needling-pf`)

Generated by `python -m reviewpipe.snapshot`; do not edit by hand, rebuild instead.
Built from the topic corpus `{corpus_name}`: {n_records} records, one per page version of a
publication (SHA-256 `{corpus_hash}`).

## What it is
The bundled search results of the review, as files a multi-database search leaves behind, so
that `make review` runs offline through the same parsers as a live run: `pubmed.xml`
({n_pmids} PubMed articles) and three RIS exports (record counts in the manifest below).

- Bibliographic facts (titles, authors, journals, years, volumes, issues, pages, DOIs, PMIDs,
  PMCIDs, registration numbers) are **as printed on the page of that version**, errors
  included: mojibake, duplicated author lists, uploader-made titles, online-first vs issue
  years, conflicting pages. A field the page did not show is left out; nothing was guessed or
  normalised (DOIs keep their case, abbreviated page ranges such as `1083-94` are not
  expanded). Only newlines inside a field are collapsed to one space.
- Abstracts are **factual paraphrases written from the pages, not the publishers' abstracts**.
  Every version of one publication carries the same paraphrase. Do not quote them as the
  authors' words.
- Publication types follow what PubMed would assign, traps included.
- The evaluation labels of the corpus (work, design, eligibility, exclusion reason) are **not**
  in the snapshot.

## What it is not
- Not a real PubMed response. `pubmed.xml` has the shape of an efetch answer and validates
  against `pubmed_250101.dtd`, but it holds only what the chosen page printed: no MeSH, ISSN,
  affiliations or real dates. `MedlineCitation Status="MEDLINE"`, `Article PubModel="Print"`,
  `JournalIssue CitedMedium="Internet"` and `PublicationStatus` `ppublish` are fixed
  placeholders.
- Not the full search. It holds the records gathered for the topic corpus, not everything
  the published review's searches returned.
- Not deduplicated: one publication can appear in several files and several times in one file.
  Finding those duplicates is reviewpipe's job.

## Files

| file | records | SHA-256 |
|---|---|---|
{manifest}

Every corpus record is in exactly one of these files (the builder checks it).

## pubmed.xml
- One `PubmedArticle` per distinct PMID, sorted by PMID. It is built from the version that
  carries the PMID: the PubMed page (host containing `pubmed`, or `ncbi.nlm.nih.gov/pubmed`,
  also through a library proxy) when there is one, else the carrying version with the lowest
  `rec_id`. The other versions carrying that PMID go to the RIS files (their `AN`).
- Fields: `PMID`; `ArticleTitle`; `Abstract` split into `AbstractText Label="…"` when the
  paraphrase opens with a section label (`Background: …`), else one `AbstractText`;
  `AuthorList` with each printed name split into `LastName`/`ForeName`/`Initials` (a comma
  splits "Family, Given"; otherwise the last word, with particles such as "de"/"San", is the
  family name; "Family AB" keeps "AB" as the given name); `Journal/Title` and
  `MedlineJournalInfo/MedlineTA` both hold the journal as printed; `JournalIssue`
  `Volume`/`Issue`/`PubDate/Year`; when the page showed no year `PubDate` holds an empty
  `MedlineDate` (the DTD needs one of `Year` or `MedlineDate`); `Pagination/MedlinePgn` as
  printed (empty when neither pages nor DOI were shown); `ELocationID EIdType="doi"`;
  `Language` (en → eng, es → spa, fa → per); `DataBankList` with the registration numbers
  (NCT → ClinicalTrials.gov, ACTRN → ANZCTR, ChiCTR, IRCT, ISRCTN, CTRI, DRKS, CRD → PROSPERO);
  `PublicationTypeList` (MeSH UI where known, else an empty `UI`); `ArticleIdList` with
  `pubmed`, `doi` and `pmc` ids.
- The corpus `rec_id` is not in the XML: the source id of a PubMed record is its PMID. The
  table below maps each PMID back to its corpus version.

### Entrez dates
The corpus has no real Entrez dates. Each article's `History` has `pubmed`, `medline` and
`entrez` `PubMedPubDate`s, all set to **year-{month:02d}-{day:02d}**, where year is the
year printed on the chosen version. When that version shows no year, the year of the article
with the numerically nearest PMID that does show one is used (ties go to the lower PMID):
PMIDs are handed out in Entrez order, so a neighbour's year is the closest stand-in. These
dates only let date-windowed searches and `update` runs behave sensibly; they are not facts.

| PMID | rec_id | page host | Entrez date | year from | other versions (RIS) |
|---|---|---|---|---|---|
{pmid_rows}

## RIS exports
Every record not used for `pubmed.xml`, sorted by `rec_id`, UTF-8, `\\n` line endings, one
`TAG  - value` per line, records separated by a blank line.

| tag | content |
|---|---|
| `TY` | `DBASE` registry record, `THES` thesis, `CONF` congress, `ELEC` handout, else `JOUR` |
| `ID` | corpus `rec_id` (reviewpipe uses it as the source id) |
| `DB` | host of the page, e.g. `pmc.ncbi.nlm.nih.gov` (the source as its database) |
| `UR` | the page URL |
| `TI` | title as printed |
| `AU` | one line per author, as printed, in printed order |
| `JO`, `T2` | journal as printed (both tags, same value) |
| `PY` | year |
| `VL`, `IS` | volume, issue |
| `SP`, `EP` | pages split at a single hyphen (`1083-94` → `1083`, `94`); else all in `SP` |
| `DO` | DOI as printed |
| `AN` | PMID (digits) when the page printed one |
| `C2` | PMCID (`PMC…`) when printed |
| `LA` | language code as in the corpus (`en`, `es`, `fa`) |
| `M3` | all publication types on one line, joined by `; ` |
| `N1` | `Registration: <number>`, one line per registration number |
| `AB` | the paraphrased abstract |

Null fields are omitted. Reading with rispy's defaults: `M3` comes back as one string (split
it on `; `); rispy splits `UR` at `;`, and some URLs contain `;`, so load with
`delimiter_tags_mapping={{}}` or join the `urls` list back with `;` (each record has one `UR`).

### Which file
`publisher-pmc.ris`: PMC and publishers' own sites (incl. DOI resolver, HighWire, library
proxies of a publisher, congress organisers). `registries.ris`: trial registries and sites
mirroring registry entries. `indexes-mirrors.ris`: PubMed pages not chosen, indexes,
catalogues and repositories, aggregators, document-sharing sites, blogs and clinic sites
reposting abstracts, spam copies and IP-address hosts. The rules live in
`reviewpipe.snapshot` (`HOST_KINDS`, `PATH_RULES`): a path rule first (ICH GCP's
`/clinical-trials-registry/publications/` pages copy PubMed, so they are mirrors), then the
longest matching host or parent domain in the table, then the fallback: IP address →
indexes-mirrors, publication types exactly `["Registry Record"]` → registries, any other
unknown host → indexes-mirrors.

| host | file | rule | records |
|---|---|---|---|
{host_rows}

## Rebuild
From the project root, with `../shared` beside it:

```
python -m reviewpipe.snapshot --corpus ../shared/corpus/records.jsonl \\
    --out data/snapshots/dry-needling-pf
```

(or `make snapshot`). The build is deterministic: the same corpus gives byte-identical files,
and `tests/test_snapshot.py` checks the committed files against a rebuild when `../shared` is
present.
"""


# ----------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    """Build the snapshot; print one line per file. Returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m reviewpipe.snapshot",
        description="Build data/snapshots/<review>/ from the topic corpus.")
    parser.add_argument("--corpus", type=Path, default=Path("../shared/corpus/records.jsonl"),
                        help="records.jsonl of the topic corpus (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("data/snapshots/dry-needling-pf"),
                        help="output directory (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        summary = build_snapshot(args.corpus, args.out)
    except ReviewpipeError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return exc.exit_code
    for name, info in summary.items():
        print(f"{args.out / name}: {info['records']} records, sha256 {info['sha256']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
