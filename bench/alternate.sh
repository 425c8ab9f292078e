#!/usr/bin/env bash
# One palisade-features example at another revision and at the working tree,
# run in turn ROUNDS times: each run's best time (the minimum its example
# prints over 5 passes), both sides sorted, and the median of the paired
# new/old ratios. Why pairs: the VMs these benches run on change speed from
# minute to minute (the same binary ~1.4x apart between runs), and a run of
# one build right after the other's shares that phase; the median of their
# ratios resolves a 3-5% change where the two builds' own figures overlap.
#
#   bench/alternate.sh REV EXAMPLE MODE [ROUNDS]
#   bench/alternate.sh 276b414 url_rows rows 12
#   bench/alternate.sh 276b414 entity_phases host 8
#
# EXAMPLE is url_rows (MODE url, request or rows) or entity_phases (MODE
# host, flow, count, sliding, real:host, real:flow). Builds the example at
# REV in a temporary git worktree with its own target folder, then at the
# working tree; ratios under 1 mean the working tree is faster.
set -euo pipefail
cd "$(dirname "$0")/.."
rev=$1
example=$2
mode=$3
rounds=${4:-12}
root=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/palisade-target}"
old_target="$HOME/.cache/palisade-alternate-target"
# beside the checkout, so that the examples' compiled-in ../shared/data paths
# find the same data from both
wt=$(mktemp -d "$root/../.palisade-alternate.XXXXXX")
trap 'git -C "$root" worktree remove --force "$wt" >/dev/null 2>&1 || true; rm -rf "$wt"' EXIT
git worktree add -q --detach "$wt" "$rev"
(cd "$wt" && CARGO_TARGET_DIR="$old_target" cargo build --release -q -p palisade-features --example "$example")
cargo build --release -q -p palisade-features --example "$example"
old="$old_target/release/examples/$example"
new="$CARGO_TARGET_DIR/release/examples/$example"
# the best time a run prints: "min X ns/URL" (url_rows) or "X ms in all" (entity_phases)
best() {
  "$@" 2>&1 | grep -o 'min [0-9.]*\|[0-9.]* ms in all' | sed 's/[^0-9.]//g' | sort -n | head -1
}
pairs=$(mktemp)
for _ in $(seq "$rounds"); do
  echo "$(best "$old" "$mode" 5) $(best "$new" "$mode" 5)" >>"$pairs"
done
echo "$rev:  $(cut -d' ' -f1 "$pairs" | sort -n | tr '\n' ' ')"
echo "work: $(cut -d' ' -f2 "$pairs" | sort -n | tr '\n' ' ')"
echo "paired work/$rev, median of $rounds: $(awk '{print $2 / $1}' "$pairs" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')"
rm -f "$pairs"
