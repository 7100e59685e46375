"""Issue 15 on the GPU: where a LoRA adapter's decode cost goes, one onnxruntime session, no genai.

    python3 scripts/gpu/ort_adapter_probe.py MODEL_DIR ADAPTER_FILE OUT_JSON [--runs 50] [--past 32]

Times one decode step (1 new token after PAST cached ones) of MODEL_DIR/model.onnx on the CUDA
EP, with every non-LoRA input bound on the device through IOBinding, and the LoRA inputs fed
four ways:
  none         not fed: the graph's own empty defaults (no adapter active)
  device       the adapter's tensors bound as CUDA OrtValues, copied once before timing
  host         the same tensors bound as CPU OrtValues: onnxruntime copies them every run
  run_options  ort.LoraAdapter(file) + RunOptions.add_active_adapter, the path genai takes
The difference between host/run_options and device is the per-run host-to-device copy;
device - none is what the LoRA kernels themselves cost.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

NP = {
    "tensor(float16)": np.float16,
    "tensor(float)": np.float32,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
}


def dim(d: object, past: int) -> int:
    if isinstance(d, int):
        return d
    name = str(d).lower()
    if "batch" in name:
        return 1
    if "past" in name:
        return past
    if "total" in name:
        return past + 1
    if "sequence" in name or "seq" in name:
        return 1
    raise SystemExit(f"unknown symbolic dimension {d!r}")


def session(model_dir: Path, providers: list[str], profile_prefix: str | None = None) -> Any:
    so = ort.SessionOptions()
    so.log_severity_level = 3
    if profile_prefix:
        so.enable_profiling = True
        so.profile_file_prefix = profile_prefix
    return ort.InferenceSession(str(model_dir / "model.onnx"), so, providers=providers)


def bind(sess: Any, feeds: dict[str, Any], device: str) -> Any:
    """An IOBinding with every feed bound as it is and every output on `device`."""
    io = sess.io_binding()
    for name, value in feeds.items():
        io.bind_ortvalue_input(name, value)
    for out in sess.get_outputs():
        io.bind_output(out.name, device, 0)
    return io


def profile(args: argparse.Namespace, providers: list[str], base_feeds: dict, lora: dict) -> dict:
    """Per-node time (onnxruntime's profiler) of 20 decode steps, without and with the adapter."""
    out: dict[str, object] = {}
    for name, extra in (("none", {}), ("device", lora)):
        sess = session(args.model_dir, providers, profile_prefix=f"/tmp/ort-probe-{name}")
        io = bind(sess, {**base_feeds, **extra}, args.device)
        for _ in range(20):
            sess.run_with_iobinding(io)
        events = json.loads(Path(sess.end_profiling()).read_text())
        runs = [e["dur"] for e in events if e.get("name") == "model_run"]
        nodes = [e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
        by_op: dict[str, float] = {}
        lora_us = 0.0
        for e in nodes:
            op = e.get("args", {}).get("op_name", "?")
            by_op[op] = by_op.get(op, 0.0) + e["dur"]
            if "lora" in e["name"].lower():
                lora_us += e["dur"]
        steps = max(len(runs), 1)
        out[name] = {
            "model_run_us_median": statistics.median(runs[5:]) if len(runs) > 5 else None,
            "node_us_per_step": round(sum(e["dur"] for e in nodes) / steps, 1),
            "lora_node_us_per_step": round(lora_us / steps, 1),
            "nodes_per_step": round(len(nodes) / steps, 1),
            "by_op_us_per_step": {
                k: round(v / steps, 1) for k, v in sorted(by_op.items(), key=lambda kv: -kv[1])[:12]
            },
        }
        print(name, out[name], flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir", type=Path)
    ap.add_argument("adapter", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--past", type=int, default=32)
    ap.add_argument(
        "--device", choices=["cuda", "cpu"], default="cuda", help="cpu: only to try the script"
    )
    ap.add_argument("--profile", action="store_true", help="Also: onnxruntime's per-node profile")
    args = ap.parse_args()
    dev = args.device
    providers = (
        ["CUDAExecutionProvider", "CPUExecutionProvider"]
        if dev == "cuda"
        else ["CPUExecutionProvider"]
    )

    reader = ort.AdapterFormat.read_adapter(str(args.adapter))
    # copies: the arrays would otherwise point into the reader's buffer
    params = {k: np.array(v.numpy(), copy=True) for k, v in reader.get_parameters().items()}
    adapter_bytes = sum(v.nbytes for v in params.values())
    sess = session(args.model_dir, providers)
    inputs = {i.name: i for i in sess.get_inputs()}
    # the LoRA inputs have empty defaults: onnxruntime lists them as overridable initializers
    overridable = {i.name for i in sess.get_overridable_initializers()}
    missing = sorted(set(params) - set(inputs) - overridable)
    if missing:
        raise SystemExit(f"adapter names not in the graph: {missing[:3]}")
    base_feeds: dict[str, ort.OrtValue] = {}
    for name, meta in inputs.items():
        if name in params:
            continue
        shape = [dim(d, args.past) for d in meta.shape]
        if name == "input_ids":
            arr = np.full(shape, 42, dtype=NP[meta.type])
        elif "attention_mask" in name:
            arr = np.ones(shape, dtype=NP[meta.type])
        elif "position_ids" in name:
            arr = np.full(shape, args.past, dtype=NP[meta.type])
        else:
            arr = (np.random.default_rng(0).standard_normal(shape) * 0.1).astype(NP[meta.type])
        base_feeds[name] = ort.OrtValue.ortvalue_from_numpy(arr, dev, 0)
    device_params = {k: ort.OrtValue.ortvalue_from_numpy(v, dev, 0) for k, v in params.items()}
    host_params = {k: ort.OrtValue.ortvalue_from_numpy(v) for k, v in params.items()}
    lora = ort.LoraAdapter()
    lora.Load(str(args.adapter))
    with_adapter = ort.RunOptions()
    with_adapter.add_active_adapter(lora)

    names = [o.name for o in sess.get_outputs()]

    def bound(extra: dict[str, ort.OrtValue]) -> Callable[[], np.ndarray]:
        io = bind(sess, {**base_feeds, **extra}, dev)
        return lambda: (sess.run_with_iobinding(io), io)[1]

    def unbound(run_options: ort.RunOptions | None) -> Callable[[], object]:
        # onnxruntime applies RunOptions' active adapters in Run, not in RunWithBinding
        return lambda: sess.run_with_ort_values(names, base_feeds, run_options)

    cases = {
        "none": bound({}),
        "device": bound(device_params),
        "host": bound(host_params),
        "none_unbound": unbound(None),
        "run_options": unbound(with_adapter),
    }
    result: dict[str, object] = {
        "model_dir": str(args.model_dir),
        "adapter": str(args.adapter),
        "adapter_bytes": adapter_bytes,
        "adapter_tensors": len(params),
        "past": args.past,
        "runs": args.runs,
        "onnxruntime": ort.__version__,
        "providers": sess.get_providers(),
    }
    logits: dict[str, np.ndarray] = {}
    ms: dict[str, dict[str, float]] = {}
    errors: dict[str, str] = {}
    for name, step in cases.items():
        try:
            for _ in range(5):
                out = step()
            samples = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                step()
                samples.append((time.perf_counter() - t0) * 1e3)
            ms[name] = {
                "median": round(statistics.median(samples), 3),
                "min": round(min(samples), 3),
            }
            if isinstance(out, ort.IOBinding):
                logits[name] = out.copy_outputs_to_cpu()[0].astype(np.float32)
            else:
                logits[name] = np.asarray(out[0].numpy(), dtype=np.float32)  # type: ignore[index]
        except Exception as exc:  # the other cases still count
            errors[name] = f"{type(exc).__name__}: {exc}"[:500]
        print(name, ms.get(name), errors.get(name, ""), flush=True)
    result["ms_per_run"], result["errors"] = ms, errors

    def diff(a: str, b: str) -> float | None:
        return float(np.abs(logits[a] - logits[b]).max()) if a in logits and b in logits else None

    def extra(a: str, b: str) -> float | None:
        return round(ms[a]["median"] - ms[b]["median"], 3) if a in ms and b in ms else None

    host_extra = extra("host", "device")
    result["host_copy_ms"] = host_extra
    result["host_copy_gb_per_s"] = (
        round(adapter_bytes / (host_extra / 1e3) / 1e9, 2)
        if host_extra and host_extra > 0
        else None
    )
    result["run_options_extra_ms"] = extra("run_options", "none_unbound")
    result["lora_kernels_ms"] = extra("device", "none")
    result["max_abs_logit_diff"] = {
        "device_vs_host": diff("device", "host"),
        "device_vs_run_options": diff("device", "run_options"),
        "device_vs_none": diff("device", "none"),
    }
    if args.profile:
        result["profile"] = profile(args, providers, base_feeds, device_params)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
