"""awq_compat's vectorized `WQLinear_GEMM.from_linear` against AutoAWQ 0.2.9's own loop.

Runs on the CPU wherever autoawq is installed (`make install` adds it with --no-deps: it is
pure Python); each check starts a fresh interpreter, since the patch changes a class for the
whole process.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Imports awq with only the transformers alias (not awq_compat.install(), which would patch
# the class before we keep the original), quantizes random layers with AutoAWQ's own
# pseudo-quantizer, packs them with both implementations and compares every tensor exactly.
_COMPARE = """
import sys, torch
import transformers.activations as a
a.PytorchGELUTanh = a.GELUTanh
import awq.modules.linear.gemm as gemm
from awq.quantize.quantizer import AwqQuantizer
from olive_workflows.patches import awq_compat

original = gemm.WQLinear_GEMM.__dict__["from_linear"]
torch.manual_seed(0)
cases = [(256, 384, 128, True), (512, 256, 64, True), (96, 128, 32, True), (64, 256, 128, False)]
packed = []
for out_f, in_f, group, bias in cases:
    q = AwqQuantizer.__new__(AwqQuantizer)
    q.w_bit, q.group_size, q.zero_point = 4, group, True
    linear = torch.nn.Linear(in_f, out_f, bias=bias).half()
    weight = torch.randn(out_f, in_f) * 0.02
    weight[0, :8] = torch.tensor([0.5, -0.5, 1e-8, -1e-8, 0.0, -0.0, 0.3, -0.7])  # outliers, zeros
    linear.weight.data, scales, zeros = q.pseudo_quantize_tensor(weight.half())
    args = dict(w_bit=4, group_size=group, scales=scales.t().contiguous(), zeros=zeros.t().contiguous())
    packed.append((linear, args))

def run(from_linear):
    return [from_linear.__get__(None, gemm.WQLinear_GEMM)(linear=l, **kw) for l, kw in packed]

slow = run(original)
awq_compat._speed_up_gemm(gemm)
assert gemm.WQLinear_GEMM.__dict__["from_linear"] is not original
fast = run(gemm.WQLinear_GEMM.__dict__["from_linear"])
for (out_f, in_f, group, bias), s, f in zip(cases, slow, fast):
    for name in ("qweight", "qzeros", "scales") + (("bias",) if bias else ()):
        x, y = getattr(s, name), getattr(f, name)
        assert x.dtype == y.dtype and x.shape == y.shape, (name, x.dtype, y.dtype, x.shape, y.shape)
        assert torch.equal(x, y), (out_f, in_f, group, name)
    assert (s.in_features, s.out_features, s.w_bit, s.group_size) == (f.in_features, f.out_features, f.w_bit, f.group_size)
# init_only (loading a checkpoint) goes to AutoAWQ's own code
empty = gemm.WQLinear_GEMM.from_linear(packed[0][0], 4, 128, init_only=True)
assert empty.qweight.abs().sum() == 0
print("identical", len(cases))
"""

_INSTALL_PATCHES = """
from olive_workflows.patches import awq_compat
awq_compat.install()
import awq.modules.linear.gemm as gemm
assert gemm.WQLinear_GEMM._olive_workflows_fast_pack
awq_compat.install()  # idempotent: the patch is not stacked
assert gemm.WQLinear_GEMM.__dict__["from_linear"].__func__.__name__ == "from_linear"
print("patched")
"""


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


@pytest.fixture(scope="module", autouse=True)
def _needs_autoawq() -> None:
    pytest.importorskip("torch")
    if _python("import importlib.util as u; assert u.find_spec('awq')").returncode != 0:
        pytest.skip("autoawq is not installed")


def test_fast_packing_is_bit_identical_to_autoawq() -> None:
    proc = _python(_COMPARE)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "identical 4" in proc.stdout


def test_install_patches_awq_when_it_is_imported() -> None:
    proc = _python(_INSTALL_PATCHES)
    assert proc.returncode == 0, proc.stderr[-3000:]
