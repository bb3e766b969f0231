"""Forest plot SVG: well-formed, one row per study, deterministic, escaped."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import pytest

from reviewpipe.forest import ForestRow, forest_svg
from reviewpipe.meta import pool

NS = {"svg": "http://www.w3.org/2000/svg"}


def _rows_and_pooled(method: str = "DL") -> tuple[list[ForestRow], object]:
    data = [
        ("Llamas-Ramos 2014", -0.9, 0.073),
        ("Gerber 2015", -1.2, 0.375),
        ("Mejuto-Vázquez 2014", -1.7, 0.3),
        ("Tekin 2013", -0.6, 0.155),
        ("Ziaeifar 2014", 0.4, 0.64),
    ]
    res = pool([d[1] for d in data], [d[2] for d in data], method=method)  # type: ignore[arg-type]
    rows = [
        ForestRow(lab, y, y - 1.959964 * math.sqrt(v), y + 1.959964 * math.sqrt(v), w)
        for (lab, y, v), w in zip(data, res.weights, strict=True)
    ]
    return rows, res


def _svg(**kw: object) -> str:
    rows, res = _rows_and_pooled()
    args: dict[str, object] = {"title": "Pain at 4 weeks", "measure_label": "MD (VAS, cm)"}
    args.update(kw)
    return forest_svg(rows, res, **args)  # type: ignore[arg-type]


def _texts(root: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")]


def test_svg_is_well_formed_xml_with_svg_root() -> None:
    root = ET.fromstring(_svg())
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("width") == "720"
    assert root.find("svg:title", NS) is not None


def test_one_row_per_study_in_order() -> None:
    rows, res = _rows_and_pooled()
    root = ET.fromstring(forest_svg(rows, res, title="t", measure_label="MD"))
    groups = root.findall("svg:g[@class='study']", NS)
    assert len(groups) == len(rows)
    for g, row in zip(groups, rows, strict=True):
        assert g.find("svg:title", NS).text == row.label  # type: ignore[union-attr]
        assert len(g.findall("svg:rect", NS)) == 1  # the weight square
        texts = _texts(g)
        assert texts[0] == row.label
        assert texts[1] == f"{row.estimate:.2f} [{row.ci_low:.2f}, {row.ci_high:.2f}]"
        assert texts[2] == f"{row.weight:.1f}%"
    assert len(root.findall("svg:g[@class='pooled']", NS)) == 1


def test_squares_grow_with_weight() -> None:
    rows, res = _rows_and_pooled()
    root = ET.fromstring(forest_svg(rows, res, title="t", measure_label="MD"))
    sides = [
        float(g.find("svg:rect", NS).get("width"))  # type: ignore[union-attr]
        for g in root.findall("svg:g[@class='study']", NS)
    ]
    by_weight = [s for _, s in sorted(zip([r.weight for r in rows], sides, strict=True))]
    assert by_weight == sorted(by_weight)


def test_deterministic() -> None:
    assert _svg() == _svg()
    rows, res = _rows_and_pooled()
    a = forest_svg(rows, res, title="t", measure_label="MD")
    b = forest_svg(list(rows), res, title="t", measure_label="MD")
    assert a == b
    assert "id=" not in a  # no generated ids to collide when inlined


def test_numbers_have_fixed_decimals() -> None:
    svg = _svg()
    for attr in re.findall(r' (?:x|y|x1|x2|y1|y2|width|height)="([^"]+)"', svg):
        assert re.fullmatch(r"-?\d+(\.\d{2})?", attr), attr
    assert "-0.00" not in svg


def test_text_is_escaped() -> None:
    nasty = 'Smith & Jones <2019> "a"'
    rows = [
        ForestRow(nasty, 0.1, -0.2, 0.4, 60.0),
        ForestRow("Plain", 0.3, 0.0, 0.6, 40.0),
    ]
    res = pool([0.1, 0.3], [0.0234, 0.0234])
    svg = forest_svg(
        rows, res, title="A & B <test>", measure_label="x < y", favours=("<DN>", "C & D")
    )
    assert "<2019>" not in svg and "<test>" not in svg and "<DN>" not in svg
    root = ET.fromstring(svg)
    texts = _texts(root)
    assert nasty in texts
    assert "A & B <test>" in texts
    assert "x < y" in texts
    assert any("<DN>" in t for t in texts) and any("C & D" in t for t in texts)
    assert root.get("aria-label") == "A & B <test>"


def test_accepts_dicts_and_other_dataclasses() -> None:
    rows, res = _rows_and_pooled()

    @dataclass
    class Other:
        label: str
        estimate: float
        ci_low: float
        ci_high: float
        weight: float | None

    as_dicts = [
        {
            "label": r.label,
            "estimate": r.estimate,
            "ci_low": r.ci_low,
            "ci_high": r.ci_high,
            "weight": r.weight,
        }
        for r in rows
    ]
    as_other = [Other(r.label, r.estimate, r.ci_low, r.ci_high, r.weight) for r in rows]
    ref = forest_svg(rows, res, title="t", measure_label="MD")
    assert forest_svg(as_dicts, res, title="t", measure_label="MD") == ref
    assert forest_svg(as_other, res, title="t", measure_label="MD") == ref


def test_heterogeneity_and_prediction_interval_text() -> None:
    rows, res = _rows_and_pooled("REML")
    root = ET.fromstring(forest_svg(rows, res, title="t", measure_label="MD"))
    het = " ".join(_texts(root.find("svg:g[@class='heterogeneity']", NS)))  # type: ignore[arg-type]
    assert f"τ² = {res.tau2:.4f}" in het
    assert f"I² = {res.i2:.1f}%" in het
    assert f"Q = {res.q:.2f} (df = {res.df}" in het
    assert "p = " in het or "p < 0.001" in het
    assert "Test for overall effect: Z = " in het
    pi = root.find("svg:g[@class='prediction-interval']", NS)
    assert pi is not None
    assert f"[{res.pi_low:.2f}, {res.pi_high:.2f}]" in _texts(pi)
    assert "Random-effects model (REML)" in _texts(root)


def test_fixed_effect_and_single_study_have_no_pi() -> None:
    rows, res = _rows_and_pooled("FE")
    root = ET.fromstring(forest_svg(rows, res, title="t", measure_label="MD"))
    assert root.find("svg:g[@class='prediction-interval']", NS) is None
    assert "τ²" not in " ".join(_texts(root))

    one = pool([0.5], [0.04])
    svg = forest_svg(
        [ForestRow("Only", 0.5, 0.108, 0.892, 100.0)], one, title="t", measure_label="SMD"
    )
    root = ET.fromstring(svg)
    assert len(root.findall("svg:g[@class='study']", NS)) == 1
    assert "Heterogeneity: not applicable (one study)" in _texts(root)


def test_axis_has_ticks_and_null_line_and_favours() -> None:
    root = ET.fromstring(_svg(favours=("Favours needling", "Favours sham")))
    axis = root.find("svg:g[@class='axis']", NS)
    assert axis is not None
    labels = [t for t in _texts(axis) if re.fullmatch(r"-?\d+(\.\d+)?", t)]
    assert len(labels) >= 3
    assert "0" in labels or "0.0" in labels
    assert any("Favours needling" in t for t in _texts(axis))
    assert any("Favours sham" in t for t in _texts(axis))
    dashed = [
        ln for ln in root.iter("{http://www.w3.org/2000/svg}line") if ln.get("stroke-dasharray")
    ]
    assert len(dashed) == 1  # the null line


def test_xlim_clips_with_arrows() -> None:
    rows, res = _rows_and_pooled()
    root = ET.fromstring(forest_svg(rows, res, title="t", measure_label="MD", xlim=(-2, 1)))
    arrows = [
        p for g in root.findall("svg:g[@class='study']", NS) for p in g.findall("svg:polygon", NS)
    ]
    # Gerber (-2.40), Mejuto (-2.77) run off the left; Ziaeifar (1.97) off the right
    assert len(arrows) == 3


def test_weight_may_be_missing() -> None:
    rows = [{"label": "a", "estimate": 0.1, "ci_low": -0.1, "ci_high": 0.3, "weight": None}]
    svg = forest_svg(rows, pool([0.1], [0.01]), title="t", measure_label="MD")
    ET.fromstring(svg)


@pytest.mark.parametrize(
    "bad",
    [
        {"label": "a", "estimate": math.nan, "ci_low": 0, "ci_high": 1, "weight": 1},
        {"label": "a", "estimate": 0.5, "ci_low": None, "ci_high": 1, "weight": 1},
    ],
)
def test_bad_rows_raise(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="row 0"):
        forest_svg([bad], pool([0.1], [0.01]), title="t", measure_label="MD")  # type: ignore[list-item]


def test_bad_xlim_raises() -> None:
    with pytest.raises(ValueError, match="xlim"):
        _svg(xlim=(1.0, 1.0))
