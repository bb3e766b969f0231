"""Active-learning ranking simulated on SYNERGY, as ``asreview simulate`` does (WSS@95, recall@10%).

For each SYNERGY dataset in ``<shared>/datasets/synergy_v1_with_abstracts``: one relevant and one
irrelevant record, drawn with a fixed seed, are the prior knowledge; then reviewpipe's ranker
(``reviewpipe.ranking``) is refitted on the screened records, the top unscreened record is
screened (its label revealed), and so on until every relevant record is found. The model is
refitted after *every* record, as ASReview does (``--retrain-every`` can thin that out after the
first 100 records; at SYNERGY's sizes it is not needed).

Metrics leave the two prior records out (as asreview-insights does by default):
WSS@95 = (N - n95) / N - 0.05, with n95 the records screened until ceil(0.95 * relevant) were
found; recall@10% = share of relevant records among the first ceil(0.10 * N) screened.

With ``--asreview``, ``asreview simulate`` runs with its default model (ELAS u4 in ASReview 2-3:
TF-IDF 1-2-grams, linear SVM C=0.11, relevant class weighted 9.8:1, max query, refit after every
record) on the same files with the same priors (``--prior-idx``) and ``--seed``, in a throwaway
virtual environment (``--asreview-venv``, created with ``pip install ASREVIEW_SPEC`` when
missing). Its screening order (the ``results`` table of the project's results.db, in insertion
order) is scored by the same code. Without ``--asreview``, reviewpipe is compared with ASReview
figures recorded by such a run (seed 0, one prior draw). Goal: reviewpipe's mean WSS@95 >=
ASReview's; exit 1 if not met (or, with ``--asreview``, if ASReview could not run).

Usage: python scripts/eval_ranking.py [--shared ../shared] [--asreview] [--seed 0] [--repeats 1]
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PROJECT = Path(__file__).resolve().parents[1]
SYNERGY = Path("datasets") / "synergy_v1_with_abstracts"
ASREVIEW_SPEC = "asreview==3.0.8"
ASREVIEW_VENV = Path(tempfile.gettempdir()) / "reviewpipe-asreview3-venv"
# `asreview simulate` 3.0.8 (default model ELAS u4, --seed 0) with the priors of --seed 0,
# --repeats 1 (run under Python 3.12.1, scikit-learn 1.9.1): (priors, WSS@95, recall@10%).
# The goal when --asreview is not given; ignored if the priors drawn now differ.
ASREVIEW_RECORDED: dict[str, tuple[list[int], float, float]] = {
    "Chou_2004": ([874, 1041], 0.2719, 0.1250),
    "Donners_2021": ([235, 164], 0.5711, 0.6429),
    "Jeyaraman_2020": ([1055, 742], 0.6405, 0.6842),
    "Meijboom_2021": ([802, 563], 0.7523, 0.6944),
    "Menon_2022": ([798, 621], 0.5368, 0.7123),
    "Nelson_2002": ([300, 232], 0.3044, 0.3165),
    "Oud_2018": ([845, 605], 0.7921, 0.8421),
    "Sep_2021": ([249, 173], 0.1656, 0.3077),
    "van_der_Valk_2021": ([565, 471], 0.4631, 0.3523),
}


@dataclass
class Score:
    """One simulated screening order, scored."""

    wss95: float
    recall10: float
    seconds: float


def load_dataset(path: Path) -> tuple[list[str], list[str], list[int]]:
    """Titles, abstracts and 0/1 ``label_included`` of a SYNERGY CSV, in row order."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return ([r["title"] or "" for r in rows], [r["abstract"] or "" for r in rows],
            [int(r["label_included"]) for r in rows])


def choose_priors(labels: Sequence[int], seed: int, repeat: int = 0) -> list[int]:
    """Row numbers of one relevant and one irrelevant record, drawn with ``(seed, repeat)``."""
    rng = np.random.default_rng([seed, repeat])
    y = np.asarray(labels)
    return [int(rng.choice(np.flatnonzero(y == 1))), int(rng.choice(np.flatnonzero(y == 0)))]


