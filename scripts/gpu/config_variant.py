"""A copy of a bench_speed.py work folder with one or more changes to the models in it.

    python3 scripts/gpu/config_variant.py WORK KIND[+KIND...]     -> WORK-KIND[+KIND...]

The copy hard-links every file (no disk), then writes each changed file as a new file, so
WORK's own files stay as they were. KIND, in both models (genai_config.json):
  cudagraph       CUDA provider option enable_cuda_graph "1"
  mempattern-off  session_options.enable_mem_pattern false
  arena-same      CUDA provider option arena_extend_strategy kSameAsRequested
in our model only (issue 15's experiments on the LoRA graph, scripts/gpu/graph_edits.py):
  ours-cudagraph  enable_cuda_graph "1" in ours/genai_config.json only
  ours-cudagraph-off  enable_cuda_graph "0" in ours only
  builder-foldif-cudagraph  the builder's model folded as foldif does, CUDA graph on: what
                  the builder's output reaches with what our recipe does to ours
  foldif          the LongRoPE `If` folded to its short cache; the context capped to match
  lorat-a         each LoRA A MatMul as FusedMatMul(x, A^T, transB=1), A^T in the adapters
  lorat-ab        the same for B
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from graph_edits import fold_longrope_if, transpose_lora

BOTH = ("cudagraph", "mempattern-off", "arena-same")
OURS = ("ours-cudagraph", "ours-cudagraph-off", "foldif", "lorat-a", "lorat-ab")
BUILDER = ("builder-foldif-cudagraph",)


def cuda_options(session_options: dict[str, Any]) -> dict[str, Any]:
    providers = session_options.setdefault("provider_options", [])
    cuda = next((p["cuda"] for p in providers if "cuda" in p), None)
    if cuda is None:
        cuda = {}
        providers.append({"cuda": cuda})
    return cuda


def change(config: dict[str, Any], kind: str) -> None:
    options = config["model"]["decoder"]["session_options"]
    if kind in ("cudagraph", "ours-cudagraph"):
        cuda_options(options)["enable_cuda_graph"] = "1"
    elif kind == "ours-cudagraph-off":
        cuda_options(options)["enable_cuda_graph"] = "0"
    elif kind == "mempattern-off":
        options["enable_mem_pattern"] = False
    elif kind == "arena-same":
        cuda_options(options)["arena_extend_strategy"] = "kSameAsRequested"


def rewrite_config(path: Path, kind: str) -> None:
    config = json.loads(path.read_text(encoding="utf-8"))
    change(config, kind)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(config, indent=4), encoding="utf-8")
    tmp.replace(path)  # a new file: the hard link to WORK's config is broken


def main(work: Path, kinds: str) -> None:
    wanted = kinds.split("+")
    known = BOTH + OURS + BUILDER
    unknown = [k for k in wanted if k not in known]
    if unknown:
        sys.exit(f"unknown variant {unknown[0]!r}: one of {', '.join(known)}")
    target = work.with_name(f"{work.name}-{kinds}")
    shutil.rmtree(target, ignore_errors=True)
    subprocess.run(["cp", "-al", str(work), str(target)], check=True)
    for kind in wanted:
        models = ("ours", "builder") if kind in BOTH else ("ours",)
        if kind in BUILDER:
            fold_longrope_if(target / "builder")
            rewrite_config(target / "builder" / "genai_config.json", "cudagraph")
            continue
        for model in models:
            if kind in ("foldif",):
                fold_longrope_if(target / model)
            elif kind in ("lorat-a", "lorat-ab"):
                transpose_lora(target / model, "AB" if kind == "lorat-ab" else "A")
            else:
                rewrite_config(target / model / "genai_config.json", kind)
    print(target)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
