"""The `chat` command: check the flags, parse adapters, stream tokens, report tokens/s."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from olive_workflows.core.errors import OliveWorkflowsError, Problem

if TYPE_CHECKING:
    from olive_workflows.runtime.chat import ChatSession

from olive_workflows.core.ownership import RUN_MARKER as RUN_INFO_FILE

EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C


def check_flags(
    adapter_specs: list[str],
    *,
    use: str | None,
    base: bool,
    compare: bool,
    prompt: str | None,
    max_new_tokens: int,
) -> None:
    """Refuse flag combinations that contradict each other, before anything is loaded."""
    one_of = [
        flag
        for flag, given in (
            (f"--use {use}", use is not None),
            ("--base", base),
            ("--compare", compare),
        )
        if given
    ]
    if len(one_of) > 1:
        raise OliveWorkflowsError(
            f"{' and '.join(one_of)} contradict each other: --use answers with one adapter, "
            "--base without any, --compare without and with each; pass one of them"
        )
    if base and adapter_specs:
        raise OliveWorkflowsError(
            "--base answers without adapters, so the adapters given with -a would never be "
            "used; drop --base or the -a options"
        )
    if prompt is not None and not prompt.strip():
        raise OliveWorkflowsError(
            "--prompt is empty; give a question, or leave -p out to chat interactively"
        )
    if max_new_tokens < 1:
        raise OliveWorkflowsError(f"--max-new-tokens must be at least 1, got {max_new_tokens}")


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


def answer_with(
    adapters: dict[str, Path], output_dir: Path, *, use: str | None, base: bool, compare: bool
) -> list[str | None]:
    """The adapters each question is answered with (None: the base model)."""
    found = f"no *.onnx_adapter file in {output_dir}"
    if use is not None and use not in adapters:
        loaded = ", ".join(adapters) if adapters else f"none: {found}"
        raise OliveWorkflowsError(
            f"--use {use!r}: no such adapter (loaded: {loaded}); pass one of the loaded names, "
            f"or load it with -a {use}=FILE"
        )
    if compare and not adapters:
        raise OliveWorkflowsError(
            f"--compare needs an adapter to compare with, and there is {found}; "
            "load one with -a NAME=FILE"
        )
    if compare:
        return [None, *adapters]
    if base or not adapters:
        return [None]
    return [use or next(iter(adapters))]


def _fallback_template(output_dir: Path) -> str | None:
    info = output_dir / RUN_INFO_FILE
    if not info.is_file():
        return None
    try:
        record = json.loads(info.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise OliveWorkflowsError(
            [
                Problem(
                    f"cannot read the run record ({exc})",
                    file=info,
                    fix="run the workflow again (`olive-workflows run RECIPE`) to rewrite it",
                )
            ]
        ) from None
    templates = (record.get("templates") if isinstance(record, dict) else None) or {}
    template = next(iter(templates.values()), None) if isinstance(templates, dict) else None
    return template if isinstance(template, str) else None


def chat_main(
    output_dir: Path,
    adapter_specs: list[str],
    *,
    use: str | None,
    base: bool,
    compare: bool,
    prompt: str | None,
    max_new_tokens: int,
) -> int:
    """Run the chat; return the exit code (0, or 130 when Ctrl-C ended it)."""
    check_flags(
        adapter_specs,
        use=use,
        base=base,
        compare=compare,
        prompt=prompt,
        max_new_tokens=max_new_tokens,
    )
    adapters = parse_adapters(adapter_specs, output_dir)
    names = answer_with(adapters, output_dir, use=use, base=base, compare=compare)
    template = _fallback_template(output_dir)
    try:
        from olive_workflows.runtime.chat import ChatSession

        session = ChatSession(output_dir, adapters)
    except KeyboardInterrupt:
        _interrupted("interrupted while loading the model")
        return EXIT_INTERRUPTED
    for warning in session.warnings:
        print(f"warning: {warning}", file=sys.stderr)

    def answer(text: str) -> None:
        _answer(session, output_dir, template, names, text, max_new_tokens)

    if prompt is not None:
        try:
            answer(prompt)
        except KeyboardInterrupt:
            _interrupted("interrupted")
            return EXIT_INTERRUPTED
        return 0
    print(
        "interactive chat; Ctrl-C stops an answer, an empty line, Ctrl-D or Ctrl-C here ends it",
        file=sys.stderr,
    )
    return _loop(answer, input)


def _loop(answer: Callable[[str], None], read: Callable[[str], str]) -> int:
    while True:
        try:
            text = read("> ")
        except (EOFError, KeyboardInterrupt):  # at the prompt: the user is done
            print(file=sys.stderr)
            return 0
        if not text.strip():
            return 0
        try:
            answer(text)
        except KeyboardInterrupt:  # during an answer: stop it, ask again
            _interrupted("answer stopped")


def _answer(
    session: ChatSession,
    output_dir: Path,
    template: str | None,
    names: list[str | None],
    text: str,
    max_new_tokens: int,
) -> None:
    from olive_workflows.runtime.chat import format_prompt

    full = format_prompt(text, output_dir, template)
    for name in names:
        print(f"[{name or 'no adapter'}] ", end="", flush=True)
        gen = session.generate(
            full,
            adapter=name,
            max_new_tokens=max_new_tokens,
            on_token=lambda piece: print(piece, end="", flush=True),
        )
        print(flush=True)
        print(f"  ({len(gen.token_ids)} tokens, {gen.tokens_per_second:,.0f} tokens/s)")


def _interrupted(what: str) -> None:
    print(flush=True)  # end the half-printed answer line
    print(f"[{what}]", file=sys.stderr, flush=True)
