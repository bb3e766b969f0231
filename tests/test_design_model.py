"""The RCT text model: estimator contract, JSON persistence (no pickle), the shipped model.

Tests marked ``shared`` read ../shared/benchmarks/rct_design.csv.gz and check that the shipped
model card tells the truth; they are skipped where ../shared is absent (fresh clones).
"""

from __future__ import annotations

import ast
import json
import pickle
import re
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import estimator_checks

import reviewpipe.design_model as dm
from reviewpipe.design_model import (
    RCTScorer,
    RCTTextModel,
    from_json,
    load_default_model,
    record_text,
)
from reviewpipe.errors import InputError

SHARED = Path(__file__).resolve().parents[2] / "shared"
BENCHMARK = SHARED / "benchmarks" / "rct_design.csv.gz"
requires_benchmark = pytest.mark.skipif(
    not BENCHMARK.is_file(), reason=f"{BENCHMARK} is absent (only ../shared has the benchmark)")

RCT_TEXTS = [
    record_text(
        "Acupuncture versus sham acupuncture for chronic low back pain: a randomised "
        "controlled trial",
        "Methods: 120 patients were randomly allocated to acupuncture or sham acupuncture "
        "for 8 weeks. The primary outcome was pain at 12 weeks. Results: Pain fell more in "
        "the acupuncture group (mean difference 1.2, 95% CI 0.5 to 1.9). Conclusions: "
        "Acupuncture reduced pain compared with sham."),
    record_text(
        "Effect of oral vitamin D on fracture risk in older women",
        "In this double-blind, placebo-controlled trial, 2256 women aged 70 or older were "
        "randomized to vitamin D 500 000 IU or placebo once a year. Falls and fractures were "
        "recorded for 3 to 5 years. Intention-to-treat analysis showed no benefit."),
    record_text(
        "Dry needling for plantar heel pain",
        "Participants were randomly assigned (1:1) by a computer-generated sequence with "
        "concealed allocation to dry needling or a sham intervention. Assessors were blinded."),
]
NON_RCT_TEXTS = [
    record_text(
        "Spontaneous rupture of a splenic artery aneurysm in pregnancy: a case report",
        "We present a case of a 32-year-old woman who developed sudden abdominal pain in the "
        "third trimester. Imaging showed a ruptured splenic artery aneurysm, which was treated "
        "surgically. The patient and child recovered."),
    record_text(
        "Expression of heat shock proteins in cultured rat hepatocytes",
        "Hepatocytes were isolated from adult male rats and cultured for 48 hours. Heat shock "
        "protein 70 was measured by western blot after exposure to cadmium chloride. "
        "Expression increased in a dose-dependent manner."),
    record_text(
        "Prevalence of burnout among hospital nurses: a cross-sectional survey",
        "A questionnaire was mailed to 1200 nurses in four hospitals; 845 responded. Burnout "
        "was associated with night shifts and staffing levels in multivariable regression."),
]

TINY_CORPUS = [
    ("Patients were randomised to receive drug A or placebo in a double-blind trial.", 1),
    ("We randomly assigned 200 adults to exercise or usual care; outcomes were blinded.", 1),
    ("A randomized controlled trial of aspirin versus placebo after stroke.", 1),
    ("Participants were allocated at random to two groups; intention-to-treat analysis.", 1),
    ("Double-blind placebo-controlled crossover study in 12 healthy volunteers.", 1),
    ("Multicentre randomised trial: surgery versus physiotherapy for knee pain.", 1),
    ("We present a case of a rare tumour in a 45-year-old man.", 0),
    ("A review of the literature on the management of asthma in children.", 0),
    ("Retrospective cohort study of 5000 patients from a national registry.", 0),
    ("Cultured cells were exposed to cadmium and protein expression was measured.", 0),
    ("Cross-sectional survey of nurses: prevalence of burnout and its correlates.", 0),
    ("Letter to the editor: comment on the recent guideline for hypertension.", 0),
    ("Électrophysiologie cardiaque — étude in vitro chez le rat (Ca²⁺, Na⁺).", 0),
    ("   Whitespace\t\tand\nnew lines,  punctuation!!! and CAPITALS; a_b c-d 3x 12mg/kg  ", 0),
    ("", 0),
]


