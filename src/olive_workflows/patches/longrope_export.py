"""Let torch.export (OnnxConversion's dynamo exporter) trace Phi-3 models with LongRoPE scaling."""

# transformers 4.57 picks LongRoPE's short or long factors with a Python `if` on
# max(position_ids) + 1 > original_max_position_embeddings (modeling_rope_utils.py,
# longrope_frequency_update). torch.export cannot guard on that data-dependent value, so
# OnnxConversion(use_dynamo_exporter) fails on microsoft/Phi-3.5-mini-instruct with
# "GuardOnDataDependentSymNode: Could not guard on data-dependent expression". This makes the
# same choice with torch.where, so the ONNX graph keeps both factor sets and picks one per
# call, exactly as transformers does (short up to 4096 positions, long beyond).
# Use: name this file as the OnnxConversion pass's `user_script`; Olive imports it under the
# module name "longrope_export", which calls install(). Python callers call install().
from __future__ import annotations

from pathlib import Path
from typing import Any

_PATCHED = "_olive_workflows_longrope"


def user_script_path() -> str:
    """Absolute path of this file, for an OnnxConversion pass's `user_script`."""
    return str(Path(__file__).resolve())


def install() -> None:
    """Replace Phi3RotaryEmbedding.forward with a branch-free LongRoPE version (idempotent)."""
    import torch
    from transformers.models.phi3 import modeling_phi3

    cls = modeling_phi3.Phi3RotaryEmbedding
    if getattr(cls.forward, _PATCHED, False):
        return
    original = cls.forward

    @torch.no_grad()
    def forward(self: Any, x: torch.Tensor, position_ids: torch.Tensor) -> Any:
        if self.rope_type != "longrope":
            return original(self, x, position_ids)
        config = self.config
        limit = getattr(config, "original_max_position_embeddings", None)
        limit = limit or config.max_position_embeddings
        # computed, not cached on the module: torch.export warns about (and may drop) tensor
        # attributes assigned during tracing; it is 48 numbers, a constant in the graph
        long, _ = self.rope_init_fn(config, x.device, seq_len=limit + 1)
        short = self.original_inv_freq.to(x.device)
        inv_freq = torch.where(position_ids.max() + 1 > limit, long, short)
        # the rest is transformers' Phi3RotaryEmbedding.forward with inv_freq as a value
        inv_freq_expanded = inv_freq[None, :, None].float().expand(position_ids.shape[0], -1, 1)
        position_ids_expanded = position_ids[:, None, :].float()
        device_type = x.device.type if x.device.type != "mps" else "cpu"
        with torch.autocast(device_type=device_type, enabled=False):
            freqs = (inv_freq_expanded @ position_ids_expanded).transpose(1, 2)
            emb = torch.cat((freqs, freqs), dim=-1)
            cos = emb.cos() * self.attention_scaling
            sin = emb.sin() * self.attention_scaling
        return cos.to(dtype=x.dtype), sin.to(dtype=x.dtype)

    setattr(forward, _PATCHED, True)
    cls.forward = forward  # type: ignore[method-assign]  # the patch is the point


if __name__ == "longrope_export":
    install()
