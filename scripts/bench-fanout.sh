#!/usr/bin/env bash
# Fan-out of one tiercast relay, side by side with VLC in the same run, using
# ../shared/tools/fanout and its method (5 s ramp, 5 s warm-up, 20 s window,
# the ~4 Mbit/s test stream /tmp/src4m.ts pushed live by ffmpeg).
#
#   scripts/bench-fanout.sh N [WINDOW_S]     e.g. scripts/bench-fanout.sh 400
#
# tiercast: coordinator + origin (UDP ingest) + one tier-1 relay (capacity N+10);
# fanout reads http://relay/live/live.ts and measures the relay process's CPU.
# VLC: ../shared/tools/fanout/baseline.sh vlc N. JSON lines go to $RESULTS
# (default /tmp/fanout-results.jsonl). Every process started is stopped by PID.
set -euo pipefail
N=${1:?viewers}
WIN=${2:-20}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FAN_DIR=$(cd "$ROOT/../shared/tools/fanout" && pwd)
FANOUT=$FAN_DIR/target/release/fanout
TIERCAST=$ROOT/target/release/tiercast
SRC=${SRC:-/tmp/src4m.ts}
RES=${RESULTS:-/tmp/fanout-results.jsonl}
LOG=/tmp/tiercast-bench-fanout; mkdir -p "$LOG"

[ -x "$TIERCAST" ] || (cd "$ROOT" && cargo build --release)
[ -x "$FANOUT" ] || (cd "$FAN_DIR" && cargo build --release)
if [ ! -f "$SRC" ]; then
  echo "== making $SRC (120 s, ~4.09 Mbit/s, as in the fanout README)"
  ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine -t 120 \
    -c:v libx264 -preset ultrafast -g 60 -b:v 3800k -maxrate 3800k -bufsize 2M -c:a aac -b:a 128k -f mpegts "$SRC"
fi
EXPECT=$(ffprobe -v error -show_entries format=bit_rate -of csv=p=0 "$SRC" | awk '{printf "%d", $1/1000}')

PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

CPORT=17000; RPORT=18081; IPORT=15000
export RUST_LOG=warn
"$TIERCAST" coordinator --listen 127.0.0.1:$CPORT > "$LOG/coordinator.log" 2>&1 & PIDS+=($!)
sleep 0.5
"$TIERCAST" relay --coordinator http://127.0.0.1:$CPORT --tier 1 --capacity $((N + 10)) \
  --listen 127.0.0.1:$RPORT > "$LOG/relay.log" 2>&1 & RELAY=$!; PIDS+=($RELAY)
"$TIERCAST" origin --coordinator http://127.0.0.1:$CPORT --channel live --udp 127.0.0.1:$IPORT \
  > "$LOG/origin.log" 2>&1 & PIDS+=($!)
sleep 1.5
ffmpeg -hide_banner -nostdin -loglevel error -re -stream_loop -1 -i "$SRC" -c copy -f mpegts \
  "udp://127.0.0.1:$IPORT?pkt_size=1316" > "$LOG/push.log" 2>&1 & PIDS+=($!)
URL=http://127.0.0.1:$RPORT/live/live.ts
for _ in $(seq 1 20); do
  b=$("$FANOUT" -n 1 --ramp 0 --warmup 0.5 -d 1 --progress 0 "$URL" 2>/dev/null | sed -n 's/.*"bytes_window":\([0-9]*\).*/\1/p')
  [ "${b:-0}" -gt 0 ] && break; sleep 1
done
[ "${b:-0}" -gt 0 ] || { echo "tiercast relay: stream never flowed" >&2; exit 1; }
echo "== tiercast relay (pid $RELAY), N=$N"
"$FANOUT" -n "$N" --ramp 5 --warmup 5 -d "$WIN" --expect-kbps "$EXPECT" --pid "$RELAY" \
  --label "tiercast N=$N $(date -u +%Y-%m-%dT%H:%MZ)" "$URL" | tee -a "$RES"
cleanup; PIDS=()

echo "== VLC, N=$N (same run)"
id relayuser >/dev/null 2>&1 || useradd -M -s /usr/sbin/nologin relayuser
(cd "$FAN_DIR" && RESULTS="$RES" ./baseline.sh vlc "$N" "$WIN")
