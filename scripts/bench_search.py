"""Search benchmarks: parse rate of a real PubMed daily update, and a rate-limited fetch.

1. Parse + normalise ../shared/datasets/pubmed_daily_update_2021/pubmed21n1298.xml.gz (20,788
   real records) in a child process: records/s on one core and the child's peak memory
   (goal >= 3,000 records/s).
2. Fetch the same records from the local E-utilities stand-in (tests/eutils_standin.py, real
   HTTP on 127.0.0.1) with an API key, i.e. at most 10 requests/s: wall time against the ideal
   set by the rate limit and the batch size (goal: within 10%).

Usage: python scripts/bench_search.py [--shared ../shared] [--skip-fetch]
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
DAILY = Path("datasets/pubmed_daily_update_2021/pubmed21n1298.xml.gz")

_CHILD = """
import json, resource, sys, time
from reviewpipe.readers import read_pubmed_xml
start = time.perf_counter()
records = read_pubmed_xml(sys.argv[1])
seconds = time.perf_counter() - start
articles = sum(1 for r in records if not r.deleted)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"records": len(records), "articles": articles, "seconds": seconds,
                  "peak_mb": peak}))
"""


def bench_parse(path: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True,
                          text=True, check=True)
    result = json.loads(done.stdout)
    result["rate"] = result["articles"] / result["seconds"]
    return result


def bench_fetch(path: Path, batch_size: int = 200) -> dict:
    sys.path.insert(0, str(PROJECT / "tests"))
    from eutils_standin import EutilsStandin
    from reviewpipe.entrez import INTERVAL_KEY, EntrezConfig
    from reviewpipe.entrez_search import search_pubmed

    body = gzip.decompress(path.read_bytes())
    with EutilsStandin(articles=body) as standin, tempfile.TemporaryDirectory() as raw:
        n = len(standin.pmids)
        config = EntrezConfig(email="bench@example.org", api_key="bench-key",
                              base_url=standin.base_url, batch_size=batch_size, backoff=0.2)
        start = time.perf_counter()
        result = search_pubmed("all[sb]", mindate="1800/01/01", maxdate="2100/12/31",
                               datetype="pdat", raw_dir=Path(raw), config=config)
        seconds = time.perf_counter() - start
        busiest = standin.max_in_window(1.0)
        esearch, efetch = len(standin.requests_for("esearch")), len(standin.requests_for("efetch"))
    requests = result.requests_made
    # Ideal: one request start every 0.1 s (10/s with a key) for the fewest requests possible:
    # one esearch per 9,999 records (PubMed's cap) plus one efetch per batch.
    ideal = (math.ceil(n / 9999) + 1 + math.ceil(n / batch_size)) * 0.1
    # What the client's own spacing (0.11 s, 10 ms of margin on NCBI's limit) allows for the
    # requests it made; the final check lists every part again, one esearch per 9,999 records.
    floor = (requests - 1) * INTERVAL_KEY
    return {"records": len(result.pmids), "expected": n, "requests": requests,
            "esearch": esearch, "efetch": efetch, "seconds": seconds, "ideal_seconds": ideal,
            "floor_seconds": floor, "busiest_second": busiest, "retries": result.retries}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=PROJECT.parent / "shared")
    parser.add_argument("--skip-fetch", action="store_true")
    args = parser.parse_args(argv)
    path = args.shared / DAILY
    if not path.exists():
        print(f"bench_search: {path} is absent; nothing to benchmark (needs ../shared).")
        return 2
    parse = bench_parse(path)
    ok = parse["rate"] >= 3000
    print(f"parse+normalise {parse['articles']:,} articles ({parse['records']:,} records incl. "
          f"deletions): {parse['seconds']:.2f} s, {parse['rate']:,.0f} records/s "
          f"(goal >= 3,000), peak memory {parse['peak_mb']:.0f} MB")
    if not args.skip_fetch:
        fetch = bench_fetch(path)
        over = fetch["seconds"] / fetch["ideal_seconds"] - 1
        ok = ok and over <= 0.10 and fetch["records"] == fetch["expected"]
        print(f"fetch {fetch['records']:,}/{fetch['expected']:,} records in "
              f"{fetch['requests']} requests ({fetch['esearch']} esearch, {fetch['efetch']} "
              f"efetch): {fetch['seconds']:.2f} s vs ideal {fetch['ideal_seconds']:.2f} s "
              f"({over:+.1%}; goal within 10%), busiest second {fetch['busiest_second']} "
              f"requests (limit 10), retries {fetch['retries']}; the client's 0.11 s spacing "
              f"alone takes {fetch['floor_seconds']:.2f} s for these requests")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
