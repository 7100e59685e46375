"""Issue 14, GPU part: held-out response perplexity of SmolLM2-135M-Instruct as fp32, fp16,
RTN int4, AWQ int4 (AutoAWQ 0.2.9), and LoRA on top of each (the recipe's LoRA settings).

Usage (on the lent GPU machine, after `source scripts/gpu/env.sh`; quality_call.sh does it):
    python3 scripts/gpu/quality_awq.py --model .dev/smollm2/hf --device cuda
        --data data/data_sample_travel.jsonl --recipe workflows/smollm2-travel-cpu.yaml
        --json .dev/quality-results/quality_awq.json          (one command line)
Smoke test on a CPU:  ... --device cpu --quick

What is measured, in this order (the JSON is rewritten after every result):
  fp32            the HF folder as it is (float32), evaluated in float32: docs/quality.md's
                  25.24 (measured on CPU) is the number to match
  fp16            the same weights rounded to float16
  lora            PEFT LoRA trained on the fp16 base (its weights held in float32 for
                  training, their values exactly the fp16 ones), evaluated with the adapter
  rtn_gG          round-to-nearest int4 of every nn.Linear of the decoder layers (not lm_head,
                  not the embeddings), asymmetric (zero point), group size G, as
                  quantize-dequantize in fp16 (AutoAWQ's own pseudo_quantize_tensor)
  awq_gG          AutoAWQ's quantizer (AutoAWQForCausalLM.from_pretrained in fp16, then
                  quantize(..., export_compatible=True): AWQ scales and clipping, no packing),
                  calibrated on the TRAINING rows only, then pseudo-quantized exactly like RTN:
                  AWQ and RTN differ only by AWQ's scaling/clipping
  X+lora          the same LoRA training on the frozen quantized fp16 base X
Every base is evaluated with fp16 compute (`ppl_fp16`, the primary number) and with the
same weight values in float32 compute (`ppl_fp32`). Perplexity = the project's measure
(olive_workflows.runtime.evaluate: read_examples, _split_ids, _nll, Score; the way
scripts/bench_methods.py scores PyTorch + PEFT): response tokens of the held-out rows
(`travel_eval`, train[250:]), prompt tokens masked, float64 softmax.

Group size: AutoAWQ's default q_group_size 128 does not divide SmolLM2-135M's hidden size 576
(AutoAWQ asserts `in_features % group_size == 0`; 576 = 4.5 x 128), so the default group
sizes are 64 (the largest power of two dividing 576 and 1536) and 32 (what
onnxruntime-genai's int4 builder uses, docs/quality.md). --group-sizes changes them.

LoRA loss: Olive's LoRA pass (text_template, line-by-line) trains on every non-pad token of
the row, prompt included; issue 14 asks for the loss on response tokens only. Both are
trained (--loss-on response,all; `response` first): `lora[response]` and `lora[all]`.
Training mirrors Olive 0.13's LoRA pass as the recipe renders it: transformers.Trainer,
rows padded to max_seq_len (160) on the right, constant LR after Olive's warmup_ratio 0.03,
AdamW (Trainer default), seed 0, eager attention, gradient checkpointing off, PEFT
LoraConfig(r, alpha, dropout, target_modules, bias none, CAUSAL_LM), TF32 allowed in training
on CUDA (Olive's allow_tf32 default), float32 weights (the recipe renders torch_dtype float32).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import sys
import tempfile
import time
import traceback
from pathlib import Path
from types import SimpleNamespace
from typing import Any

# before torch is imported: deterministic cuBLAS; no network
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
for _name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_name, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OLIVE_DISABLE_TELEMETRY", "1")

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "src") not in sys.path:
    sys.path.insert(0, str(REPO / "src"))

# AutoAWQ's default quant_config; q_group_size is replaced per run (see the docstring)
AWQ_DEFAULT_CONFIG = {"zero_point": True, "q_group_size": 128, "w_bit": 4, "version": "GEMM"}
STARTED = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - STARTED:7.1f}s] {message}", flush=True)


# ---------------------------------------------------------------------------------------
# arguments


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--model", type=Path, required=True, help="HF folder (float32 SmolLM2)")
    p.add_argument("--data", type=Path, default=REPO / "data/data_sample_travel.jsonl")
    p.add_argument("--recipe", type=Path, default=REPO / "workflows/smollm2-travel-cpu.yaml")
    p.add_argument("--json", type=Path, required=True, help="result file (rewritten as it goes)")
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    p.add_argument("--steps", type=int, default=None, help="LoRA steps (default: the recipe's, 30)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: 5 eval rows, 2 steps, AWQ on 2 layers with 16 calibration "
        "rows of 128 tokens, the first group size only",
    )
    p.add_argument("--group-sizes", default="64,32", help="int4 group sizes, comma-separated")
    p.add_argument(
        "--loss-on",
        default="response,all",
        help="LoRA loss tokens, comma-separated: response (issue 14) and/or all "
        "(Olive's LoRA pass)",
    )
    p.add_argument(
        "--stages",
        default="fp16,lora,rtn,awq",
        help="what to run besides the fp32 base: fp16,lora,rtn,awq "
        "(lora = LoRA on every base run); e.g. --stages '' for fp32 only",
    )
    p.add_argument(
        "--eval-limit", type=int, default=None, help="score only the first N held-out rows"
    )
    p.add_argument("--seed", type=int, default=None, help="default: the recipe's lora seed (0)")
    p.add_argument(
        "--calib-rows",
        type=int,
        default=None,
        help="AWQ calibration rows (first N training rows; default all 250)",
    )
    p.add_argument(
        "--calib-seq-len",
        type=int,
        default=512,
        help="AutoAWQ max_calib_seq_len (rows are joined and cut into blocks of it)",
    )
    p.add_argument(
        "--n-parallel-calib",
        type=int,
        default=None,
        help="AutoAWQ n_parallel_calib_samples (default None: all blocks at once)",
    )
    p.add_argument(
        "--awq-max-layers",
        type=int,
        default=None,
        help="AWQ-search only the first N decoder layers (the rest get RTN): smoke tests",
    )
    p.add_argument(
        "--awq-dtype",
        choices=("float16", "float32"),
        default=None,
        help="dtype AutoAWQ searches in (default float16 on cuda, as AutoAWQ loads; "
        "float32 on cpu)",
    )
    p.add_argument("--no-clip", action="store_true", help="AutoAWQ apply_clip=False")
    p.add_argument(
        "--train-dtype",
        choices=("float32", "float16"),
        default="float32",
        help="float32 (the recipe's rendering) or float16 = fp16 mixed precision "
        "(Olive's torch_dtype float16: float32 weights, Trainer fp16=True)",
    )
    p.add_argument("--no-train-tf32", action="store_true", help="no TF32 in LoRA training")
    p.add_argument("--save-adapters", type=Path, default=None, help="keep the PEFT adapters here")
    args = p.parse_args(argv)
    if args.quick:
        args.eval_limit = args.eval_limit or 5
        args.steps = args.steps or 2
        args.calib_rows = args.calib_rows or 16
        args.calib_seq_len = min(args.calib_seq_len, 128)
        args.awq_max_layers = args.awq_max_layers or 2
        args.group_sizes = args.group_sizes.split(",")[0]
    args.group_sizes = [int(g) for g in str(args.group_sizes).split(",") if g.strip()]
    args.loss_on = [m.strip() for m in args.loss_on.split(",") if m.strip()]
    for mode in args.loss_on:
        if mode not in ("response", "all"):
            p.error(f"--loss-on {mode}: use response and/or all")
    args.stages = {s.strip() for s in args.stages.split(",") if s.strip()}
    unknown = args.stages - {"fp16", "lora", "rtn", "awq"}
    if unknown:
        p.error(f"--stages: unknown {sorted(unknown)}")
    if args.awq_dtype is None:
        args.awq_dtype = "float16" if args.device == "cuda" else "float32"
    return args


# ---------------------------------------------------------------------------------------
# helpers


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def write_json(path: Path, data: dict[str, Any]) -> None:
    from olive_workflows.core.files import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def versions() -> dict[str, Any]:
    import importlib

    out: dict[str, Any] = {"python": platform.python_version()}
    for name in (
        "torch",
        "transformers",
        "peft",
        "awq",
        "accelerate",
        "tokenizers",
        "numpy",
        "triton",
        "safetensors",
    ):
        try:
            out[name] = str(importlib.import_module(name).__version__)
        except Exception as exc:  # a diagnostic: report, don't stop
            out[name] = f"unavailable: {exc!r}"[:200]
    import torch

    out["cuda"] = torch.version.cuda
    out["cudnn"] = torch.backends.cudnn.version() if torch.cuda.is_available() else None
    return out


def device_info(device: str) -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"device": device, "host_cpus": len(os.sched_getaffinity(0))}
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        info |= {
            "gpu": torch.cuda.get_device_name(0),
            "gpu_memory_gib": round(props.total_memory / 2**30, 1),
            "capability": ".".join(map(str, torch.cuda.get_device_capability(0))),
        }
    else:
        info["cpu"] = platform.processor() or platform.machine()
        info["torch_threads"] = torch.get_num_threads()
    return info


def set_tf32(enabled: bool) -> str:
    """Allow or forbid TF32 in float32 CUDA matmuls; returns what was set. torch >= 2.9 has
    a new API beside the old flag and may refuse to mix them: try both, never fail."""
    import torch

    try:
        torch.backends.cuda.matmul.allow_tf32 = enabled
        torch.backends.cudnn.allow_tf32 = enabled
        return f"allow_tf32={enabled}"
    except Exception:
        pass
    try:
        torch.backends.cuda.matmul.fp32_precision = "tf32" if enabled else "ieee"
        return f"fp32_precision={'tf32' if enabled else 'ieee'}"
    except Exception as exc:
        return f"not set: {exc!r}"[:200]


def named_linears(module: Any) -> dict[str, Any]:
    """AutoAWQ's get_named_linears: every nn.Linear inside a decoder layer."""
    from torch import nn

    return {name: m for name, m in module.named_modules() if isinstance(m, nn.Linear)}


