"""Fetching by id: PubMed records by PMID and PMC full texts (JATS), checked and archived."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reviewpipe.entrez import BadBody, EntrezConfig, Session, request, safe_root
from reviewpipe.entrez_archive import Archive, Archived, sha256, utcnow, write_atomic

__all__ = ["PubmedFetch", "fetch_pmc_articles", "fetch_pubmed_ids"]

log = logging.getLogger("reviewpipe.entrez")  # the Entrez client's one logger
ProgressHook = Callable[[int, int], None]


@dataclass
class PubmedFetch(Archived):
    """Records fetched by PMID; ``missing`` lists PMIDs PubMed did not return."""

    requested: list[str]
    pmids: list[str]
    missing: list[str]
    fetched_at: str
    raw_files: list[dict[str, Any]]
    requests_made: int
    retries: int
    database: str = "pubmed"
    raw_dir: Path | None = field(default=None, repr=False)


def _efetch_pmids(body: bytes) -> list[str]:
    return pmids_in(safe_root(body))


def pmids_in(root: Any) -> list[str]:
    """The PMIDs of a parsed PubmedArticleSet, in order; :class:`BadBody` if it is not one."""
    if root.tag != "PubmedArticleSet":
        detail = root.findtext("ERROR") or f"root is <{root.tag}>"
        raise BadBody(f"not a PubmedArticleSet: {detail}")
    pmids: list[str] = []
    for child in root:
        if child.tag == "PubmedArticle":
            pmids.append((child.findtext("MedlineCitation/PMID") or "").strip())
        elif child.tag == "PubmedBookArticle":
            pmids.append((child.findtext("BookDocument/PMID") or "").strip())
        elif child.tag == "DeleteCitation":
            pmids.extend((p.text or "").strip() for p in child.iterfind("PMID"))
    if "" in pmids:
        raise BadBody("a record has no PMID")
    if len(set(pmids)) != len(pmids):
        raise BadBody("a PMID occurs twice in one batch")
    return pmids


def _check_ids(wanted: list[str], allow_missing: bool) -> Callable[[bytes, bool], list[str]]:
    def check(body: bytes, last: bool) -> list[str]:
        pmids = _efetch_pmids(body)
        extra = set(pmids) - set(wanted)
        if extra:
            raise BadBody(f"{len(extra)} PMIDs that were not asked for, e.g. {min(extra)}")
        if len(pmids) < len(wanted) and not (last and allow_missing):
            raise BadBody(f"{len(pmids)} records for {len(wanted)} PMIDs")
        return pmids
    return check


def efetch_ids(session: Session, archive: Archive, pmids: list[str], held: dict[str, str], *,
               allow_missing: bool, progress: Callable[[], None]) -> list[str]:
    """Efetch ``pmids`` by id in batches (Bio.Entrez POSTs from 200 ids); returns missing ones."""
    missing: list[str] = []
    size = session.config.batch_size
    for start in range(0, len(pmids), size):
        batch = pmids[start:start + size]
        params = {"db": "pubmed", "retmode": "xml", "id": batch}
        body, got = request(session, "efetch", params, _check_ids(batch, allow_missing))
        entry = archive.save(f"efetch-ids-{batch[0]}", body, "efetch-ids", params, got)
        for pmid in got:
            held.setdefault(pmid, entry["path"])
        missing += [p for p in batch if p not in set(got)]
        progress()
    return missing


def fetch_pubmed_ids(pmids: Iterable[str | int], *, raw_dir: Path, config: EntrezConfig,
                     progress: ProgressHook | None = None) -> PubmedFetch:
    """Efetch PubMed records by PMID, archived and checked like :func:`search_pubmed`.

    Parameters
    ----------
    pmids : iterable of str or int
    raw_dir : Path
        Rerunning with the same PMIDs and directory reuses the verified batches.
    config : EntrezConfig
    progress : callable, optional
        ``progress(done, total)`` after each batch.

    Returns
    -------
    PubmedFetch
        ``missing`` lists PMIDs PubMed no longer returns (e.g. deleted records).

    Raises
    ------
    EntrezError
        On a 4xx other than 429, or when a batch keeps failing after ``config.max_tries``.
    """
    wanted = sorted({str(p).strip() for p in pmids if str(p).strip()}, key=int)
    digest = sha256(",".join(wanted).encode())
    session = Session(config)
    archive = Archive(Path(raw_dir), {"op": "ids", "n": len(wanted), "pmids_sha256": digest})
    held = {p: f for p, f in archive.held().items() if p in set(wanted)}

    def tick() -> None:
        if progress is not None:
            progress(len(held), len(wanted))

    lacking = [p for p in wanted if p not in held]
    missing = efetch_ids(session, archive, lacking, held, allow_missing=True, progress=tick)
    if missing:
        log.info("PubMed returned no record for %d PMIDs, e.g. %s", len(missing), missing[:5])
    return PubmedFetch(requested=wanted, pmids=sorted(held, key=int), missing=missing,
                       fetched_at=utcnow(), raw_files=archive.manifest_files(set(held)),
                       requests_made=session.requests, retries=session.retries,
                       raw_dir=Path(raw_dir))


# ---------------------------------------------------------------------------------------------
# PMC full text.

PMC_BATCH = 20  # full texts are large: fewer per request than PubMed records


def fetch_pmc_articles(pmcids: Iterable[str], *, out_dir: Path, raw_dir: Path,
                       config: EntrezConfig) -> dict[str, Path]:
    """Efetch PMC full texts (JATS) and write each to ``out_dir/<PMCID>.xml``.

    Every response body is archived under ``raw_dir`` as received, named by its SHA-256 and
    never overwritten; articles already in ``out_dir`` are not fetched again, so a killed run
    resumes. PMCIDs PMC does not return (not open access, withdrawn) are simply absent from the
    result.

    Raises
    ------
    EntrezError
        On a 4xx other than 429, or when a batch keeps failing after ``config.max_tries``.
    """
    from xml.etree import ElementTree

    wanted = sorted({"PMC" + p.strip().upper().removeprefix("PMC") for p in pmcids
                     if p and p.strip().upper().removeprefix("PMC").isdigit()},
                    key=lambda p: int(p[3:]))
    out_dir.mkdir(parents=True, exist_ok=True)
    raw_dir.mkdir(parents=True, exist_ok=True)
    found = {p: out_dir / f"{p}.xml" for p in wanted if (out_dir / f"{p}.xml").exists()}
    session = Session(config)
    lacking = [p for p in wanted if p not in found]
    for start in range(0, len(lacking), PMC_BATCH):
        batch = lacking[start:start + PMC_BATCH]

        def check(body: bytes, last: bool) -> dict[str, Any]:
            root = safe_root(body)
            if root.tag != "pmc-articleset":
                raise BadBody(f"root element {root.tag}, not pmc-articleset")
            articles = {}
            for article in root.iter("article"):
                for node in article.iter("article-id"):
                    kind = node.get("pub-id-type")
                    value = (node.text or "").strip().upper().removeprefix("PMC")
                    if kind in ("pmc", "pmcid", "pmcaid") and value.isdigit():
                        articles["PMC" + value] = article
                        break
            return articles

        params = {"db": "pmc", "retmode": "xml", "id": [p[3:] for p in batch]}
        body, articles = request(session, "efetch", params, check)
        # Named by content, so a body is written once and a later fetch never overwrites it.
        raw = raw_dir / f"efetch-pmc-{batch[0]}-{sha256(body)[:16]}.xml"
        if not raw.exists():
            write_atomic(raw, body)
        for pmcid, article in articles.items():
            if pmcid in batch:
                path = out_dir / f"{pmcid}.xml"
                write_atomic(path, ElementTree.tostring(article, encoding="utf-8"))
                found[pmcid] = path
    return dict(sorted(found.items()))
