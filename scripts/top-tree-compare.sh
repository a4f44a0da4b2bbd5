#!/usr/bin/env bash
# The top level's algorithm (D6): scenarios/top-mesh-failures.toml over several seeds,
# flooding always (top_tree_after_ms = 0, the default) against a plain tree once the
# top level has been calm for 10 s (lazy links dropped; back to flooding at a change).
# Two top-level peers crash at 40 s. Prints one line per run and a mean per variant.
# Usage: scripts/top-tree-compare.sh [first_seed] [count]  (builds the release binary)
set -euo pipefail
cd "$(dirname "$0")/.."
first=${1:-31}
count=${2:-12}
cargo build --release -q -p tiercast
bin=target/release/tiercast
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '%-6s %5s %10s %16s %8s %9s %7s %8s\n' variant seed continuity 'top missed/exp' 'top dup' 'ctl ovh' pulled switches
for after in 0 10000; do
  for seed in $(seq "$first" $((first + count - 1))); do
    sed -e "s/^seed = .*/seed = $seed/" -e "s/^\[peers\]$/[peers]\ntop_tree_after_ms = $after/" \
        scenarios/top-mesh-failures.toml > "$tmp/s.toml"
    "$bin" sim "$tmp/s.toml" --out "$tmp/out" >/dev/null 2>&1
    python3 - "$tmp/out/metrics.json" "$after" "$seed" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
p = m["peers"]
variant = "flood" if sys.argv[2] == "0" else "tree"
print(f'{variant:<6} {sys.argv[3]:>5} {m["continuity_index"]:10.4f} '
      f'{p["top_level_blocks_missed_after_fault"]:>7}/{p["top_level_blocks_expected_after_fault"]:<8} '
      f'{p["top_level_duplicate_factor"]:8.3f} {m["control_overhead"]:9.5f} {p["blocks_pulled"]:7} {p["top_tree_switches"]:8}')
PY
  done
done | tee "$tmp/lines"
awk '{n[$1]++; c[$1]+=$3; split($4, a, "/"); miss[$1]+=a[1]; tot[$1]+=a[2]; if (a[1]==0) z[$1]++; d[$1]+=$5; o[$1]+=$6}
     END {for (v in n) printf "%s: mean continuity %.4f, top blocks missed after the crash %d of %d (%d of %d seeds none), top dup %.3f, control overhead %.5f\n",
                                v, c[v]/n[v], miss[v], tot[v], z[v], n[v], d[v]/n[v], o[v]/n[v]}' "$tmp/lines"
