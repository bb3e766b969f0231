"""A local stand-in for NCBI E-utilities (esearch + efetch on db=pubmed), over real HTTP.

It serves PubmedArticle records from ``tests/fixtures/pubmed_standin.xml`` (or XML given in
code), keeps NCBI's rate limit (3 requests in any 1 s window, 10 with an ``api_key``), records
every request, and answers scripted faults so the client's retry and resume logic can be tested
against a real socket.

Examples
--------
>>> with EutilsStandin() as s:                                    # doctest: +SKIP
...     s.fault("status", status=503, on="efetch", times=2)
...     url = s.base_url   # "http://127.0.0.1:PORT/entrez/eutils/"
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import random
import re
import socket
import struct
import threading
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

import defusedxml.ElementTree as ET

FIXTURE = Path(__file__).parent / "fixtures" / "pubmed_standin.xml"
PREFIX = "/entrez/eutils/"
EFETCH_HEAD = (
    '<?xml version="1.0" ?>\n'
    '<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" '
    '"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">\n'
)
ESEARCH_HEAD = (
    '<?xml version="1.0" encoding="UTF-8" ?>\n'
    '<!DOCTYPE eSearchResult PUBLIC "-//NLM//DTD esearch 20060628//EN" '
    '"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20060628/esearch.dtd">\n'
)
EFETCH_ERROR_HEAD = (
    '<?xml version="1.0" encoding="UTF-8" ?>\n'
    '<!DOCTYPE eFetchResult PUBLIC "-//NLM//DTD efetch 20131226//EN" '
    '"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20131226/efetch.dtd">\n'
)
FAULT_KINDS = ("status", "429", "reset", "drop", "truncate", "cut", "short", "slow", "grow")
# esearch sort values (lower case, "+" read as a space) -> the order they give
_SORTS = {"pub_date": "pdat", "pub date": "pdat", "most recent": "edat", "": "edat",
          "relevance": "relevance"}
_MONTHS = {m: i for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1)}


@dataclass
class StandinRequest:
    """One request as the stand-in saw it; ``start`` is ``time.monotonic()`` on arrival."""

    start: float
    method: str
    tool: str
    query: str
    params: dict[str, str]
    client: str
    status: int | None = None
    fault: str | None = None
    rate_limited: bool = False
    window_count: int = 0
    end: float | None = None
    scripted: Fault | None = field(default=None, repr=False)


@dataclass
class Fault:
    """A scripted fault; see :meth:`EutilsStandin.fault`."""

    kind: str
    times: int = 1
    on: str | Callable[[StandinRequest], bool] | None = None
    skip: int = 0
    status: int = 500
    body: str | None = None
    retry_after: str | None = None
    delay: float = 1.0
    articles: list[str] = field(default_factory=list)
    applied: int = 0

    def matches(self, request: StandinRequest) -> bool:
        if self.on is None:
            return True
        if isinstance(self.on, str):
            return request.tool == self.on
        return bool(self.on(request))


@dataclass
class _Article:
    pmid: str
    xml: bytes
    edat: int  # date ordinals keep range look-ups to a bisect
    pdat: int


def _date_of(elem: Any) -> date | None:
    if elem is None:
        return None
    year = elem.findtext("Year")
    if year is None:
        found = re.search(r"\d{4}", elem.findtext("MedlineDate") or "")
        return date(int(found.group()), 1, 1) if found else None
    month_text = (elem.findtext("Month") or "1").strip()
    month = int(month_text) if month_text.isdigit() else _MONTHS.get(month_text[:3].lower(), 1)
    return date(int(year), month, int(elem.findtext("Day") or 1))


_ARTICLE = re.compile(r"<PubmedArticle>.*?</PubmedArticle>", re.S)


def parse_articles(xml: str | bytes | Path) -> list[_Article]:
    """Split PubMed XML (a file, a PubmedArticleSet, or bare PubmedArticle elements).

    Each record is served byte for byte as given; only its PMID and dates are parsed.
    """
    if isinstance(xml, Path):
        xml = xml.read_bytes()
    text = xml.decode("utf-8") if isinstance(xml, bytes) else xml
    out = []
    for found in _ARTICLE.finditer(text):
        elem = ET.fromstring(found.group().encode("utf-8"))
        pmid = elem.findtext("MedlineCitation/PMID").strip()
        pdat = _date_of(elem.find("MedlineCitation/Article/Journal/JournalIssue/PubDate"))
        history = "PubmedData/History/PubMedPubDate[@PubStatus='{}']"
        edat = _date_of(elem.find(history.format("entrez"))) or _date_of(
            elem.find(history.format("pubmed")))
        pdat = pdat or edat or date(1900, 1, 1)
        out.append(_Article(pmid, found.group().encode("utf-8"), (edat or pdat).toordinal(),
                            pdat.toordinal()))
    return out


_WORDS = ("aspirin", "exercise", "mindfulness", "metformin", "vitamin D", "acupuncture",
          "cognitive therapy", "zinc", "probiotics", "yoga")
_CONDITIONS = ("hypertension", "depression", "type 2 diabetes", "asthma", "low back pain",
               "insomnia", "migraine", "obesity", "anxiety", "osteoarthritis")
_NAMES = (("Smith", "Anna"), ("Garcia", "Luis"), ("Chen", "Wei"), ("Okafor", "Ngozi"),
          ("Novak", "Petra"), ("Rahimi", "Sara"), ("Tanaka", "Kenji"), ("Silva", "Joao"))


def make_article(pmid: int | str, *, edat: date, pdat: date | None = None, title: str | None = None,
                 rng: random.Random | None = None) -> str:
    """Return one synthetic PubmedArticle valid against pubmed_250101.dtd."""
    rng = rng or random.Random(int(pmid))
    pdat = pdat or edat
    drug, condition = rng.choice(_WORDS), rng.choice(_CONDITIONS)
    title = title or f"{drug.capitalize()} versus placebo for {condition}: a randomised trial"
    authors = "".join(
        f'<Author ValidYN="Y"><LastName>{last}</LastName><ForeName>{first}</ForeName>'
        f"<Initials>{first[0]}</Initials></Author>"
        for last, first in rng.sample(_NAMES, rng.randint(1, 4)))
    n = rng.randint(40, 400)

    def pubdate(status: str, day: date) -> str:
        return (f'<PubMedPubDate PubStatus="{status}"><Year>{day.year}</Year>'
                f"<Month>{day.month}</Month><Day>{day.day}</Day></PubMedPubDate>")

    received = edat - timedelta(days=rng.randint(60, 200))
    return (
        f'<PubmedArticle><MedlineCitation Status="PubMed-not-MEDLINE" Owner="NLM">'
        f'<PMID Version="1">{pmid}</PMID><Article PubModel="Print-Electronic"><Journal>'
        f'<ISSN IssnType="Electronic">1234-5678</ISSN><JournalIssue CitedMedium="Internet">'
        f"<Volume>{pdat.year - 2000}</Volume><Issue>{pdat.month}</Issue><PubDate>"
        f"<Year>{pdat.year}</Year><Month>{pdat.strftime('%b')}</Month><Day>{pdat.day}</Day>"
        f"</PubDate></JournalIssue><Title>Journal of Synthetic Trials</Title>"
        f"<ISOAbbreviation>J Synth Trials</ISOAbbreviation></Journal>"
        f"<ArticleTitle>{escape(title)}</ArticleTitle>"
        f"<Pagination><MedlinePgn>e{pmid}</MedlinePgn></Pagination>"
        f'<ELocationID EIdType="doi" ValidYN="Y">10.5555/synth.{pmid}</ELocationID>'
        f'<Abstract><AbstractText Label="METHODS" NlmCategory="METHODS">We randomised {n} '
        f"adults with {escape(condition)} to {escape(drug)} or placebo.</AbstractText>"
        f'<AbstractText Label="RESULTS" NlmCategory="RESULTS">Mean difference '
        f"{rng.uniform(-3, 1):.2f} (95% CI {rng.uniform(-5, -3):.2f} to {rng.uniform(1, 2):.2f})."
        f'</AbstractText></Abstract><AuthorList CompleteYN="Y">{authors}</AuthorList>'
        f"<Language>eng</Language><PublicationTypeList>"
        f'<PublicationType UI="D016428">Journal Article</PublicationType>'
        f'<PublicationType UI="D016449">Randomized Controlled Trial</PublicationType>'
        f"</PublicationTypeList></Article><MedlineJournalInfo><Country>England</Country>"
        f"<MedlineTA>J Synth Trials</MedlineTA><NlmUniqueID>999999999</NlmUniqueID>"
        f"<ISSNLinking>1234-5678</ISSNLinking></MedlineJournalInfo></MedlineCitation>"
        f"<PubmedData><History>{pubdate('received', received)}{pubdate('entrez', edat)}"
        f"{pubdate('pubmed', edat)}{pubdate('medline', edat)}</History>"
        f"<PublicationStatus>ppublish</PublicationStatus><ArticleIdList>"
        f'<ArticleId IdType="pubmed">{pmid}</ArticleId>'
        f'<ArticleId IdType="doi">10.5555/synth.{pmid}</ArticleId></ArticleIdList>'
        f"</PubmedData></PubmedArticle>"
    )


def make_articles(n: int, *, seed: int = 0, first_pmid: int = 91000001,
                  start: date = date(2010, 1, 1), end: date = date(2025, 12, 31)) -> list[str]:
    """Return ``n`` synthetic articles with entrez dates spread over [start, end]."""
    rng = random.Random(seed)
    span = (end - start).days
    out = []
    for i in range(n):
        edat = start + timedelta(days=rng.randint(0, span))
        pdat = min(end, edat + timedelta(days=rng.randint(0, 90)))
        out.append(make_article(first_pmid + i, edat=edat, pdat=pdat, rng=rng))
    return out


def window_counts(starts: Iterable[float], window: float = 1.0) -> int:
    """Most request starts that fall in any half-open window ``(t - window, t]``."""
    times = sorted(starts)
    best = 0
    for i, t in enumerate(times):
        best = max(best, i - bisect_right(times, t - window) + 1)
    return best


def _parse_day(text: str, end: bool) -> date:
    parts = [int(p) for p in re.split(r"[/-]", text.strip())]
    year, month = parts[0], parts[1] if len(parts) > 1 else (12 if end else 1)
    if len(parts) > 2:
        return date(year, month, parts[2])
    if not end:
        return date(year, month, 1)
    return (date(year + month // 12, month % 12 + 1, 1)) - timedelta(days=1)


class EutilsStandin:
    """NCBI E-utilities stand-in on ``http://127.0.0.1:<port>/entrez/eutils/``.

    Parameters
    ----------
    articles : Path, str, bytes or list of str, optional
        PubMed XML to serve; defaults to ``tests/fixtures/pubmed_standin.xml``.
    max_ids : int, default=9999
        Most ids esearch lists and history efetch serves, as PubMed does.
    rate_limit : bool, default=True
        Answer 429 beyond 3 requests per 1 s window (10 with an api_key).
    retry_after : str, optional
        ``Retry-After`` header sent with rate-limit 429s.
    today : date, optional
        Articles whose entrez date is after ``today`` are invisible (not yet in PubMed).
    snapshot_history : bool, default=True
        History efetch serves the ids frozen at esearch time; False re-runs the search on every
        efetch, so records added meanwhile shift the batches (duplicates and gaps).
    """

    def __init__(self, articles: Path | str | bytes | list[str] | None = None, *,
                 max_ids: int = 9999, rate_limit: bool = True, retry_after: str | None = None,
                 today: date | None = None, snapshot_history: bool = True) -> None:
        self.max_ids = max_ids
        self.rate_limit = rate_limit
        self.retry_after = retry_after
        self.today = today
        self.snapshot_history = snapshot_history
        self.requests: list[StandinRequest] = []
        self.faults: list[Fault] = []
        self._lock = threading.RLock()
        self._articles: dict[str, _Article] = {}
        self.pmc: dict[str, bytes] = {}  # PMC numeric id -> one JATS <article> element
        self._by: dict[str, list[tuple[int, int]]] = {"edat": [], "pdat": []}
        self._history: dict[tuple[str, str], tuple[tuple[str, ...], tuple[Any, ...]]] = {}
        self._webenvs = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self.add_articles(FIXTURE if articles is None else articles)

    # -- data -------------------------------------------------------------------------------
    def add_articles(self, articles: Path | str | bytes | list[str]) -> list[str]:
        """Add (or replace) articles at run time; returns their PMIDs."""
        items = articles if isinstance(articles, list) else [articles]
        # A later version of a PMID replaces an earlier one, within one call too (a daily
        # update file holds several versions of some records).
        latest = {a.pmid: a for item in items for a in parse_articles(item)}
        parsed = list(latest.values())
        with self._lock:
            for art in parsed:
                if art.pmid in self._articles:
                    self._remove(art.pmid)
                self._articles[art.pmid] = art
            # one sort per call (Timsort merges the new run in O(n)), not one insert per article
            self._by["edat"] += [(a.edat, int(a.pmid)) for a in parsed]
            self._by["pdat"] += [(a.pdat, int(a.pmid)) for a in parsed]
            self._by["edat"].sort()
            self._by["pdat"].sort()
        return [a.pmid for a in parsed]

    def _remove(self, pmid: str) -> None:
        art = self._articles.pop(pmid)
        self._by["edat"].remove((art.edat, int(pmid)))
        self._by["pdat"].remove((art.pdat, int(pmid)))

    @property
    def pmids(self) -> list[str]:
        """PMIDs of every visible article, sorted."""
        with self._lock:
            return sorted(p for p, a in self._articles.items() if self._visible(a))

    def _visible(self, art: _Article) -> bool:
        return self.today is None or art.edat <= self.today.toordinal()

    def search(self, mindate: str | None, maxdate: str | None, datetype: str = "pdat",
               sort: str | None = None) -> list[str]:
        """PMIDs in the window, in esearch's ``sort`` order.

        ``pub_date`` lists the newest publication date first; no sort or ``most recent`` the
        newest entrez date first (PubMed's default; it stands in for the create date PubMed
        uses); ties go to the higher PMID. ``relevance`` is a fixed order unrelated to dates.
        Any other value (``Author``, ``JournalName``, ...) is not modelled and gets the default.
        """
        with self._lock:
            index = self._by["edat" if datetype == "edat" else "pdat"]
            lo = _parse_day(mindate, False).toordinal() if mindate and maxdate else 0
            hi = _parse_day(maxdate, True).toordinal() if mindate and maxdate else 10**7
            found = [p for _, p in index[bisect_left(index, (lo, 0)):
                                         bisect_right(index, (hi, 10**12))]
                     if self._visible(self._articles[str(p)])]
            order = _SORTS.get((sort or "").strip().lower().replace("+", " "), "edat")
            if order == "relevance":
                found.sort(key=lambda p: hashlib.sha256(str(p).encode()).digest())
                return [str(p) for p in found]
            if order != ("edat" if datetype == "edat" else "pdat"):
                found.sort(key=lambda p: (getattr(self._articles[str(p)], order), p))
            return [str(p) for p in reversed(found)]

    # -- faults and records -----------------------------------------------------------------
    def fault(self, kind: str, *, times: int = 1,
              on: str | Callable[[StandinRequest], bool] | None = None, skip: int = 0,
              **options: Any) -> Fault:
        """Script a fault for the next ``times`` requests matching ``on``, after ``skip`` of them.

        ``kind`` is one of: ``status`` (``status=500``), ``429`` (``retry_after="1"``),
        ``reset`` (TCP RST, no answer), ``drop`` (close without answering), ``truncate`` (full
        Content-Length, half the body), ``cut`` (half the body as a complete response),
        ``short`` (valid efetch XML missing its last record), ``slow`` (``delay=`` seconds
        before answering) and ``grow`` (``articles=`` added when the request arrives, then a
        normal answer). ``on`` is ``"esearch"``, ``"efetch"`` or a predicate on
        :class:`StandinRequest`.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; use one of {', '.join(FAULT_KINDS)}")
        made = Fault(kind, times=times, on=on, skip=skip, **options)
        with self._lock:
            self.faults.append(made)
        return made

    def clear_faults(self) -> None:
        """Drop every scripted fault that has not fired yet."""
        with self._lock:
            self.faults.clear()

    def requests_for(self, tool: str | None = None) -> list[StandinRequest]:
        """Requests seen so far, optionally only ``esearch`` or ``efetch`` ones."""
        with self._lock:
            return [r for r in self.requests if tool is None or r.tool == tool]

    def max_in_window(self, window: float = 1.0) -> int:
        """Most request starts from one client (key or IP) in any ``window`` seconds."""
        with self._lock:
            clients = {r.client for r in self.requests}
            return max((window_counts([r.start for r in self.requests if r.client == c], window)
                        for c in clients), default=0)

    def _begin(self, method: str, tool: str, query: str, client_ip: str) -> StandinRequest:
        params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        client = f"key:{params['api_key']}" if params.get("api_key") else f"ip:{client_ip}"
        with self._lock:
            now = time.monotonic()
            req = StandinRequest(now, method, tool, query, params, client)
            recent = 0
            for r in reversed(self.requests):  # newest first, so this stays O(window)
                if r.start <= now - 1.0:
                    break
                recent += r.client == client
            self.requests.append(req)
            limit = 10 if params.get("api_key") else 3
            if self.rate_limit and recent + 1 > limit:
                req.rate_limited, req.window_count = True, recent + 1
                return req
            for fault in self.faults:
                if fault.times <= 0 or not fault.matches(req):
                    continue
                if fault.skip > 0:
                    fault.skip -= 1
                    continue
                fault.times -= 1
                fault.applied += 1
                req.fault, req.scripted = fault.kind, fault
                break
        return req

    # -- E-utilities ------------------------------------------------------------------------
    def _esearch(self, p: dict[str, str]) -> bytes:
        if p.get("db", "").lower() != "pubmed":
            return self._esearch_error(f"Invalid db name specified: {p.get('db', '')}")
        term = p.get("term", "").strip()
        if not term:
            return self._esearch_error("Empty term and query_key - nothing todo")
        found = self.search(p.get("mindate"), p.get("maxdate"), p.get("datetype", "pdat"),
                            p.get("sort"))
        retstart, retmax = int(p.get("retstart", 0)), int(p.get("retmax", 20))
        ids = found[retstart:max(retstart, min(retstart + retmax, self.max_ids))]
        history = ""
        if p.get("usehistory", "").lower() == "y":
            with self._lock:
                webenv = p.get("WebEnv") or f"MCID_standin{next(self._webenvs):08d}"
                key = str(1 + sum(1 for w, _ in self._history if w == webenv))
                window = (p.get("mindate"), p.get("maxdate"), p.get("datetype", "pdat"),
                          p.get("sort"))
                self._history[(webenv, key)] = (tuple(found), window)
            history = f"<QueryKey>{key}</QueryKey><WebEnv>{webenv}</WebEnv>"
        id_xml = "".join(f"<Id>{i}</Id>" for i in ids)
        translation = escape(f'"{term}"[All Fields]')
        return (f"{ESEARCH_HEAD}<eSearchResult><Count>{len(found)}</Count>"
                f"<RetMax>{len(ids)}</RetMax><RetStart>{retstart}</RetStart>{history}"
                f"<IdList>{id_xml}</IdList><TranslationSet/>"
                f"<QueryTranslation>{translation}</QueryTranslation></eSearchResult>\n"
                ).encode()

    @staticmethod
    def _esearch_error(message: str) -> bytes:
        return (f"{ESEARCH_HEAD}<eSearchResult><ERROR>{escape(message)}</ERROR>"
                f"</eSearchResult>\n").encode()

    def add_pmc(self, articles: dict[str, bytes | str]) -> None:
        """Serve these JATS articles from efetch db=pmc (keys: PMCID or its digits)."""
        for pmcid, xml in articles.items():
            body = xml.encode("utf-8") if isinstance(xml, str) else xml
            # A file's own prolog and DOCTYPE cannot sit inside <pmc-articleset>.
            start = body.find(b"<article")
            self.pmc[pmcid.upper().removeprefix("PMC")] = body[start:].strip()

    def _efetch_pmc(self, p: dict[str, str]) -> bytes:
        wanted = [i.strip().upper().removeprefix("PMC") for i in p.get("id", "").split(",")
                  if i.strip()]
        found = [self.pmc[i] for i in wanted if i in self.pmc]
        return (b'<?xml version="1.0" ?>\n<!DOCTYPE pmc-articleset PUBLIC "-//NLM//DTD '
                b'ARTICLE SET 2.0//EN" "https://dtd.nlm.nih.gov/ncbi/pmc/articleset/'
                b'nlm-articleset-2.0.dtd">\n<pmc-articleset>' + b"\n".join(found)
                + b"</pmc-articleset>\n")

    def _efetch(self, p: dict[str, str]) -> bytes | list[bytes]:
        """The records to send, or a whole error document as bytes."""
        if p.get("db", "").lower() == "pmc":
            return self._efetch_pmc(p)
        if p.get("db", "").lower() != "pubmed":
            raise _Reply(400, f'{{"error":"Invalid db name specified: {p.get("db", "")}"}}')
        with self._lock:
            if p.get("id"):
                wanted = dict.fromkeys(i.strip() for i in p["id"].split(",") if i.strip())
            else:
                stored = self._history.get((p.get("WebEnv", ""), p.get("query_key", "")))
                if stored is None:
                    return (f"{EFETCH_ERROR_HEAD}<eFetchResult><ERROR>Cannot retrieve history "
                            f"data. query_key: {escape(p.get('query_key', ''))}</ERROR>"
                            f"</eFetchResult>\n").encode()
                found = stored[0] if self.snapshot_history else self.search(*stored[1])
                retstart, retmax = int(p.get("retstart", 0)), int(p.get("retmax", 20))
                wanted = dict.fromkeys(found[retstart:min(retstart + retmax, self.max_ids)])
            return [self._articles[i].xml for i in wanted
                    if i in self._articles and self._visible(self._articles[i])]

    # -- server -----------------------------------------------------------------------------
    def __enter__(self) -> EutilsStandin:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.standin = self  # type: ignore[attr-defined]
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def port(self) -> int:
        assert self._server is not None, "use the stand-in as a context manager"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """Base URL to give the client, e.g. ``http://127.0.0.1:PORT/entrez/eutils/``."""
        return f"http://127.0.0.1:{self.port}{PREFIX}"


