"""A multi-adapter output's adapters.json as its model asset's tags and description."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from olive_workflows.core.manifest import MANIFEST, ManifestError, read_manifest
from olive_workflows.integrations.azureml.errors import AzureMLError
from olive_workflows.integrations.azureml.runinfo import _check_folder
from olive_workflows.runtime.adapter_residency import LAST_DEVICE_RESIDENT, SLOWER, runs_on_cuda

# Azure ML stores an asset's tags as strings in the version's body and documents no limits
# of its own; the SDK's schema checks nothing either. These are Azure Resource Manager's,
# the strictest Azure states for tags: key and value at most 256 characters, none of
# `< > % & \ ? /` in a key. Key parts keep to letters, digits, `_` and `-` (the dot
# separates them), and to 64 characters, a recipe's limit on adapter and data set names.
TAG_MAX = 256
_PART_MAX = 64
_NOT_IN_PART = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class Adapter:
    """One named adapter of the set, as adapters.json lists it."""

    name: str
    file: str  # relative to the output folder
    data: str | None  # the recipe data set it was trained on
    ppl: dict[str, float]  # held-out perplexity per data set, when the run measured it


@dataclass(frozen=True)
class AdapterSet:
    """The adapters an output folder holds beside its one base model."""

    adapters: list[Adapter]
    rank: int | None
    targets: list[str] | None  # None: the method's default modules
    base_ppl: dict[str, float]  # the base model's held-out perplexity, no adapter active
    cuda: bool = False  # the model's genai_config.json puts it on the CUDA EP

    def tags(self) -> dict[str, str]:
        """`adapters`, `adapter_rank`, `adapter_targets` and `adapter.<name>.file|ppl.<set>`.

        Names in keys and in the `adapters` list are made safe for a tag key the same way,
        so `adapter.<n>.file` exists for every `n` in the list.
        """
        keys = _key_parts([a.name for a in self.adapters])
        tags = {"adapters": _listed(keys)}
        if self.rank is not None:
            tags["adapter_rank"] = str(self.rank)
        tags["adapter_targets"] = _listed(self.targets) if self.targets else "default"
        for key, adapter in zip(keys, self.adapters, strict=True):
            tags[f"adapter.{key}.file"] = _value(adapter.file)
            sets = list(adapter.ppl)
            for set_key, data_set in zip(_key_parts(sets), sets, strict=True):
                tags[f"adapter.{key}.ppl.{set_key}"] = _ppl(adapter.ppl[data_set])
        return tags

    def description(self) -> str:
        """A paragraph for the asset's description: the adapters and how to load them."""
        lines = [
            f"Multi-LoRA: one base model and {len(self.adapters)} adapters (listed in {MANIFEST}):"
        ]
        for adapter in self.adapters:
            data = f" (trained on {adapter.data})" if adapter.data else ""
            line = f"- {adapter.name}{data}: {adapter.file}"
            if adapter.ppl:
                line += f"; held-out perplexity {_figures(adapter.ppl)}"
            lines.append(line)
        if self.base_ppl:
            lines.append(f"Base model without an adapter: {_figures(self.base_ppl)}.")
        first = self.adapters[0]
        lines.append(
            "Load with onnxruntime-genai: model = og.Model(folder); "
            "adapters = og.Adapters(model); "
            f'adapters.load(f"{{folder}}/{first.file}", "{first.name}"); '
            "then for each generator: "
            f'generator.set_active_adapter(adapters, "{first.name}").'
        )
        if self.cuda:
            lines.append(
                f"On the CUDA EP use onnxruntime-genai-cuda {LAST_DEVICE_RESIDENT} or older: from "
                "0.16 on og.Adapters keeps an adapter in host memory and copies it to the GPU "
                f"for every token ({SLOWER} slower decoding measured on an H200)."
            )
        return "\n".join(lines)


