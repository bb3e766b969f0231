"""Ranking for the human screeners: metrics, the ASReview-style simulation and its evaluation."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import SHARED, load_script
from reviewpipe.ranking import (
    rank_for_human,
    recall_at,
    record_text,
    simulate_screening,
    text_features,
    wss_at,
)

SYNERGY = SHARED / "datasets" / "synergy_v1_with_abstracts"



# ---------------------------------------------------------------- metrics


def test_wss_at_95_by_hand() -> None:
    # 2 relevant: 95% of them rounds up to both; the 2nd is found at record 3 of 10.
    assert wss_at([1, 0, 1, 0, 0, 0, 0, 0, 0, 0]) == pytest.approx(7 / 10 - 0.05)
    assert wss_at([1, 1, 0, 0, 0, 0, 0, 0, 0, 0]) == pytest.approx(8 / 10 - 0.05)
    # Found last: no work saved, minus the 5% allowed to be missed.
    assert wss_at([0] * 9 + [1]) == pytest.approx(-0.05)
    # 20 relevant: 95% is exactly 19 (not 20 through 0.95 * 20 rounding up).
    perfect = [1] * 20 + [0] * 80
    assert wss_at(perfect) == pytest.approx((100 - 19) / 100 - 0.05)
    assert wss_at(perfect[:19] + [0] * 80 + [1]) == pytest.approx((100 - 19) / 100 - 0.05)
    # Other recall levels: WSS@100 needs every relevant record.
    assert wss_at([1, 0, 1, 0], recall=1.0) == pytest.approx(1 / 4)


def test_recall_at_k_by_hand() -> None:
    order = [0, 1, 0, 0, 1, 1, 0, 0]
    assert [recall_at(order, k) for k in (0, 1, 2, 5, 6, 8)] == pytest.approx(
        [0, 0, 1 / 3, 2 / 3, 1, 1])


def test_metrics_refuse_an_order_without_relevant_records() -> None:
    with pytest.raises(ValueError):
        wss_at([0, 0, 0])
    with pytest.raises(ValueError):
        recall_at([0, 0], 1)


# ---------------------------------------------------------------- simulation


def _synthetic(n: int = 240, n_relevant: int = 12, seed: int = 3) -> tuple[list[str], list[int]]:
    """Texts where relevant records share some topic words, amid a common noise vocabulary."""
    rng = np.random.default_rng(seed)
    noise = [f"w{i}" for i in range(300)]
    topic = ["plantar", "fasciitis", "needling", "heel", "randomised", "sham"]
    relevant = set(rng.choice(n, size=n_relevant, replace=False).tolist())
    texts, labels = [], []
    for i in range(n):
        words = list(rng.choice(noise, size=25))
        if i in relevant:
            words += list(rng.choice(topic, size=3, replace=False))
        texts.append(" ".join(words))
        labels.append(int(i in relevant))
    return texts, labels


def _priors(labels: list[int]) -> list[int]:
    return [labels.index(1), labels.index(0)]


def test_simulation_is_deterministic_and_finds_relevant_records_early() -> None:
    texts, labels = _synthetic()
    features = text_features(texts)
    priors = _priors(labels)
    order = simulate_screening(features, labels, priors, random_state=0)
    assert sorted(order) == list(range(len(labels)))
    assert order[:2] == priors
    assert simulate_screening(features, labels, priors, random_state=0) == order
    screened = [labels[i] for i in order[2:]]
    # Row order (the relevant rows are random) saves nothing on average; the ranker saves a lot.
    row_order = [labels[i] for i in range(len(labels)) if i not in priors]
    assert wss_at(screened) > 0.5
    assert wss_at(screened) > wss_at(row_order) + 0.3
    assert recall_at(screened, math.ceil(0.1 * len(screened))) > 0.5


def test_simulation_with_sparser_retraining() -> None:
    texts, labels = _synthetic()
    features = text_features(texts)
    order = simulate_screening(features, labels, _priors(labels), retrain_every=10,
                               retrain_every_from=20)
    assert sorted(order) == list(range(len(labels)))
    assert wss_at([labels[i] for i in order[2:]]) > 0.4
    with pytest.raises(ValueError):
        simulate_screening(features, labels, _priors(labels), retrain_every=0)


def test_simulation_without_both_classes_goes_top_down() -> None:
    texts, labels = _synthetic(n=60, n_relevant=3)
    irrelevant = [i for i, y in enumerate(labels) if not y][:2]
    order = simulate_screening(text_features(texts), labels, irrelevant)
    first_relevant = min(i for i, y in enumerate(labels) if y)
    # Until a relevant record turns up there is nothing to learn: rows are read in order.
    head = order[2:order.index(first_relevant) + 1]
    assert head == sorted(head)


# ---------------------------------------------------------------- rank_for_human contract


def test_rank_for_human_contract() -> None:
    labelled = [record_text("Dry needling for plantar heel pain: a randomised trial", "sham"),
                record_text("Dry needling versus sham for plantar fasciitis", "heel pain"),
                record_text("Neck pain and manual therapy", "a cohort"),
                record_text("Knee osteoarthritis exercise", "a survey")]
    pending = [record_text("Ankle sprain in athletes", "survey"),
               record_text("Plantar heel pain treated with dry needling", "randomised")]
    scores = rank_for_human(labelled, [1, 1, 0, 0], pending, [0.9, 0.1], random_state=0)
    assert len(scores) == 2 and all(0 < s < 1 for s in scores)
    assert scores[1] > scores[0]
    assert rank_for_human(labelled, [1, 1, 0, 0], pending, [0.9, 0.1], random_state=0) == scores
    # Cold start (one class only) or nothing readable: the fallback, unchanged.
    assert rank_for_human(labelled[:2], [1, 1], pending, [0.9, 0.1]) == [0.9, 0.1]
    assert rank_for_human(["", " "], [1, 0], ["", ""], [0.3, 0.4]) == [0.3, 0.4]
    assert rank_for_human(labelled, [1, 1, 0, 0], [], []) == []


def test_record_text_counts_the_title_twice() -> None:
    assert record_text("Heel pain", "An abstract.") == "Heel pain Heel pain An abstract."
    assert record_text(None, None) == ""


# ---------------------------------------------------------------- the evaluation script


def test_eval_script_exits_2_without_shared(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert load_script("eval_ranking").main(["--shared", str(tmp_path / "absent")]) == 2
    out = capsys.readouterr().out.strip()
    assert len(out.splitlines()) == 1 and "absent" in out


def test_priors_are_one_relevant_one_irrelevant_and_seeded() -> None:
    module = load_script("eval_ranking")
    labels = [0, 1, 0, 0, 1, 0, 0, 0, 1, 0]
    priors = module.choose_priors(labels, 0)
    assert [labels[i] for i in priors] == [1, 0]
    assert module.choose_priors(labels, 0) == priors
    assert {tuple(module.choose_priors(labels, 0, r)) for r in range(10)} != {tuple(priors)}


def test_asreview_results_are_read_in_labelling_order(tmp_path: Path) -> None:
    module = load_script("eval_ranking")
    data = tmp_path / "tiny.csv"
    labels = [0, 1, 0, 1, 0, 0, 0, 0, 0, 0]
    data.write_text("title,abstract,label_included\n"
                    + "".join(f"t{i},a{i},{y}\n" for i, y in enumerate(labels)), encoding="utf-8")
    # A stand-in `asreview simulate` that writes a project file as 3.x does: priors 1 and 0, then
    # records 2 and 3 (the last relevant), where it stops.
    fake = tmp_path / "asreview"
    fake.write_text(f"""#!{sys.executable}