def tiny() -> tuple[list[str], np.ndarray]:
    texts, labels = zip(*TINY_CORPUS, strict=True)
    return list(texts), np.array(labels)


TINY_PARAMS = [
    dict(min_df=1),
    dict(min_df=1, prefix_len=None, nb_C=None, C=4.0),
    dict(min_df=1, ngram_range=(1, 3), char_ngram_range=(2, 5), C=4.0),
    dict(min_df=1, ngram_range=(1, 1), char_ngram_range=(1, 3), max_features=20,
         char_max_features=50, class_weight=None, nb_C=None),
    dict(min_df=1, prefix_len=2, prefix_ngram_range=(1, 3), prefix_max_features=40,
         nb_C=2.0, nb_alpha=1.0),
    dict(min_df=1, prefix_len=32, prefix_ngram_range=(2, 2), char_ngram_range=(3, 5)),
]
PROBES = [
    "Randomised, double-blind trial of drug A versus placebo.",
    "Case report of a rare tumour.",
    "unknown words only: zyxwv qwerty",
    "",
    "  ",
    "Ünïcödé ΑΒΓ ﬁ İstanbul straße — 12mg/kg, a_b, x\u00a0y\u2003z",
    "a",
]


# ---- the shipped model ---------------------------------------------------------------------


def shipped_path() -> Path:
    return Path(str(resources.files("reviewpipe").joinpath("data/design_model.json")))


def test_shipped_model_is_plain_json() -> None:
    raw = shipped_path().read_bytes()
    assert raw.lstrip().startswith(b"{")
    assert not raw.startswith(b"\x80")  # a pickle's protocol opcode
    payload = json.loads(raw.decode("utf-8"))
    assert payload["format"] == dm.FORMAT
    assert payload["format_version"] == dm.FORMAT_VERSION
    assert shipped_path().stat().st_size < 3_000_000


def test_module_imports_no_pickle_or_joblib() -> None:
    tree = ast.parse(Path(dm.__file__).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"pickle", "joblib", "cloudpickle", "dill", "marshal", "shelve"}


def test_loading_never_unpickles(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args, **kwargs):
        raise AssertionError("pickle used while loading a model")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, boom)
    load_default_model.cache_clear()
    try:
        model = load_default_model()
    finally:
        load_default_model.cache_clear()
    assert isinstance(model, RCTScorer)
    assert isinstance(from_json(shipped_path()), RCTScorer)


def test_shipped_model_attributes() -> None:
    model = load_default_model()
    assert 0.0 < model.threshold < 1.0
    assert re.fullmatch(rf"rct-text-{dm.FORMAT_VERSION}-[0-9a-f]{{12}}", model.version)
    assert model.classes == [0, 1]
    for key in ("training_data", "threshold_rule", "dev_cv", "test", "intended_use"):
        assert key in model.card
    assert load_default_model() is model  # loaded once per process


def test_shipped_model_scores_sensibly() -> None:
    model = load_default_model()
    p_rct = model.predict_proba(RCT_TEXTS)
    p_other = model.predict_proba(NON_RCT_TEXTS)
    assert p_rct.shape == (3,) and p_other.shape == (3,)
    assert ((p_rct >= 0) & (p_rct <= 1)).all() and ((p_other >= 0) & (p_other <= 1)).all()
    assert p_rct.min() > 0.5
    assert p_rct.min() > p_other.max()
    assert (p_rct >= model.threshold).all()
    assert p_other[0] < model.threshold  # a case report
    assert model.predict(RCT_TEXTS).tolist() == [1, 1, 1]


def test_scorer_threads_and_batches_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    model = load_default_model()
    texts = (RCT_TEXTS + NON_RCT_TEXTS + PROBES) * 7
    one = model.predict_proba(texts, n_jobs=1)
    monkeypatch.setattr(dm, "_CHUNK", 5)
    monkeypatch.setattr(dm, "_BATCH", 11)
    np.testing.assert_allclose(model.predict_proba(texts, n_jobs=2), one, rtol=0, atol=1e-12)
    assert model.predict_proba([]).shape == (0,)


# ---- persistence round trip ----------------------------------------------------------------


