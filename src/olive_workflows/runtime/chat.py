"""Chat with an Olive output folder through onnxruntime-genai, with or without LoRA adapters."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from olive_workflows.core.errors import OliveWorkflowsError, Problem
from olive_workflows.core.manifest import ADAPTER_SUFFIX, ManifestError, manifest_adapters
from olive_workflows.runtime.adapter_residency import host_copy_warning

GENAI_CONFIG = "genai_config.json"
_REBUILD = "run the workflow again (`olive-workflows run RECIPE`) to rewrite the output folder"
_ADAPTER_FIX = (
    "pass the .onnx_adapter file that this model's workflow wrote (its extract_adapters "
    "step), or run the workflow again"
)


class ChatError(OliveWorkflowsError, ValueError):
    """The model folder, an adapter file or a request cannot be used; names the file.

    A ValueError too, for callers that caught the ValueErrors this module used to raise.
    """

    def __init__(self, problems: Problem | Iterable[Problem] | str) -> None:
        super().__init__([problems] if isinstance(problems, Problem) else problems)


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
        self.model_dir = Path(model_dir)
        self._context_length = _read_context_length(self.model_dir)
        self.adapter_files: dict[str, Path] = {
            name: _resolve_adapter(self.model_dir, name, file)
            for name, file in (adapters or {}).items()
        }
        og = _import_genai()
        self._og = og
        self._model = _genai_call(
            lambda: og.Model(_quiet_config(og, self.model_dir)), _model_problem, self.model_dir
        )
        self._tokenizer = _genai_call(
            lambda: og.Tokenizer(self._model), _tokenizer_problem, self.model_dir
        )
        # One Adapters object per model: each load() adds a name the generators can switch to.
        self._adapters = None
        if self.adapter_files:
            self._adapters = og.Adapters(self._model)
            for name, path in self.adapter_files.items():
                self._load_adapter(name, path)
        self.adapter_names: tuple[str, ...] = tuple(self.adapter_files)
        # What the user should know about how this runtime serves the adapters (speed).
        warning = host_copy_warning(
            str(getattr(og, "__version__", "")), self.model_dir, list(self.adapter_files.values())
        )
        self.warnings: tuple[str, ...] = (warning,) if warning else ()

    def _load_adapter(self, name: str, path: Path) -> None:
        """Load one adapter and prove it fits: genai checks the file's format on load, but
        names, shapes and dtypes only when a generator first runs with it."""
        og = self._og
        try:
            self._adapters.load(str(path), name)  # type: ignore[union-attr]
        except RuntimeError as exc:
            raise ChatError(
                Problem(
                    f"adapter {name!r} is not an onnxruntime adapter file ({_reason(exc)})",
                    file=path,
                    fix=_ADAPTER_FIX,
                )
            ) from None
        try:
            ids = list(self._tokenizer.encode("Hi")) or [0]
            params = og.GeneratorParams(self._model)
            params.set_search_options(max_length=len(ids) + 1, do_sample=False)
            generator = og.Generator(self._model, params)
            generator.set_active_adapter(self._adapters, name)
            generator.append_tokens(ids)  # the prefill: every adapter input is bound here
            del generator
        except RuntimeError as exc:
            raise ChatError(
                Problem(
                    f"adapter {name!r} does not fit the model in {self.model_dir} ({_reason(exc)})",
                    file=path,
                    fix="use the adapter extracted from this model by the same workflow; an "
                    "adapter trained on another base model, rank layout or dtype cannot be "
                    "served on it",
                )
            ) from None

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
            raise ChatError(
                Problem(
                    f"no adapter named {adapter!r} (loaded: {loaded})",
                    file=self.model_dir,
                    fix="pass it in ChatSession(adapters={name: file}) first",
                )
            )
        if max_new_tokens < 1:
            raise ChatError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
        og = self._og
        prompt_ids = self._tokenizer.encode(prompt)
        if len(prompt_ids) >= self._context_length:
            raise ChatError(
                Problem(
                    f"the prompt is {len(prompt_ids)} tokens, the model's context is "
                    f"{self._context_length}",
                    file=self.model_dir,
                    fix="shorten the prompt",
                )
            )
        params = og.GeneratorParams(self._model)
        # max_length counts the prompt too; the genai_config default (top_k 50) is ignored
        # because do_sample=False means greedy.
        max_length = min(len(prompt_ids) + max_new_tokens, self._context_length)
        params.set_search_options(max_length=max_length, do_sample=False)
        stream = self._tokenizer.create_stream()

        start = time.perf_counter()
        new_ids: list[int] = []
        pieces: list[str] = []
        try:
            generator = og.Generator(self._model, params)
            # The adapter must be active before append_tokens, which already runs the prefill.
            if adapter is not None:
                generator.set_active_adapter(self._adapters, adapter)
            generator.append_tokens(prompt_ids)
            while not generator.is_done():
                generator.generate_next_token()
                token = int(generator.get_next_tokens()[0])
                new_ids.append(token)
                pieces.append(stream.decode(token))
                if on_token is not None:
                    on_token(pieces[-1])
        except RuntimeError as exc:
            raise self._generation_error(adapter, exc) from None
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

    def _generation_error(self, adapter: str | None, exc: RuntimeError) -> ChatError:
        if adapter is None:
            return ChatError(
                Problem(
                    f"onnxruntime-genai failed while generating ({_reason(exc)})",
                    file=self.model_dir,
                    fix=_REBUILD,
                )
            )
        return ChatError(
            Problem(
                f"onnxruntime-genai failed while generating with adapter {adapter!r} "
                f"({_reason(exc)})",
                file=self.adapter_files[adapter],
                fix=_ADAPTER_FIX,
            )
        )


def discover_adapters(model_dir: Path) -> dict[str, Path]:
    """The folder's adapters by name: from its adapters.json (a multi-adapter run's manifest,
    in the recipe's order) when it has one, else every `*.onnx_adapter` file keyed by file
    stem, sorted by name."""
    try:
        named = manifest_adapters(Path(model_dir))
    except ManifestError as exc:
        fix = "re-run the recipe that wrote the folder"
        raise ChatError([Problem(str(exc), fix=fix)]) from None
    if named is not None:
        return named
    found = sorted(Path(model_dir).glob(f"*{ADAPTER_SUFFIX}"))
    return {path.stem: path for path in found if path.is_file()}


def format_prompt(user_text: str, model_dir: Path, fallback_template: str | None) -> str:
    """The text to feed the model for one user turn.

    Uses the model's own chat template when the folder has one (`chat_template.jinja`, or
    `chat_template` in `tokenizer_config.json`); otherwise `fallback_template`, a
    `str.format` template such as a recipe's `text_template`, cut just before `{response}`
    so the model writes the response; otherwise `user_text` as is.

    Example: `format_prompt("Hi", Path("out"), None)` -> `"<|user|>\\nHi<|end|>\\n<|assistant|>\\n"`
    """
    model_dir = Path(model_dir)
    template, tokenizer_config, source = _chat_template(model_dir)
    if template is not None:
        return _render_chat_template(template, tokenizer_config, user_text, source)
    if fallback_template is not None:
        head = fallback_template.split("{response}", 1)[0]
        try:
            return head.format(prompt=user_text)
        except (KeyError, IndexError, ValueError) as exc:
            raise ChatError(
                f"text template {fallback_template!r}: only {{prompt}} may come before "
                f"{{response}}, and literal braces must be doubled ({exc!r})"
            ) from exc
    return user_text


def _read_context_length(model_dir: Path) -> int:
    """The model's context length, after checking the files genai will read first."""
    config_path = model_dir / GENAI_CONFIG
    if not config_path.is_file():
        if not model_dir.exists():
            raise ChatError(
                Problem("no such folder", file=model_dir, fix="pass an Olive output folder")
            )
        if not model_dir.is_dir():
            raise ChatError(
                Problem(
                    "is a file, not a folder",
                    file=model_dir,
                    fix="pass the output folder that holds it (genai_config.json, model.onnx)",
                )
            )
        raise ChatError(
            Problem(
                f"no {GENAI_CONFIG}, so onnxruntime-genai cannot load it",
                file=model_dir,
                fix="use the output of a workflow that ends in an ONNX model with a "
                "genai_metadata (ModelBuilder) step",
            )
        )
    config = _read_json(config_path, "genai config")
    try:
        context_length = int(config["model"]["context_length"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ChatError(
            Problem(
                f"not a valid genai config (model.context_length: {exc!r})",
                file=config_path,
                fix=_REBUILD,
            )
        ) from None
    decoder = config["model"].get("decoder")
    filename = decoder.get("filename") if isinstance(decoder, dict) else None
    if isinstance(filename, str) and not (model_dir / filename).is_file():
        raise ChatError(
            Problem(
                f"model.decoder.filename names {filename}, which is not in {model_dir}",
                file=config_path,
                fix=f"restore {filename}, or {_REBUILD}",
            )
        )
    return context_length


def _quiet_config(og: Any, model_dir: Path) -> Any:
    """The folder's genai config, with onnxruntime's own log at FATAL unless the config sets
    a level: a failing kernel otherwise prints its C++ source path on stderr, and every
    failure reaches the caller as an exception anyway."""
    config = og.Config(str(model_dir))
    decoder = _read_json(model_dir / GENAI_CONFIG, "genai config")["model"].get("decoder")
    options = decoder.get("session_options") if isinstance(decoder, dict) else None
    if not (isinstance(options, dict) and "log_severity_level" in options):
        quiet = {"model": {"decoder": {"session_options": {"log_severity_level": 4}}}}
        config.overlay(json.dumps(quiet))
    return config


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ChatError(
            Problem(f"cannot read the {what} ({_reason(exc)})", file=path, fix=_REBUILD)
        ) from None


def _resolve_adapter(model_dir: Path, name: str, file: str | Path) -> Path:
    path = Path(file)
    if not path.is_absolute():
        path = model_dir / path
    if path.is_dir():
        raise ChatError(
            Problem(f"adapter {name!r} is a folder, not a file", file=path, fix=_ADAPTER_FIX)
        )
    if not path.is_file():
        found = ", ".join(p.name for p in discover_adapters(model_dir).values()) or "none"
        raise ChatError(
            Problem(
                f"adapter file for {name!r} not found (adapter files in {model_dir}: {found})",
                file=path,
                fix="check the path, or run the workflow's extract_adapters step",
            )
        )
    return path


def _import_genai() -> Any:
    try:
        import onnxruntime_genai as og
    except ImportError as exc:
        raise ChatError(
            f"chat needs onnxruntime-genai ({exc}); install it with "
            "`pip install 'olive-workflows[olive]'`"
        ) from None
    return og


# onnxruntime prefixes its messages with the C++ source location and function signature
# (`/onnxruntime_src/.../adapter_format_utils.cc:93 const ...::Validate...(gsl::span<...>)`)
# and error-code banners; what is left is the sentence a user can act on.
_CPP_SOURCE = re.compile(
    r"/?(?:[\w.+-]+/)+[\w.+-]+\.(?:cc|cpp|cxx|h|hpp):\d+\s*(?:[^()\n]*::[^()\n]*\([^)\n]*\)\s*)?"
)
_BANNER = re.compile(r"\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*\w+\s*:\s*")
_BOILERPLATE = ("Please fix either the inputs/outputs or the model.",)


def _reason(exc: BaseException) -> str:
    """One line from a genai/onnxruntime (or any) exception, without C++ source paths."""
    text = _BANNER.sub("", _CPP_SOURCE.sub("", str(exc)))
    for noise in _BOILERPLATE:
        text = text.replace(noise, "")
    text = " ".join(text.split()).strip(" :;") or type(exc).__name__
    return text if len(text) <= 400 else text[:400] + "..."


def _genai_call(
    make: Callable[[], Any], problem: Callable[[Path, str], Problem], where: Path
) -> Any:
    try:
        return make()
    except RuntimeError as exc:
        raise ChatError(problem(where, _reason(exc))) from None


def _model_problem(model_dir: Path, reason: str) -> Problem:
    config_path = model_dir / GENAI_CONFIG
    if GENAI_CONFIG in reason or "model_type" in reason:
        return Problem(
            f"onnxruntime-genai refuses this genai config ({reason})",
            file=config_path,
            fix=f"correct that value, or {_REBUILD}",
        )
    failed = re.match(r"Load model from (.+?) failed:\s*(.*)", reason)
    if failed:
        return Problem(
            f"the ONNX model cannot be loaded ({failed[2] or reason})",
            file=Path(failed[1]),
            fix=f"the file is damaged, missing or not an ONNX model; {_REBUILD}",
        )
    if "Protobuf" in reason or ".onnx" in reason:
        return Problem(
            f"the ONNX model cannot be loaded ({reason})",
            file=model_dir,
            fix=f"the model file is damaged or not an ONNX model; {_REBUILD}",
        )
    return Problem(
        f"onnxruntime-genai cannot load the model ({reason})", file=model_dir, fix=_REBUILD
    )


def _tokenizer_problem(model_dir: Path, reason: str) -> Problem:
    return Problem(
        f"the tokenizer cannot be loaded ({reason})",
        file=model_dir,
        fix=f"tokenizer.json and tokenizer_config.json must be the model's own; {_REBUILD}",
    )


def _chat_template(model_dir: Path) -> tuple[str | None, dict[str, Any], Path]:
    """The chat template, the tokenizer config, and the file the template came from."""
    tokenizer_config: dict[str, Any] = {}
    config_path = model_dir / "tokenizer_config.json"
    if config_path.is_file():
        data = _read_json(config_path, "tokenizer config")
        tokenizer_config = data if isinstance(data, dict) else {}
    # transformers >= 4.50 saves the template in its own file, which wins over the key.
    jinja_path = model_dir / "chat_template.jinja"
    if jinja_path.is_file():
        try:
            return jinja_path.read_text(encoding="utf-8"), tokenizer_config, jinja_path
        except (OSError, UnicodeDecodeError) as exc:
            raise ChatError(
                Problem(f"cannot read the chat template ({_reason(exc)})", file=jinja_path)
            ) from None
    template = tokenizer_config.get("chat_template")
    if isinstance(template, list):  # named templates: [{"name": ..., "template": ...}]
        entries = [entry for entry in template if isinstance(entry, dict)]
        named = {entry.get("name"): entry.get("template") for entry in entries}
        template = named.get("default")
    return (template if isinstance(template, str) else None), tokenizer_config, config_path


def _render_chat_template(
    template: str, tokenizer_config: dict[str, Any], user_text: str, source: Path
) -> str:
    from jinja2 import TemplateError
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class TemplateRaised(Exception):
        """raise_exception() in the template: the template's own message for the user."""

    def raise_exception(message: str) -> None:
        raise TemplateRaised(message)

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
    try:
        return env.from_string(template).render(
            messages=[{"role": "user", "content": user_text}],
            add_generation_prompt=True,
            **special_tokens,
        )
    except TemplateRaised as exc:
        raise ChatError(Problem(f"chat template: {exc}", file=source)) from None
    except TemplateError as exc:
        line = getattr(exc, "lineno", None) if source.suffix == ".jinja" else None
        raise ChatError(
            Problem(
                f"chat template: {type(exc).__name__}: {exc}",
                file=source,
                line=line,
                fix="fix the template (it is Jinja, as transformers renders it), or " + _REBUILD,
            )
        ) from None
