#!/usr/bin/env bash
# Runs every test of tiercast on a fresh machine: installs what the tests need
# (ffmpeg, etcd and iproute2 for the end-to-end tests), then formatting, lints and the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
# ffmpeg: end-to-end tests push and decode real streams; etcd-server: several
# coordinator processes elect their leader on a real etcd cluster (X7).
NEED=""
{ command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null; } || NEED="$NEED ffmpeg"
command -v etcd >/dev/null || NEED="$NEED etcd-server"
# iproute2: `tiercast cluster` puts each node in a network namespace (ip netns, tc tbf).
{ command -v ip >/dev/null && command -v tc >/dev/null; } || NEED="$NEED iproute2"
if [ -n "$NEED" ]; then
  echo "== installing$NEED"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $NEED >/dev/null
fi
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== core crates do not depend on tokio"
for c in tiercast-proto tiercast-media tiercast-node tiercast-coordinator tiercast-locality; do
  if cargo tree -p "$c" -e normal --prefix none | grep -qE '^tokio '; then
    echo "$c depends on tokio: the sans-IO core must not do I/O" >&2; exit 1
  fi
done
echo "== cargo test"
cargo test --workspace --release -- --test-threads=2
echo "all tests passed"