@pytest.mark.parametrize("params", TINY_PARAMS)
def test_json_round_trip_matches_sklearn(tmp_path: Path, params: dict) -> None:
    texts, y = tiny()
    model = RCTTextModel(**params, threshold=0.4).fit(texts, y)
    path = model.to_json(tmp_path / "m.json", card={"note": "tiny"})
    loaded = from_json(path)
    probe = texts + PROBES
    np.testing.assert_allclose(loaded.predict_proba(probe), model.predict_proba(probe)[:, 1],
                               rtol=0, atol=1e-6)
    blank = ["", "  \n "]
    np.testing.assert_allclose(loaded.predict_proba(blank), model.predict_proba(blank)[:, 1],
                               rtol=0, atol=1e-6)
    assert loaded.threshold == 0.4
    assert loaded.card == {"note": "tiny"}
    assert loaded.predict(probe).tolist() == model.predict(probe).tolist()
    # A second save of the same fit is byte-identical.
    again = model.to_json(tmp_path / "again.json", card={"note": "tiny"})
    assert again.read_bytes() == path.read_bytes()


def test_json_floats_are_rounded(tmp_path: Path) -> None:
    texts, y = tiny()
    payload = RCTTextModel(min_df=1, char_ngram_range=(3, 5)).fit(texts, y).to_dict()
    for value in payload["word"]["coef"] + payload["char"]["idf"] + [payload["intercept"]]:
        assert float(f"{value:.7g}") == value


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda p: p.update(format="other"), "format"),
    (lambda p: p.update(format_version=99), "format_version"),
    (lambda p: p["word"].update(token_pattern=r"(a+)+$"), "token_pattern"),
    (lambda p: p["word"]["idf"].pop(), "idf"),
    (lambda p: p["word"]["coef"].__setitem__(0, float("nan")), "non-finite"),
    (lambda p: p.update(threshold=2.0), "threshold"),
    (lambda p: p["char"].update(analyzer="char"), "analyzer"),
    (lambda p: p["prefix"].update(prefix_len=1), "prefix_len"),
    (lambda p: p["prefix"].update(prefix_len="5"), "prefix_len"),
    (lambda p: p["prefix"].pop("prefix_len"), "needs 'prefix_len'"),
    (lambda p: p["word"].update(prefix_len=5), "whole tokens"),
    (lambda p: p.update(format_version=1), "version 1 model has no 'prefix'"),
    (lambda p: p.update(format_version=True), "format_version"),
])
def test_bad_model_file_is_refused(tmp_path: Path, mutate, message: str) -> None:
    texts, y = tiny()
    payload = RCTTextModel(min_df=1, char_ngram_range=(3, 5)).fit(texts, y).to_dict()
    mutate(payload)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(payload), encoding="utf-8")
    with pytest.raises(InputError, match=message):
        from_json(path)


def test_version_1_model_file_still_loads(tmp_path: Path) -> None:
    # A file from before the prefix block (format_version 1: word and char blocks only).
    texts, y = tiny()
    model = RCTTextModel(min_df=1, prefix_len=None, nb_C=None, char_ngram_range=(3, 5))
    payload = model.fit(texts, y).to_dict()
    del payload["prefix"]
    payload["format_version"] = 1
    path = tmp_path / "v1.json"
    path.write_text(json.dumps(payload), encoding="utf-8")
    probe = texts + PROBES
    np.testing.assert_allclose(from_json(path).predict_proba(probe),
                               model.predict_proba(probe)[:, 1], rtol=0, atol=1e-6)


def test_blend_is_the_mean_of_its_members_log_odds() -> None:
    texts, y = tiny()
    model = RCTTextModel(min_df=1, C=4.0, nb_C=2.0).fit(texts, y)
    features = model._features(texts)
    plain = model.classifier_.decision_function(features)
    nb = model.nb_classifier_.decision_function(features @ np.diag(model.nb_ratio_))
    np.testing.assert_allclose(model.decision_function(texts), (plain + nb) / 2, atol=1e-10)
    n_prefix = len(model.prefix_vectorizer_.vocabulary_)
    assert features.shape[1] == len(model.word_vectorizer_.vocabulary_) + n_prefix
    assert "rando" in model.prefix_vectorizer_.vocabulary_  # randomised/randomly/randomized
    alone = RCTTextModel(min_df=1, C=4.0, nb_C=None).fit(texts, y)
    np.testing.assert_allclose(alone.decision_function(texts),
                               alone.classifier_.decision_function(alone._features(texts)),
                               atol=1e-10)
    assert alone.nb_classifier_ is None and alone.nb_ratio_ is None


