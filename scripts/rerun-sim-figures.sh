#!/usr/bin/env bash
# Re-runs every shipped simulator scenario behind docs/BENCHMARKS.md on the current
# code and prints one line per scenario: wall time, peak RSS, events, continuity,
# startup p50/p95 (and to the first keyframe, blocks plane), relays max/bound/steady
# ratio (relay scenarios), and for peer scenarios admitted continuity, top-level
# misses after the fault, ejected, not carried at the end against its exact bound.
# Usage: scripts/rerun-sim-figures.sh [scenario-name ...]   (default: all but the
# two 1M scenarios; name them to include them: flash-crowd-1m peers-1m). The binary is
# $CARGO_TARGET_DIR/release/tiercast (target/ by default).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p tiercast
bin=${CARGO_TARGET_DIR:-target}/release/tiercast
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  names=(flash-crowd-100k churn-100k relay-crash relay-crash-all-tiers burst-prediction-off
         burst-prediction-on fig2-expand fig4-consolidate peers-static-10k peers-churn-10k
         peers-infeasible top-mesh-failures middle-erasure)
fi
out=${OUT:-/tmp/rerun-sim}
mkdir -p "$out"
for n in "${names[@]}"; do
  sc=scenarios/$n.toml
  [ -f "$sc" ] || { echo "no scenario $sc" >&2; exit 2; }
  /usr/bin/time -v "$bin" sim "$sc" --out "$out/$n" --quiet \
    2> "$out/$n.time" > "$out/$n.log" || { echo "$n: FAILED (see $out/$n.time)"; continue; }
  python3 - "$out/$n/metrics.json" "$out/$n.time" "$n" <<'PY'
import json, re, sys
m = json.load(open(sys.argv[1]))
t = open(sys.argv[2]).read()
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)) / 1e6
def f(x, d=4):
    return "-" if x is None else (f"{x:.{d}f}" if isinstance(x, float) else str(x))
line = (f'{sys.argv[3]:<22} wall {m["wall_seconds"]:7.1f} s  rss {rss:5.2f} GB  '
        f'events {m["events"]:>10}  continuity {f(m["continuity_index"], 5)}  '
        f'startup {f(m["startup_delay_ms_p50"])}/{f(m["startup_delay_ms_p95"])} ms  '
        + (f'playable {f(m.get("startup_playable_ms_p50"))}/{f(m.get("startup_playable_ms_p95"))} ms  '
           if m.get("startup_playable_ms_p50") is not None else '') +
        f'lag p95 {f(m["lag_ms_p95"])} ms')
if m.get("active_relays_max"):
    line += (f'  relays {m["active_relays_max"]}/{m["relays_lower_bound"]}/'
             f'{f(m["relays_steady_ratio"], 3)} (regional {f(m.get("relays_steady_ratio_regional"), 3)})')
p = m.get("peers")
if p:
    line += (f'  admitted {f(p["continuity_index_admitted"], 5)}  ejected {p["ejected"]}'
             f'  top missed after fault {f(p.get("top_level_blocks_missed_after_fault"))}'
             f' of {f(p.get("top_level_blocks_expected_after_fault"))}'
             f'  full recomputations {p["full_recomputations"]}'
             f'  not carried {p.get("not_carried_at_end", "-")}/{p.get("not_carried_lower_bound", "-")}')
if m.get("orphans"):
    line += f'  orphans {m["orphans"]} rehome max {m["orphan_rehome_ms_max"]} ms'
line += f'  efficiency {f(m.get("efficiency"))}  invariants {m["invariant_violation_count"]}'
print(line)
PY
done
