#!/usr/bin/env bash
# Issue 15: CUDA graph is now on by default for a CUDA model whose graph has no control flow
# (engine/decode_graph.py). Checks that default on a model without LongRoPE (the tiny Phi-3):
# the recipe lora -> model_builder int4 -> extract_adapters on the CUDA target, run by
# olive-workflows, must come out with enable_cuda_graph "1", and decode on the CUDA EP the
# same logits and tokens as its copy with CUDA graph off, switching between no adapter and
# the adapter (scripts/gpu/graph_check.py).
#   bash scripts/gpu/call.sh scripts/gpu/graph_default_job.sh .dev/graph-default 540
# Carry as for speed_call.sh (site312 and the five cudaep pieces over five calls).
# Usage: bash scripts/gpu/graph_default_job.sh RESULTS_DIR
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/gpu/job_lib.sh
build_env
R=$1
W=.dev/graph-default-work
job_start "$W"
cat > "$W/recipe.yaml" <<YAML
version: 1
name: tiny-graph-default
model: {path: "$PWD/models/tiny-phi3"}
target: {device: gpu, provider: CUDAExecutionProvider}
data:
  travel:
    files: ["$PWD/data/data_sample_travel.jsonl"]
    template: "<|user|>\\n{prompt}<|end|>\\n<|assistant|>\\n{response}<|end|>"
    max_seq_len: 128
steps:
  - lora: {data: travel, r: 8, alpha: 16, max_steps: 20, batch_size: 2, learning_rate: 0.002}
  - model_builder: {precision: int4}
  - extract_adapters: {}
cache: {dir: cache}
output: {dir: out}
YAML
cp "$W/recipe.yaml" "$R/"
python3 -m olive_workflows run "$W/recipe.yaml" --json > "$R/run.json" 2> "$R/run.log"
note "run rc=$? $(grep -o '"enable_cuda_graph": "[01]"' "$W/out/genai_config.json")"
python3 -c "import json; print(json.load(open('$W/out/olive-workflows.json')).get('decode_graph'))" \
    >> "$R/progress.txt" 2>&1
cp "$W/out/genai_config.json" "$R/"
rm -rf "$W/off" && cp -r "$W/out" "$W/off"
sed -i 's/"enable_cuda_graph": "1"/"enable_cuda_graph": "0"/' "$W/off/genai_config.json"
wait_cudaep
( source scripts/gpu/env_cuda_ep.sh \
  && python3 scripts/gpu/graph_check.py "$W/out" "$W/off" "$R/graph-check.json" \
       "$W/out/adapter_weights.onnx_adapter" ) > "$R/graph-check.txt" 2>&1
note "graph check rc=$? $(tail -1 "$R/graph-check.txt" | cut -c1-240)"
