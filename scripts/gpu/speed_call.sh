#!/usr/bin/env bash
# One call of the lent GPU machine (device tool) for scripts/gpu/run_speed.sh, as
# device_call.sh is for run_all.sh: starts run_speed.sh in its own session (it outlives the
# call while the machine stays warm), waits up to $1 seconds, then copies the results to
# $OUT (results.tgz + progress.txt). Calling it again keeps waiting on the same run; it
# starts a new run only when none is running or finished.
#   device run: bash scripts/gpu/speed_call.sh 540     (REPEATS=25 in front is passed on)
# Carry, as for device_call.sh (the CUDA-EP runtime travels one piece per call while the
# model and the two builds are made; run_speed.sh checks the pieces before timing):
#   call 1: .dev/site312.tar.xz .dev/cudaep/SHA256SUMS .dev/cudaep/cudaep.tar.xz.part-ae
#           (and .dev/genai-alt: another 17 MB onnxruntime-genai-cuda wheel to time, if any)
#   calls 2-5: .dev/cudaep/cudaep.tar.xz.part-aa, -ab, -ac, -ad; later calls carry nothing
#   and wait for DONE. (Runs 1-7 used four 60 MiB pieces; the working tree outgrew that.)
# The machine goes back when idle: make the next call at once.
set -uo pipefail
exec bash "$(dirname "$0")/call.sh" scripts/gpu/run_speed.sh .dev/speed-results "${1:-540}"
