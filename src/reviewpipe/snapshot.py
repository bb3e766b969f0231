"""Build the offline snapshot ``data/snapshots/<review>/`` from the topic corpus; its CLI.

The corpus (``../shared/corpus/records.jsonl``, one line per page version of a publication)
becomes the files a multi-database search would have left behind: ``pubmed.xml``
(``snapshot_pubmed``), three RIS exports split by kind of site (``snapshot_ris``,
``snapshot_sources``) and a ``README.md`` with a SHA-256 manifest. This module runs the build,
checks that every record lands in exactly one file, and writes the files and the README.
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
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reviewpipe.errors import InputError, ReviewpipeError
from reviewpipe.runs import atomic_write
from reviewpipe.snapshot_corpus import load_corpus
from reviewpipe.snapshot_pubmed import (
    ENTREZ_MONTH_DAY,
    check_pubmed,
    entrez_dates,
    pubmed_xml,
)
from reviewpipe.snapshot_ris import check_ris, ris_file
from reviewpipe.snapshot_sources import (
    INDEXES,
    PUBLISHER,
    REGISTRIES,
    choose_pubmed_versions,
    source_host,
    source_kind,
)

__all__ = ["build_snapshot", "main"]

PUBMED_FILE = "pubmed.xml"
RIS_FILES = {kind: f"{kind}.ris" for kind in (PUBLISHER, REGISTRIES, INDEXES)}
README_FILE = "README.md"


# ----------------------------------------------------------------------------- build


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


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
    check_pubmed(files[PUBMED_FILE], list(chosen))
    counts = {PUBMED_FILE: len(chosen)}
    for kind, name in RIS_FILES.items():
        files[name] = ris_file(by_kind[kind]).encode("utf-8")
        check_ris(files[name], sorted(r["rec_id"] for r in by_kind[kind]))
        counts[name] = len(by_kind[kind])
    summary = {name: {"records": counts[name], "sha256": sha256(data)}
               for name, data in files.items()}
    readme = render_readme(corpus_path, records, chosen, dates, by_kind, rules, summary)

    out_dir.mkdir(parents=True, exist_ok=True)
    for name, data in [*files.items(), (README_FILE, readme.encode("utf-8"))]:
        atomic_write(out_dir / name, data)  # a failed build leaves no half file
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
`reviewpipe.snapshot_sources` (`HOST_KINDS`, `PATH_RULES`): a path rule first (ICH GCP's
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
