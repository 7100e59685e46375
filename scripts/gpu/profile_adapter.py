"""Where the CUDA-EP adapter cost goes: onnxruntime's profile of one genai generation with and
without the adapter on a builder-route output, and the EP each node ran on.

    python3 scripts/gpu/profile_adapter.py OUTPUT_DIR RESULTS_DIR   (CUDA-EP environment)

Writes RESULTS_DIR/profile_adapter.json: per run (base, adapter) the time by provider and op
type, the Memcpy nodes, the LoRA nodes and the EP that ran them, decode ms per token.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import sys
import time
from pathlib import Path


def run(folder: Path, work: Path, adapter: str | None, tokens: int = 32) -> dict:
    import onnxruntime_genai as og

    copy = work / ("adapter" if adapter else "base")
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(folder, copy)
    config_path = copy / "genai_config.json"
    config = json.loads(config_path.read_text())
    options = config["model"]["decoder"].setdefault("session_options", {})
    options["enable_profiling"] = str(copy / "prof")
    config_path.write_text(json.dumps(config, indent=2))
    model = og.Model(str(copy))
    tokenizer = og.Tokenizer(model)
    adapters = None
    if adapter:
        adapters = og.Adapters(model)
        adapters.load(str(copy / adapter), "a")
    params = og.GeneratorParams(model)
    params.set_search_options(do_sample=False, max_length=256)
    generator = og.Generator(model, params)
    if adapters is not None:
        generator.set_active_adapter(adapters, "a")
    generator.append_tokens(tokenizer.encode("What is the best thing to see in Chicago?"))
    start = time.perf_counter()
    for _ in range(tokens):
        generator.generate_next_token()
    decode_ms = (time.perf_counter() - start) * 1e3 / tokens
    del generator, adapters, model
    import gc

    gc.collect()  # the session writes its profile when it is destroyed
    events: list = []
    for _ in range(50):
        files = sorted([*copy.glob("prof*.json"), *Path.cwd().glob("prof*.json")])
        text = files[-1].read_text() if files else ""
        if text.strip().endswith("]"):
            events = json.loads(text)
            break
        time.sleep(0.2)
    by_provider: dict[str, float] = collections.Counter()
    by_op: dict[str, float] = collections.Counter()
    memcpy: dict[str, int] = collections.Counter()
    lora: dict[str, list] = collections.defaultdict(list)
    for e in events:
        if e.get("cat") != "Node" or not e.get("name", "").endswith("_kernel_time"):
            continue
        args = e.get("args", {})
        provider = args.get("provider", "?")
        op = args.get("op_name", "?")
        dur = float(e.get("dur", 0)) / 1e3  # us -> ms
        by_provider[provider] += dur
        by_op[f"{op}@{provider}"] += dur
        if "Memcpy" in op:
            memcpy[e["name"].removesuffix("_kernel_time")] += 1
        if "lora" in e["name"]:
            lora[provider].append(dur)
    return {
        "adapter": adapter,
        "decode_ms_per_token": round(decode_ms, 3),
        "profile": str(files[-1]) if files else None,
        "ms_by_provider": {k: round(v, 2) for k, v in by_provider.items()},
        "top_ops_ms": {k: round(v, 2) for k, v in by_op.most_common(15)},
        "memcpy_nodes": dict(memcpy.most_common(20)),
        "lora_nodes_by_provider": {
            k: {"count": len(v), "ms": round(sum(v), 2)} for k, v in lora.items()
        },
    }


def main() -> int:
    folder, results = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
    work = results / "work"
    work.mkdir(parents=True, exist_ok=True)
    os.chdir(work)
    adapter = next((p.name for p in sorted(folder.glob("*.onnx_adapter"))), None)
    out = {"folder": str(folder), "runs": [run(folder, work, None), run(folder, work, adapter)]}
    (results / "profile_adapter.json").write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
