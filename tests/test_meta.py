"""Pooling maths against hand computation, statsmodels and published metafor output."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize, stats
from statsmodels.stats.meta_analysis import combine_effects, effectsize_smd

from reviewpipe.meta import (
    PooledResult,
    _tau2_dl,
    _tau2_pm,
    _tau2_reml,
    hedges_g,
    leave_one_out,
    md_from_ci,
    mean_difference,
    pool,
    rescale_effect,
    scale_factor,
    scale_to,
    scale_variance_to,
)

# ---------------------------------------------------------------- reference data

# metafor's dat.bcg (Colditz et al. 1994): tpos, tneg, cpos, cneg for 13 BCG trials.
BCG = np.array(
    [
        [4, 119, 11, 128],
        [6, 300, 29, 274],
        [3, 228, 11, 209],
        [62, 13536, 248, 12619],
        [33, 5036, 47, 5761],
        [180, 1361, 372, 1079],
        [8, 2537, 10, 619],
        [505, 87886, 499, 87892],
        [29, 7470, 45, 7232],
        [17, 1699, 65, 1600],
        [186, 50448, 141, 27197],
        [5, 2493, 3, 2338],
        [27, 16886, 29, 17825],
    ],
    dtype=float,
)


def bcg_log_rr() -> tuple[np.ndarray, np.ndarray]:
    """escalc(measure="RR"): yi = log(a/n1) - log(c/n2), vi = 1/a - 1/n1 + 1/c - 1/n2."""
    a, b, c, d = BCG.T
    n1, n2 = a + b, c + d
    return np.log(a / n1) - np.log(c / n2), 1 / a - 1 / n1 + 1 / c - 1 / n2


def bcg_log_or() -> tuple[np.ndarray, np.ndarray]:
    """escalc(measure="OR"): yi = log(ad/bc), vi = 1/a + 1/b + 1/c + 1/d."""
    a, b, c, d = BCG.T
    return np.log(a * d / (b * c)), 1 / a + 1 / b + 1 / c + 1 / d


# Kacker (2004) example; metafor reference values with control=list(tol=1e-9), as
# stored in statsmodels' own test results (statsmodels/stats/tests/results/results_meta.py).
KACKER_Y = np.array([61.0, 61.4, 62.21, 62.3, 62.34, 62.6, 62.7, 62.84, 65.9])
KACKER_V = np.array([0.2025, 1.2100, 0.0900, 0.2025, 0.3844, 0.5625, 0.0676, 0.0225, 1.8225])


# ---------------------------------------------------------------- effect sizes


def test_mean_difference_is_difference_with_unpooled_variance() -> None:
    md, var = mean_difference(3.0, 2.5, 50, 4.0, 2.5, 50)
    assert md == pytest.approx(-1.0)
    assert var == pytest.approx(2.5**2 / 50 + 2.5**2 / 50)  # 0.25


@pytest.mark.parametrize(
    "args",
    [(1, 0, 10, 2, 1, 10), (1, 1, 0, 2, 1, 10), (1, -1, 10, 2, 1, 10), (1, 1, 10, 2, math.nan, 10)],
)
def test_mean_difference_rejects_bad_arm(args: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="arm"):
        mean_difference(*args)


def test_hedges_g_by_hand() -> None:
    """m1=12, m2=10, sd1=sd2=2, n1=n2=10.

    s_pooled = sqrt((9*4 + 9*4)/18) = 2, d = 2/2 = 1.
    Approximate J = 1 - 3/(4*20 - 9) = 1 - 3/71 = 0.9577465 -> g = 0.9577465.
    Exact J (df m = 18) = Γ(9) / (sqrt(9) Γ(8.5)) = 40320 / (3 * 14034.407) = 0.9576464.
    LS variance = 1/10 + 1/10 + g²/40.
    Borenstein variance = J² (1/10 + 1/10 + d²/40) = J² * 0.225.
    """
    j_approx = 1 - 3 / 71
    g, var = hedges_g(12, 2, 10, 10, 2, 10, correction="approx")
    assert g == pytest.approx(j_approx, abs=1e-12)
    assert g == pytest.approx(0.9577465, abs=1e-7)
    assert var == pytest.approx(0.2 + g**2 / 40, abs=1e-12)

    j_exact = math.gamma(9) / (3 * math.gamma(8.5))
    g, var = hedges_g(12, 2, 10, 10, 2, 10)
    assert g == pytest.approx(j_exact, abs=1e-12)
    assert g == pytest.approx(0.9576464, abs=1e-7)
    assert var == pytest.approx(0.2 + g**2 / 40, abs=1e-12)

    g, var = hedges_g(12, 2, 10, 10, 2, 10, correction="approx", vtype="borenstein")
    assert var == pytest.approx(j_approx**2 * 0.225, abs=1e-12)


def test_hedges_g_matches_metafor_escalc_smd() -> None:
    """escalc(measure="SMD") output for the Chen & Peace (2013) example, from statsmodels' tests."""
    data = [
        (94, 22, 60, 92, 20, 60),
        (98, 21, 65, 92, 22, 65),
        (98, 28, 40, 88, 26, 40),
        (94, 19, 200, 82, 17, 200),
        (98, 21, 50, 88, 22, 45),
        (96, 21, 85, 92, 22, 85),
    ]
    yi = [
        0.09452415852032972,
        0.27735586626551018,
        0.36654442951591998,
        0.66438496832691396,
        0.46180628128769841,
        0.18516443739910043,
    ]
    vi = [
        0.03337056173559990,
        0.03106510106366112,
        0.05083971761755720,
        0.01055175923267344,
        0.04334466980873156,
        0.02363025255552155,
    ]
    for row, y_ref, v_ref in zip(data, yi, vi, strict=True):
        g, var = hedges_g(*row)
        assert g == pytest.approx(y_ref, abs=1e-9)
        assert var == pytest.approx(v_ref, abs=1e-9)