def _pseudo_quantize_copy(cfg: Any, w: Any) -> tuple[Any, Any, Any]:
    """AutoAWQ 0.2.9's AwqQuantizer.pseudo_quantize_tensor (quantize/quantizer.py), copied:
    used only where `awq` cannot be imported (the result says which one ran)."""
    import torch

    org_w_shape = w.shape
    if cfg.group_size > 0:
        assert org_w_shape[-1] % cfg.group_size == 0
        w = w.reshape(-1, cfg.group_size)
    assert w.dim() == 2
    if cfg.zero_point:
        max_val = w.amax(dim=1, keepdim=True)
        min_val = w.amin(dim=1, keepdim=True)
        max_int = 2**cfg.w_bit - 1
        min_int = 0
        scales = (max_val - min_val).clamp(min=1e-5) / max_int
        zeros = (-torch.round(min_val / scales)).clamp_(min_int, max_int)
        w = (torch.clamp(torch.round(w / scales) + zeros, min_int, max_int) - zeros) * scales
        zeros = zeros.view(org_w_shape[0], -1)
    else:
        max_val = w.abs().amax(dim=1, keepdim=True).clamp(min=1e-5)
        max_int = 2 ** (cfg.w_bit - 1) - 1
        min_int = -(2 ** (cfg.w_bit - 1))
        scales = max_val / max_int
        zeros = None
        w = torch.clamp(torch.round(w / scales), min_int, max_int) * scales
    scales = scales.view(org_w_shape[0], -1)
    return w.reshape(org_w_shape), scales, zeros


