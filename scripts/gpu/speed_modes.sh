#!/usr/bin/env bash
# Issue 15: our base decode on the CUDA EP is bimodal per request (about 0.92x of the builder's
# in one mode, 0.70x in the other; the builder's own model is not). Times the models that
# scripts/gpu/run_speed.sh built, base rows only, with per-step times (bench_speed.py records
# each request's median and largest step), as they are and with one genai_config session
# option changed in both models:
#   mempattern-off  session_options.enable_mem_pattern false
#   arena-same      CUDA provider option arena_extend_strategy kSameAsRequested (genai 0.15.2
#                   did not load it in run 5: it wants a number there, "stoll")
# and with each worker pinned to two cores of its own (bench_speed.py --pin-cores).
# then the full rows once. Called by run_speed.sh when MODES=1, in its environment:
#   MODES=1 REPEATS=40 bash scripts/gpu/speed_call.sh 540   (same device calls and carry)
# Usage: bash scripts/gpu/speed_modes.sh WORK RESULTS_DIR
set -uo pipefail
W=$1
R=$2
note() { echo "$(date -u +%FT%TZ) $*" | tee -a "$R/progress.txt"; }

variant() {  # KIND: WORK-KIND, both genai_config.json files changed (config_variant.py)
    python3 scripts/gpu/config_variant.py "$W" "$1" > /dev/null
}

source scripts/gpu/job_lib.sh
timeit() { REPEATS=${REPEATS:-40} timed modes "$@"; }  # NAME FOLDER [bench_speed.py options]

timeit base-1 "$W" --base-only
# each worker on cores of its own: does the slow mode follow the host thread?
timeit base-pinned "$W" --base-only --pin-cores 2-3/4-5
variant mempattern-off && timeit base-mempattern-off "$W-mempattern-off" --base-only
variant arena-same && timeit base-arena-same "$W-arena-same" --base-only
timeit base-2 "$W" --base-only
timeit full "$W" --second-adapter none