def test_hedges_g_approx_matches_statsmodels_point_estimate() -> None:
    # statsmodels uses the 1 - 3/(4N - 9) correction (its variance differs: N - 3.94)
    g_sm, _ = effectsize_smd(94.0, 22.0, 60.0, 92.0, 20.0, 60.0)
    g, _ = hedges_g(94, 22, 60, 92, 20, 60, correction="approx")
    assert g == pytest.approx(float(g_sm), abs=1e-13)


def test_hedges_g_rejects_tiny_samples_and_bad_options() -> None:
    with pytest.raises(ValueError, match="n1 \\+ n2 > 3"):
        hedges_g(1, 1, 1, 0, 1, 2)
    with pytest.raises(ValueError, match="correction"):
        hedges_g(1, 1, 10, 0, 1, 10, correction="bogus")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="vtype"):
        hedges_g(1, 1, 10, 0, 1, 10, vtype="bogus")  # type: ignore[arg-type]


def test_md_from_ci_uses_normal_quantile() -> None:
    md, var = md_from_ci(-1.0, -1.98, -0.02)
    se = 0.98 / stats.norm.ppf(0.975)  # 0.98 / 1.959964 = 0.500009
    assert md == -1.0
    assert var == pytest.approx(se**2, rel=1e-12)
    assert math.sqrt(var) == pytest.approx(0.500009, abs=1e-6)
    _, var90 = md_from_ci(0.0, -1.0, 1.0, level=0.90)
    assert math.sqrt(var90) == pytest.approx(1 / 1.644854, abs=1e-6)


@pytest.mark.parametrize("args", [(0.0, 1.0, -1.0), (2.0, -1.0, 1.0), (0.0, 0.0, 0.0)])
def test_md_from_ci_rejects_inconsistent_ci(args: tuple[float, float, float]) -> None:
    with pytest.raises(ValueError):
        md_from_ci(*args)


