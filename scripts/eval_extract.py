"""Score the extraction rules against the labelled ``outcome_facts`` of ../shared/corpus.

For every eligible trial in ``works_dev.jsonl`` (``eligible_for_yang2024 == "yes"``) the
abstract goes through ``extract_from_text`` and is compared with its facts:

- per-arm n exact: the trial's "participants randomised" facts all match an extracted arm with
  the same n and the same role (dry needling or control);
- instrument recall: each protocol instrument named in a fact is among the instruments found
  (facts on instruments outside the protocol, e.g. goniometry, are counted apart);
- value accuracy: each mean / sd / md / ci_low / ci_high / p of a fact on a protocol instrument
  is found on that instrument, for the same kind of arm (dry needling, control, between groups,
  all groups), with the same value; "+time" also requires the same time point when the fact
  names exactly one.

Usage: ``python scripts/eval_extract.py [--protocol queries/dry-needling-pf.toml]``.
Exit status: 0 when every goal is met, 1 when one is missed, 2 when ../shared is absent.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared"
WORKS = SHARED / "corpus" / "works_dev.jsonl"
GOALS = {"per_arm_n": 0.95, "instrument_recall": 0.95, "value_accuracy": 0.95}
FIELDS = ("mean", "sd", "md", "ci_low", "ci_high", "p")

if str(PROJECT / "src") not in sys.path:
    sys.path.insert(0, str(PROJECT / "src"))

from reviewpipe.extract_doc import Extraction, canonical_instrument  # noqa: E402
from reviewpipe.extract_values import extract_from_text  # noqa: E402
from reviewpipe.numbers import find_times, normalise_p  # noqa: E402
from reviewpipe.protocol import Protocol, load_protocol  # noqa: E402


@dataclass
class Score:
    """Counts for one trial or the total."""

    arm_n_trials: int = 0
    arm_n_exact: int = 0
    instruments: int = 0
    instruments_found: int = 0
    out_of_protocol: int = 0
    values: int = 0
    values_right: int = 0
    values_right_time: int = 0
    misses: list[str] = field(default_factory=list)

    def add(self, other: Score) -> None:
        for name in ("arm_n_trials", "arm_n_exact", "instruments", "instruments_found",
                     "out_of_protocol", "values", "values_right", "values_right_time"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.misses.extend(other.misses)

    def rates(self) -> dict[str, float]:
        def rate(hit: int, total: int) -> float:
            return hit / total if total else 1.0
        return {"per_arm_n": rate(self.arm_n_exact, self.arm_n_trials),
                "instrument_recall": rate(self.instruments_found, self.instruments),
                "value_accuracy": rate(self.values_right, self.values),
                "value_accuracy_time": rate(self.values_right_time, self.values)}


def _fact_role(arm: str, protocol: Protocol) -> str:
    text = (arm or "").lower()
    if re.search(r"\bvs\.?\b|\bversus\b|\bbetween\b", text):
        return "between"
    if re.search(r"\ball groups\b|\beach group\b|\bboth groups\b|\bcombined\b|\bwhole\b|"
                 r"\band\b.*\bgroups\b", text):
        return "all"
    terms = [t.lower() for t in protocol.criteria["intervention"]["terms"]]
    if any(t in text for t in terms) and not re.search(r"\bsham\b|\bplacebo\b", text):
        return "dn"
    return "control"


def _value_role(value: object, extraction: Extraction) -> str:
    arm = getattr(value, "arm", "")
    if arm:
        roles = {a.label: a.role for a in extraction.arms}
        return roles.get(arm, "control")
    return "all" if getattr(value, "contrast", "") in ("all groups", "whole sample") else "between"


def _fact_time(text: str | None) -> tuple[bool, float | None] | None:
    """(is baseline, weeks) when the fact names exactly one time point, else None."""
    times = [t for t in find_times(text or "") if not t.duration]
    if len(times) != 1:
        return None
    return times[0].baseline, times[0].weeks


def _same(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and abs(a - b) < 1e-6


def score_work(work: dict, protocol: Protocol) -> tuple[Score, Extraction]:
    """Score one eligible work's abstract against its facts."""
    extraction = extract_from_text(work.get("abstract") or "", source="abstract",
                                   protocol=protocol)
    score = Score()
    facts = work.get("outcome_facts") or []
    wid = work["work_id"]
    arm_facts = [f for f in facts if f.get("outcome") == "participants randomised" and f.get("n")]
    if arm_facts:
        score.arm_n_trials = 1
        wanted = Counter((int(f["n"]), _fact_role(f["arm"], protocol) == "dn") for f in arm_facts)
        got = Counter((a.n, a.role == "dn") for a in extraction.arms if a.n)
        if not wanted - got:
            score.arm_n_exact = 1
        else:
            score.misses.append(f"{wid} arm n: wanted {dict(wanted)}, got {dict(got)}")
    found = {i.name for i in extraction.instruments}
    wanted_instruments: set[str] = set()
    for fact in facts:
        if not fact.get("instrument"):
            continue
        names = canonical_instrument(fact["instrument"], protocol)
        if not names:
            score.out_of_protocol += 1
            continue
        wanted_instruments.update(names)
        for name in FIELDS:
            if fact.get(name) is None:
                continue
            score.values += 1
            role = _fact_role(fact.get("arm") or "", protocol)
            hits = [v for v in extraction.values if v.instrument in names
                    and _value_role(v, extraction) == role
                    and (normalise_p(str(fact["p"])) == v.p if name == "p"
                         else _same(getattr(v, name), float(fact[name])))]
            if hits:
                score.values_right += 1
                when = _fact_time(fact.get("timepoint"))
                if when is None or any((v.value_type == "baseline") == when[0] and (
                        when[0] or _same(v.timepoint_weeks, when[1])) for v in hits):
                    score.values_right_time += 1
                else:
                    score.misses.append(f"{wid} {name}={fact[name]} ({fact['instrument']}): "
                                        f"right value, other time than {fact['timepoint']!r}")
            else:
                score.misses.append(f"{wid} {name}={fact[name]} ({fact['instrument']}, "
                                    f"{fact.get('arm')}, {fact.get('timepoint')}) not found")
    score.instruments = len(wanted_instruments)
    score.instruments_found = len(wanted_instruments & found)
    for name in sorted(wanted_instruments - found):
        score.misses.append(f"{wid} instrument {name} not found")
    return score, extraction


