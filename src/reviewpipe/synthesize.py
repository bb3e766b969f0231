"""Stage 5, synthesize: per-study effects, random-effects pooling and forest plots.

For every comparison × outcome × time window: mean differences on a common scale (pain on
0–10, VAS in mm divided by 10) and standardised mean differences (Hedges' g) across
instruments, pooled by REML (metafor's default), DerSimonian–Laird and Paule–Mandel. Final
values, change scores and reported differences are pooled separately, never mixed silently.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from reviewpipe.forest import ForestRow, forest_svg
from reviewpipe.meta import PooledResult, hedges_g, leave_one_out, md_from_ci, mean_difference, pool
from reviewpipe.protocol import Protocol
from reviewpipe.runs import Run, StageResult
from reviewpipe.store import Store

MODELS = ("REML", "DL", "PM")
PRIMARY_MODEL = "REML"
EFFECT_COLUMNS = ["comparison", "outcome", "time_window", "measure", "value_type", "k",
                  "estimate", "ci_low", "ci_high", "p", "i2", "tau2", "pi_low", "pi_high", "q",
                  "model", "scale", "studies", "instruments", "forest"]
STUDY_EFFECT_COLUMNS = ["comparison", "outcome", "time_window", "measure", "value_type",
                        "cluster_id", "label", "instrument", "timepoint_weeks", "estimate",
                        "variance", "ci_low", "ci_high", "basis"]
SENSITIVITY_COLUMNS = ["comparison", "outcome", "time_window", "measure", "value_type", "omitted",
                       "k", "estimate", "ci_low", "ci_high", "i2", "model"]
# RevMan 5 data entry: continuous outcomes by arm, or generic inverse variance (estimate, SE).
REVMAN_COLUMNS = ["comparison", "outcome", "subgroup", "study", "data_type",
                  "experimental_mean", "experimental_sd", "experimental_total", "control_mean",
                  "control_sd", "control_total", "estimate", "se"]
_SHAM = re.compile(r"\b(?:sham|placebo)\b", re.I)


@dataclass(frozen=True)
class StudyEffect:
    comparison: str
    outcome: str
    time_window: str
    measure: str
    value_type: str
    cluster_id: str
    label: str
    instrument: str
    timepoint_weeks: float
    estimate: float
    variance: float
    basis: str
    # (mean, sd, n) of the intervention and control arms, when the effect came from them.
    arms: tuple[tuple[float, float, float], tuple[float, float, float]] | None = None

    @property
    def ci(self) -> tuple[float, float]:
        half = 1.959964 * math.sqrt(self.variance)
        return self.estimate - half, self.estimate + half


def _num(value: str | None) -> float | None:
    try:
        number = float(value) if value not in (None, "") else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None


def outcome_of(protocol: Protocol) -> dict[str, tuple[str, str]]:
    """Instrument name → (protocol outcome, declared scale)."""
    return {i["name"]: (o["name"], i["scale"]) for o in protocol.data["outcomes"]
            for i in o["instruments"]}


def higher_is_better(protocol: Protocol) -> set[str]:
    return {i["name"] for o in protocol.data["outcomes"] for i in o["instruments"]
            if i["better"] == "higher"}


def window_of(protocol: Protocol, weeks: float) -> str | None:
    for window in protocol.data["time_windows"]:
        if window["min_weeks"] <= weeks < window["max_weeks"]:
            return window["name"]
    return None


def _is_dn_arm(arm: str, protocol: Protocol) -> bool:
    terms = protocol.criteria["intervention"]["terms"]
    text = arm.lower()
    return any(t.lower() in text for t in terms) and not _SHAM.search(arm)


def _pain_scale(instrument: str, scale: str) -> float:
    """Multiplier taking a pain value to the 0–10 scale (VAS reported in mm → /10)."""
    text = (scale or "").lower()
    if "mm" in text or "100" in text:
        return 0.1
    return 1.0


def study_effects(protocol: Protocol, studies: list[dict[str, str]],
                  outcomes: list[dict[str, str]]) -> list[StudyEffect]:
    """Every per-study effect the extracted numbers allow, with how it was computed."""
    instruments = outcome_of(protocol)
    by_study = {s["cluster_id"]: s for s in studies}
    arm_n: dict[tuple[str, str], float] = {}
    for row in outcomes:
        n = _num(row.get("n"))
        if n and row.get("arm"):
            arm_n.setdefault((row["cluster_id"], row["arm"]), n)
    groups: dict[tuple[str, str, float], list[dict[str, str]]] = defaultdict(list)
    for row in outcomes:
        weeks = _num(row.get("timepoint_weeks"))
        if row.get("instrument") in instruments and weeks is not None and row["cluster_id"] in (
                by_study):
            groups[(row["cluster_id"], row["instrument"], weeks)].append(row)
    effects: list[StudyEffect] = []
    for (cluster_id, instrument, weeks), rows in sorted(groups.items()):
        study = by_study[cluster_id]
        outcome, declared_scale = instruments[instrument]
        window = window_of(protocol, weeks)
        comparisons = [c for c in (study.get("comparison") or "").split(";")
                       if c and c != "unclear"]
        if window is None or not comparisons:
            continue
        label = f"{study.get('first_author') or cluster_id} {study.get('year') or ''}".strip()
        common = dict(outcome=outcome, time_window=window, cluster_id=cluster_id, label=label,
                      instrument=instrument, timepoint_weeks=weeks)
        factor = _pain_scale(instrument, rows[0].get("scale") or declared_scale) if (
            outcome == "pain") else 1.0
        n_total = _num(study.get("n_randomised"))
        effects.extend(_effects_for(rows, arm_n, protocol, common, factor, outcome, comparisons,
                                    n_total, _arm_count(study)))
    return effects


def _arm_count(study: dict[str, str]) -> int:
    arms = [a for a in (study.get("arms") or "").split("; ") if a.strip()]
    return len(arms)


def control_comparison(arm: str, comparisons: list[str], protocol: Protocol) -> str | None:
    """The study comparison a control arm belongs to, by the protocol's control terms."""
    if len(comparisons) == 1:
        return comparisons[0]
    text = arm.lower()
    declared = {c["id"]: c["control_terms"] for c in protocol.data["comparisons"]}
    for comparison in comparisons:
        if any(term.lower() in text for term in declared.get(comparison, [])):
            return comparison
    return None