def test_scale_helpers_vas_mm_to_cm() -> None:
    assert scale_factor("mm", "cm") == pytest.approx(0.1)
    assert scale_to(25.0, "mm", "cm") == pytest.approx(2.5)
    assert scale_to(2.5, "cm", "mm") == pytest.approx(25.0)
    assert scale_variance_to(100.0, "mm", "cm") == pytest.approx(1.0)
    assert scale_to(7.0, "0-10", "0-100") == pytest.approx(70.0)
    assert scale_to(5.0, 50, "cm") == pytest.approx(1.0)  # a 0-50 scale by its width
    md, var = rescale_effect(-12.0, 16.0, "mm", "cm")
    assert (md, var) == (pytest.approx(-1.2), pytest.approx(0.16))
    with pytest.raises(ValueError, match="unknown scale"):
        scale_to(1.0, "inches", "cm")
    with pytest.raises(ValueError, match="positive"):
        scale_to(1.0, 0, "cm")


# ---------------------------------------------------------------- hand-computed MD example


def _three_md_studies() -> tuple[list[float], list[float]]:
    """Three mean differences built from arm data (VAS 0-10 cm).

    A: 3.0 (2.5, 50) vs 4.0 (2.5, 50) -> MD -1, var 6.25/50 + 6.25/50 = 0.25
    B: 2.5 (2.5, 25) vs 4.5 (2.5, 25) -> MD -2, var 0.25 + 0.25 = 0.5
    C: 4.0 (2.0, 8)  vs 4.0 (2.0, 8)  -> MD  0, var 0.5 + 0.5 = 1.0
    """
    arms = [(3.0, 2.5, 50, 4.0, 2.5, 50), (2.5, 2.5, 25, 4.5, 2.5, 25), (4.0, 2.0, 8, 4.0, 2.0, 8)]
    pairs = [mean_difference(*a) for a in arms]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def test_three_study_md_fixed_effect_by_hand() -> None:
    """FE: w = 1/v = (4, 2, 1), W = 7, sum(w y) = -4 - 4 + 0 = -8.

    mu = -8/7 = -1.142857, se = sqrt(1/7) = 0.377964,
    CI = mu -+ 1.959964 * 0.377964 = mu -+ 0.740797 = (-1.883654, -0.402060).
    Q = 4(1/7)² + 2(6/7)² + 1(8/7)² = (4 + 72 + 64)/49 = 140/49 = 20/7 = 2.857143, df = 2,
    p_Q = exp(-Q/2) = exp(-10/7) = 0.239651 (chi² with 2 df).
    I² = (Q - df)/Q = (6/7)/(20/7) = 30 %, H² = Q/df = 10/7.
    Weights = 4/7, 2/7, 1/7 = 57.142857 %, 28.571429 %, 14.285714 %.
    """
    y, v = _three_md_studies()
    assert y == [-1.0, -2.0, 0.0]
    assert v == pytest.approx([0.25, 0.5, 1.0])
    r = pool(y, v, method="FE")
    assert r.method == "FE" and r.k == 3 and r.df == 2
    assert r.estimate == pytest.approx(-8 / 7, abs=1e-12)
    assert r.se == pytest.approx(math.sqrt(1 / 7), abs=1e-12)
    assert r.ci_low == pytest.approx(-1.883654, abs=1e-6)
    assert r.ci_high == pytest.approx(-0.402060, abs=1e-6)
    assert r.z == pytest.approx((-8 / 7) / math.sqrt(1 / 7), abs=1e-12)
    assert r.q == pytest.approx(20 / 7, abs=1e-12)
    assert r.p_q == pytest.approx(math.exp(-10 / 7), abs=1e-12)
    assert r.i2 == pytest.approx(30.0, abs=1e-10)
    assert r.h2 == pytest.approx(10 / 7, abs=1e-12)
    assert r.tau2 == 0.0 and r.tau == 0.0
    assert r.weights == pytest.approx([400 / 7, 200 / 7, 100 / 7], abs=1e-10)
    assert r.pi_low is None and r.pi_high is None
    assert r.tau2_ci_low is None and r.tau2_ci_high is None


