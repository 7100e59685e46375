#!/usr/bin/env bash
# Issue 15: where the CUDA-EP adapter cost goes (scripts/gpu/profile_adapter.py), on the tiny
# model's builder-route output (lora -> model_builder fp16 -> extract_adapters, packed).
# Device calls as for speed_call.sh (the CUDA-EP runtime travels in 4 pieces):
#   call 1: bash scripts/gpu/profile_adapter.sh 30, carry .dev/site312.tar.xz
#           .dev/cudaep/SHA256SUMS .dev/cudaep/cudaep.tar.xz.part-ad
#   calls 2-4: the same command, carry part-aa, -ab, -ac (the last one waits for DONE)
set -uo pipefail
cd "$(dirname "$0")/../.."
WAIT=${1:-30}
R=.dev/profile-results
running() { [ -f .dev/profile.pid ] && kill -0 "$(cat .dev/profile.pid)" 2>/dev/null; }
if ! running && [ ! -f "$R/DONE" ]; then
    rm -rf "$R"; mkdir -p "$R" .dev/profile
    cat > .dev/profile/job.sh <<'JOB'
set -uo pipefail
R=.dev/profile-results
source scripts/gpu/env.sh
mkdir -p .dev/sitecustom
printf 'try:\n    from olive_workflows.patches import awq_compat\n    awq_compat.install()\nexcept Exception:\n    pass\n' > .dev/sitecustom/sitecustomize.py
export PYTHONPATH="$PWD/.dev/sitecustom:$PYTHONPATH"
[ -f models/tiny-phi3/config.json ] || python3 -m olive_workflows tiny-model --out models/tiny-phi3
cat > .dev/profile/recipe.yaml <<YAML
version: 1
name: profile-tiny
model: {path: $PWD/models/tiny-phi3}
target: {device: gpu, provider: CUDAExecutionProvider}
data:
  travel:
    files: [$PWD/data/data_sample_travel.jsonl]
    template: "<|user|>\\\\n{prompt}<|end|>\\\\n<|assistant|>\\\\n{response}<|end|>"
    max_seq_len: 128
steps:
  - lora: {data: travel, r: 8, alpha: 16, max_steps: 10, batch_size: 2}
  - model_builder: {precision: fp16}
  - extract_adapters: {}
cache: {dir: $PWD/.dev/profile/cache}
output: {dir: $PWD/.dev/profile/out}
YAML
python3 -m olive_workflows run .dev/profile/recipe.yaml --json > $R/run.json 2> $R/run.err
echo "run rc=$?" >> $R/progress.txt
end=$((SECONDS + 900))
until (cd .dev/cudaep && sha256sum -c --quiet SHA256SUMS >/dev/null 2>&1); do
    [ $SECONDS -gt $end ] && { echo "no cudaep" >> $R/progress.txt; exit 1; }
    sleep 5
done
( source scripts/gpu/env_cuda_ep.sh && python3 scripts/gpu/profile_adapter.py .dev/profile/out $R ) \
    > $R/profile.txt 2>&1
echo "profile rc=$?" >> $R/progress.txt
JOB
    setsid nohup bash -c 'bash .dev/profile/job.sh; touch .dev/profile-results/DONE' \
        > .dev/profile.log 2>&1 < /dev/null &
    echo $! > .dev/profile.pid
fi
end=$((SECONDS + WAIT))
while running && [ $SECONDS -lt $end ] && [ ! -f "$R/DONE" ]; do sleep 3; done
mkdir -p "$OUT"
cp "$R"/*.json "$R"/*.txt "$R"/*.err "$OUT"/ 2>/dev/null
cat "$R/progress.txt" 2>/dev/null
[ -f "$R/DONE" ] && echo "ALL DONE" || echo "still running"
