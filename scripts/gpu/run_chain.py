"""Render workflows/phi35-travel.yaml, run it in ONE `olive run` on a given model, measure it."""

# Usage (on the GPU machine, after `source scripts/gpu/env.sh`):
#   python3 scripts/gpu/run_chain.py --model models/tiny-phi3 --name tiny \
#       --json .dev/results/tiny.json
# Variants (each is a patch of the rendered config, listed in the result's "patches"):
#   --order lora-awq       LoRA before AWQ (AWQ then carries the adapter unchanged)
#   --lora-dtype float16   LoRA's torch_dtype (the recipe renders bfloat16)
#   --target cpu           CPU EP: OnnxConversion float32 + ModelBuilder(metadata) fp32
#   --conversion-device D  OnnxConversion's device (Olive's default: cpu). cuda failed on the
#                          H100 (torch.export: "Tensor on device cuda:0 is not on the expected
#                          device cpu!", with `olive run` still exiting 0)
#   --expect-fail          exit 0 when the run fails (for orders/dtypes that must be refused)
# What it writes: per-pass seconds (Olive's run_history), wall time, peak GPU memory
# (nvidia-smi every 0.5 s, whole card), peak host RSS, model/AWQ/adapter sizes, and the
# onnxruntime-genai check (scripts/gpu/genai_check.py) with and without the adapter.
from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "workflows" / "phi35-travel.yaml"
AWQ_COMPAT = REPO / "src" / "olive_workflows" / "patches" / "awq_compat.py"
LONGROPE_EXPORT = REPO / "src" / "olive_workflows" / "patches" / "longrope_export.py"
sys.path.insert(0, str(Path(__file__).resolve().parent))


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def render(out: Path) -> dict:
    subprocess.run(
        [sys.executable, "-m", "olive_workflows", "render", str(RECIPE), "-o", str(out)],
        check=True,
        cwd=REPO,
    )
    return json.loads(out.read_text())


def patch(cfg: dict, args: argparse.Namespace, run_dir: Path) -> list[str]:
    """Point the rendered config at our model and folders; return what was changed."""
    done: list[str] = []
    model = cfg["input_model"]
    model["model_path"] = str(Path(args.model).resolve())
    load = model.setdefault("load_kwargs", {})
    load["trust_remote_code"] = False  # a local Phi3 checkpoint: no remote code to trust
    done.append("input_model.model_path (local model), trust_remote_code false")
    # AutoAWQ saves config.json with use_cache=false; without this the exported graph has
    # no present.* outputs and onnxruntime-genai fails: "Invalid output name: present.0.key"
    extra = load.setdefault("extra_args", {})
    if "use_cache" not in load and "use_cache" not in extra:
        extra["use_cache"] = True
        done.append("input_model.load_kwargs.extra_args.use_cache = true")
    passes: dict = cfg["passes"]
    awq_name = next(n for n, p in passes.items() if p["type"] == "AutoAWQQuantizer")
    lora_name = next(n for n, p in passes.items() if p["type"] == "LoRA")
    if not passes[awq_name].get("user_script"):
        passes[awq_name]["user_script"] = str(AWQ_COMPAT)
        done.append(f"passes.{awq_name}.user_script = awq_compat.py")
    conversion = next(p for p in passes.values() if p["type"] == "OnnxConversion")
    if not conversion.get("user_script"):
        # Phi-3.5-mini's LongRoPE: torch.export cannot trace transformers' data-dependent `if`
        conversion["user_script"] = str(LONGROPE_EXPORT)
        done.append("OnnxConversion.user_script = longrope_export.py")
    if args.order == "lora-awq":
        names = list(passes)
        i, j = names.index(awq_name), names.index(lora_name)
        names[i], names[j] = names[j], names[i]
        cfg["passes"] = passes = {n: passes[n] for n in names}
        done.append("order: LoRA before AWQ")
    if args.lora_dtype:
        passes[lora_name]["torch_dtype"] = args.lora_dtype
        done.append(f"passes.{lora_name}.torch_dtype = {args.lora_dtype}")
    if args.max_steps:
        passes[lora_name]["training_args"]["max_steps"] = args.max_steps
        done.append(f"passes.{lora_name}.training_args.max_steps = {args.max_steps}")
    if args.target == "cpu":
        cfg["systems"]["local_system"]["accelerators"] = [
            {"device": "cpu", "execution_providers": ["CPUExecutionProvider"]}
        ]
        for p in passes.values():
            if p["type"] == "OnnxConversion":
                p["torch_dtype"] = "float32"
            if p["type"] == "ModelBuilder":
                p["precision"] = "fp32"
        done.append("target CPU EP: OnnxConversion float32, ModelBuilder fp32")
    if args.conversion_device:
        for p in passes.values():
            if p["type"] == "OnnxConversion":
                p["device"] = args.conversion_device
        done.append(f"OnnxConversion.device = {args.conversion_device}")
    cfg["workflow_id"] = args.name.replace("-", "_")
    cfg["engine"]["cache_dir"] = str(run_dir / "cache")
    cfg["engine"]["output_dir"] = str(run_dir / "out")
    return done


