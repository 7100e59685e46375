"""The `chat` command: parse adapters, stream tokens, report tokens/s."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from olive_workflows.core.errors import OliveWorkflowsError

RUN_INFO_FILE = "olive-workflows.json"


def parse_adapters(specs: list[str], output_dir: Path) -> dict[str, Path]:
    """`NAME=FILE` options, else every adapter file found in the folder."""
    from olive_workflows.runtime.chat import discover_adapters

    if not specs:
        return {name: path.resolve() for name, path in discover_adapters(output_dir).items()}
    adapters: dict[str, Path] = {}
    for spec in specs:
        name, sep, file = spec.partition("=")
        if not sep or not name or not file:
            raise OliveWorkflowsError(
                f"--adapter {spec!r}: write NAME=FILE, e.g. travel=adapter_weights.onnx_adapter"
            )
        if name in adapters:
            raise OliveWorkflowsError(f"--adapter: name {name!r} is given twice")
        # As typed: relative to the current folder if it exists there, else to the model.
        path = Path(file).expanduser()
        adapters[name] = path.resolve() if path.exists() else (output_dir / path).resolve()
    return adapters


def _fallback_template(output_dir: Path) -> str | None:
    info = output_dir / RUN_INFO_FILE
    if info.is_file():
        templates = json.loads(info.read_text()).get("templates") or {}
        return next(iter(templates.values()), None)
    return None


def chat_main(
    output_dir: Path,
    adapter_specs: list[str],
    *,
    use: str | None,
    base: bool,
    compare: bool,
    prompt: str | None,
    max_new_tokens: int,
) -> None:
    from olive_workflows.runtime.chat import ChatSession, format_prompt

    adapters = parse_adapters(adapter_specs, output_dir)
    try:
        session = ChatSession(output_dir, adapters)
    except (ValueError, RuntimeError) as exc:
        raise OliveWorkflowsError(str(exc)) from None
    if use is not None and use not in adapters:
        raise OliveWorkflowsError(
            f"--use {use!r}: no such adapter (loaded: {', '.join(adapters) or 'none'})"
        )
    names: list[str | None]
    if compare:
        names = [None, *adapters]
    elif base or not adapters:
        names = [None]
    else:
        names = [use or next(iter(adapters))]
    template = _fallback_template(output_dir)

    def answer(text: str) -> None:
        full = format_prompt(text, output_dir, template)
        for name in names:
            label = name or "no adapter"
            print(f"[{label}] ", end="", flush=True)
            try:
                gen = session.generate(
                    full,
                    adapter=name,
                    max_new_tokens=max_new_tokens,
                    on_token=lambda piece: print(piece, end="", flush=True),
                )
            except ValueError as exc:
                raise OliveWorkflowsError(str(exc)) from None
            print(flush=True)
            print(f"  ({len(gen.token_ids)} tokens, {gen.tokens_per_second:,.0f} tokens/s)")

    if prompt is not None:
        answer(prompt)
        return
    print("interactive chat; an empty line or Ctrl-D ends it", file=sys.stderr)
    while True:
        try:
            text = input("> ")
        except (EOFError, KeyboardInterrupt):
            print(file=sys.stderr)
            return
        if not text.strip():
            return
        answer(text)
