"""The live PubMed client: NCBI E-utilities through Bio.Entrez, kept to NCBI's etiquette.

Every request goes through :func:`_request`: one process-wide throttle (3 request starts/s, or
10/s with an API key), Bio.Entrez with ``max_tries=1`` so that our own retry loop (backoff with
seeded jitter, ``Retry-After`` honoured) decides what is retried, and a scoped ``urllib`` opener
that points NCBI's URL at ``base_url`` (a mirror or the test stand-in). Every accepted response
body is archived as received, with its SHA-256, under ``raw_dir``; ``fetch-state.json`` there
lets an interrupted search resume without losing or doubling a record.

Settings (environment, read by :meth:`EntrezConfig.from_env`):

- ``NCBI_EMAIL`` -- contact address sent with every request (required).
- ``NCBI_API_KEY`` -- NCBI API key (optional; raises the limit from 3 to 10 requests/s).
- ``REVIEWPIPE_EUTILS_URL`` -- E-utilities base URL
  (default ``https://eutils.ncbi.nlm.nih.gov/entrez/eutils/``).

The API key is sent to NCBI and nowhere else: not in logs, errors, manifests or state files.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import ipaddress
import json
import logging
import os
import random
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import defusedxml.ElementTree as SafeET
from Bio import Entrez
from Bio.Entrez.Parser import DataHandler
from defusedxml import DefusedXmlException

from reviewpipe.errors import EntrezError

__all__ = ["NCBI_BASE_URL", "EntrezConfig", "PubmedFetch", "PubmedSearch", "fetch_pubmed_ids",
           "search_pubmed"]

NCBI_BASE_URL = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/"
STATE_FILE = "fetch-state.json"
log = logging.getLogger("reviewpipe.entrez")

# Seconds between request starts. Biopython found 1/3 s still tripped NCBI's limit and uses
# 0.37; with a key it uses exactly 0.1, which leaves no room for jitter, so we add 10 ms.
INTERVAL_NO_KEY = 0.37
INTERVAL_KEY = 0.11
RETRY_AFTER_MAX = 300.0
DATETYPES = ("edat", "pdat", "mdat")
ProgressHook = Callable[[int, int], None]


@dataclass
class EntrezConfig:
    """How to talk to NCBI.

    Parameters
    ----------
    email : str
        Contact address NCBI asks every client to send.
    api_key : str, optional
        NCBI API key; never logged or written anywhere.
    tool : str, default="reviewpipe"
    base_url : str, default=NCBI_BASE_URL
        E-utilities root; requests to NCBI's URL are rewritten onto it.
    batch_size : int, default=200
        Records per efetch.
    max_tries : int, default=6
        Tries per request before :class:`EntrezError`.
    backoff : float, default=1.0
        First retry delay in seconds; doubles per try, with jitter.
    backoff_max : float, default=60.0
        Longest backoff between tries; a ``Retry-After`` is honoured up to 300 s.
    timeout : float, default=60.0
        Socket timeout per request, in seconds.
    max_ids : int, default=9999
        Most ids one esearch lists; a window with more hits is walked newest first, each
        search ending on the day of the last record the previous one handed over (halved by
        date where that cannot be used).
    seed : int, default=0
        Seed of the jitter, so retry timings are reproducible.
    """

    email: str
    api_key: str | None = field(default=None, repr=False)
    tool: str = "reviewpipe"
    base_url: str = NCBI_BASE_URL
    batch_size: int = 200
    max_tries: int = 6
    backoff: float = 1.0
    backoff_max: float = 60.0
    timeout: float = 60.0
    max_ids: int = 9999
    seed: int = 0

    def __post_init__(self) -> None:
        if not (self.email or "").strip():
            raise EntrezError(_NO_EMAIL)
        if not self.base_url.endswith("/"):
            self.base_url += "/"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, **overrides: Any) -> EntrezConfig:
        """Read ``NCBI_EMAIL``, ``NCBI_API_KEY`` and ``REVIEWPIPE_EUTILS_URL``.

        Raises
        ------
        EntrezError
            If ``NCBI_EMAIL`` is unset or empty.
        """
        email = (environ.get("NCBI_EMAIL") or "").strip()
        if not email:
            raise EntrezError(_NO_EMAIL)
        values: dict[str, Any] = {"email": email,
                                  "api_key": (environ.get("NCBI_API_KEY") or "").strip() or None}
        if (environ.get("REVIEWPIPE_EUTILS_URL") or "").strip():
            values["base_url"] = environ["REVIEWPIPE_EUTILS_URL"].strip()
        return cls(**{**values, **overrides})


_NO_EMAIL = ("NCBI_EMAIL is not set: NCBI requires a contact email with every E-utilities "
             "request. Set NCBI_EMAIL=you@example.org to search PubMed live.")


class _Archived:
    """What a search and a fetch share: archived raw files under ``raw_dir``."""

    raw_dir: Path | None
    raw_files: list[dict[str, Any]]

    def to_manifest(self) -> dict[str, Any]:
        """Return the result as plain JSON types (``raw_dir`` left out: paths are relative)."""
        out = asdict(self)  # type: ignore[call-overload]
        out.pop("raw_dir")
        return out

    def efetch_files(self) -> list[Path]:
        """Absolute paths of the efetch bodies that hold the records."""
        return _efetch_paths(self.raw_dir, self.raw_files)


@dataclass
class PubmedSearch(_Archived):
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


@dataclass
class PubmedFetch(_Archived):
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


def _efetch_paths(raw_dir: Path | None, files: list[dict[str, Any]]) -> list[Path]:
    base = raw_dir or Path(".")
    return [base / f["path"] for f in files if f["kind"].startswith("efetch") and f["pmids"]]


# ---------------------------------------------------------------------------------------------
# The one choke point: throttle, scoped Bio.Entrez settings and opener, retries.


class _Throttle:
    """Spaces request starts process-wide; hold :meth:`slot` while the request is opened."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.clock, self.sleep = clock, sleep
        self.lock = threading.RLock()
        self.last: float | None = None

    @contextmanager
    def slot(self, interval: float) -> Iterator[float]:
        with self.lock:
            now = self.clock()
            if self.last is not None and now < self.last + interval:
                self.sleep(self.last + interval - now)
                now = max(self.clock(), self.last + interval)
            self.last = now
            yield now


