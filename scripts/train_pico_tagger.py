"""Train the shipped P/I/O token tagger on EBM-NLP dev.txt and write its JSON and model card.

    python scripts/train_pico_tagger.py --shared ../shared

Protocol: ``dev.txt`` (500 abstracts, aggregated crowd labels) is the only training data; the
191-abstract expert ``test.txt`` is scored once at the end for the card and chooses nothing.
``C`` and ``min_count`` are fixed at the values that won an earlier 3-fold CV on dev (see
``EXPLORED``); this script reruns a 3-fold CV over documents (seed 0) with them, picks the
decoding parameters (``transition_weight``, ``mention_bias``) from ``DECODE_GRID`` by mean
out-of-fold F1 over P, I and O, refits on all of dev and writes the model.

Deterministic: a rerun writes a byte-identical JSON (the card carries the date and timings).
About 3-4 minutes on 2 cores. Exits 2 when ``--shared`` has no ``datasets/ebm_nlp_pio_tokens``.

Model card
----------
What it is: a logistic regression over binary token-window features (word, affixes, shape,
neighbours, the nearest cue words such as "with"/"versus"/"on", the section heading, whether
the word is in the title) and rule marks from `reviewpipe.numbers` (p-values, statistics, time
points), decoded per sentence with Viterbi over label-transition lifts. What it is for:
proposing P/I/O spans in RCT abstracts for a reviewer to check, never final extraction. Known
limits: trained on 500 crowd-labelled abstracts (the 4,300-abstract training set was not
available), so it under-calls mentions relative to the expert test labels; one label per token
(P > I > O where spans overlap); English PubMed abstracts only.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path

import numpy as np
import sklearn

from reviewpipe.pico_tags import (
    LoadedTagger,
    PicoTagger,
    _decode,
    _scores,
    from_json,
    read_conll,
    token_prf,
)

ROOT = Path(__file__).resolve().parents[1]
DATASET = Path("datasets") / "ebm_nlp_pio_tokens"
PARAMS = {"C": 0.2, "min_count": 3, "max_iter": 300, "random_state": 0}
DECODE_GRID = {"transition_weight": (0.0, 0.25, 0.5, 0.75), "mention_bias": (0.0, 0.5, 1.0)}
FOLDS = 3
# The earlier 3-fold dev CV (seed 0, transition_weight 0.5, mention_bias 0.5) behind PARAMS:
# (C, min_count) -> mean token F1 over P, I, O.
EXPLORED = {(0.05, 2): 0.538, (0.15, 2): 0.546, (0.25, 3): 0.545, (0.5, 2): 0.542,
            (1.5, 2): 0.531}
# Nye et al. (2018), ACL, the LSTM-CRF row of its P/I/O span baselines: token level, expert test.
BASELINE = {"P": (0.78, 0.66, 0.71), "I": (0.61, 0.70, 0.65), "O": (0.69, 0.58, 0.63)}


def _fold_scores(args: tuple[list, list, list, dict]) -> tuple[list, list, np.ndarray]:
    """Fit on one fold's training documents; score its held-out ones, as fitted and as the
    JSON stores the weights (relative to N, 3 decimals)."""
    train_x, train_y, test_x, params = args
    model = PicoTagger(**params).fit(train_x, train_y)
    stored = LoadedTagger(model.to_dict())
    return ([model.decision_scores(doc) for doc in test_x],
            [_scores(doc, stored.coef, stored.intercept) for doc in test_x], model.transitions_)


def _f1s(gold: list[str], pred: list[str]) -> dict[str, tuple[float, float, float]]:
    return {c: token_prf(gold, pred, c) for c in ("P", "I", "O")}


def _flat(docs: list) -> list[str]:
    return [t for doc in docs for sent in doc for t in sent]


def main(argv: list[str] | None = None) -> int:
    """Cross-validate the decoder on dev, refit, write JSON and card, score test once."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared",
                        help="the shared folder holding datasets/ebm_nlp_pio_tokens")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "src" / "reviewpipe" / "data" / "pico_tagger.json")
    parser.add_argument("--card", type=Path,
                        default=ROOT / "src" / "reviewpipe" / "data" / "pico_tagger_card.md")
    args = parser.parse_args(argv)

    data = args.shared / DATASET
    if not (data / "dev.txt").is_file() or not (data / "test.txt").is_file():
        print(f"Error: {data}: EBM-NLP dev.txt/test.txt not found. Pass --shared with the "
              "folder that holds datasets/ebm_nlp_pio_tokens.", file=sys.stderr)
        return 2

    t0 = time.time()
    docs, labels = read_conll(data / "dev.txt")
    folds = np.random.RandomState(0).permutation(len(docs)) % FOLDS
    jobs = []
    for k in range(FOLDS):
        train = [i for i in range(len(docs)) if folds[i] != k]
        test = [i for i in range(len(docs)) if folds[i] == k]
        jobs.append(([docs[i] for i in train], [labels[i] for i in train],
                     [docs[i] for i in test], PARAMS))
    with ProcessPoolExecutor(max_workers=2) as pool:
        fold_out = list(pool.map(_fold_scores, jobs))
    held = [[i for i in range(len(docs)) if folds[i] == k] for k in range(FOLDS)]
    gold = _flat([labels[i] for idx in held for i in idx])

    def cv_f1(weight: float, bias: float, which: int = 0) -> tuple[float, dict]:
        pred = []
        for out in fold_out:
            for doc_scores in out[which]:
                pred.extend(t for s in _decode(doc_scores, out[2], weight, bias) for t in s)
        per = _f1s(gold, pred)
        return float(np.mean([v[2] for v in per.values()])), per

    grid = {}
    for weight, bias in itertools.product(DECODE_GRID["transition_weight"],
                                          DECODE_GRID["mention_bias"]):
        grid[(weight, bias)] = cv_f1(weight, bias)
    (weight, bias), (cv_mean, cv_per) = max(grid.items(), key=lambda kv: kv[1][0])
    t_cv = time.time() - t0

    model = PicoTagger(**PARAMS, transition_weight=weight, mention_bias=bias).fit(docs, labels)
    card = {
        "trained_on": "EBM-NLP acl_scripts/lstm-crf/data/dev.txt (500 abstracts, aggregated "
                      "crowd labels)",
        "dev_sha256": hashlib.sha256((data / "dev.txt").read_bytes()).hexdigest(),
        "n_docs": len(docs), "n_tokens": len(_flat(labels)),
        "cv_mean_f1": round(cv_mean, 4),
        "cv": {c: [round(x, 4) for x in v] for c, v in cv_per.items()},
        "script": "scripts/train_pico_tagger.py",
    }
    model.to_json(args.out, card=card)
    loaded = from_json(args.out)

    stored = cv_f1(weight, bias, which=1)[1]  # rounding must not cost F1

    test_docs, test_labels = read_conll(data / "test.txt")
    test = _f1s(_flat(test_labels), _flat(loaded.predict(test_docs)))
    t_all = time.time() - t0
    _write_card(args.card, loaded, card, grid, (weight, bias), stored, test,
                len(test_docs), t_cv, t_all, args.out.stat().st_size)
    print(f"dev CV mean F1 {cv_mean:.3f} (transition_weight={weight}, mention_bias={bias}); "
          f"test F1 " + ", ".join(f"{c} {v[2]:.3f}" for c, v in test.items())
          + f"; {args.out} {args.out.stat().st_size / 1e6:.2f} MB; {t_all:.0f}s")
    return 0


