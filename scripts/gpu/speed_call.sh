#!/usr/bin/env bash
# One call of the lent GPU machine (device tool) for scripts/gpu/run_speed.sh, as
# device_call.sh is for run_all.sh: starts run_speed.sh in its own session (it outlives the
# call while the machine stays warm), waits up to $1 seconds, then copies the results to
# $OUT (results.tgz + progress.txt). Calling it again keeps waiting on the same run; it
# starts a new run only when none is running or finished.
#   device run: bash scripts/gpu/speed_call.sh 540     (REPEATS=25 in front is passed on)
# Carry, as for device_call.sh (the CUDA-EP runtime travels one piece per call while the
# model and the two builds are made; run_speed.sh checks the pieces before timing):
#   call 1: .dev/site312.tar.xz .dev/cudaep/SHA256SUMS .dev/cudaep/cudaep.tar.xz.part-ad
#           (and .dev/genai-alt: another 17 MB onnxruntime-genai-cuda wheel to time, if any)
#   calls 2-4: .dev/cudaep/cudaep.tar.xz.part-aa, -ab, -ac; later calls carry nothing and
#   wait for DONE.
# The machine goes back when idle: make the next call at once.
set -uo pipefail
cd "$(dirname "$0")/../.."
WAIT=${1:-540}
R=.dev/speed-results
running() { [ -f .dev/run_speed.pid ] && kill -0 "$(cat .dev/run_speed.pid)" 2>/dev/null; }
if ! running && [ ! -f "$R/DONE" ]; then
    rm -rf "$R"; mkdir -p "$R"
    setsid nohup bash scripts/gpu/run_speed.sh "$R" > .dev/run_speed.log 2>&1 < /dev/null &
    echo $! > .dev/run_speed.pid
fi
end=$((SECONDS + WAIT))
while running && [ $SECONDS -lt $end ]; do sleep 5; done
mkdir -p "$OUT"
tar -czf "$OUT/results.tgz" "$R" .dev/run_speed.log 2>/dev/null
cp "$R/progress.txt" "$OUT/" 2>/dev/null
tail -5 "$R/progress.txt" 2>/dev/null
[ -f "$R/DONE" ] && echo "ALL DONE" || echo "still running (pid $(cat .dev/run_speed.pid))"
