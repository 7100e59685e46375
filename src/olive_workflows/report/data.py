"""Everything the report shows about one output folder, read from the files a run leaves."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from olive_workflows.core.ownership import RUN_MARKER as RUN_INFO_FILE
from olive_workflows.report.measures import Quality, Speed, read_quality, read_speed

SUMMARY_FILE = "run-summary.json"
REPORT_FILE = "report.html"
FOOTPRINT_FILE = "footprint.json"
# What counts as the model's weights when a step's size is measured (tokenizers and configs
# do not), and which of them are adapters.
_WEIGHTS = (".onnx", ".data", ".onnx_data", ".safetensors", ".bin", ".pt", ".pth", ".npz")
_ADAPTERS = (".onnx_adapter",)
# Olive metric types where a larger value is better (everything else: smaller is better).
_HIGHER_IS_BETTER = ("throughput", "accuracy", "auc", "f1", "precision", "recall")


@dataclass(frozen=True)
class PassTime:
    """One pass execution: its name, cached/done/failed/pruned, and seconds."""

    name: str
    status: str
    seconds: float | None


@dataclass(frozen=True)
class StepSize:
    """The model's weights after one step (None: not known, e.g. the cache was cleared)."""

    label: str
    bytes: int | None
    adapter_bytes: int | None = None


@dataclass
class RunData:
    """One run's figures, ready for the page and for MLflow."""

    folder: Path
    title: str
    info: dict[str, Any]
    summary: dict[str, Any] | None
    recipe_path: str | None
    recipe_text: str | None
    config_path: str | None
    config_text: str | None
    config: dict[str, Any] | None
    passes: list[PassTime]
    sizes: list[StepSize]
    files: list[tuple[str, int]]
    quality: Quality | None
    speed: Speed | None
    candidates: list[dict[str, Any]]
    best: dict[str, Any] | None
    objectives: dict[str, bool]  # metric key -> higher is better, most important first
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def seconds_ran(self) -> float:
        return sum(p.seconds or 0.0 for p in self.passes if p.status != "cached")

    @property
    def seconds_cached(self) -> float:
        return sum(p.seconds or 0.0 for p in self.passes if p.status == "cached")

    @property
    def total_seconds(self) -> float | None:
        if self.summary and isinstance(self.summary.get("seconds"), int | float):
            return float(self.summary["seconds"])
        return None

    @property
    def output_bytes(self) -> int:
        return sum(size for _, size in self.files)

    @property
    def model_bytes(self) -> int:
        """The output model's weight files (ONNX graph and external data, or checkpoints)."""
        return sum(size for name, size in self.files if name.endswith(_WEIGHTS))

    @property
    def adapter_bytes(self) -> int:
        return sum(size for name, size in self.files if name.endswith(_ADAPTERS))


def load_run(folder: Path, summary: dict[str, Any] | None = None) -> RunData:
    """Read an output folder; `summary` is the runner's (at run time), else run-summary.json."""
    folder = Path(folder)
    notes: list[str] = []
    if summary is None:
        summary = _read_json(folder / SUMMARY_FILE, notes)
    info = _read_json(folder / RUN_INFO_FILE, notes) or {}
    if summary and isinstance(summary.get("run"), dict):
        info = {**summary["run"], **info}
    recipe_path = info.get("recipe") or (summary or {}).get("recipe")
    recipe_text = (summary or {}).get("recipe_text")
    if recipe_text is None and recipe_path:
        recipe_text = _read_text(Path(recipe_path))
    config_path, config_text = _config(folder, summary)
    config = _parse_config(config_text, config_path)
    footprint = _read_json(folder / FOOTPRINT_FILE, notes) or {}
    nodes = footprint.get("nodes", footprint) if isinstance(footprint, dict) else {}
    best = (summary or {}).get("best")
    if summary and isinstance(summary.get("step_sizes"), list):
        sizes = [
            StepSize(str(s.get("label")), s.get("bytes"), s.get("adapter_bytes"))
            for s in summary["step_sizes"]
            if isinstance(s, dict)
        ]
    else:
        sizes = step_sizes(nodes, config, best["model_id"] if best else None)
    passes = [
        PassTime(str(p.get("name")), str(p.get("status")), p.get("seconds"))
        for p in (summary or {}).get("passes", [])
    ] or _passes_from_footprint(nodes)
    candidates = list((summary or {}).get("candidates") or [])
    return RunData(
        folder=folder,
        title=str(info.get("recipe_name") or folder.name),
        info=info,
        summary=summary,
        recipe_path=recipe_path,
        recipe_text=recipe_text,
        config_path=config_path,
        config_text=config_text,
        config=config,
        passes=passes,
        sizes=sizes,
        files=output_files(folder),
        quality=read_quality(folder, notes),
        speed=read_speed(folder, notes),
        candidates=candidates,
        best=best,
        objectives=objectives(config, candidates),
        warnings=[str(w) for w in (summary or {}).get("warnings", [])],
        notes=notes,
    )


def _read_json(path: Path, notes: list[str]) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        notes.append(f"{path.name} could not be read: {exc}")
        return None
    return data if isinstance(data, dict) else None


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _config(folder: Path, summary: dict[str, Any] | None) -> tuple[str | None, str | None]:
    """The rendered config: as the run saw it, else `<out>.olive.json|yaml` beside the folder."""
    if summary and summary.get("config_text") is not None:
        return summary.get("config"), summary["config_text"]
    candidates = [Path(summary["config"])] if summary and summary.get("config") else []
    candidates += [folder.with_name(f"{folder.name}.olive.{ext}") for ext in ("json", "yaml")]
    for path in candidates:
        if (text := _read_text(path)) is not None:
            return str(path), text
    return None, None


