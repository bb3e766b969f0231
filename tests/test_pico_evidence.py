"""P/I/O tagging and effect direction: the shipped JSON tagger, hand-written examples, and
(marked ``shared``) the EBM-NLP / Evidence Inference evaluation against measured scores.
"""

from __future__ import annotations

import ast
import importlib.util
import json
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

import reviewpipe.evidence as evidence_module
import reviewpipe.pico_tags as pico_module
from reviewpipe.errors import InputError
from reviewpipe.evidence import (
    DECREASED,
    INCREASED,
    LABELS,
    MODEL_FORMAT,
    NO_DIFFERENCE,
    effect_direction,
    load_direction_model,
)
from reviewpipe.pico_tags import (
    FORMAT,
    PicoTagger,
    from_json,
    load_default_tagger,
    tag_pico,
    tag_tokens,
    tokenize,
)

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
EXAMPLE = ("Eighty adults with plantar heel pain were randomised to dry needling or sham; pain "
           "was measured on a visual analogue scale.")


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _spans(text: str, label: str) -> list[str]:
    return [text[a:b] for a, b, lab in tag_pico(text) if lab == label]


# ------------------------------------------------------------------------- the shipped model


def test_shipped_tagger_is_plain_json_and_loads_without_pickle():
    resource = resources.files("reviewpipe").joinpath("data/pico_tagger.json")
    raw = resource.read_bytes()
    assert len(raw) < 3_000_000
    payload = json.loads(raw)
    assert payload["format"] == FORMAT and payload["labels"] == ["N", "P", "I", "O"]
    assert all(len(w) == 3 for w in payload["features"].values())
    for module in (pico_module, evidence_module):
        tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
        imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                    if isinstance(node, ast.Import | ast.ImportFrom)
                    for alias in getattr(node, "names", [])}
        imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom) and node.module}
        assert not imported & {"pickle", "joblib", "dill", "cloudpickle"}
    tagger = load_default_tagger()
    assert tagger.version.startswith("pico-tagger-1-")
    assert tagger.card["n_docs"] == 500


def test_example_sentence_gets_participants_intervention_and_outcome():
    participants = _spans(EXAMPLE, "participant")
    interventions = _spans(EXAMPLE, "intervention")
    outcomes = _spans(EXAMPLE, "outcome")
    assert any("adults with plantar heel pain" in s for s in participants), participants
    assert any("dry needling" in s for s in interventions), interventions
    assert any("pain" in s or "visual analogue scale" in s for s in outcomes), outcomes
    # The allocation verb and the numbers' own words are not mentions of anything.
    assert not any("randomised" in s for s in interventions + outcomes)


def test_tag_pico_spans_index_the_text_and_have_no_edge_punctuation():
    text = ("Effect of duloxetine on pain, function, and quality of life among patients with "
            "painful neuropathy. Patients received duloxetine 60 mg or placebo (n = 231).")
    spans = tag_pico(text)
    assert spans and all(0 <= a < b <= len(text) for a, b, _ in spans)
    assert all(text[a] not in " .,;:" and text[b - 1] not in " .,;:" for a, b, _ in spans)
    assert any("duloxetine" in text[a:b] for a, b, lab in spans if lab == "intervention")
    assert any("patients with painful neuropathy" in text[a:b]
               for a, b, lab in spans if lab == "participant")
    assert tag_pico("") == []


def test_tokenize_follows_ebm_nlp():
    assert [w for _, _, w in tokenize("Pain, function and mood (VAS 0.5) improved vs. sham.")] == [
        "Pain", "function", "and", "mood", "(VAS", "0.5)", "improved", "vs", "sham", "."]
    labels = tag_tokens([["Adults", "with", "asthma", "received", "budesonide", "."]])
    assert len(labels) == 1 and len(labels[0]) == 6 and set(labels[0]) <= {"N", "P", "I", "O"}


# ------------------------------------------------------------------------- the estimator

DOCS = [[["Adults", "with", "asthma", "received", "budesonide", "."],
         ["Wheeze", "was", "lower", "."]]] * 4
TAGS = [[["P", "P", "P", "N", "I", "N"], ["O", "N", "N", "N"]]] * 4


