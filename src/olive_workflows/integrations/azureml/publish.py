"""Publish a finished run's output folder as an Azure ML model asset."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from olive_workflows.integrations.azureml.adapters import AdapterSet, read_adapter_set
from olive_workflows.integrations.azureml.errors import AzureMLError, _translated
from olive_workflows.integrations.azureml.runinfo import (
    RUN_INFO_FILE,
    RunInfo,
    _check_finished_run,
    _check_folder,
    _tool_version,
    read_run_info,
    run_info_from_recipe,
)
from olive_workflows.integrations.azureml.upload import _default_datastore, _upload
from olive_workflows.integrations.azureml.workspace import Workspace, _require_azure, _session

if TYPE_CHECKING:  # azure-ai-ml is an optional extra: only type checkers see it at import time
    from azure.ai.ml import MLClient
    from azure.ai.ml.entities import Model
    from azure.core.credentials import TokenCredential
    from azure.core.pipeline.transport import HttpTransport

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,49}$")


@dataclass(frozen=True)
class PublishResult:
    """A registered model version."""

    name: str
    version: str
    id: str  # the ARM id Azure ML returned
    uri: str  # `azureml:<name>:<version>`, what jobs and `az ml` accept
    path: str  # the datastore folder that holds the files


@dataclass(frozen=True)
class PublishPlan:
    """What `publish` will register, decided before anything is contacted."""

    name: str
    version: str | None
    info: RunInfo  # the asset's tags and description
    tags: dict[str, str]  # the recipe's publish.tags
    block: dict[str, Any]  # the recipe's publish: block (workspace coordinates)
    format: str  # runinfo.FORMATS key: onnx-genai, onnx, pytorch
    notes: list[str]  # what the user should know about where the values came from


def plan_publish(
    output_dir: Path,
    *,
    name: str | None = None,
    version: str | None = None,
    recipe: Path | None = None,
) -> PublishPlan:
    """Name, version, tags and workspace block for publishing `output_dir`.

    The recipe is `recipe` if given, else the one recorded in the folder's run record. Its
    `publish:` block gives defaults; when the folder has no run record, the recipe also
    gives the tags (name, steps, target), which is what `recipe` is for. A folder with an
    adapters.json (a multi-adapter run) must hold every file it lists.
    """
    _check_folder(output_dir)
    adapters = read_adapter_set(output_dir)
    notes: list[str] = []
    recorded = _recorded_recipe(output_dir)
    parsed = None
    if recipe is not None:
        parsed = _parse_recipe(recipe)
        if recorded is not None and Path(recorded).resolve() != recipe.resolve():
            notes.append(
                f"{output_dir} was made by {recorded}; its publish: defaults come from "
                f"--recipe {recipe}"
            )
    elif recorded is not None and Path(recorded).is_file():
        parsed = _parse_recipe(Path(recorded))
    fallback = run_info_from_recipe(parsed) if recipe is not None and parsed else None
    info = read_run_info(output_dir, fallback)
    if fallback is not None and info is fallback:
        notes.append(f"{output_dir} has no {RUN_INFO_FILE}: its tags come from --recipe {recipe}")
    block = parsed.publish.model_dump() if parsed is not None and parsed.publish else {}
    name = name or block.get("name")
    if not name:
        gone = (
            f" (the recipe that made it, {recorded}, no longer exists: pass --recipe)"
            if recorded is not None and parsed is None
            else ""
        )
        raise AzureMLError(
            f"no asset name; pass --name, or set `publish: {{name: ...}}` in the recipe{gone}"
        )
    fmt = _check_finished_run(output_dir, info)
    if adapters is not None:
        names = ", ".join(a.name for a in adapters.adapters)
        notes.append(
            f"{output_dir} holds one base model and {len(adapters.adapters)} adapters ({names}): "
            "they are published together as one asset, listed in its tags and description"
        )
    return PublishPlan(
        name=name,
        version=version or block.get("version"),
        info=info,
        tags=dict(block.get("tags") or {}),
        block=block,
        format=fmt,
        notes=notes,
    )


def _recorded_recipe(output_dir: Path) -> str | None:
    try:
        record = json.loads((output_dir / RUN_INFO_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    recipe = record.get("recipe") if isinstance(record, dict) else None
    return recipe if isinstance(recipe, str) and recipe else None


def _parse_recipe(path: Path) -> Any:
    """The recipe's typed model (types only: its data files need not exist any more)."""
    from olive_workflows.recipe.parse import parse_recipe
    from olive_workflows.recipe.source import load_yaml

    data, source = load_yaml(path.expanduser().absolute())
    return parse_recipe(data, source)


