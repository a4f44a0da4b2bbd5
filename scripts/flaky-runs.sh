#!/usr/bin/env bash
# Flaky peers (issue 11 item 5, C4/D1): runs scenarios/peers-flaky.toml (history_rank
# off) and peers-flaky-rank.toml (on) over seeds (default 31..42) and prints one
# markdown row per seed, off / on: continuity, admitted peers' continuity, the
# coordinator's re-assignments (parent changes), lag p95, the children the flaky
# peers had when they crashed (summed), their crashes while on the top level, and
# their children per second alive.
# Usage: scripts/flaky-runs.sh [first-seed] [count]   (binary: $CARGO_TARGET_DIR or
# target/; JOBS=2 runs two at once; OUT: where the runs go, default /tmp/flaky-runs)
set -euo pipefail
cd "$(dirname "$0")/.."
first=${1:-31}
count=${2:-12}
jobs=${JOBS:-1}
[[ $first =~ ^[0-9]+$ && $count =~ ^[0-9]+$ && $count -ge 1 && $jobs =~ ^[0-9]+$ ]] || { echo "usage: $0 [first-seed] [count]" >&2; exit 2; }
cargo build --release -q -p tiercast
bin=${CARGO_TARGET_DIR:-target}/release/tiercast
out=${OUT:-/tmp/flaky-runs}
mkdir -p "$out"
for ((s = first; s < first + count; s++)); do
  for sc in peers-flaky peers-flaky-rank; do echo "$sc $s"; done
done | xargs -P "$jobs" -n 2 sh -c '"$0" sim "scenarios/$1.toml" --seed "$2" --out "'"$out"'/$1-$2" --quiet > /dev/null' "$bin"
python3 - "$out" "$first" "$count" <<'PY'
import json, sys
out, first, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
print("| seed | continuity off / on | admitted off / on | re-assignments off / on | lag p95 ms off / on "
      "| children at crashes off / on | crashes on top off / on | children per second off / on |")
print("|---|---|---|---|---|---|---|---|")
for s in range(first, first + count):
    m = [json.load(open(f"{out}/{sc}-{s}/metrics.json")) for sc in ("peers-flaky", "peers-flaky-rank")]
    assert all(x["invariant_violation_count"] == 0 for x in m), f"seed {s}: invariant violated"
    row = [str(s)]
    for f in (lambda x: f"{x['continuity_index']:.4f}",
              lambda x: f"{x['peers']['continuity_index_admitted']:.4f}",
              lambda x: str(x["peers"]["reassignments"]),
              lambda x: str(x["lag_ms_p95"]),
              lambda x: str(x["flaky"]["children_at_crash"]),
              lambda x: str(x["flaky"]["top_at_crash"]),
              lambda x: f"{x['flaky']['children_per_second']:.1f}"):
        row.append(" / ".join(f(x) for x in m))
    print("| " + " | ".join(row) + " |")
PY
