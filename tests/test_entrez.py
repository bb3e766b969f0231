"""The live PubMed client against the local E-utilities stand-in, over real HTTP."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import date, timedelta
from pathlib import Path

import defusedxml.ElementTree as ET
import pytest
from Bio import Entrez

from eutils_standin import EutilsStandin, make_article, make_articles, window_counts
from reviewpipe.entrez import BadBody, EntrezConfig, _Throttle, parse_esearch
from reviewpipe.entrez_fetch import _efetch_pmids, fetch_pubmed_ids
from reviewpipe.entrez_search import PubmedSearch, search_pubmed
from reviewpipe.errors import EntrezError

KEY = "k3y-DO-NOT-LEAK-0123456789abcdef"
EMAIL = "tester@example.org"


def make_config(s: EutilsStandin, **overrides: object) -> EntrezConfig:
    values: dict = {"email": EMAIL, "api_key": KEY, "base_url": s.base_url, "batch_size": 10,
                    "backoff": 0.01, "backoff_max": 0.2, "timeout": 5.0}
    return EntrezConfig(**{**values, **overrides})


def search(s: EutilsStandin, raw: Path, config: EntrezConfig | None = None,
           **overrides: object) -> PubmedSearch:
    return search_pubmed("trial", mindate="2010", maxdate="2025", datetype="edat", raw_dir=raw,
                         config=config or make_config(s, **overrides))


def articles_in(path: Path) -> dict[str, bytes]:
    root = ET.fromstring(path.read_bytes())
    return {a.findtext("MedlineCitation/PMID"): ET.tostring(a) for a in root}


def records(result: PubmedSearch) -> dict[str, bytes]:
    """PMID -> article XML, taking each PMID from the one file the manifest assigns it to."""
    out: dict[str, bytes] = {}
    for entry in result.raw_files:
        path = result.raw_dir / entry["path"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
        if not entry["kind"].startswith("efetch"):
            continue
        held = articles_in(path)
        assert len(held) == entry["n_records"]
        for pmid in entry["pmids"]:
            assert pmid not in out, f"PMID {pmid} assigned twice"
            out[pmid] = held[pmid]
    return out


def assert_exactly_once(result: PubmedSearch, expected: list[str]) -> None:
    assert result.pmids == sorted(expected, key=int)
    assert sorted(records(result), key=int) == result.pmids
    assert result.count == len(expected)
    assert {p.name for p in result.efetch_files()} <= {
        f["path"] for f in result.raw_files if f["pmids"]}


def assert_rate_kept(s: EutilsStandin) -> None:
    assert [r for r in s.requests if r.rate_limited] == []
    for client in {r.client for r in s.requests}:
        starts = [r.start for r in s.requests if r.client == client]
        assert window_counts(starts) <= (10 if client.startswith("key:") else 3)


@pytest.fixture
def standin():
    with EutilsStandin() as s:
        yield s


# -- configuration -----------------------------------------------------------------------------

def test_from_env_requires_email():
    for env in ({}, {"NCBI_EMAIL": "  ", "NCBI_API_KEY": KEY}):
        with pytest.raises(EntrezError, match="NCBI_EMAIL is not set.*search PubMed live"):
            EntrezConfig.from_env(env)
    with pytest.raises(EntrezError, match="NCBI_EMAIL"):
        EntrezConfig(email="")


def test_from_env_reads_settings_and_hides_key():
    config = EntrezConfig.from_env({"NCBI_EMAIL": EMAIL, "NCBI_API_KEY": KEY,
                                    "REVIEWPIPE_EUTILS_URL": "http://127.0.0.1:9/e"},
                                   batch_size=50)
    assert (config.email, config.api_key, config.base_url, config.batch_size, config.tool) == (
        EMAIL, KEY, "http://127.0.0.1:9/e/", 50, "reviewpipe")
    assert KEY not in repr(config)
    default = EntrezConfig.from_env({"NCBI_EMAIL": EMAIL})
    assert default.api_key is None
    assert default.base_url == "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/"


# -- the happy path ------------------------------------------------------------------------------

def test_happy_path_without_key_keeps_3_per_second(standin, tmp_path):
    opener_before = urllib.request._opener
    entrez_before = (Entrez.email, Entrez.tool, Entrez.api_key, Entrez.max_tries)
    seen: list[tuple[int, int]] = []
    config = make_config(standin, api_key=None)
    result = search_pubmed("trial", mindate="2010", maxdate="2025", datetype="edat",
                           raw_dir=tmp_path, config=config,
                           progress=lambda done, total: seen.append((done, total)))

    assert_exactly_once(result, standin.pmids)
    assert_rate_kept(standin)
    starts = [r.start for r in standin.requests]
    assert min(b - a for a, b in zip(starts, starts[1:], strict=False)) >= 0.33
    assert urllib.request._opener is opener_before
    assert (Entrez.email, Entrez.tool, Entrez.api_key, Entrez.max_tries) == entrez_before
    assert seen[-1] == (30, 30) and [d for d, _ in seen] == sorted(d for d, _ in seen)

    manifest = json.loads(json.dumps(result.to_manifest()))
    assert manifest["query"] == "trial" and manifest["database"] == "pubmed"
    assert manifest["translation"] == '"trial"[All Fields]'
    assert (manifest["count"], manifest["count_initial"], manifest["count_final"]) == (30, 30, 30)
    assert (manifest["mindate"], manifest["maxdate"], manifest["datetype"]) == (
        "2010", "2025", "edat")
    assert manifest["searched_at"].endswith("Z") and manifest["searched_at"][4] == "-"
    assert manifest["parts"] == [{"label": "20100101-20251231", "mindate": "2010/01/01",
                                  "maxdate": "2025/12/31", "count": 30,
                                  "webenv": "MCID_standin00000001", "query_key": "1"}]
    assert (manifest["requests_made"], manifest["retries"], manifest["resumed"]) == (5, 0, False)
    kinds = [f["kind"] for f in manifest["raw_files"]]
    assert kinds == ["esearch"] + ["efetch-history"] * 3 + ["esearch-check"]

    state = json.loads((tmp_path / "fetch-state.json").read_text())
    assert [f["path"] for f in state["files"]] == [f["path"] for f in manifest["raw_files"]]
    for entry in state["files"]:
        body = (tmp_path / entry["path"]).read_bytes()
        assert hashlib.sha256(body).hexdigest() == entry["sha256"]
        assert "api_key" not in entry["params"] and "email" not in entry["params"]
        if entry["kind"] == "efetch-history":
            assert entry["n_records"] == 10 == len(entry["pmids"])
            assert entry["params"]["retmax"] == 10 and entry["params"]["query_key"] == "1"
    # NCBI etiquette travels with every request.
    for req in standin.requests:
        assert (req.params["tool"], req.params["email"]) == ("reviewpipe", EMAIL)
        assert "api_key" not in req.params


def test_two_threads_share_one_throttle(standin, tmp_path):
    results: dict[str, PubmedSearch] = {}

    def run(name: str) -> None:
        results[name] = search(standin, tmp_path / name, email=f"{name}@example.org")

    threads = [threading.Thread(target=run, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name in ("a", "b"):
        assert_exactly_once(results[name], standin.pmids)
    assert_rate_kept(standin)
    assert {r.params["email"] for r in standin.requests} == {"a@example.org", "b@example.org"}


# -- faults --------------------------------------------------------------------------------------

def test_429_burst_is_retried_and_retry_after_honoured(standin, tmp_path):
    standin.fault("429", on="efetch", retry_after="1")
    standin.fault("429", on="efetch", times=2)
    result = search(standin, tmp_path, api_key=None)
    assert_exactly_once(result, standin.pmids)
    assert_rate_kept(standin)
    assert result.retries == 3
    reqs = standin.requests
    first = next(i for i, r in enumerate(reqs) if r.status == 429)
    assert reqs[first + 1].start - reqs[first].end >= 0.95


def test_server_errors_are_retried(standin, tmp_path):
    standin.fault("status", status=500, on="esearch")
    standin.fault("status", status=502, on="efetch")
    standin.fault("status", status=503, on="efetch", skip=1, times=2)
    result = search(standin, tmp_path)
    assert_exactly_once(result, standin.pmids)
    assert_rate_kept(standin)
    assert result.retries == 4
    assert [r.status for r in standin.requests].count(200) == 5


def test_reset_and_dropped_connections_are_retried(standin, tmp_path):
    standin.fault("drop", on="esearch")
    standin.fault("reset", on="efetch", times=2)
    standin.fault("drop", on="efetch", skip=1)
    result = search(standin, tmp_path)
    assert_exactly_once(result, standin.pmids)
    assert_rate_kept(standin)
    assert result.retries == 4


def test_truncated_and_short_bodies_are_refetched(standin, tmp_path):
    standin.fault("truncate", on="efetch")  # Content-Length promises more than arrives
    standin.fault("cut", on="efetch")  # a complete response holding half an XML document
    standin.fault("short", on="efetch", skip=1)  # valid XML, one record missing
    standin.fault("cut", on="esearch")
    result = search(standin, tmp_path)
    assert_exactly_once(result, standin.pmids)
    assert_rate_kept(standin)
    assert result.retries == 4
    state = json.loads((tmp_path / "fetch-state.json").read_text())
    assert [f["n_records"] for f in state["files"] if f["kind"] == "efetch-history"] == [10] * 3


def test_slow_answers_time_out_and_are_retried(standin, tmp_path):
    standin.fault("slow", on="esearch", delay=0.2)  # slow but inside the timeout: accepted
    standin.fault("slow", on="efetch", skip=1, delay=1.5)
    result = search(standin, tmp_path, timeout=0.6)
    assert_exactly_once(result, standin.pmids)
    assert_rate_kept(standin)
    assert result.retries == 1


def test_connection_refused_gives_up_naming_the_request(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = EntrezConfig(email=EMAIL, api_key=KEY, base_url=f"http://127.0.0.1:{port}/e/",
                          max_tries=2, backoff=0.01)
    with pytest.raises(EntrezError) as caught:
        search_pubmed("trial", mindate="2020", maxdate="2020", datetype="edat",
                      raw_dir=tmp_path, config=config)
    message = str(caught.value)
    assert "esearch db=pubmed term=trial" in message and "gave up after 2 tries" in message
    assert "refused" in message.lower() and KEY not in message


def test_server_error_every_time_gives_up_after_max_tries(standin, tmp_path):
    standin.fault("status", status=503, on="esearch", times=3)
    with pytest.raises(EntrezError, match=r"esearch db=pubmed term=trial .*gave up after 3 tries"
                                          r".*HTTP 503"):
        search(standin, tmp_path, max_tries=3)
    assert len(standin.requests) == 3


def test_400_is_raised_at_once(standin, tmp_path):
    standin.fault("status", status=400, on="esearch",
                  body=f'{{"error":"Invalid query","api-key":"{KEY}"}}')
    with pytest.raises(EntrezError, match="HTTP 400.*not retried") as caught:
        search(standin, tmp_path)
    assert len(standin.requests) == 1
    assert KEY not in str(caught.value) and "Invalid query" in str(caught.value)


# -- the result changing under us ----------------------------------------------------------------

def test_count_growing_mid_run_fetches_new_records_once(standin, tmp_path):
    new = [make_article(92000001 + i, edat=date(2025, 12, 1)) for i in range(3)]
    standin.fault("grow", on="efetch", skip=1, articles=new)
    result = search(standin, tmp_path)
    assert_exactly_once(result, standin.pmids)
    assert_rate_kept(standin)
    assert (result.count_initial, result.count_final) == (30, 33)
    assert result.added_during_run == ["92000001", "92000002", "92000003"]
    assert result.fetched_by_id == 3


def test_shifting_history_batches_never_duplicate(tmp_path):
    # Records added at the head of a re-evaluated history shift later batches: some PMIDs
    # arrive twice and the tail never arrives through the history server.
    with EutilsStandin(snapshot_history=False) as s:
        new = [make_article(92000001 + i, edat=date(2025, 12, 30)) for i in range(3)]
        s.fault("grow", on="efetch", skip=1, articles=new)
        result = search(s, tmp_path)
        assert_exactly_once(result, s.pmids)
        assert_rate_kept(s)
    held = [p for f in json.loads((tmp_path / "fetch-state.json").read_text())["files"]
            for p in f["pmids"]]
    assert len(held) > len(set(held)) == 33
    assert result.fetched_by_id == 6


def test_window_over_max_ids_is_split_by_date(tmp_path):
    with EutilsStandin(max_ids=12) as s:
        result = search(s, tmp_path, max_ids=12)
        assert_exactly_once(result, s.pmids)
        assert_rate_kept(s)
    parts = result.parts
    assert len(parts) > 2 and all(p["count"] <= 12 for p in parts)
    assert sum(p["count"] for p in parts) == 30
    assert parts[0]["mindate"] == "2010/01/01" and parts[-1]["maxdate"] == "2025/12/31"
    for a, b in zip(parts, parts[1:], strict=False):
        assert date.fromisoformat(b["mindate"].replace("/", "-")).toordinal() == \
            date.fromisoformat(a["maxdate"].replace("/", "-")).toordinal() + 1


def bare_article(pmid: int, edat: date, pdat: date | None = None) -> str:
    """A small PubmedArticle (PMID and dates only), so that tens of thousands load fast."""
    def ymd(day: date) -> str:
        return f"<Year>{day.year}</Year><Month>{day.month:02d}</Month><Day>{day.day:02d}</Day>"
    return (f'<PubmedArticle><MedlineCitation><PMID Version="1">{pmid}</PMID><Article><Journal>'
            f"<JournalIssue><PubDate>{ymd(pdat or edat)}</PubDate></JournalIssue></Journal>"
            f'</Article></MedlineCitation><PubmedData><History><PubMedPubDate PubStatus="entrez">'
            f"{ymd(edat)}</PubMedPubDate></History></PubmedData></PubmedArticle>")


def clustered(n: int, days: int, *, seed: int, first_pmid: int = 95000001,
              start: date = date(2021, 3, 1)) -> tuple[list[str], dict[str, tuple[date, date]]]:
    """``n`` bare articles crowded onto ``days`` entrez days and, independently, ``days``
    publication days, so that many records share every day a search can end on."""
    rng = random.Random(seed)
    out, when = [], {}
    for i in range(n):
        edat = start + timedelta(days=rng.randrange(days))
        pdat = start + timedelta(days=rng.randrange(days))
        out.append(bare_article(first_pmid + i, edat, pdat))
        when[str(first_pmid + i)] = (edat, pdat)
    return out, when


def held_pmids(raw: Path) -> list[str]:
    """Every PMID every archived efetch body holds, duplicates included."""
    state = json.loads((raw / "fetch-state.json").read_text())
    return [p for f in state["files"] if f["kind"].startswith("efetch") for p in f["pmids"]]


def assert_parts_tile(result: PubmedSearch, lo: str, hi: str, limit: int) -> None:
    parts = result.parts
    assert parts[0]["mindate"] == lo and parts[-1]["maxdate"] == hi
    assert all(p["count"] <= limit for p in parts)
    assert sum(p["count"] for p in parts) == result.count
    for a, b in zip(parts, parts[1:], strict=False):
        assert date.fromisoformat(b["mindate"].replace("/", "-")) == \
            date.fromisoformat(a["maxdate"].replace("/", "-")) + timedelta(days=1)


def straddled(s: EutilsStandin, when: dict[str, tuple[date, date]], datetype: str,
              limit: int) -> int:
    """How many of the run's first searches ended their listing inside a day."""
    which = 0 if datetype == "edat" else 1
    n = 0
    for req in s.requests_for("esearch"):
        if req.params.get("usehistory") != "y":
            continue
        found = s.search(req.params["mindate"], req.params["maxdate"], datetype,
                         req.params.get("sort"))
        n += len(found) > limit and when[found[limit - 1]][which] == when[found[limit]][which]
    return n


