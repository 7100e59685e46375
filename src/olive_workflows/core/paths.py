"""Path rules: recipe paths are relative to the recipe file, rendered paths are absolute."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Literal

AZUREML_REGISTRY = re.compile(
    r"^azureml://registries/(?P<registry>[^/]+)/models/(?P<name>[^/]+)/versions/(?P<version>[^/]+)$"
)
ModelKind = Literal["local", "missing", "hub", "azureml"]


def resolve_path(value: str, base_dir: Path) -> Path:
    """`value` relative to `base_dir` (the recipe's folder), `~` expanded, made absolute."""
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    return Path(_normalize(path))


def _normalize(path: Path) -> str:
    # Collapse `..` without resolving symlinks: the user's path stays recognisable.
    import os.path

    return os.path.normpath(str(path))


def classify_model_path(value: str, base_dir: Path) -> tuple[ModelKind, str]:
    """Decide whether a model path is a local folder, a hub id or an Azure ML registry asset.

    Explicit paths (`./x`, `../x`, `/x`, `~/x`) are local and must exist. `org/name` is a
    Hugging Face id unless a folder of that name exists next to the recipe.
    """
    if value.startswith("azureml:"):
        return "azureml", value
    explicit = value.startswith((".", "/", "~")) or "\\" in value
    resolved = resolve_path(value, base_dir)
    if is_dir(resolved):
        return "local", str(resolved)
    if explicit:
        return "missing", str(resolved)
    return "hub", value


def azureml_registry_dict(uri: str) -> dict[str, str] | None:
    """Olive's resource-path dict for an `azureml://registries/...` model, or None."""
    match = AZUREML_REGISTRY.match(uri)
    if match is None:
        return None
    return {
        "type": "azureml_registry_model",
        "registry_name": match["registry"],
        "name": match["name"],
        "version": match["version"],
    }


def _stat(path: Path, *, follow: bool = True) -> os.stat_result | None:
    # pathlib's is_dir()/is_file() raise on a name too long, a forbidden folder, ...
    try:
        return path.stat() if follow else path.lstat()
    except (OSError, ValueError):
        return None


def is_dir(path: Path) -> bool:
    """`path.is_dir()` that is False, not an exception, for any path the OS cannot stat."""
    info = _stat(path)
    return info is not None and stat.S_ISDIR(info.st_mode)


def is_file(path: Path) -> bool:
    """`path.is_file()` that is False, not an exception, for any path the OS cannot stat."""
    info = _stat(path)
    return info is not None and stat.S_ISREG(info.st_mode)


def missing_note(path: Path) -> str:
    """Why an existing-looking path is unusable, as a suffix: ` (a symlink to x, which ...)`."""
    info, link = _stat(path), _stat(path, follow=False)
    if info is None and link is not None and stat.S_ISLNK(link.st_mode):
        return f" (a symlink to {path.readlink()}, which does not exist)"
    if info is None:
        return ""
    if stat.S_ISDIR(info.st_mode):
        return " (it is a folder)"
    if not stat.S_ISREG(info.st_mode):
        return " (it is not a regular file)"
    return " (it is a file)"


def shipped(name: str) -> Path:
    """A folder the project ships (`templates`, `data`, `workflows`): inside the installed
    wheel, else at the repository root of a checkout."""
    from importlib import resources

    packaged = Path(str(resources.files("olive_workflows"))) / name
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / name
