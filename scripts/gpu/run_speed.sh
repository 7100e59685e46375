#!/usr/bin/env bash
# Issue 15 on the GPU: our recipe's output against onnxruntime-genai's own builder, CUDA EP,
# on the Phi-3.5-mini-shaped random-weight model (scripts/bench_speed.py does the work):
#   1. .dev/big-phi35 (scripts/gpu/make_big.py, tokenizer of the tiny model), as run_all.sh
#   2. the recipe .dev/speed/phi35-builder-gpu.yaml, written here: workflows/phi35-travel.yaml's
#      LoRA (r 64, alpha 16, 100 steps, travel data) without the awq step, then
#      model_builder int4, then extract_adapters; target gpu / CUDAExecutionProvider. It and
#      the baseline (`python -m onnxruntime_genai.models.builder ... -p int4 -e cuda`, the
#      recipe's int4 settings) are built in the build environment (genai 0.14.1), at once
#      (bench_speed.py --build-only --parallel-build) into .dev/speed-work
#   3. waits for the CUDA-EP runtime (.dev/cudaep, every piece in SHA256SUMS, up to
#      CUDAEP_WAIT s, 900), as run_all.sh does, then times both models on the CUDA EP
#      (constraints/gpu-cuda-ep.txt: genai-cuda 0.15.2, onnxruntime-gpu 1.31.1) in that
#      environment: bench_speed.py --skip-build --device cuda; then the base rows alone
#      (--base-only), scripts/gpu/ort_adapter_probe.py (where the adapter's cost goes,
#      onnxruntime alone), and, when another onnxruntime-genai-cuda wheel was carried in
#      .dev/genai-alt, the same timing with that genai on the same onnxruntime (0.18.0: keeps
#      adapters in host memory, src/olive_workflows/runtime/adapter_residency.py).
#      CUDAGRAPH=1: also with CUDA graph capture on (neither model loads with it).
# Run:   bash scripts/gpu/run_speed.sh [RESULTS_DIR]     (default .dev/speed-results)
#        REPEATS=25 (default), SPEED_WORK=.dev/speed-work
# Writes into RESULTS_DIR: progress.txt, env.json, make_big.json, build.json, build.txt,
# speed.json (the result), speed.txt (its table and log), speed-base-only.json, probe.json,
# speed-genai-alt.json (each with its .txt), logs.tgz (build and worker logs).
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/gpu/job_lib.sh
build_env  # env.sh and the awq_compat sitecustomize (job_lib.sh says why)
R=${1:-.dev/speed-results}
W=${SPEED_WORK:-.dev/speed-work}
MODEL=.dev/big-phi35
RECIPE=.dev/speed/phi35-builder-gpu.yaml
mkdir -p "$R" .dev/speed
note() { echo "$(date -u +%FT%TZ) $*" | tee -a "$R/progress.txt"; }

note "start"
python3 scripts/gpu/env_report.py > "$R/env.json" 2> "$R/env.err"
[ -f models/tiny-phi3/config.json ] \
    || python3 -m olive_workflows tiny-model --out models/tiny-phi3 >> "$R/progress.txt" 2>&1
python3 scripts/gpu/make_big.py "$MODEL" models/tiny-phi3 > "$R/make_big.json" 2> .dev/make_big.log
rc=$?
note "make_big rc=$rc $(cat "$R/make_big.json")"

# paths relative to this file (.dev/speed/); bench_speed.py points model, output and cache
# at its own folders anyway
cat > "$RECIPE" <<'EOF'
version: 1
name: phi35-builder-gpu
description: phi35-travel's LoRA without AWQ, built by model_builder int4, adapter kept separate.
model:
  path: ../big-phi35
target:
  device: gpu
  provider: CUDAExecutionProvider
data:
  travel:
    files: [../../data/data_sample_travel.jsonl]
    template: "<|user|>\n{prompt}<|end|>\n<|assistant|>\n{response}<|end|>"
    max_seq_len: 1024
steps:
  - lora: {data: travel, r: 64, alpha: 16, max_steps: 100}
  - model_builder: {precision: int4}
  - extract_adapters: {}
cache:
  dir: cache
output:
  dir: out
EOF
# model_builder's context_length (CONTEXT, 4096 by default, as workflows/phi35-travel-builder.yaml
# ships: the LongRoPE If folded, CUDA graph on); CONTEXT=none builds without it (VARIANTS=1)
if [ "${CONTEXT:-4096}" != none ]; then
    sed -i "s/model_builder: {precision: int4}/model_builder: {precision: int4, context_length: ${CONTEXT:-4096}}/" "$RECIPE"
fi
cp "$RECIPE" "$R/"

if [ -f "$W/build.json" ] && [ -f "$W/ours/genai_config.json" ] && [ -f "$W/builder/genai_config.json" ]; then
    note "build: reusing $W"
else
    python3 scripts/bench_speed.py --build-only --parallel-build --model "$MODEL" \
        --recipe "$RECIPE" --device cuda --work "$W" > "$R/build.txt" 2>&1
    rc=$?
    note "build rc=$rc $(grep -E '_wall_s' "$R/build.txt" | tr -d '\n ')"
    [ $rc -ne 0 ] && tail -8 "$R/build.txt" >> "$R/progress.txt"