def test_estimator_contract_and_json_round_trip(tmp_path):
    est = PicoTagger(C=5.0, min_count=1)
    assert est.get_params()["C"] == 5.0 and clone(est).get_params() == est.get_params()
    with pytest.raises(NotFittedError):
        est.predict(DOCS)
    assert est.fit(DOCS, TAGS) is est
    assert est.predict(DOCS[:1]) == TAGS[:1]
    assert est.score(DOCS, TAGS) == pytest.approx(1.0)
    loaded = from_json(est.to_json(tmp_path / "tagger.json"))
    assert loaded.predict(DOCS[:1]) == TAGS[:1]
    for ours, theirs in zip(est.decision_scores(DOCS[0]),
                            pico_module._scores(DOCS[0], loaded.coef, loaded.intercept),
                            strict=True):
        # Stored relative to N: scores differ by a per-token constant, up to rounding.
        diff = ours - theirs
        assert np.allclose(diff - diff[:, :1], 0, atol=0.05)


def test_bad_params_and_inputs_are_refused(tmp_path):
    with pytest.raises(ValueError, match="The 'C' parameter of PicoTagger must be"):
        PicoTagger(C=0).fit(DOCS, TAGS)
    with pytest.raises(ValueError, match="labels"):
        PicoTagger(min_count=1).fit(DOCS, [[["X"] * 6, ["N"] * 4]] * 4)
    with pytest.raises(ValueError, match="one label per token"):
        PicoTagger(min_count=1).fit(DOCS, [[["N"] * 5, ["N"] * 4]] * 4)
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something else"}', encoding="utf-8")
    with pytest.raises(InputError, match="not a valid reviewpipe.pico_tagger model"):
        from_json(bad)


# ------------------------------------------------------------------------- effect direction


@pytest.mark.parametrize(("abstract", "outcome", "expected"), [
    ("RESULTS: Pain was significantly lower in the dry needling group than in the sham group "
     "(p = 0.003).", "pain", DECREASED),
    ("RESULTS: Compared with sham, dry needling increased the pressure pain threshold "
     "(mean difference 1.2 kg/cm2, 95% CI 0.4 to 2.0).", "pressure pain threshold", INCREASED),
    ("RESULTS: Function scores were higher with sham than with dry needling (P < .01).",
     "function scores", DECREASED),
    ("RESULTS: There was no significant difference in pain between dry needling and sham "
     "(p = 0.41).", "pain", NO_DIFFERENCE),
    ("RESULTS: Pain fell in both groups from baseline (p < 0.001).", "pain", NO_DIFFERENCE),
    ("RESULTS: Disability did not differ between groups (mean difference 2.1, 95% CI -1.0 to "
     "5.2).", "disability", NO_DIFFERENCE),
    ("RESULTS: The odds of full recovery were higher with dry needling (odds ratio 2.4, 95% CI "
     "1.3 to 4.4).", "full recovery", INCREASED),
])
@pytest.mark.parametrize("rules_only", [False, True], ids=["model", "rules"])
def test_effect_direction_reads_each_label(abstract, outcome, expected, rules_only):
    text = ("BACKGROUND: We compared dry needling with sham needling in plantar heel pain.\n"
            "METHODS: Eighty adults were randomised to dry needling or sham.\n" + abstract)
    label, sentence = effect_direction(text, "dry needling", "sham", outcome,
                                       rules_only=rules_only)
    assert label == expected
    assert sentence in abstract


def test_effect_direction_picks_the_sentence_about_the_outcome():
    abstract = ("RESULTS: Pain was lower with dry needling than sham (p = 0.01). Quality of life "
                "did not differ between the groups (p = 0.52).")
    assert effect_direction(abstract, "dry needling", "sham", "quality of life") == (
        NO_DIFFERENCE, "Quality of life did not differ between the groups (p = 0.52).")
    assert effect_direction(abstract, "dry needling", "sham", "pain")[0] == DECREASED
    assert effect_direction("", "a", "b", "c") == (NO_DIFFERENCE, "")


# ------------------------------------------------------------------------- the direction model


def test_shipped_direction_model_is_plain_json_with_a_card():
    raw = resources.files("reviewpipe").joinpath("data/direction_model.json").read_bytes()
    assert len(raw) < 3_000_000
    payload = json.loads(raw)
    assert payload["format"] == MODEL_FORMAT and payload["labels"] == list(LABELS)
    assert len(payload["intercept"]) == 3
    assert all(len(w) == 3 for w in payload["weights"].values())
    assert payload["params"]["random_state"] == 0
    model = load_direction_model()
    assert model is not None and model.version == payload["version"]
    assert model.version.startswith("direction-1-")
    card = resources.files("reviewpipe").joinpath("data/direction_model.md").read_text("utf-8")
    assert model.version in card and "2026-11-28" in card and "| test |" in card