def read_adapter_set(output_dir: Path) -> AdapterSet | None:
    """The folder's adapters.json with every file it lists present; None without one."""
    _check_folder(output_dir)
    try:
        data = read_manifest(output_dir)
    except ManifestError as exc:
        text = str(exc)
        fix = (
            ""
            if "; " in text  # the message already says what to do
            else "; run the recipe again with `olive-workflows run` (it rewrites "
            f"{MANIFEST}) and publish its output folder"
        )
        raise AzureMLError(f"cannot publish the adapter set: {text}{fix}") from None
    if data is None:
        return None
    path = output_dir / MANIFEST
    base: dict[str, Any] = data["base"] if isinstance(data.get("base"), dict) else {}
    entries: dict[str, dict[str, Any]] = data["adapters"]
    if not entries:
        raise AzureMLError(
            f"{path} lists no adapters; run the recipe again with `olive-workflows run`, or "
            f"delete {MANIFEST} to publish the folder as a single model"
        )
    _check_files(output_dir, base, entries)
    held = _held_out(data)
    return AdapterSet(
        adapters=[
            Adapter(
                name=name,
                file=entry["file"],
                data=entry["data"] if isinstance(entry.get("data"), str) else None,
                ppl=_numbers(held.get(name)),
            )
            for name, entry in entries.items()
        ],
        rank=base["r"] if _is_int(base.get("r")) else None,
        targets=_strings(base.get("target_modules")),
        base_ppl=_numbers(held.get("base")),
        cuda=runs_on_cuda(output_dir),
    )


def _check_files(output_dir: Path, base: dict[str, Any], entries: dict[str, Any]) -> None:
    """Every file adapters.json names must be in the folder, as large as it says."""
    path = output_dir / MANIFEST
    listed = [
        (entry["file"], f"adapter {name!r}", entry.get("bytes")) for name, entry in entries.items()
    ]
    model = base.get("model")
    if isinstance(model, str):
        if Path(model).is_absolute() or ".." in Path(model).parts:
            raise AzureMLError(
                f"{path}: the base model points outside the folder ({model}); run the recipe "
                "again with `olive-workflows run` and publish its output folder"
            )
        listed.insert(0, (model, "the base model", None))
    missing = [f"{file} ({what})" for file, what, _ in listed if not (output_dir / file).is_file()]
    if missing:
        raise AzureMLError(
            f"{path} lists files that are not in {output_dir}: {', '.join(missing)}; restore "
            "them, or run the recipe again with `olive-workflows run`, then publish"
        )
    changed = [
        f"{file} ({what}: {size} bytes, {MANIFEST} says {expected})"
        for file, what, expected in listed
        if _is_int(expected) and (size := (output_dir / file).stat().st_size) != expected
    ]
    if changed:
        raise AzureMLError(
            f"{path} does not match its files, which changed since the run: "
            f"{', '.join(changed)}; run the recipe again with `olive-workflows run`, then publish"
        )


def _held_out(data: dict[str, Any]) -> dict[str, Any]:
    quality = data.get("quality")
    held = quality.get("held_out_ppl") if isinstance(quality, dict) else None
    return held if isinstance(held, dict) else {}


def _numbers(figures: Any) -> dict[str, float]:
    """{data set: perplexity}, leaving out what the run could not measure (null)."""
    if not isinstance(figures, dict):
        return {}
    return {
        str(k): float(v)
        for k, v in figures.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


def _strings(value: Any) -> list[str] | None:
    if not isinstance(value, list) or not value:
        return None
    return [str(item) for item in value]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _ppl(value: float) -> str:
    return str(round(value, 3))


def _figures(ppl: dict[str, float]) -> str:
    return ", ".join(f"{data_set} {_ppl(value)}" for data_set, value in ppl.items())


def _key_parts(names: list[str]) -> list[str]:
    """Each name as one part of a tag key: other characters become `_`, at most 64
    characters, and names that end up alike get `-2`, `-3`, ... so no key is lost."""
    taken: set[str] = set()
    parts: list[str] = []
    for name in names:
        part = _NOT_IN_PART.sub("_", name)[:_PART_MAX] or "_"
        n = 1
        while part in taken:
            n += 1
            suffix = f"-{n}"
            part = _NOT_IN_PART.sub("_", name)[: _PART_MAX - len(suffix)] + suffix
        taken.add(part)
        parts.append(part)
    return parts


def _value(text: str) -> str:
    return text if len(text) <= TAG_MAX else text[: TAG_MAX - 3] + "..."


def _listed(items: list[str]) -> str:
    """Comma-separated; past the limit, the whole items that fit and `,...`."""
    text = ",".join(items)
    if len(text) <= TAG_MAX:
        return text
    kept: list[str] = []
    for item in items:
        if len(",".join([*kept, item, "..."])) > TAG_MAX:
            break
        kept.append(item)
    return ",".join([*kept, "..."])
