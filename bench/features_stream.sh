#!/usr/bin/env bash
# `palisade features` writing a long log's table a chunk at a time (the
# default: 65,536 rows; events read 4,096 at a time) beside the same binary
# writing it in one chunk (PALISADE_FEATURES_CHUNK larger than the input;
# before the fifteenth session this also held the whole input's events), on a
# log made long by repeating a real one. Prints wall time, user time and
# peak RSS of each, their ratios, and checks that the two tables are the
# same (the one-chunk request table drops its empty label column; the
# chunked one keeps it, so that column is left out of the check). With
# OLD_BIN set to another build of `palisade`, that build runs too (default
# chunking), alternated with this one, and must give the same tables.
#
#   bench/features_stream.sh [COPIES]      (default 10)
#   OLD_BIN=/tmp/palisade.old bench/features_stream.sh 10
#
# The inputs: ../shared/data/zeek-wrccdc-2018/json/ssl.json.gz (49,474
# lines) for the request set, and tsv/dns.log (53,624 lines) for the domain
# set and the flow set, each repeated COPIES times. Repetition makes the
# input long, not realistic: this measures memory and time, not detections.
set -euo pipefail
cd "$(dirname "$0")/.."
copies=${1:-10}
data="$PWD/../shared/data/zeek-wrccdc-2018"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/palisade-target}"
cargo build --release -q -p palisade-cli
bin="$CARGO_TARGET_DIR/release/palisade"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for _ in $(seq "$copies"); do zcat "$data/json/ssl.json.gz"; done >"$work/ssl.json"
for _ in $(seq "$copies"); do cat "$data/tsv/dns.log"; done >"$work/dns.log"
echo "inputs: ssl.json $(wc -l <"$work/ssl.json") lines, dns.log $(wc -l <"$work/dns.log") lines"

# run NAME CHUNK ARGS...: prints "wall user rss_kb" (BIN: the binary, if not ours)
run() {
    local name=$1 chunk=$2
    shift 2
    local t="$work/$name.time" b="${BIN:-$bin}"
    if [ "$chunk" = default ]; then
        /usr/bin/time -f "%e %U %M" -o "$t" "$b" "$@" 2>/dev/null
    else
        PALISADE_FEATURES_CHUNK=$chunk /usr/bin/time -f "%e %U %M" -o "$t" "$b" "$@" 2>/dev/null
    fi
    cat "$t"
}

one_chunk=$((1 << 30))
for case in "request ssl.json" "domain dns.log --format zeek-tsv" "entity dns.log --format zeek-tsv --set flow"; do
    set -- $case
    set_name=$1 input=$2
    shift 2
    whole=$(run "$set_name-whole" "$one_chunk" features "$set_name" --in "$work/$input" --out "$work/$set_name-whole.csv" "$@")
    chunked=$(run "$set_name-chunked" default features "$set_name" --in "$work/$input" --out "$work/$set_name-chunked.csv" "$@")
    if [ -n "${OLD_BIN:-}" ]; then
        old=$(BIN=$OLD_BIN run "$set_name-old" default features "$set_name" --in "$work/$input" --out "$work/$set_name-old.csv" "$@")
        new=$(run "$set_name-chunked" default features "$set_name" --in "$work/$input" --out "$work/$set_name-chunked.csv" "$@")
        python3 - "$set_name" "$old" "$chunked" "$new" <<'PY'
import sys
name, old, a, b = sys.argv[1:]
o = [float(x) for x in old.split()]
n = [[float(x) for x in v.split()] for v in (a, b)]
print(f"{name:8} OLD_BIN: {o[0]:6.2f} s wall, {o[1]:6.2f} s user, {o[2]/1024:7.0f} MB peak | "
      f"this build (twice, around it): {n[0][0]:.2f}, {n[1][0]:.2f} s wall, {n[0][1]:.2f}, {n[1][1]:.2f} s user, "
      f"{n[0][2]/1024:.0f}, {n[1][2]/1024:.0f} MB | memory {o[2]/max(n[0][2], n[1][2]):4.1f}x less")
PY
        cmp -s "$work/$set_name-old.csv" "$work/$set_name-chunked.csv" || { echo "$set_name: TABLES DIFFER from OLD_BIN's"; exit 1; }
    fi
    python3 - "$set_name" "$whole" "$chunked" "$work/$set_name-whole.csv" "$work/$set_name-chunked.csv" <<'PY'
import csv, sys
name, whole, chunked, fw, fc = sys.argv[1:]
w = [float(x) for x in whole.split()]
c = [float(x) for x in chunked.split()]
def rows(p):
    with open(p, newline="") as f:
        r = list(csv.reader(f))
    return r
rw, rc = rows(fw), rows(fc)
if "labels.source_label" in rc[0] and "labels.source_label" not in rw[0]:
    j = rc[0].index("labels.source_label")
    assert all(r[j] == "" for r in rc[1:]), "labels made up"
    rc = [r[:j] + r[j + 1:] for r in rc]
same = "same table" if rw == rc else "TABLES DIFFER"
print(f"{name:8} one chunk: {w[0]:6.2f} s wall, {w[1]:6.2f} s user, {w[2]/1024:7.0f} MB peak | "
      f"chunked: {c[0]:6.2f} s, {c[1]:6.2f} s, {c[2]/1024:6.0f} MB | "
      f"memory {w[2]/c[2]:4.1f}x less, wall {w[0]/c[0]:4.2f}x faster | {len(rw)-1} rows, {same}")
if rw != rc:
    sys.exit(1)
PY
done