def test_over_9999_hits_are_walked_newest_first_in_few_searches(tmp_path):
    # 20,500 records on 61 days (~340 a day): every search's 9,999th id falls inside a day.
    n, batch = 20500, 2500
    arts, when = clustered(n, 61, seed=3)
    with EutilsStandin(arts) as s:
        result = search_pubmed("trial", mindate="2021/03/01", maxdate="2021/04/30",
                               datetype="edat", raw_dir=tmp_path,
                               config=make_config(s, batch_size=batch))
        assert_exactly_once(result, s.pmids)
        assert_rate_kept(s)
        assert straddled(s, when, "edat", 9999) == 2  # both cuts split a day's records
        esearch, efetch = s.requests_for("esearch"), s.requests_for("efetch")
    assert_parts_tile(result, "2021/03/01", "2021/04/30", 9999)
    # The minimum: ceil(n / 9,999) = 3 searches to list every id, 3 more for the final check
    # (halving the window took 16 here); no record fetched twice.
    assert len(result.parts) == 3 and len(esearch) == 6
    assert [r.params.get("sort") for r in esearch[:3]] == ["most recent"] * 3
    assert len(efetch) <= math.ceil(n / batch) + len(result.parts) - 1
    assert sorted(held_pmids(tmp_path), key=int) == result.pmids
    assert (result.count_initial, result.fetched_by_id, result.added_during_run) == (n, 0, [])


