"""Command line: parse options, call one library function, print its result. Nothing else."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from reviewpipe import __version__
from reviewpipe.errors import ReviewpipeError
from reviewpipe.runs import StageResult

DEFAULT_REVIEW = "dry-needling-pf"
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _fail(error: ReviewpipeError) -> None:
    click.echo(f"Error: {error}", err=True)
    sys.exit(error.exit_code)


def handle_errors(function: Callable[..., Any]) -> Callable[..., Any]:
    """Turn library errors into one line on stderr and their exit code (2 input, 1 runtime)."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except ReviewpipeError as error:
            _fail(error)

    return wrapper


def review_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """--review and --root, shared by every review command."""
    function = click.option(
        "--root", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
        envvar="REVIEWPIPE_ROOT", show_default=True,
        help="Project root holding queries/ and data/ (env REVIEWPIPE_ROOT).")(function)
    return click.option(
        "--review", "review_id", default=DEFAULT_REVIEW, show_default=True, metavar="ID",
        help="Review id: the protocol is queries/ID.toml.")(function)


def run_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--run", "run_id", default=None, metavar="RUN_ID",
                        help="Work on this run instead of the latest complete one.")(function)


def live_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--live", is_flag=True,
        help="Search PubMed through NCBI E-utilities instead of the bundled snapshot "
             "(needs NCBI_EMAIL; NCBI_API_KEY optional; REVIEWPIPE_EUTILS_URL to use a "
             "mirror).")(function)


def _progress() -> Callable[[int, int], None] | None:
    """A progress line on a terminal; silent when stderr is not one (cron, CI, pipes)."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        width = 30
        filled = int(width * done / total) if total else width
        click.echo(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}", err=True,
                   nl=done >= total)

    return show


def _print_result(result: StageResult) -> None:
    counts = ", ".join(f"{k}={v}" for k, v in result.counts.items())
    click.echo(f"{result.stage}: {counts}", err=True)


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="reviewpipe")
def cli() -> None:
    """reviewpipe: rerun a systematic review's search-to-inclusion workflow.

    Each stage reads what the previous one wrote in the run folder
    data/reviews/ID/runs/RUN_ID/ and writes its own artifacts there.
    """


@cli.command(context_settings=CONTEXT)
@review_options
@live_option
@handle_errors
def run(review_id: str, root: Path, live: bool) -> None:
    """Run every stage (search to report) in a new run; print the run folder last."""
    from reviewpipe.pipeline import run_review

    folder = run_review(root, review_id, live=live, on_stage=_print_result,
                        progress=_progress())
    click.echo(str(folder.dir))


def _stage_command(stage: str, summary: str) -> None:
    @click.command(name=stage, help=summary, context_settings=CONTEXT)
    @review_options
    @run_option
    @handle_errors
    def command(review_id: str, root: Path, run_id: str | None) -> None:
        from reviewpipe.pipeline import run_stage

        folder, result = run_stage(root, review_id, stage, run_id=run_id)
        _print_result(result)
        click.echo(str(folder.dir))

    cli.add_command(command)


@cli.command(context_settings=CONTEXT)
@review_options
@live_option
@handle_errors
def search(review_id: str, root: Path, live: bool) -> None:
    """Search every source of the protocol into a new run (records.csv, search.json)."""
    from reviewpipe.pipeline import run_stage

    folder, result = run_stage(root, review_id, "search", live=live, progress=_progress())
    _print_result(result)
    click.echo(str(folder.dir))


@cli.command(context_settings=CONTEXT)
@review_options
@run_option
@click.option("--input", "inputs", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Dedupe these export files (RIS, MEDLINE, PubMed XML, CSV) instead of a "
                   "review's run: --input FILE [FILE ...].")
@click.argument("more_inputs", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="With --input: write record_id,cluster_id rows here (default: stdout).")
@handle_errors
def dedupe(review_id: str, root: Path, run_id: str | None, inputs: tuple[Path, ...],
           more_inputs: tuple[Path, ...], output: Path | None) -> None:
    """Cluster duplicate records (clusters.csv, merge_log.csv, dedupe_review.csv)."""
    if more_inputs and not inputs:
        raise click.UsageError("files given without --input; use --input FILE [FILE ...]")
    inputs = (*inputs, *more_inputs)
    if inputs:
        from reviewpipe.dedupe import dedupe_files

        text = dedupe_files(list(inputs))
        if output:
            output.write_text(text, encoding="utf-8")
        else:
            click.echo(text, nl=False)
        return
    from reviewpipe.pipeline import run_stage

    folder, result = run_stage(root, review_id, "dedupe", run_id=run_id)
    _print_result(result)
    click.echo(str(folder.dir))


@cli.command(context_settings=CONTEXT)
@review_options
@run_option
@click.option("--next", "next_n", type=click.IntRange(min=1), default=None, metavar="N",
              help="Do not screen: show the next N records that need a human, most likely "
                   "includes first.")
@handle_errors
def screen(review_id: str, root: Path, run_id: str | None, next_n: int | None) -> None:
    """Decide every cluster: include, exclude with a reason, or uncertain (screening.csv)."""
    from reviewpipe.pipeline import open_review, run_stage

    if next_n:
        from reviewpipe.ranking import next_for_human
        from reviewpipe.runs import open_run

        protocol, paths = open_review(root, review_id)
        for row in next_for_human(protocol, open_run(paths, run_id), next_n):
            click.echo(f"{row['cluster_id']}\t{row['score']:.3f}\t{row['title']}")
        return
    folder, result = run_stage(root, review_id, "screen", run_id=run_id)
    _print_result(result)
    click.echo(str(folder.dir))


_stage_command("extract", "Extract outcomes of the included studies (studies.csv, outcomes.csv).")
_stage_command("synthesize", "Pool effects per comparison, outcome and time window "
                             "(effects.csv, forest plots).")
_stage_command("report", "Write prisma.json and the self-contained report.html.")


@cli.command("classify-design", context_settings=CONTEXT)
@click.option("--input", "input_path", required=True,
              type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="CSV with columns id, title, abstract and optional publication_types "
                   "(separated by ';').")
@click.option("--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the input's rows plus p_rct and design.")
@handle_errors
def classify_design_command(input_path: Path, output: Path) -> None:
    """Add p_rct and a design label to every row of a CSV of records."""
    from reviewpipe.design import classify_csv

    n = classify_csv(input_path, output)
    click.echo(f"classify-design: {n} records -> {output}", err=True)


@cli.command(context_settings=CONTEXT)
@review_options
@handle_errors
def validate(review_id: str, root: Path) -> None:
    """Check the protocol file; print its id and hash, or the first problem."""
    from reviewpipe.pipeline import open_review

    protocol, _ = open_review(root, review_id)
    click.echo(f"{protocol.path}: ok (review {protocol.review_id}, sha256 {protocol.sha256})")


@cli.command("build-snapshot", context_settings=CONTEXT)
@click.option("--corpus", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The corpus records.jsonl (../shared/corpus/records.jsonl).")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Snapshot folder to write, e.g. data/snapshots/dry-needling-pf.")
@handle_errors
def build_snapshot_command(corpus: Path, out: Path) -> None:
    """Rebuild the bundled offline snapshot from the topic corpus."""
    from reviewpipe.snapshot import build_snapshot

    summary = build_snapshot(corpus, out)
    for name, info in sorted(summary.items()):
        click.echo(f"{name}: {info}")


@cli.command(context_settings=CONTEXT)
@review_options
@click.option("--today", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              metavar="YYYY-MM-DD",
              help="End of the search window (default: today, UTC). For backfills and tests.")
@handle_errors
def update(review_id: str, root: Path, today: Any) -> None:
    """Search PubMed for records added since the last search; flag what needs a human.

    Writes new-trials.csv, new-trials.md and watch.csv (retractions, errata, expressions of
    concern and deletions among included records) and prints their folder last. Exit code 0
    when nothing needs a human, 3 when something does, 1 on error. Needs NCBI_EMAIL.
    """
    from reviewpipe.update import update_review

    result = update_review(root, review_id, today=today.date() if today else None)
    click.echo(f"update: window {result.mindate}-{result.maxdate} (entrez date), "
               f"{result.count} hits, {result.new_records} new, {result.needs_human} need a "
               f"human, {result.flagged} flagged", err=True)
    click.echo(str(result.report_dir))
    sys.exit(result.exit_code)


@cli.group(context_settings=CONTEXT)
def audit() -> None:
    """Check and explain a review's decisions: verify, explain."""


