"""Decode speed of a recipe's output against onnxruntime-genai's own builder, side by side."""

# Usage (issue 15):
#   .venv/bin/python scripts/bench_speed.py --model /tmp/bs/tiny --recipe /tmp/bs/recipe.yaml \
#       --device cpu --repeats 5 --work /tmp/bs/work --out /tmp/bs/speed.json
#   .venv/bin/python scripts/bench_speed.py --table /tmp/bs/speed.json        # table only
# Two-environment use (the lent GPU machine, scripts/gpu/run_speed.sh):
#   python3 scripts/bench_speed.py --build-only --parallel-build --model M --recipe R \
#       --device cuda --work W                                   # the build environment
#   (source scripts/gpu/env_cuda_ep.sh; python3 scripts/bench_speed.py --reuse W --device cuda)
# What it does, in --work:
#   1. build (unless --skip-build / --reuse): the recipe (its steps `lora -> model_builder ->
#      extract_adapters`) copied to W/recipe.yaml with model.path = --model, output.dir =
#      W/ours, cache.dir = W/cache, data files made absolute, run by `python -m olive_workflows
#      run --json`; and the baseline, `python -m onnxruntime_genai.models.builder -i MODEL -o
#      W/builder -p PRECISION -e DEVICE -c W/builder-cache --extra_options <the recipe's int4_*
#      settings>`, read from the rendered config (rendered first, then checked against the
#      run's <out>.olive.json; LoRA node names in int4_nodes_to_exclude are left out: the
#      baseline has no LoRA nodes). --parallel-build runs both at once. -> W/build.json.
#   2. time: one worker process per model (builder, ours), loaded one after the other, driven
#      in lockstep so only one runs at a time, requests interleaved A/B/C/(D)/A/B/C/...:
#      A builder base, B ours without adapter, C ours with the adapter file, D ours with a
#      second adapter (several adapters on one base), when there is one (--second-adapter).
#      A request: greedy, a prompt of exactly --prompt-tokens token ids, exactly --new-tokens
#      new tokens (min_length = max_length). prefill = append_tokens + the first token;
#      decode tokens/s = (new tokens - 1) / (time from the first new token to the last).
#   3. the memory-bandwidth bound: bytes read per decoded token ~ the weights (model.onnx +
#      model.onnx.data, + the adapter file when active); bound = bandwidth / bytes, with the
#      bandwidth measured here (CPU: numpy copy of 1 GiB, best of 5, read + write; CUDA:
#      torch device-to-device copy of 4 GiB); share = measured decode tokens/s / bound.
#   4. the graph facts that explain the speed (node count, op types, fused ops, genai_config
#      share buffer / CUDA graph), the ratios against the builder and the targets.
from __future__ import annotations

import argparse
import collections
import contextlib
import itertools
import json
import os
import queue
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchlib import (
    REPO,
    calibration_note,
    children_cpu_s,
    cpu_busy_s,
    cpu_calibration,
    fmt_load,
    machine,
)

DISTS = (
    "onnxruntime", "onnxruntime-gpu", "onnxruntime-genai", "onnxruntime-genai-cuda", "onnx",
    "olive-ai", "transformers", "peft", "torch", "numpy",
)  # fmt: skip
TARGET_BASE = 0.9  # ours without adapter / builder base (decode tokens/s medians)
TARGET_ADAPTER = 0.7  # ours with the adapter / builder base
# Any fixed text; the prompt is its first --prompt-tokens token ids (repeated if too short).
PROMPT_TEXT = (
    "I am planning a two week trip through Italy in the spring with my family. We want to "
    "see Rome, Florence and Venice, eat well, avoid the longest queues and take the train "
    "between cities. What should we book in advance, and what is the best thing to see in "
    "each city if we only have a few days?"
)
MARK = "@@bench "  # worker replies start with this; anything else on stdout is ignored
FUSED_OPS = ("GroupQueryAttention", "MatMulNBits", "SkipSimplifiedLayerNormalization")
WORKER_TIMEOUT_S = 900.0


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- 1. build


def pin_cores(text: str) -> dict[str, list[int]]:
    """'2-5/6-9' -> {'builder': [2, 3, 4, 5], 'ours': [6, 7, 8, 9]} (ranges or commas)."""

    def cores(part: str) -> set[int]:
        found: set[int] = set()
        for piece in part.split(","):
            low, _, high = piece.partition("-")
            found |= set(range(int(low), int(high or low) + 1))
        return found

    try:
        builder, ours = text.split("/")
        pinned = {"builder": cores(builder), "ours": cores(ours)}
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected B/O core lists such as 2-5/6-9, got {text!r}"
        ) from None
    usable = os.sched_getaffinity(0)
    if not all(pinned.values()) or not set().union(*pinned.values()) <= usable:
        raise argparse.ArgumentTypeError(f"{text!r}: cores must be among {sorted(usable)}")
    return {name: sorted(found) for name, found in pinned.items()}


def child_env() -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1", OLIVE_DISABLE_TELEMETRY="1")
    # src/ first, so a checkout that is not installed (the GPU machine) runs the same code
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH")) if p
    )
    return env


def write_recipe(recipe: Path, model: Path, work: Path) -> Path:
    """The recipe with the model, output and cache pointed into `work`, data paths absolute."""
    import yaml

    data = yaml.safe_load(recipe.read_text(encoding="utf-8"))
    data["model"]["path"] = str(model.resolve())
    for dataset in (data.get("data") or {}).values():
        if "files" in dataset:
            dataset["files"] = [str((recipe.parent / f).resolve()) for f in dataset["files"]]
    data["output"] = {**(data.get("output") or {}), "dir": str(work / "ours")}
    data["cache"] = {**(data.get("cache") or {}), "dir": str(work / "cache")}
    data.pop("track", None)  # no MLflow run for a benchmark
    steps = [next(iter(step)) for step in data["steps"]]
    if steps[-3:] != ["lora", "model_builder", "extract_adapters"]:
        log(f"note: the recipe's steps are {steps}, not lora -> model_builder -> extract_adapters")
    path = work / "recipe.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


