#!/usr/bin/env bash
# Issue 15: where the CUDA-EP adapter cost goes (scripts/gpu/profile_adapter.py), on the tiny
# model's builder-route output (lora -> model_builder fp16 -> extract_adapters, packed).
# Device calls as for speed_call.sh (the CUDA-EP runtime travels in 5 pieces):
#   call 1: bash scripts/gpu/profile_adapter.sh 30, carry .dev/site312.tar.xz
#           .dev/cudaep/SHA256SUMS .dev/cudaep/cudaep.tar.xz.part-ae
#   calls 2-5: the same command, carry part-aa, -ab, -ac, -ad (the last one waits for DONE)
# The job is scripts/gpu/profile_job.sh; results come back as results.tgz (scripts/gpu/call.sh).
set -uo pipefail
exec bash "$(dirname "$0")/call.sh" scripts/gpu/profile_job.sh .dev/profile-results "${1:-30}"