@pytest.mark.parametrize("datetype", ["edat", "pdat"])
def test_split_keeps_records_sharing_the_boundary_day(tmp_path, datetype):
    # 60 records on 8 days, 12 listed per search: each listing ends inside a day.
    arts, when = clustered(60, 8, seed=11)
    with EutilsStandin(arts, max_ids=12) as s:
        result = search_pubmed("trial", mindate="2021/03/01", maxdate="2021/03/08",
                               datetype=datetype, raw_dir=tmp_path,
                               config=make_config(s, max_ids=12, batch_size=5))
        assert_exactly_once(result, s.pmids)
        assert_rate_kept(s)
        assert straddled(s, when, datetype, 12) >= 3
        sorts = {r.params.get("sort") for r in s.requests_for("esearch")
                 if r.params.get("usehistory")}
    # (a day holding max_ids records itself leaves no day to cut at: that window is halved)
    assert sorts - {None} == {"most recent" if datetype == "edat" else "pub_date"}
    assert_parts_tile(result, "2021/03/01", "2021/03/08", 12)
    assert sorted(held_pmids(tmp_path), key=int) == result.pmids  # none fetched twice
    for part in result.parts:  # each part holds exactly the records of its days
        lo, hi = (date.fromisoformat(part[k].replace("/", "-")) for k in ("mindate", "maxdate"))
        on = [p for p in result.pmids if lo <= when[p][0 if datetype == "edat" else 1] <= hi]
        assert len(on) == part["count"]