def score_order(labels: Sequence[int], order: Sequence[int], n_priors: int) -> tuple[float, float]:
    """WSS@95 and recall@10% of a screening order, its first ``n_priors`` records left out."""
    from reviewpipe.ranking import recall_at, wss_at

    screened = [labels[i] for i in order[n_priors:]]
    return wss_at(screened, 0.95), recall_at(screened, math.ceil(0.10 * len(screened)))


def run_reviewpipe(path: Path, priors: list[int], *, seed: int, retrain_every: int) -> Score:
    """Simulate screening ``path`` with reviewpipe's ranker."""
    from reviewpipe.ranking import record_text, simulate_screening, text_features

    start = time.perf_counter()
    titles, abstracts, labels = load_dataset(path)
    features = text_features([record_text(t, a) for t, a in zip(titles, abstracts, strict=True)])
    order = simulate_screening(features, labels, priors, random_state=seed,
                               retrain_every=retrain_every)
    return Score(*score_order(labels, order, len(priors)), time.perf_counter() - start)


class AsreviewUnavailable(RuntimeError):
    """ASReview could not be installed or run; the message says why."""


def _python_for_venv() -> str:
    # asreview 3 needs Python >= 3.10; 3.12 is tried first as the best-tested. pyenv shims fail
    # unless that version is selected, so pyenv's own installs are tried too.
    pyenv = Path(os.environ.get("PYENV_ROOT", "~/.pyenv")).expanduser() / "versions"
    for version in ("3.12", "3.13", "3.11", "3.10"):
        candidates = [shutil.which(f"python{version}"),
                      *map(str, sorted(pyenv.glob(f"{version}.*/bin/python{version}")))]
        for found in filter(None, candidates):
            if subprocess.run([found, "-c", "pass"], capture_output=True,
                              check=False).returncode == 0:
                return found
    return sys.executable


def ensure_asreview(venv: Path, spec: str) -> tuple[Path, str]:
    """The ``asreview`` executable in ``venv`` (installing ``spec`` there if needed), version."""
    exe = venv / "bin" / "asreview"
    if not exe.exists():
        if venv.exists():
            raise AsreviewUnavailable(f"{venv} exists but has no bin/asreview; pass another "
                                      "--asreview-venv")
        python = _python_for_venv()
        print(f"creating {venv} with {python} and pip install {spec} ...", flush=True)
        for command in ([python, "-m", "venv", str(venv)],
                        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", spec]):
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode:
                tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]
                raise AsreviewUnavailable(f"`{' '.join(command)}` failed: {tail[0]}")
    with tempfile.TemporaryDirectory(prefix="rp-asreview-") as tmp:
        # cwd: asreview drops a synergy cache file in the working directory.
        done = subprocess.run([str(exe), "--version"], capture_output=True, text=True,
                              check=False, cwd=tmp)
    match = re.search(r"(\d+)\.(\d+)\S*", done.stdout + done.stderr)
    if done.returncode or not match:
        raise AsreviewUnavailable(f"`{exe} --version` failed: {(done.stderr or '').strip()}")
    if int(match.group(1)) < 2:
        raise AsreviewUnavailable(f"{exe} is asreview {match.group(0)}; this comparison needs "
                                  "asreview >= 2 (--prior-idx, ELAS u4): pass --asreview-venv "
                                  "with a new path")
    return exe, match.group(0)


