"""Forest plot as a self-contained, deterministic SVG string.

No timestamps, no generated ids, fixed-decimal numbers: the same inputs give the
same bytes, so reports can be diffed and cached.  Layout is fixed-width
(``width`` px, default 720) with columns: study label | plot | estimate [CI] |
weight.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from xml.sax.saxutils import escape

from reviewpipe.meta import PooledResult

__all__ = ["ForestRow", "forest_svg"]

_FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
_ROW_H = 22
_FS = 12  # body font size, px
_CHAR_W = 0.56 * _FS  # rough mean glyph advance for label truncation
_MIN_SQ, _MAX_SQ = 5.0, 16.0  # square side range, px
_METHOD_NAMES = {
    "FE": "Fixed-effect model",
    "DL": "Random-effects model (DL)",
    "PM": "Random-effects model (PM)",
    "REML": "Random-effects model (REML)",
}


@dataclass(frozen=True, slots=True)
class ForestRow:
    """One study line; ``weight`` in percent (None draws a fixed small square)."""

    label: str
    estimate: float
    ci_low: float
    ci_high: float
    weight: float | None = None


class _RowLike(Protocol):
    label: str
    estimate: float
    ci_low: float
    ci_high: float
    weight: float | None


def _field(row: Mapping[str, Any] | _RowLike, name: str) -> Any:
    if isinstance(row, Mapping):
        return row.get(name)
    return getattr(row, name, None)


def _num(x: float, decimals: int) -> str:
    s = f"{x:.{decimals}f}"
    # "-0.00" reads as a sign error in a table
    return s[1:] if s.startswith("-") and float(s) == 0 else s


def _p_text(p: float | None) -> str:
    if p is None or not math.isfinite(p):
        return "p = NA"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _nice_step(span: float, target: int = 6) -> float:
    raw = span / target
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if raw <= m * mag * (1 + 1e-12):
            return m * mag
    return 10 * mag  # pragma: no cover - loop always returns


def _tick_decimals(step: float) -> int:
    d = max(0, -math.floor(math.log10(step)))
    while d < 10 and abs(round(step * 10**d) - step * 10**d) > 1e-9:
        d += 1
    return d


def _truncate(text: str, max_chars: int) -> str:
    return text if len(text) <= max_chars else text[: max_chars - 1].rstrip() + "\u2026"


class _Svg:
    """Tiny element writer; every number goes through one formatter."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    @staticmethod
    def f(x: float) -> str:
        return _num(x, 2)

    def line(self, x1: float, y1: float, x2: float, y2: float, **attrs: str) -> None:
        f = self.f
        extra = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in attrs.items())
        self.parts.append(f'<line x1="{f(x1)}" y1="{f(y1)}" x2="{f(x2)}" y2="{f(y2)}"{extra}/>')

    def polygon(self, points: Sequence[tuple[float, float]], **attrs: str) -> None:
        pts = " ".join(f"{self.f(x)},{self.f(y)}" for x, y in points)
        extra = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in attrs.items())
        self.parts.append(f'<polygon points="{pts}"{extra}/>')

    def rect(self, x: float, y: float, w: float, h: float, **attrs: str) -> None:
        f = self.f
        extra = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in attrs.items())
        self.parts.append(f'<rect x="{f(x)}" y="{f(y)}" width="{f(w)}" height="{f(h)}"{extra}/>')

    def text(self, x: float, y: float, s: str, *, anchor: str = "start", **attrs: str) -> None:
        f = self.f
        extra = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in attrs.items())
        self.parts.append(
            f'<text x="{f(x)}" y="{f(y)}" text-anchor="{anchor}"{extra}>{escape(s)}</text>'
        )


