"""A copy of a bench_speed.py work folder with one genai_config.json setting changed in both models.

    python3 scripts/gpu/config_variant.py WORK KIND     -> WORK-KIND

The copy hard-links every file (no disk), then rewrites ours/ and builder/genai_config.json
as new files, so WORK's own configs stay as they were. KIND:
  cudagraph       CUDA provider option enable_cuda_graph "1"
  mempattern-off  session_options.enable_mem_pattern false
  arena-same      CUDA provider option arena_extend_strategy kSameAsRequested
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any


def cuda_options(session_options: dict[str, Any]) -> dict[str, Any]:
    providers = session_options.setdefault("provider_options", [])
    cuda = next((p["cuda"] for p in providers if "cuda" in p), None)
    if cuda is None:
        cuda = {}
        providers.append({"cuda": cuda})
    return cuda


def change(config: dict[str, Any], kind: str) -> None:
    options = config["model"]["decoder"]["session_options"]
    if kind == "cudagraph":
        cuda_options(options)["enable_cuda_graph"] = "1"
    elif kind == "mempattern-off":
        options["enable_mem_pattern"] = False
    elif kind == "arena-same":
        cuda_options(options)["arena_extend_strategy"] = "kSameAsRequested"
    else:
        sys.exit(f"unknown variant {kind!r}")


def main(work: Path, kind: str) -> None:
    target = work.with_name(f"{work.name}-{kind}")
    shutil.rmtree(target, ignore_errors=True)
    subprocess.run(["cp", "-al", str(work), str(target)], check=True)
    for model in ("ours", "builder"):
        path = target / model / "genai_config.json"
        config = json.loads(path.read_text(encoding="utf-8"))
        change(config, kind)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(config, indent=4), encoding="utf-8")
        tmp.replace(path)  # a new file: the hard link to WORK's config is broken
    print(target)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