import sqlite3, sys, tempfile, zipfile
out = sys.argv[sys.argv.index("-o") + 1]
with tempfile.TemporaryDirectory() as tmp:
    db = sqlite3.connect(tmp + "/results.db")
    db.execute("CREATE TABLE record (record_id INTEGER)")
    db.executemany("INSERT INTO record VALUES (?)", [(i,) for i in range(10)])
    db.execute("CREATE TABLE results (record_id INTEGER, label INTEGER)")
    db.executemany("INSERT INTO results VALUES (?, ?)", [(1, 1), (0, 0), (2, 0), (3, 1)])
    db.commit()
    db.close()
    with zipfile.ZipFile(out, "w") as archive:
        archive.write(tmp + "/results.db", "results.db")
""", encoding="utf-8")
    fake.chmod(0o755)
    score = module.run_asreview(fake, data, [1, 0], seed=0)
    # After the priors: 0, 1 (found at record 2 of 8).
    assert score.wss95 == pytest.approx((8 - 2) / 8 - 0.05)
    assert score.recall10 == pytest.approx(0.0)  # ceil(0.8) = 1 record: irrelevant
    with pytest.raises(module.AsreviewUnavailable):
        module.run_asreview(fake, data, [3, 0], seed=0)  # not the priors it was given


# ---------------------------------------------------------------- ../shared


@pytest.mark.shared
def test_simulation_on_the_smallest_synergy_dataset() -> None:
    module = load_script("eval_ranking")
    path = SYNERGY / "Donners_2021.csv"  # the fewest records (258, 15 included)
    labels = module.load_dataset(path)[2]
    score = module.run_reviewpipe(path, module.choose_priors(labels, 0), seed=0,
                                  retrain_every=1)
    # Measured 0.641 (ASReview 3.0.8's default model: 0.571 with the same priors).
    assert score.wss95 >= 0.59
    assert score.recall10 >= 0.55