def test_three_study_md_dersimonian_laird_by_hand() -> None:
    """DL on the same data.

    C = W - sum(w²)/W = 7 - (16 + 4 + 1)/7 = 7 - 3 = 4.
    tau² = (Q - df)/C = (20/7 - 2)/4 = 3/14 = 0.2142857, tau = 0.4629100.
    w* = 1/(v + tau²) = 1/(13/28), 1/(10/14), 1/(17/14) = 28/13, 7/5, 14/17,
    W* = 4837/1105 = 4.3773756, sum(w* y) = -56/13 - 14/5 = -322/65.
    mu = -5474/4837 = -1.1316932, se = sqrt(1105/4837) = 0.4779617.
    Weights: 49.204052 %, 31.982634 %, 18.813314 %.
    I² = tau²/(tau² + s²) with s² = df/C = 1/2 -> (3/14)/(10/14) = 30 % (= (Q-df)/Q);
    H² = (tau² + s²)/s² = 10/7.
    PI = mu -+ t(0.975, 1) * sqrt(se² + tau²) = mu -+ 12.706205 * 0.6657...
    """
    y, v = _three_md_studies()
    r = pool(y, v, method="DL")
    assert r.tau2 == pytest.approx(3 / 14, abs=1e-12)
    assert r.tau == pytest.approx(math.sqrt(3 / 14), abs=1e-12)
    assert r.estimate == pytest.approx(-5474 / 4837, abs=1e-12)
    assert r.estimate == pytest.approx(-1.1316932, abs=1e-7)
    assert r.se == pytest.approx(math.sqrt(1105 / 4837), abs=1e-12)
    assert r.se == pytest.approx(0.4779617, abs=1e-7)
    assert r.weights == pytest.approx([49.204052, 31.982634, 18.813314], abs=1e-6)
    assert sum(r.weights) == pytest.approx(100.0)
    assert r.q == pytest.approx(20 / 7, abs=1e-12)
    assert r.i2 == pytest.approx(30.0, abs=1e-10)
    assert r.h2 == pytest.approx(10 / 7, abs=1e-12)
    crit = stats.t.ppf(0.975, 1)
    assert crit == pytest.approx(12.706205, abs=1e-6)
    half = crit * math.sqrt(1105 / 4837 + 3 / 14)
    assert r.pi_low == pytest.approx(-5474 / 4837 - half, abs=1e-10)
    assert r.pi_high == pytest.approx(-5474 / 4837 + half, abs=1e-10)


# ---------------------------------------------------------------- published metafor output


def test_bcg_effect_sizes_match_escalc() -> None:
    # metafor prints yi/vi for dat.bcg with 4 decimals; first and last two trials
    yi, vi = bcg_log_rr()
    assert yi[[0, 1, 11, 12]] == pytest.approx([-0.8893, -1.5854, 0.4459, -0.0173], abs=1e-4)
    assert vi[[0, 1, 11, 12]] == pytest.approx([0.3256, 0.1946, 0.5325, 0.0714], abs=1e-4)


def test_bcg_dersimonian_laird_matches_metafor() -> None:
    """rma(yi, vi, method="DL") on dat.bcg log RR: -0.7141 (se 0.1787), tau² 0.3088, I² 92.12 %."""
    yi, vi = bcg_log_rr()
    r = pool(yi, vi, method="DL")
    assert r.estimate == pytest.approx(-0.7141, abs=5e-5)
    assert r.se == pytest.approx(0.1787, abs=5e-5)
    assert r.tau2 == pytest.approx(0.3088, abs=5e-5)
    assert r.i2 == pytest.approx(92.12, abs=5e-3)
    assert r.q == pytest.approx(152.2330, abs=5e-5)
    assert r.ci_low == pytest.approx(-1.0644, abs=5e-5)
    assert r.ci_high == pytest.approx(-0.3638, abs=5e-5)
    # DL's I² is the Q-based one
    assert r.i2 == pytest.approx(100 * (r.q - 12) / r.q, abs=1e-9)


