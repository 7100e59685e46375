"""A job's workflow folder: an Olive config with local paths made job inputs, bind_paths.py."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from olive_workflows.integrations.azureml.errors import AzureMLError
from olive_workflows.integrations.azureml.runinfo import RUN_INFO_FILE, RunInfo

BIND_SCRIPT = "bind_paths.py"
WORKFLOW_FILE = "workflow.json"

_PATH_KEY = re.compile(r"(path|paths|file|files|dir|script)$")


class _JobPlan:
    """Turns local paths in an Olive config into job inputs and placeholders."""

    def __init__(self) -> None:
        self.inputs: dict[str, dict[str, Any]] = {}
        self._by_path: dict[str, str] = {}

    def rewrite(self, config: dict[str, Any]) -> dict[str, Any]:
        config = json.loads(json.dumps(config))  # a deep copy that is plain JSON
        model = config.get("input_model")
        if isinstance(model, dict) and "model_path" in model:
            model["model_path"] = self._model(model["model_path"])
        for index, data_config in enumerate(config.get("data_configs") or []):
            self._data_config(index, data_config)
        self._engine_paths(config)
        return {
            key: value if key == "systems" else self._walk(value, (key,), _PATH_KEY.search(key))
            for key, value in config.items()
        }

    @staticmethod
    def _engine_paths(config: dict[str, Any]) -> None:
        """Point the output and cache folders at the job's outputs, wherever Olive reads them.

        Olive takes engine fields nested under `engine` or flat at the top level, and the
        cache folder also from `cache_config`; a config that names neither gets `engine.*`.
        """
        engine = config.get("engine") if isinstance(config.get("engine"), dict) else None
        places = [config, engine, config.get("cache_config"), (engine or {}).get("cache_config")]
        for key, placeholder in (
            ("output_dir", "${{outputs.output}}"),
            ("cache_dir", "${{outputs.cache}}"),
        ):
            homes = [p for p in places if isinstance(p, dict) and key in p]
            if not homes:
                homes = [config.setdefault("engine", {})]
            for home in homes:
                home[key] = placeholder

    def _model(self, value: Any) -> Any:
        if isinstance(value, dict):
            fields = value.get("config", value)
            if value.get("type") == "azureml_registry_model":
                uri = (
                    f"azureml://registries/{fields['registry_name']}/models/{fields['name']}"
                    f"/versions/{fields['version']}"
                )
                # Olive 0.13 downloads registry models with `az` CLI credentials, which a
                # job does not have; Azure ML mounts the model for the job instead
                return self._add("model", uri, "mlflow_model")
            if value.get("type") in ("file", "folder") and "path" in fields:
                return self._local("model", fields["path"], "input_model.model_path")
            return value
        if isinstance(value, str) and Path(value).is_absolute():
            return self._local("model", value, "input_model.model_path")
        return value  # a Hugging Face id: the job downloads it

    def _data_config(self, index: int, data_config: dict[str, Any]) -> None:
        base = _identifier(str(data_config.get("name") or f"data{index}"))
        load = (data_config.get("load_dataset_config") or {}).get("params") or data_config.get(
            "load_dataset_config"
        )
        if not isinstance(load, dict):
            return
        where = f"data_configs[{index}].load_dataset_config"
        files = load.get("data_files")
        if isinstance(files, str) and Path(files).is_absolute():
            load["data_files"] = self._local(base, files, f"{where}.data_files")
        elif isinstance(files, list):
            load["data_files"] = [
                self._local(
                    f"{base}_{i}" if len(files) > 1 else base, f, f"{where}.data_files[{i}]"
                )
                if isinstance(f, str) and Path(f).is_absolute()
                else f
                for i, f in enumerate(files)
            ]
        name = load.get("data_name")
        if isinstance(name, str) and Path(name).is_absolute():
            load["data_name"] = self._local(f"{base}_dir", name, f"{where}.data_name")

    def _walk(self, value: Any, where: tuple[str, ...], pathlike: Any) -> Any:
        # other local files under path-like keys (adapters, user scripts) must travel too;
        # `systems` (interpreter paths) and other keys are left alone
        if isinstance(value, dict):
            return {
                k: self._walk(v, (*where, str(k)), pathlike or _PATH_KEY.search(str(k)))
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [self._walk(v, (*where, str(i)), pathlike) for i, v in enumerate(value)]
        if pathlike and isinstance(value, str) and Path(value).is_absolute():
            name = next((w for w in reversed(where) if not w.isdigit()), "path")
            return self._local(_identifier(name), value, ".".join(where))
        return value

    def _local(self, name: str, path: str, where: str) -> str:
        resolved = Path(path)
        if not resolved.exists():
            raise AzureMLError(
                f"{where}: {path} does not exist; fix the recipe or create it before submitting"
            )
        kind = "uri_folder" if resolved.is_dir() else "uri_file"
        return self._add(name, str(resolved), kind)

    def _add(self, name: str, path: str, kind: str) -> str:
        if path not in self._by_path:
            unique = name
            counter = 2
            while unique in self.inputs or unique == "workflow":
                unique = f"{name}_{counter}"
                counter += 1
            self._by_path[path] = unique
            self.inputs[unique] = {"type": kind, "path": path}
        return f"${{{{inputs.{self._by_path[path]}}}}}"


_BIND_SOURCE = '''\
"""Point an olive-workflows job config at its mounts: bind_paths.py IN OUT KEY=PATH..."""

import json
import sys


def bind(value, paths):
    if isinstance(value, dict):
        return {key: bind(item, paths) for key, item in value.items()}
    if isinstance(value, list):
        return [bind(item, paths) for item in value]
    if isinstance(value, str) and value in paths:
        return paths[value]
    return value


def unbound(value):
    if isinstance(value, dict):
        return [text for item in value.values() for text in unbound(item)]
    if isinstance(value, list):
        return [text for item in value for text in unbound(item)]
    return [value] if isinstance(value, str) and value.startswith("${{") else []


def main(argv):
    source, target, *pairs = argv
    paths = {}
    for pair in pairs:
        key, _, path = pair.partition("=")
        paths["${{" + key + "}}"] = path
    with open(source, encoding="utf-8") as handle:
        config = bind(json.load(handle), paths)
    left = unbound(config)
    if left:
        sys.exit(f"bind_paths.py: no mount path given for {', '.join(sorted(set(left)))}")
    with open(target, "w", encoding="utf-8") as handle:
        json.dump(config, handle, indent=2)
    print(f"bind_paths.py: wrote {target} with {len(paths)} mount paths")


if __name__ == "__main__":
    main(sys.argv[1:])
'''


def _write_workflow_folder(
    config: Mapping[str, Any],
    run_info: RunInfo | None,
    staging_dir: Path | None,
    extra_files: Mapping[str, str] | None = None,
) -> Path:
    """Write workflow.json, bind_paths.py (and the run record, and `extra_files`: the
    tracking script) to a folder named by a hash."""
    files = {
        WORKFLOW_FILE: json.dumps(config, indent=2, sort_keys=True) + "\n",
        BIND_SCRIPT: _BIND_SOURCE,
    }
    if run_info is not None:
        files[RUN_INFO_FILE] = json.dumps(dataclasses.asdict(run_info), indent=2) + "\n"
    files.update(extra_files or {})
    digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:16]
    root = staging_dir or Path(tempfile.gettempdir()) / "olive-workflows-jobs"
    folder = root.resolve() / digest
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def _identifier(text: str) -> str:
    """An Azure ML input name from a config key or data-set name."""
    name = re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_")
    return name if name[:1].isalpha() else f"data_{name}"