def test_rules_answer_when_the_model_json_is_absent(monkeypatch):
    abstract = "RESULTS: Pain was lower with dry needling than sham (p = 0.01)."
    monkeypatch.setattr(evidence_module, "_MODEL_RESOURCE", "data/no_such_model.json")
    evidence_module._shipped_model.cache_clear()
    try:
        assert load_direction_model() is None
        assert effect_direction(abstract, "dry needling", "sham", "pain") == effect_direction(
            abstract, "dry needling", "sham", "pain", rules_only=True)
    finally:
        monkeypatch.undo()
        evidence_module._shipped_model.cache_clear()
    assert load_direction_model() is not None


def test_direction_model_json_round_trip_and_bad_files(tmp_path):
    good = {"format": MODEL_FORMAT, "version": "direction-1-test", "labels": list(LABELS),
            "intercept": [0.0, 0.0, 0.5], "params": {"ngram": 2},
            "weights": {"rule=dec": [0.0, 2.0, 0.0], "p:ns": [-1.0, -1.0, 1.0]}}
    path = tmp_path / "model.json"
    path.write_text(json.dumps(good), encoding="utf-8")
    model = load_direction_model(path)
    assert model.predict([]) == NO_DIFFERENCE
    assert model.predict(["rule=dec", "unseen feature"]) == DECREASED
    assert model.predict(["rule=dec", "rule=dec", "p:ns"]) == NO_DIFFERENCE  # a set: once each
    assert np.allclose(model.scores(["rule=dec", "p:ns"]), [-1.0, 1.0, 1.5])
    for bad in ({**good, "format": "something else"}, {**good, "labels": ["a", "b", "c"]},
                {**good, "weights": {"x": [1.0, 2.0]}}, [1, 2, 3]):
        path.write_text(json.dumps(bad), encoding="utf-8")
        with pytest.raises(InputError, match="not a valid reviewpipe.direction_model"):
            load_direction_model(path)
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError, match="not a JSON model file"):
        load_direction_model(path)
    with pytest.raises(InputError, match="cannot read"):
        load_direction_model(tmp_path / "missing.json")


# ------------------------------------------------------------------------- the evaluation

# Measured by scripts/eval_pico_evidence.py on the shipped models and rules (see the report).
MEASURED_F1 = {"P": 0.556, "I": 0.455, "O": 0.525}
MEASURED_DIRECTION = {"all": 0.860, "validation": 0.752, "test": 0.640}
MEASURED_RULES = {"all": 0.717, "test": 0.619}
MARGIN = 0.02


def test_eval_script_exits_2_without_shared(tmp_path, capsys):
    assert _script("eval_pico_evidence").main(["--shared", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("Error: ") and "--shared" in err and "\n" not in err
    assert _script("train_pico_tagger").main(["--shared", str(tmp_path / "nowhere")]) == 2
    capsys.readouterr()
    assert _script("train_direction_model").main(["--shared", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("Error: ") and "--shared" in err and "\n" not in err


@pytest.mark.shared
def test_evaluation_runs_and_keeps_its_scores(tmp_path, capsys):
    out = tmp_path / "results.json"
    assert _script("eval_pico_evidence").main(["--shared", str(SHARED), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "LSTM-CRF" in printed and "BioMed RoBERTa" in printed
    results = json.loads(out.read_text(encoding="utf-8"))
    tagger, direction = results["tagger"], results["direction"]
    assert tagger["n_docs"] == 191 and tagger["n_tokens"] == 46512
    for label, f1 in MEASURED_F1.items():
        assert tagger[label]["f1"] >= f1 - MARGIN, (label, tagger[label])
    assert direction["all"]["n"] == 1196
    assert {direction[s]["n"] for s in ("train", "validation", "test")} == {940, 117, 139}
    for split, acc in MEASURED_DIRECTION.items():
        assert direction[split]["accuracy"] >= acc - MARGIN, (split, direction[split])
    for split, acc in MEASURED_RULES.items():
        assert direction["rules"][split]["accuracy"] >= acc - MARGIN, (split, direction["rules"])
    assert direction["model"].startswith("direction-1-")
    assert direction["all"]["macro_f1"] > direction["majority_class"]["macro_f1"] + 0.3