class Logged:
    """A build command started now, its stderr to a log file; `wait` exits on failure."""

    def __init__(self, cmd: list[str], log_file: Path, cwd: Path) -> None:
        self.cmd, self.log_file = cmd, log_file
        self.start = time.perf_counter()
        self.proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=log_file.open("w"),
            text=True,
        )

    def wait(self) -> tuple[float, str]:
        """(wall seconds, stdout)."""
        stdout, _ = self.proc.communicate()
        seconds = time.perf_counter() - self.start
        if self.proc.returncode != 0:
            tail = self.log_file.read_text(errors="replace")[-3000:]
            sys.exit(
                f"failed ({self.proc.returncode}): {' '.join(self.cmd)}\n{stdout[-2000:]}\n{tail}"
            )
        return seconds, stdout


def builder_options(mb: dict[str, Any], precision: str) -> tuple[list[str], str]:
    """The baseline's --extra_options: the recipe's ModelBuilder int4 settings, as Olive passes
    them (it forwards every set pass parameter, extra_options last)."""
    if not mb or mb.get("metadata_only"):
        sys.exit("the recipe has no model_builder step: nothing to compare with the builder")
    if mb.get("precision") != precision:
        sys.exit(f"the recipe's model_builder precision is {mb.get('precision')}, not {precision}")
    if precision != "int4":
        return [], str(mb["precision"])
    keys = ("int4_block_size", "int4_is_symmetric", "int4_accuracy_level", "int4_algo_config",
            "int4_op_types_to_quantize", "int4_nodes_to_exclude", "exclude_embeds",
            "exclude_lm_head")  # fmt: skip
    chosen = {k: mb[k] for k in keys if mb.get(k) is not None}
    chosen |= {k: v for k, v in (mb.get("extra_options") or {}).items() if k in keys}
    # The recipe keeps its LoRA MatMuls out of int4 by name; the baseline has no such nodes.
    nodes = [n for n in chosen.pop("int4_nodes_to_exclude", []) if "lora_" not in n]
    if nodes:
        chosen["int4_nodes_to_exclude"] = nodes
    out = []
    for key, value in chosen.items():
        text = str(value)
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, list):
            text = ("/" if key == "int4_op_types_to_quantize" else ",").join(map(str, value))
        out.append(f"{key}={text}")
    return out, mb["precision"]


def model_builder_pass(config_file: Path) -> dict[str, Any]:
    rendered = json.loads(config_file.read_text(encoding="utf-8"))
    passes = [p for p in rendered["passes"].values() if p.get("type") == "ModelBuilder"]
    return passes[0] if passes else {}