def pseudo_quantizer(group_size: int, w_bit: int = 4, zero_point: bool = True):
    """(function w -> quantize-dequantized w, which implementation)."""
    cfg = SimpleNamespace(group_size=group_size, w_bit=w_bit, zero_point=zero_point)
    try:
        from awq.quantize.quantizer import AwqQuantizer

        def fn(w: Any) -> Any:
            return AwqQuantizer.pseudo_quantize_tensor(cfg, w)[0]

        return fn, "awq.quantize.quantizer.AwqQuantizer.pseudo_quantize_tensor"
    except Exception as exc:
        log(f"AutoAWQ not importable ({exc!r}); using the copy of pseudo_quantize_tensor")
        return (
            lambda w: _pseudo_quantize_copy(cfg, w)[0]
        ), "copy of AutoAWQ's pseudo_quantize_tensor"


def pseudo_quantize_layers(model: Any, fn: Any, device: str) -> int:
    """Quantize-dequantize every nn.Linear of every decoder layer in fp16 on `device`, as
    AutoAWQ's _apply_quant does (`linear.to(best_device).half()`, then pseudo_quantize_tensor).
    lm_head and the embeddings are not touched. Returns the number of layers quantized."""
    import torch

    count = 0
    with torch.no_grad():
        for layer in model.model.layers:
            for linear in named_linears(layer).values():
                w = linear.weight.data.to(device=device, dtype=torch.float16)
                linear.weight.data = fn(w).to(linear.weight.device, linear.weight.dtype)
                count += 1
    return count


# ---------------------------------------------------------------------------------------
# the experiment