def _write_card(path: Path, model, card: dict, grid: dict, chosen: tuple[float, float],
                stored: dict, test: dict, n_test: int, t_cv: float, t_all: float,
                size: int) -> None:
    rows = "\n".join(
        f"| {w} | {b} | {v[0]:.3f} | " + " | ".join(f"{v[1][c][2]:.3f}" for c in "PIO") + " |"
        + (" **chosen**" if (w, b) == chosen else "")
        for (w, b), v in grid.items())
    explored = "\n".join(f"| {c} | {m} | {f:.3f} |" for (c, m), f in EXPLORED.items())

    def prf(d: dict, c: str) -> str:
        return " | ".join(f"{x:.3f}" for x in d[c])

    text = f"""# Model card: P/I/O token tagger (`{model.version}`)

Token-level Participants / Interventions / Outcomes tags for RCT abstracts
(`reviewpipe.pico_tags`: `tag_pico(text)` spans, `tag_tokens(sentences)` labels). Shipped as
`src/reviewpipe/data/pico_tagger.json` ({size / 1e6:.2f} MB of plain JSON: feature names and
weights, transition lifts, params; no pickle). Trained {date.today().isoformat()} by
`scripts/train_pico_tagger.py` (the JSON is deterministic; this card's date and timings vary).

## Intended use
Proposing P/I/O spans in English trial abstracts for a reviewer to check. Not a substitute for
reading the abstract; its spans are coarse (EBM-NLP "starting spans").

## Training data
- EBM-NLP (Nye et al., ACL 2018), `acl_scripts/lstm-crf/data/dev.txt` at commit
  `9a2a49bb`: {card['n_docs']} abstracts, {card['n_tokens']:,} tokens, aggregated **crowd**
  labels, one label per token (overlaps collapsed P > I > O); sha256
  `{card['dev_sha256']}`.
- The corpus's 4,300-abstract training split was not available; `test.txt` (191 abstracts,
  **expert** labels) was used only for the score below.

## Model
Multinomial logistic regression (lbfgs, L2, `C`={PARAMS['C']}) over binary features of each
token kept when seen on >= {PARAMS['min_count']} training tokens: lower-cased word (digits as
0), 3-4 letter prefix/suffix, shape, words at offsets -3..+3, bigrams, the nearest cue word to
the left and right ("of", "on", "with", "versus", "received"…), a bag of words 4-6 tokens away,
the section heading in force (BACKGROUND, METHODS, PATIENTS, RESULTS…; sentence 0 is the
title), whether the word occurs in the title, word lists (people, allocation, outcome words),
and rule marks from `reviewpipe.numbers` (token inside a p-value, a statistic, a time point or
a duration; sentence has a p-value or an allocation verb). Decoding: per-sentence Viterbi over
log P(label | previous label) - log P(label), weight `transition_weight`; `mention_bias` is
added to the P/I/O scores first. The JSON stores each feature's P, I and O weights minus its N
weight (softmax is unchanged by that), rounded to 3 decimals; no feature is dropped.

## Choices (3-fold CV over dev documents, seed 0; mean token F1 over P, I, O)
Earlier exploration behind `C` and `min_count` (decoder fixed at 0.5 / 0.5):

| C | min_count | dev CV mean F1 |
| ---: | ---: | ---: |
{explored}

Decoder grid, rerun by this script on out-of-fold scores:

| transition_weight | mention_bias | mean F1 | P F1 | I F1 | O F1 |
| ---: | ---: | ---: | ---: | ---: | ---: |
{rows}

Weights as stored in the JSON, same folds and decoder: F1 P {stored['P'][2]:.3f}, I
{stored['I'][2]:.3f}, O {stored['O'][2]:.3f} (the chosen row above is the unrounded model).

## Evaluation: EBM-NLP expert test set ({n_test} abstracts, `test.txt`)
Token-level precision / recall / F1 per label against the single-label column of `test.txt`
(the annotation the published LSTM-CRF baseline scripts evaluate on). Baseline: Nye et al.
(2018) LSTM-CRF, trained on the full crowd-labelled training split.

| label | ours P | ours R | ours F1 | LSTM-CRF P | R | F1 |
| --- | ---: | ---: | ---: | ---: | ---: | ---: |
| Participants | {prf(test, 'P')} | {' | '.join(f'{x:.2f}' for x in BASELINE['P'])} |
| Interventions | {prf(test, 'I')} | {' | '.join(f'{x:.2f}' for x in BASELINE['I'])} |
| Outcomes | {prf(test, 'O')} | {' | '.join(f'{x:.2f}' for x in BASELINE['O'])} |

## Caveats
- Crowd-trained, expert-tested: the expert labels mark far more outcome tokens (21.7% of
  test tokens vs 9.1% of dev tokens) and fewer participant tokens; the tagger inherits the
  crowd's habits.
- `test.json`'s P/I/O columns are cumulative (its I column is P or I of `test.txt`, its O
  column is P, I or O), not independent overlapping spans, so it is not used.
- Environment: Python {platform.python_version()}, scikit-learn {sklearn.__version__},
  numpy {np.__version__}; CV {t_cv:.0f} s, whole script {t_all:.0f} s.
"""
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
