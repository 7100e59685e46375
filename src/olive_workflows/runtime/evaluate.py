"""Quality of an output: held-out response perplexity through onnxruntime-genai (base and each
adapter), the same for the PyTorch model it came from, logit agreement, and greedy answers."""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from olive_workflows.recipe.schema import LoadedRecipe

# The lab's question, then two of a different kind: what every report answers, side by side.
FIXED_PROMPTS = (
    "what is the best thing to see in chicago",
    "I have one day in Paris. What should I do?",
    "What should I pack for a week of hiking in Iceland?",
)
QUALITY_FILE = "quality.json"  # report/measures.py reads it (the same name)
_SPLIT = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+)(?:\[(?P<start>-?\d*):(?P<stop>-?\d*)\])?$")


@dataclass(frozen=True)
class Example:
    """One held-out row: the text up to the response, and the whole text."""

    prompt: str
    full: str


@dataclass
class Score:
    """Summed negative log-likelihood of the response tokens, and how many there were."""

    nll: float = 0.0
    tokens: int = 0
    max_abs_logit_diff: float | None = None

    @property
    def ppl(self) -> float:
        return math.exp(self.nll / self.tokens) if self.tokens else float("nan")

    def add(self, nll: float, tokens: int) -> None:
        self.nll += nll
        self.tokens += tokens


@dataclass
class Quality:
    """What `eval` reports; `to_json` is the documented `quality.json` schema."""

    data: dict[str, Any]
    base: Score
    adapters: dict[str, Score] = field(default_factory=dict)
    reference: dict[str, Score] = field(default_factory=dict)
    answers: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """`vs_base_pct`: an adapter's perplexity against the base model's, in percent
        (`pytorch+NAME` against `pytorch`); negative is better."""

        def score(s: Score, base: Score | None = None) -> dict[str, Any]:
            out: dict[str, Any] = {"ppl": round(s.ppl, 4), "tokens": s.tokens}
            change = _change_pct(s, base)
            if change is not None:
                out["vs_base_pct"] = change
            if s.max_abs_logit_diff is not None:
                out["max_abs_logit_diff_vs_onnx"] = s.max_abs_logit_diff
            return out

        torch_base = self.reference.get("pytorch")
        return {
            "data": self.data,
            "base": score(self.base),
            "adapters": {name: score(s, self.base) for name, s in self.adapters.items()},
            "reference": {
                name: score(s, torch_base if name.startswith("pytorch+") else None)
                for name, s in self.reference.items()
            },
            "answers": self.answers,
            "seconds": round(self.seconds, 1),
        }


def _change_pct(score: Score, base: Score | None) -> float | None:
    if base is None or not (math.isfinite(score.ppl) and math.isfinite(base.ppl)) or not base.ppl:
        return None
    return round((score.ppl / base.ppl - 1) * 100, 1)


def read_examples(
    files: Sequence[Path], template: str, split: str = "train", limit: int | None = None
) -> list[Example]:
    """Rows of local JSON-lines/JSON files, formatted with a `{prompt}...{response}` template.

    `split` takes the `datasets` slice form (`train`, `train[250:]`, `train[:-38]`) over the
    rows of all files in order, so the held-out part is exactly the one training left out.
    """
    if "{response}" not in template:
        raise ValueError(f"template {template!r} has no {{response}}: nothing to score")
    rows: list[dict[str, Any]] = []
    for path in files:
        text = Path(path).read_text(encoding="utf-8-sig")
        if Path(path).suffix == ".json":
            data = json.loads(text)
            rows += data if isinstance(data, list) else [data]
        else:
            rows += [json.loads(line) for line in text.splitlines() if line.strip()]
    match = _SPLIT.match(split.replace(" ", ""))
    if match is None:
        raise ValueError(f"split {split!r}: use `train` or a slice such as `train[250:]`")
    start = int(match["start"]) if match["start"] else None
    stop = int(match["stop"]) if match["stop"] else None
    rows = rows[start:stop][:limit]
    head = template.split("{response}", 1)[0]
    return [
        Example(prompt=head.format(**row), full=template.format(**row))
        for row in rows
        if isinstance(row, dict)
    ]


def _nll(logits: Any, ids: Sequence[int], start: int) -> tuple[float, int]:
    """NLL of ids[start:] given logits[i] predicting ids[i + 1] (numpy, float64 softmax)."""
    import numpy as np

    rows = np.asarray(logits[start - 1 : len(ids) - 1], dtype=np.float64)
    targets = np.asarray(ids[start:])
    top = rows.max(axis=1, keepdims=True)
    log_z = (top[:, 0] + np.log(np.exp(rows - top).sum(axis=1))).astype(np.float64)
    picked = rows[np.arange(len(targets)), targets]
    return float((log_z - picked).sum()), len(targets)


