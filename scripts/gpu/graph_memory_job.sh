#!/usr/bin/env bash
# Issue 15: GPU memory that CUDA graph capture holds per distinct max_length (`chat` asks
# for a new one with every prompt length). A mid-size random Phi-3 (hidden 2048, 4 layers,
# 16 KV heads of 128: 32 KB of KV cache a token) built by the genai builder for the CUDA EP,
# one copy with enable_cuda_graph "1", one with "0"; scripts/gpu/graph_memory.py on each.
#   bash scripts/gpu/call.sh scripts/gpu/graph_memory_job.sh .dev/graph-memory 540
# Carry as for speed_call.sh. Usage: bash scripts/gpu/graph_memory_job.sh RESULTS_DIR
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/gpu/job_lib.sh
build_env
R=$1
W=.dev/graph-memory-work
job_start "$W"
python3 - "$W/hf" <<'PY' >> "$R/progress.txt" 2>&1
import shutil, sys
from pathlib import Path
import torch
from transformers import Phi3Config, Phi3ForCausalLM
out = Path(sys.argv[1])
config = Phi3Config(hidden_size=2048, intermediate_size=4096, num_hidden_layers=4,
                    num_attention_heads=16, num_key_value_heads=16, vocab_size=1024,
                    max_position_embeddings=4096, original_max_position_embeddings=4096,
                    pad_token_id=0, bos_token_id=0, eos_token_id=3)
torch.manual_seed(0)
model = Phi3ForCausalLM(config).to(torch.float16)
model.save_pretrained(out)
for f in Path("models/tiny-phi3").iterdir():
    if "token" in f.name or f.suffix == ".jinja":
        shutil.copy(f, out / f.name)
print("mid model written")
PY
python3 -m onnxruntime_genai.models.builder -i "$W/hf" -o "$W/on" -p int4 -e cuda \
    -c "$W/cache" > "$R/build.txt" 2>&1
note "build rc=$?"
cp -r "$W/on" "$W/off"
sed -i 's/"enable_cuda_graph": "0"/"enable_cuda_graph": "1"/' "$W/on/genai_config.json"
grep -h '"enable_cuda_graph"' "$W/on/genai_config.json" "$W/off/genai_config.json" >> "$R/progress.txt"
wait_cudaep
for m in on off; do
    ( source scripts/gpu/env_cuda_ep.sh \
      && python3 scripts/gpu/graph_memory.py "$W/$m" "$R/memory-$m.json" ) > "$R/memory-$m.txt" 2>&1
    note "memory $m rc=$? $(tail -1 "$R/memory-$m.txt" | cut -c1-240)"
done