def build(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Ours (the recipe) and the baseline (the builder, with the recipe's int4 settings)."""
    work.mkdir(parents=True, exist_ok=True)
    recipe = write_recipe(args.recipe.resolve(), args.model, work)
    # rendered first, so the baseline knows its options before (or while) the recipe runs
    rendered = work / "rendered.json"
    render = [sys.executable, "-m", "olive_workflows", "render", str(recipe), "-o", str(rendered)]
    Logged(render, work / "render.log", work).wait()
    mb = model_builder_pass(rendered)
    extra, precision = builder_options(mb, args.precision)
    shutil.rmtree(work / "builder", ignore_errors=True)
    ep = "cuda" if args.device == "cuda" else "cpu"
    cmd = [sys.executable, "-m", "olive_workflows", "run", str(recipe), "--json"]
    bcmd = [
        sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(args.model.resolve()),
        "-o", str(work / "builder"), "-p", precision, "-e", ep, "-c", str(work / "builder-cache"),
    ]  # fmt: skip
    if extra:
        bcmd += ["--extra_options", *extra]
    log(f"building ours: olive_workflows run {recipe}")
    ours = Logged(cmd, work / "ours-build.log", work)
    if not args.parallel_build:
        ours_s, stdout = ours.wait()
    log(f"building the baseline: {' '.join(bcmd[1:])}")
    builder_s, _ = Logged(bcmd, work / "builder-build.log", work).wait()
    if args.parallel_build:
        ours_s, stdout = ours.wait()
    summary = json.loads(stdout)
    if model_builder_pass(Path(summary["config"])) != mb:
        sys.exit(f"the run's {summary['config']} has other model_builder settings than {rendered}")
    info = {
        "model": str(args.model.resolve()),
        "recipe": str(args.recipe.resolve()),
        "recipe_copy": str(recipe),
        "rendered_config": summary["config"],
        "parallel_build": args.parallel_build,
        "ours_cmd": " ".join(cmd[1:]),
        "ours_wall_s": round(ours_s, 1),
        "ours_passes": [
            {"name": p["name"], "status": p["status"], "seconds": round(p["seconds"], 1)}
            for p in summary["passes"]
        ],
        "builder_cmd": " ".join(["python", *bcmd[1:]]),
        "builder_wall_s": round(builder_s, 1),
        "builder_extra_options": extra,
    }
    (work / "build.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    log(f"built: ours {ours_s:.1f} s, builder {builder_s:.1f} s")
    return info


# ---------------------------------------------------------------- what the models are


def weights_bytes(model_dir: Path) -> int:
    """model.onnx + its external data: what a decode step reads (the adapter aside)."""
    config = json.loads((model_dir / "genai_config.json").read_text(encoding="utf-8"))
    name = config["model"]["decoder"].get("filename", "model.onnx")
    return sum(
        p.stat().st_size for p in (model_dir / name, model_dir / f"{name}.data") if p.is_file()
    )


def graph_facts(model_dir: Path) -> dict[str, Any]:
    import onnx

    config = json.loads((model_dir / "genai_config.json").read_text(encoding="utf-8"))
    decoder = config["model"]["decoder"]
    graph = onnx.load(
        str(model_dir / decoder.get("filename", "model.onnx")), load_external_data=False
    ).graph
    ops = collections.Counter(node.op_type for node in graph.node)
    provider_options = decoder.get("session_options", {}).get("provider_options", [])
    providers = {name: opts for entry in provider_options for name, opts in entry.items()}
    return {
        "nodes": len(graph.node),
        "op_types_top10": dict(ops.most_common(10)),
        "fused": {op: ops.get(op, 0) for op in FUSED_OPS},
        "graph_inputs": len(graph.input),
        "past_present_share_buffer": config.get("search", {}).get("past_present_share_buffer"),
        "providers": list(providers),
        "enable_cuda_graph": providers.get("cuda", {}).get("enable_cuda_graph"),
        "weights_bytes": weights_bytes(model_dir),
    }


def second_adapter(choice: str, ours: Path, first: Path, work: Path) -> Path | None:
    """auto: another *.onnx_adapter beside the first; synthetic: the first one's tensors,
    each shuffled (same names, shapes, dtypes: an adapter of the same rank and targets)."""
    if choice == "none":
        return None
    if choice == "auto":
        others = sorted(p for p in ours.glob("*.onnx_adapter") if p != first)
        return others[0] if others else None
    if choice != "synthetic":
        return Path(choice).resolve()
    import numpy as np
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    src = ort.AdapterFormat.read_adapter(str(first))
    shuffled = {}
    for name, value in sorted(src.get_parameters().items()):
        array = value.numpy()
        flat = array.reshape(-1).copy()
        rng.shuffle(flat)
        shuffled[name] = ort.OrtValue.ortvalue_from_numpy(flat.reshape(array.shape))
    out = ort.AdapterFormat()
    out.set_adapter_version(src.get_adapter_version())
    out.set_model_version(src.get_model_version())
    out.set_parameters(shuffled)
    path = work / "adapter2-synthetic.onnx_adapter"
    out.export_adapter(str(path))
    return path


# ---------------------------------------------------------------- 2. the worker


def worker_main(args: argparse.Namespace) -> None:
    """One model in one process: hello line, then one JSON reply per request line on stdin."""
    if args.worker_cores:
        os.sched_setaffinity(0, {int(c) for c in args.worker_cores.split(",")})
    import onnxruntime_genai as og

    def reply(obj: dict[str, Any]) -> None:
        sys.stdout.write(MARK + json.dumps(obj) + "\n")
        sys.stdout.flush()

    model_dir = args.worker
    hello: dict[str, Any] = {"genai": og.__version__, "pid": os.getpid()}
    hello["cores"] = sorted(os.sched_getaffinity(0))
    start = time.perf_counter()
    config = og.Config(str(model_dir))
    with contextlib.suppress(Exception):  # onnxruntime's own log at FATAL, as ChatSession does
        config.overlay(
            json.dumps({"model": {"decoder": {"session_options": {"log_severity_level": 4}}}})
        )
    config_providers = graph_facts_providers(model_dir)
    if args.device == "cpu":
        config.clear_providers()
    elif "cuda" not in config_providers:
        config.clear_providers()
        config.append_provider("cuda")
        hello["provider_forced"] = "cuda"
    model = og.Model(config)
    hello["model_load_s"] = round(time.perf_counter() - start, 3)
    tokenizer = og.Tokenizer(model)
    adapters = None
    hello["adapter_load_s"] = {}
    if args.worker_adapter:
        adapters = og.Adapters(model)
        for spec in args.worker_adapter:
            name, path = spec.split("=", 1)
            t0 = time.perf_counter()
            adapters.load(path, name)
            hello["adapter_load_s"][name] = round(time.perf_counter() - t0, 6)
        if args.device == "cuda":
            from olive_workflows.runtime.adapter_residency import (
                HOST_BACKED_FROM,
                genai_version_tuple,
            )

            # genai >= 0.16 keeps adapters in host memory: copied to the GPU every token
            hello["adapters_in_host_memory"] = (
                genai_version_tuple(og.__version__) >= HOST_BACKED_FROM
            )
    ids = list(tokenizer.encode(PROMPT_TEXT))
    while len(ids) < args.prompt_tokens:
        ids += list(tokenizer.encode(" " + PROMPT_TEXT))
    prompt = [int(t) for t in ids[: args.prompt_tokens]]
    hello["prompt_ids"] = prompt
    total = len(prompt) + args.new_tokens

    def generate(adapter: str | None) -> dict[str, Any]:
        t0 = time.perf_counter()
        params = og.GeneratorParams(model)
        params.set_search_options(do_sample=False, max_length=total, min_length=total)
        generator = og.Generator(model, params)
        t1 = time.perf_counter()
        if adapter is not None:
            generator.set_active_adapter(adapters, adapter)
        t2 = time.perf_counter()
        generator.append_tokens(prompt)  # genai runs the prompt here
        generator.generate_next_token()
        new = [int(generator.get_next_tokens()[0])]
        t_first = time.perf_counter()
        stamps = [t_first]
        while not generator.is_done():
            generator.generate_next_token()
            new.append(int(generator.get_next_tokens()[0]))
            stamps.append(time.perf_counter())
        t_last = stamps[-1]
        token_ms = sorted((b - a) * 1e3 for a, b in itertools.pairwise(stamps))
        del generator
        return {
            "create_s": t1 - t0,
            "set_adapter_s": t2 - t1,
            "prefill_s": t_first - t2,
            "decode_s": t_last - t_first,
            "new_tokens": len(new),
            "ids": new,
            # one decode step's time: the median says whether the whole request was slower,
            # the largest whether one step stalled
            "token_ms_median": statistics.median(token_ms) if token_ms else None,
            "token_ms_max": token_ms[-1] if token_ms else None,
        }

    # warm-up: session start, first-run allocations, each adapter once
    hello["warmup_errors"] = {}
    for adapter in [None, *(s.split("=", 1)[0] for s in args.worker_adapter or [])]:
        try:
            generate(adapter)
        except Exception as exc:
            hello["warmup_errors"][adapter or "base"] = short(exc)
    reply(hello)
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("quit"):
            break
        try:
            reply({"ok": True, **generate(request.get("adapter"))})
        except Exception as exc:
            reply({"ok": False, "error": short(exc)})


def graph_facts_providers(model_dir: Path) -> list[str]:
    config = json.loads((model_dir / "genai_config.json").read_text(encoding="utf-8"))
    options = config["model"]["decoder"].get("session_options", {}).get("provider_options", [])
    return [name for entry in options for name in entry]


def short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:600]}"


class Worker:
    """The driver's handle on one worker process."""

    def __init__(self, name: str, model_dir: Path, args: argparse.Namespace,
                 adapters: dict[str, Path], work: Path) -> None:  # fmt: skip
        self.name = name
        cmd = [
            sys.executable, __file__, "--worker", str(model_dir), "--device", args.device,
            "--prompt-tokens", str(args.prompt_tokens), "--new-tokens", str(args.new_tokens),
        ]  # fmt: skip
        for adapter, path in adapters.items():
            cmd += ["--worker-adapter", f"{adapter}={path}"]
        self.stderr_path = work / f"worker-{name}.log"
        if args.pin_cores:  # the worker pins itself before it loads anything
            cmd += ["--worker-cores", ",".join(map(str, args.pin_cores[name]))]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            stderr=self.stderr_path.open("w"), env=child_env(), bufsize=1,
        )  # fmt: skip
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.hello = self._read()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(MARK):
                self.lines.put(line[len(MARK) :])
        self.lines.put(None)

    def _read(self) -> dict[str, Any]:
        try:
            line = self.lines.get(timeout=WORKER_TIMEOUT_S)
        except queue.Empty:
            line = None
        if line is None:
            lines = self.stderr_path.read_text(errors="replace").strip().splitlines()
            tail = " | ".join(lines[-3:])[-1000:]  # the exception, not the traceback's head
            return {"ok": False, "error": f"worker {self.name} died or hung: {tail}", "dead": True}
        return json.loads(line)

    def ask(self, adapter: str | None) -> dict[str, Any]:
        if self.proc.poll() is not None:
            return {"ok": False, "error": f"worker {self.name} exited", "dead": True}
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"adapter": adapter}) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps({"quit": True}) + "\n")
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# ---------------------------------------------------------------- 3. bandwidth, contention


