"""What this tool wrote, so that it never deletes or overwrites anything else.

Two records:
- a folder the tool fills (a run's output, a built model) holds a marker file naming the
  files the tool put there; replacing the folder replaces those files only and carries
  every other file over;
- a single file the tool writes (a rendered config, an imported recipe, a run's log) is
  noted in a ledger (path -> sha256 of what was written) in the user's state folder; it
  may be replaced while it still holds exactly those bytes, otherwise only with `--force`.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from olive_workflows.core.errors import OutputError, Problem

TOOL = "olive-workflows"
# A run's output folder: the run record (recipe, steps, target) is also its marker.
RUN_MARKER = "olive-workflows.json"
RUN_KIND = "run-output"
# Put in a staging folder before anything else: a leftover holding it is ours to delete.
STAGING_MARKER = ".olive-workflows-staging"
_LEDGER_LIMIT = 5000


# -- folders ------------------------------------------------------------------------------
def read_marker(folder: Path, marker_name: str) -> dict[str, Any] | None:
    """The marker of a folder this tool filled, or None (missing, unreadable, not ours)."""
    try:
        data = json.loads((folder / marker_name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    return data


def marked_files(marker: dict[str, Any] | None) -> set[str] | None:
    """The relative paths a marker says the tool wrote; None for a marker without a list
    (written by a version that did not record its files)."""
    if marker is None:
        return None
    files = marker.get("written_files")
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        return None
    return set(files)


def folder_files(folder: Path) -> list[str]:
    """Every file and symlink under `folder`, relative, in POSIX form (folders excluded)."""
    out = []
    for root, dirs, files in os.walk(folder):
        for name in [*files, *(d for d in dirs if (Path(root) / d).is_symlink())]:
            out.append((Path(root) / name).relative_to(folder).as_posix())
    return sorted(out)


def foreign_folder_reason(
    folder: Path, marker_name: str, *, kind: str, owner: str | None = None
) -> str | None:
    """Why `folder` may not be filled by this tool, or None when it may.

    It may be when it does not exist, is empty, or holds this tool's marker of the same
    `kind` (and, when `owner` is given, the same owner, e.g. the recipe path) with the list
    of files it wrote.
    """
    if folder.is_symlink() and not folder.exists():
        return "it is a dangling symbolic link"
    if not folder.exists():
        return None
    if not folder.is_dir():
        return "it is a file, not a folder"
    try:
        empty = not any(folder.iterdir())
    except OSError as exc:
        return f"it cannot be read ({exc.strerror or exc})"
    if empty:
        return None
    marker = read_marker(folder, marker_name)
    if marker is None or marker.get("tool") != TOOL or marker.get("kind") != kind:
        return f"it holds files and was not made by {TOOL} (no {marker_name} in it)"
    if marked_files(marker) is None:
        return (
            f"it was made by an older {TOOL} that did not record which files it wrote, "
            "so it cannot tell them from yours"
        )
    if owner is not None and marker.get("owner") != owner:
        return f"it is the output of another recipe ({marker.get('owner')})"
    return None


def write_marker(
    folder: Path, marker_name: str, *, kind: str, owner: str | None, extra: dict[str, Any]
) -> None:
    """Write `folder`'s marker listing every file now in it (the marker included), with each
    file's size and modification time, so that a later edit shows."""
    files = sorted({*folder_files(folder), marker_name})
    stamps = {f: _stamp(folder / f) for f in files if f != marker_name}
    marker = {
        "tool": TOOL,
        "kind": kind,
        "owner": owner,
        **extra,
        "written_files": files,
        "file_stamps": stamps,
    }
    (folder / marker_name).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")


def _stamp(path: Path) -> list[int]:
    st = path.lstat()
    return [st.st_size, st.st_mtime_ns]


def user_files(folder: Path, marker_name: str) -> list[str]:
    """Files in a marked folder that are the user's: added since, or written by the tool and
    changed since (a file the user edited is theirs now)."""
    marker = read_marker(folder, marker_name)
    mine = marked_files(marker) or set()
    stamps = (marker or {}).get("file_stamps")
    stamps = stamps if isinstance(stamps, dict) else {}
    out = []
    for rel in folder_files(folder):
        if rel == marker_name:
            continue
        if rel not in mine:
            out.append(rel)
            continue
        recorded = stamps.get(rel)
        if recorded is not None and recorded != _stamp(folder / rel):
            out.append(rel)
    return out


