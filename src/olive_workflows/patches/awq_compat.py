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
# `import olive_workflows.patches.awq_compat` alone changes nothing and imports neither torch nor
# transformers: the alias is added when transformers.activations is (or was) imported.
#
# `install()` also replaces AutoAWQ's `WQLinear_GEMM.from_linear` packing by a vectorized
# equivalent (same operations per element, so bit-identical qweight/qzeros/scales). AutoAWQ
# packs column by column in Python: per Phi-3.5-mini layer about 50,000 loop iterations and
# 200,000 small tensor operations, which on a GPU are kernel launches.
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
_GEMM = "awq.modules.linear.gemm"
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


def _pack_int4(values: Any) -> Any:
    """AutoAWQ's 4-bit packing of an int32 [rows, cols] tensor into [rows, cols // 8].

    Each output column ORs 8 input columns, in AutoAWQ's order [0, 2, 4, 6, 1, 3, 5, 7],
    shifted by 0, 4, ..., 28 bits: the loop of `WQLinear_GEMM.from_linear`, over all columns
    at once.
    """
    import torch

    rows, cols = values.shape
    grouped = values.reshape(rows, cols // 8, 8)
    packed = torch.zeros((rows, cols // 8), dtype=torch.int32, device=values.device)
    for i, column in enumerate((0, 2, 4, 6, 1, 3, 5, 7)):
        packed |= grouped[:, :, column] << (i * 4)
    return packed


def _fast_from_linear(original: Any) -> Any:
    """`WQLinear_GEMM.from_linear` with the packing vectorized; same results, bit for bit."""

    # AutoAWQ's own signature, positional arguments included: callers pass them that way
    def from_linear(  # noqa: PLR0917
        cls, linear, w_bit, group_size, init_only=False, scales=None, zeros=None
    ):
        if init_only or w_bit != 4 or scales is None or zeros is None:
            return original.__func__(cls, linear, w_bit, group_size, init_only, scales, zeros)
        import torch
        from awq.utils.utils import get_best_device

        awq_linear = cls(
            w_bit,
            group_size,
            linear.in_features,
            linear.out_features,
            linear.bias is not None,
            linear.weight.device,
        )
        scale_zeros = zeros * scales
        awq_linear.scales = scales.clone().half()
        if linear.bias is not None:
            awq_linear.bias = linear.bias.clone().half()
        # AutoAWQ: column idx of the weight uses row idx // group_size of scales/zeros
        expand = {"repeats": group_size, "dim": 0}
        intweight = torch.round(
            (linear.weight.data.t() + scale_zeros.repeat_interleave(**expand))
            / awq_linear.scales.repeat_interleave(**expand)
        ).to(torch.int)
        intweight = intweight.contiguous().to(dtype=torch.int32)
        if "mps" in get_best_device():
            intweight = intweight.to("cpu")
        awq_linear.qweight = _pack_int4(intweight)
        zeros = zeros.to(dtype=torch.int32, device=get_best_device())
        if "mps" in get_best_device():
            zeros = zeros.to("cpu")
        awq_linear.qzeros = _pack_int4(zeros)
        return awq_linear

    from_linear.__doc__ = original.__doc__
    return classmethod(from_linear)


def _speed_up_gemm(module: ModuleType) -> None:
    gemm = getattr(module, "WQLinear_GEMM", None)
    if gemm is None or getattr(gemm, "_olive_workflows_fast_pack", False):
        return
    gemm.from_linear = _fast_from_linear(gemm.__dict__["from_linear"])
    gemm._olive_workflows_fast_pack = True


_AFTER_LOAD = {_TARGET: _add_alias, _GEMM: _speed_up_gemm}


class _AliasingLoader(importlib.abc.Loader):
    """Runs the real loader, then our fix; everything else goes to the real loader."""

    def __init__(self, inner: importlib.abc.Loader) -> None:
        self._inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._inner.exec_module(module)
        _AFTER_LOAD[module.__name__](module)

    def __getattr__(self, name: str) -> Any:
        # get_source, get_filename, ... (inspect and linecache ask the module's loader)
        return getattr(self._inner, name)


class _AliasFinder(importlib.abc.MetaPathFinder):
    """Wraps the loaders of transformers.activations and awq's GEMM module; finds nothing else.

    Hooking `transformers.activations` rather than `awq` matters: transformers itself calls
    `importlib.util.find_spec("awq")` while it is half-initialised, and importing
    transformers.activations from there is a circular import.
    """

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _AFTER_LOAD:
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

    >>> from olive_workflows.patches import awq_compat
    >>> awq_compat.install()  # then `import awq` works on transformers 4.57
    """
    for name, fix in _AFTER_LOAD.items():
        loaded = sys.modules.get(name)
        if loaded is not None:
            fix(loaded)
    if not is_installed():
        sys.meta_path.insert(0, _AliasFinder())


def user_script_path() -> str:
    """Absolute path of this file, for an AutoAWQQuantizer pass's `user_script`."""
    return str(Path(__file__).resolve())


# Olive's import_module_from_file() loads a user_script under its file stem, "awq_compat";
# as `olive_workflows.patches.awq_compat` (a normal import) this module has no side effect.
if __name__ == "awq_compat":
    install()
