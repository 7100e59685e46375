"""Chat with an Olive output folder through onnxruntime-genai, with or without LoRA adapters."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GENAI_CONFIG = "genai_config.json"
ADAPTER_SUFFIX = ".onnx_adapter"


@dataclass(frozen=True)
class Generation:
    """One greedy completion: the new tokens only, and how fast they came."""

    prompt: str
    adapter: str | None
    token_ids: list[int]
    text: str
    seconds: float  # prefill + decode (and on_token calls); tokenizing the prompt excluded
    tokens_per_second: float


class ChatSession:
    """One onnxruntime-genai model plus any number of LoRA adapters served from it.

    `adapters` maps a name to an `.onnx_adapter` file; relative paths are taken relative
    to `model_dir`, where Olive's ExtractAdapters writes them. All adapters share one base
    model in memory (multi-LoRA serving); pick one per call with `generate(adapter=...)`.

    Example:
        session = ChatSession(Path("out"), {"travel": "adapter_weights.onnx_adapter"})
        print(session.generate(format_prompt("Best museum?", Path("out"), None), "travel").text)
    """

    def __init__(self, model_dir: Path, adapters: Mapping[str, str | Path] | None = None) -> None:
        import onnxruntime_genai as og

        self.model_dir = Path(model_dir)
        self._context_length = _read_context_length(self.model_dir)
        adapter_files = {
            name: _resolve_adapter(self.model_dir, name, file)
            for name, file in (adapters or {}).items()
        }
        self._og = og
        self._model = og.Model(str(self.model_dir))
        self._tokenizer = og.Tokenizer(self._model)
        # One Adapters object per model: each load() adds a name the generators can switch to.
        self._adapters = None
        if adapter_files:
            self._adapters = og.Adapters(self._model)
            for name, path in adapter_files.items():
                self._adapters.load(str(path), name)
        self.adapter_names: tuple[str, ...] = tuple(adapter_files)

    def generate(
        self,
        prompt: str,
        adapter: str | None = None,
        max_new_tokens: int = 32,
        on_token: Callable[[str], None] | None = None,
    ) -> Generation:
        """Greedy-decode up to `max_new_tokens` after `prompt`, stopping early at EOS.

        `prompt` is used verbatim (see `format_prompt`). Each decoded piece goes to
        `on_token` as soon as it is produced.
        """
        if adapter is not None and adapter not in self.adapter_names:
            loaded = ", ".join(self.adapter_names) or "none"
            raise ValueError(
                f"{self.model_dir}: no adapter named {adapter!r} (loaded: {loaded}); "
                "pass it in ChatSession(adapters={name: file}) first"
            )
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
        og = self._og
        prompt_ids = self._tokenizer.encode(prompt)
        if len(prompt_ids) >= self._context_length:
            raise ValueError(
                f"{self.model_dir}: the prompt is {len(prompt_ids)} tokens, the model's "
                f"context is {self._context_length}; shorten the prompt"
            )
        params = og.GeneratorParams(self._model)
        # max_length counts the prompt too; the genai_config default (top_k 50) is ignored
        # because do_sample=False means greedy.
        max_length = min(len(prompt_ids) + max_new_tokens, self._context_length)
        params.set_search_options(max_length=max_length, do_sample=False)
        stream = self._tokenizer.create_stream()

        start = time.perf_counter()
        generator = og.Generator(self._model, params)
        # The adapter must be active before append_tokens, which already runs the prefill.
        if adapter is not None:
            generator.set_active_adapter(self._adapters, adapter)
        generator.append_tokens(prompt_ids)
        new_ids: list[int] = []
        pieces: list[str] = []
        while not generator.is_done():
            generator.generate_next_token()
            token = int(generator.get_next_tokens()[0])
            new_ids.append(token)
            pieces.append(stream.decode(token))
            if on_token is not None:
                on_token(pieces[-1])
        seconds = time.perf_counter() - start
        del generator  # frees the KV cache now rather than at the next GC

        return Generation(
            prompt=prompt,
            adapter=adapter,
            token_ids=new_ids,
            # Not tokenizer.decode(new_ids): genai 0.14 cuts its result at the first invalid
            # UTF-8 sequence, which a byte-level BPE model can emit mid-text.
            text="".join(pieces),
            seconds=seconds,
            tokens_per_second=len(new_ids) / seconds if seconds > 0 else float("inf"),
        )


def discover_adapters(model_dir: Path) -> dict[str, Path]:
    """Every `*.onnx_adapter` file in `model_dir`, keyed by file stem, sorted by name."""
    return {path.stem: path for path in sorted(Path(model_dir).glob(f"*{ADAPTER_SUFFIX}"))}


def format_prompt(user_text: str, model_dir: Path, fallback_template: str | None) -> str:
    """The text to feed the model for one user turn.

    Uses the model's own chat template when the folder has one (`chat_template.jinja`, or
    `chat_template` in `tokenizer_config.json`); otherwise `fallback_template`, a
    `str.format` template such as a recipe's `text_template`, cut just before `{response}`
    so the model writes the response; otherwise `user_text` as is.

    Example: `format_prompt("Hi", Path("out"), None)` -> `"<|user|>\\nHi<|end|>\\n<|assistant|>\\n"`
    """
    model_dir = Path(model_dir)
    template, tokenizer_config = _chat_template(model_dir)
    if template is not None:
        return _render_chat_template(template, tokenizer_config, user_text)
    if fallback_template is not None:
        head = fallback_template.split("{response}", 1)[0]
        try:
            return head.format(prompt=user_text)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"text template {fallback_template!r}: only {{prompt}} may come before "
                f"{{response}}, and literal braces must be doubled ({exc!r})"
            ) from exc
    return user_text


def _read_context_length(model_dir: Path) -> int:
    config_path = model_dir / GENAI_CONFIG
    if not config_path.is_file():
        if not model_dir.is_dir():
            raise ValueError(f"{model_dir}: no such folder; pass an Olive output folder")
        raise ValueError(
            f"{model_dir}: no {GENAI_CONFIG}, so onnxruntime-genai cannot load it; use the "
            "output of a workflow that ends in an ONNX model with a ModelBuilder step"
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
        return int(config["model"]["context_length"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(
            f"{config_path}: not a valid genai config (model.context_length: {exc!r}); "
            "rebuild the folder with Olive"
        ) from exc


def _resolve_adapter(model_dir: Path, name: str, file: str | Path) -> Path:
    path = Path(file)
    if not path.is_absolute():
        path = model_dir / path
    if not path.is_file():
        found = ", ".join(p.name for p in discover_adapters(model_dir).values()) or "none"
        raise ValueError(
            f"{path}: adapter file for {name!r} not found (adapter files in {model_dir}: "
            f"{found}); check the path, or run the workflow's extract_adapters step"
        )
    return path


def _chat_template(model_dir: Path) -> tuple[str | None, dict[str, Any]]:
    tokenizer_config: dict[str, Any] = {}
    config_path = model_dir / "tokenizer_config.json"
    if config_path.is_file():
        tokenizer_config = json.loads(config_path.read_text(encoding="utf-8"))
    # transformers >= 4.50 saves the template in its own file, which wins over the key.
    jinja_path = model_dir / "chat_template.jinja"
    if jinja_path.is_file():
        return jinja_path.read_text(encoding="utf-8"), tokenizer_config
    template = tokenizer_config.get("chat_template")
    if isinstance(template, list):  # named templates: [{"name": ..., "template": ...}]
        named = {entry.get("name"): entry.get("template") for entry in template}
        template = named.get("default")
    return (template if isinstance(template, str) else None), tokenizer_config


def _render_chat_template(template: str, tokenizer_config: dict[str, Any], user_text: str) -> str:
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise ValueError(f"chat template: {message}")

    # The same environment transformers uses, so templates render exactly as in training.
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols]
    )
    env.globals["raise_exception"] = raise_exception
    special_tokens = {}
    for key in ("bos_token", "eos_token", "unk_token", "pad_token"):
        value = tokenizer_config.get(key)
        if isinstance(value, dict):  # AddedToken form: {"content": "<s>", ...}
            value = value.get("content")
        if isinstance(value, str):
            special_tokens[key] = value
    return env.from_string(template).render(
        messages=[{"role": "user", "content": user_text}],
        add_generation_prompt=True,
        **special_tokens,
    )