def record_in_marker(folder: Path, marker_name: str, rel: str) -> bool:
    """Record a file the tool just (re)wrote into a marked folder as the tool's, with its
    current stamp; False when the folder has no usable marker (the file is then the user's
    as far as the next replacement is concerned)."""
    marker = read_marker(folder, marker_name)
    mine = marked_files(marker)
    if marker is None or mine is None:
        return False
    marker["written_files"] = sorted({*mine, rel})
    stamps = marker.get("file_stamps")
    if isinstance(stamps, dict):
        stamps[rel] = _stamp(folder / rel)
    fd, tmp = tempfile.mkstemp(prefix=f".{marker_name}.", dir=folder)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(marker, indent=2) + "\n")
    Path(tmp).replace(folder / marker_name)
    return True


def collisions(old: Path, new: Path, marker_name: str) -> list[str]:
    """The user's files in `old` (see `user_files`) that `new` also holds."""
    return [f for f in user_files(old, marker_name) if (new / f).exists()]


def replace_folder(staging: Path, target: Path, marker_name: str) -> list[str]:
    """Put `staging` (complete, marked) in place of `target` in one step where the OS
    allows, then carry the user's files of the old `target` over and delete the files its
    marker lists. Returns what could not be cleaned up (left in a hidden folder).

    A kill at any moment leaves the old or the new folder at `target` (or, on systems
    without an atomic exchange, briefly neither); the old one is then at a hidden name
    beside it with every user file in it, and `recover_retired` finishes the job.
    """
    if not target.exists():
        staging.rename(target)
        return []
    retired = _retired_path(target)
    if _exchange(staging, target):
        staging.rename(retired)  # the staging name now holds the old folder
    else:
        target.rename(retired)
        staging.rename(target)
    return _retire(retired, target, marker_name)


def recover_retired(target: Path, marker_name: str) -> list[str]:
    """Finish replacements that a kill interrupted: every hidden retired folder beside
    `target` gives its user files back (to `target`, or becomes `target` if that is gone)."""
    left: list[str] = []
    for hidden in sorted(target.parent.glob(f".{target.name}-retired-*")):
        left += recover(hidden, target, marker_name)
    return left


def recover(hidden: Path, target: Path, marker_name: str) -> list[str]:
    """`hidden` is a previous `target` (it carries the marker) moved aside by an interrupted
    replacement: put it back if `target` is gone, else move its user files into `target`
    and delete the files it lists."""
    if marked_files(read_marker(hidden, marker_name)) is None:
        return [str(hidden)]
    if not target.exists():
        hidden.rename(target)
        return []
    return _retire(hidden, target, marker_name)


def _retired_path(target: Path) -> Path:
    return target.with_name(f".{target.name}-retired-{os.getpid()}-{time.time_ns()}")


def _retire(old: Path, new: Path, marker_name: str) -> list[str]:
    if marked_files(read_marker(old, marker_name)) is None:  # not ours after all
        return [str(old)]
    theirs = set(user_files(old, marker_name))
    for rel in sorted(theirs):
        dest = new / rel
        if dest.exists() or dest.is_symlink():
            continue  # left where it is, reported below
        dest.parent.mkdir(parents=True, exist_ok=True)
        (old / rel).rename(dest)
    for rel in folder_files(old):
        if rel not in theirs:
            with contextlib.suppress(FileNotFoundError):
                (old / rel).unlink()
    for root, _dirs, _files in sorted(os.walk(old, topdown=False), key=lambda t: -len(t[0])):
        with contextlib.suppress(OSError):
            Path(root).rmdir()  # only empty folders go
    if old.exists():
        return [str(old / rel) for rel in folder_files(old)] or [str(old)]
    return []


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False if unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except AttributeError:  # glibc < 2.28
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


# -- single files -------------------------------------------------------------------------
def state_dir() -> Path:
    """Where the ledger lives: $OLIVE_WORKFLOWS_STATE, else $XDG_STATE_HOME/olive-workflows,
    else ~/.local/state/olive-workflows."""
    if env := os.environ.get("OLIVE_WORKFLOWS_STATE"):
        return Path(env)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / TOOL


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks (model files are large)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _file_sha256(path: Path) -> str | None:
    try:
        return file_sha256(path)
    except OSError:
        return None


