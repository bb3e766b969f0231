"""The shipped RCT text model on the benchmark's test split (it was trained on dev only).

Reads ../shared/benchmarks/rct_design.csv.gz, scores `title + abstract` of the test rows with
`reviewpipe.design_model.load_default_model()` and reports ROC AUC, recall and precision at the
model's declared threshold, overall and per origin. Goal (issue): recall >= 0.99 at precision
>= 0.90; reference points: Cochrane filter's free-text terms 0.952 @ 0.710, TF-IDF + LR
0.992 @ 0.781.

Usage: python scripts/eval_design.py [--shared ../shared]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=PROJECT.parent / "shared")
    args = parser.parse_args(argv)
    path = args.shared / "benchmarks" / "rct_design.csv.gz"
    if not path.exists():
        print(f"eval_design: {path} is absent; nothing to evaluate (needs ../shared).")
        return 2
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    from reviewpipe.design_model import load_default_model, record_text

    data = pd.read_csv(path)
    test = data[data["split"] == "test"].reset_index(drop=True)
    model = load_default_model()
    scores = model.predict_proba([record_text(t, a) for t, a in zip(
        test["title"].fillna(""), test["abstract"].fillna(""), strict=True)])
    test = test.assign(score=scores, predicted=scores >= model.threshold)
    print(f"model {model.version}, threshold {model.threshold:g}, test n = {len(test)}")
    print(f"{'origin':24s} {'n':>5s} {'RCT':>5s} {'AUC':>7s} {'recall':>7s} {'precision':>9s}")
    results = {}
    for origin, part in [("overall", test), *test.groupby("origin")]:
        positives = int(part["label"].sum())
        tp = int((part["predicted"] & (part["label"] == 1)).sum())
        fp = int((part["predicted"] & (part["label"] == 0)).sum())
        recall = tp / positives if positives else float("nan")
        precision = tp / (tp + fp) if tp + fp else float("nan")
        auc = (roc_auc_score(part["label"], part["score"])
               if part["label"].nunique() == 2 else float("nan"))
        results[origin] = (recall, precision)
        print(f"{origin:24s} {len(part):5d} {positives:5d} {auc:7.4f} {recall:7.4f} "
              f"{precision:9.4f}")
    recall, precision = results["overall"]
    met = recall >= 0.99 and precision >= 0.90
    print(f"goal recall >= 0.99 at precision >= 0.90: {'met' if met else 'NOT met'} "
          f"(recall {recall:.3f}, precision {precision:.3f}; TF-IDF+LR reference 0.992 @ 0.781)")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
