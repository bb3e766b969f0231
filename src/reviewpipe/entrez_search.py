"""PubMed search: esearch on the history server, then each record of the window fetched once.

Past the 9,999 ids one esearch lists, a window is walked newest first or halved by days; one more
search per part then catches records that entered or left PubMed during the run.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from reviewpipe.entrez import BadBody, EntrezConfig, Session, parse_esearch, request, safe_root
from reviewpipe.entrez_archive import Archive, Archived, utcnow
from reviewpipe.entrez_fetch import ProgressHook, efetch_ids, pmids_in
from reviewpipe.errors import EntrezError

__all__ = ["PubmedSearch", "search_pubmed"]

log = logging.getLogger("reviewpipe.entrez")  # the Entrez client's one logger
DATETYPES = ("edat", "pdat", "mdat")


@dataclass
class PubmedSearch(Archived):
    """What a PubMed search found and how; :meth:`to_manifest` is JSON-ready (no API key)."""

    query: str
    translation: str | None
    count: int
    count_initial: int
    count_final: int
    mindate: str
    maxdate: str
    datetype: str
    searched_at: str
    parts: list[dict[str, Any]]
    raw_files: list[dict[str, Any]]
    pmids: list[str]
    requests_made: int
    retries: int
    resumed: bool = False
    reused_pmids: int = 0
    fetched_by_id: int = 0
    added_during_run: list[str] = field(default_factory=list)
    dropped_during_run: list[str] = field(default_factory=list)
    database: str = "pubmed"
    raw_dir: Path | None = field(default=None, repr=False)


def _day(text: str, *, end: bool, name: str) -> date:
    found = re.fullmatch(r"(\d{4})(?:[/-](\d{1,2}))?(?:[/-](\d{1,2}))?", text.strip())
    if not found:
        raise EntrezError(f"{name} {text!r} must be YYYY, YYYY/MM or YYYY/MM/DD.")
    year, month, day = found.groups()
    try:
        if day:
            return date(int(year), int(month), int(day))
        first = date(int(year), int(month or (12 if end else 1)), 1)
    except ValueError:
        raise EntrezError(f"{name} {text!r} is not a calendar date.") from None
    if not end:
        return first
    return date(first.year + first.month // 12, first.month % 12 + 1, 1) - timedelta(days=1)


# Newest-first orders esearch offers per date type. A window with more hits than one esearch
# lists is walked from its newest end (see _Search.collect); PubMed cannot sort by modification
# date, so an mdat window is halved by days instead.
DATE_SORT = {"pdat": "pub_date", "edat": "most recent"}
_DATE_PATHS = {
    "pdat": ("MedlineCitation/Article/Journal/JournalIssue/PubDate",),
    "edat": ("PubmedData/History/PubMedPubDate[@PubStatus='entrez']",
             "PubmedData/History/PubMedPubDate[@PubStatus='pubmed']"),
}
_MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug",
                                       "sep", "oct", "nov", "dec"), 1)}


@dataclass
class _Part:
    lo: date
    hi: date
    count: int
    ids: list[str]
    webenv: str | None
    query_key: str | None
    translation: str | None
    # The esearch's IdList in history order, when ``ids`` are only the newest of it (a part cut
    # off the newest end of a wider window); None when ``ids`` are the whole IdList.
    listing: list[str] | None = None

    @property
    def label(self) -> str:
        return f"{self.lo:%Y%m%d}-{self.hi:%Y%m%d}"

    @property
    def listed(self) -> list[str]:
        return self.ids if self.listing is None else self.listing


def _xml_day(elem: Any) -> date | None:
    """The day of a PubMed date element; a missing day or month counts as the first."""
    if elem is None:
        return None
    year = (elem.findtext("Year") or "").strip()
    month = (elem.findtext("Month") or "").strip()
    day = (elem.findtext("Day") or "").strip()
    if not year:
        found = re.match(r"\s*(\d{4})(?:\s+([A-Za-z]{3}))?", elem.findtext("MedlineDate") or "")
        if not found:
            return None
        year, month, day = found.group(1), found.group(2) or "", ""
    number = int(month) if month.isdigit() else _MONTHS.get(month[:3].lower(), 1)
    try:
        return date(int(year), number, int(day) if day.isdigit() else 1)
    except ValueError:
        return None


def _record_days(root: Any, datetype: str) -> dict[str, date | None]:
    """PMID -> its ``datetype`` day (None if it has none) for the records of an efetch body."""
    out: dict[str, date | None] = {}
    for article in root.iterfind("PubmedArticle"):
        day = None
        for path in _DATE_PATHS.get(datetype, ()):
            day = _xml_day(article.find(path))
            if day is not None:
                break
        out[(article.findtext("MedlineCitation/PMID") or "").strip()] = day
    return out


def _check_history(expected: int, days: tuple[str, dict[str, date | None]] | None = None
                   ) -> Callable[[bytes, bool], list[str]]:
    """Check a history efetch; with ``days=(datetype, out)``, note each record's day in out."""
    def check(body: bytes, last: bool) -> list[str]:
        root = safe_root(body)
        pmids = pmids_in(root)
        # A short batch is usually NCBI under load, so retry; if it stays short (a record
        # deleted since the esearch), keep it: the final check fetches any gap by id.
        if len(pmids) > expected or (len(pmids) < expected and not last):
            raise BadBody(f"{len(pmids)} records where {expected} were due")
        if days is not None:  # from the parse done anyway: a 200-record body takes ~80 ms
            days[1].update(_record_days(root, days[0]))
        return pmids
    return check


