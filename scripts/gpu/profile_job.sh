#!/usr/bin/env bash
# The job of scripts/gpu/profile_adapter.sh (issue 15): builds the tiny model's builder-route
# output, waits for the CUDA-EP runtime, profiles it (scripts/gpu/profile_adapter.py).
# Usage: bash scripts/gpu/profile_job.sh RESULTS_DIR
set -uo pipefail
cd "$(dirname "$0")/../.."
R=$1
mkdir -p .dev/profile
source scripts/gpu/job_lib.sh
build_env
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