def test_bcg_reml_matches_metafor() -> None:
    """rma(yi, vi, method="REML") on dat.bcg log RR, as printed by metafor:

    tau² 0.3132, I² 92.22 %, H² 12.86, Q(12) 152.2330, estimate -0.7145, se 0.1798,
    z -3.9744, CI -1.0669 to -0.3622; confint(): tau² CI 0.1197 to 1.1115 (Q-profile).
    """
    yi, vi = bcg_log_rr()
    r = pool(yi, vi, method="REML")
    assert r.tau2 == pytest.approx(0.3132, abs=5e-5)
    assert r.tau == pytest.approx(0.5597, abs=5e-5)
    assert r.i2 == pytest.approx(92.22, abs=5e-3)
    assert r.h2 == pytest.approx(12.86, abs=5e-3)
    assert r.q == pytest.approx(152.2330, abs=5e-5)
    assert r.estimate == pytest.approx(-0.7145, abs=5e-5)
    assert r.se == pytest.approx(0.1798, abs=5e-5)
    assert r.z == pytest.approx(-3.9744, abs=5e-5)
    assert r.ci_low == pytest.approx(-1.0669, abs=5e-5)
    assert r.ci_high == pytest.approx(-0.3622, abs=5e-5)
    assert r.tau2_ci_low == pytest.approx(0.1197, abs=5e-5)
    assert r.tau2_ci_high == pytest.approx(1.1115, abs=5e-5)
    assert r.p_q is not None and r.p_q < 1e-4


def test_bcg_fixed_effect_matches_metafor() -> None:
    """rma(yi, vi, method="FE") on dat.bcg log RR: -0.4303 (se 0.0405), z -10.6247."""
    yi, vi = bcg_log_rr()
    r = pool(yi, vi, method="FE")
    assert r.estimate == pytest.approx(-0.4303, abs=5e-5)
    assert r.se == pytest.approx(0.0405, abs=5e-5)
    assert r.z == pytest.approx(-10.6247, abs=5e-4)
    assert r.ci_low == pytest.approx(-0.5097, abs=5e-5)
    assert r.ci_high == pytest.approx(-0.3509, abs=5e-5)


def test_bcg_log_odds_ratio_dl_matches_metafor() -> None:
    """rma(ai=tpos, bi=tneg, ci=cpos, di=cneg, data=dat.bcg, measure="OR", method="DL"):

    tau² 0.3663, I² 92.65 %, H² 13.60, Q 163.1649, estimate -0.7474 (se 0.1923),
    CI -1.1242 to -0.3706; the Q-profile tau² CI, 0.1302 to 1.1812, is the one metafor's
    van Houwelingen (2002) replication reports for the same log ORs.  metafor finds CI
    bounds with uniroot(tol = .Machine$double.eps^0.25 ~ 1.2e-4), so its printed lower
    bound 0.1302 is the exact 0.130149 plus search error; hence the looser tolerance.
    """
    yi, vi = bcg_log_or()
    r = pool(yi, vi, method="DL")
    assert r.tau2 == pytest.approx(0.3663, abs=5e-5)
    assert r.i2 == pytest.approx(92.65, abs=5e-3)
    assert r.h2 == pytest.approx(13.60, abs=5e-3)
    assert r.q == pytest.approx(163.1649, abs=5e-5)
    assert r.estimate == pytest.approx(-0.7474, abs=5e-5)
    assert r.se == pytest.approx(0.1923, abs=5e-5)
    assert r.ci_low == pytest.approx(-1.1242, abs=5e-5)
    assert r.ci_high == pytest.approx(-0.3706, abs=5e-5)
    assert r.tau2_ci_low == pytest.approx(0.1302, abs=1.5e-4)
    assert r.tau2_ci_high == pytest.approx(1.1812, abs=1.5e-4)