def test_split_esearch_count_is_near_the_minimum(tmp_path):
    n, limit, batch = 95, 20, 10  # entrez days spread over 16 years: few share a day
    with EutilsStandin(make_articles(n, seed=5), max_ids=limit) as s:
        result = search(s, tmp_path, max_ids=limit, batch_size=batch)
        assert_exactly_once(result, s.pmids)
        esearch, efetch = s.requests_for("esearch"), s.requests_for("efetch")
    windows = math.ceil(n / limit)
    assert len(result.parts) <= windows + 1
    assert len(esearch) == 2 * len(result.parts) <= 2 * windows + 2
    assert len(efetch) == math.ceil(n / batch)  # whole batches: the remainder waits a search
    assert result.requests_made == len(esearch) + len(efetch)


def test_split_without_a_date_sort_halves_the_window(tmp_path):
    # PubMed cannot sort by modification date, so mdat windows are halved as before.
    with EutilsStandin(max_ids=12) as s:
        result = search_pubmed("trial", mindate="2010", maxdate="2025", datetype="mdat",
                               raw_dir=tmp_path, config=make_config(s, max_ids=12))
        assert_exactly_once(result, s.pmids)
        assert all("sort" not in r.params for r in s.requests_for("esearch"))
    assert len(result.parts) > 2
    assert_parts_tile(result, "2010/01/01", "2025/12/31", 12)