fi
cp "$W/build.json" "$R/" 2>/dev/null

note "waiting for .dev/cudaep"
end=$((SECONDS + ${CUDAEP_WAIT:-900}))
until (cd .dev/cudaep 2>/dev/null && sha256sum -c --quiet SHA256SUMS >/dev/null 2>&1); do
    [ $SECONDS -ge $end ] && break
    sleep 5
done
if ! [ -f "$W/build.json" ]; then
    note "no timing: the build failed (build.txt)"
elif [ "${MODES:-0}" = 1 ] && (cd .dev/cudaep 2>/dev/null && sha256sum -c --quiet SHA256SUMS); then
    bash scripts/gpu/speed_modes.sh "$W" "$R"
elif [ "${VARIANTS:-0}" != 0 ] && (cd .dev/cudaep 2>/dev/null && sha256sum -c --quiet SHA256SUMS); then
    bash scripts/gpu/speed_variants.sh "$W" "$R"
elif (cd .dev/cudaep 2>/dev/null && sha256sum -c --quiet SHA256SUMS); then
    ( source scripts/gpu/env_cuda_ep.sh \
      && python3 scripts/bench_speed.py --reuse "$W" --device cuda --repeats "${REPEATS:-25}" \
           --second-adapter synthetic --out "$R/speed.json" ) > "$R/speed.txt" 2>&1
    note "speed rc=$?"
    grep -E '^(Targets|Model load)' "$R/speed.txt" | tee -a "$R/progress.txt"
    # The base rows alone: no adapter is ever loaded into our model's process.
    ( source scripts/gpu/env_cuda_ep.sh \
      && python3 scripts/bench_speed.py --reuse "$W" --device cuda --repeats "${REPEATS:-25}" \
           --base-only --out "$R/speed-base-only.json" ) > "$R/speed-base-only.txt" 2>&1
    note "speed base-only rc=$?"
    grep -E '^(Targets)' "$R/speed-base-only.txt" | tee -a "$R/progress.txt"
    # Where the adapter's decode cost goes, one onnxruntime session without genai
    # (scripts/gpu/ort_adapter_probe.py): LoRA inputs bound on the device, on the host, or
    # through RunOptions' active adapter.
    ( source scripts/gpu/env_cuda_ep.sh \
      && python3 scripts/gpu/ort_adapter_probe.py "$W/ours" "$W/ours/adapter_weights.onnx_adapter" \
           "$R/probe.json" ) > "$R/probe.txt" 2>&1
    note "probe rc=$? $(grep -o '"host_copy_ms": [-0-9.]*' "$R/probe.json" 2>/dev/null)"
    # Another onnxruntime-genai-cuda wheel carried in .dev/genai-alt (GENAI_ALT_WHEEL names
    # it): the same models timed with it, on the same onnxruntime.
    ALT=${GENAI_ALT_WHEEL:-$(ls .dev/genai-alt/*.whl 2>/dev/null | head -1)}
    if [ -n "$ALT" ] && [ -f "$ALT" ]; then
        rm -rf /tmp/genai-alt && mkdir -p /tmp/genai-alt
        python3 -m zipfile -e "$ALT" /tmp/genai-alt
        ( source scripts/gpu/env_cuda_ep.sh && export PYTHONPATH="/tmp/genai-alt:$PYTHONPATH" \
          && python3 scripts/bench_speed.py --reuse "$W" --device cuda --repeats "${REPEATS:-25}" \
               --second-adapter synthetic --out "$R/speed-genai-alt.json" ) \
            > "$R/speed-genai-alt.txt" 2>&1
        note "speed with $(basename "$ALT") rc=$?"
        grep -E '^(Machine|Targets|Model load)' "$R/speed-genai-alt.txt" | tee -a "$R/progress.txt"
    fi
    if [ "${CUDAGRAPH:-0}" = 1 ]; then
    # The same models with CUDA graph capture on (genai_config provider option): hard-linked
    # copies, only the two genai_config.json files rewritten.
    python3 scripts/gpu/config_variant.py "$W" cudagraph > /dev/null
    ( source scripts/gpu/env_cuda_ep.sh \
      && python3 scripts/bench_speed.py --reuse "$W-cudagraph" --device cuda --repeats "${REPEATS:-25}" \
           --second-adapter none --out "$R/speed-cudagraph.json" ) > "$R/speed-cudagraph.txt" 2>&1
    note "speed with CUDA graph rc=$?"
    grep -E '^(Targets|Model load)' "$R/speed-cudagraph.txt" | tee -a "$R/progress.txt"
    fi
else
    note "no timing: .dev/cudaep incomplete"
fi
tar -czf "$R/logs.tgz" -C "$W" --ignore-failed-read \
    render.log ours-build.log builder-build.log worker-builder.log worker-ours.log \
    ours.olive.json rendered.json 2>/dev/null
note "done"
touch "$R/DONE"