def forest_svg(
    rows: Sequence[Mapping[str, Any] | _RowLike],
    pooled: PooledResult,
    *,
    title: str,
    measure_label: str,
    favours: tuple[str, str] = ("Favours DN", "Favours control"),
    null: float = 0.0,
    decimals: int = 2,
    xlim: tuple[float, float] | None = None,
    width: int = 720,
) -> str:
    """Render a forest plot.

    Parameters
    ----------
    rows : sequence of ForestRow, dataclass or mapping
        Each with ``label``, ``estimate``, ``ci_low``, ``ci_high`` and ``weight``
        (percent, may be None).  Drawn top to bottom in the given order.
    pooled : PooledResult
        Drawn as the diamond; its prediction interval (when present) as a line
        below it, and its heterogeneity statistics as text.
    title, measure_label : str
        Plot title and x-axis label (e.g. ``"Mean difference, VAS 0-10 cm"``).
    favours : (str, str)
        Captions left and right of the null line.
    null : float
        Position of the line of no effect.
    decimals : int
        Decimals for estimates and CIs in the text column.
    xlim : (float, float), optional
        Axis range; whiskers beyond it end in arrowheads.  Default: fits all
        intervals and ``null``, rounded out to tick marks.
    width : int
        Pixel width of the drawing (the height follows from the number of rows).

    Returns
    -------
    str
        An SVG document (UTF-8 text, no XML declaration needed).
    """
    if decimals < 0:
        raise ValueError("decimals must be >= 0")
    studies = []
    for i, row in enumerate(rows):
        vals = [_field(row, n) for n in ("estimate", "ci_low", "ci_high")]
        if any(v is None or not math.isfinite(float(v)) for v in vals):
            raise ValueError(f"row {i}: estimate, ci_low and ci_high must be finite numbers")
        weight = _field(row, "weight")
        studies.append(
            (
                str(_field(row, "label") if _field(row, "label") is not None else ""),
                float(vals[0]),
                float(vals[1]),
                float(vals[2]),
                None if weight is None else float(weight),
            )
        )

    has_pi = pooled.pi_low is not None and pooled.pi_high is not None

    # ---- x range and ticks
    if xlim is not None:
        lo, hi = float(xlim[0]), float(xlim[1])
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"xlim must be two finite increasing numbers, got {xlim!r}")
        step = _nice_step(hi - lo)
    else:
        vals = [null, pooled.ci_low, pooled.ci_high]
        vals += [v for s in studies for v in (s[2], s[3])]
        if has_pi:
            vals += [pooled.pi_low, pooled.pi_high]  # type: ignore[list-item]
        lo, hi = min(vals), max(vals)
        if hi - lo < 1e-12:
            lo, hi = lo - 1, hi + 1
        step = _nice_step(hi - lo)
        lo = math.floor(lo / step + 1e-9) * step
        hi = math.ceil(hi / step - 1e-9) * step
        # keep the null line off the axis ends so both "favours" captions have room
        if abs(null - lo) < 1e-9 * step:
            lo -= step
        if abs(null - hi) < 1e-9 * step:
            hi += step
    n_ticks = math.floor((hi - lo) / step + 1e-9)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = [
        round(first + i * step, 12) for i in range(n_ticks + 1) if first + i * step <= hi + 1e-9
    ]
    tick_dec = _tick_decimals(step)

    # ---- horizontal layout
    margin = 16
    label_x = margin
    px0 = width * 0.29
    px1 = width * 0.655
    est_right = width - 80
    w_right = width - margin
    label_chars = max(8, int((px0 - label_x - 10) / _CHAR_W))

    def x_of(v: float) -> float:
        return px0 + (v - lo) / (hi - lo) * (px1 - px0)

    # ---- vertical layout
    y_title = 26
    y_head = 56
    y_rule = y_head + 8
    y0 = y_rule + _ROW_H * 0.5 + 6
    y_rows = [y0 + i * _ROW_H for i in range(len(studies))]
    y_sep = (y_rows[-1] if y_rows else y_rule) + _ROW_H * 0.5 + 4
    y_pool = y_sep + _ROW_H * 0.5 + 6
    y_pi = y_pool + _ROW_H if has_pi else None
    y_axis = (y_pi if y_pi is not None else y_pool) + _ROW_H * 0.5 + 8
    y_ticklab = y_axis + 17
    y_measure = y_axis + 35
    y_fav = y_axis + 52
    y_het = y_fav + 28
    y_overall = y_het + 18
    height = y_overall + 16

    svg = _Svg()
    f = svg.f
    aria = escape(title, {'"': "&quot;"})
    svg.parts.append(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{f(height)}" '
        f'viewBox="0 0 {width} {f(height)}" role="img" aria-label="{aria}" '
        f'font-family="{_FONT}" font-size="{_FS}">'
    )
    svg.parts.append(f"<title>{escape(title)}</title>")
    svg.rect(0, 0, width, height, fill="#ffffff")
    svg.text(label_x, y_title, title, font_size="15", font_weight="bold")

    ci_pct = _num(100 * (1 - pooled.alpha), 0)
    svg.text(label_x, y_head, "Study", font_weight="bold")
    svg.text(est_right, y_head, f"Estimate [{ci_pct}% CI]", anchor="end", font_weight="bold")
    svg.text(w_right, y_head, "Weight", anchor="end", font_weight="bold")
    svg.line(label_x, y_rule, w_right, y_rule, stroke="#000000", stroke_width="1")

    # null line under the marks, from the header rule to the axis
    xn = x_of(null)
    if lo <= null <= hi:
        svg.line(
            xn, y_rule + 2, xn, y_axis, stroke="#777777", stroke_width="1", stroke_dasharray="4,3"
        )

    wmax = max((s[4] for s in studies if s[4] is not None and s[4] > 0), default=None)
    for (label, est, cl, ch, weight), y in zip(studies, y_rows, strict=True):
        # one group per study, with the untruncated label as its tooltip
        svg.parts.append(f'<g class="study"><title>{escape(label)}</title>')
        svg.text(label_x, y + 4, _truncate(label, label_chars))
        _whisker(svg, x_of, lo, hi, cl, ch, y)
        if lo <= est <= hi:
            if weight is None or wmax is None or weight <= 0:
                side = _MIN_SQ
            else:
                # side grows with sqrt(weight) so the area tracks the weight
                side = _MIN_SQ + (_MAX_SQ - _MIN_SQ) * math.sqrt(weight / wmax)
            svg.rect(x_of(est) - side / 2, y - side / 2, side, side, fill="#1f4e79")
        svg.text(
            est_right,
            y + 4,
            f"{_num(est, decimals)} [{_num(cl, decimals)}, {_num(ch, decimals)}]",
            anchor="end",
        )
        svg.text(w_right, y + 4, "" if weight is None else f"{weight:.1f}%", anchor="end")
        svg.parts.append("</g>")

    svg.line(label_x, y_sep, w_right, y_sep, stroke="#bbbbbb", stroke_width="1")

    # pooled diamond, clipped to the axis
    svg.parts.append('<g class="pooled">')
    name = _METHOD_NAMES.get(pooled.method, pooled.method)
    svg.text(label_x, y_pool + 4, name, font_weight="bold")
    dl, dc, dh = (min(max(v, lo), hi) for v in (pooled.ci_low, pooled.estimate, pooled.ci_high))
    half_h = 7
    svg.polygon(
        [
            (x_of(dl), y_pool),
            (x_of(dc), y_pool - half_h),
            (x_of(dh), y_pool),
            (x_of(dc), y_pool + half_h),
        ],
        fill="#b22222",
        stroke="#7f1818",
        stroke_width="1",
    )
    svg.text(
        est_right,
        y_pool + 4,
        f"{_num(pooled.estimate, decimals)} [{_num(pooled.ci_low, decimals)}, "
        f"{_num(pooled.ci_high, decimals)}]",
        anchor="end",
        font_weight="bold",
    )
    svg.text(w_right, y_pool + 4, "100.0%", anchor="end", font_weight="bold")
    svg.parts.append("</g>")

    if has_pi and y_pi is not None:
        pl, ph = float(pooled.pi_low), float(pooled.pi_high)  # type: ignore[arg-type]
        svg.parts.append('<g class="prediction-interval">')
        svg.text(label_x, y_pi + 4, f"Prediction interval ({ci_pct}%)", font_style="italic")
        _whisker(svg, x_of, lo, hi, pl, ph, y_pi, color="#b22222", cap=True)
        svg.text(
            est_right,
            y_pi + 4,
            f"[{_num(pl, decimals)}, {_num(ph, decimals)}]",
            anchor="end",
            font_style="italic",
        )
        svg.parts.append("</g>")

    svg.parts.append('<g class="axis">')
    svg.line(x_of(lo), y_axis, x_of(hi), y_axis, stroke="#000000", stroke_width="1")
    for t in ticks:
        xt = x_of(t)
        svg.line(xt, y_axis, xt, y_axis + 5, stroke="#000000", stroke_width="1")
        svg.text(xt, y_ticklab, _num(t, tick_dec), anchor="middle", font_size="11")
    svg.text((px0 + px1) / 2, y_measure, measure_label, anchor="middle")
    if lo <= null <= hi:
        svg.text(
            xn - 6, y_fav, f"\u2190 {favours[0]}", anchor="end", font_size="11", fill="#333333"
        )
        svg.text(
            xn + 6, y_fav, f"{favours[1]} \u2192", anchor="start", font_size="11", fill="#333333"
        )

    svg.parts.append("</g>")
    svg.parts.append('<g class="heterogeneity">')
    svg.text(label_x, y_het, _het_text(pooled, decimals), font_size="11")
    svg.text(
        label_x,
        y_overall,
        f"Test for overall effect: Z = {_num(pooled.z, 2)} ({_p_text(pooled.p)})",
        font_size="11",
    )
    svg.parts.append("</g>")
    svg.parts.append("</svg>")
    return "\n".join(svg.parts) + "\n"