def test_split_cut_that_does_not_add_up_is_searched_by_itself(tmp_path):
    # Records enter the older span between the first two searches: the counts no longer add
    # up, so the newest span is searched by itself (halved) instead of trusted.
    arts, _ = clustered(40, 8, seed=2)
    new = [bare_article(96000001 + i, date(2021, 3, 1)) for i in range(4)]
    with EutilsStandin(arts, max_ids=12) as s:
        s.fault("grow", on="esearch", skip=1, articles=new)
        result = search_pubmed("trial", mindate="2021/03/01", maxdate="2021/03/08",
                               datetype="edat", raw_dir=tmp_path,
                               config=make_config(s, max_ids=12, batch_size=5))
        assert_exactly_once(result, s.pmids)
        assert_rate_kept(s)
        first = [r for r in s.requests_for("esearch") if r.params.get("usehistory")]
    assert any("sort" not in r.params for r in first)  # the span searched by itself
    assert_parts_tile(result, "2021/03/01", "2021/03/08", 12)
    assert sorted(held_pmids(tmp_path), key=int) == result.pmids
    assert len(result.pmids) == 44


def test_split_count_growing_mid_run_is_detected(tmp_path):
    arts, _ = clustered(40, 8, seed=4)
    new = [bare_article(96000001 + i, date(2021, 3, 8)) for i in range(3)]
    with EutilsStandin(arts, max_ids=12) as s:
        s.fault("grow", on="efetch", skip=3, articles=new)
        result = search_pubmed("trial", mindate="2021/03/01", maxdate="2021/03/08",
                               datetype="edat", raw_dir=tmp_path,
                               config=make_config(s, max_ids=12, batch_size=5))
        assert_exactly_once(result, s.pmids)
    assert (result.count_initial, result.count_final) == (40, 43)
    assert result.added_during_run == ["96000001", "96000002", "96000003"]
    assert result.fetched_by_id == 3


