#!/usr/bin/env bash
# The middle level with and without the erasure code (D5): runs scenarios/middle-erasure.toml
# for three seeds with [peers] middle_per_region = 0 (no middle level), max_redundancy = 0
# (coded links, no recovery shards) and the default cap of 4, and prints one line per run.
# Usage: scripts/middle-erasure-compare.sh  (builds the release binary first)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p tiercast
bin=target/release/tiercast
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '%-22s %5s %10s  %s\n' variant seed continuity 'per region: n, measured loss, groups rebuilt, middle on time'
for variant in "middle_per_region = 0" "max_redundancy = 0" "max_redundancy = 4"; do
  for seed in 21 22 23; do
    sed -e "s/^seed = 21/seed = $seed/" \
        -e "s/^middle_per_region = 16/middle_per_region = 16\n$variant/" \
        scenarios/middle-erasure.toml | sed -e '/^middle_per_region = 16$/{N;s/middle_per_region = 16\nmiddle_per_region = 0/middle_per_region = 0/}' > "$tmp/s.toml"
    "$bin" sim "$tmp/s.toml" --out "$tmp/out" >/dev/null 2>&1
    python3 - "$tmp/out/metrics.json" "$variant" "$seed" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
regions = []
for r in m["peers"]["regions"]:
    exp = r["middle_blocks_expected"]
    on_time = 1 - r["middle_blocks_missed"] / exp if exp else float("nan")
    loss = r["measured_loss"]
    regions.append(f'{r["region"]}: n={r["redundancy_n"]} loss={"-" if loss is None else f"{loss:.3f}"} '
                   f'rebuilt={r["groups_rebuilt"]} middle={on_time:.4f}')
print(f'{sys.argv[2]:<22} {sys.argv[3]:>5} {m["continuity_index"]:10.4f}  ' + '; '.join(regions))
PY
  done
done