def copy_seconds_cuda(n: int) -> tuple[list[float], str]:
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError("torch.cuda is not available")
    src = torch.ones(n, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    dst.copy_(src)
    samples = []
    for _ in range(5):
        begin = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        begin.record()
        dst.copy_(src)
        end.record()
        torch.cuda.synchronize()
        samples.append(begin.elapsed_time(end) / 1e3)
    return samples, torch.cuda.get_device_name(0)


def copy_seconds_cpu(n: int) -> list[float]:
    import numpy as np

    src = np.ones(n, dtype=np.uint8)
    dst = np.zeros(n, dtype=np.uint8)  # both touched: no page faults in the timed copies
    samples = []
    for _ in range(5):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        samples.append(time.perf_counter() - t0)
    return samples


def bandwidth_main(device: str) -> None:
    """Bytes moved per second by a big copy (read + write), best of 5, as one JSON line."""
    result: dict[str, Any] = {"device": device}
    if device == "cuda":
        n = 4 * 2**30
        try:
            samples, result["gpu"] = copy_seconds_cuda(n)
        except Exception as exc:  # no bound then, and the table says why
            print(json.dumps(result | {"error": short(exc)}))
            return
        result["what"] = "torch device-to-device copy, 4 GiB"
    else:
        n = 2**30
        samples = copy_seconds_cpu(n)
        result["what"] = "numpy copy, 1 GiB, one thread"
    best = min(samples)
    result |= {
        "bytes_per_copy": 2 * n,  # read + write
        "best_s": round(best, 5),
        "gb_per_s": round(2 * n / best / 1e9, 2),
        "samples_gb_per_s": [round(2 * n / s / 1e9, 2) for s in samples],
    }
    print(json.dumps(result))


def measure_bandwidth(device: str) -> dict[str, Any]:
    """In a child process, so the driver holds no CUDA context or 8 GiB while workers run."""
    proc = subprocess.run(
        [sys.executable, __file__, "--bandwidth", device],
        capture_output=True, text=True, env=child_env(), check=False,
    )  # fmt: skip
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"device": device, "error": proc.stderr[-800:]}


