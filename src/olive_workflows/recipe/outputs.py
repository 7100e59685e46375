"""Where a recipe may write: the output folder never holds the user's inputs or homes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from olive_workflows.core.errors import KeyPath, Problem
from olive_workflows.core.ownership import RUN_KIND, RUN_MARKER, foreign_folder_reason, wrote
from olive_workflows.core.paths import classify_model_path, resolve_path

if TYPE_CHECKING:
    from olive_workflows.recipe.schema import LoadedRecipe

_OUTPUT: KeyPath = ("output", "dir")
_CACHE: KeyPath = ("cache", "dir")
_FIX = "choose a new folder of its own for the output, e.g. `models/<recipe name>`"


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _inside(path: Path, folder: Path) -> bool:
    """`path` is `folder` or lies under it (both already real paths)."""
    return path == folder or folder in path.parents


def home_folders() -> set[Path]:
    """This user's home and every account's home folder on the machine."""
    homes = {_real(Path.home())}
    try:
        import pwd

        homes |= {_real(Path(entry.pw_dir)) for entry in pwd.getpwall() if entry.pw_dir}
    except (ImportError, OSError):  # Windows, or no passwd database
        pass
    return {h for h in homes if h != Path(h.anchor)}


def _forms(path: Path) -> set[Path]:
    """A path as written (normalized) and with links resolved: a model reached through a
    link inside the output folder is as much at risk as the model itself."""
    return {Path(os.path.normpath(path)), _real(path)}


def output_problems(loaded: LoadedRecipe) -> Iterator[tuple[KeyPath, str, str]]:
    """(key path, what is wrong, fix) for every way `output.dir` would put a user's file at
    risk: `run` replaces the output folder, so it may hold nothing the tool did not make."""
    recipe = loaded.recipe
    base = loaded.base_dir
    written = resolve_path(recipe.output.dir, base)
    out = _real(written)
    cache = resolve_path(recipe.cache.dir, base)

    if any(form == Path(form.anchor) for form in _forms(written)):
        yield _OUTPUT, f"the output folder is the root folder {out}", _FIX
        return
    for home in sorted(home_folders()):
        for form in _forms(written):
            if _inside(home, form):
                what = "is" if home == form else "contains"
                yield _OUTPUT, f"the output folder {form} {what} the home folder {home}", _FIX
                return
    protected: list[tuple[str, Path]] = [("this recipe", loaded.path)]
    for name, ds in recipe.data.items():
        for file in ds.files or []:
            protected.append((f"a data file of `{name}`", resolve_path(file, base)))
    kind, model = classify_model_path(recipe.model.path, base)
    if kind == "local":
        protected.append(("the input model", Path(model)))
    protected.append(("the cache folder", cache))
    for what, path in protected:
        for folder in _forms(written):
            for form in _forms(path):
                if _inside(form, folder):
                    verb = "is" if form == folder else "contains"
                    yield _OUTPUT, f"the output folder {folder} {verb} {what} ({form})", _FIX
                    return
    if any(_inside(form, c) for form in _forms(written) for c in _forms(cache)):
        yield (
            _OUTPUT,
            f"the output folder {out} is inside the cache folder {cache} (Olive may clean it)",
            _FIX,
        )
        return
    if cache.exists() and not cache.is_dir():
        yield _CACHE, f"the cache folder {cache} is a file", "choose a folder name for the cache"


def output_state_problems(loaded: LoadedRecipe) -> Iterator[tuple[KeyPath, str, str]]:
    """What `run` would find in the way now: an output folder that is not an earlier output
    of this recipe, or files beside it that `run` writes and the user owns. (Not a rule of
    the recipe itself: `render` does not check it, `validate` and `run` do.)"""
    recipe = loaded.recipe
    out = _real(resolve_path(recipe.output.dir, loaded.base_dir))
    reason = foreign_folder_reason(
        out, RUN_MARKER, kind=RUN_KIND, owner=os.path.realpath(loaded.path)
    )
    if reason is not None:
        yield (
            _OUTPUT,
            f"`run` would replace {out}, but {reason}",
            "choose a new or empty folder, or move that folder away yourself",
        )
    for sibling in (f"{out.name}.olive.{recipe.output.format}", f"{out.name}.olive.log"):
        path = out.with_name(sibling)
        if (path.exists() or path.is_symlink()) and not wrote(path):
            yield (
                _OUTPUT,
                f"`run` writes {path} beside the output, and that file was not written by "
                "olive-workflows (or was changed since)",
                "move that file away, or choose another output folder name",
            )


def state_problems(loaded: LoadedRecipe) -> list[Problem]:
    """`output_state_problems` as located problems (file:line: output.dir: ...)."""
    return [loaded.source.problem(m, path, fix) for path, m, fix in output_state_problems(loaded)]