def evaluate(works: list[dict], protocol: Protocol) -> tuple[Score, list[tuple[str, Score]]]:
    """Total and per-trial scores over the eligible works."""
    total, rows = Score(), []
    for work in works:
        if work.get("eligible_for_yang2024") != "yes":
            continue
        score, _ = score_work(work, protocol)
        total.add(score)
        rows.append((work["work_id"], score))
    return total, rows


def load_works(path: Path = WORKS) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--protocol", default=str(PROJECT / "queries" / "dry-needling-pf.toml"))
    parser.add_argument("--verbose", "-v", action="store_true", help="list every miss")
    parser.add_argument("--shared", type=Path, default=SHARED)
    args = parser.parse_args(argv)
    works = args.shared / "corpus" / "works_dev.jsonl"
    if not works.is_file():
        print(f"Error: {works}: not found. The evaluation needs the shared corpus in "
              f"{args.shared} (beside the project root).", file=sys.stderr)
        return 2
    protocol = load_protocol(args.protocol)
    total, rows = evaluate(load_works(works), protocol)
    print(f"{'work':<6} {'arm n':>7} {'instruments':>12} {'values':>8} {'+time':>7} "
          f"{'outside protocol':>17}")
    for wid, s in rows:
        arm = f"{s.arm_n_exact}/{s.arm_n_trials}" if s.arm_n_trials else "-"
        print(f"{wid:<6} {arm:>7} {s.instruments_found:>5}/{s.instruments:<6} "
              f"{s.values_right:>4}/{s.values:<3} {s.values_right_time:>4}/{s.values:<3}"
              f"{s.out_of_protocol:>12}")
    rates = total.rates()
    print()
    print(f"per-arm n exact     {total.arm_n_exact}/{total.arm_n_trials} trials with arm-n facts"
          f"  {rates['per_arm_n']:.0%}  (goal {GOALS['per_arm_n']:.0%})")
    print(f"instrument recall   {total.instruments_found}/{total.instruments}"
          f"  {rates['instrument_recall']:.0%}  (goal {GOALS['instrument_recall']:.0%})")
    print(f"value accuracy      {total.values_right}/{total.values}"
          f"  {rates['value_accuracy']:.0%}  (goal {GOALS['value_accuracy']:.0%}); "
          f"with time point {total.values_right_time}/{total.values} "
          f"{rates['value_accuracy_time']:.0%}")
    print(f"facts on instruments outside the protocol (not scored): {total.out_of_protocol}")
    if total.misses and (args.verbose or any(rates[k] < g for k, g in GOALS.items())):
        print("\nmisses:")
        for miss in total.misses:
            print(f"  {miss}")
    missed = [k for k, goal in GOALS.items() if rates[k] < goal]
    if missed:
        print(f"\ngoal missed: {', '.join(missed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
