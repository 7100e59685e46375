#!/usr/bin/env bash
# Issue 15: where our model's decode time goes on the CUDA EP, by changing one thing at a time
# in copies of the models that scripts/gpu/run_speed.sh built (scripts/gpu/config_variant.py,
# graph_edits.py), each timed with the builder's unchanged model beside it:
#   full, base-pinned  the models as built; the base rows with each worker on cores of its own
#   foldif             the LongRoPE cache `If` folded (context capped at 4096), ours only
#   lorat-a, lorat-ab  LoRA A (and B) as FusedMatMul over transposed weights, ours only
#   foldif+ours-cudagraph, foldif+lorat-a+ours-cudagraph
#                      CUDA graph capture in ours, which the folded `If` allows; the adapter
#                      and base requests alternate, so compare_ids.py shows whether a replayed
#                      graph kept the right adapter
# and the onnxruntime-only probe (ort_adapter_probe.py) on lorat-a.
# VARIANTS=2: the recipe as shipped against its own CUDA-graph-off copy (see below).
# Called by run_speed.sh when VARIANTS is 1 or 2, in its environment:
#   VARIANTS=1 REPEATS=30 bash scripts/gpu/speed_call.sh 540   (same device calls and carry)
# Usage: bash scripts/gpu/speed_variants.sh WORK RESULTS_DIR
set -uo pipefail
W=$1
R=$2
note() { echo "$(date -u +%FT%TZ) $*" | tee -a "$R/progress.txt"; }

source scripts/gpu/job_lib.sh
timeit() { timed var "$@"; }  # NAME FOLDER [bench_speed.py options]

variant() {  # KINDS NAME: time WORK-KINDS (full rows, no second adapter)
    if ( source scripts/gpu/env_cuda_ep.sh && python3 scripts/gpu/config_variant.py "$W" "$1" ) \
        > "$R/var-$2.make.txt" 2>&1; then
        timeit "$2" "$W-$1" --second-adapter none
    else
        note "$2: variant failed: $(tail -1 "$R/var-$2.make.txt")"
    fi
}

if [ "${VARIANTS:-1}" = 2 ]; then
    # The recipe as shipped (model_builder context_length 4096: the rotary If folded, CUDA
    # graph on by default), two adapters switched per request; then whether the graph decodes
    # what the same model without it decodes (graph_check.py), the same model with CUDA graph
    # off, the builder's model given the same fold and CUDA graph, and the first timing again.
    timeit full "$W" --second-adapter synthetic
    ( source scripts/gpu/env_cuda_ep.sh \
      && python3 scripts/gpu/config_variant.py "$W" ours-cudagraph-off \
      && python3 scripts/gpu/graph_check.py "$W/ours" "$W-ours-cudagraph-off/ours" \
           "$R/graph-check.json" "$W/ours/adapter_weights.onnx_adapter" \
           "$W/adapter2-synthetic.onnx_adapter" ) > "$R/graph-check.txt" 2>&1
    note "graph check rc=$? $(tail -1 "$R/graph-check.txt" | cut -c1-200)"
    timeit nograph "$W-ours-cudagraph-off" --second-adapter none
    variant builder-foldif-cudagraph builder-cudagraph
    timeit full-2 "$W" --second-adapter synthetic
    python3 scripts/gpu/compare_ids.py "$R/var-full.json" "$R"/var-*.json > "$R/ids.txt" 2>&1
    exit 0
fi
timeit full "$W" --second-adapter none
timeit base-pinned "$W" --base-only --pin-cores 2-3/4-5
variant foldif foldif
variant lorat-a lorat-a
variant lorat-ab lorat-ab
variant foldif+ours-cudagraph cudagraph
variant foldif+lorat-a+ours-cudagraph cudagraph-lorat-a
( source scripts/gpu/env_cuda_ep.sh \
  && python3 scripts/gpu/ort_adapter_probe.py "$W-lorat-a/ours" \
       "$W-lorat-a/ours/adapter_weights.onnx_adapter" "$R/probe-lorat-a.json" \
  && python3 scripts/gpu/ort_adapter_probe.py "$W/ours" "$W/ours/adapter_weights.onnx_adapter" \
       "$R/probe.json" ) > "$R/probe.txt" 2>&1
note "probes rc=$? $(grep -ho '"lora_kernels_ms": [-0-9.]*' "$R"/probe*.json | tr '\n' ' ')"
python3 scripts/gpu/compare_ids.py "$R/var-full.json" "$R"/var-*.json > "$R/ids.txt" 2>&1
grep -E "cudagraph" "$R/ids.txt" | tee -a "$R/progress.txt"
