"""Evaluate the P/I/O tagger on EBM-NLP and effect directions on Evidence Inference 2.0.

    python scripts/eval_pico_evidence.py --shared ../shared [--json results.json]

1. **P/I/O tagging** (`reviewpipe.pico_tags`, the shipped JSON model): token-level precision,
   recall and F1 per label on the 191 expert-annotated abstracts of EBM-NLP
   ``acl_scripts/lstm-crf/data/test.txt``, against its single label per token (overlapping
   spans collapsed P > I > O; the annotation the ACL 2018 LSTM-CRF baseline scripts score
   on). The tokens and sentences are the file's own, so no tokenisation differences enter.
   ``test.json`` is not used: its I and O columns are cumulative (I = P or I, O = P, I or O
   of the single label), not independent overlapping spans.
2. **Effect direction** (`reviewpipe.evidence.effect_direction`: the rules pick the evidence
   sentence, the shipped JSON model ``data/direction_model.json`` reads its direction): the
   1,196 prompts of Evidence Inference 2.0 with at least one annotation whose evidence lies in
   the title or abstract (``evidence_in_abstract``), all splits, read from
   ``title + "\\n" + abstract``. Gold per prompt: the majority label of those annotations; a
   tie goes to the label with a ``ValidLabel`` vote, then to the first in file order. Accuracy
   and macro-F1 over the three labels, overall and per split: the model was fitted on
   ``train`` (see ``scripts/train_direction_model.py``) and its hyperparameters chosen on
   ``validation``; the rules were written looking at ``train`` prompts (and checked on
   ``validation``); ``test`` chose nothing. The rules alone (``rules_only=True``, the fallback
   when the JSON is absent) are scored beside it.

Published baselines are printed beside ours as the papers report them; neither was run here.
Exits 2 when ``--shared`` lacks the datasets; 0 otherwise (the issue sets no target).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from reviewpipe.evidence import LABELS, effect_direction, load_direction_model
from reviewpipe.pico_tags import load_default_tagger, read_conll, token_prf

ROOT = Path(__file__).resolve().parents[1]
EBM = Path("datasets") / "ebm_nlp_pio_tokens"
EI = Path("datasets") / "evidence_inference_v2"
NAMES = {"P": "Participants", "I": "Interventions", "O": "Outcomes"}
# Nye et al. (2018), ACL, LSTM-CRF baseline: token-level P / R / F1 on the expert test set,
# trained on the ~4,300 crowd-labelled training abstracts. (Mean F1 0.663 is the 66.3 the
# paper's EBM-NLP PICO entry carries on leaderboards.)
EBM_BASELINE = {"P": (0.78, 0.66, 0.71), "I": (0.61, 0.70, 0.65), "O": (0.69, 0.58, 0.63)}
# DeYoung et al. (2020), BioNLP, Evidence Inference 2.0, v2.0 test set, full texts, end to end
# (find the evidence, then classify): macro-averaged precision / recall / F1.
EI_BASELINES = {
    "Lehman et al. (2019) baseline, as reported by DeYoung et al. (2020)": (0.526, 0.516, 0.514),
    "DeYoung et al. (2020) BioMed RoBERTa pipeline": (0.784, 0.777, 0.780),
}


def _macro_f1(gold: list[str], pred: list[str]) -> float:
    return float(np.mean([token_prf(gold, pred, label)[2] for label in LABELS]))


def evaluate_tagger(shared: Path) -> dict[str, Any]:
    """Token-level P/R/F1 per label of the shipped tagger on EBM-NLP test.txt."""
    docs, labels = read_conll(shared / EBM / "test.txt")
    tagger = load_default_tagger()
    pred = [t for doc in tagger.predict(docs) for s in doc for t in s]
    gold = [t for doc in labels for s in doc for t in s]
    out: dict[str, Any] = {"n_docs": len(docs), "n_tokens": len(gold),
                           "model": tagger.version}
    for label in NAMES:
        out[label] = dict(zip(("precision", "recall", "f1"), token_prf(gold, pred, label),
                              strict=True))
    out["mean_f1"] = float(np.mean([out[label]["f1"] for label in NAMES]))
    return out


def _gold(rows: list[dict[str, str]]) -> str:
    """Majority label; a tie goes to a label some ``ValidLabel`` row holds, then file order."""
    votes = Counter(r["Label"] for r in rows)
    top = [r for r in rows if votes[r["Label"]] == max(votes.values())]
    return ([r for r in top if r["ValidLabel"] == "True"] or top)[0]["Label"]


def evaluate_direction(shared: Path) -> dict[str, Any]:
    """Accuracy and macro-F1 of `effect_direction` on the 1,196 abstract-answerable prompts."""
    folder = shared / EI
    with open(folder / "ei_v2_abstracts.csv", encoding="utf-8", newline="") as handle:
        abstracts = {r["pmcid"]: f"{r['title']}\n{r['abstract']}" for r in csv.DictReader(handle)}
    prompts: dict[str, list[dict[str, str]]] = {}
    with open(folder / "ei_v2_prompts_annotations.csv", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["evidence_in_abstract"] == "True":
                prompts.setdefault(row["PromptID"], []).append(row)
    results = []
    rules = []
    for rows in prompts.values():
        first = rows[0]
        prompt = (abstracts.get(first["PMCID"], ""), first["Intervention"],
                  first["Comparator"], first["Outcome"])
        label, sentence = effect_direction(*prompt)
        rules.append(effect_direction(*prompt, rules_only=True)[0])
        cited = [" ".join(r["Evidence"].split()).lower() for r in rows]
        said = " ".join(sentence.split()).lower()
        hit = bool(said) and any(c[:60] in said or said[:60] in c for c in cited if c)
        agreed = len({r["Label"] for r in rows}) == 1
        results.append((first["split"], _gold(rows), label, hit, agreed))

    def score(subset: list[tuple]) -> dict[str, Any]:
        gold = [r[1] for r in subset]
        pred = [r[2] for r in subset]
        return {"n": len(subset),
                "accuracy": float(np.mean([g == p for g, p in zip(gold, pred, strict=True)])),
                "macro_f1": _macro_f1(gold, pred),
                "evidence_sentence_hit": float(np.mean([r[3] for r in subset]))}

    model = load_direction_model()
    out: dict[str, Any] = {"model": model.version if model else "rules",
                           "all": score(results)}
    for split in ("train", "validation", "test"):
        out[split] = score([r for r in results if r[0] == split])
    by_rules = [(s, g, label, h, a)
                for (s, g, _, h, a), label in zip(results, rules, strict=True)]
    out["rules"] = {"all": score(by_rules)}
    for split in ("train", "validation", "test"):
        out["rules"][split] = score([r for r in by_rules if r[0] == split])
    out["annotators_agree"] = score([r for r in results if r[4]])
    majority = Counter(r[1] for r in results).most_common(1)[0][0]
    out["majority_class"] = {"label": majority, **{k: v for k, v in score(
        [(s, g, majority, h, a) for s, g, _, h, a in results]).items()
        if k in ("accuracy", "macro_f1")}}
    out["labels"] = dict(Counter(r[1] for r in results))
    return out


def _report(tag: dict[str, Any], direction: dict[str, Any]) -> str:
    lines = [f"P/I/O tagging: EBM-NLP expert test set, {tag['n_docs']} abstracts, "
             f"{tag['n_tokens']:,} tokens (test.txt single label); model {tag['model']}",
             "| label | ours P | ours R | ours F1 | LSTM-CRF P | R | F1 (Nye et al. 2018) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for label, name in NAMES.items():
        ours = tag[label]
        base = EBM_BASELINE[label]
        lines.append(f"| {name} | {ours['precision']:.3f} | {ours['recall']:.3f} | "
                     f"{ours['f1']:.3f} | {base[0]:.2f} | {base[1]:.2f} | {base[2]:.2f} |")
    base_mean = np.mean([b[2] for b in EBM_BASELINE.values()])
    lines.append(f"| mean F1 | | | {tag['mean_f1']:.3f} | | | {base_mean:.3f} |")
    lines += ["", "Effect direction: Evidence Inference 2.0, prompts answerable from the "
              f"abstract (gold = majority label); model {direction['model']}",
              "| prompts | n | accuracy | macro-F1 | evidence sentence found |",
              "| --- | ---: | ---: | ---: | ---: |"]
    for key, name in (("all", "all splits (train included)"),
                      ("train", "train (model fitted, rules written on it)"),
                      ("validation", "validation (model chosen, rules checked on it)"),
                      ("test", "test (chose nothing)"),
                      ("annotators_agree", "all splits, annotators agree")):
        r = direction[key]
        lines.append(f"| {name} | {r['n']} | {r['accuracy']:.3f} | {r['macro_f1']:.3f} | "
                     f"{r['evidence_sentence_hit']:.3f} |")
    for key in ("train", "validation", "test"):
        r = direction["rules"][key]
        lines.append(f"| {key}, rules alone | {r['n']} | {r['accuracy']:.3f} | "
                     f"{r['macro_f1']:.3f} | {r['evidence_sentence_hit']:.3f} |")
    m = direction["majority_class"]
    lines.append(f"| majority class ({m['label']}) | {direction['all']['n']} | "
                 f"{m['accuracy']:.3f} | {m['macro_f1']:.3f} | |")
    lines += ["", "Published (v2.0 test split, full texts, end to end; not the abstract-only "
              "subset, so not directly comparable):"]
    for name, (p, r, f1) in EI_BASELINES.items():
        lines.append(f"- {name}: macro P {p:.3f} / R {r:.3f} / F1 {f1:.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run both evaluations, print the tables (and write JSON when asked)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared",
                        help="the shared folder holding datasets/")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args(argv)
    needed = [args.shared / EBM / "test.txt", args.shared / EI / "ei_v2_abstracts.csv",
              args.shared / EI / "ei_v2_prompts_annotations.csv"]
    missing = [p for p in needed if not p.is_file()]
    if missing:
        print(f"Error: {missing[0]}: not found. Pass --shared with the folder that holds "
              f"{EBM} and {EI}.", file=sys.stderr)
        return 2
    t0 = time.time()
    tag = evaluate_tagger(args.shared)
    direction = evaluate_direction(args.shared)
    print(_report(tag, direction))
    print(f"\n({time.time() - t0:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps({"tagger": tag, "direction": direction}, indent=2),
                             encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
