"""Make autoawq 0.2.9 importable on transformers 4.57 by restoring the `PytorchGELUTanh` name."""

# autoawq 0.2.9 (its last release) does `from transformers.activations import PytorchGELUTanh`;
# transformers 4.57 renamed that class to `GELUTanh`, so `import awq` fails and with it the
# AutoAWQQuantizer pass and every later pass that loads the AWQ checkpoint (transformers'
# AWQ integration imports awq too). We add the old name back, and only in processes that run
# AutoAWQ:
#   * `olive run --config x.json`: the rendered AutoAWQQuantizer pass names this file as its
#     `user_script`. Olive imports a pass's user_script when it resolves the pass configs,
#     before the first pass runs (also when the AWQ pass itself comes from the cache), and it
#     imports the file under the module name "awq_compat", which is what makes `install()` run.
#   * Python callers (e.g. `olive-workflows run`) call `install()` before starting Olive.
# `import olive_workflows.awq_compat` alone changes nothing and imports neither torch nor
# transformers: the alias is added when transformers.activations is (or was) imported.
from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["install", "is_installed", "user_script_path"]

_TARGET = "transformers.activations"
_OLD_NAME = "PytorchGELUTanh"
# transformers >= 4.57 calls the same tanh-approximated GELU `GELUTanh`; older releases still
# have the old name, and `NewGELUActivation` is the same formula as a last resort.
_NEW_NAMES = ("GELUTanh", "NewGELUActivation")


def _add_alias(module: ModuleType) -> None:
    if hasattr(module, _OLD_NAME):
        return
    for name in _NEW_NAMES:
        replacement = getattr(module, name, None)
        if replacement is not None:
            setattr(module, _OLD_NAME, replacement)
            return


class _AliasingLoader(importlib.abc.Loader):
    """Runs the real loader, then adds the alias; everything else goes to the real loader."""

    def __init__(self, inner: importlib.abc.Loader) -> None:
        self._inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._inner.exec_module(module)
        _add_alias(module)

    def __getattr__(self, name: str) -> Any:
        # get_source, get_filename, ... (inspect and linecache ask the module's loader)
        return getattr(self._inner, name)


class _AliasFinder(importlib.abc.MetaPathFinder):
    """Wraps the loader of transformers.activations; finds nothing else.

    Hooking `transformers.activations` rather than `awq` matters: transformers itself calls
    `importlib.util.find_spec("awq")` while it is half-initialised, and importing
    transformers.activations from there is a circular import.
    """

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != _TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _AliasingLoader(spec.loader)
        return spec


def is_installed() -> bool:
    """True once `install()` ran in this process."""
    return any(isinstance(finder, _AliasFinder) for finder in sys.meta_path)


def install() -> None:
    """Give transformers.activations its old `PytorchGELUTanh` name, now or when imported.

    Idempotent, and cheap: it imports nothing heavy.

    >>> from olive_workflows import awq_compat
    >>> awq_compat.install()  # then `import awq` works on transformers 4.57
    """
    loaded = sys.modules.get(_TARGET)
    if loaded is not None:
        _add_alias(loaded)
    if not is_installed():
        sys.meta_path.insert(0, _AliasFinder())


def user_script_path() -> str:
    """Absolute path of this file, for an AutoAWQQuantizer pass's `user_script`."""
    return str(Path(__file__).resolve())


# Olive's import_module_from_file() loads a user_script under its file stem, "awq_compat";
# as `olive_workflows.awq_compat` (a normal import) this module has no side effect.
if __name__ == "awq_compat":
    install()
