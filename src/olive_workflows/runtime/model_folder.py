"""A model folder the tool builds: staged beside the target, marked with every file's sha256,
put in place without deleting anything it did not write."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from olive_workflows.core.ownership import file_sha256 as sha256


def is_complete(folder: Path, marker_name: str, kind: str, required: str) -> bool:
    """True when `folder` holds a complete, unmodified model of `kind` built by this tool."""
    try:
        marker = json.loads((Path(folder) / marker_name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(marker, dict) or marker.get("kind") != kind:
        return False
    files = marker.get("files")
    if not isinstance(files, dict) or required not in files:
        return False
    for name, digest in files.items():
        path = Path(folder) / name
        if not path.is_file() or sha256(path) != digest:
            return False
    return True


def write_marker(folder: Path, marker_name: str, kind: str, required: str) -> None:
    """Mark a finished staging folder: every file's sha256 (files made world-readable)."""
    files = {}
    for path in sorted(folder.iterdir()):
        path.chmod(0o644)  # safetensors writes 0600; a shared model should be world-readable
        files[path.name] = sha256(path)
    marker = {"kind": kind, "weights_sha256": files[required], "files": files}
    (folder / marker_name).write_text(
        json.dumps(marker, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )


def check_target(out_dir: Path, what: str, *, force: bool) -> None:
    """Refuse a target that is a file, or (unless `force`) a folder holding files."""
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"{out_dir}: exists and is not a folder; pick another path")
    if not force and out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(
            f"{out_dir}: holds files and is not a complete, unchanged {what}; pick another "
            "folder, or pass force=True to write the model's files into it (files of the same "
            "name are replaced, every other file is kept)"
        )


def build_into(
    out_dir: Path,
    write: Callable[[Path], None],
    *,
    marker_name: str,
    complete: Callable[[Path], bool],
) -> Path:
    """Build with `write(staging)` beside `out_dir`, then put the files in place.

    An interrupted build never leaves a folder that looks finished: a new target appears
    by one rename; into an existing one the files go one by one, the marker last.
    """
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.building-", dir=out_dir.parent))
    try:
        staging.chmod(0o755)  # mkdtemp's 0700 would otherwise survive the rename
        write(staging)
        _install(staging, out_dir, marker_name, complete)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def _install(
    staging: Path, target: Path, marker_name: str, complete: Callable[[Path], bool]
) -> None:
    if not target.exists():
        try:
            staging.rename(target)
        except OSError:
            # Another process finished the same build first (e.g. parallel test workers).
            if not complete(target):
                raise
            shutil.rmtree(staging, ignore_errors=True)
        return
    # An existing folder: put the model's files in one by one and never delete anything
    # else in it. The marker goes first and comes back last.
    (target / marker_name).unlink(missing_ok=True)
    for path in sorted(staging.iterdir(), key=lambda p: p.name == marker_name):
        path.replace(target / path.name)
    staging.rmdir()
