#!/usr/bin/env bash
# The caps between regions (issue 11, C3, C6): runs scenarios/policies/region-cap and
# region-cap-premium over seeds (default 31..35) and prints one markdown row per run:
# admitted continuity, every viewer's, ejected, ejected again / most in a minute, not
# carried at the end, held seconds over the cap, the worst held second over the cap,
# the mean held second over the cap, premium continuity.
# Usage: scripts/cap-runs.sh [first-seed] [count]   (binary: $CARGO_TARGET_DIR or target/)
set -euo pipefail
cd "$(dirname "$0")/.."
first=${1:-31}
count=${2:-5}
[[ $first =~ ^[0-9]+$ && $count =~ ^[0-9]+$ && $count -ge 1 ]] || { echo "usage: $0 [first-seed] [count]" >&2; exit 2; }
cargo build --release -q -p tiercast
bin=${CARGO_TARGET_DIR:-target}/release/tiercast
out=${OUT:-/tmp/cap-runs}
mkdir -p "$out"
echo "| run | seed | admitted | every viewer | ejected | ejected again / most in a minute | not carried at the end | held seconds over the cap | worst held second / cap | mean held second / cap | premium continuity |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for sc in region-cap region-cap-premium; do
  for ((s = first; s < first + count; s++)); do
    "$bin" sim "scenarios/policies/$sc.toml" --seed "$s" --out "$out/$sc-$s" --quiet > /dev/null
    python3 - "$out/$sc-$s/metrics.json" "$sc" "$s" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
p = m["peers"]
pair = (m.get("policies") or {}).get("pairs") or [{}]
pr = pair[0]
f = lambda x, d=4: "–" if x is None else (f"{x:.{d}f}" if isinstance(x, float) else str(x))
print(f'| {sys.argv[2]} | {sys.argv[3]} | {f(p["continuity_index_admitted"])} | {f(m["continuity_index"])} | '
      f'{p["ejected"]} | {p["ejected_again"]} / {p["ejected_in_a_minute_max"]} | '
      f'{p["not_carried_at_end"]} | {pr.get("seconds_over_cap", "–")} | {f(pr.get("max_ratio_to_cap"), 3)} | '
      f'{f(pr.get("mean_ratio_to_cap"), 3)} | {f(p.get("continuity_premium"))} |')
PY
  done
done