def test_kacker_example_matches_metafor_to_high_precision() -> None:
    pm = pool(KACKER_Y, KACKER_V, method="PM")
    assert pm.tau2 == pytest.approx(0.705395309224248, abs=1e-9)
    assert pm.estimate == pytest.approx(62.4076199113286, abs=1e-9)
    assert pm.se == pytest.approx(0.338030602684471, abs=1e-9)
    assert pm.ci_low == pytest.approx(61.7450921043947, abs=1e-8)
    assert pm.ci_high == pytest.approx(63.0701477182625, abs=1e-8)
    assert pm.q == pytest.approx(24.801897741835, abs=1e-8)
    assert pm.p_q == pytest.approx(0.00167935146372742, abs=1e-10)
    # metafor's I² for non-DL estimators is tau²/(tau² + s²), not (Q - df)/Q
    assert pm.i2 == pytest.approx(83.7218626490482, abs=1e-7)
    assert pm.h2 == pytest.approx(6.14320900751909, abs=1e-8)

    dl = pool(KACKER_Y, KACKER_V, method="DL")
    assert dl.tau2 == pytest.approx(0.288049246973751, abs=1e-10)
    assert dl.estimate == pytest.approx(62.3901386044504, abs=1e-10)
    assert dl.se == pytest.approx(0.245749668040304, abs=1e-10)
    assert dl.i2 == pytest.approx(67.744403741711, abs=1e-8)
    assert dl.h2 == pytest.approx(3.10023721772938, abs=1e-9)

    fe = pool(KACKER_Y, KACKER_V, method="FE")
    assert fe.estimate == pytest.approx(62.5833970939982, abs=1e-10)
    assert fe.se == pytest.approx(0.107845705498231, abs=1e-10)
    assert fe.i2 == pytest.approx(67.744403741711, abs=1e-8)


# ---------------------------------------------------------------- cross-checks with statsmodels


