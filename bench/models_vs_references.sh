#!/usr/bin/env bash
# Palisade's models beside the Python references, in one run on one machine:
#   1. Isolation Forest / PCA speed on 1M × 20 (Palisade, then scikit-learn/PyOD),
#      and the scoring-throughput ratio;
#   2. outlier quality on the IF paper's benchmarks (odds http, smtp, shuttle; 5 seeds);
#   3. supervised quality and fit time on identical rows (NSL-KDD, PhishCrawl URLs with
#      our Franc features, Stratosphere Zeek flows) beside LightGBM, XGBoost, sklearn RF.
#
#   bench/models_vs_references.sh [speed|outliers|supervised ...]   (default: all three)
#
# Needs the reference venv of ../shared/bench (created by ../shared/bench/run_all.sh, or
# set BENCH_VENV). Takes ~10 minutes on 2 cores. Results also go to $BENCH_RESULTS (./bench-results).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/palisade-target}"
venv=${BENCH_VENV:-$HOME/.cache/palisade-bench/venv}
refs=../shared/bench
out=${BENCH_RESULTS:-bench-results}
mkdir -p "$out"
[ -x "$venv/bin/python" ] || { echo "no reference venv at $venv: run bash $refs/run_all.sh once (or set BENCH_VENV)"; exit 1; }
py="$venv/bin/python"
parts=("$@"); [ ${#parts[@]} -gt 0 ] || parts=(speed outliers supervised)

cargo build --release -q -p palisade-models --examples
ex="$CARGO_TARGET_DIR/release/examples"

for part in "${parts[@]}"; do
  case "$part" in
  speed)
    echo "== Isolation Forest / PCA speed, 1M × 20, one thread each =="
    ours=$(RAYON_NUM_THREADS=1 "$ex/iforest_speed" | tee "$out/palisade-speed.txt")
    echo "$ours"
    theirs=$("$py" "$refs/ref_speed.py" --sizes 1000000 --skip-supervised --repeats 1 2>&1 | tee "$out/reference-speed.txt")
    echo "$theirs"
    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 "$py" bench/pyod_pca_speed.py | tee -a "$out/reference-speed.txt"
    ours_rps=$(echo "$ours" | grep '^iforest [0-9]' | sed -n 's/.*= \([0-9]*\) rows\/s.*/\1/p' | head -1)
    ref_rps=$(echo "$theirs" | grep 'n_jobs=1' | sed -n 's/.*score=[0-9.]*s (\([0-9,]*\) rows\/s).*/\1/p' | tr -d , | head -1)
    if [ -n "$ours_rps" ] && [ -n "$ref_rps" ]; then
      awk -v a="$ours_rps" -v b="$ref_rps" 'BEGIN { printf "iforest scoring: palisade %d rows/s, scikit-learn %d rows/s, ratio %.2fx\n", a, b, a / b }'
    fi
    ;;
  outliers)
    echo "== Outlier quality (ROC-AUC / AP, mean of 5 seeds) =="
    "$ex/odds_quality" --only http,smtp,shuttle --seeds 5 | tee "$out/palisade-outliers.txt"
    "$py" "$refs/ref_outliers.py" --only http,smtp,shuttle --methods iforest,pca,autoencoder 2>&1 | tee "$out/reference-outliers.txt"
    ;;
  supervised)
    echo "== Supervised quality and fit time on identical rows (1 thread each) =="
    dump=$(mktemp -d)
    "$ex/supervised_bench" --threads 1 --dump "$dump" | tee "$out/palisade-supervised.txt"
    "$py" crates/models/benches/ref_same_split.py "$dump" --threads 1 2>&1 | tee "$out/reference-supervised.txt"
    rm -rf "$dump"
    ;;
  *) echo "unknown part: $part (speed, outliers, supervised)"; exit 2 ;;
  esac
done