@contextlib.contextmanager
def contention() -> Iterator[dict[str, float]]:
    """CPU seconds OTHER processes used meanwhile, and their share of all cores."""
    info: dict[str, float] = {}
    busy, ours, start = cpu_busy_s(), children_cpu_s(), time.perf_counter()
    yield info
    # children_cpu_s counts the workers once they are reaped: the block must end after that
    others = (cpu_busy_s() - busy) - (children_cpu_s() - ours)
    wall = time.perf_counter() - start
    info["others_cpu_s"] = round(max(others, 0.0), 1)
    info["others_share"] = round(max(others, 0.0) / (wall * (os.cpu_count() or 1)), 2)


def wait_for_quiet(max_wait: float, threshold: float = 0.15, window: float = 3.0) -> float:
    start = time.perf_counter()
    while max_wait > 0:
        busy, t0 = cpu_busy_s(), time.perf_counter()
        time.sleep(window)
        share = (cpu_busy_s() - busy) / ((time.perf_counter() - t0) * (os.cpu_count() or 1))
        if share <= threshold or time.perf_counter() - start >= max_wait:
            break
    return round(time.perf_counter() - start, 1)


# ---------------------------------------------------------------- 2. the timing run


def row_stats(samples: list[dict[str, Any]]) -> dict[str, Any]:
    rates = [(s["new_tokens"] - 1) / s["decode_s"] for s in samples if s["decode_s"] > 0]
    ends = [s["new_tokens"] / (s["prefill_s"] + s["decode_s"]) for s in samples]
    return {
        "n": len(samples),
        "new_tokens": samples[0]["new_tokens"],
        "tok_s_median": round(statistics.median(rates), 1),
        "tok_s_min": round(min(rates), 1),
        "tok_s_max": round(max(rates), 1),
        "tok_s_samples": [round(r, 1) for r in rates],
        "prefill_ms_median": round(statistics.median(s["prefill_s"] for s in samples) * 1e3, 2),
        "prefill_ms_min": round(min(s["prefill_s"] for s in samples) * 1e3, 2),
        "end_to_end_tok_s_median": round(statistics.median(ends), 1),
        "set_adapter_ms_median": round(
            statistics.median(s["set_adapter_s"] for s in samples) * 1e3, 3
        ),
        "generator_create_ms_median": round(
            statistics.median(s["create_s"] for s in samples) * 1e3, 3
        ),
        "token_ids": samples[0]["ids"],
        # every request of the row decoded the same ids (a replayed graph that kept another
        # request's adapter would not)
        "token_ids_all_same": all(s["ids"] == samples[0]["ids"] for s in samples),
        "token_ms_median_per_request": [
            round(s["token_ms_median"], 3) for s in samples if s.get("token_ms_median")
        ],
        "token_ms_max_per_request": [
            round(s["token_ms_max"], 3) for s in samples if s.get("token_ms_max")
        ],
    }