class GpuMemory:
    """Samples the card's used memory with nvidia-smi while the run goes on."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> GpuMemory:
        if shutil.which("nvidia-smi"):
            self.proc = subprocess.Popen(
                [
                    "nvidia-smi",
                    "--query-gpu=memory.used",
                    "--format=csv,noheader,nounits",
                    "-lms",
                    "500",
                ],
                stdout=self.log.open("w"),
                stderr=subprocess.DEVNULL,
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait()

    def peak_mib(self) -> tuple[int | None, int | None]:
        text = self.log.read_text() if self.log.exists() else ""
        values = [int(v) for v in re.findall(r"^\s*(\d+)\s*$", text, re.M)]
        return (max(values), values[0]) if values else (None, None)


def pass_times(out_dir: Path) -> list[dict]:
    """Seconds per pass, in run order, from the footprint Olive writes into the output."""
    footprint = out_dir / "footprint.json"
    if not footprint.exists():
        return []
    nodes = [n for n in json.loads(footprint.read_text()).values() if n.get("parent_model_id")]
    nodes.sort(key=lambda n: n.get("start_time") or 0)
    return [
        {"pass": n["from_pass"], "seconds": round(n["end_time"] - n["start_time"], 2)}
        for n in nodes
        if n.get("start_time") and n.get("end_time")
    ]


def awq_output_bytes(cache_dir: Path) -> int | None:
    for run in cache_dir.rglob("run.json"):
        if json.loads(run.read_text()).get("pass_name") == "autoawqquantizer":
            models = run.parent / "models"
            if models.exists():
                return dir_bytes(models)
    return None


def error_lines(log: Path, limit: int = 12) -> list[str]:
    keep = [
        line[:400]
        for line in log.read_text(errors="replace").splitlines()
        if re.search(r"Error|error:|Exception|FAILED|No output model", line)
    ]
    return keep[-limit:]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--order", choices=["awq-lora", "lora-awq"], default="awq-lora")
    ap.add_argument("--lora-dtype", default=None)
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--target", choices=["recipe", "cpu"], default="recipe")
    ap.add_argument("--conversion-device", choices=["cpu", "cuda"], default=None)
    ap.add_argument("--expect-fail", action="store_true")
    ap.add_argument("--max-new", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--run-dir", type=Path, default=None, help="default: .dev/runs/NAME")
    args = ap.parse_args()

    run_dir = (args.run_dir or REPO / ".dev" / "runs" / args.name).resolve()
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    cfg = render(run_dir / "rendered.json")
    result: dict = {"name": args.name, "model": args.model, "patches": patch(cfg, args, run_dir)}
    config = run_dir / "config.json"
    config.write_text(json.dumps(cfg, indent=2))
    result["passes_in_order"] = [p["type"] for p in cfg["passes"].values()]
    result["model_bytes"] = dir_bytes(Path(args.model))

    log = run_dir / "olive.log"
    env = dict(os.environ, OLIVE_DISABLE_TELEMETRY="1", PYTHONUNBUFFERED="1")
    with GpuMemory(run_dir / "gpu_mem.txt") as mem:
        start = time.perf_counter()
        with log.open("w") as fh:
            rc = subprocess.run(
                [sys.executable, "-m", "olive", "run", "--config", str(config)],
                stdout=fh,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=REPO,
                check=False,
            ).returncode
        wall = time.perf_counter() - start
    peak, baseline = mem.peak_mib()
    out_dir = run_dir / "out"
    result |= {
        "olive_rc": rc,
        "wall_s": round(wall, 1),
        "gpu_peak_mib": peak,
        "gpu_baseline_mib": baseline,
        # ru_maxrss of the largest finished child so far: the olive process
        "host_peak_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024,
        "pass_seconds": pass_times(out_dir),
        "awq_output_bytes": awq_output_bytes(run_dir / "cache"),
        "output_files": {f.name: f.stat().st_size for f in sorted(out_dir.glob("*")) if f.is_file()}
        if out_dir.exists()
        else {},
        "errors": error_lines(log),
    }
    expected = ("model.onnx", "*.onnx_adapter", "genai_config.json")
    ok = rc == 0 and all(any(out_dir.glob(pattern)) for pattern in expected)
    if ok:
        from genai_check import check

        # The recipe targets the CUDA EP; the onnxruntime-genai CPU package runs it on the CPU EP.
        try:
            result["genai"] = check(out_dir, args.max_new, args.repeats, provider="cpu")
        except Exception as exc:  # the result file must still say what happened
            result["genai"] = {"error": repr(exc)[:600]}
            ok = False
        ok = ok and bool(result["genai"].get("sequences_differ"))
    result["ok"] = ok
    args.json.parent.mkdir(parents=True, exist_ok=True)
    # the whole Olive log beside the result, compressed (the GPU machine keeps nothing)
    with log.open("rb") as src, gzip.open(args.json.with_suffix(".log.gz"), "wb") as dst:
        shutil.copyfileobj(src, dst)
    args.json.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: result[k] for k in ("name", "ok", "olive_rc", "wall_s")}))
    return 0 if ok != args.expect_fail else 1


if __name__ == "__main__":
    sys.exit(main())