def _split_ids(encode: Any, example: Example) -> tuple[list[int], int]:
    full = list(encode(example.full))
    prompt = list(encode(example.prompt))
    start = len(prompt)
    # A merge across the boundary would move it; score from the first differing token then.
    while start > 0 and full[:start] != prompt[:start]:
        start -= 1
    return full, max(start, 1)


def genai_scores(
    model_dir: Path,
    adapters: Mapping[str, Path],
    examples: Sequence[Example],
    keep_logits: bool = False,
) -> tuple[dict[str | None, Score], dict[str | None, list[Any]]]:
    """Scores through onnxruntime-genai for the base (key None) and each adapter."""
    import onnxruntime_genai as og

    model = og.Model(str(model_dir))
    tokenizer = og.Tokenizer(model)
    loaded = None
    if adapters:
        loaded = og.Adapters(model)
        for adapter_name, path in adapters.items():
            loaded.load(str(path), adapter_name)
    scores: dict[str | None, Score] = {}
    logits_kept: dict[str | None, list[Any]] = {}  # (ids, start, logits) per example
    names: list[str | None] = [None, *adapters]
    for name in names:
        score = scores.setdefault(name, Score())
        for example in examples:
            ids, start = _split_ids(tokenizer.encode, example)
            params = og.GeneratorParams(model)
            params.set_search_options(max_length=len(ids), do_sample=False)
            generator = og.Generator(model, params)
            if name is not None:
                generator.set_active_adapter(loaded, name)
            generator.append_tokens(ids)
            logits = generator.get_output("logits")[0]
            score.add(*_nll(logits, ids, start))
            if keep_logits:
                logits_kept.setdefault(name, []).append((ids, start, logits))
            del generator
    return scores, logits_kept


def torch_scores(
    model_path: Path, adapter_path: Path | None, scored: Sequence[tuple[list[int], int, Any]]
) -> Score:
    """The PyTorch model's (optionally + PEFT adapter) score on the same token ids, with the
    largest absolute logit difference from the ONNX logits given alongside each."""
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM

    model: Any = AutoModelForCausalLM.from_pretrained(str(model_path), dtype=torch.float32)
    if adapter_path is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter_path))
    model.eval()
    score = Score(max_abs_logit_diff=0.0)
    with torch.no_grad():
        for ids, start, onnx_logits in scored:
            logits = model(torch.tensor([ids])).logits[0].float().numpy()
            score.add(*_nll(logits, ids, start))
            diff = float(np.abs(logits - np.asarray(onnx_logits, dtype=np.float32)).max())
            score.max_abs_logit_diff = max(score.max_abs_logit_diff or 0.0, diff)
    return score


def evaluate(
    model_dir: Path,
    adapters: Mapping[str, Path],
    examples: Sequence[Example],
    *,
    data: dict[str, Any],
    reference_model: Path | None = None,
    reference_adapters: Mapping[str, Path] | None = None,
    prompts: Iterable[str] = FIXED_PROMPTS,
    max_new_tokens: int = 48,
) -> Quality:
    """Everything `olive-workflows eval` prints (see `Quality.to_json`)."""
    from olive_workflows.runtime.chat import ChatSession, format_prompt

    started = time.perf_counter()
    keep = reference_model is not None
    scores, logits = genai_scores(model_dir, adapters, examples, keep_logits=keep)
    quality = Quality(
        data=data,
        base=scores[None],
        adapters={name: scores[name] for name in adapters},
    )
    if reference_model is not None:
        quality.reference["pytorch"] = torch_scores(reference_model, None, logits[None])
        for name, path in (reference_adapters or {}).items():
            if name in logits:
                quality.reference[f"pytorch+{name}"] = torch_scores(
                    reference_model, path, logits[name]
                )
    session = ChatSession(model_dir, adapters)
    for prompt in prompts:
        text = format_prompt(prompt, model_dir, None)
        row = {"prompt": prompt, "base": session.generate(text, None, max_new_tokens).text}
        for name in adapters:
            row[name] = session.generate(text, name, max_new_tokens).text
        quality.answers.append(row)
    quality.seconds = time.perf_counter() - started
    return quality


@dataclass(frozen=True)
class EvalPlan:
    """What to score an output folder on, resolved from its run record and recipe."""

    model_dir: Path
    adapters: dict[str, Path]
    examples: list[Example]
    data: dict[str, Any]
    reference_model: Path | None
    reference_adapters: dict[str, Path]