def test_split_resume_after_failure_fetches_each_record_once(tmp_path):
    arts, _ = clustered(40, 8, seed=6)
    with EutilsStandin(arts, max_ids=12) as s:
        config = make_config(s, max_ids=12, batch_size=5)
        s.fault("status", status=400, on="efetch", skip=4)  # in the second search's batches
        with pytest.raises(EntrezError, match="HTTP 400"):
            search_pubmed("trial", mindate="2021/03/01", maxdate="2021/03/08",
                          datetype="edat", raw_dir=tmp_path, config=config)
        first = len(set(held_pmids(tmp_path)))
        resumed = search_pubmed("trial", mindate="2021/03/01", maxdate="2021/03/08",
                                datetype="edat", raw_dir=tmp_path, config=config)
        assert_exactly_once(resumed, s.pmids)
        assert_rate_kept(s)
    assert resumed.resumed and 0 < first == resumed.reused_pmids
    assert resumed.fetched_by_id == 40 - first
    assert sorted(held_pmids(tmp_path), key=int) == resumed.pmids  # none fetched twice
    assert_parts_tile(resumed, "2021/03/01", "2021/03/08", 12)


def test_one_day_over_max_ids_is_an_error(tmp_path):
    arts = [make_article(93000001 + i, edat=date(2020, 1, 2)) for i in range(3)]
    with EutilsStandin(arts, max_ids=2) as s, pytest.raises(EntrezError, match="narrow"):
        search_pubmed("trial", mindate="2020/01/01", maxdate="2020/01/04", datetype="edat",
                      raw_dir=tmp_path, config=make_config(s, max_ids=2))


# -- resume --------------------------------------------------------------------------------------

def test_resume_after_failure_fetches_only_what_is_missing(standin, tmp_path):
    standin.fault("status", status=400, on="efetch", skip=1)
    with pytest.raises(EntrezError, match="HTTP 400"):
        search(standin, tmp_path / "run")
    assert len(standin.requests_for("efetch")) == 2  # the 400 was not retried
    before = len(standin.requests)

    resumed = search(standin, tmp_path / "run")
    assert len(standin.requests) - before == resumed.requests_made == 4  # esearch, 2 ids, check
    assert resumed.resumed and resumed.reused_pmids == 10 and resumed.fetched_by_id == 20
    assert_exactly_once(resumed, standin.pmids)
    assert_rate_kept(standin)
    clean = search(standin, tmp_path / "clean")
    assert records(resumed) == records(clean)