def test_unreadable_model_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        from_json(tmp_path / "missing.json")
    (tmp_path / "pickle.bin").write_bytes(pickle.dumps({"format": dm.FORMAT}))
    with pytest.raises(InputError, match="not a JSON model file"):
        from_json(tmp_path / "pickle.bin")


# ---- estimator contract ----------------------------------------------------------------------


@pytest.mark.parametrize("check", [
    estimator_checks.check_no_attributes_set_in_init,
    estimator_checks.check_parameters_default_constructible,
    estimator_checks.check_get_params_invariance,
    estimator_checks.check_set_params,
    estimator_checks.check_estimator_repr,
    estimator_checks.check_estimator_cloneable,
    estimator_checks.check_valid_tag_types,
    estimator_checks.check_estimator_tags_renamed,
    estimator_checks.check_mixin_order,
    estimator_checks.check_do_not_raise_errors_in_init_or_set_params,
])
def test_sklearn_api_checks(check) -> None:
    # The full check_estimator suite feeds 2-D numeric arrays, which a text model rejects
    # (sklearn skips it for two_d_array=False); these API checks apply as they are.
    check("RCTTextModel", RCTTextModel())


def test_params_stored_untouched() -> None:
    ngram, char, weights = (1, 3), (2, 4), {0: 1.0, 1: 3.0}
    model = RCTTextModel(ngram_range=ngram, char_ngram_range=char, class_weight=weights,
                         C=2.5, threshold=0.1, random_state=7)
    params = model.get_params()
    assert params["ngram_range"] is ngram and params["char_ngram_range"] is char
    assert params["class_weight"] is weights
    assert (params["C"], params["threshold"], params["random_state"]) == (2.5, 0.1, 7)
    texts, y = tiny()
    model.set_params(min_df=1).fit(texts, y)
    assert model.get_params()["ngram_range"] is ngram  # fit does not mutate params
    with pytest.raises(TypeError):
        RCTTextModel((1, 2))  # keyword-only


def test_fit_returns_self_and_fitted_attributes() -> None:
    texts, y = tiny()
    model = RCTTextModel(min_df=1)
    assert model.fit(texts, y) is model
    assert model.classes_.tolist() == [0, 1]
    assert model.predict_proba(texts).shape == (len(texts), 2)
    assert model.decision_function(texts).shape == (len(texts),)
    assert set(model.predict(texts)) <= {0, 1}
    assert 0.0 <= model.score(texts, y) <= 1.0


def test_not_fitted_errors(tmp_path: Path) -> None:
    model = RCTTextModel()
    for call in (model.predict_proba, model.predict, model.decision_function):
        with pytest.raises(NotFittedError):
            call(["a randomised trial"])
    with pytest.raises(NotFittedError):
        model.to_json(tmp_path / "m.json")


def test_fit_is_deterministic(tmp_path: Path) -> None:
    texts, y = tiny()
    a = RCTTextModel(min_df=1, random_state=0).fit(texts, y)
    b = clone(a).fit(texts, y)
    np.testing.assert_array_equal(a.classifier_.coef_, b.classifier_.coef_)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    assert (a.to_json(tmp_path / "a.json").read_bytes()
            == b.to_json(tmp_path / "b.json").read_bytes())


def test_predict_uses_threshold() -> None:
    texts, y = tiny()
    model = RCTTextModel(min_df=1).fit(texts, y)
    p = model.predict_proba(texts)[:, 1]
    cut = float(np.median(p))
    model.set_params(threshold=cut)
    assert model.predict(texts).tolist() == (p >= cut).astype(int).tolist()