def _random_meta(seed: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    v = rng.uniform(0.02, 0.5, k)
    y = rng.normal(0.3, 0.4, k) + rng.normal(0, np.sqrt(v))
    return y, v


DATASETS = [bcg_log_rr(), bcg_log_or(), (KACKER_Y, KACKER_V)] + [
    _random_meta(s, k) for s, k in [(1, 3), (2, 5), (3, 8), (4, 20), (5, 40)]
]


@pytest.mark.parametrize("data", DATASETS)
def test_dl_agrees_with_statsmodels_and_own_formula(data: tuple[np.ndarray, np.ndarray]) -> None:
    y, v = data
    sm = combine_effects(y, v, method_re="chi2")
    r = pool(y, v, method="DL")
    # statsmodels computes Q as sum(w y²) - (sum w y)²/W, which loses a few digits when
    # the effects are large (Kacker: ~62), hence relative tolerances
    assert r.tau2 == pytest.approx(max(0.0, sm.tau2), rel=1e-9, abs=1e-12)
    assert r.tau2 == pytest.approx(_tau2_dl(y, v), rel=1e-9, abs=1e-12)
    assert r.q == pytest.approx(sm.q, rel=1e-10)
    if sm.tau2 >= 0:  # statsmodels does not truncate a negative DL tau²
        assert r.estimate == pytest.approx(sm.mean_effect_re, abs=1e-12)
        assert r.se == pytest.approx(sm.sd_eff_w_re, abs=1e-12)


@pytest.mark.parametrize("data", DATASETS)
def test_pm_agrees_with_statsmodels_and_own_root_finder(
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    y, v = data
    sm = combine_effects(y, v, method_re="iterated", atol=1e-10, maxiter=200)
    r = pool(y, v, method="PM")
    assert r.tau2 == pytest.approx(sm.tau2, abs=1e-8)
    assert r.tau2 == pytest.approx(_tau2_pm(y, v), abs=1e-8)
    assert r.estimate == pytest.approx(sm.mean_effect_re, abs=1e-8)
    assert r.se == pytest.approx(sm.sd_eff_w_re, abs=1e-8)
    # the PM estimating equation holds at the answer (or tau² sits on its boundary)
    w = 1 / (v + r.tau2)
    mu = np.dot(w, y) / w.sum()
    q_gen = float(np.dot(w, (y - mu) ** 2))
    if r.tau2 > 0:
        assert q_gen == pytest.approx(len(y) - 1, abs=1e-6)
    else:
        assert q_gen <= len(y) - 1


def test_fe_agrees_with_statsmodels() -> None:
    y, v = bcg_log_rr()
    sm = combine_effects(y, v, method_re="chi2")
    r = pool(y, v, method="FE")
    assert r.estimate == pytest.approx(sm.mean_effect_fe, abs=1e-12)
    assert r.se == pytest.approx(sm.sd_eff_w_fe, abs=1e-12)


@pytest.mark.parametrize("data", DATASETS)
def test_reml_maximises_restricted_likelihood(data: tuple[np.ndarray, np.ndarray]) -> None:
    """Independent check: maximise the REML log-likelihood directly with scipy."""
    y, v = data

    def neg_ll(t: float) -> float:
        w = 1 / (v + t)
        mu = np.dot(w, y) / w.sum()
        return float(
            0.5 * np.sum(np.log(v + t)) + 0.5 * math.log(w.sum()) + 0.5 * np.dot(w, (y - mu) ** 2)
        )

    opt = optimize.minimize_scalar(
        neg_ll,
        bounds=(0, 20 * max(1.0, float(np.var(y)))),
        method="bounded",
        options={"xatol": 1e-12},
    )
    tau2 = _tau2_reml(y, v)
    assert neg_ll(tau2) <= neg_ll(opt.x) + 1e-10
    assert tau2 == pytest.approx(opt.x, abs=1e-5)


# ---------------------------------------------------------------- edge cases and shape


def test_prediction_interval_bcg_dl() -> None:
    yi, vi = bcg_log_rr()
    r = pool(yi, vi, method="DL")
    half = stats.t.ppf(0.975, 11) * math.sqrt(r.se**2 + r.tau2)
    assert r.pi_low == pytest.approx(r.estimate - half, abs=1e-12)
    assert r.pi_high == pytest.approx(r.estimate + half, abs=1e-12)
    assert r.pi_low == pytest.approx(-1.9988, abs=1e-4)
    assert r.pi_high == pytest.approx(0.5706, abs=1e-4)


def test_no_heterogeneity_gives_tau2_zero_and_re_equals_fe() -> None:
    y = [0.50, 0.52, 0.49, 0.51]
    v = [0.04, 0.05, 0.03, 0.06]
    fe = pool(y, v, method="FE")
    for method in ("DL", "PM", "REML"):
        r = pool(y, v, method=method)
        assert r.tau2 == 0.0
        assert r.i2 == 0.0
        assert r.h2 == pytest.approx(1.0)
        assert r.estimate == pytest.approx(fe.estimate, abs=1e-12)
        assert r.se == pytest.approx(fe.se, abs=1e-12)
        assert r.tau2_ci_low == 0.0
    assert fe.i2 == 0.0  # clipped, Q < df


def test_single_study() -> None:
    r = pool([0.5], [0.04], method="REML")
    assert r.k == 1 and r.df == 0
    assert r.estimate == 0.5 and r.se == pytest.approx(0.2)
    assert r.ci_low == pytest.approx(0.5 - 1.959964 * 0.2, abs=1e-6)
    assert r.tau2 == 0.0 and r.i2 is None and r.h2 is None and r.p_q is None
    assert r.pi_low is None and r.pi_high is None
    assert r.weights == (100.0,)
    assert r.p == pytest.approx(2 * stats.norm.sf(2.5))


def test_two_studies_have_no_prediction_interval() -> None:
    r = pool([0.1, 0.9], [0.01, 0.02], method="DL")
    assert r.k == 2 and r.tau2 > 0
    assert r.pi_low is None and r.pi_high is None


def test_alpha_changes_interval_width() -> None:
    y, v = _three_md_studies()
    r90 = pool(y, v, method="FE", alpha=0.10)
    assert r90.ci_high - r90.estimate == pytest.approx(stats.norm.ppf(0.95) * r90.se)
    assert r90.alpha == 0.10


@pytest.mark.parametrize(
    ("effects", "variances", "match"),
    [
        ([0.1, 0.2], [0.01, 0.0], "index 1 has variance 0.0"),
        ([0.1, 0.2], [-0.01, 0.02], "index 0 has variance -0.01"),
        ([0.1, 0.2], [0.01, math.inf], "index 1"),
        ([0.1, math.nan], [0.01, 0.02], "effects must be finite"),
        ([0.1, 0.2], [0.01], "2 effects but 1 variances"),
        ([], [], "no studies"),
    ],
)
def test_bad_input_raises(effects: list[float], variances: list[float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        pool(effects, variances)


def test_bad_method_and_alpha() -> None:
    with pytest.raises(ValueError, match="method"):
        pool([0.1, 0.2], [0.01, 0.02], method="HS")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="alpha"):
        pool([0.1, 0.2], [0.01, 0.02], alpha=1.5)
    assert pool([0.1, 0.2], [0.01, 0.02], method="reml").method == "REML"  # type: ignore[arg-type]


def test_result_is_frozen_dataclass() -> None:
    r = pool([0.1, 0.2, 0.4], [0.01, 0.02, 0.03])
    assert isinstance(r, PooledResult)
    with pytest.raises(AttributeError):
        r.estimate = 1.0  # type: ignore[misc]


def test_leave_one_out() -> None:
    yi, vi = bcg_log_rr()
    labels = [f"trial {i + 1}" for i in range(13)]
    out = leave_one_out(yi, vi, labels, method="REML")
    assert [lab for lab, _ in out] == labels
    for i, (_, res) in enumerate(out):
        keep = np.arange(13) != i
        assert res.k == 12
        assert res == pool(yi[keep], vi[keep], method="REML")
    # dropping trial 8 (largest FE weight, yi ~ 0) moves the estimate most downwards
    assert min(out, key=lambda item: item[1].estimate)[0] == "trial 8"


def test_leave_one_out_two_studies_and_errors() -> None:
    out = leave_one_out([0.1, 0.5], [0.01, 0.02], ["a", "b"])
    assert [r.k for _, r in out] == [1, 1]
    assert out[0][1].estimate == 0.5 and out[1][1].estimate == 0.1
    with pytest.raises(ValueError, match="labels"):
        leave_one_out([0.1, 0.5], [0.01, 0.02], ["a"])
    with pytest.raises(ValueError, match="at least two"):
        leave_one_out([0.1], [0.01], ["a"])


def test_pm_recovers_when_statsmodels_iteration_stops_short(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """statsmodels' PM loop sets tau² = 0 if a step leaves the estimating equation negative
    and ignores non-convergence; pool() checks the answer and solves again if it is wrong."""
    import reviewpipe.meta as meta

    class Stopped:
        tau2 = 0.0

    monkeypatch.setattr(meta, "combine_effects", lambda *a, **k: Stopped())
    yi, vi = bcg_log_rr()
    r = pool(yi, vi, method="PM")
    assert r.tau2 == pytest.approx(_tau2_pm(yi, vi), abs=1e-12)
    assert r.tau2 > 0.3
