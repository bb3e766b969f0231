"""The Entrez client: NCBI E-utilities through Bio.Entrez, kept to NCBI's etiquette.

Every request goes through :func:`request`: one process-wide throttle (3 request starts/s, or
10/s with an API key), Bio.Entrez with ``max_tries=1`` so that our own retry loop (backoff with
seeded jitter, ``Retry-After`` honoured) decides what is retried, and a scoped ``urllib`` opener
that points NCBI's URL at ``base_url`` (a mirror or the test stand-in). Bodies are parsed with
defusedxml; Bio.Entrez only ever reads one offline.

Settings (environment, read by :meth:`EntrezConfig.from_env`):

- ``NCBI_EMAIL`` -- contact address sent with every request (required).
- ``NCBI_API_KEY`` -- NCBI API key (optional; raises the limit from 3 to 10 requests/s).
- ``REVIEWPIPE_EUTILS_URL`` -- E-utilities base URL
  (default ``https://eutils.ncbi.nlm.nih.gov/entrez/eutils/``).

The API key is sent to NCBI and nowhere else: not in logs, errors, manifests or state files.

The search is in :mod:`reviewpipe.entrez_search`, fetching by id in :mod:`reviewpipe.entrez_fetch`
and the raw-body archive in :mod:`reviewpipe.entrez_archive`.
"""

from __future__ import annotations

import http.client
import io
import ipaddress
import logging
import os
import random
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import defusedxml.ElementTree as SafeET
from Bio import Entrez
from Bio.Entrez.Parser import DataHandler
from defusedxml import DefusedXmlException

from reviewpipe.errors import EntrezError

__all__ = ["NCBI_BASE_URL", "EntrezConfig"]

NCBI_BASE_URL = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/"
log = logging.getLogger("reviewpipe.entrez")

# Seconds between request starts. Biopython found 1/3 s still tripped NCBI's limit and uses
# 0.37; with a key it uses exactly 0.1, which leaves no room for jitter, so we add 10 ms.
INTERVAL_NO_KEY = 0.37
INTERVAL_KEY = 0.11
RETRY_AFTER_MAX = 300.0


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

    A preprocessor (``<scheme>request``) runs before HTTP(S)Handler builds the Host header,
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


class BadBody(Exception):
    """A 200 answer whose body cannot be used (truncated, unparsable, wrong record count)."""


class Session:
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


def request(session: Session, tool: str, params: dict[str, Any],
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
            except BadBody as exc:
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


def safe_root(body: bytes) -> Any:
    """Parse ``body`` with defusedxml (entities refused); :class:`BadBody` if that fails."""
    try:
        return SafeET.fromstring(body)
    except (SafeET.ParseError, DefusedXmlException) as exc:
        raise BadBody(f"not well-formed safe XML ({exc})") from None


def _dtd_is_local(body: bytes) -> bool:
    found = _DOCTYPE.search(body[:2000])
    if not found:
        return False
    name = os.path.basename(found.group(1).decode("ascii", "replace"))
    dirs = [DataHandler.global_dtd_dir, DataHandler.local_dtd_dir]
    return any(d and os.path.isfile(os.path.join(d, name)) for d in dirs)


def parse_esearch(body: bytes, retmax: int) -> dict[str, Any]:
    """Count, ids, WebEnv, query key and translation of an eSearchResult, or :class:`BadBody`."""
    root = safe_root(body)  # defusedxml first: refuses entities before Bio.Entrez sees them
    if root.tag != "eSearchResult":
        raise BadBody(f"root is <{root.tag}>, not <eSearchResult>")
    if root.find("ERROR") is not None:
        raise BadBody(f"NCBI error: {root.findtext('ERROR')}")
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
        raise BadBody("eSearchResult has no numeric Count") from None
    if len(out["ids"]) != min(out["count"], retmax):
        raise BadBody(f"IdList holds {len(out['ids'])} ids for Count {out['count']}")
    return out
