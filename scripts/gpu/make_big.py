"""Build a random-weight model with microsoft/Phi-3.5-mini-instruct's exact config (3.82 B)."""

# Usage: python scripts/gpu/make_big.py OUT_DIR TOKENIZER_DIR
# The config below is the hub config.json of microsoft/Phi-3.5-mini-instruct, written out (the
# GPU machine has no network): vocab 32064, hidden 3072, 32 layers, 32 heads, intermediate
# 8192, longrope scaling to 131072 positions. Weights are N(0, 0.02) in fp16 (7.6 GB on disk);
# AWQ, LoRA and export cost the same as with the real weights. The tokenizer comes from
# TOKENIZER_DIR (the tiny model's: its ids stay below 32064), which is fine for timing.
from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

# microsoft/Phi-3.5-mini-instruct config.json: rope_scaling factors (48 = head_dim / 2 each)
# fmt: off
LONG_FACTOR = [
    1.0800000429153442, 1.1100000143051147, 1.1399999856948853, 1.340000033378601,
    1.5899999141693115, 1.600000023841858, 1.6200000047683716, 2.620000123977661,
    3.2300000190734863, 3.2300000190734863, 4.789999961853027, 7.400000095367432,
    7.700000286102295, 9.09000015258789, 12.199999809265137, 17.670000076293945,
    24.46000099182129, 28.57000160217285, 30.420001983642578, 30.840002059936523,
    32.590003967285156, 32.93000411987305, 42.320003509521484, 44.96000289916992,
    50.340003967285156, 50.45000457763672, 57.55000305175781, 57.93000411987305,
    58.21000289916992, 60.1400032043457, 62.61000442504883, 62.62000274658203,
    62.71000289916992, 63.1400032043457, 63.1400032043457, 63.77000427246094,
    63.93000411987305, 63.96000289916992, 63.970001220703125, 64.02999877929688,
    64.06999969482422, 64.08000183105469, 64.12000274658203, 64.41000366210938,
    64.4800033569336, 64.51000213623047, 64.52999877929688, 64.83999633789062,
]
SHORT_FACTOR = [
    1.0, 1.0199999809265137, 1.0299999713897705, 1.0299999713897705, 1.0499999523162842,
    1.0499999523162842, 1.0499999523162842, 1.0499999523162842, 1.0499999523162842,
    1.0699999332427979, 1.0999999046325684, 1.1099998950958252, 1.1599998474121094,
    1.1599998474121094, 1.1699998378753662, 1.2899998426437378, 1.339999794960022,
    1.679999828338623, 1.7899998426437378, 1.8199998140335083, 1.8499997854232788,
    1.8799997568130493, 1.9099997282028198, 1.9399996995925903, 1.9899996519088745,
    2.0199997425079346, 2.0199997425079346, 2.0199997425079346, 2.0199997425079346,
    2.0199997425079346, 2.0199997425079346, 2.0299997329711914, 2.0299997329711914,
    2.0299997329711914, 2.0299997329711914, 2.0299997329711914, 2.0299997329711914,
    2.0299997329711914, 2.0299997329711914, 2.0299997329711914, 2.0799996852874756,
    2.0899996757507324, 2.189999580383301, 2.2199995517730713, 2.5899994373321533,
    2.729999542236328, 2.749999523162842, 2.8399994373321533,
]
PHI35_MINI = {
    "vocab_size": 32064, "hidden_size": 3072, "intermediate_size": 8192,
    "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 32,
    "hidden_act": "silu", "max_position_embeddings": 131072,
    "original_max_position_embeddings": 4096, "rope_theta": 10000.0,
    "rope_scaling": {"type": "longrope", "long_factor": LONG_FACTOR, "short_factor": SHORT_FACTOR},
    "rms_norm_eps": 1e-05, "bos_token_id": 1, "eos_token_id": 32000, "pad_token_id": 32000,
    "tie_word_embeddings": False, "sliding_window": 262144, "attention_dropout": 0.0,
    "embd_pdrop": 0.0, "resid_pdrop": 0.0, "initializer_range": 0.02, "use_cache": True,
}
# fmt: on


def build(out: Path, tokenizer_dir: Path) -> dict:
    import torch
    from transformers import Phi3Config, Phi3ForCausalLM

    start = time.perf_counter()
    if (out / "config.json").exists():
        return {"skipped": "exists", "dir": str(out)}
    cfg = Phi3Config(**PHI35_MINI, torch_dtype="float16")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    with torch.device(device):  # allocating 3.8 B params on the GPU is ~20x faster
        model = Phi3ForCausalLM(cfg).to(torch.float16)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.02)
    params = sum(p.numel() for p in model.parameters())
    tmp = out.with_name(out.name + ".partial")
    model.save_pretrained(tmp, safe_serialization=True)
    for f in tokenizer_dir.iterdir():
        if "token" in f.name or f.suffix == ".jinja":
            shutil.copy(f, tmp / f.name)
    tmp.rename(out)  # a killed build never leaves a folder that looks complete
    size = sum(f.stat().st_size for f in out.iterdir())
    return {"params": params, "bytes": size, "seconds": round(time.perf_counter() - start, 1)}


if __name__ == "__main__":
    print(json.dumps(build(Path(sys.argv[1]), Path(sys.argv[2]))))
