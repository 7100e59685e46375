"""Greedy tokens from the PyTorch model (+ PEFT adapter), the yardstick for ONNX outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def torch_greedy_tokens(
    base_model_dir: Path, adapter_dir: Path | None, prompt: str, max_new_tokens: int
) -> list[int]:
    """The new token ids `transformers` greedy-decodes after `prompt`, EOS included if hit.

    With `adapter_dir` the LoRA adapter is applied unmerged through `PeftModel`, as a
    LoRA step trained it. Everything loads from local files; nothing is downloaded.

    Example: `torch_greedy_tokens(Path("models/tiny-phi3"), None, "<|user|>\\nHi<|end|>\\n", 8)`
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_model_dir, local_files_only=True)
    # eager attention and float32: the same numerics the ONNX export was traced with.
    model: Any = AutoModelForCausalLM.from_pretrained(  # becomes a PeftModel below
        base_model_dir,
        local_files_only=True,
        dtype=torch.float32,
        attn_implementation="eager",
    )
    if adapter_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter_dir, local_files_only=True)
    model.eval()

    inputs = tokenizer(prompt, return_tensors="pt")
    pad_token_id = tokenizer.pad_token_id
    if pad_token_id is None:
        pad_token_id = tokenizer.eos_token_id
    with torch.no_grad():
        output = model.generate(
            **inputs,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            num_beams=1,
            pad_token_id=pad_token_id,
        )
    prompt_length = inputs["input_ids"].shape[1]
    return [int(token) for token in output[0, prompt_length:]]