@pytest.mark.parametrize(("params", "message"), [
    (dict(C=-1.0), "The 'C' parameter of RCTTextModel must be a float in the range "
                   r"\(0, inf\). Got -1.0 instead."),
    (dict(ngram_range=(2, 1)), "'ngram_range'"),
    (dict(char_ngram_range=(4, 5)), "'char_ngram_range'"),
    (dict(prefix_len=1), "'prefix_len'"),
    (dict(prefix_len=5.0), "'prefix_len'"),
    (dict(prefix_ngram_range=(0, 1)), "'prefix_ngram_range'"),
    (dict(prefix_max_features=0), "'prefix_max_features'"),
    (dict(nb_C=0.0), "'nb_C'"),
    (dict(nb_alpha=-1.0), "'nb_alpha'"),
    (dict(min_df=0), "'min_df'"),
    (dict(max_features=0), "'max_features'"),
    (dict(threshold=1.5), "'threshold'"),
    (dict(class_weight="auto"), "'class_weight'"),
])
def test_bad_params_fail_in_fit(params: dict, message: str) -> None:
    model = RCTTextModel(**params)  # no validation in __init__
    texts, y = tiny()
    with pytest.raises(ValueError, match=message):
        model.fit(texts, y)


def test_bad_input() -> None:
    texts, y = tiny()
    with pytest.raises(ValueError, match="single string"):
        RCTTextModel(min_df=1).fit("one text", [1])
    with pytest.raises(ValueError, match="must be a str"):
        RCTTextModel(min_df=1).fit([*texts[:-1], None], y)
    with pytest.raises(ValueError, match="binary"):
        RCTTextModel(min_df=1).fit(texts, np.zeros(len(texts)))
    with pytest.raises(ValueError, match="one label per text"):
        RCTTextModel(min_df=1).fit(texts, y[:-1])


# ---- the card is true (needs ../shared) ------------------------------------------------------


def _benchmark():
    pd = pytest.importorskip("pandas")
    data = pd.read_csv(BENCHMARK, keep_default_na=False, dtype={"title": str, "abstract": str})
    data["text"] = [record_text(t, a) for t, a in zip(data.title, data.abstract, strict=True)]
    return data


@pytest.mark.shared
@requires_benchmark
def test_card_test_metrics_are_true() -> None:
    import hashlib

    model = load_default_model()
    card = model.card
    assert card["training_data"]["sha256"] == hashlib.sha256(BENCHMARK.read_bytes()).hexdigest(), \
        "the benchmark changed since the model was trained: rerun scripts/train_design_model.py"
    test = _benchmark().query("split == 'test'")
    p = model.predict_proba(test.text.tolist())
    y = test.label.to_numpy()
    pred = p >= model.threshold
    recall = (pred & (y == 1)).sum() / (y == 1).sum()
    precision = (pred & (y == 1)).sum() / pred.sum()
    assert recall >= card["test"]["overall"]["recall"] - 0.005
    assert precision >= card["test"]["overall"]["precision"] - 0.005


@pytest.mark.shared
@requires_benchmark
def test_numpy_scorer_equals_sklearn_and_refit_equals_shipped() -> None:
    data = _benchmark()
    dev = data[data.split == "dev"]
    params = {k: tuple(v) if isinstance(v, list) else v
              for k, v in load_default_model().params.items()}
    model = RCTTextModel(**params).fit(dev.text.tolist(), dev.label.to_numpy())
    sample = dev.text.tolist()[::21][:200]
    scorer = RCTScorer(model.to_dict())
    np.testing.assert_allclose(scorer.predict_proba(sample), model.predict_proba(sample)[:, 1],
                               rtol=0, atol=1e-6)
    # The shipped file is this fit: same vocabulary, same weights (to rounding).
    shipped = json.loads(shipped_path().read_text(encoding="utf-8"))
    refit = model.to_dict()
    for block in ("word", "prefix", "char"):
        assert (refit.get(block) is None) == (shipped.get(block) is None), block
        if refit.get(block) is None:
            continue
        assert refit[block]["vocabulary"] == shipped[block]["vocabulary"]
        np.testing.assert_allclose(refit[block]["coef"], shipped[block]["coef"], rtol=1e-5,
                                   atol=1e-6)
    np.testing.assert_allclose(refit["intercept"], shipped["intercept"], rtol=1e-5)