@audit.command("verify", context_settings=CONTEXT)
@review_options
@handle_errors
def audit_verify(review_id: str, root: Path) -> None:
    """Recompute the decision log's hash chain and every run's artifact hashes.

    Exit 0 when everything matches, 1 otherwise (each problem on its own line).
    """
    from reviewpipe.audit import verify
    from reviewpipe.pipeline import open_review

    _, paths = open_review(root, review_id)
    report = verify(paths)
    for problem in report.problems:
        click.echo(problem)
    click.echo(f"audit: {report.entries} log entries, {report.runs} runs, {report.files} "
               f"files: {'ok' if report.ok else f'{len(report.problems)} problem(s)'}",
               err=True)
    sys.exit(0 if report.ok else 1)


@audit.command("explain", context_settings=CONTEXT)
@review_options
@run_option
@click.argument("record_id")
@handle_errors
def audit_explain(review_id: str, root: Path, run_id: str | None, record_id: str) -> None:
    """Show RECORD_ID's whole path: source, query, duplicates and why, screening, humans."""
    import json

    from reviewpipe.audit import explain
    from reviewpipe.pipeline import open_review

    _, paths = open_review(root, review_id)
    click.echo(json.dumps(explain(paths, record_id, run_id), indent=2, ensure_ascii=False))


@audit.command("bundle", context_settings=CONTEXT)
@review_options
@run_option
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the zip (default: data/reviews/ID/audit-RUN_ID.zip).")
@handle_errors
def audit_bundle(review_id: str, root: Path, run_id: str | None, output: Path | None) -> None:
    """Write one zip with the protocol, searches, raw inputs, hashes, decision log, model card,
    environment lock and PRISMA counts; print its path."""
    from reviewpipe.audit import bundle
    from reviewpipe.pipeline import open_review

    protocol, paths = open_review(root, review_id)
    click.echo(str(bundle(paths, protocol.path, output, run_id)))


def main() -> None:
    cli(prog_name="reviewpipe")