def _esearch(session: Session, archive: Archive, query: str, lo: date, hi: date,
             datetype: str, *, history: bool, kind: str, sort: str | None = None) -> _Part:
    retmax = session.config.max_ids
    params = {"db": "pubmed", "term": query, "mindate": f"{lo:%Y/%m/%d}",
              "maxdate": f"{hi:%Y/%m/%d}", "datetype": datetype, "retmax": retmax}
    if sort:
        params["sort"] = sort
    if history:
        params["usehistory"] = "y"
    body, found = request(session, "esearch", params, lambda b, _: parse_esearch(b, retmax))
    part = _Part(lo, hi, found["count"], found["ids"], found["webenv"], found["query_key"],
                 found["translation"])
    archive.save(f"{kind}-{part.label}", body, kind, params, [], count=part.count,
                 ids_listed=len(part.ids), translation=part.translation)
    if session.translation is None:
        session.translation = part.translation
    log.info("%s %s..%s: %d records", kind, lo, hi, part.count)
    return part


class _Search:
    """One :func:`search_pubmed` call: its requests, archive, records held and progress."""

    def __init__(self, session: Session, archive: Archive, query: str, datetype: str, *,
                 history: bool, held: dict[str, str], progress: ProgressHook | None) -> None:
        self.session, self.archive, self.query, self.datetype = session, archive, query, datetype
        self.history = history  # False on resume: the interrupted run's WebEnvs are gone
        self.held = held  # PMID -> the archived file holding it
        self.progress = progress
        self.target: set[str] = set()  # the PMIDs progress counts
        self.days: dict[str, date | None] = {}  # PMID -> its datetype day, as fetched
        self.total = 0
        self.by_id = 0

    def tick(self) -> None:
        if self.progress is not None:
            self.progress(len(self.target & self.held.keys()), max(self.total, len(self.target)))

    # -- searching -----------------------------------------------------------------------------
    def esearch(self, lo: date, hi: date, *, kind: str = "esearch", history: bool | None = None,
                sort: str | None = None) -> _Part:
        return _esearch(self.session, self.archive, self.query, lo, hi, self.datetype,
                        history=self.history if history is None else history, kind=kind,
                        sort=sort)

    def window(self, lo: date, hi: date, *, kind: str = "esearch",
               history: bool | None = None) -> list[_Part]:
        """Esearch [lo, hi]; halve the window by days until every part lists all its ids."""
        return self.split(self.esearch(lo, hi, kind=kind, history=history), kind=kind,
                          history=history)

    def split(self, part: _Part, *, kind: str = "esearch",
              history: bool | None = None) -> list[_Part]:
        max_ids = self.session.config.max_ids
        if part.count <= max_ids:
            return [part]
        if part.lo == part.hi:
            raise EntrezError(f"esearch {self.query!r}: {part.count} records on {part.lo} alone, "
                              f"more than the {max_ids} one search can list; narrow the query.")
        mid = part.lo + (part.hi - part.lo) // 2
        return (self.window(part.lo, mid, kind=kind, history=history)
                + self.window(mid + timedelta(days=1), part.hi, kind=kind, history=history))

    def collect(self, lo: date, hi: date) -> list[_Part]:
        """Search [lo, hi] and fetch every record found; return disjoint parts, oldest first.

        PubMed lists at most ``max_ids`` ids per search. A window with more hits is searched
        newest first (``sort``): its listed records are fetched, the next search ends on the
        day of the last one fetched, and the records the first search listed but the second
        does not are a part. Records of that boundary day come back at the head of the next
        listing and, already held, are skipped, so each esearch hands over close to
        ``max_ids`` records and each fetch is a full batch. A cut is kept only when the counts
        add up (the first count minus the second equals the records handed over, i.e. the
        first search listed every record after the cut); otherwise that span is searched by
        itself, halved by days if need be, as is every window of a date type with no
        newest-first sort.
        """
        sort = DATE_SORT.get(self.datetype)
        part = self.esearch(lo, hi, sort=sort)
        self.total = part.count
        self.target.update(part.ids)
        self.tick()
        parts: list[_Part] = []
        while part.count > self.session.config.max_ids and sort is not None:
            cut = self._advance(part)
            if cut is None:
                break
            following = self.esearch(lo, cut, sort=sort)
            self.target.update(following.ids)
            later = set(following.ids)
            newer = [p for p in part.ids if p not in later]
            after = cut + timedelta(days=1)
            if part.count - following.count == len(newer):
                top = _Part(after, part.hi, len(newer), newer, part.webenv, part.query_key,
                            part.translation, listing=part.ids)
                self.fetch(top, only=set(newer))  # nothing, unless dates and sort disagree
                parts.append(top)
            else:
                log.info("esearch %s..%s: %d records, %d after cutting at %s, yet %d listed "
                         "only before the cut; searching %s..%s by itself", lo, part.hi,
                         part.count, following.count, cut, len(newer), after, part.hi)
                for piece in self.window(after, part.hi):
                    self.target.update(piece.ids)
                    self.fetch(piece)
                    parts.append(piece)
            part = following
        for piece in self.split(part):
            self.target.update(piece.ids)
            self.fetch(piece)
            parts.append(piece)
        return sorted(parts, key=lambda p: p.lo)

    def _advance(self, part: _Part) -> date | None:
        """Fetch the newest records ``part`` lists; return the day to end the next search on.

        Every record after the cut must be fetched already, so the cut is the day of the last
        record fetched; that day's records come back in the next search, as do the listed
        records not fetched. Fetching whole batches only, and leaving the remainder to the
        next search, saves a part-filled batch but takes room in the next listing (the
        remainder plus the boundary day's records fetched already, e.g. thousands when many
        records share a month-only publication date). Both are weighed in requests, a listing
        of ``max_ids`` costing two (its esearch and its final check). Returns None when no
        day can be used; the caller then halves the window.
        """
        listing, size = part.ids, self.session.config.batch_size
        start = next((i for i, p in enumerate(listing) if p not in self.held), len(listing))
        whole = start + (len(listing) - start) // size * size
        usable: date | None = None
        if start < whole < len(listing):
            self.fetch(part, upto=whole)
            day = self._day_before(listing, whole)
            if day is not None and part.lo <= day < part.hi:
                usable, tail = day, len(listing) - whole
                room = (size - tail) / size * self.session.config.max_ids / 2
                if tail + self._same_day(listing, whole, day, room - tail) <= room:
                    return self._cut(part, day)
        self.fetch(part)
        day = self._day_before(listing, len(listing))
        if day is not None and part.lo <= day < part.hi:
            return self._cut(part, day)
        if usable is not None:
            return self._cut(part, usable)
        log.info("esearch %s..%s: %d records and no day to cut at; halving the window",
                 part.lo, part.hi, part.count)
        return None

    def _cut(self, part: _Part, day: date) -> date:
        log.info("esearch %s..%s: %d records, %d listed; the next search ends on %s",
                 part.lo, part.hi, part.count, len(part.ids), day)
        return day

    def _day_of(self, pmid: str) -> date | None:
        """The ``datetype`` day of a held record (read from its file if not seen this run)."""
        if pmid not in self.days and pmid in self.held:
            try:
                root = safe_root((self.archive.dir / self.held[pmid]).read_bytes())
                self.days.update(_record_days(root, self.datetype))
            except (OSError, BadBody):
                pass
        return self.days.get(pmid)

    def _day_before(self, listing: list[str], end: int) -> date | None:
        """The day of the last held, dated record among (at most a batch) listed before end."""
        for i in range(end - 1, max(-1, end - 1 - self.session.config.batch_size), -1):
            day = self._day_of(listing[i]) if listing[i] in self.held else None
            if day is not None:
                return day
        return None

    def _same_day(self, listing: list[str], end: int, day: date, limit: float) -> int:
        """How many records listed before ``end`` and back from it fall on ``day`` (> limit
        is enough to know)."""
        n = 0
        for i in range(end - 1, -1, -1):
            if n > limit or self._day_of(listing[i]) != day:
                break
            n += 1
        return n

    # -- fetching ------------------------------------------------------------------------------
    def fetch(self, part: _Part, *, upto: int | None = None,
              only: set[str] | None = None) -> None:
        """Fetch what ``part`` lists (before position ``upto``, of ``only``) and is not held.

        From the history server in runs of consecutive positions, at most a batch each, so a
        record already held is never fetched again; by id when the part has no WebEnv.
        """
        listing = part.listed
        todo = [i for i in range(len(listing) if upto is None else upto)
                if listing[i] not in self.held and (only is None or listing[i] in only)]
        if not todo:
            return
        if not part.webenv:
            self.fetch_ids([listing[i] for i in todo])
            return
        size = self.session.config.batch_size
        runs: list[list[int]] = []
        for i in todo:
            if runs and runs[-1][0] + runs[-1][1] == i and runs[-1][1] < size:
                runs[-1][1] += 1
            else:
                runs.append([i, 1])
        for retstart, due in runs:
            params = {"db": "pubmed", "retmode": "xml", "WebEnv": part.webenv,
                      "query_key": part.query_key, "retstart": retstart, "retmax": due}
            body, got = request(self.session, "efetch", params,
                                 _check_history(due, (self.datetype, self.days)))
            entry = self.archive.save(f"efetch-{part.label}-{retstart}", body, "efetch-history",
                                      params, got, part=part.label)
            for pmid in got:
                self.held.setdefault(pmid, entry["path"])
            self.tick()

    def fetch_ids(self, pmids: list[str]) -> None:
        self.by_id += len(pmids)
        efetch_ids(self.session, self.archive, pmids, self.held, allow_missing=False,
                   progress=self.tick)