def timing(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    ours_dir, builder_dir = work / "ours", work / "builder"
    for folder in (ours_dir, builder_dir):
        if not (folder / "genai_config.json").is_file():
            sys.exit(f"{folder} has no genai_config.json: build first (without --skip-build)")
    adapter_files = sorted(ours_dir.glob("*.onnx_adapter"))
    if not adapter_files:
        sys.exit(f"no *.onnx_adapter in {ours_dir}: the recipe must end in extract_adapters")
    adapters = {} if args.base_only else {"adapter": adapter_files[0]}
    second = None
    if not args.base_only:
        try:
            second = second_adapter(args.second_adapter, ours_dir, adapter_files[0], work)
        except Exception as exc:  # the other rows still count
            log(f"no second adapter ({args.second_adapter}): {short(exc)}")
    if second is not None:
        adapters["adapter2"] = second
    # (row, worker, adapter name)
    rows = [("builder_base", "builder", None), ("ours_base", "ours", None)]
    if not args.base_only:
        rows.append(("ours_adapter", "ours", "adapter"))
    if second is not None:
        rows.append(("ours_adapter2", "ours", "adapter2"))

    waited = wait_for_quiet(args.quiet_wait if args.device == "cpu" else 0)
    result: dict[str, Any] = {"waited_for_quiet_s": waited, "adapters": {}}
    samples: dict[str, list[dict[str, Any]]] = {row: [] for row, _, _ in rows}
    errors: dict[str, str] = {}
    with contention() as noise:
        # one after the other: the builder's model, then ours with its adapters
        workers: dict[str, Worker] = {}
        load_start = time.perf_counter()
        workers["builder"] = Worker("builder", builder_dir, args, {}, work)
        workers["ours"] = Worker("ours", ours_dir, args, adapters, work)
        result["load_wall_s"] = round(time.perf_counter() - load_start, 1)
        for name, worker in workers.items():
            hello = worker.hello
            result[f"{name}_worker"] = {k: v for k, v in hello.items() if k != "prompt_ids"}
            if hello.get("dead"):
                errors |= {row: hello["error"] for row, w, _ in rows if w == name}
        for row, w, adapter in rows:
            warm = workers[w].hello.get("warmup_errors", {}).get(adapter or "base")
            if warm and row not in errors:
                errors[row] = f"warm-up: {warm}"
        prompts = {
            n: w.hello.get("prompt_ids") for n, w in workers.items() if "prompt_ids" in w.hello
        }
        if len({json.dumps(p) for p in prompts.values()}) > 1:
            sys.exit(f"the two tokenizers give different prompt ids: {prompts}")
        result["prompt_ids"] = next(iter(prompts.values()), None)
        log(f"timing {args.repeats} interleaved repeats of {[r for r, _, _ in rows]}")
        for i in range(args.repeats):
            for row, w, adapter in rows:
                if row in errors:
                    continue
                answer = workers[w].ask(adapter)
                if not answer.get("ok"):
                    errors[row] = answer.get("error", "?")
                    log(f"{row}: {errors[row][:300]}")
                    continue
                samples[row].append(answer)
                time.sleep(args.pause)  # lets the last request's thread pool go idle
            if any(samples.values()) and (i == 0 or (i + 1) % 5 == 0):
                line = ", ".join(
                    f"{r} {(s[-1]['new_tokens'] - 1) / s[-1]['decode_s']:.0f}"
                    for r, s in samples.items()
                    if s
                )
                log(f"repeat {i + 1}: tok/s {line}")
        if second is not None and not {"ours_adapter", "ours_adapter2"} & set(errors):
            result["switching"] = switching(workers["ours"], args)
        for worker in workers.values():
            worker.close()
    result["contention"] = noise
    result["rows"] = {row: row_stats(s) for row, s in samples.items() if s}
    result["errors"] = errors
    result["row_adapter"] = {row: adapter for row, _, adapter in rows}
    for name, path in adapters.items():
        result["adapters"][name] = {"file": str(path), "bytes": path.stat().st_size}
    result["models"] = {"builder": graph_facts(builder_dir), "ours": graph_facts(ours_dir)}
    return result


def switching(ours: Worker, args: argparse.Namespace) -> dict[str, Any]:
    """Requests that keep one adapter against requests that alternate two, on one model."""
    n = max(2, min(args.repeats, 10))
    same = [ours.ask("adapter") for _ in range(n)]
    alternating = [ours.ask("adapter2" if i % 2 else "adapter") for i in range(n)]
    if not all(a.get("ok") for a in same + alternating):
        return {"error": next(a["error"] for a in same + alternating if not a.get("ok"))}

    def total_ms(answers: list[dict[str, Any]]) -> float:
        return round(
            statistics.median(a["set_adapter_s"] + a["prefill_s"] + a["decode_s"] for a in answers)
            * 1e3,
            2,
        )

    return {
        "requests_each": n,
        "same_adapter_request_ms": total_ms(same),
        "alternating_request_ms": total_ms(alternating),
        "set_active_adapter_ms": round(
            statistics.median(a["set_adapter_s"] for a in alternating) * 1e3, 3
        ),
    }


# ---------------------------------------------------------------- 4. report


def summarize(timed: dict[str, Any], bandwidth: dict[str, Any]) -> dict[str, Any]:
    rows, models = timed["rows"], timed["models"]
    gbps = bandwidth.get("gb_per_s")
    bounds = {}
    for row, stats in rows.items():
        model = "builder" if row.startswith("builder") else "ours"
        adapter = timed["row_adapter"][row]
        read = models[model]["weights_bytes"] + (
            timed["adapters"][adapter]["bytes"] if adapter else 0
        )
        bound = gbps * 1e9 / read if gbps else None
        bounds[row] = {
            "bytes_per_token": read,
            "bound_tok_s": round(bound, 1) if bound else None,
            "share_of_bound": round(stats["tok_s_median"] / bound, 4) if bound else None,
        }
    base = rows.get("builder_base", {}).get("tok_s_median")

    def ratio(row: str) -> float | None:
        value = rows.get(row, {}).get("tok_s_median")
        return round(value / base, 3) if value and base else None

    ratios = {
        "ours_base_over_builder_base": ratio("ours_base"),
        "ours_adapter_over_builder_base": ratio("ours_adapter"),
        "ours_adapter2_over_builder_base": ratio("ours_adapter2"),
        "prefill_ours_base_over_builder_base": (
            round(
                rows["ours_base"]["prefill_ms_median"] / rows["builder_base"]["prefill_ms_median"],
                3,
            )
            if "ours_base" in rows and "builder_base" in rows
            else None
        ),
    }
    rb, ra = ratios["ours_base_over_builder_base"], ratios["ours_adapter_over_builder_base"]
    targets = {
        "base_ratio_target": TARGET_BASE,
        "base_ratio_met": rb is not None and rb >= TARGET_BASE,
        "adapter_ratio_target": TARGET_ADAPTER,
        "adapter_ratio_met": ra is not None and ra >= TARGET_ADAPTER,
    }
    same = {}
    if "builder_base" in rows:
        for row in rows:
            if row != "builder_base":
                same[row] = rows[row]["token_ids"] == rows["builder_base"]["token_ids"]
    if "ours_adapter" in rows and "ours_adapter2" in rows:
        same["ours_adapter2_vs_ours_adapter"] = (
            rows["ours_adapter2"]["token_ids"] == rows["ours_adapter"]["token_ids"]
        )
    load = {
        name: timed.get(f"{name}_worker", {}).get("model_load_s") for name in ("builder", "ours")
    }
    return {"bound": bounds, "ratios": ratios, "targets": targets,
            "same_tokens_as_builder_base": same, "model_load_s": load}  # fmt: skip


LABELS = {
    "builder_base": "genai builder (baseline)",
    "ours_base": "ours, no adapter",
    "ours_adapter": "ours + adapter file",
    "ours_adapter2": "ours + 2nd adapter (same base)",
}


SAME = {
    "ours_base": "ours base as builder",
    "ours_adapter": "ours + adapter as builder",
    "ours_adapter2": "ours + 2nd adapter as builder",
    "ours_adapter2_vs_ours_adapter": "2nd adapter as 1st",
}


def table(result: dict[str, Any]) -> str:
    m, t, s, bw = result["machine"], result["timing"], result["summary"], result["bandwidth"]
    a = result["args"]
    gpu = f"; GPU {bw['gpu']}" if bw.get("gpu") else ""
    lines = [
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['ram_gib']} GiB RAM{gpu}, "
        f"{m['date_utc']} UTC, commit {m['git_commit'] or '?'}; device {a['device']}, genai "
        f"{t.get('ours_worker', {}).get('genai', '?')}; load average "
        f"{fmt_load(result['loadavg_start'])} at start, {fmt_load(result['loadavg_end'])} at "
        "end; other processes took "
        f"{t['contention']['others_share']:.0%} of the CPU while timing"
        + calibration_note(result)
        + ".",
        f"Prompt {a['prompt_tokens']} tokens, {a['new_tokens']} new tokens, greedy, "
        f"{a['repeats']} interleaved repeats (after 1 warm-up each); decode tok/s = tokens after "
        f"the first / time from the first to the last. Memory bandwidth "
        + (
            f"{bw['gb_per_s']:.1f} GB/s ({bw['what']}, read + write, best of 5)."
            if bw.get("gb_per_s")
            else f"not measured ({bw.get('error', '?')[:120]})."
        ),
        "",
        "| model | decode tok/s median | min | max | prefill ms | MB read/token | bound tok/s "
        "| share of bound | / builder base |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    base = t["rows"].get("builder_base", {}).get("tok_s_median")
    for row, label in LABELS.items():
        if row in t["rows"]:
            r, b = t["rows"][row], s["bound"][row]
            share = f"{b['share_of_bound']:.1%}" if b["share_of_bound"] is not None else "-"
            bound = f"{b['bound_tok_s']:,.0f}" if b["bound_tok_s"] else "-"
            rel = f"{r['tok_s_median'] / base:.2f}x" if base else "-"
            lines.append(
                f"| {label} | {r['tok_s_median']:,.1f} | {r['tok_s_min']:,.1f} | "
                f"{r['tok_s_max']:,.1f} | {r['prefill_ms_median']:.1f} | "
                f"{b['bytes_per_token'] / 1e6:,.1f} | {bound} | {share} | {rel} |"
            )
        elif row in t["errors"]:
            error = " ".join(t["errors"][row].split()).replace("|", "/")[:300]
            lines.append(f"| {label} | failed: {error} | | | | | | | |")
    lines += [
        "",
        "| graph | nodes | GroupQueryAttention | MatMulNBits | SkipSimplifiedLayerNorm "
        "| share KV buffer | CUDA graph | top op types |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, label in (("builder", "genai builder"), ("ours", "ours")):
        g = t["models"][name]
        top = ", ".join(f"{op} {n}" for op, n in list(g["op_types_top10"].items())[:6])
        f = g["fused"]
        lines.append(
            f"| {label} | {g['nodes']:,} | {f['GroupQueryAttention']} | {f['MatMulNBits']} | "
            f"{f['SkipSimplifiedLayerNormalization']} | {g['past_present_share_buffer']} | "
            f"{g['enable_cuda_graph'] if g['enable_cuda_graph'] is not None else '-'} | {top} |"
        )
    r, tg, same = s["ratios"], s["targets"], s["same_tokens_as_builder_base"]

    def fmt(x: float | None) -> str:
        return f"{x:.2f}x" if x is not None else "n/a"

    def verdict(x: float | None, met: bool) -> str:
        return "not timed" if x is None else "met" if met else "MISSED"

    lines += [
        "",
        f"Targets (issue 15): ours base / builder base {fmt(r['ours_base_over_builder_base'])} "
        f"(>= {TARGET_BASE}): {verdict(r['ours_base_over_builder_base'], tg['base_ratio_met'])}; "
        "ours + adapter / "
        f"builder base {fmt(r['ours_adapter_over_builder_base'])} (>= {TARGET_ADAPTER}): "
        f"{verdict(r['ours_adapter_over_builder_base'], tg['adapter_ratio_met'])}. "
        "Prefill ours/builder "
        f"{fmt(r['prefill_ours_base_over_builder_base'])}. Same greedy tokens: "
        + (", ".join(f"{SAME[k]} {'yes' if v else 'no'}" for k, v in same.items()) or "-")
        + ".",
    ]
    if max(g["weights_bytes"] for g in t["models"].values()) < 256e6:
        lines.append(
            "The weights fit in this machine's caches: decode is not memory-bound here, so the "
            "share of the bound only says how far from the RAM bound it is."
        )
    steps = {
        LABELS[row]: r["token_ms_median_per_request"]
        for row, r in t["rows"].items()
        if r.get("token_ms_median_per_request")
    }
    if steps:
        lines.append(
            "Decode step per request, ms (min / median / max of each request's median step; a "
            "wide spread in one row and not the others is a per-request mode): "
            + "; ".join(
                f"{label} {min(v):.2f} / {statistics.median(v):.2f} / {max(v):.2f}"
                for label, v in steps.items()
            )
            + "."
        )
    loads = s["model_load_s"]
    ours_w = t.get("ours_worker", {})
    multi = (
        f"Model load (og.Model): builder {loads['builder']} s, ours {loads['ours']} s; adapter "
        "load (og.Adapters.load): "
        + ", ".join(f"{k} {v * 1e3:.3f} ms" for k, v in ours_w.get("adapter_load_s", {}).items())
    )
    sw = t.get("switching")
    if sw and "error" not in sw:
        multi += (
            f". Switching adapters per request on one model: set_active_adapter "
            f"{sw['set_active_adapter_ms']:.3f} ms; a request "
            f"{sw['same_adapter_request_ms']:.1f} ms with the same adapter as the last, "
            f"{sw['alternating_request_ms']:.1f} ms alternating two (median of "
            f"{sw['requests_each']}), against {loads['ours']} s to load the model"
        )
    elif sw:
        multi += f". Switching failed: {sw['error'][:200]}"
    lines.append(multi + ".")
    if result.get("build"):
        b = result["build"]
        lines.append(
            f"Build: recipe {b['ours_wall_s']} s ("
            + ", ".join(f"{p['name']} {p['status']}" for p in b["ours_passes"])
            + f"), "
            f"builder {b['builder_wall_s']} s; builder options: "
            f"{' '.join(o[:60] for o in b['builder_extra_options']) or 'none'}."
        )
    return "\n".join(lines)


def machine_info() -> dict[str, Any]:
    """benchlib.machine, also where git is missing (the lent GPU machine's copy of the tree);
    BENCH_GIT_COMMIT then says which commit the copy was taken from."""
    try:
        info = machine(DISTS)
    except OSError as exc:
        log(f"machine info without git ({exc})")
        from importlib import metadata

        versions: dict[str, str | None] = {}
        for dist in DISTS:
            try:
                versions[dist] = metadata.version(dist)
            except metadata.PackageNotFoundError:
                versions[dist] = None
        info = {"nproc": os.cpu_count(), "cpu": "?", "ram_gib": None, "git_commit": "",
                "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
                "versions": versions}  # fmt: skip
        with contextlib.suppress(OSError, StopIteration, ValueError):
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines()
            info["cpu"] = next(ln.split(":", 1)[1].strip() for ln in cpuinfo if "model name" in ln)
            meminfo = Path("/proc/meminfo").read_text(encoding="utf-8").split()
            info["ram_gib"] = round(int(meminfo[meminfo.index("MemTotal:") + 1]) / 2**20, 1)
    if not info.get("git_commit") and os.environ.get("BENCH_GIT_COMMIT"):
        info["git_commit"] = os.environ["BENCH_GIT_COMMIT"] + " (BENCH_GIT_COMMIT)"
    return info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", type=Path, help="A float Hugging Face model folder.")
    ap.add_argument("--recipe", type=Path, help="lora -> model_builder -> extract_adapters.")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--precision", choices=["int4", "fp16", "bf16", "fp32"], default="int4")
    ap.add_argument("--prompt-tokens", type=int, default=15)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=25)
    ap.add_argument("--out", type=Path, default=Path("speed.json"))
    ap.add_argument("--work", type=Path, default=None, help="Default: a new temp folder.")
    ap.add_argument("--skip-build", action="store_true", help="Time what --work already holds.")
    ap.add_argument("--reuse", type=Path, metavar="WORK", help="Same as --work WORK --skip-build.")
    ap.add_argument("--build-only", action="store_true", help="Build into --work, time nothing.")
    ap.add_argument(
        "--parallel-build", action="store_true", help="Run the builder while the recipe runs."
    )
    ap.add_argument(
        "--second-adapter", default="auto",
        help="auto (another *.onnx_adapter in the output), synthetic (the adapter's tensors "
        "shuffled: same rank and targets), none, or a file.",
    )  # fmt: skip
    ap.add_argument(
        "--base-only", action="store_true",
        help="Time the two base rows only: no adapter is loaded into our model's process.",
    )  # fmt: skip
    ap.add_argument(
        "--pin-cores", type=pin_cores, default=None, metavar="B/O",
        help="Pin the builder's worker to CPU cores B and ours to O (e.g. 2-5/6-9): each "
        "process keeps its cores, to tell the host's pace from the model's.",
    )  # fmt: skip
    ap.add_argument("--quiet-wait", type=float, default=30.0, help="CPU: wait for a quiet machine.")
    ap.add_argument("--pause", type=float, default=0.05, help="Seconds between requests.")
    ap.add_argument("--table", type=Path, help="Print the table of a results file and exit.")
    ap.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--worker-adapter", action="append", help=argparse.SUPPRESS)
    ap.add_argument("--worker-cores", help=argparse.SUPPRESS)
    ap.add_argument("--bandwidth", choices=["cpu", "cuda"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker_main(args)
    if args.bandwidth:
        return bandwidth_main(args.bandwidth)
    if args.table:
        print(table(json.loads(args.table.read_text(encoding="utf-8"))))
        return None
    if args.reuse:
        args.work, args.skip_build = args.reuse, True
    if args.work is None:
        import tempfile

        args.work = Path(tempfile.mkdtemp(prefix="bench-speed-"))
    work = args.work.resolve()
    started = time.perf_counter()
    machine_start = machine_info()
    load_start = list(os.getloadavg())
    if args.skip_build:
        build_file = work / "build.json"
        info = json.loads(build_file.read_text()) if build_file.is_file() else None
    else:
        if not (args.model and args.recipe):
            ap.error("--model and --recipe are needed to build (or --skip-build)")
        info = build(args, work)
    if args.build_only:
        print(json.dumps(info, indent=1))
        return None
    calibration_start = cpu_calibration() if args.device == "cpu" else None
    bandwidth = measure_bandwidth(args.device)
    log(
        f"memory bandwidth: {bandwidth.get('gb_per_s')} GB/s "
        f"({bandwidth.get('what') or bandwidth.get('error')})"
    )
    timed = timing(args, work)
    result = {
        "script": "scripts/bench_speed.py",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "args": {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in vars(args).items()
            if k not in ("worker", "worker_adapter", "bandwidth", "table")
        },
        "machine": machine_start,
        "loadavg_start": [round(x, 2) for x in load_start],
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        "wall_s": round(time.perf_counter() - started, 1),
        "build": info,
        "bandwidth": bandwidth,
        "timing": timed,
        "summary": summarize(timed, bandwidth),
    }
    if calibration_start:
        result["cpu_calibration"] = {"start": calibration_start, "end": cpu_calibration()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(table(result))
    print(f"\nwrote {args.out}")
    return None


if __name__ == "__main__":
    main()