def _het_text(pooled: PooledResult, decimals: int) -> str:
    if pooled.k < 2 or pooled.i2 is None:
        return "Heterogeneity: not applicable (one study)"
    parts = []
    if pooled.method != "FE":
        parts.append(f"\u03c4\u00b2 = {_num(pooled.tau2, decimals + 2)}")
    parts.append(f"I\u00b2 = {pooled.i2:.1f}%")
    parts.append(f"Q = {_num(pooled.q, 2)} (df = {pooled.df}, {_p_text(pooled.p_q)})")
    return "Heterogeneity: " + "; ".join(parts)


def _whisker(
    svg: _Svg,
    x_of: Callable[[float], float],
    lo: float,
    hi: float,
    a: float,
    b: float,
    y: float,
    *,
    color: str = "#000000",
    cap: bool = False,
) -> None:
    """Horizontal interval [a, b]; arrowheads where it runs off the axis."""
    if b < lo or a > hi:
        # wholly off-scale: one arrow at the edge it lies beyond
        edge = lo if b < lo else hi
        _arrow(svg, x_of(edge), y, -1 if b < lo else 1, color)
        return
    ca, cb = max(a, lo), min(b, hi)
    svg.line(x_of(ca), y, x_of(cb), y, stroke=color, stroke_width="1.3")
    for v, clipped, direction in ((a, a < lo, -1), (b, b > hi, 1)):
        xe = x_of(max(min(v, hi), lo))
        if clipped:
            _arrow(svg, xe, y, direction, color)
        elif cap:
            svg.line(xe, y - 4, xe, y + 4, stroke=color, stroke_width="1.3")


def _arrow(svg: _Svg, x: float, y: float, direction: int, color: str) -> None:
    svg.polygon([(x + 6 * direction, y), (x, y - 4), (x, y + 4)], fill=color)