class _Reply(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(status)
        self.status, self.body = status, body


class _Handler(BaseHTTPRequestHandler):
    server_version = "eutils-standin/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest output clean; requests are recorded on the stand-in instead

    def do_GET(self) -> None:
        self._serve("GET", urlsplit(self.path).query)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8") if length else ""
        query = urlsplit(self.path).query
        self._serve("POST", "&".join(q for q in (query, body) if q))

    def finish(self) -> None:
        # the client hung up first (timeouts) or we reset the socket on purpose
        with contextlib.suppress(OSError):
            super().finish()

    def _serve(self, method: str, query: str) -> None:
        standin: EutilsStandin = self.server.standin  # type: ignore[attr-defined]
        path = urlsplit(self.path).path
        tool = path[len(PREFIX):].removesuffix(".fcgi") if path.startswith(PREFIX) else path
        req = standin._begin(method, tool, query, self.client_address[0])
        try:
            self._answer(standin, req)
        except OSError:
            pass  # client gone (timed out on a slow answer)
        finally:
            req.end = time.monotonic()

    def _answer(self, standin: EutilsStandin, req: StandinRequest) -> None:
        if req.rate_limited:
            body = json.dumps({"error": "API rate limit exceeded",
                               "api-key": req.params.get("api_key") or req.client[3:],
                               "count": str(req.window_count),
                               "limit": "10" if req.params.get("api_key") else "3"})
            headers = {"Retry-After": standin.retry_after} if standin.retry_after else {}
            return self._send(req, 429, body.encode(), "application/json", headers)
        fault = req.scripted
        kind = fault.kind if fault else None
        if kind == "status":
            body = fault.body if fault.body is not None else f'{{"error":"HTTP {fault.status}"}}'
            return self._send(req, fault.status, body.encode(), "application/json")
        if kind == "429":
            body = json.dumps({"error": "API rate limit exceeded",
                               "api-key": req.params.get("api_key") or req.client[3:],
                               "count": "11", "limit": "10"})
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            return self._send(req, 429, body.encode(), "application/json", headers)
        if kind == "reset":
            # SO_LINGER 0 makes close() send RST, like a dropped NCBI front end
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return None
        if kind == "drop":
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return None
        if kind == "slow":
            time.sleep(fault.delay)
        if kind == "grow":
            standin.add_articles(fault.articles)
        if req.tool not in ("esearch", "efetch"):
            return self._send(req, 404, b"Not Found", "text/plain")
        try:
            if req.tool == "esearch":
                body = standin._esearch(req.params)
            else:
                found = standin._efetch(req.params)
                if isinstance(found, bytes):
                    body = found
                else:
                    if kind == "short" and found:
                        found = found[:-1]
                    body = (EFETCH_HEAD.encode("utf-8") + b"<PubmedArticleSet>\n"
                            + b"\n".join(found) + b"\n</PubmedArticleSet>\n")
        except _Reply as reply:
            return self._send(req, reply.status, reply.body.encode(), "application/json")
        if kind == "cut":
            body = body[: len(body) // 2]
        if kind == "truncate":
            self._send(req, 200, body, "text/xml; charset=UTF-8", length=len(body),
                       limit=len(body) // 2)
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return None
        return self._send(req, 200, body, "text/xml; charset=UTF-8")

    def _send(self, req: StandinRequest, status: int, body: bytes, ctype: str,
              headers: dict[str, str] | None = None, *, length: int | None = None,
              limit: int | None = None) -> None:
        req.status = status
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body if limit is None else body[:limit])
        self.wfile.flush()
