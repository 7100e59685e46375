"""Held-out perplexity of each adapter method on the real model (PyTorch + PEFT, float32).

Usage:
    .venv/bin/python scripts/bench_methods.py --out docs/benchmarks/methods-smollm2.json
Each method trains with the settings of workflows/smollm2-travel-cpu.yaml's lora step (only
`method` changes) through `olive-workflows run` of a recipe holding just that step, then the
trained PEFT adapter Olive's cache keeps is scored on the 39 held-out rows, response tokens
only, as `olive-workflows eval` scores its PyTorch reference.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "workflows" / "smollm2-travel-cpu.yaml"
METHODS = ("lora", "dora", "loha", "lokr")


def _recipe(work: Path, method: str) -> Path:
    data = yaml.safe_load(RECIPE.read_text(encoding="utf-8"))
    lora = next(s["lora"] for s in data["steps"] if "lora" in s)
    lora["method"] = method
    data["steps"] = [{"lora": lora}]
    data.pop("evaluate", None)
    data["name"] = f"methods-{method}"
    data["model"]["path"] = str(REPO / "models" / "smollm2-135m-instruct")
    for ds in data["data"].values():
        ds["files"] = [str(REPO / "data" / Path(f).name) for f in ds["files"]]
    data["cache"] = {"dir": str(work / "cache")}
    data["output"] = {"dir": str(work / f"out-{method}")}
    path = work / f"{method}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _score(model: Path, adapter: Path | None, examples: list[Any]) -> dict[str, float]:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from olive_workflows.runtime.evaluate import Score, _nll, _split_ids

    tokenizer = AutoTokenizer.from_pretrained(str(model))
    net: Any = AutoModelForCausalLM.from_pretrained(str(model), dtype=torch.float32)
    if adapter is not None:
        net = PeftModel.from_pretrained(net, str(adapter))
    net.eval()
    score = Score()
    with torch.no_grad():
        for example in examples:
            ids, start = _split_ids(lambda t: tokenizer(t).input_ids, example)
            logits = net(torch.tensor([ids])).logits[0].float().numpy()
            score.add(*_nll(logits, ids, start))
    return {"ppl": round(score.ppl, 4), "tokens": score.tokens}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=REPO / "docs/benchmarks/methods-smollm2.json")
    parser.add_argument("--methods", nargs="*", default=list(METHODS))
    args = parser.parse_args()
    from olive_workflows.runtime.evaluate import read_examples

    recipe = yaml.safe_load(RECIPE.read_text(encoding="utf-8"))
    held = recipe["data"]["travel_eval"]
    examples = read_examples(
        [REPO / "data" / Path(f).name for f in held["files"]], held["template"], held["split"]
    )
    model = REPO / "models" / "smollm2-135m-instruct"
    results: dict[str, Any] = {"base": _score(model, None, examples)}
    print(f"base: {results['base']}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-methods-") as tmp:
        work = Path(tmp)
        for method in args.methods:
            started = time.perf_counter()
            run = subprocess.run(
                [sys.executable, "-m", "olive_workflows", "run", str(_recipe(work, method)),
                 "--json", "-q"],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            seconds = round(time.perf_counter() - started, 1)
            if run.returncode != 0:
                results[method] = {"error": run.stderr.strip().splitlines()[-1:], "run_s": seconds}
                print(f"{method}: failed {results[method]}", flush=True)
                continue
            out = Path(json.loads(run.stdout)["output_dir"])
            record = json.loads((out / "olive-workflows.json").read_text(encoding="utf-8"))
            adapter = Path(record["pytorch"]["adapter"])
            results[method] = {**_score(model, adapter, examples), "run_s": seconds}
            print(f"{method}: {results[method]}", flush=True)
    args.out.write_text(
        json.dumps(
            {
                "script": "scripts/bench_methods.py",
                "command": " ".join([".venv/bin/python", *sys.argv]),
                "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
                "held_out_rows": len(examples),
                "results": results,
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
