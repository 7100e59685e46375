"""Canonical dumps of a rendered config, and atomic writes (nothing half-written)."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Literal

import yaml

from olive_workflows.core.errors import OutputError, Problem
from olive_workflows.core.paths import is_dir, is_file

Format = Literal["json", "yaml"]


class _Dumper(yaml.SafeDumper):
    """Block-style YAML; multi-line strings double-quoted with escapes (exact round trip)."""


# YAML line breaks: in any other style they are written raw and folded on reading (NEL even
# turns into a space), so strings holding one are always double-quoted with escapes.
_LINE_BREAKS = frozenset("\n\r\x85\u2028\u2029")


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = '"' if _LINE_BREAKS.intersection(value) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump(config: dict[str, Any], fmt: Format = "json") -> str:
    """Canonical text: JSON with 2-space indent, or block-style YAML; key order kept."""
    if fmt == "json":
        return json.dumps(config, indent=2, ensure_ascii=False) + "\n"
    return yaml.dump(
        config,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=1_000_000,  # never fold long strings
    )


def format_for(path: Path, default: Format = "json") -> Format:
    """The format a file name asks for (`.yaml`/`.yml` -> yaml, `.json` -> json)."""
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return "yaml"
    if suffix == ".json":
        return "json"
    return default


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write via a temporary file in the same folder and rename: readers see old or new.

    A failure at any point (including an interrupt) leaves `path` as it was; OS errors are
    raised as OutputError (exit 1, no traceback). A symlink at `path` is replaced by the
    file, never written through.
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        _atomic_write(path, payload)
    except OSError as exc:
        raise OutputError([_write_problem(path, exc)]) from exc


def _write_problem(path: Path, exc: OSError) -> Problem:
    fixes = {
        errno.EISDIR: "give a file name, not a folder",
        errno.ENOTDIR: "a folder in the path is a file; choose another path",
        errno.EEXIST: "a folder in the path is a file; choose another path",
        errno.EACCES: "choose a folder you can write to",
        errno.EPERM: "choose a folder you can write to",
        errno.EROFS: "the file system is read-only; choose another folder",
        errno.ENOSPC: "free some disk space and run again",
    }
    if is_dir(path):
        exc = IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
    for parent in path.parents:
        if is_dir(parent) or is_file(parent):
            if not is_dir(parent):
                return Problem(
                    f"cannot write the output: {parent} is a file, not a folder",
                    file=path,
                    fix="choose another output path",
                )
            break
    fix = fixes.get(exc.errno or 0, "choose another output path")
    return Problem(f"cannot write the output: {exc.strerror or exc}", file=path, fix=fix)


def _atomic_write(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        if path.exists():
            with contextlib.suppress(OSError):
                os.chmod(tmp, path.stat().st_mode & 0o777)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