_THROTTLE = _Throttle()


class _EutilsRoute(urllib.request.BaseHandler):
    """Rewrites requests for NCBI's E-utilities onto ``base_url`` and sets our timeout.

    A preprocessor (``<scheme>_request``) runs before HTTP(S)Handler builds the Host header,
    and the opener picks the http/https handler from the rewritten URL afterwards.
    """

    handler_order = 100

    def __init__(self, base_url: str, timeout: float) -> None:
        self.base_url, self.timeout = base_url, timeout

    def _route(self, req: urllib.request.Request) -> urllib.request.Request:
        if req.full_url.startswith(NCBI_BASE_URL) and self.base_url != NCBI_BASE_URL:
            req.full_url = self.base_url + req.full_url[len(NCBI_BASE_URL):]
        req.timeout = self.timeout
        return req

    http_request = https_request = _route


class _Offline(urllib.request.BaseHandler):
    """Refuses every request: Bio.Entrez's parser must never fetch a DTD over the network."""

    handler_order = 1

    def default_open(self, req: urllib.request.Request) -> None:
        raise urllib.error.URLError("network disabled while parsing E-utilities XML")


def _is_loopback(url: str) -> bool:
    try:
        return ipaddress.ip_address(urlsplit(url).hostname or "").is_loopback
    except ValueError:
        return urlsplit(url).hostname == "localhost"


@contextmanager
def _scoped_opener(*handlers: urllib.request.BaseHandler) -> Iterator[None]:
    previous = urllib.request._opener  # no public getter; restored so other code is unaffected
    urllib.request.install_opener(urllib.request.build_opener(*handlers))
    try:
        yield
    finally:
        urllib.request.install_opener(previous)


@contextmanager
def _entrez_scope(config: EntrezConfig) -> Iterator[None]:
    """Bio.Entrez globals and our opener, set for one request and restored after it."""
    saved = (Entrez.email, Entrez.tool, Entrez.api_key, Entrez.max_tries)
    handlers: list[urllib.request.BaseHandler] = [_EutilsRoute(config.base_url, config.timeout)]
    if _is_loopback(config.base_url):
        handlers.append(urllib.request.ProxyHandler({}))  # a local stand-in is never proxied
    Entrez.email, Entrez.tool, Entrez.api_key = config.email, config.tool, config.api_key
    Entrez.max_tries = 1  # our loop retries, with backoff on every kind of failure
    try:
        with _scoped_opener(*handlers):
            yield
    finally:
        Entrez.email, Entrez.tool, Entrez.api_key, Entrez.max_tries = saved