def build_model_asset(
    output_dir: Path,
    name: str,
    version: str | None,
    info: RunInfo,
    *,
    extra_tags: Mapping[str, str] | None = None,
) -> Model:
    """The model asset for a finished run's output folder (a local path: nothing is sent).

    It is built by the SDK's own YAML loader, the path `az ml model create --file` takes,
    so what `--dry-run` prints and what `publish` sends cannot drift apart. With an
    adapters.json, the folder is one base model and its adapters: the asset's tags and
    description list them (`adapters`, `adapter.<name>.file`, ...).
    """
    output_dir = output_dir.resolve()
    adapters = read_adapter_set(output_dir)
    fmt = _check_finished_run(output_dir, info)
    spec = _model_spec(str(output_dir), name, version, info, extra_tags, fmt=fmt, adapters=adapters)
    return _load_model(spec)


def model_asset_yaml(model: Model) -> str:
    """The asset as YAML: what `--dry-run` prints and `az ml model create --file` accepts."""
    stream = io.StringIO()
    model.dump(stream)
    return stream.getvalue()


def _model_spec(
    path: str,
    name: str,
    version: str | None,
    info: RunInfo,
    extra_tags: Mapping[str, str] | None,
    *,
    fmt: str,
    adapters: AdapterSet | None = None,
) -> dict[str, Any]:
    if not _NAME.match(name):
        raise AzureMLError(
            f"model name {name!r} is not valid in Azure ML; use letters, digits, `-`, `_` and `.`, "
            "starting with a letter or digit"
        )
    if version is not None and not _VERSION.match(version):
        raise AzureMLError(
            f"model version {version!r} is not valid in Azure ML; use e.g. `1` or `2.0`, "
            "or omit --version to publish the next one"
        )
    tags = {
        "recipe": info.recipe_name,
        "olive_version": info.olive_version,
        "steps": ",".join(info.steps),
        "target": info.target,
        "format": fmt,  # onnx-genai, onnx or pytorch (runinfo.FORMATS)
        "created_by": f"olive-workflows {_tool_version()}",
        **(adapters.tags() if adapters is not None else {}),
        **dict(extra_tags or {}),  # the recipe's publish.tags win
    }
    description = info.description or (
        f"{info.recipe_name}: {' -> '.join(info.steps)} with Olive {info.olive_version} "
        f"for {info.target}"
    )
    if adapters is not None:
        description += "\n\n" + adapters.description()
    spec: dict[str, Any] = {
        "name": name,
        "path": path,
        "type": "custom_model",
        "description": description,
        "tags": tags,
    }
    if version is not None:
        spec["version"] = version
    return spec


def _load_model(spec: dict[str, Any]) -> Model:
    _require_azure()
    import yaml
    from azure.ai.ml import load_model

    return load_model(io.StringIO(yaml.safe_dump(spec, sort_keys=False)))


def publish_model(
    output_dir: Path,
    name: str,
    version: str | None,
    info: RunInfo,
    workspace: Workspace,
    *,
    extra_tags: Mapping[str, str] | None = None,
    credential: TokenCredential | None = None,
    transport: HttpTransport | None = None,
) -> PublishResult:
    """Upload `output_dir` to the workspace's default datastore and register it as a model.

    `version=None` publishes the next integer version. Nothing is registered unless every
    file was uploaded: the model PUT is the last request. `transport` replaces azure-core's
    HTTP transport in every client (tests pass a fake Azure).
    """
    output_dir = output_dir.resolve()
    build_model_asset(output_dir, name, version, info, extra_tags=extra_tags)  # checks first
    fmt = _check_finished_run(output_dir, info)
    adapters = read_adapter_set(output_dir)
    from azure.core.exceptions import ResourceExistsError

    hint = "check --subscription, --resource-group and --workspace"
    with (
        _session(workspace, credential, transport) as (client, token),
        _translated(workspace, hint),
    ):
        datastore = _default_datastore(client)
        version = _free_version(client, name, version, workspace)
        remote_path = _upload(output_dir, datastore, token, transport)
        spec = _model_spec(remote_path, name, version, info, extra_tags, fmt=fmt, adapters=adapters)
        try:
            created = client.models.create_or_update(_load_model(spec))
        except ResourceExistsError as err:  # published by someone else since we looked
            raise AzureMLError(
                f"model {name} version {version} already exists in workspace "
                f"{workspace.workspace_name}; pass another --version, or omit it to publish "
                "the next version"
            ) from err
    return PublishResult(
        name=str(created.name),
        version=str(created.version),
        id=str(created.id),
        uri=f"azureml:{created.name}:{created.version}",
        path=remote_path,
    )


def _free_version(client: MLClient, name: str, version: str | None, workspace: Workspace) -> str:
    """`version` if no such model version exists yet, else an error; None: max + 1."""
    from azure.core.exceptions import ResourceNotFoundError

    if version is None:
        try:
            existing = [model.version for model in client.models.list(name=name)]
        except ResourceNotFoundError:
            existing = []
        numbers = [int(v) for v in existing if v is not None and str(v).isdigit()]
        return str(max(numbers, default=0) + 1)
    try:
        client.models.get(name=name, version=version)
    except ResourceNotFoundError:
        return version
    raise AzureMLError(
        f"model {name} version {version} already exists in workspace {workspace.workspace_name}; "
        "pass another --version, or omit it to publish the next version"
    )
