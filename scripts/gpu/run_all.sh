#!/usr/bin/env bash
# Every GPU run of the phi35-travel recipe, in one go (about 20 minutes on one H100):
#   0. scripts/gpu/bench_awq_pack.py (AutoAWQ's packing against awq_compat's, one layer)
#   1. the tiny model (hidden 128), the recipe as rendered (CUDA-EP target, fp16 graph)
#   2. a model with microsoft/Phi-3.5-mini-instruct's exact config, random weights (built
#      while step 1 runs): the recipe as rendered, measured alone (docs/benchmarks-gpu.md)
#   3. pytest -m gpu (the tiny chain end to end, genai with/without adapter)
#   4. unless QUICK=1: tiny variants (CPU-EP target, LoRA -> AWQ, LoRA in float16/float32)
#   5. onnxruntime-genai on the CUDA EP for the outputs of 1 and 2, once .dev/cudaep holds
#      every piece listed in .dev/cudaep/SHA256SUMS (scripts/gpu/build_cuda_ep.sh; on the lent
#      machine the pieces come in later calls, so this waits up to CUDAEP_WAIT seconds, 900)
# Run:   bash scripts/gpu/run_all.sh [RESULTS_DIR]      (default .dev/results)
# Needs: a CUDA GPU, the constraints/gpu.txt packages (or .dev/site312.tar.xz), ~25 GB disk.
# Writes one JSON per run into RESULTS_DIR, plus progress.txt, env.json and pytest.txt.
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/gpu/env.sh
R=${1:-.dev/results}
mkdir -p "$R"
note() { echo "$(date -u +%FT%TZ) $*" | tee -a "$R/progress.txt"; }
chain() { python3 scripts/gpu/run_chain.py --json "$R/$1.json" --name "$@" >> "$R/progress.txt" 2>&1; }

note "start"
python3 scripts/gpu/env_report.py > "$R/env.json" 2> "$R/env.err"
python3 -m olive_workflows tiny-model --out models/tiny-phi3 >> "$R/progress.txt" 2>&1
python3 scripts/gpu/make_big.py .dev/big-phi35 models/tiny-phi3 > "$R/make_big.json" 2> .dev/make_big.log &
BIG=$!
python3 -W ignore scripts/gpu/bench_awq_pack.py --json "$R/awq_pack.json" > /dev/null 2>> "$R/progress.txt"
note "awq pack bench rc=$?"
chain tiny --model models/tiny-phi3
note "tiny rc=$?"
wait $BIG
note "make_big rc=$?"
chain phi35-shaped --model .dev/big-phi35 --max-new 32 --repeats 3
note "phi35-shaped rc=$?"
python3 -m pytest -m gpu tests/test_gpu.py -q -p no:cacheprovider > "$R/pytest.txt" 2>&1
echo "pytest rc=$?" >> "$R/pytest.txt"
python3 -m pytest tests/test_awq_pack.py -q -p no:cacheprovider >> "$R/pytest.txt" 2>&1
echo "pytest awq_pack rc=$?" >> "$R/pytest.txt"
note "pytest: $(tail -2 "$R/pytest.txt" | tr '\n' ' ')"
if [ -z "${QUICK:-}" ]; then
    chain tiny-cpu-ep --model models/tiny-phi3 --target cpu
    chain tiny-lora-then-awq --model models/tiny-phi3 --order lora-awq
    chain tiny-awq-lora-fp16 --model models/tiny-phi3 --lora-dtype float16
    chain tiny-awq-lora-fp32 --model models/tiny-phi3 --lora-dtype float32
fi
note "waiting for .dev/cudaep"
end=$((SECONDS + ${CUDAEP_WAIT:-900}))
until (cd .dev/cudaep 2>/dev/null && sha256sum -c --quiet SHA256SUMS >/dev/null 2>&1); do
    [ $SECONDS -ge $end ] && break
    sleep 5
done
if (cd .dev/cudaep 2>/dev/null && sha256sum -c --quiet SHA256SUMS); then
    for name in tiny phi35-shaped; do
        ( source scripts/gpu/env_cuda_ep.sh \
          && python3 scripts/gpu/genai_check.py ".dev/runs/$name/out" --max-new 32 --repeats 5 \
               --json "$R/$name-cuda-ep.json" ) > "$R/$name-cuda-ep.txt" 2>&1
        note "cuda-ep $name rc=$?"
    done
else
    note "no CUDA-EP check: .dev/cudaep incomplete"
fi
note "done"
touch "$R/DONE"
