"""Does a model with CUDA graph capture decode what the same model without it decodes?

    python3 scripts/gpu/graph_check.py GRAPH_DIR PLAIN_DIR OUT_JSON ADAPTER [ADAPTER2]

GRAPH_DIR and PLAIN_DIR hold the same model; GRAPH_DIR's genai_config turns
enable_cuda_graph on. Both are loaded in this one process (CUDA EP) with the same adapter
files, then asked the same requests in the same order, switching adapters between requests
as a server would: none, A, B, A, none, B, A with one max_length, then A and none with
another (a second captured graph). Each request: a fixed prompt, 12 greedy tokens; every
step's logits are compared (max |difference|) and the token ids must match. Issue 15:
onnxruntime-genai keeps captured graphs in a pool keyed by batch size and max_length, not by
adapter, so a replayed graph holding another request's adapter would show here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime_genai as og

PROMPT = [45, 262, 81, 768, 262, 863, 83, 308, 361, 79, 503, 720, 1020, 559, 1002]
NEW = 12


def load(model_dir: Path, adapters: dict[str, Path]) -> tuple[Any, Any]:
    config = og.Config(str(model_dir))
    model = og.Model(config)
    loaded = og.Adapters(model)
    for name, path in adapters.items():
        loaded.load(str(path), name)
    return model, loaded


def run(model: Any, adapters: Any, adapter: str | None, max_length: int) -> dict[str, Any]:
    params = og.GeneratorParams(model)
    params.set_search_options(do_sample=False, max_length=max_length)
    generator = og.Generator(model, params)
    if adapter:
        generator.set_active_adapter(adapters, adapter)
    generator.append_tokens(PROMPT)
    ids, logits = [], []
    while len(ids) < NEW and not generator.is_done():
        generator.generate_next_token()
        ids.append(int(generator.get_next_tokens()[0]))
        logits.append(np.array(generator.get_output("logits"), dtype=np.float32).ravel())
    del generator
    return {"ids": ids, "logits": logits}


def main(graph_dir: Path, plain_dir: Path, out: Path, adapter_files: list[Path]) -> None:
    names = ["A", "B"][: len(adapter_files)]
    adapters = dict(zip(names, adapter_files, strict=True))
    graph = load(graph_dir, adapters)
    plain = load(plain_dir, adapters)
    order = [None, "A", "B", "A", None, "B", "A"]
    order = [a for a in order if a is None or a in adapters]
    requests = [(a, len(PROMPT) + 32) for a in order] + [
        ("A", len(PROMPT) + 48),
        (None, len(PROMPT) + 48),
    ]
    rows = []
    for adapter, max_length in requests:
        g = run(*graph, adapter, max_length)
        p = run(*plain, adapter, max_length)
        diff = max(
            float(np.max(np.abs(a - b))) for a, b in zip(g["logits"], p["logits"], strict=True)
        )
        rows.append(
            {
                "adapter": adapter,
                "max_length": max_length,
                "same_ids": g["ids"] == p["ids"],
                "max_abs_logit_diff": round(diff, 5),
                "ids": g["ids"],
                "plain_ids": p["ids"],
            }
        )
        print(
            json.dumps(
                {k: v for k, v in rows[-1].items() if "ids" not in k}
                | {"same_ids": rows[-1]["same_ids"]}
            )
        )
    distinct = {str(r["adapter"]): r["plain_ids"] for r in rows}
    result = {
        "genai": og.__version__,
        "graph_dir": str(graph_dir),
        "requests": rows,
        "all_same_ids": all(r["same_ids"] for r in rows),
        "max_abs_logit_diff": max(r["max_abs_logit_diff"] for r in rows),
        # the check means something only if the adapters change the answer
        "adapters_change_ids": len({json.dumps(v) for v in distinct.values()}) == len(distinct),
    }
    out.write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "requests"}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), [Path(p) for p in sys.argv[4:]])