@contextlib.contextmanager
def _ledger() -> Iterator[dict[str, str]]:
    """The ledger, locked for the duration; written back atomically."""
    folder = state_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "written.json"
    with (folder / "written.lock").open("a") as lock:
        _flock(lock.fileno(), blocking=True)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                data = {}
        except (OSError, ValueError):
            data = {}
        before = dict(data)
        yield data
        if data != before:
            if len(data) > _LEDGER_LIMIT:  # oldest first (insertion order)
                for key in list(data)[: len(data) - _LEDGER_LIMIT]:
                    del data[key]
            fd, tmp = tempfile.mkstemp(prefix=".written.", dir=folder)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh)
            Path(tmp).replace(path)


def _key(path: Path) -> str:
    return os.path.realpath(path)


def wrote(path: Path) -> bool:
    """True if this tool wrote `path` and it still holds exactly what was written."""
    try:
        with _ledger() as ledger:
            digest = ledger.get(_key(path))
    except OSError:
        return False
    if digest is None:
        return False
    return digest == _ANY or _file_sha256(path) == digest


# A file the tool owns whatever it holds: a log it rewrites from the start on every run, and
# that a killed run may leave half-written.
_ANY = "*"


def note_owned(path: Path) -> None:
    """Record that this tool owns `path` whatever its content (before writing it)."""
    with contextlib.suppress(OSError), _ledger() as ledger:
        ledger.pop(_key(path), None)
        ledger[_key(path)] = _ANY


def note_written(path: Path, data: bytes | None = None) -> None:
    """Record that this tool wrote `path` (with `data`, or the file's current bytes)."""
    digest = _sha256(data) if data is not None else _file_sha256(path)
    if digest is None:
        return
    with contextlib.suppress(OSError), _ledger() as ledger:
        ledger.pop(_key(path), None)
        ledger[_key(path)] = digest


def same_file(a: Path, b: Path) -> bool:
    """`a` and `b` name one file (hard links and symlinks included), or the same path."""
    try:
        return a.samefile(b)
    except OSError:
        return _key(a) == _key(b)


def check_replaceable(
    path: Path,
    *,
    force: bool,
    inputs: Iterable[Path] = (),
    what: str = "the output",
    option: str = "--force",
    new: bytes | None = None,
) -> None:
    """Refuse to write `path` when it is one of the command's `inputs` (always), or an
    existing file this tool did not write (unless `force`, or it already holds `new`)."""
    try:
        exists = path.exists() or path.is_symlink()
    except OSError:  # e.g. a name too long: the write itself reports it
        return
    for source in inputs:
        if exists and same_file(path, source):
            raise OutputError(
                [
                    Problem(
                        f"{what} would overwrite this command's own input",
                        file=path,
                        fix="write to another file",
                    )
                ]
            )
    if path.is_dir() and not path.is_symlink():
        return  # the write itself reports it, with the usual message
    if force or not exists:
        return
    if wrote(path):
        return
    if new is not None and _file_sha256(path) == _sha256(new):
        return  # the same bytes again: nothing of the user's is lost
    raise OutputError(
        [
            Problem(
                f"{what} exists and was not written by {TOOL} (or was changed since)",
                file=path,
                fix=f"pass {option} to replace it, or write to another file",
            )
        ]
    )


# -- one run at a time --------------------------------------------------------------------
def _flock(fd: int, *, blocking: bool) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; one run at a time is then on the user
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return False
        raise
    return True


@contextlib.contextmanager
def exclusive(lock_path: Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock on `lock_path` for the block, or raise OutputError at once if
    another process holds it (the lock ends with the process, even when it is killed)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a+") as fh:
        if not _flock(fh.fileno(), blocking=False):
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise OutputError(
                [
                    Problem(
                        f"{what} is in use by {holder}",
                        file=lock_path,
                        fix="wait for that run to finish, then run again",
                    )
                ]
            )
        fh.seek(0)
        fh.truncate()
        fh.write(f"olive-workflows run (pid {os.getpid()})\n")
        fh.flush()
        yield


def remove_own_tree(path: Path, marker_name: str) -> bool:
    """Delete `path` only if it carries `marker_name` (a staging folder this tool made)."""
    if (path / marker_name).is_file():
        shutil.rmtree(path, ignore_errors=True)
        return True
    return False
