"""Azure ML workspace coordinates (flags, recipe, config.json) and an authenticated MLClient."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from olive_workflows.integrations.azureml.errors import AzureMLError

if TYPE_CHECKING:  # azure-ai-ml is an optional extra: only type checkers see it at import time
    from azure.ai.ml import MLClient
    from azure.core.credentials import TokenCredential
    from azure.core.pipeline.transport import HttpTransport


@dataclass(frozen=True)
class Workspace:
    """Azure ML workspace coordinates, and where they came from (said to the user)."""

    subscription_id: str
    resource_group: str
    workspace_name: str
    source: str  # "flags" | "recipe publish: block" | "<path>/config.json", joined by " + "


def resolve_workspace(
    subscription: str | None,
    resource_group: str | None,
    workspace: str | None,
    recipe_publish: Mapping[str, Any] | None,
    search_from: Path,
) -> Workspace:
    """Pick workspace coordinates: flags, then the recipe's `publish:` block, then config.json.

    Each coordinate comes from the first source that has it; config.json is looked up like
    `MLClient.from_config` does (`.azureml/`, `aml_config/`, then the folder itself, from
    `search_from` up through its parents).

        >>> resolve_workspace("sub", "rg", "ws", None, Path(".")).source
        'flags'
    """
    keys = ("subscription_id", "resource_group", "workspace_name")
    flags = dict(zip(keys, (subscription, resource_group, workspace), strict=True))
    publish = dict(recipe_publish or {})
    # the recipe spells it `workspace`, config.json `workspace_name`: accept both
    block = {
        "subscription_id": publish.get("subscription_id"),
        "resource_group": publish.get("resource_group"),
        "workspace_name": publish.get("workspace_name") or publish.get("workspace"),
    }
    sources: list[tuple[str, dict[str, Any]]] = [
        ("flags", flags),
        ("recipe publish: block", block),
    ]
    if not all(flags[k] or block[k] for k in keys):
        found = _find_config_json(search_from)
        if found is not None:
            sources.append(found)
    chosen: dict[str, str] = {}
    used: list[str] = []
    for label, values in sources:
        for key in keys:
            if key not in chosen and values.get(key):
                chosen[key] = str(values[key])
                if label not in used:
                    used.append(label)
    missing = [key.replace("_", " ") for key in keys if key not in chosen]
    if missing:
        raise AzureMLError(
            f"no Azure ML workspace: {', '.join(missing)} not given; pass --subscription, "
            "--resource-group and --workspace, set subscription_id/resource_group/workspace "
            "in the recipe's `publish:` block, or put the workspace's config.json (Azure "
            f"portal > workspace > Download config.json) in {search_from} or a parent folder"
        )
    return Workspace(
        subscription_id=chosen["subscription_id"],
        resource_group=chosen["resource_group"],
        workspace_name=chosen["workspace_name"],
        source=" + ".join(used),
    )


def _find_config_json(start: Path) -> tuple[str, dict[str, Any]] | None:
    """The nearest Azure ML config.json, searched in the SDK's order."""
    start = start.resolve()
    folders = [start, *start.parents][:20]  # the SDK stops after 20 levels too
    for sub in (".azureml", "aml_config", ""):
        for name in ("config.json", "project.json"):
            for folder in folders:
                candidate = folder / sub / name
                values = _workspace_from_config(candidate)
                if values is not None:
                    return str(candidate), values
    return None


def _workspace_from_config(path: Path) -> dict[str, Any] | None:
    """Coordinates in an Azure ML config.json, or None for any other file of that name."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    scope = data.get("Scope")
    if isinstance(scope, str) and scope.count("/") >= 8:
        parts = scope.split("/")
        return {"subscription_id": parts[2], "resource_group": parts[4], "workspace_name": parts[8]}
    # a Hugging Face model folder also has a config.json: skip files without our keys,
    # where the SDK would stop with an error
    if "workspace_name" not in data:
        return None
    return {k: data.get(k) for k in ("subscription_id", "resource_group", "workspace_name")}


def _require_azure() -> None:
    try:
        import azure.ai.ml
        import azure.identity  # noqa: F401
    except ImportError as err:
        raise AzureMLError(
            "the Azure ML commands need azure-ai-ml and azure-identity; "
            "install them with `pip install 'olive-workflows[azure]'`"
        ) from err
    # every entity load logs "Class ...Schema: This is an experimental class" at WARNING;
    # it concerns the SDK's internals, not the user's job (respect a level the user set)
    experimental = logging.getLogger("azure.ai.ml._utils._experimental")
    if not experimental.level:
        experimental.setLevel(logging.ERROR)
    # DefaultAzureCredential logs every credential it tried (a dozen lines, at WARNING) when
    # none works, which Python prints to stderr when nobody configured logging; the
    # AzureMLError that follows says it in one line with the fix
    identity = logging.getLogger("azure.identity")
    if not identity.level and not logging.getLogger().handlers:
        identity.setLevel(logging.ERROR)


@contextmanager
def _session(
    workspace: Workspace,
    credential: TokenCredential | None,
    transport: HttpTransport | None,
) -> Iterator[tuple[MLClient, TokenCredential]]:
    """An MLClient for `workspace` and its credential (DefaultAzureCredential unless given)."""
    _require_azure()
    from azure.ai.ml import MLClient
    from azure.identity import DefaultAzureCredential

    owned = DefaultAzureCredential() if credential is None else None
    token: TokenCredential = credential or owned  # type: ignore[assignment]
    extra: dict[str, Any] = {} if transport is None else {"transport": transport}
    client = MLClient(
        credential=token,
        subscription_id=workspace.subscription_id,
        resource_group_name=workspace.resource_group,
        workspace_name=workspace.workspace_name,
        # our own progress and telemetry policy: no tqdm bars, no Application Insights
        show_progress=False,
        enable_telemetry=False,
        **extra,
    )
    try:
        yield client, token
    finally:
        if owned is not None:
            owned.close()
