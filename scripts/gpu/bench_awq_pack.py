"""Time AutoAWQ's WQLinear_GEMM.from_linear against awq_compat's vectorized packing."""

# Usage: python scripts/gpu/bench_awq_pack.py [--device cuda] [--json OUT.json]
# One Phi-3.5-mini decoder layer's four quantized linears (qkv_proj 9216x3072, o_proj
# 3072x3072, gate_up_proj 16384x3072, down_proj 3072x8192, group 128), packed by both; the
# AWQ pass packs 32 such layers. Checks that both give identical tensors.
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

SHAPES = {"qkv_proj": (9216, 3072), "o_proj": (3072, 3072), "gate_up_proj": (16384, 3072),
          "down_proj": (3072, 8192)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    import torch
    import transformers.activations as act

    act.PytorchGELUTanh = act.GELUTanh  # only the alias: keep AutoAWQ's own from_linear
    from awq.modules.linear import gemm
    from awq.quantize.quantizer import AwqQuantizer

    from olive_workflows.patches import awq_compat

    original = gemm.WQLinear_GEMM.__dict__["from_linear"]
    fast = awq_compat._fast_from_linear(original)
    q = AwqQuantizer.__new__(AwqQuantizer)
    q.w_bit, q.group_size, q.zero_point = 4, 128, True
    torch.manual_seed(0)

    def sync() -> None:
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()

    result: dict = {"device": args.device, "torch": torch.__version__, "layers": {}}
    total = {"autoawq_s": 0.0, "fast_s": 0.0}
    for name, (out_f, in_f) in SHAPES.items():
        linear = torch.nn.Linear(in_f, out_f, bias=False).half().to(args.device)
        weight = torch.randn(out_f, in_f, device=args.device).half() * 0.02
        linear.weight.data, scales, zeros = q.pseudo_quantize_tensor(weight)
        kw = {"w_bit": 4, "group_size": 128, "scales": scales.t().contiguous(),
              "zeros": zeros.t().contiguous()}  # fmt: skip
        times = {}
        outs = {}
        for label, impl in (("autoawq_s", original), ("fast_s", fast)):
            sync()
            start = time.perf_counter()
            outs[label] = impl.__get__(None, gemm.WQLinear_GEMM)(linear=linear, **kw)
            sync()
            times[label] = round(time.perf_counter() - start, 4)
            total[label] += times[label]
        same = all(
            torch.equal(getattr(outs["autoawq_s"], t), getattr(outs["fast_s"], t))
            for t in ("qweight", "qzeros", "scales")
        )
        result["layers"][name] = times | {"identical": same}
    result["one_layer"] = {k: round(v, 3) for k, v in total.items()}
    result["x32_layers"] = {k: round(32 * v, 1) for k, v in total.items()}
    text = json.dumps(result, indent=1)
    if args.json:
        Path(args.json).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