def test_resume_after_sigkill_skips_good_batches_and_refetches_corrupt_ones(standin, tmp_path):
    raw = tmp_path / "raw"
    standin.fault("slow", on="efetch", skip=2, delay=10)  # the child hangs in batch 3
    env = {**os.environ, "NCBI_EMAIL": EMAIL, "NCBI_API_KEY": KEY,
           "REVIEWPIPE_EUTILS_URL": standin.base_url}
    code = ("import sys; from pathlib import Path; from reviewpipe.entrez import *; "
            "from reviewpipe.entrez_search import *; "
            "search_pubmed('trial', mindate='2010', maxdate='2025', datetype='edat', "
            "raw_dir=Path(sys.argv[1]), "
            "config=EntrezConfig.from_env(batch_size=10, backoff=0.01))")
    child = subprocess.Popen([sys.executable, "-c", code, str(raw)], env=env)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            state = raw / "fetch-state.json"
            files = json.loads(state.read_text())["files"] if state.exists() else []
            if sum(f["kind"] == "efetch-history" for f in files) == 2:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the child never saved two batches")
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    first = raw / files[1]["path"]
    first.write_bytes(first.read_bytes()[:500])  # a damaged batch must be fetched again
    standin.clear_faults()
    time.sleep(1.05)  # the child's requests leave the server's 1 s window
    before = len(standin.requests)

    resumed = search(standin, raw)
    assert len(standin.requests) - before == 4  # esearch, 2 batches by id, final check
    assert resumed.reused_pmids == 10 and resumed.fetched_by_id == 20
    assert_exactly_once(resumed, standin.pmids)
    assert_rate_kept(standin)
    assert first.name not in {f["path"] for f in resumed.raw_files}
    assert records(resumed) == records(search(standin, tmp_path / "clean"))


def test_split_resume_after_sigkill_fetches_each_record_once(tmp_path):
    raw = tmp_path / "raw"
    arts, _ = clustered(40, 8, seed=6)
    with EutilsStandin(arts, max_ids=12) as s:
        s.fault("slow", on="efetch", skip=4, delay=10)  # the child hangs in the second search
        env = {**os.environ, "NCBI_EMAIL": EMAIL, "NCBI_API_KEY": KEY,
               "REVIEWPIPE_EUTILS_URL": s.base_url}
        code = ("import sys; from pathlib import Path; from reviewpipe.entrez import *; "
                "from reviewpipe.entrez_search import *; "
                "search_pubmed('trial', mindate='2021/03/01', maxdate='2021/03/08', "
                "datetype='edat', raw_dir=Path(sys.argv[1]), "
                "config=EntrezConfig.from_env(batch_size=5, max_ids=12, backoff=0.01))")
        child = subprocess.Popen([sys.executable, "-c", code, str(raw)], env=env)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if (raw / "fetch-state.json").exists() and len(held_pmids(raw)) >= 15:
                    break
                time.sleep(0.05)
            else:
                pytest.fail("the child never saved four batches")
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
        assert child.returncode == -signal.SIGKILL
        state = json.loads((raw / "fetch-state.json").read_text())
        assert sum(f["kind"] == "esearch" for f in state["files"]) >= 2  # killed mid-walk
        first = len(set(held_pmids(raw)))
        s.clear_faults()
        time.sleep(1.05)  # the child's requests leave the server's 1 s window
        resumed = search_pubmed("trial", mindate="2021/03/01", maxdate="2021/03/08",
                                datetype="edat", raw_dir=raw,
                                config=make_config(s, max_ids=12, batch_size=5))
        assert_exactly_once(resumed, s.pmids)
        assert_rate_kept(s)
    assert resumed.resumed and resumed.reused_pmids == first >= 15
    assert resumed.fetched_by_id == 40 - first
    assert sorted(held_pmids(raw), key=int) == resumed.pmids  # none fetched twice
    assert_parts_tile(resumed, "2021/03/01", "2021/03/08", 12)


# -- the API key stays secret --------------------------------------------------------------------

def test_api_key_travels_only_in_requests(standin, tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="reviewpipe.entrez")
    standin.fault("429", on="efetch")  # NCBI's 429 body echoes the key
    standin.fault("status", status=500, on="efetch")
    standin.fault("reset", on="esearch")
    result = search(standin, tmp_path / "ok")
    assert result.retries == 3 and caplog.records
    standin.fault("429", on="esearch", times=2)
    with pytest.raises(EntrezError) as caught:
        search(standin, tmp_path / "fails", max_tries=2)

    assert all(r.params["api_key"] == KEY for r in standin.requests)
    assert KEY not in caplog.text and KEY not in str(caught.value)
    assert KEY not in json.dumps(result.to_manifest()) and KEY not in repr(result)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


# -- fetching by PMID ----------------------------------------------------------------------------