def _effects_for(rows: list[dict[str, str]], arm_n: dict[tuple[str, str], float],
                 protocol: Protocol, common: dict[str, Any], factor: float, outcome: str,
                 comparisons: list[str], n_total: float | None, n_arms: int
                 ) -> list[StudyEffect]:
    out: list[StudyEffect] = []
    md_measure = "MD (0-10)" if outcome == "pain" else f"MD ({common['instrument']})"
    if len(comparisons) == 1:
        for row in rows:
            md, low, high = (_num(row.get(k)) for k in ("md", "ci_low", "ci_high"))
            if md is None or low is None or high is None:
                continue
            try:
                estimate, variance = md_from_ci(md * factor, low * factor, high * factor)
            except ValueError:
                continue
            out.append(StudyEffect(comparison=comparisons[0], measure=md_measure,
                                   value_type="difference", estimate=estimate,
                                   variance=variance, basis=f"reported MD with 95% CI "
                                   f"({row.get('source')} {row.get('span')})", **common))
            break
    arms = [r for r in rows if r.get("arm")]
    dn = [r for r in arms if _is_dn_arm(r["arm"], protocol)]
    if len(dn) != 1:
        return out
    by_comparison: dict[str | None, list[dict[str, str]]] = defaultdict(list)
    for row in arms:
        if not _is_dn_arm(row["arm"], protocol):
            by_comparison[control_comparison(row["arm"], comparisons, protocol)].append(row)
    for comparison, controls in sorted(by_comparison.items(), key=lambda kv: str(kv[0])):
        if comparison is None or len(controls) != 1:
            continue  # an arm no comparison claims, or two controls for one: not guessed
        out.extend(_arm_effects(dn[0], controls[0], arm_n, protocol, common, factor,
                                md_measure, comparison, n_total, n_arms))
    return out


