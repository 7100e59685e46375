"""Multi-LoRA on one base model: the held-out perplexity of every adapter on every set, and
what switching adapters between requests costs against loading the model.

Reads a multi-adapter output folder (adapters.json, quality.json as `run` wrote them) and
times, in one onnxruntime-genai process: loading the model, loading each adapter file,
`set_active_adapter`, and whole requests (same prompt, greedy, fixed length) that keep one
adapter against requests that alternate between adapters. Writes JSON (with the command
that made it) for docs/quality.md.

    .venv/bin/python scripts/bench_multi.py models/smollm2-multi-cpu \
        --json docs/benchmarks/multi-lora-cpu-smollm2.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

PROMPT = "How long should I boil an egg, and what should I see in Chicago?"


def _request(
    og: Any, model: Any, tokenizer: Any, adapters: Any, name: str | None, *, n: int
) -> tuple[float, float]:
    """One greedy request of `n` new tokens; returns (seconds, set_active_adapter seconds)."""
    params = og.GeneratorParams(model)
    params.set_search_options(do_sample=False, max_length=4096)
    start = time.perf_counter()
    generator = og.Generator(model, params)
    switch = 0.0
    if name is not None:
        t = time.perf_counter()
        generator.set_active_adapter(adapters, name)
        switch = time.perf_counter() - t
    generator.append_tokens(tokenizer.encode(PROMPT))
    for _ in range(n):
        if generator.is_done():
            break
        generator.generate_next_token()
    return time.perf_counter() - start, switch


def measure(folder: Path, repeats: int, tokens: int) -> dict[str, Any]:
    import onnxruntime_genai as og

    manifest = json.loads((folder / "adapters.json").read_text(encoding="utf-8"))
    names = list(manifest["adapters"])
    t = time.perf_counter()
    model = og.Model(str(folder))
    model_load = time.perf_counter() - t
    tokenizer = og.Tokenizer(model)
    adapters = og.Adapters(model)
    adapter_load = {}
    for name in names:
        t = time.perf_counter()
        adapters.load(str(folder / manifest["adapters"][name]["file"]), name)
        adapter_load[name] = time.perf_counter() - t
    _request(og, model, tokenizer, adapters, names[0], n=tokens)  # warm-up
    same = [_request(og, model, tokenizer, adapters, names[0], n=tokens) for _ in range(repeats)]
    alternating = [
        _request(og, model, tokenizer, adapters, names[i % len(names)], n=tokens)
        for i in range(repeats)
    ]

    def ms(values: list[float]) -> float:
        return round(statistics.median(values) * 1e3, 3)

    return {
        "model_load_s": round(model_load, 3),
        "adapter_load_ms": {k: round(v * 1e3, 2) for k, v in adapter_load.items()},
        "set_active_adapter_ms": ms([s for _, s in same + alternating]),
        "request_same_adapter_ms": ms([r for r, _ in same]),
        "request_alternating_ms": ms([r for r, _ in alternating]),
        "requests_each": repeats,
        "new_tokens": tokens,
        "switch_vs_model_load": round(
            statistics.median([s for _, s in same + alternating]) / model_load, 8
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path, help="a multi-adapter output folder")
    parser.add_argument("--json", type=Path, help="write the result here")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--tokens", type=int, default=16)
    args = parser.parse_args()
    quality = json.loads((args.output / "quality.json").read_text(encoding="utf-8"))
    manifest = json.loads((args.output / "adapters.json").read_text(encoding="utf-8"))
    cross = quality.get("cross")
    own_set_wins = None
    if cross:
        sets = list(quality["data_sets"])
        # each adapter's own set is its data set's `_eval` twin, by the recipe's naming
        own = {name: f"{entry['data']}_eval" for name, entry in manifest["adapters"].items()}
        own_set_wins = {
            name: all(
                cross[name][own[name]] < cross[other][own[name]] for other in cross if other != name
            )
            for name in manifest["adapters"]
            if own[name] in sets
        }
    result = {
        "command": " ".join(["python", *sys.argv]),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, "
        f"{__import__('os').cpu_count()} cores",
        "held_out_ppl": cross,
        "rows": {name: data["data"]["rows"] for name, data in quality["data_sets"].items()}
        if cross
        else None,
        "each_adapter_best_on_its_own_set": own_set_wins,
        "adapters": {
            name: {k: entry[k] for k in ("file", "data", "bytes")}
            for name, entry in manifest["adapters"].items()
        },
        "conversion_check": manifest["base"].get("conversion_check"),
        "switching": measure(args.output, args.repeats, args.tokens),
    }
    text = json.dumps(result, indent=2) + "\n"
    if args.json:
        args.json.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