def test_fetch_pubmed_ids_posts_big_batches_and_reports_missing(tmp_path):
    arts = make_articles(250, seed=7, first_pmid=94000001)
    with EutilsStandin(arts) as s:
        wanted = [*s.pmids, "99999998", "99999999"]
        seen: list[tuple[int, int]] = []
        result = fetch_pubmed_ids(wanted, raw_dir=tmp_path,
                                  config=make_config(s, batch_size=250, max_tries=2),
                                  progress=lambda d, t: seen.append((d, t)))
        assert_rate_kept(s)
        methods = [r.method for r in s.requests]
    assert methods == ["POST", "GET", "GET"]  # 250 ids go by POST; the last batch is retried
    assert result.pmids == sorted(s.pmids, key=int)
    assert result.missing == ["99999998", "99999999"]
    assert seen[-1] == (250, 252)
    contributed = [p for f in result.raw_files for p in f["pmids"]]
    assert sorted(contributed, key=int) == result.pmids
    assert [f["n_records"] for f in result.raw_files] == [250, 0]  # the empty answer is kept
    assert [p.name for p in result.efetch_files()] == [result.raw_files[0]["path"]]


# -- parsing never reaches the network, never expands entities -----------------------------------

def test_esearch_with_unknown_dtd_is_parsed_without_network():
    body = (b'<?xml version="1.0"?>\n<!DOCTYPE eSearchResult PUBLIC "-//X//Y//EN" '
            b'"https://example.invalid/dtd/esearch_999999.dtd">\n<eSearchResult><Count>1</Count>'
            b"<RetMax>1</RetMax><RetStart>0</RetStart><IdList><Id>5</Id></IdList>"
            b"<TranslationSet/><QueryTranslation>x</QueryTranslation></eSearchResult>")
    assert parse_esearch(body, 9999)["ids"] == ["5"]
    bomb = (b'<?xml version="1.0"?><!DOCTYPE PubmedArticleSet [<!ENTITY a "aaaa">]>'
            b"<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID>&a;</PMID>"
            b"</MedlineCitation></PubmedArticle></PubmedArticleSet>")
    with pytest.raises(BadBody):
        _efetch_pmids(bomb)


def test_throttle_spaces_starts_with_an_injected_clock():
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    throttle = _Throttle(clock=lambda: now[0], sleep=sleep)
    starts = []
    for _ in range(3):
        with throttle.slot(0.37) as start:
            starts.append(start)
    now[0] += 5
    with throttle.slot(0.37) as start:
        starts.append(start)
    assert slept == pytest.approx([0.37, 0.37])
    assert starts == pytest.approx([100.0, 100.37, 100.74, 105.74])


# -- the stand-in itself -------------------------------------------------------------------------

def test_standin_limits_rate_and_filters_dates():
    with EutilsStandin() as s:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        url = f"{s.base_url}esearch.fcgi?db=pubmed&term=x&retmax=5"
        codes, body = [], {}
        for _ in range(4):
            try:
                with opener.open(url) as answer:
                    codes.append(answer.status)
            except urllib.error.HTTPError as exc:
                codes.append(exc.code)
                body = json.loads(exc.read())
        assert codes == [200, 200, 200, 429]
        assert body == {"error": "API rate limit exceeded", "api-key": "127.0.0.1",
                        "count": "4", "limit": "3"}
        every = s.search("2010", "2025", "edat")
        assert sorted(every, key=int) == s.pmids and len(every) == 30
        in_2015 = s.search("2015/01", "2015/12/31", "edat")
        assert 0 < len(in_2015) < 30 and set(in_2015) == set(s.search("2015", "2015", "edat"))
        assert s.search("2015", "2015", "pdat") != []
        # esearch's sort: newest publication date first; by default newest entrez date first;
        # ties to the higher PMID; relevance is unrelated to dates. Same records every way.
        arts = s._articles

        def key(kind: str, pmids: list[str]) -> list[tuple[int, int]]:
            return [(getattr(arts[p], kind), int(p)) for p in pmids]

        by_pdat = s.search("2010", "2025", "edat", "pub_date")
        assert key("pdat", by_pdat) == sorted(key("pdat", every), reverse=True)
        for sort in (None, "most recent", "most+recent"):
            found = s.search("2010", "2025", "pdat", sort)
            assert key("edat", found) == sorted(key("edat", every), reverse=True)
        relevance = s.search("2010", "2025", "edat", "relevance")
        assert sorted(relevance) == sorted(every) and relevance not in (every, by_pdat)
        s.today = date(2015, 1, 1)
        assert len(s.pmids) < 30 and set(s.search("2010", "2025", "edat")) == set(s.pmids)
