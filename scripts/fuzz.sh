#!/usr/bin/env bash
# Builds every cargo-fuzz target in fuzz/ (X3, issue 18) and runs each for
# SECONDS (default 20), one after the other; fails on any crash, timeout or
# out-of-memory, leaving the input in fuzz/artifacts/TARGET/ and the log in
# fuzz/logs/TARGET.log. Prints libFuzzer's final figures per target.
# Installs what it needs if missing: a nightly toolchain and cargo-fuzz.
#   scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-20}"
shift || true

if ! rustup toolchain list | grep -q '^nightly'; then
  echo "== installing: rustup toolchain install nightly --profile minimal"
  rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly fuzz --help >/dev/null 2>&1; then
  echo "== installing: cargo install cargo-fuzz --locked"
  cargo install cargo-fuzz --locked
fi

echo "== cargo +nightly fuzz build"
start=$(date +%s)
cargo +nightly fuzz build
echo "fuzz build took $(( $(date +%s) - start )) s"

TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || mapfile -t TARGETS < <(cargo +nightly fuzz list)
mkdir -p fuzz/logs
failed=""
for t in "${TARGETS[@]}"; do
  # Seeds (read, never written): checked-in examples of what each target decodes.
  seeds=()
  case "$t" in
    scenario_file) seeds=(scenarios) ;;
    policy_file) seeds=(scenarios/policies) ;;
  esac
  [ -d "fuzz/seeds/$t" ] && seeds+=("fuzz/seeds/$t")
  mkdir -p "fuzz/corpus/$t"
  log="fuzz/logs/$t.log"
  start=$(date +%s)
  if cargo +nightly fuzz run "$t" "fuzz/corpus/$t" "${seeds[@]}" -- \
      -max_total_time="$SECS" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
    status=ok
  else
    status=FAILED; failed="$failed $t"
  fi
  # libFuzzer's last status line: "#N DONE cov: C ft: F corp: ... exec/s: E ..."
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  echo "$t: $status in $(( $(date +%s) - start )) s — ${last:-no status line}"
  if [ "$status" = FAILED ]; then
    grep -E 'ERROR|panicked|SUMMARY|Test unit written' "$log" | head -20 || true
  fi
done
if [ -n "$failed" ]; then
  echo "fuzz: crashes in:$failed (inputs in fuzz/artifacts/, logs in fuzz/logs/)" >&2
  exit 1
fi
echo "fuzz: every target ran ${SECS} s without a crash"
