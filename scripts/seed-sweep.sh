#!/usr/bin/env bash
# Runs one scenario over a range of seeds and prints, per seed, the continuity and
# (peer scenarios with a fault) the top level's blocks missed after the fault, then
# the mean, the worst and how many seeds lost no top-level block. One seed is one
# trajectory of a chaotic system: claims about the overlay should hold over many.
# Usage: scripts/seed-sweep.sh scenarios/top-mesh-failures.toml [first_seed] [count]
# TIERCAST_BIN=path runs that binary instead of building target/release/tiercast
# (to compare two builds side by side).
set -euo pipefail
cd "$(dirname "$0")/.."
scenario=${1:?usage: scripts/seed-sweep.sh SCENARIO.toml [first_seed] [count]}
first=${2:-31}
count=${3:-12}
bin=${TIERCAST_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release -q -p tiercast
  bin=target/release/tiercast
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for seed in $(seq "$first" $((first + count - 1))); do
  sed -e "s/^seed = .*/seed = $seed/" "$scenario" > "$tmp/s.toml"
  "$bin" sim "$tmp/s.toml" --out "$tmp/out" >/dev/null 2>&1
  python3 - "$tmp/out/metrics.json" "$seed" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
p = m.get("peers") or {}
missed = p.get("top_level_blocks_missed_after_fault")
expected = p.get("top_level_blocks_expected_after_fault")
print(f'seed {sys.argv[2]:>4}  continuity {m["continuity_index"]:.4f}  '
      f'top members {p.get("top_level_members", "-")}  '
      f'top missed after fault {missed if missed is not None else "-"} of {expected if expected is not None else "-"}  '
      f'lag_p95 {m.get("lag_ms_p95", "-")}')
PY
done | tee "$tmp/lines"
awk '{c=$4; t+=c; n++; if (min=="" || c<min) min=c; if ($12=="0") z++}
     END {printf "mean continuity %.4f, worst %.4f, seeds with no top-level block missed after the fault: %d of %d\n", t/n, min, z, n}' "$tmp/lines"
