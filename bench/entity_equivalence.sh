#!/usr/bin/env bash
# The entity engine at another revision beside the working tree, on the real
# logs in ../shared/data (Zeek wrccdc-2018 and Stratosphere conn logs, the
# EVTX attack samples and OTRF datasets as JSON): both must write the same
# tables, to the last bit, for the built-in host and flow sets and for
# bench/entity/custom.toml and panes.toml, tumbling and sliding. Use it when
# changing how the engine computes, not what.
#
#   bench/entity_equivalence.sh [REV]        (default REV: HEAD)
#
# Builds the example `entity_dump` at REV in a temporary git worktree (its
# own target folder, so the two builds do not share artefact names), then
# at the working tree. Takes ~6 minutes on 2 cores the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
rev=${1:-HEAD}
root=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/palisade-target}"
old_target="$HOME/.cache/palisade-equivalence-target"
wt=$(mktemp -d)
trap 'git -C "$root" worktree remove --force "$wt" >/dev/null 2>&1 || true' EXIT
git worktree add -q --detach "$wt" "$rev"
# revisions older than the example get today's copy (it uses only public API)
cp crates/features/examples/entity_dump.rs "$wt/crates/features/examples/"
(cd "$wt" && CARGO_TARGET_DIR="$old_target" cargo build --release -q -p palisade-features --example entity_dump)
cargo build --release -q -p palisade-features --example entity_dump
OLD="$old_target/release/examples/entity_dump" NEW="$CARGO_TARGET_DIR/release/examples/entity_dump" \
DATA="$root/../shared/data" CUSTOM="$root/bench/entity/custom.toml" python3 - <<'PY'
import glob, os, subprocess, sys
d = os.environ["DATA"]
inputs = ["zeek:" + f for f in sorted(glob.glob(d + "/zeek-wrccdc-2018/tsv/*.log"))]
inputs += ["zeek:" + f for f in sorted(glob.glob(d + "/zeek-stratosphere-labeled/*/data/conn.log*"))]
inputs += ["windows-json:" + f for f in sorted(glob.glob(d + "/windows-evtx-attack-samples/jsonl/**/*.jsonl", recursive=True))]
inputs += ["windows-json:" + f for f in sorted(glob.glob(d + "/windows-otrf-security-datasets/**/*.jsonl", recursive=True))]
custom = os.environ["CUSTOM"]
panes = os.path.join(os.path.dirname(custom), "panes.toml")
cases = [["host"], ["flow"], ["host", "slide=6h"], ["flow", "slide=15m"],
         [custom], [custom, "slide=30m"], ["host", "window=1h", "slide=20m"],
         # sliding, these are built from panes (since the sixteenth session)
         [panes], [panes, "slide=15m"], [panes, "window=1d", "slide=1h"],
         [panes, "window=1h", "slide=20m"], [panes, "window=1h", "slide=25m"]]
bad = 0
for case in cases:
    out = {}
    for name in ("OLD", "NEW"):
        r = subprocess.run([os.environ[name]] + case + inputs, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"{name} failed on {case}: {r.stderr[-2000:]}")
        out[name] = r.stdout
    same = out["OLD"] == out["NEW"]
    bad += not same
    head = out["NEW"].split("\n", 1)[0]
    print(f"{' '.join(os.path.basename(c) for c in case):28} {'identical' if same else 'DIFFERENT'}  {head}")
    if not same:
        for a, b in zip(out["OLD"].split("\n"), out["NEW"].split("\n")):
            if a != b:
                print("  old:", a[:400]); print("  new:", b[:400]); break
sys.exit(1 if bad else 0)
PY
