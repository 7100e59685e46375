"""Build the project's tiny Phi-3 model and tokenizer offline, reproducibly to the byte."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from olive_workflows.runtime.model_folder import (
    build_into,
    check_target,
    is_complete,
    write_marker,
)

MARKER_FILE = "olive-workflows-tiny.json"
WEIGHTS_FILE = "model.safetensors"
_MARKER_KIND = "olive-workflows tiny phi3"
_SEED = 0

SPECIAL_TOKENS = ("<|endoftext|>", "<|user|>", "<|assistant|>", "<|end|>", "<|system|>")
# The text the tokenizer is trained on; the same shape as the travel recipes' text_template.
TRAINING_TEMPLATE = "<|user|>\n{prompt}<|end|>\n<|assistant|>\n{response}<|end|>"
# Phi-3's chat format, written out so the tokenizer renders the same text as TRAINING_TEMPLATE.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ '<|system|>\n' + message['content'] + '<|end|>\n' }}"
    "{% elif message['role'] == 'user' %}{{ '<|user|>\n' + message['content'] + '<|end|>\n' }}"
    "{% elif message['role'] == 'assistant' %}"
    "{{ '<|assistant|>\n' + message['content'] + '<|end|>\n' }}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)


def build_tiny_model(out_dir: Path, data_file: Path | None = None, *, force: bool = False) -> Path:
    """Build a random-weight Phi-3 (hidden 128, 2 layers, vocab 1024) into `out_dir`.

    The tokenizer is a byte-level BPE trained on `data_file` (default: the bundled travel
    set). The same inputs and package versions give identical bytes in every file. An
    `out_dir` that already holds the complete tiny model is returned untouched unless
    `force`; any other non-empty `out_dir` is refused unless `force`, and even then only
    the model's own files are written into it: nothing else in the folder is deleted.

    Example: `build_tiny_model(Path("models/tiny-phi3"))`
    """
    out_dir = Path(out_dir)
    data_file = Path(data_file) if data_file is not None else _default_data_file()
    if not force and is_tiny_model(out_dir):
        return out_dir
    check_target(out_dir, "olive-workflows tiny model", force=force)
    texts = _training_texts(data_file)
    return build_into(
        out_dir,
        lambda folder: _write_model(folder, texts),
        marker_name=MARKER_FILE,
        complete=is_tiny_model,
    )


def is_tiny_model(model_dir: Path) -> bool:
    """True when `model_dir` holds a complete, unmodified model made by `build_tiny_model`."""
    return is_complete(model_dir, MARKER_FILE, _MARKER_KIND, WEIGHTS_FILE)


def _default_data_file() -> Path:
    """The travel data set: inside the package in a wheel, at the repo root in a checkout."""
    from olive_workflows.core.paths import shipped

    checkout = shipped("data") / "data_sample_travel.jsonl"
    if checkout.is_file():
        return checkout
    raise FileNotFoundError(
        f"data_sample_travel.jsonl: not found in the installed package nor at {checkout}; "
        "pass data_file= explicitly"
    )


def _training_texts(data_file: Path) -> list[str]:
    texts = []
    with data_file.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                example = json.loads(line)
                texts.append(TRAINING_TEMPLATE.format(**example))
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(
                    f"{data_file}:{number}: expected a JSON object with 'prompt' and "
                    f"'response' strings ({exc})"
                ) from exc
    if not texts:
        raise ValueError(f"{data_file}: no examples; the tokenizer needs training text")
    return texts


@contextmanager
def _single_threaded_tokenizers() -> Iterator[None]:
    # The BPE trainer counts pairs in parallel; one thread removes any chance of ties being
    # broken differently from run to run. The variable is read at each call, so it can be
    # restored afterwards for the caller's own tokenizers.
    previous = os.environ.get("TOKENIZERS_PARALLELISM")
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("TOKENIZERS_PARALLELISM", None)
        else:
            os.environ["TOKENIZERS_PARALLELISM"] = previous


def _write_model(folder: Path, texts: list[str]) -> None:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import (
        GenerationConfig,
        Phi3Config,
        Phi3ForCausalLM,
        PreTrainedTokenizerFast,
    )

    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=1024,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    with _single_threaded_tokenizers():
        bpe.train_from_iterator(texts, trainer=trainer)

    eot, user, assistant, end, system = SPECIAL_TOKENS
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token=eot,
        eos_token=eot,
        unk_token=eot,
        pad_token=eot,
        additional_special_tokens=[user, assistant, end, system],
        model_max_length=512,
        # Without this the tokenizer also returns token_type_ids, which generate() rejects.
        model_input_names=["input_ids", "attention_mask"],
        chat_template=CHAT_TEMPLATE,
    )
    eot_id = tokenizer.convert_tokens_to_ids(eot)
    end_id = tokenizer.convert_tokens_to_ids(end)

    config = Phi3Config(
        vocab_size=1024,
        hidden_size=128,  # AWQ's group size 128 must divide every linear's in-features
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=512,
        original_max_position_embeddings=512,
        rope_scaling=None,
        bos_token_id=eot_id,
        eos_token_id=[eot_id, end_id],
        pad_token_id=eot_id,
        # Untied so lm_head is its own linear layer, like the real Phi-3 models.
        tie_word_embeddings=False,
        sliding_window=None,
    )
    # fork_rng keeps the caller's global torch RNG where it was.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_SEED)
        model = Phi3ForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=eot_id, eos_token_id=[eot_id, end_id], pad_token_id=eot_id
    )
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)

    write_marker(folder, MARKER_FILE, _MARKER_KIND, WEIGHTS_FILE)
