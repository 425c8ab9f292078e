#!/usr/bin/env bash
# Render a Palisade report in headless Chromium and save a PNG screenshot, to
# look at the report as a person would.
#
#   scripts/screenshot-report.sh [REPORT.html] [OUT.png] [WIDTH] [HEIGHT]
#
# Defaults: out/quickstart/report.html → out/quickstart/report.png, 1400×4000.
# Needs Debian's `chromium` (apt-get install -y chromium). Networking features
# are off: the report is self-contained and must render without the network.
set -euo pipefail

report=${1:-out/quickstart/report.html}
out=${2:-${report%.html}.png}
width=${3:-1400}
height=${4:-4000}

if [[ ! -f "$report" ]]; then
  echo "no report at $report (run: cargo run --release -- run examples/quickstart/pipeline.toml)" >&2
  exit 1
fi
browser=""
for b in chromium chromium-browser google-chrome; do
  if command -v "$b" >/dev/null 2>&1; then browser=$b; break; fi
done
if [[ -z "$browser" ]]; then
  echo "chromium not found; install it with: apt-get install -y chromium" >&2
  exit 1
fi

profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
abs_report=$(cd "$(dirname "$report")" && pwd)/$(basename "$report")
abs_out=$(mkdir -p "$(dirname "$out")" && cd "$(dirname "$out")" && pwd)/$(basename "$out")

"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --disable-dev-shm-usage --hide-scrollbars \
  --user-data-dir="$profile" --window-size="$width,$height" \
  --screenshot="$abs_out" "file://$abs_report" >/dev/null 2>&1

if [[ ! -s "$abs_out" ]]; then
  echo "chromium wrote no screenshot" >&2
  exit 1
fi
echo "screenshot: $out"