def plans_for_output(
    output_dir: Path,
    adapters: Mapping[str, Path] | None = None,
    data: str | None = None,
    *,
    reference: bool = True,
    limit: int | None = None,
) -> list[EvalPlan]:
    """Resolve `eval`'s defaults from the output's run record (olive-workflows.json): the
    recipe's held-out data sets (quality_sets; `data`: a data set name, or a .jsonl file
    formatted with the recipe's training template), every adapter file in the folder, and
    the PyTorch models; one plan per data set. Raises ValueError with the fix when something
    cannot be found."""
    loaded, pytorch = _output_recipe(Path(output_dir))
    return [
        plan_for_recipe(
            Path(output_dir), loaded, pytorch, adapters, name, reference=reference, limit=limit
        )
        for name in quality_sets(loaded, data)
    ]


def _output_recipe(output_dir: Path) -> tuple[LoadedRecipe, dict[str, Any]]:
    """The recipe that made an output folder, and its run record's `pytorch` entry."""
    from olive_workflows.core.ownership import RUN_MARKER
    from olive_workflows.recipe.parse import load_recipe

    record_path = output_dir / RUN_MARKER
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"{record_path}: cannot read the run record ({exc}); pass the output folder of "
            "`olive-workflows run`"
        ) from None
    recipe_path = Path(str(record.get("recipe", "")))
    if not recipe_path.is_file():
        raise ValueError(
            f"{output_dir}: its recipe {recipe_path} is gone; eval reads the data sets from it"
        )
    return load_recipe(recipe_path), record.get("pytorch") or {}


def plan_for_recipe(
    output_dir: Path,
    loaded: LoadedRecipe,
    pytorch: Mapping[str, Any],
    adapters: Mapping[str, Path] | None = None,
    data: str | None = None,
    *,
    reference: bool = True,
    limit: int | None = None,
) -> EvalPlan:
    """What to score an output folder on, given its recipe and the PyTorch models it came from
    (`pytorch`: the run record's entry, `{"model": folder or None, "adapter": PEFT folder}`).
    Raises ValueError with the fix when something cannot be found."""
    from olive_workflows.core.paths import resolve_path
    from olive_workflows.recipe.steps import LoraStep
    from olive_workflows.runtime.chat import discover_adapters

    output_dir = Path(output_dir)
    recipe_path = loaded.path
    recipe = loaded.recipe
    lora = next((s for s in recipe.steps if isinstance(s, LoraStep)), None)
    names = list(recipe.data)
    chosen: str | None = data or (lora.eval_data if lora is not None else None)
    if chosen is None:
        held_out = [n for n in names if n.endswith(("_eval", "_test", "_heldout"))]
        chosen = held_out[0] if held_out else None
    if chosen is None:
        raise ValueError(
            f"{recipe_path}: no held-out data set to score on (none ends in `_eval`); pass "
            f"--data with one of: {', '.join(names) or 'none'}, or a .jsonl file"
        )
    if lora is not None and lora.adapters is not None:
        lora = lora.for_adapter(lora.adapter_names[0])
    train = recipe.data[lora.data] if lora and lora.data else next(iter(recipe.data.values()))
    if chosen in recipe.data:
        ds = recipe.data[chosen]
        if not ds.files or not ds.template:
            raise ValueError(
                f"data set `{chosen}`: eval needs local files and a `template` with {{response}}"
            )
        files = [resolve_path(f, loaded.base_dir) for f in ds.files]
        template, split = ds.template, ds.split
    else:
        file = Path(chosen)
        if not file.is_file():
            raise ValueError(
                f"--data {chosen}: neither a data set of {recipe_path.name} "
                f"({', '.join(names)}) nor a file"
            )
        if not train.template:
            raise ValueError(f"{recipe_path}: the training data set has no `template` to use")
        files, template, split = [file], train.template, "train"
    examples = read_examples(files, template, split, limit)
    if not examples:
        raise ValueError(f"data `{chosen}` (split {split}) has no rows to score")
    found = dict(adapters) if adapters is not None else discover_adapters(output_dir)
    found = {name: Path(path).resolve() for name, path in found.items()}
    ref_model = Path(pytorch["model"]) if reference and pytorch.get("model") else None
    ref_adapters: dict[str, Path] = {}
    if ref_model is not None:
        ref_adapters = _reference_adapters(output_dir, found, pytorch)
    return EvalPlan(
        model_dir=output_dir,
        adapters=found,
        examples=examples,
        data={"name": chosen, "split": split, "rows": len(examples)},
        reference_model=ref_model,
        reference_adapters=ref_adapters,
    )


