"""Effect sizes and inverse-variance pooling (fixed effect and random effects).

Everything here is a pure function of numbers in, numbers out, so that the
pooling stage can be rerun and cross-checked against R's metafor.

Conventions follow metafor (Viechtbauer 2010) unless noted:

* ``hedges_g`` with the default ``correction="exact"`` reproduces
  ``escalc(measure="SMD")`` (exact gamma-function bias correction, large-sample
  variance ``1/n1 + 1/n2 + g^2 / (2 (n1 + n2))``).
* I² for random-effects fits is ``tau2 / (tau2 + s2)`` with ``s2`` the "typical"
  within-study variance (Higgins & Thompson 2002), which equals
  ``(Q - df) / Q`` for DerSimonian-Laird and is what metafor prints for every
  estimator.
* The prediction interval uses a t quantile with ``k - 2`` df (Higgins,
  Thompson & Spiegelhalter 2009; Cochrane Handbook).  metafor's ``predict()``
  uses the normal quantile unless asked otherwise, so PIs differ from its
  default output by design.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import optimize, special, stats
from statsmodels.stats.meta_analysis import combine_effects

__all__ = [
    "Method",
    "PooledResult",
    "hedges_g",
    "leave_one_out",
    "md_from_ci",
    "mean_difference",
    "pool",
    "rescale_effect",
    "scale_factor",
    "scale_to",
    "scale_variance_to",
]

Method = Literal["DL", "PM", "REML", "FE"]
_METHODS: tuple[str, ...] = ("DL", "PM", "REML", "FE")

# Full range of named outcome scales.  A VAS in mm and a 0-100 NRS share a
# range, as do a VAS in cm and a 0-10 NRS.
_SCALE_RANGES: dict[str, float] = {"mm": 100.0, "0-100": 100.0, "cm": 10.0, "0-10": 10.0}


# --------------------------------------------------------------------------- effect sizes


def _check_arm(name: str, sd: float, n: float) -> None:
    if not (math.isfinite(sd) and sd > 0):
        raise ValueError(f"{name}: standard deviation must be a positive number, got {sd!r}")
    if not (math.isfinite(n) and n >= 1):
        raise ValueError(f"{name}: sample size must be >= 1, got {n!r}")


def mean_difference(
    m1: float, sd1: float, n1: float, m2: float, sd2: float, n2: float
) -> tuple[float, float]:
    """Raw mean difference ``m1 - m2`` and its sampling variance.

    Parameters
    ----------
    m1, sd1, n1 : float
        Mean, standard deviation and size of the intervention arm.
    m2, sd2, n2 : float
        The same for the control arm.

    Returns
    -------
    (md, var) : tuple of float
        ``var = sd1**2/n1 + sd2**2/n2`` (no equal-variance assumption; metafor's
        ``escalc(measure="MD")`` default).
    """
    _check_arm("arm 1", sd1, n1)
    _check_arm("arm 2", sd2, n2)
    return float(m1 - m2), float(sd1**2 / n1 + sd2**2 / n2)


def _j_exact(df: float) -> float:
    # lgamma form avoids the overflow of gamma() for df >~ 340
    return math.exp(
        special.gammaln(df / 2) - 0.5 * math.log(df / 2) - special.gammaln((df - 1) / 2)
    )


def hedges_g(
    m1: float,
    sd1: float,
    n1: float,
    m2: float,
    sd2: float,
    n2: float,
    *,
    correction: Literal["exact", "approx"] = "exact",
    vtype: Literal["LS", "borenstein"] = "LS",
) -> tuple[float, float]:
    """Bias-corrected standardised mean difference (Hedges' g) and its variance.

    ``d = (m1 - m2) / s_pooled`` with ``s_pooled`` the usual pooled SD on
    ``n1 + n2 - 2`` df, and ``g = J d``.

    Parameters
    ----------
    m1, sd1, n1, m2, sd2, n2 : float
        Arm summaries as for :func:`mean_difference`.
    correction : {"exact", "approx"}
        ``"exact"``: ``J = Γ(m/2) / (sqrt(m/2) Γ((m-1)/2))`` with ``m = n1+n2-2``
        (Hedges 1981; what metafor uses).  ``"approx"``: ``J = 1 - 3/(4(n1+n2)-9)``
        (Borenstein et al. 2009, RevMan).  They differ by < 1e-3 at n1+n2 = 12 and
        < 1e-6 once n1+n2 exceeds ~120.
    vtype : {"LS", "borenstein"}
        ``"LS"``: ``1/n1 + 1/n2 + g²/(2(n1+n2))`` (Hedges & Olkin large-sample;
        metafor ``vtype="LS"``).  ``"borenstein"``: ``J² (1/n1 + 1/n2 + d²/(2(n1+n2)))``.

    Returns
    -------
    (g, var) : tuple of float
    """
    _check_arm("arm 1", sd1, n1)
    _check_arm("arm 2", sd2, n2)
    df = n1 + n2 - 2
    if df <= 1:
        raise ValueError(f"Hedges' g needs n1 + n2 > 3, got n1={n1!r}, n2={n2!r}")
    s_pooled = math.sqrt(((n1 - 1) * sd1**2 + (n2 - 1) * sd2**2) / df)
    d = (m1 - m2) / s_pooled
    if correction == "exact":
        j = _j_exact(df)
    elif correction == "approx":
        j = 1 - 3 / (4 * (n1 + n2) - 9)
    else:
        raise ValueError(f"correction must be 'exact' or 'approx', got {correction!r}")
    g = j * d
    n = n1 + n2
    if vtype == "LS":
        var = 1 / n1 + 1 / n2 + g**2 / (2 * n)
    elif vtype == "borenstein":
        var = j**2 * (1 / n1 + 1 / n2 + d**2 / (2 * n))
    else:
        raise ValueError(f"vtype must be 'LS' or 'borenstein', got {vtype!r}")
    return float(g), float(var)


def md_from_ci(
    md: float, ci_low: float, ci_high: float, *, level: float = 0.95
) -> tuple[float, float]:
    """Recover ``(md, var)`` from a reported mean difference and its confidence interval.

    ``se = (ci_high - ci_low) / (2 z)`` with ``z`` the normal quantile for
    ``level`` (1.959964 for 95 %), as in the Cochrane Handbook (section 6.5.2.3).

    Raises
    ------
    ValueError
        If the interval is empty or does not contain ``md``.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    if not all(math.isfinite(x) for x in (md, ci_low, ci_high)):
        raise ValueError("md and its CI limits must be finite numbers")
    if not ci_low < ci_high:
        raise ValueError(f"CI lower limit {ci_low} must be below upper limit {ci_high}")
    if not ci_low <= md <= ci_high:
        raise ValueError(f"estimate {md} lies outside its CI [{ci_low}, {ci_high}]")
    z = stats.norm.ppf(0.5 + level / 2)
    se = (ci_high - ci_low) / (2 * z)
    return float(md), float(se**2)


def scale_factor(from_scale: str | float, to_scale: str | float) -> float:
    """Multiplier taking a difference on ``from_scale`` to ``to_scale``.

    Scales are named (``"mm"``/``"0-100"`` = 100, ``"cm"``/``"0-10"`` = 10) or
    given as the width of their range.  ``scale_factor("mm", "cm") == 0.1``.
    """
    return _scale_width(to_scale) / _scale_width(from_scale)


def _scale_width(scale: str | float) -> float:
    if isinstance(scale, str):
        try:
            return _SCALE_RANGES[scale]
        except KeyError:
            known = ", ".join(sorted(_SCALE_RANGES))
            raise ValueError(f"unknown scale {scale!r}; known: {known}") from None
    width = float(scale)
    if not (math.isfinite(width) and width > 0):
        raise ValueError(f"a scale width must be a positive number, got {scale!r}")
    return width


def scale_to(value: float, from_scale: str | float, to_scale: str | float) -> float:
    """Rescale a mean, SD, MD or CI limit (a VAS mm value becomes ``value / 10`` in cm).

    Valid for scales that start at 0; differences and SDs are valid regardless.
    """
    return float(value) * scale_factor(from_scale, to_scale)


def scale_variance_to(variance: float, from_scale: str | float, to_scale: str | float) -> float:
    """Rescale a variance (mm to cm divides by 100)."""
    return float(variance) * scale_factor(from_scale, to_scale) ** 2


def rescale_effect(
    effect: float, variance: float, from_scale: str | float, to_scale: str | float
) -> tuple[float, float]:
    """Rescale an ``(md, var)`` pair in one call."""
    return scale_to(effect, from_scale, to_scale), scale_variance_to(variance, from_scale, to_scale)


# --------------------------------------------------------------------------- pooling


@dataclass(frozen=True, slots=True)
class PooledResult:
    """Outcome of :func:`pool`.

    Attributes
    ----------
    method : str
        ``"DL"``, ``"PM"``, ``"REML"`` or ``"FE"``.
    k : int
        Number of studies.
    estimate, se, ci_low, ci_high, z, p : float
        Pooled effect, its standard error, Wald CI at ``1 - alpha``, z statistic
        and two-sided p value.
    tau2, tau : float
        Between-study variance (0 for FE and for k = 1) and its square root.
    tau2_ci_low, tau2_ci_high : float or None
        Q-profile CI for tau² (Viechtbauer 2007); None for FE and k = 1.
    q, df, p_q : float, int, float or None
        Cochran's Q (with fixed-effect weights), its df (k - 1) and chi² p value
        (None when k = 1).
    i2 : float or None
        I² in percent, >= 0; None when k = 1.
    h2 : float or None
        H²; None when k = 1.
    pi_low, pi_high : float or None
        Prediction interval, t with k - 2 df; None for FE or k < 3.
    weights : tuple of float
        Per-study weights in percent (sum to 100), input order.
    alpha : float
        The alpha used for the intervals.
    """

    method: str
    k: int
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    z: float
    p: float
    tau2: float
    tau: float
    tau2_ci_low: float | None
    tau2_ci_high: float | None
    q: float
    df: int
    p_q: float | None
    i2: float | None
    h2: float | None
    pi_low: float | None
    pi_high: float | None
    weights: tuple[float, ...]
    alpha: float


def _as_arrays(
    effects: Sequence[float] | np.ndarray, variances: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(effects, dtype=float)
    v = np.asarray(variances, dtype=float)
    if y.ndim != 1 or v.ndim != 1:
        raise ValueError("effects and variances must be one-dimensional")
    if y.shape != v.shape:
        raise ValueError(f"got {y.size} effects but {v.size} variances")
    if y.size == 0:
        raise ValueError("nothing to pool: no studies")
    if not np.all(np.isfinite(y)):
        raise ValueError(f"effects must be finite; bad at index {_first_bad(~np.isfinite(y))}")
    bad = ~np.isfinite(v) | (v <= 0)
    if np.any(bad):
        i = _first_bad(bad)
        raise ValueError(
            f"variances must be finite and > 0; study at index {i} has variance {float(v[i])!r}"
        )
    return y, v


def _first_bad(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _q_gen(tau2: float, y: np.ndarray, v: np.ndarray) -> float:
    """Generalised Q: ``sum w (y - mu_w)^2`` with ``w = 1/(v + tau2)``."""
    w = 1 / (v + tau2)
    mu = np.dot(w, y) / w.sum()
    return float(np.dot(w, (y - mu) ** 2))


def _tau2_dl(y: np.ndarray, v: np.ndarray) -> float:
    """DerSimonian-Laird moment estimator, truncated at 0."""
    w = 1 / v
    c = w.sum() - np.dot(w, w) / w.sum()
    return max(0.0, (_q_gen(0.0, y, v) - (y.size - 1)) / c)


def _upper_bracket(func: Callable[[float], float], y: np.ndarray, v: np.ndarray) -> float:
    # func is decreasing in tau2 and negative far enough out; double until it is
    hi = max(1.0, 10 * float(np.var(y)), float(v.max()))
    for _ in range(200):
        if func(hi) < 0:
            return hi
        hi *= 2
    raise RuntimeError("could not bracket tau2")  # pragma: no cover - needs absurd data


def _tau2_pm(y: np.ndarray, v: np.ndarray) -> float:
    """Paule-Mandel estimator: root of ``Q_gen(tau2) = k - 1`` (0 if Q_gen(0) <= k - 1)."""
    target = y.size - 1

    def f(t: float) -> float:
        return _q_gen(t, y, v) - target

    if f(0.0) <= 0:
        return 0.0
    return float(optimize.brentq(f, 0.0, _upper_bracket(f, y, v), xtol=1e-14, rtol=1e-14))


def _tau2_statsmodels(y: np.ndarray, v: np.ndarray, method: str) -> float:
    """tau² from ``statsmodels.stats.meta_analysis.combine_effects``.

    statsmodels does not truncate the DL estimate at 0 and discards the PM
    convergence flag, so both are handled here.
    """
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        # statsmodels divides by Q for I^2, which warns when Q == 0
        warnings.simplefilter("ignore", RuntimeWarning)
        if method == "DL":
            res = combine_effects(y, v, method_re="chi2")
        else:
            res = combine_effects(y, v, method_re="iterated", atol=1e-8, maxiter=200)
    tau2 = max(0.0, float(res.tau2))
    if method == "PM":
        # Its Newton step stops at tau2 = 0 if a rounding error makes the estimating
        # equation negative, and may exhaust maxiter; check the answer and polish.
        target = y.size - 1
        resid = _q_gen(tau2, y, v) - target
        ok = abs(resid) <= 1e-6 * max(1.0, target) or (tau2 == 0.0 and resid <= 0)
        if not ok:
            tau2 = _tau2_pm(y, v)
    return tau2


def _tau2_he(y: np.ndarray, v: np.ndarray) -> float:
    """Hedges (unweighted moment) estimator; metafor's REML starting value."""
    k = y.size
    rss = float(np.sum((y - y.mean()) ** 2))
    return (rss - v.sum() * (k - 1) / k) / (k - 1)


def _reml_loglik(tau2: float, y: np.ndarray, v: np.ndarray) -> float:
    w = 1 / (v + tau2)
    mu = np.dot(w, y) / w.sum()
    return float(
        -0.5 * (y.size - 1) * math.log(2 * math.pi)
        - 0.5 * np.sum(np.log(v + tau2))
        - 0.5 * math.log(w.sum())
        - 0.5 * np.dot(w, (y - mu) ** 2)
    )


def _tau2_reml(
    y: np.ndarray, v: np.ndarray, *, threshold: float = 1e-10, maxiter: int = 1000
) -> float:
    """Restricted maximum likelihood tau² by Fisher scoring, as metafor's ``rma.uni``.

    Update ``tau2 += (Y'PPY - tr P) / tr(PP)`` with
    ``P = W - W 1 1' W / sum(w)`` and ``W = diag(1/(v + tau2))``, starting from the
    Hedges estimate, step-halving to stay at tau2 >= 0.  metafor stops at a change
    below 1e-5; we go to 1e-10 so results do not depend on the starting value.
    """
    tau2 = max(0.0, _tau2_he(y, v))
    for _ in range(maxiter):
        w = 1 / (v + tau2)
        sw = w.sum()
        sw2 = np.dot(w, w)
        mu = np.dot(w, y) / sw
        py = w * (y - mu)  # P @ y, without forming the k x k matrix
        ypp_y = float(np.dot(py, py))
        tr_p = sw - sw2 / sw
        tr_pp = sw2 - 2 * float(np.sum(w**3)) / sw + (sw2 / sw) ** 2
        adj = (ypp_y - tr_p) / tr_pp
        while tau2 + adj < 0 and abs(adj) > 1e-300:
            adj /= 2
        new = max(0.0, tau2 + adj)
        change = abs(new - tau2)
        tau2 = new
        if change < threshold:
            break
    else:
        raise RuntimeError(f"REML Fisher scoring did not converge in {maxiter} iterations")
    # As metafor: Fisher scoring can stall at a local maximum; prefer tau2 = 0 if better.
    if tau2 > 0 and _reml_loglik(0.0, y, v) - _reml_loglik(tau2, y, v) > 1e-12:
        tau2 = 0.0
    return tau2


def _tau2_ci_qprofile(y: np.ndarray, v: np.ndarray, alpha: float) -> tuple[float, float]:
    """Q-profile confidence interval for tau² (Viechtbauer 2007; metafor ``confint``)."""
    df = y.size - 1
    q0 = _q_gen(0.0, y, v)
    bounds: list[float] = []
    for quantile in (1 - alpha / 2, alpha / 2):  # lower limit first
        target = float(stats.chi2.ppf(quantile, df))
        if q0 <= target:
            bounds.append(0.0)
            continue

        def f(t: float, target: float = target) -> float:
            return _q_gen(t, y, v) - target

        bounds.append(
            float(optimize.brentq(f, 0.0, _upper_bracket(f, y, v), xtol=1e-14, rtol=1e-14))
        )
    return bounds[0], bounds[1]


def _single(y: float, v: float, method: str, alpha: float) -> PooledResult:
    se = math.sqrt(v)
    crit = float(stats.norm.ppf(1 - alpha / 2))
    z = y / se
    return PooledResult(
        method=method,
        k=1,
        estimate=float(y),
        se=se,
        ci_low=y - crit * se,
        ci_high=y + crit * se,
        z=z,
        p=float(2 * stats.norm.sf(abs(z))),
        tau2=0.0,
        tau=0.0,
        tau2_ci_low=None,
        tau2_ci_high=None,
        q=0.0,
        df=0,
        p_q=None,
        i2=None,
        h2=None,
        pi_low=None,
        pi_high=None,
        weights=(100.0,),
        alpha=alpha,
    )


def pool(
    effects: Sequence[float] | np.ndarray,
    variances: Sequence[float] | np.ndarray,
    *,
    method: Method = "DL",
    alpha: float = 0.05,
) -> PooledResult:
    """Inverse-variance pooled estimate.

    Parameters
    ----------
    effects, variances : sequence of float
        One effect (MD, SMD, log RR, ...) and its sampling variance per study.
    method : {"DL", "PM", "REML", "FE"}
        tau² estimator: DerSimonian-Laird and Paule-Mandel via statsmodels'
        ``combine_effects``; REML by Fisher scoring (as metafor); ``"FE"`` is the
        fixed-effect (common-effect) model.
    alpha : float
        1 - confidence level for the CI, PI and tau² CI.

    Returns
    -------
    PooledResult

    Raises
    ------
    ValueError
        On empty input, length mismatch, non-finite values or a variance <= 0.
    """
    method_u = str(method).upper()
    if method_u not in _METHODS:
        raise ValueError(f"method must be one of {', '.join(_METHODS)}; got {method!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    y, v = _as_arrays(effects, variances)
    k = y.size
    if k == 1:
        return _single(float(y[0]), float(v[0]), method_u, alpha)

    df = k - 1
    w_fe = 1 / v
    q = _q_gen(0.0, y, v)
    p_q = float(stats.chi2.sf(q, df))

    if method_u == "FE":
        tau2 = 0.0
    elif method_u == "REML":
        tau2 = _tau2_reml(y, v)
    else:
        tau2 = _tau2_statsmodels(y, v, method_u)

    w = 1 / (v + tau2)
    sw = float(w.sum())
    est = float(np.dot(w, y) / sw)
    se = math.sqrt(1 / sw)
    crit = float(stats.norm.ppf(1 - alpha / 2))
    z = est / se

    if method_u == "FE":
        # Higgins & Thompson's Q-based I^2, as metafor prints for FE models
        i2 = max(0.0, 100 * (q - df) / q) if q > 0 else 0.0
        h2 = q / df
        tau2_ci: tuple[float | None, float | None] = (None, None)
        pi: tuple[float | None, float | None] = (None, None)
    else:
        sw_fe = float(w_fe.sum())
        s2 = df * sw_fe / (sw_fe**2 - float(np.dot(w_fe, w_fe)))  # "typical" within variance
        i2 = 100 * tau2 / (tau2 + s2)
        h2 = (tau2 + s2) / s2
        tau2_ci = _tau2_ci_qprofile(y, v, alpha)
        if k >= 3:
            half = float(stats.t.ppf(1 - alpha / 2, k - 2)) * math.sqrt(se**2 + tau2)
            pi = (est - half, est + half)
        else:
            pi = (None, None)

    return PooledResult(
        method=method_u,
        k=k,
        estimate=est,
        se=se,
        ci_low=est - crit * se,
        ci_high=est + crit * se,
        z=z,
        p=float(2 * stats.norm.sf(abs(z))),
        tau2=float(tau2),
        tau=math.sqrt(tau2),
        tau2_ci_low=tau2_ci[0],
        tau2_ci_high=tau2_ci[1],
        q=q,
        df=df,
        p_q=p_q,
        i2=float(i2),
        h2=float(h2),
        pi_low=pi[0],
        pi_high=pi[1],
        weights=tuple(float(x) for x in 100 * w / sw),
        alpha=alpha,
    )


def leave_one_out(
    effects: Sequence[float] | np.ndarray,
    variances: Sequence[float] | np.ndarray,
    labels: Sequence[str],
    *,
    method: Method = "DL",
    alpha: float = 0.05,
) -> list[tuple[str, PooledResult]]:
    """Pool again without each study in turn.

    Returns
    -------
    list of (label, PooledResult)
        ``label`` names the study that was left out; input order.

    Raises
    ------
    ValueError
        If the lengths differ or there are fewer than two studies.
    """
    y, v = _as_arrays(effects, variances)
    labels = list(labels)
    if len(labels) != y.size:
        raise ValueError(f"got {len(labels)} labels for {y.size} studies")
    if y.size < 2:
        raise ValueError("leave-one-out needs at least two studies")
    keep = np.ones(y.size, dtype=bool)
    out: list[tuple[str, PooledResult]] = []
    for i, label in enumerate(labels):
        keep[i] = False
        out.append((label, pool(y[keep], v[keep], method=method, alpha=alpha)))
        keep[i] = True
    return out