def _arm_effects(a: dict[str, str], b: dict[str, str], arm_n: dict[tuple[str, str], float],
                 protocol: Protocol, common: dict[str, Any], factor: float, md_measure: str,
                 comparison: str, n_total: float | None, n_arms: int) -> list[StudyEffect]:
    out: list[StudyEffect] = []
    n1 = _num(a.get("n")) or arm_n.get((a["cluster_id"], a["arm"]))
    n2 = _num(b.get("n")) or arm_n.get((b["cluster_id"], b["arm"]))
    assumed = ""
    if (n1 is None or n2 is None) and n_total and n_arms >= 2:
        # Only the total is reported: equal allocation assumed, and said so in the basis.
        share = n_total / n_arms
        n1, n2 = n1 or share, n2 or share
        assumed = f"; n per arm assumed equal ({n_total:g}/{n_arms})"
    for value_type, key in (("final", "mean"), ("change", "mean_change")):
        m1, m2 = _num(a.get(key)), _num(b.get(key))
        s1, s2 = _num(a.get("sd")), _num(b.get("sd"))
        if None in (m1, m2, s1, s2, n1, n2) or not (s1 > 0 and s2 > 0) or min(n1, n2) < 2:
            continue
        basis = (f"arm {value_type} values: {a['arm']} vs {b['arm']} "
                 f"({a.get('source')} {a.get('span')}; {b.get('source')} {b.get('span')})"
                 f"{assumed}")
        md, var = mean_difference(m1 * factor, s1 * factor, n1, m2 * factor, s2 * factor, n2)
        arms = ((m1, s1, n1), (m2, s2, n2))
        out.append(StudyEffect(comparison=comparison, measure=md_measure, value_type=value_type,
                               estimate=md, variance=var, basis=basis, arms=arms, **common))
        g, gvar = hedges_g(m1, s1, n1, m2, s2, n2)
        if common["instrument"] in higher_is_better(protocol):
            g = -g  # aligned: a negative SMD favours dry needling on every instrument
        out.append(StudyEffect(comparison=comparison, measure="SMD (Hedges' g)",
                               value_type=value_type, estimate=g, variance=gvar, basis=basis,
                               arms=arms, **common))
    return out


