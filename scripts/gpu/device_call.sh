#!/usr/bin/env bash
# One call of the lent GPU machine (device tool): a command there may run 10 minutes, and
# run_all.sh takes longer. So this starts run_all.sh in its own session (it outlives the
# call while the machine stays warm), waits up to $1 seconds, then copies the results to
# $OUT. Calling it again keeps waiting on the same run; it starts a new run only when none
# is running or finished.
#   device run: bash scripts/gpu/device_call.sh 540     (carry: .dev/site312.tar.xz)
#   (QUICK=1 in front is passed on to run_all.sh)
# The CUDA-EP runtime (scripts/gpu/build_cuda_ep.sh) is 5 pieces of up to 48 MiB; a call takes
# 64 MiB with the working tree, so they travel one per call while run_all.sh works (it checks
# them at the end):
#   call 1: carry .dev/site312.tar.xz .dev/cudaep/SHA256SUMS .dev/cudaep/cudaep.tar.xz.part-ae
#   calls 2-5: carry .dev/cudaep/cudaep.tar.xz.part-aa, -ab, -ac, -ad; the last one waits for DONE.
# The machine goes back after 30 s idle: make the next call at once.
set -uo pipefail
exec bash "$(dirname "$0")/call.sh" scripts/gpu/run_all.sh .dev/results "${1:-540}"