def run_asreview(exe: Path, path: Path, priors: list[int], *, seed: int) -> Score:
    """``asreview simulate`` on ``path`` with these priors; its order scored by our code."""
    _, _, labels = load_dataset(path)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rp-asreview-") as tmp:
        project = Path(tmp) / "sim.asreview"
        command = [str(exe), "simulate", str(path), "--prior-idx", *map(str, priors),
                   "--seed", str(seed), "-o", str(project)]
        # cwd: asreview drops a synergy cache file in the working directory.
        done = subprocess.run(command, cwd=tmp, capture_output=True, text=True, check=False,
                              env={**os.environ, "PYTHONWARNINGS": "ignore"})
        if done.returncode:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]
            raise AsreviewUnavailable(f"asreview simulate {path.name} failed: {tail[0]}")
        seconds = time.perf_counter() - start
        with zipfile.ZipFile(project) as archive:
            archive.extract("results.db", tmp)
        with sqlite3.connect(Path(tmp) / "results.db") as db:
            results = db.execute("SELECT record_id, label FROM results ORDER BY rowid").fetchall()
            n_records = db.execute("SELECT count(*) FROM record").fetchone()[0]
    order = [int(record_id) for record_id, _ in results]
    # record_id is the row number only if ASReview kept every row in order; check, not assume.
    if n_records != len(labels) or any(labels[i] != int(lab) for i, lab in results):
        raise AsreviewUnavailable(f"asreview's records for {path.name} do not line up with the "
                                  "CSV rows (row count or labels differ)")
    if sorted(order[:len(priors)]) != sorted(priors):
        raise AsreviewUnavailable(f"asreview did not start {path.name} from the priors {priors}")
    # It stops at the last relevant record, so whatever follows is irrelevant: any order scores
    # the same.
    seen = set(order)
    order += [i for i in range(len(labels)) if i not in seen]
    return Score(*score_order(labels, order, len(priors)), seconds)


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=PROJECT.parent / "shared")
    parser.add_argument("--asreview", action="store_true",
                        help="also run `asreview simulate` (default model) with the same priors")
    parser.add_argument("--asreview-venv", type=Path, default=ASREVIEW_VENV,
                        help=f"virtual environment with asreview >= 2 (default {ASREVIEW_VENV}; "
                             f"created with `pip install {ASREVIEW_SPEC}` when missing)")
    parser.add_argument("--seed", type=int, default=0, help="priors and models (default 0)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="prior draws per dataset, averaged (default 1)")
    parser.add_argument("--retrain-every", type=int, default=1, metavar="K",
                        help="after the first 100 records, refit every K records (default 1)")
    parser.add_argument("--datasets", nargs="*", default=None, help="names (default: all)")
    args = parser.parse_args(argv)
    folder = args.shared / SYNERGY
    if not folder.is_dir():
        print(f"eval_ranking: {folder} is absent; nothing to evaluate (needs ../shared).")
        return 2
    paths = sorted(p for p in folder.glob("*.csv")
                   if args.datasets is None or p.stem in args.datasets)
    if not paths:
        print(f"eval_ranking: no dataset CSV in {folder} matches {args.datasets}.")
        return 2
    started = time.perf_counter()

    exe, asreview_error, version = None, None, ""
    if args.asreview:
        try:
            exe, version = ensure_asreview(args.asreview_venv, ASREVIEW_SPEC)
        except AsreviewUnavailable as error:
            asreview_error = str(error)

    from reviewpipe.ranking import RELEVANT_WEIGHT_RATIO, SVM_C

    print(f"reviewpipe: linear SVM (C={SVM_C}, relevant:irrelevant class weight "
          f"{RELEVANT_WEIGHT_RATIO:g}:1) on TF-IDF word 1-2-grams of all records, title twice")
    schedule = ("refit after every record" if args.retrain_every == 1 else
                f"refit after every record for the first 100, then every {args.retrain_every}")
    print(f"seed {args.seed}, {args.repeats} prior draw(s) per dataset, {schedule}; metrics "
          "leave the 2 prior records out")
    ours: dict[str, list[Score]] = {}
    theirs: dict[str, list[Score]] = {}
    jobs = []
    for path in paths:
        labels = load_dataset(path)[2]
        for repeat in range(args.repeats):
            jobs.append((path, choose_priors(labels, args.seed, repeat)))
    # ASReview runs in its own processes, so it overlaps with reviewpipe's simulations.
    with ThreadPoolExecutor(max_workers=1) as pool:
        futures = {}
        if exe is not None:
            futures = {(path.stem, tuple(priors)): pool.submit(run_asreview, exe, path, priors,
                                                               seed=args.seed)
                       for path, priors in jobs}
        for path, priors in jobs:
            ours.setdefault(path.stem, []).append(
                run_reviewpipe(path, priors, seed=args.seed, retrain_every=args.retrain_every))
        for (name, _), future in futures.items():
            try:
                theirs.setdefault(name, []).append(future.result())
            except (AsreviewUnavailable, OSError, KeyError, sqlite3.Error,
                    zipfile.BadZipFile) as error:
                # A project file of another layout (a new asreview) lands here too.
                asreview_error = asreview_error or f"{type(error).__name__}: {error}"

    if asreview_error:
        print(f"ASReview could not run: {asreview_error}")
        theirs = {}
    live = bool(theirs)
    if not live and args.seed == 0 and args.repeats == 1:
        drawn = {path.stem: priors for path, priors in jobs}
        recorded = {name: ASREVIEW_RECORDED.get(name) for name in ours}
        if all(r is not None and r[0] == drawn[name] for name, r in recorded.items()):
            theirs = {name: [Score(r[1], r[2], float("nan"))]
                      for name, r in recorded.items() if r is not None}
    source = (f"`asreview simulate` {version} run now (default model, same priors and seed)"
              if live else f"figures recorded from `asreview simulate` {ASREVIEW_SPEC} (default "
              "model, same priors and seed)")

    header = (f"{'dataset':<20}{'records':>8}{'incl':>6}  "
              f"{'reviewpipe WSS@95':>17}{'R@10%':>7}{'s':>5}")
    if theirs:
        header += f"  {'ASReview WSS@95':>15}{'R@10%':>7}{'s':>5}"
    print(header)

    def cells(scores: list[Score], width: int) -> str:
        return (f"{_mean([s.wss95 for s in scores]):>{width}.3f}"
                f"{_mean([s.recall10 for s in scores]):>7.3f}"
                f"{sum(s.seconds for s in scores):>5.0f}")

    for path in paths:
        labels = load_dataset(path)[2]
        line = f"{path.stem:<20}{len(labels):>8}{sum(labels):>6}  {cells(ours[path.stem], 17)}"
        if theirs:
            line += f"  {cells(theirs.get(path.stem, []), 15)}"
        print(line.replace(" nan", "   -"))

    def means(runs: dict[str, list[Score]], width: int) -> str:
        # Each dataset counts once, whatever its number of prior draws.
        return (f"{_mean([_mean([s.wss95 for s in v]) for v in runs.values()]):>{width}.3f}"
                f"{_mean([_mean([s.recall10 for s in v]) for v in runs.values()]):>7.3f}"
                f"{sum(s.seconds for v in runs.values() for s in v):>5.0f}")

    line = f"{'mean (s: total)':<34}  {means(ours, 17)}"
    if theirs:
        line += f"  {means(theirs, 15)}"
    print(line.replace(" nan", "   -"))
    mean_ours = _mean([_mean([s.wss95 for s in v]) for v in ours.values()])
    mean_theirs = _mean([_mean([s.wss95 for s in v]) for v in theirs.values()])
    print(f"ASReview: {source}" if theirs else "ASReview: not run (--asreview not given)"
          if not args.asreview else "ASReview: could not run (see above)")
    print(f"wall time {time.perf_counter() - started:.0f}s")
    if not theirs:
        print("goal (mean WSS@95 >= ASReview's): not checked, no ASReview figures for these "
              "settings" + (" (see above)" if asreview_error else ""))
        return 1 if args.asreview else 0
    met = mean_ours >= mean_theirs - 1e-9
    print(f"goal: reviewpipe mean WSS@95 {mean_ours:.3f} >= ASReview's {mean_theirs:.3f}: "
          + ("met" if met else "NOT met"))
    if asreview_error:
        print("exit 1: --asreview was asked for but ASReview could not run (see above)")
        return 1
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