class _BadBody(Exception):
    """A 200 answer whose body cannot be used (truncated, unparsable, wrong record count)."""


class _Session:
    """Counters, jitter source and the redaction rule for one public call."""

    def __init__(self, config: EntrezConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.requests = 0
        self.retries = 0
        self.translation: str | None = None  # of the run's first (whole-window) esearch

    def redact(self, text: str) -> str:
        key = self.config.api_key
        return text.replace(key, "***") if key else text

    def delay(self, attempt: int, retry_after: float | None) -> float:
        base = min(self.config.backoff_max, self.config.backoff * 2 ** (attempt - 1))
        wait = base / 2 + self.rng.uniform(0, base / 2)
        if retry_after is not None:  # the server's word beats our cap, up to a sane ceiling
            wait = max(wait, min(retry_after, RETRY_AFTER_MAX))
        return wait


def _describe(tool: str, params: Mapping[str, Any]) -> str:
    shown = []
    for key, value in params.items():
        if key == "id":
            ids = value.split(",") if isinstance(value, str) else [str(v) for v in value]
            value = f"<{len(ids)} ids {ids[0]}..{ids[-1]}>" if len(ids) > 3 else ",".join(ids)
        shown.append(f"{key}={value}")
    return f"{tool} {' '.join(shown)}"


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
        except (TypeError, ValueError):
            return None


def _request(session: _Session, tool: str, params: dict[str, Any],
             check: Callable[[bytes, bool], Any]) -> tuple[bytes, Any]:
    """Send one E-utilities request until ``check`` accepts its body; return (body, checked)."""
    config = session.config
    call = {"esearch": Entrez.esearch, "efetch": Entrez.efetch}[tool]
    what = _describe(tool, params)
    interval = INTERVAL_KEY if config.api_key else INTERVAL_NO_KEY
    problem = ""
    for attempt in range(1, config.max_tries + 1):
        retry_after = None
        session.requests += 1
        log.debug("request %s (try %d)", what, attempt)
        try:
            with _THROTTLE.slot(interval), _entrez_scope(config):
                handle = call(**dict(params))
            try:
                body = getattr(handle, "buffer", handle).read()  # bytes exactly as received
            finally:
                handle.close()
        except urllib.error.HTTPError as exc:
            retry_after = _retry_after(exc.headers)
            problem = f"HTTP {exc.code} {exc.reason}"
            if 400 <= exc.code < 500 and exc.code != 429:
                detail = session.redact(_read_quietly(exc))
                raise EntrezError(f"{what}: NCBI answered {problem}; not retried. "
                                  f"{detail}".strip()) from None
            exc.close()
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            problem = f"{type(exc).__name__}: {session.redact(str(reason))}"
        else:
            try:
                return body, check(body, attempt == config.max_tries)
            except _BadBody as exc:
                problem = f"unusable body ({len(body)} bytes): {session.redact(str(exc))}"
        if attempt == config.max_tries:
            break
        wait = session.delay(attempt, retry_after)
        session.retries += 1
        log.warning("%s: %s; retrying in %.2f s (try %d of %d)", what, problem, wait,
                    attempt + 1, config.max_tries)
        time.sleep(wait)
    raise EntrezError(f"{what}: gave up after {config.max_tries} tries; last problem: {problem}. "
                      "Check the network or NCBI's status, then rerun to resume.")


def _read_quietly(exc: urllib.error.HTTPError) -> str:
    try:
        return exc.read(300).decode("utf-8", "replace").strip()
    except (OSError, http.client.HTTPException):
        return ""
    finally:
        exc.close()


# ---------------------------------------------------------------------------------------------
# Parsing and checking bodies.

_DOCTYPE = re.compile(rb'<!DOCTYPE\s+\w+\s+(?:PUBLIC\s+"[^"]*"|SYSTEM)\s+"([^"]+)"\s*>')


def _safe_root(body: bytes) -> Any:
    try:
        return SafeET.fromstring(body)
    except (SafeET.ParseError, DefusedXmlException) as exc:
        raise _BadBody(f"not well-formed safe XML ({exc})") from None


def _dtd_is_local(body: bytes) -> bool:
    found = _DOCTYPE.search(body[:2000])
    if not found:
        return False
    name = os.path.basename(found.group(1).decode("ascii", "replace"))
    dirs = [DataHandler.global_dtd_dir, DataHandler.local_dtd_dir]
    return any(d and os.path.isfile(os.path.join(d, name)) for d in dirs)


def _parse_esearch(body: bytes, retmax: int) -> dict[str, Any]:
    root = _safe_root(body)  # defusedxml first: refuses entities before Bio.Entrez sees them
    if root.tag != "eSearchResult":
        raise _BadBody(f"root is <{root.tag}>, not <eSearchResult>")
    if root.find("ERROR") is not None:
        raise _BadBody(f"NCBI error: {root.findtext('ERROR')}")
    out = {"count": root.findtext("Count"), "ids": [i.text for i in root.iterfind("IdList/Id")],
           "webenv": root.findtext("WebEnv"), "query_key": root.findtext("QueryKey"),
           "translation": root.findtext("QueryTranslation")}
    if _dtd_is_local(body):
        try:
            with _THROTTLE.lock, _scoped_opener(_Offline()):
                rec = Entrez.read(io.BytesIO(body), ignore_errors=True)
            out = {"count": rec["Count"], "ids": [str(i) for i in rec["IdList"]],
                   "webenv": rec.get("WebEnv"), "query_key": rec.get("QueryKey"),
                   "translation": rec.get("QueryTranslation")}
        except (RuntimeError, ValueError, KeyError) as exc:
            log.debug("Bio.Entrez could not read an eSearchResult offline (%s); "
                      "using the defusedxml parse", exc)
    try:
        out["count"] = int(out["count"])
    except (TypeError, ValueError):
        raise _BadBody("eSearchResult has no numeric Count") from None
    if len(out["ids"]) != min(out["count"], retmax):
        raise _BadBody(f"IdList holds {len(out['ids'])} ids for Count {out['count']}")
    return out


def _efetch_pmids(body: bytes) -> list[str]:
    return _pmids_in(_safe_root(body))


def _pmids_in(root: Any) -> list[str]:
    if root.tag != "PubmedArticleSet":
        detail = root.findtext("ERROR") or f"root is <{root.tag}>"
        raise _BadBody(f"not a PubmedArticleSet: {detail}")
    pmids: list[str] = []
    for child in root:
        if child.tag == "PubmedArticle":
            pmids.append((child.findtext("MedlineCitation/PMID") or "").strip())
        elif child.tag == "PubmedBookArticle":
            pmids.append((child.findtext("BookDocument/PMID") or "").strip())
        elif child.tag == "DeleteCitation":
            pmids.extend((p.text or "").strip() for p in child.iterfind("PMID"))
    if "" in pmids:
        raise _BadBody("a record has no PMID")
    if len(set(pmids)) != len(pmids):
        raise _BadBody("a PMID occurs twice in one batch")
    return pmids


def _check_history(expected: int, days: tuple[str, dict[str, date | None]] | None = None
                   ) -> Callable[[bytes, bool], list[str]]:
    """Check a history efetch; with ``days=(datetype, out)``, note each record's day in out."""
    def check(body: bytes, last: bool) -> list[str]:
        root = _safe_root(body)
        pmids = _pmids_in(root)
        # A short batch is usually NCBI under load, so retry; if it stays short (a record
        # deleted since the esearch), keep it: the final check fetches any gap by id.
        if len(pmids) > expected or (len(pmids) < expected and not last):
            raise _BadBody(f"{len(pmids)} records where {expected} were due")
        if days is not None:  # from the parse done anyway: a 200-record body takes ~80 ms
            days[1].update(_record_days(root, days[0]))
        return pmids
    return check


def _check_ids(wanted: list[str], allow_missing: bool) -> Callable[[bytes, bool], list[str]]:
    def check(body: bytes, last: bool) -> list[str]:
        pmids = _efetch_pmids(body)
        extra = set(pmids) - set(wanted)
        if extra:
            raise _BadBody(f"{len(extra)} PMIDs that were not asked for, e.g. {min(extra)}")
        if len(pmids) < len(wanted) and not (last and allow_missing):
            raise _BadBody(f"{len(pmids)} records for {len(wanted)} PMIDs")
        return pmids
    return check


# ---------------------------------------------------------------------------------------------
# The archive: raw bodies written once, with fetch-state.json as the resume ledger.


def _utcnow() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Archive:
    """Raw bodies under ``raw_dir`` and their ledger; entries whose file fails its hash drop out."""

    def __init__(self, raw_dir: Path, operation: dict[str, Any]) -> None:
        self.dir = Path(raw_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.operation = operation
        self.files: list[dict[str, Any]] = []
        state_path = self.dir / STATE_FILE
        if not state_path.exists():
            return
        try:
            state = json.loads(state_path.read_text(encoding="utf-8"))
            previous, files = state["operation"], list(state["files"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("%s is unreadable (%s); starting a fresh ledger", state_path, exc)
            return
        if previous != operation:
            raise EntrezError(f"{self.dir}: holds a different fetch ({previous}); use an empty "
                              "raw directory for this search.")
        for entry in files:
            path = self.dir / entry.get("path", "")
            try:
                ok = path.is_file() and _sha256(path.read_bytes()) == entry.get("sha256")
            except OSError:
                ok = False
            if ok:
                self.files.append(entry)
            else:
                log.warning("%s: missing or fails its sha256; it will be fetched again", path)

    def held(self) -> dict[str, str]:
        """PMID -> the first efetch file in the ledger holding it."""
        out: dict[str, str] = {}
        for entry in self.files:
            if entry["kind"].startswith("efetch"):
                for pmid in entry["pmids"]:
                    out.setdefault(pmid, entry["path"])
        return out

    def save(self, stem: str, body: bytes, kind: str, params: dict[str, Any],
             pmids: list[str], **extra: Any) -> dict[str, Any]:
        taken = {f["path"] for f in self.files}
        name, n = f"{stem}.xml", 1
        while name in taken or (self.dir / name).exists():
            n += 1
            name = f"{stem}-{n}.xml"
        _write_atomic(self.dir / name, body)
        entry = {"path": name, "sha256": _sha256(body), "kind": kind,
                 "params": {k: v if isinstance(v, str | int) else ",".join(map(str, v))
                            for k, v in params.items()},
                 "n_records": len(pmids), "pmids": pmids, "saved_at": _utcnow(), **extra}
        self.files.append(entry)
        state = {"format": "reviewpipe-fetch-state/1", "operation": self.operation,
                 "files": self.files}
        _write_atomic(self.dir / STATE_FILE, json.dumps(state, indent=1).encode("utf-8"))
        return entry

    def manifest_files(self, result: set[str]) -> list[dict[str, Any]]:
        """Ledger entries for the manifest; ``pmids`` = the records each file contributes."""
        owner = {p: f for p, f in self.held().items() if p in result}
        out = []
        for entry in self.files:
            mine = sorted((p for p in entry["pmids"] if owner.get(p) == entry["path"]), key=int) \
                if entry["kind"].startswith("efetch") else []
            out.append({"path": entry["path"], "sha256": entry["sha256"], "kind": entry["kind"],
                        "n_records": entry["n_records"], "pmids": mine})
        return out


# ---------------------------------------------------------------------------------------------
# Searching.


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


def _esearch(session: _Session, archive: _Archive, query: str, lo: date, hi: date,
             datetype: str, *, history: bool, kind: str, sort: str | None = None) -> _Part:
    retmax = session.config.max_ids
    params = {"db": "pubmed", "term": query, "mindate": f"{lo:%Y/%m/%d}",
              "maxdate": f"{hi:%Y/%m/%d}", "datetype": datetype, "retmax": retmax}
    if sort:
        params["sort"] = sort
    if history:
        params["usehistory"] = "y"
    body, found = _request(session, "esearch", params, lambda b, _: _parse_esearch(b, retmax))
    part = _Part(lo, hi, found["count"], found["ids"], found["webenv"], found["query_key"],
                 found["translation"])
    archive.save(f"{kind}-{part.label}", body, kind, params, [], count=part.count,
                 ids_listed=len(part.ids), translation=part.translation)
    if session.translation is None:
        session.translation = part.translation
    log.info("%s %s..%s: %d records", kind, lo, hi, part.count)
    return part


def _fetch_ids(session: _Session, archive: _Archive, pmids: list[str], held: dict[str, str], *,
               allow_missing: bool, progress: Callable[[], None]) -> list[str]:
    """Efetch ``pmids`` by id in batches (Bio.Entrez POSTs from 200 ids); returns missing ones."""
    missing: list[str] = []
    size = session.config.batch_size
    for start in range(0, len(pmids), size):
        batch = pmids[start:start + size]
        params = {"db": "pubmed", "retmode": "xml", "id": batch}
        body, got = _request(session, "efetch", params, _check_ids(batch, allow_missing))
        entry = archive.save(f"efetch-ids-{batch[0]}", body, "efetch-ids", params, got)
        for pmid in got:
            held.setdefault(pmid, entry["path"])
        missing += [p for p in batch if p not in set(got)]
        progress()
    return missing


class _Search:
    """One :func:`search_pubmed` call: its requests, archive, records held and progress."""

    def __init__(self, session: _Session, archive: _Archive, query: str, datetype: str, *,
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
                root = _safe_root((self.archive.dir / self.held[pmid]).read_bytes())
                self.days.update(_record_days(root, self.datetype))
            except (OSError, _BadBody):
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
            body, got = _request(self.session, "efetch", params,
                                 _check_history(due, (self.datetype, self.days)))
            entry = self.archive.save(f"efetch-{part.label}-{retstart}", body, "efetch-history",
                                      params, got, part=part.label)
            for pmid in got:
                self.held.setdefault(pmid, entry["path"])
            self.tick()

    def fetch_ids(self, pmids: list[str]) -> None:
        self.by_id += len(pmids)
        _fetch_ids(self.session, self.archive, pmids, self.held, allow_missing=False,
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
    session = _Session(config)
    archive = _Archive(Path(raw_dir), {"op": "search", "query": query, "mindate": f"{lo}",
                                       "maxdate": f"{hi}", "datetype": datetype})
    reusable = archive.held()
    resumed = bool(reusable)
    searched_at = _utcnow()
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
    digest = _sha256(",".join(wanted).encode())
    session = _Session(config)
    archive = _Archive(Path(raw_dir), {"op": "ids", "n": len(wanted), "pmids_sha256": digest})
    held = {p: f for p, f in archive.held().items() if p in set(wanted)}

    def tick() -> None:
        if progress is not None:
            progress(len(held), len(wanted))

    lacking = [p for p in wanted if p not in held]
    missing = _fetch_ids(session, archive, lacking, held, allow_missing=True, progress=tick)
    if missing:
        log.info("PubMed returned no record for %d PMIDs, e.g. %s", len(missing), missing[:5])
    return PubmedFetch(requested=wanted, pmids=sorted(held, key=int), missing=missing,
                       fetched_at=_utcnow(), raw_files=archive.manifest_files(set(held)),
                       requests_made=session.requests, retries=session.retries,
                       raw_dir=Path(raw_dir))


# ---------------------------------------------------------------------------------------------
# PMC full text.

PMC_BATCH = 20  # full texts are large: fewer per request than PubMed records


def fetch_pmc_articles(pmcids: Iterable[str], *, out_dir: Path, raw_dir: Path,
                       config: EntrezConfig) -> dict[str, Path]:
    """Efetch PMC full texts (JATS) and write each to ``out_dir/<PMCID>.xml``.

    Every response body is archived under ``raw_dir`` as received; articles already in
    ``out_dir`` are not fetched again, so a killed run resumes. PMCIDs PMC does not return
    (not open access, withdrawn) are simply absent from the result.

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
    session = _Session(config)
    lacking = [p for p in wanted if p not in found]
    for start in range(0, len(lacking), PMC_BATCH):
        batch = lacking[start:start + PMC_BATCH]

        def check(body: bytes, last: bool) -> dict[str, Any]:
            root = _safe_root(body)
            if root.tag != "pmc-articleset":
                raise _BadBody(f"root element {root.tag}, not pmc-articleset")
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
        body, articles = _request(session, "efetch", params, check)
        _write_atomic(raw_dir / f"efetch-pmc-{batch[0]}.xml", body)
        for pmcid, article in articles.items():
            if pmcid in batch:
                path = out_dir / f"{pmcid}.xml"
                _write_atomic(path, ElementTree.tostring(article, encoding="utf-8"))
                found[pmcid] = path
    return dict(sorted(found.items()))
