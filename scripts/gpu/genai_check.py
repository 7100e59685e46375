"""Load an Olive output folder with onnxruntime-genai and generate with and without the adapter."""

# Usage: python scripts/gpu/genai_check.py OUTPUT_DIR [--json RESULT.json] [--max-new 32]
#        [--repeats 3] [--provider cpu]
# Prints one JSON object: token ids, tokens/s and whether the two sequences differ; exit 1 if
# there is no adapter file or the adapter changes nothing.
# --provider cpu clears the providers of genai_config.json: the onnxruntime-genai CPU package
# (constraints/gpu.txt) then runs a model built for the CUDA EP on the CPU EP.
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

PROMPT = "<|user|>\nWhat's a must-see in Paris?<|end|>\n<|assistant|>\n"


def _generate(og, model, tokenizer, max_new: int, adapters=None) -> dict:  # type: ignore[no-untyped-def]
    ids = tokenizer.encode(PROMPT)
    params = og.GeneratorParams(model)
    # greedy and a fixed length, so both runs time the same number of tokens
    params.set_search_options(
        do_sample=False, max_length=len(ids) + max_new, min_length=len(ids) + max_new
    )
    generator = og.Generator(model, params)
    if adapters is not None:
        generator.set_active_adapter(adapters, "travel")
    start = time.perf_counter()
    generator.append_tokens(ids)
    new = 0
    while not generator.is_done():
        generator.generate_next_token()
        new += 1
    end = time.perf_counter()
    seq = [int(t) for t in generator.get_sequence(0)]
    return {
        "prompt_tokens": len(ids),
        "new_tokens": new,
        "seconds": round(end - start, 4),
        # end-to-end rate: prompt processing included (genai runs the prompt lazily)
        "tokens_per_s": round(new / (end - start), 1),
        "ids": seq[len(ids) :],
        "text": tokenizer.decode(seq[len(ids) :])[:200],
    }


def check(out_dir: Path, max_new: int = 32, repeats: int = 3, provider: str = "config") -> dict:
    import onnxruntime_genai as og

    adapter_files = sorted(out_dir.glob("*.onnx_adapter"))
    result: dict = {"dir": str(out_dir), "genai": og.__version__, "provider": provider}
    try:
        import onnxruntime

        result["onnxruntime"] = onnxruntime.__version__
        result["ort_providers_available"] = onnxruntime.get_available_providers()
    except ImportError:
        pass
    session = json.loads((out_dir / "genai_config.json").read_text())["model"]["decoder"].get(
        "session_options", {}
    )
    # what genai_config asks for (cleared below for --provider cpu)
    result["genai_config_providers"] = [
        name for option in session.get("provider_options", []) for name in option
    ]
    config = og.Config(str(out_dir))
    if provider == "cpu":
        config.clear_providers()
    model = og.Model(config)
    tokenizer = og.Tokenizer(model)
    _generate(og, model, tokenizer, 4)  # warm-up: session start and first-run allocations
    base = [_generate(og, model, tokenizer, max_new) for _ in range(repeats)]
    result["base"] = base[-1] | {"tokens_per_s_all": [b["tokens_per_s"] for b in base]}
    if adapter_files:
        adapters = og.Adapters(model)
        adapters.load(str(adapter_files[0]), "travel")
        tuned = [_generate(og, model, tokenizer, max_new, adapters) for _ in range(repeats)]
        result["adapter_file"] = adapter_files[0].name
        result["adapter"] = tuned[-1] | {"tokens_per_s_all": [t["tokens_per_s"] for t in tuned]}
        result["sequences_differ"] = result["base"]["ids"] != result["adapter"]["ids"]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--max-new", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--provider", choices=["config", "cpu"], default="config")
    args = parser.parse_args()
    result = check(args.out_dir, args.max_new, args.repeats, provider=args.provider)
    text = json.dumps(result, indent=1)
    if args.json:
        args.json.write_text(text)
    print(text)
    return 0 if result.get("sequences_differ") else 1


if __name__ == "__main__":
    sys.exit(main())
