#!/usr/bin/env python3
"""LightGBM, XGBoost and scikit-learn RandomForest on exactly the rows and
features Palisade's supervised benchmark uses.

    cargo run --release -p palisade-models --example supervised_bench -- --threads 1 --dump /tmp/supdump
    ~/.cache/palisade-bench/venv/bin/python crates/models/benches/ref_same_split.py /tmp/supdump --threads 1

The dump holds `<dataset>_{train,test}.csv` (features after Palisade's category
coding, which the references take as plain numbers, label last; empty = NaN).
Models and metrics come from ../shared/bench/ref_supervised.py (same
estimator settings: 100 trees each, fixed seeds), so the figures are those
the shared reference script would print on these splits.
"""

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[4] / "shared" / "bench"))
import ref_supervised as R  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dump")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--models", default="lightgbm,xgboost,random_forest")
    ap.add_argument("--datasets", default="nsl-kdd,zeek,url")
    args = ap.parse_args()
    import pandas as pd

    print("| dataset | model | train rows | test rows | ROC-AUC | PR-AUC | TPR@1% | train s | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for ds in args.datasets.split(","):
        tr = pd.read_csv(Path(args.dump) / f"{ds}_train.csv")
        te = pd.read_csv(Path(args.dump) / f"{ds}_test.csv")
        Xtr, ytr = tr.drop(columns=["label"]).to_numpy("float32"), tr["label"].to_numpy("int8")
        Xte, yte = te.drop(columns=["label"]).to_numpy("float32"), te["label"].to_numpy("int8")
        rows = R.run_models(Xtr, ytr, {"test": (Xte, yte)}, args.models.split(","), args.threads)
        for r in rows:
            m = r["tests"]["test"]
            print(f"| {ds} | {r['model']} | {len(ytr)} | {len(yte)} | {m['roc_auc']:.4f} | {m['pr_auc']:.4f} | "
                  f"{m['tpr_at_fpr_1pct']:.3f} | {r['train_s']:.2f} | {r['peak_rss_mb']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