def _parse_config(text: str | None, path: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        if path and path.endswith((".yaml", ".yml")):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception:  # JSONDecodeError or YAMLError: the config is shown as text only
        return None
    return data if isinstance(data, dict) else None


def output_files(folder: Path) -> list[tuple[str, int]]:
    """Every file in the output folder (hidden ones left out) with its size."""
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_file() and not any(part.startswith(".") for part in rel.parts):
            out.append((rel.as_posix(), path.stat().st_size))
    return out


# -- footprint: the chain of models, their sizes and times --------------------------------
def _chain(nodes: dict[str, Any], leaf: str | None) -> list[dict[str, Any]]:
    """The output model's chain from the input model, following parent ids."""
    if not nodes:
        return []
    if leaf not in nodes:
        parents = {n.get("parent_model_id") for n in nodes.values() if isinstance(n, dict)}
        leaves = [k for k, n in nodes.items() if isinstance(n, dict) and k not in parents]
        if not leaves:
            return []
        leaf = max(leaves, key=lambda k: nodes[k].get("end_time") or 0)
    chain: list[dict[str, Any]] = []
    current = nodes.get(leaf or "")
    while isinstance(current, dict) and len(chain) <= len(nodes):
        chain.append(current)
        current = nodes.get(current.get("parent_model_id") or "")
    return chain[::-1]


def _weights(path: Path, suffixes: tuple[str, ...]) -> int | None:
    try:
        if path.is_file():
            return path.stat().st_size
        if path.is_dir():
            sizes = [
                f.stat().st_size
                for f in path.rglob("*")
                if f.is_file() and f.name.endswith(suffixes)
            ]
            return sum(sizes) if sizes else None
    except OSError:
        return None
    return None


def _node_size(node: dict[str, Any], input_path: Any) -> StepSize:
    model = node.get("model_config_data") or node.get("model_config") or {}
    config = model.get("config") or {}
    label = str(node.get("from_pass") or "input")
    if not model:  # the input model: footprint does not describe it
        path = input_path if isinstance(input_path, str) else None
        return StepSize(label, _weights(Path(path), _WEIGHTS) if path else None)
    model_path = config.get("model_path")
    if not isinstance(model_path, str):
        return StepSize(label, None)
    base = Path(model_path)
    adapter = None
    if str(model.get("type", "")).lower() == "onnxmodel":
        name = config.get("onnx_file_name")
        folder = base if base.is_dir() else base.parent
        weights = (
            _weights(folder, (".onnx", ".data", ".onnx_data")) if name else _weights(base, _WEIGHTS)
        )
        if config.get("constant_inputs_file_name"):
            adapter = _weights(
                folder / str(config["constant_inputs_file_name"]), _WEIGHTS + _ADAPTERS
            )
    else:
        weights = _weights(base, _WEIGHTS)
        if isinstance(config.get("adapter_path"), str):
            adapter = _weights(Path(config["adapter_path"]), _WEIGHTS)
    return StepSize(label, weights, adapter)


def step_sizes(
    nodes: dict[str, Any], config: dict[str, Any] | None, leaf: str | None
) -> list[StepSize]:
    """The weights after each step of the output model's chain, named like the config's
    passes; sizes are read from Olive's cache, so they are known only while it is there."""
    chain = _chain(nodes, leaf)
    if not chain:
        return []
    passes = list(((config or {}).get("passes") or {}).items())
    input_path = ((config or {}).get("input_model") or {}).get("model_path")
    out = []
    cursor = 0
    for node in chain:
        size = _node_size(node, input_path)
        from_pass = str(node.get("from_pass") or "").lower()
        for index in range(cursor, len(passes)):
            if str(passes[index][1].get("type", "")).lower() == from_pass:
                size = StepSize(passes[index][0], size.bytes, size.adapter_bytes)
                cursor = index + 1
                break
        out.append(size)
    return out


def _passes_from_footprint(nodes: dict[str, Any]) -> list[PassTime]:
    """Pass times from footprint.json where no run summary exists (`olive run`, Azure ML)."""
    timed = [
        n
        for n in nodes.values()
        if isinstance(n, dict) and n.get("from_pass") and n.get("end_time")
    ]
    timed.sort(key=lambda n: n.get("start_time") or 0)
    return [
        PassTime(str(n["from_pass"]), "done", float(n["end_time"]) - float(n["start_time"] or 0))
        for n in timed
    ]


def objectives(config: dict[str, Any] | None, candidates: list[dict[str, Any]]) -> dict[str, bool]:
    """Metric key (`latency-avg`) -> higher is better, in Olive's priority order."""
    found: list[tuple[float, str, bool]] = []
    for evaluator in ((config or {}).get("evaluators") or {}).values():
        for metric in (evaluator or {}).get("metrics") or []:
            kind = str(metric.get("type", ""))
            for sub in metric.get("sub_types") or []:
                higher = sub.get("higher_is_better")
                if higher is None:
                    higher = kind in _HIGHER_IS_BETTER
                key = f"{metric.get('name')}-{sub.get('name')}"
                found.append((float(sub.get("priority") or 99), key, bool(higher)))
    out = {key: higher for _, key, higher in sorted(found)}
    for candidate in candidates:
        for key in candidate.get("metrics") or {}:
            out.setdefault(key, key.split("-")[0] in _HIGHER_IS_BETTER)
    return out
