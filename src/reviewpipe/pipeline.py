"""Run the stages in order, in a run folder that becomes ``latest`` only when complete."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from reviewpipe.protocol import Protocol, load_protocol, protocol_path
from reviewpipe.runs import STAGES, ReviewPaths, Run, StageResult, finish_run, new_run, open_run
from reviewpipe.store import Store

Reporter = Callable[[StageResult], None]


def stage_functions() -> dict[str, Callable[..., StageResult]]:
    """The stage functions by name; imported here so ``import reviewpipe`` stays light."""
    from reviewpipe.dedupe import dedupe
    from reviewpipe.extract import extract
    from reviewpipe.report import report
    from reviewpipe.screen import screen
    from reviewpipe.search import search
    from reviewpipe.synthesize import synthesize

    return {"search": search, "dedupe": dedupe, "screen": screen, "extract": extract,
            "synthesize": synthesize, "report": report}


def open_review(root: str | Path, review_id: str) -> tuple[Protocol, ReviewPaths]:
    """Load the review's protocol (``queries/<id>.toml`` under ``root``) and its paths."""
    root = Path(root)
    protocol = load_protocol(protocol_path(review_id, root / "queries"))
    return protocol, ReviewPaths(root=root, review_id=protocol.review_id)


REVIEWER_FILES = ("dedupe.csv", "decisions.csv", "extraction.csv")


def keep_inputs(protocol: Protocol, run: Run) -> None:
    """Copy the protocol and the reviewers' files into ``inputs/`` of the run, hashed like
    every artifact, so an audit can re-derive the run from what it really read."""
    run.write_bytes(f"inputs/{protocol.path.name}", protocol.path.read_bytes())
    for suffix in REVIEWER_FILES:
        path = protocol.path.with_name(f"{protocol.review_id}.{suffix}")
        if path.exists():
            run.write_bytes(f"inputs/{path.name}", path.read_bytes())


def check_reviewer_files(protocol: Protocol) -> None:
    """Read the reviewers' files beside the protocol before anything is written.

    A malformed ``<id>.decisions.csv``, ``<id>.dedupe.csv`` or ``<id>.extraction.csv`` stops
    the run with the file and line, and no run folder is created.
    """
    from reviewpipe.dedupe import read_answers
    from reviewpipe.human_extraction import read_human_extraction
    from reviewpipe.screen import read_human_decisions

    def beside(suffix: str) -> Path:
        return protocol.path.with_name(f"{protocol.review_id}.{suffix}")

    dedupe, decisions, extraction = REVIEWER_FILES
    read_answers(beside(dedupe))
    read_human_decisions(beside(decisions))
    read_human_extraction(beside(extraction), protocol)


def run_review(root: str | Path, review_id: str, *, live: bool = False,
               environ: Mapping[str, str] | None = None, on_stage: Reporter | None = None,
               progress: Callable[[int, int], None] | None = None) -> Run:
    """Run every stage into a new run folder; on success it becomes ``latest``.

    A failure leaves the ``.partial`` folder for inspection and ``latest`` where it was.
    """
    protocol, paths = open_review(root, review_id)
    check_reviewer_files(protocol)
    functions = stage_functions()
    with Store.open(paths.store) as store, started_run(protocol, paths, store, live) as run:
        for name in STAGES:
            options: dict[str, Any] = {}
            if name == "search":
                options = {"live": live, "environ": environ, "progress": progress}
            if name == "extract" and live:
                fetch_fulltexts(store, run, environ)
            result = functions[name](protocol, store, run, **options)
            if on_stage:
                on_stage(result)
    return run


@contextmanager
def started_run(protocol: Protocol, paths: ReviewPaths, store: Store, live: bool
                ) -> Iterator[Run]:
    """A new run folder; completed (log written, renamed, ``latest`` moved) when the block
    succeeds, marked failed in the store and left ``.partial`` when it raises."""
    run = new_run(paths, protocol_path=protocol.path, protocol_sha256=protocol.sha256,
                  seed=protocol.seed, live=live)
    store.start_run(run.run_id, protocol.sha256, live)
    try:
        keep_inputs(protocol, run)
        yield run
    except BaseException:
        store.finish_run(run.run_id, "failed")
        raise
    write_decision_log(store, run)
    finish_run(paths, run)
    store.finish_run(run.run_id, "complete")


def fetch_fulltexts(store: Store, run: Run, environ: Mapping[str, str] | None = None) -> int:
    """Fetch the PMC full text (JATS) of every included record that has a PMCID and none yet.

    They land in ``<review dir>/fulltext/<PMCID>.xml``, where extraction reads them, and the
    response bodies in ``raw/pmc/``. Returns how many full texts are on disk for the run.
    """
    import os

    from reviewpipe.dedupe import load_canonical
    from reviewpipe.entrez import EntrezConfig
    from reviewpipe.entrez_fetch import fetch_pmc_articles
    from reviewpipe.screen import included_clusters

    included = included_clusters(run)
    pmcids = [c["pmcid"] for c in load_canonical(run, included) if c.get("pmcid")]
    if not pmcids:
        return 0
    config = EntrezConfig.from_env(os.environ if environ is None else environ)
    found = fetch_pmc_articles(pmcids, out_dir=store.path.parent / "fulltext",
                               raw_dir=store.raw_dir / "pmc", config=config)
    run.manifest["fulltext"] = sorted(found)
    run.save_manifest()
    return len(found)


def write_decision_log(store: Store, run: Run) -> None:
    """The run's entries of the hash-chained decision log, as ``decisions.jsonl``.

    Like the manifest, this file records where the run sits in the review's history (each
    entry names the hash before it), so it differs between two runs of the same inputs.
    """
    entries = store.decision_log(run_id=run.run_id)
    run.write_text("decisions.jsonl", "".join(
        json.dumps(e, sort_keys=True, ensure_ascii=False) + "\n" for e in entries))


def run_stage(root: str | Path, review_id: str, stage: str, *, run_id: str | None = None,
              live: bool = False, environ: Mapping[str, str] | None = None,
              progress: Callable[[int, int], None] | None = None) -> tuple[Run, StageResult]:
    """Run one stage. ``search`` starts a new run; later stages work on the latest run."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}")
    protocol, paths = open_review(root, review_id)
    check_reviewer_files(protocol)
    function = stage_functions()[stage]
    with Store.open(paths.store) as store:
        if stage == "search":
            with started_run(protocol, paths, store, live) as run:
                result = function(protocol, store, run, live=live, environ=environ,
                                  progress=progress)
            return run, result
        run = open_run(paths, run_id)
        keep_inputs(protocol, run)  # what this stage read, should the protocol have changed
        result = function(protocol, store, run)
        write_decision_log(store, run)
        run.save_manifest()  # the log's new hash: no finish_run follows on a finished run
        return run, result
