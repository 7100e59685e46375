"""Does CUDA graph capture hold GPU memory per distinct max_length? (issue 15's default)

    python3 scripts/gpu/graph_memory.py MODEL_DIR OUT_JSON [--lengths 24]

onnxruntime-genai pools captured graphs by batch size and max_length; `chat` asks for
max_length = prompt + new tokens, so an interactive session asks for many distinct ones.
One generator per distinct max_length (a 15-token prompt, decoded to the end), then the
process's GPU memory in use (nvidia-smi, this pid) after each; then the same lengths again
(a second pass that only reuses). Run it once on a model with CUDA graph on and once on its
copy with it off.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from pathlib import Path

import onnxruntime_genai as og

PROMPT = [45, 262, 81, 768, 262, 863, 83, 308, 361, 79, 503, 720, 1020, 559, 1002]


def used_mib() -> int:
    out = subprocess.run(
        ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
        capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    for line in out.splitlines():
        pid, mib = (p.strip() for p in line.split(","))
        if int(pid) == os.getpid():
            return int(mib)
    return -1


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--lengths", type=int, default=24)
    args = ap.parse_args()
    model = og.Model(str(args.model_dir))
    lengths = [len(PROMPT) + 8 + 7 * i for i in range(args.lengths)]
    passes = []
    for _ in range(2):
        rows = []
        for max_length in lengths:
            params = og.GeneratorParams(model)
            params.set_search_options(do_sample=False, max_length=max_length)
            generator = og.Generator(model, params)
            generator.append_tokens(PROMPT)
            while not generator.is_done():
                generator.generate_next_token()
            del generator
            rows.append({"max_length": max_length, "used_mib": used_mib()})
        passes.append(rows)
    result = {
        "model_dir": str(args.model_dir),
        "genai": og.__version__,
        "passes": passes,
        "growth_first_pass_mib": passes[0][-1]["used_mib"] - passes[0][0]["used_mib"],
        "growth_second_pass_mib": passes[1][-1]["used_mib"] - passes[0][-1]["used_mib"],
    }
    args.out.write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "passes"}))


if __name__ == "__main__":
    main()