def _reference_adapters(
    output_dir: Path, found: Mapping[str, Path], pytorch: Mapping[str, Any]
) -> dict[str, Path]:
    """The PEFT adapter each scored adapter file was made from: from adapters.json when the
    run made several, else the run record's one trained adapter for a lone adapter file."""
    from olive_workflows.core.manifest import read_manifest

    manifest = read_manifest(output_dir)
    if manifest is not None:
        entries = manifest["adapters"]
        return {
            name: Path(entries[name]["peft"])
            for name in found
            if name in entries and Path(str(entries[name].get("peft", ""))).is_dir()
        }
    if pytorch.get("adapter") and len(found) == 1:
        return {next(iter(found)): Path(pytorch["adapter"])}
    return {}


def quality_sets(loaded: LoadedRecipe, data: str | None) -> list[str | None]:
    """The data sets `eval` scores: `data` when given, else the recipe's `evaluate.quality`
    sets when it lists several, else [None] (plan_for_recipe's default)."""
    if data is not None:
        return [data]
    block = loaded.recipe.evaluate
    if block is not None and block.quality is not None and len(block.quality.data_sets) > 1:
        return list(block.quality.data_sets)
    return [None]


def measure_sets(plans: list[EvalPlan], prompts: Iterable[str] = FIXED_PROMPTS) -> dict[str, Any]:
    """quality.json for one or several held-out sets. One: `evaluate`'s result. Several: the
    first set's result (answers included, so every reader of quality.json keeps working) plus
    `data_sets`: every set's result by name, and `cross`: the perplexity table, model (base,
    each adapter) -> data set -> ppl, the figure that shows each adapter on its own set."""
    results = []
    for k, plan in enumerate(plans):
        results.append(evaluate_plan(plan, prompts if k == 0 else ()).to_json())
    if len(results) == 1:
        return results[0]
    by_name = {plan.data["name"]: result for plan, result in zip(plans, results, strict=True)}
    cross: dict[str, dict[str, float]] = {"base": {}}
    for set_name, result in by_name.items():
        cross["base"][set_name] = result["base"]["ppl"]
        for name, score in result["adapters"].items():
            cross.setdefault(name, {})[set_name] = score["ppl"]
    return {
        **results[0],
        "data_sets": by_name,
        "cross": cross,
        "seconds": round(sum(r["seconds"] for r in results), 1),
    }


def save_quality(output_dir: Path, result: dict[str, Any]) -> Path:
    """Write `quality.json` into a run's output folder, recorded as the tool's file (the next
    run replaces it rather than keeping a stale one as the user's)."""
    from olive_workflows.core.files import atomic_write
    from olive_workflows.core.ownership import RUN_MARKER, note_written, record_in_marker

    path = Path(output_dir) / QUALITY_FILE
    text = json.dumps(result, indent=2, ensure_ascii=False) + "\n"
    atomic_write(path, text)
    if not record_in_marker(Path(output_dir), RUN_MARKER, path.name):
        note_written(path, text.encode("utf-8"))
    return path


def quality_for_run(
    staging: Path, loaded: LoadedRecipe, pytorch: Mapping[str, Any]
) -> dict[str, Any] | None:
    """`run`'s measurement, the recipe's `evaluate.quality`: called by the runner on the
    verified staging folder before the report and the run record are written. Scores the
    quality data set through onnxruntime-genai without and with every adapter file in the
    folder (and the PyTorch models with `reference: true`), answers the first `prompts` fixed
    prompts, writes quality.json there and returns its content; None when the recipe asks for
    no measurement. Raises ValueError (or what the runtimes raise): the runner turns it into a
    warning."""
    from olive_workflows.core.files import atomic_write

    evaluate_block = loaded.recipe.evaluate
    spec = evaluate_block.quality if evaluate_block is not None else None
    if spec is None:
        return None
    plans = [
        plan_for_recipe(
            staging, loaded, pytorch, data=name, reference=spec.reference, limit=spec.limit
        )
        for name in spec.data_sets
    ]
    result = measure_sets(plans, FIXED_PROMPTS[: spec.prompts])
    text = json.dumps(result, indent=2, ensure_ascii=False) + "\n"
    atomic_write(Path(staging) / QUALITY_FILE, text)
    return result


def evaluate_plan(plan: EvalPlan, prompts: Iterable[str] = FIXED_PROMPTS) -> Quality:
    """`evaluate` on what `plans_for_output` / `plan_for_recipe` resolved."""
    return evaluate(
        plan.model_dir,
        plan.adapters,
        plan.examples,
        data=plan.data,
        reference_model=plan.reference_model,
        reference_adapters=plan.reference_adapters,
        prompts=prompts,
    )