class Experiment:
    def __init__(self, args: argparse.Namespace) -> None:
        import torch

        from olive_workflows.patches import awq_compat

        awq_compat.install()  # before transformers/peft: peft imports awq when it is there
        import transformers
        from transformers import AutoTokenizer

        from olive_workflows.recipe.parse import load_recipe
        from olive_workflows.recipe.steps import LoraStep
        from olive_workflows.runtime.evaluate import _split_ids, read_examples

        transformers.logging.set_verbosity_error()
        self.args = args
        self.device = args.device
        if self.device == "cuda" and not torch.cuda.is_available():
            raise SystemExit("--device cuda: no CUDA device")
        if self.device == "cpu":
            torch.set_num_threads(int(os.environ.get("QUALITY_THREADS", "1")))
        self.tf32 = set_tf32(False)
        torch.use_deterministic_algorithms(True, warn_only=True)

        loaded = load_recipe(args.recipe)
        recipe = loaded.recipe
        self.lora = next(s for s in recipe.steps if isinstance(s, LoraStep))
        train_ds = recipe.data[self.lora.data]
        eval_name = self.lora.eval_data or next(
            (n for n in recipe.data if n.endswith(("_eval", "_test", "_heldout"))), None
        )
        if eval_name is None:
            raise SystemExit(f"{args.recipe}: no held-out data set")
        eval_ds = recipe.data[eval_name]
        self.seed = self.lora.seed if args.seed is None else args.seed
        self.steps = args.steps or self.lora.max_steps or 30
        self.max_len = train_ds.max_seq_len
        seed_everything(self.seed)

        self.tokenizer = AutoTokenizer.from_pretrained(str(args.model), local_files_only=True)
        # the held-out rows, scored as the project does (evaluate.py / bench_methods.py)
        self.examples = read_examples([args.data], eval_ds.template, eval_ds.split, args.eval_limit)
        self.scored = [_split_ids(lambda t: self.tokenizer(t).input_ids, e) for e in self.examples]
        # the training rows; the calibration texts are the same rows, never held-out ones
        self.train_examples = read_examples([args.data], train_ds.template, train_ds.split)
        # the travel set repeats rows: held-out rows whose whole text (or prompt) is also a
        # training row's
        train_full = {e.full for e in self.train_examples}
        train_prompts = {e.prompt for e in self.train_examples}
        overlap = {
            "eval_rows_identical_to_a_train_row": sum(e.full in train_full for e in self.examples),
            "eval_prompts_also_in_train": sum(e.prompt in train_prompts for e in self.examples),
        }
        self.calib_texts = [e.full for e in self.train_examples[: args.calib_rows]]

        self.result: dict[str, Any] = {
            "script": "scripts/gpu/quality_awq.py",
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
            "quick": bool(args.quick),
            "device": device_info(self.device),
            "env": versions(),
            "model": {"dir": str(args.model)},
            "data": {
                "file": str(args.data),
                "train": {
                    "name": self.lora.data,
                    "split": train_ds.split,
                    "rows": len(self.train_examples),
                },
                "eval": {
                    "name": eval_name,
                    "split": eval_ds.split,
                    "rows": len(self.examples),
                    "response_tokens": sum(len(ids) - s for ids, s in self.scored),
                },
                "overlap": overlap,
                "template": train_ds.template,
            },
            "settings": {},
            "seeds": {},
            "results": {},
            "order": [],
            "errors": [],
        }
        weights = args.model / "model.safetensors"
        if weights.is_file():
            from olive_workflows.core.ownership import file_sha256

            self.result["model"]["safetensors_sha256"] = file_sha256(weights)
        self.result["settings"] = self.settings()
        self.result["seeds"] = {
            "seed": self.seed,
            "where": "random, numpy, torch (+cuda) seeded at start and again before every "
            "LoRA training (same LoRA init and data order for every base); "
            "TrainingArguments(seed=...) = the same value (recipe lora.seed)",
            "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
            "deterministic_algorithms": "torch.use_deterministic_algorithms(True, warn_only=True)",
        }
        self.save()

    def settings(self) -> dict[str, Any]:
        a, lora = self.args, self.lora
        return {
            "eval": {
                "measure": "exp(mean NLL of response tokens), prompt masked; "
                "olive_workflows.runtime.evaluate._split_ids/_nll/Score as in "
                "scripts/bench_methods.py",
                "attn_implementation": "transformers default (sdpa)",
                "tf32": "off (set_tf32(False))",
                "eval_limit": a.eval_limit,
            },
            "quant": {
                "awq_default_config": AWQ_DEFAULT_CONFIG,
                "used": {
                    "zero_point": True,
                    "w_bit": 4,
                    "version": "GEMM",
                    "q_group_size": a.group_sizes,
                },
                "why_not_128": "hidden size 576 is not a multiple of 128 "
                "(AutoAWQ: assert in_features % group_size == 0)",
                "modules": "every nn.Linear in model.model.layers (q,k,v,o,gate,up,down); "
                "lm_head (tied to the embeddings) and embeddings untouched",
                "how": "pseudo-quantization: quantize-dequantize in float16",
            },
            "awq": {
                "package": "autoawq 0.2.9 (awq)",
                "load": "AutoAWQForCausalLM.from_pretrained(model, torch_dtype, safetensors=True)"
                " (use_cache=False, AutoAWQ's default)",
                "search_dtype": a.awq_dtype,
                "quantize_kwargs": {
                    "export_compatible": True,
                    "apply_clip": not a.no_clip,
                    "duo_scaling": True,
                    "calib_data": f"list of {len(self.calib_texts)} strings: the training rows "
                    f"({self.lora.data}) formatted with the recipe template",
                    "max_calib_samples": len(self.calib_texts),
                    "max_calib_seq_len": a.calib_seq_len,
                    "n_parallel_calib_samples": a.n_parallel_calib,
                },
                "awq_max_layers": a.awq_max_layers,
                "after": "weights pseudo-quantized with the same function as RTN",
            },
            "lora": {
                "recipe": str(self.args.recipe),
                "r": lora.r,
                "alpha": lora.alpha,
                "dropout": lora.dropout,
                "target_modules": lora.target_modules,
                "max_steps": self.steps,
                "recipe_max_steps": lora.max_steps,
                "batch_size": lora.batch_size,
                "gradient_accumulation_steps": lora.gradient_accumulation_steps,
                "learning_rate": lora.learning_rate,
                "lr_scheduler_type": "constant (Olive HFTrainingArguments default)",
                "warmup_ratio": 0.03,
                "optimizer": "transformers default (adamw_torch)",
                "max_seq_len": self.max_len,
                "padding": "right, to max_seq_len (Olive pad_to_max_len); pad labels -100",
                "loss_on": a.loss_on,
                "train_dtype": a.train_dtype,
                "train_tf32": self.device == "cuda" and not a.no_train_tf32,
                "attn_implementation": "eager (the recipe's model load_kwargs)",
                "gradient_checkpointing": False,
                "training_args_from_recipe": dict(lora.training_args),
                "peft": "LoraConfig(r, lora_alpha, lora_dropout, target_modules, bias='none', "
                "task_type='CAUSAL_LM')",
                "base_weights": "float32 tensors holding the base's float16 values (frozen)",
            },
        }

    def save(self) -> None:
        self.result["wall_s"] = round(time.perf_counter() - STARTED, 1)
        write_json(self.args.json, self.result)

    # -- models --------------------------------------------------------------------------

    def load(self, dtype: str = "float32", attn: str | None = None) -> Any:
        import torch
        from transformers import AutoModelForCausalLM

        kwargs: dict[str, Any] = {"dtype": getattr(torch, dtype), "local_files_only": True}
        if attn:
            kwargs["attn_implementation"] = attn
        model = AutoModelForCausalLM.from_pretrained(str(self.args.model), **kwargs)
        return model.eval()

    def perplexity(self, model: Any) -> dict[str, Any]:
        import torch

        from olive_workflows.runtime.evaluate import Score, _nll

        started = time.perf_counter()
        score = Score()
        with torch.no_grad():
            for ids, start in self.scored:
                out = model(torch.tensor([ids], device=self.device))
                logits = out.logits[0].float().cpu().numpy()
                score.add(*_nll(logits, ids, start))
        sync(self.device)
        return {
            "ppl": round(score.ppl, 4),
            "tokens": score.tokens,
            "nll": score.nll,
            "eval_s": round(time.perf_counter() - started, 2),
        }

    def record(self, name: str, entry: dict[str, Any]) -> None:
        self.result["results"][name] = entry
        if name not in self.result["order"]:
            self.result["order"].append(name)
        self.save()
        shown = {k: v["ppl"] for k, v in entry.items() if isinstance(v, dict) and "ppl" in v}
        log(f"RESULT {name}: {shown} ({entry.get('seconds')} s)")

    def evaluate_base(self, name: str, state: dict[str, Any], extra: dict[str, Any]) -> None:
        """Evaluate a base given as a float16 state dict, in fp16 and fp32 compute."""
        started = time.perf_counter()
        model = self.load("float32")
        model.load_state_dict({k: v.float() for k, v in state.items()})
        model.to(self.device)
        fp32 = self.perplexity(model)
        model.half()
        fp16 = self.perplexity(model)
        del model
        self.free()
        eval_s = time.perf_counter() - started
        # seconds: the whole step, quantization (quant_s) included
        self.record(
            name,
            {
                "ppl_fp16": fp16,
                "ppl_fp32": fp32,
                **extra,
                "eval_total_s": round(eval_s, 1),
                "seconds": round(eval_s + extra.get("quant_s", 0.0), 1),
            },
        )

    def free(self) -> None:
        import gc

        import torch

        gc.collect()
        if self.device == "cuda":
            torch.cuda.empty_cache()

    # -- LoRA ----------------------------------------------------------------------------

    def train_dataset(self, loss_on: str) -> list[dict[str, Any]]:
        import torch

        from olive_workflows.runtime.evaluate import _split_ids

        tok = self.tokenizer
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        rows = []
        for example in self.train_examples:
            # Olive: tokenizer(text, max_length, truncation=True, padding="max_length",
            # add_special_tokens=False), labels = input_ids, pad labels -100
            enc = tok(
                example.full,
                max_length=self.max_len,
                truncation=True,
                padding="max_length",
                add_special_tokens=False,
            )
            ids = torch.tensor(enc.input_ids)
            mask = torch.tensor(enc.attention_mask)
            labels = ids.clone()
            labels[mask != 1] = -100
            if loss_on == "response":
                _, start = _split_ids(lambda t: tok(t, add_special_tokens=False).input_ids, example)
                labels[:start] = -100
            ids[mask != 1] = pad
            rows.append({"input_ids": ids, "attention_mask": mask, "labels": labels})
        return rows

    def train_lora(self, base: str, state: dict[str, Any], loss_on: str) -> None:
        import torch
        import transformers
        from peft import LoraConfig, get_peft_model

        name = f"{base}+lora[{loss_on}]"
        log(f"LoRA on {base} (loss on {loss_on} tokens), {self.steps} steps")
        started = time.perf_counter()
        seed_everything(self.seed)
        model = self.load("float32", attn="eager")
        model.load_state_dict({k: v.float() for k, v in state.items()})
        for p in model.parameters():
            p.requires_grad = False
        # as Olive's LoRA pass (enable_lora)
        model.model_parallel = True
        model.is_parallelizable = True
        model.accepts_loss_kwargs = False
        lora = self.lora
        config = LoraConfig(
            r=lora.r,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=lora.target_modules,
            bias="none",
            task_type="CAUSAL_LM",
        )
        seed_everything(self.seed)
        model = get_peft_model(model, config)
        model.to(self.device)
        data = self.train_dataset(loss_on)
        extra = {
            k: v
            for k, v in lora.training_args.items()
            if k in {f for f in transformers.TrainingArguments.__dataclass_fields__}
        }
        extra.pop("gradient_checkpointing", None)
        tf32 = self.device == "cuda" and not self.args.no_train_tf32
        tf32_set = set_tf32(tf32) if tf32 else None
        with tempfile.TemporaryDirectory(prefix="quality-lora-") as tmp:
            targs = transformers.TrainingArguments(
                output_dir=tmp,
                max_steps=self.steps,
                per_device_train_batch_size=lora.batch_size,
                gradient_accumulation_steps=lora.gradient_accumulation_steps,
                learning_rate=lora.learning_rate,
                lr_scheduler_type="constant",
                warmup_ratio=0.03,
                seed=self.seed,
                gradient_checkpointing=False,
                report_to="none",
                save_strategy="no",
                eval_strategy="no",
                logging_steps=1,
                disable_tqdm=True,
                remove_unused_columns=False,
                dataloader_num_workers=0,
                use_cpu=self.device == "cpu",
                fp16=self.args.train_dtype == "float16",
                **extra,
            )

            def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
                return {k: torch.stack([b[k] for b in batch]) for k in batch[0]}

            trainer = transformers.Trainer(
                model=model, args=targs, train_dataset=data, data_collator=collate
            )
            t0 = time.perf_counter()
            out = trainer.train()
            sync(self.device)
            train_s = time.perf_counter() - t0
            losses = [round(h["loss"], 4) for h in trainer.state.log_history if "loss" in h]
        if tf32:
            set_tf32(False)
        if self.args.save_adapters:
            path = self.args.save_adapters / name.replace("+", "_").replace("[", "_").rstrip("]")
            model.save_pretrained(str(path), save_embedding_layers=False)
        model.eval()
        fp32 = self.perplexity(model)
        model.half()
        fp16 = self.perplexity(model)
        del model, trainer
        self.free()
        self.record(
            name,
            {
                "ppl_fp16": fp16,
                "ppl_fp32": fp32,
                "base": base,
                "loss_on": loss_on,
                "train_s": round(train_s, 1),
                "train_tf32": tf32_set,
                "train_loss": round(float(out.training_loss), 4),
                "loss_history": losses,
                "seconds": round(time.perf_counter() - started, 1),
            },
        )

    def loras(self, base: str, state: dict[str, Any]) -> None:
        if "lora" not in self.args.stages:
            return
        for mode in self.args.loss_on:
            self.guard(f"{base}+lora[{mode}]", self.train_lora, base, state, mode)

    # -- quantizers ----------------------------------------------------------------------

    def rtn(self, fp16_state: dict[str, Any], group: int) -> dict[str, Any]:
        import torch

        started = time.perf_counter()
        fn, impl = pseudo_quantizer(group)
        model = self.load("float32")
        model.load_state_dict({k: v.float() for k, v in fp16_state.items()})
        model.half().to(self.device)
        n = pseudo_quantize_layers(model, fn, self.device)
        sync(self.device)
        state = {
            k: v.detach().to("cpu", torch.float16).clone() for k, v in model.state_dict().items()
        }
        quant_s = time.perf_counter() - started
        del model
        self.free()
        self.evaluate_base(
            f"rtn_g{group}",
            state,
            {
                "group_size": group,
                "linears_quantized": n,
                "pseudo_quantize": impl,
                "quant_s": round(quant_s, 1),
            },
        )
        return state

    def awq(self, group: int) -> dict[str, Any]:
        import torch
        from awq import AutoAWQForCausalLM
        from awq.quantize.quantizer import AwqQuantizer

        max_layers = self.args.awq_max_layers
        notes: list[str] = []

        class Quantizer(AwqQuantizer):
            """AutoAWQ's quantizer; for smoke tests only the first `max_layers` layers are
            searched. Guards against a KV cache in the layer kwargs (a model loaded with
            use_cache=True gives one, and the attention search then reads stale keys; AutoAWQ's
            own loader sets use_cache=False) and, on a CPU only, against AutoAWQ's restore of
            aliased weights (below)."""

            def init_quant(self, n_samples: int = 128, max_seq_len: int = 512):  # type: ignore[override]
                modules, kwargs, inps = super().init_quant(
                    n_samples=n_samples, max_seq_len=max_seq_len
                )
                if kwargs.get("past_key_values") is not None:
                    kwargs.pop("past_key_values")
                    notes.append("dropped past_key_values from the layer kwargs")
                notes.append(f"calibration blocks {tuple(inps.shape)}")
                if max_layers:
                    modules = modules[:max_layers]
                return modules, kwargs, inps

            def _compute_best_scale(  # noqa: PLR0917 (AutoAWQ's signature)
                self,
                x,
                w_mean,
                x_mean,
                module2inspect,
                linears2scale,
                fp16_output,
                kwargs={},  # noqa: B006
            ):
                # AutoAWQ keeps the weights to restore after each grid point as
                # `{k: v.cpu() for k, v in state_dict()}`: on a GPU a copy, but on a CPU the
                # very tensors `fc.weight.mul_(scales)` then changes in place, so the search
                # compounds scales and the layer ends up wrong. Only where the layer is on the
                # CPU (smoke tests), hand it copies; on CUDA this is AutoAWQ's code untouched.
                if next(module2inspect.parameters()).device.type != "cpu":
                    return super()._compute_best_scale(
                        x, w_mean, x_mean, module2inspect, linears2scale, fp16_output, kwargs
                    )
                if "cpu state_dict copies" not in notes:
                    notes.append("cpu state_dict copies")
                original = module2inspect.state_dict
                module2inspect.state_dict = lambda *a, **k: {  # type: ignore[method-assign]
                    n: t.clone() for n, t in original(*a, **k).items()
                }
                try:
                    return super()._compute_best_scale(
                        x, w_mean, x_mean, module2inspect, linears2scale, fp16_output, kwargs
                    )
                finally:
                    del module2inspect.state_dict

        started = time.perf_counter()
        log(
            f"AWQ g{group}: {len(self.calib_texts)} calibration rows, "
            f"max_calib_seq_len {self.args.calib_seq_len}, search in {self.args.awq_dtype}"
            + (f", first {max_layers} layers only (smoke test)" if max_layers else "")
        )
        awq_model = AutoAWQForCausalLM.from_pretrained(
            str(self.args.model),
            torch_dtype=getattr(torch, self.args.awq_dtype),
            safetensors=True,
            device_map=None,
        )
        quant_config = {**AWQ_DEFAULT_CONFIG, "q_group_size": group}
        awq_model.quantize(
            self.tokenizer,
            quant_config=quant_config,
            calib_data=list(self.calib_texts),
            export_compatible=True,
            apply_clip=not self.args.no_clip,
            n_parallel_calib_samples=self.args.n_parallel_calib,
            max_calib_samples=len(self.calib_texts),
            max_calib_seq_len=self.args.calib_seq_len,
            quantizer_cls=Quantizer,
        )
        sync(self.device)
        search_s = time.perf_counter() - started
        quantizer = awq_model.quantizer
        model = awq_model.model
        del awq_model.quantizer
        model.to(self.device).half()

        def fn(w: Any, search: Any = quantizer) -> Any:
            return search.pseudo_quantize_tensor(w)[0]

        n = pseudo_quantize_layers(model, fn, self.device)
        sync(self.device)
        state = {
            k: v.detach().to("cpu", torch.float16).clone() for k, v in model.state_dict().items()
        }
        quant_s = time.perf_counter() - started
        del model, awq_model, quantizer
        self.free()
        self.evaluate_base(
            f"awq_g{group}",
            state,
            {
                "group_size": group,
                "linears_quantized": n,
                "pseudo_quantize": "the AutoAWQ quantizer's own pseudo_quantize_tensor",
                "awq_search_s": round(search_s, 1),
                "quant_s": round(quant_s, 1),
                "quant_config": quant_config,
                "notes": notes,
            },
        )
        return state

    def guard(self, name: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as exc:  # keep going: one failed variant must not lose the others
            log(f"FAILED {name}: {exc!r}")
            traceback.print_exc()
            self.result["errors"].append(
                {
                    "name": name,
                    "error": repr(exc)[:2000],
                    "traceback": traceback.format_exc()[-4000:],
                }
            )
            self.free()
            self.save()
            return None

    # -- the run -------------------------------------------------------------------------

    def run(self) -> None:
        import torch

        a = self.args
        d = self.result["data"]
        log(
            f"{self.result['device']} | eval {d['eval']['rows']} rows "
            f"({d['eval']['response_tokens']} response tokens), train {d['train']['rows']} rows"
        )
        log(f"data overlap (the set repeats rows): {d['overlap']}")
        # 1. fp32 as it is
        started = time.perf_counter()
        model = self.load("float32").to(self.device)
        fp32 = self.perplexity(model)
        fp16_state = {
            k: v.detach().to("cpu", torch.float16).clone() for k, v in model.state_dict().items()
        }
        del model
        self.free()
        self.record("fp32", {"ppl_fp32": fp32, "seconds": round(time.perf_counter() - started, 1)})
        if not a.stages:
            return
        # 2. fp16, LoRA on it
        if "fp16" in a.stages or "lora" in a.stages:
            self.guard("fp16", self.evaluate_base, "fp16", fp16_state, {})
        self.loras("fp16", fp16_state)
        # 3. per group size: RTN, AWQ, LoRA on each
        for group in a.group_sizes:
            if "rtn" in a.stages:
                state = self.guard(f"rtn_g{group}", self.rtn, fp16_state, group)
                if state is not None:
                    self.loras(f"rtn_g{group}", state)
                del state
            if "awq" in a.stages:
                state = self.guard(f"awq_g{group}", self.awq, group)
                if state is not None:
                    self.loras(f"awq_g{group}", state)
                del state
            self.free()
        self.summary()

    def summary(self) -> None:
        res = self.result["results"]
        rows = []
        for name in self.result["order"]:
            entry = res[name]
            ppl16 = entry.get("ppl_fp16", {}).get("ppl")
            ppl32 = entry.get("ppl_fp32", {}).get("ppl")
            row: dict[str, Any] = {"name": name, "ppl_fp16": ppl16, "ppl_fp32": ppl32}
            ref = res.get("fp16", {}).get("ppl_fp16", {}).get("ppl")
            if ppl16 and ref:
                row["vs_fp16_pct"] = round((ppl16 / ref - 1) * 100, 1)
            base = entry.get("base")
            if base and ppl16:
                b = res.get(base, {}).get("ppl_fp16", {}).get("ppl")
                if b:
                    row["vs_its_base_pct"] = round((ppl16 / b - 1) * 100, 1)
                lora_ref = (
                    res.get(f"fp16+lora[{entry['loss_on']}]", {}).get("ppl_fp16", {}).get("ppl")
                )
                if lora_ref and base != "fp16":
                    row["vs_lora_on_fp16_pct"] = round((ppl16 / lora_ref - 1) * 100, 1)
            rows.append(row)
        self.result["summary"] = rows
        self.save()
        log("summary (ppl_fp16 / ppl_fp32):")
        for row in rows:
            extras = ", ".join(f"{k} {v:+}" for k, v in row.items() if k.endswith("_pct"))
            print(
                f"    {row['name']:<28} {row['ppl_fp16']!s:>9} / {row['ppl_fp32']!s:>9}  {extras}",
                flush=True,
            )


def env_only() -> None:
    """--env-only: import everything the run needs and print the environment (no model)."""
    from olive_workflows.patches import awq_compat

    awq_compat.install()
    import torch

    info = {
        "env": versions(),
        "device": device_info("cuda" if torch.cuda.is_available() else "cpu"),
    }
    import peft  # noqa: F401
    from awq import AutoAWQForCausalLM  # noqa: F401
    from awq.quantize.quantizer import AwqQuantizer  # noqa: F401

    from olive_workflows.runtime.evaluate import _nll, _split_ids, read_examples  # noqa: F401

    info["imports"] = "ok: torch, peft, awq (AutoAWQForCausalLM, AwqQuantizer), olive_workflows"
    print(json.dumps(info, indent=1), flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--env-only" in argv:
        env_only()
        return 0
    args = parse_args(argv)
    exp = Experiment(args)
    try:
        exp.run()
    except BaseException as exc:
        exp.result["errors"].append(
            {"name": "run", "error": repr(exc)[:2000], "traceback": traceback.format_exc()[-4000:]}
        )
        exp.save()
        raise
    exp.result["finished"] = True
    exp.save()
    log(f"wrote {args.json}")
    return 1 if exp.result["errors"] else 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
