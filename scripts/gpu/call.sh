#!/usr/bin/env bash
# One call of the lent GPU machine (device tool) for a job longer than a call's 10 minutes:
# starts JOB (a bash script, given RESULTS_DIR) in its own session, so it outlives the call
# while the machine stays warm, waits up to WAIT seconds, then copies RESULTS_DIR to $OUT
# (results.tgz, with the job's log, and progress.txt). Calling it again keeps waiting on the
# same job; it starts a new one only when none is running or finished (RESULTS_DIR/DONE).
#   bash scripts/gpu/call.sh JOB RESULTS_DIR [WAIT]       (WAIT: 540 by default)
# device_call.sh, speed_call.sh and profile_adapter.sh call it with their job. The machine
# goes back after 30 s idle: make the next call at once.
set -uo pipefail
cd "$(dirname "$0")/../.."
JOB=$1
R=$2
WAIT=${3:-540}
PID=$R.pid
LOG=$R.log
running() { [ -f "$PID" ] && kill -0 "$(cat "$PID")" 2>/dev/null; }
if ! running && [ ! -f "$R/DONE" ]; then
    rm -rf "$R"; mkdir -p "$R"
    setsid nohup bash -c 'bash "$0" "$1"; touch "$1/DONE"' "$JOB" "$R" > "$LOG" 2>&1 < /dev/null &
    echo $! > "$PID"
fi
end=$((SECONDS + WAIT))
while running && [ $SECONDS -lt $end ]; do sleep 3; done
mkdir -p "$OUT"
tar -czf "$OUT/results.tgz" "$R" "$LOG" 2>/dev/null
cp "$R/progress.txt" "$OUT/" 2>/dev/null
tail -5 "$R/progress.txt" 2>/dev/null
[ -f "$R/DONE" ] && echo "ALL DONE" || echo "still running (pid $(cat "$PID"))"