def _revman_row(effect: StudyEffect) -> dict[str, Any]:
    row: dict[str, Any] = {
        "comparison": effect.comparison, "outcome": f"{effect.outcome}: {effect.measure}",
        "subgroup": f"{effect.time_window} ({effect.value_type})", "study": effect.label}
    if effect.arms:
        (m1, s1, n1), (m2, s2, n2) = effect.arms
        row.update(data_type="continuous", experimental_mean=f"{m1:g}",
                   experimental_sd=f"{s1:g}", experimental_total=f"{n1:g}",
                   control_mean=f"{m2:g}", control_sd=f"{s2:g}", control_total=f"{n2:g}")
    else:
        row.update(data_type="generic inverse variance", estimate=_fmt(effect.estimate),
                   se=_fmt(math.sqrt(effect.variance)))
    return row


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def synthesize(protocol: Protocol, store: Store, run: Run) -> StageResult:
    """Pool the extracted outcomes; write effects.csv, study_effects.csv, sensitivity.csv."""
    studies = run.read_csv("studies.csv", "extract")
    outcomes = run.read_csv("outcomes.csv", "extract")
    effects = study_effects(protocol, studies, outcomes)
    groups: dict[tuple[str, str, str, str, str], list[StudyEffect]] = defaultdict(list)
    for effect in effects:
        key = (effect.comparison, effect.outcome, effect.time_window, effect.measure,
               effect.value_type)
        # One effect per study per analysis: the latest time point inside the window.
        groups[key] = [e for e in groups[key] if e.cluster_id != effect.cluster_id or
                       e.timepoint_weeks > effect.timepoint_weeks]
        if not any(e.cluster_id == effect.cluster_id for e in groups[key]):
            groups[key].append(effect)
    rows, sensitivity, used, forests, revman = [], [], [], {}, []
    for key in sorted(groups):
        members = sorted(groups[key], key=lambda e: e.cluster_id)
        comparison, outcome, window, measure, value_type = key
        y = [e.estimate for e in members]
        v = [e.variance for e in members]
        name = _forest_name(key)
        for model in MODELS:
            result = pool(y, v, method=model)
            rows.append(_effect_row(key, members, result, model,
                                    name if model == PRIMARY_MODEL else ""))
            if model == PRIMARY_MODEL:
                forests[name] = _forest(key, members, result, higher_is_better(protocol))
                if len(members) >= 3:
                    for omitted, loo in leave_one_out(y, v, [e.label for e in members],
                                                      method=model):
                        sensitivity.append({
                            "comparison": comparison, "outcome": outcome,
                            "time_window": window, "measure": measure, "value_type": value_type,
                            "omitted": omitted, "k": loo.k, "estimate": _fmt(loo.estimate),
                            "ci_low": _fmt(loo.ci_low), "ci_high": _fmt(loo.ci_high),
                            "i2": _fmt(loo.i2), "model": model})
        for e in members:
            low, high = e.ci
            used.append({**e.__dict__, "estimate": _fmt(e.estimate),
                         "variance": _fmt(e.variance), "ci_low": _fmt(low),
                         "ci_high": _fmt(high)})
            if not measure.startswith("SMD"):
                revman.append(_revman_row(e))
    for name, svg in sorted(forests.items()):
        run.write_text(f"forest/{name}.svg", svg)
    run.write_csv("effects.csv", EFFECT_COLUMNS, rows)
    run.write_csv("study_effects.csv", STUDY_EFFECT_COLUMNS, used)
    run.write_csv("sensitivity.csv", SENSITIVITY_COLUMNS, sensitivity)
    run.write_csv("revman.csv", REVMAN_COLUMNS, revman)
    counts = {"analyses": len(groups), "study_effects": len(used),
              "studies_pooled": len({e["cluster_id"] for e in used})}
    outputs = ("effects.csv", "study_effects.csv", "sensitivity.csv", "revman.csv",
               *(f"forest/{name}.svg" for name in sorted(forests)))
    run.record_stage("synthesize", counts=counts, outputs=outputs)
    return StageResult("synthesize", counts, outputs)


def _effect_row(key: tuple[str, ...], members: list[StudyEffect], result: PooledResult,
                model: str, forest: str) -> dict[str, Any]:
    comparison, outcome, window, measure, value_type = key
    return {
        "comparison": comparison, "outcome": outcome, "time_window": window,
        "measure": measure, "value_type": value_type, "k": result.k,
        "estimate": _fmt(result.estimate), "ci_low": _fmt(result.ci_low),
        "ci_high": _fmt(result.ci_high), "p": _fmt(result.p), "i2": _fmt(result.i2),
        "tau2": _fmt(result.tau2), "pi_low": _fmt(result.pi_low),
        "pi_high": _fmt(result.pi_high), "q": _fmt(result.q), "model": model,
        "scale": "0-10" if measure == "MD (0-10)" else "",
        "studies": ";".join(e.cluster_id for e in members),
        "instruments": ";".join(sorted({e.instrument for e in members})),
        "forest": f"forest/{forest}.svg" if forest else "",
    }


def _forest_name(key: tuple[str, ...]) -> str:
    text = "-".join(key).lower()
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


def _forest(key: tuple[str, ...], members: list[StudyEffect], result: PooledResult,
            higher: set[str]) -> str:
    comparison, outcome, window, measure, value_type = key
    rows = []
    for effect, weight in zip(members, result.weights, strict=True):
        low, high = effect.ci
        rows.append(ForestRow(label=f"{effect.label} ({effect.instrument}, "
                                    f"{effect.timepoint_weeks:g} wk)",
                              estimate=effect.estimate, ci_low=low, ci_high=high,
                              weight=weight))
    favours = ("Favours DN", "Favours control")
    if measure.startswith("MD") and members[0].instrument in higher:
        favours = ("Favours control", "Favours DN")
    return forest_svg(rows, result, title=f"{comparison}: {outcome}, {window} ({value_type})",
                      measure_label=measure, favours=favours)