def search_pubmed(query: str, *, mindate: str, maxdate: str, datetype: str, raw_dir: Path,
                  config: EntrezConfig, progress: ProgressHook | None = None) -> PubmedSearch:
    """Search PubMed and archive every record in the window exactly once.

    Parameters
    ----------
    query : str
        PubMed query, as typed into PubMed.
    mindate, maxdate : str
        Window, ``YYYY``, ``YYYY/MM`` or ``YYYY/MM/DD`` (inclusive).
    datetype : str
        ``edat`` (entrez date), ``pdat`` (publication date) or ``mdat``.
    raw_dir : Path
        Where raw bodies and ``fetch-state.json`` go; rerunning on the same directory resumes.
    config : EntrezConfig
    progress : callable, optional
        Called as ``progress(done, total)`` with record counts after each batch.

    Returns
    -------
    PubmedSearch

    Raises
    ------
    EntrezError
        If NCBI answers a 4xx other than 429, keeps failing after ``config.max_tries``, or a
        record in the result cannot be fetched.

    Notes
    -----
    PubMed lists at most 9,999 ids of one search. A window with more hits is searched newest
    first (``sort=pub_date`` for ``pdat``, ``most recent`` for ``edat``) and walked in steps of
    close to 9,999 records, each next search ending on the day of the last record fetched (see
    ``_Search.collect``); ``mdat`` windows, and steps whose counts do not add up, are halved by
    days instead. The result is then searched once more, part by part, to catch records that
    entered or left PubMed during the run.

    Examples
    --------
    >>> config = EntrezConfig.from_env()                                 # doctest: +SKIP
    >>> found = search_pubmed("mindfulness AND randomized controlled trial[pt]",
    ...                       mindate="2015", maxdate="2024", datetype="edat",
    ...                       raw_dir=Path("raw/pubmed"), config=config)  # doctest: +SKIP
    """
    if datetype not in DATETYPES:
        raise EntrezError(f"datetype {datetype!r} must be one of {', '.join(DATETYPES)}.")
    lo, hi = _day(mindate, end=False, name="mindate"), _day(maxdate, end=True, name="maxdate")
    if lo > hi:
        raise EntrezError(f"mindate {mindate} is after maxdate {maxdate}.")
    session = Session(config)
    archive = Archive(Path(raw_dir), {"op": "search", "query": query, "mindate": f"{lo}",
                                       "maxdate": f"{hi}", "datetype": datetype})
    reusable = archive.held()
    resumed = bool(reusable)
    searched_at = utcnow()
    # The WebEnv of an interrupted run is gone, so a resumed run fetches what it lacks by id.
    run = _Search(session, archive, query, datetype, history=not resumed, held=dict(reusable),
                  progress=progress)
    held = run.held  # PMID -> file; only PMIDs of the final result reach the manifest
    parts = run.collect(lo, hi)
    initial = {p for part in parts for p in part.ids}
    run.target, run.total = initial, len(initial)
    run.fetch_ids(sorted(initial - held.keys(), key=int))
    # Records can enter (or leave) PubMed while we fetch: one more search per part settles it.
    final_parts = [q for part in parts
                   for q in run.window(part.lo, part.hi, kind="esearch-check", history=False)]
    final = {p for part in final_parts for p in part.ids}
    added = sorted(final - initial, key=int)
    dropped = sorted(initial - final, key=int)
    run.target, run.total = final, len(final)
    run.fetch_ids(sorted(final - held.keys(), key=int))
    unfetched = sorted(final - held.keys(), key=int)
    if unfetched:  # cannot happen unless a check is wrong; never hand back a short result
        raise EntrezError(f"efetch: PubMed did not return {len(unfetched)} records of the "
                          f"result, e.g. PMID {unfetched[:5]}; rerun to resume.")
    if added or dropped:
        log.info("the result changed during the run: %d added, %d dropped", len(added),
                 len(dropped))
    run.tick()
    return PubmedSearch(
        query=query, translation=session.translation, count=len(final),
        count_initial=len(initial), count_final=len(final), mindate=mindate, maxdate=maxdate,
        datetype=datetype, searched_at=searched_at,
        parts=[{"label": p.label, "mindate": f"{p.lo:%Y/%m/%d}", "maxdate": f"{p.hi:%Y/%m/%d}",
                "count": p.count, "webenv": p.webenv, "query_key": p.query_key}
               for p in parts],
        raw_files=archive.manifest_files(final), pmids=sorted(final, key=int),
        requests_made=session.requests, retries=session.retries, resumed=resumed,
        reused_pmids=len(final & reusable.keys()), fetched_by_id=run.by_id,
        added_during_run=added, dropped_during_run=dropped, raw_dir=Path(raw_dir))
