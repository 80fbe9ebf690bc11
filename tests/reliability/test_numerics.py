"""Low-precision numerics against a float64 reference, with the tolerance table of the docs.

Two ways to run in low precision:

* ``direct``: the module and its inputs cast to the dtype. The reference is the float64 copy of
  that *same* module on the same (already rounded) inputs, so the error measured is the
  arithmetic of the kernels alone: with float32 accumulation it stays within a few units in the
  last place of the output dtype, whatever the number of inputs.
* ``autocast``: a float32 module and float32 inputs under ``torch.autocast('cpu', dtype)``;
  the reference is the float64 copy on the float32 inputs (so rounding of inputs and weights
  to the autocast dtype is part of the error).

Errors are normwise: ``max|y - ref| / max|ref|``, which does not blow up where an entry of the
reference happens to cancel to near zero.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

import interfuse
import interfuse.functional as kernels
import interfuse.tinybig as tb
from interfuse.functional import _common
from tests.registry import ALL_ENTRIES, ModuleEntry
from tests.reliability._common import build, cast, converted, sample

DOC = Path(__file__).resolve().parents[2] / "docs" / "numerics.md"


@dataclass(frozen=True)
class Tolerance:
    """Normwise tolerance of one dtype and mode (the rows of the docs table)."""

    dtype: torch.dtype
    mode: str  # "direct" or "autocast"
    tol: float

    @property
    def id(self) -> str:
        return f"{str(self.dtype).removeprefix('torch.')}-{self.mode}"


#: The tolerance table (``docs/numerics.md`` shows the same rows; a test keeps them equal).
TOLERANCES = [
    Tolerance(torch.float64, "direct", 1e-12),
    Tolerance(torch.float32, "direct", 1e-5),
    Tolerance(torch.bfloat16, "direct", 1e-2),
    Tolerance(torch.float16, "direct", 2e-3),
    Tolerance(torch.bfloat16, "autocast", 2e-2),
    Tolerance(torch.float16, "autocast", 4e-3),
]


@pytest.fixture(params=["plain", "blocked"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a numerics test on the plain formulas (small inputs) and on the blocked kernels."""
    if request.param == "blocked":
        monkeypatch.setattr(_common, "SMALL_BYTES", 0)
    return str(request.param)


def normwise_error(y: torch.Tensor, ref: torch.Tensor) -> float:
    scale = ref.detach().abs().max().clamp_min(torch.finfo(torch.float64).tiny)
    return float((y.detach().double() - ref.detach()).abs().max() / scale)


def run_direct(entry: ModuleEntry, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    module = converted(build(entry), dtype)
    args, kwargs = sample(entry, dtype)
    y = module(*args, **kwargs)
    ref = converted(module, torch.float64)(
        *cast(args, torch.float64), **cast(kwargs, torch.float64)
    )
    return y, ref


def run_autocast(entry: ModuleEntry, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    module = build(entry)
    args, kwargs = sample(entry, torch.float32)
    with torch.autocast("cpu", dtype=dtype):
        y = module(*args, **kwargs)
    ref = converted(module, torch.float64)(
        *cast(args, torch.float64), **cast(kwargs, torch.float64)
    )
    return y, ref


@pytest.mark.parametrize("tol", TOLERANCES, ids=lambda t: t.id)
@pytest.mark.parametrize("entry", ALL_ENTRIES, ids=lambda e: e.id)
def test_against_float64(entry: ModuleEntry, tol: Tolerance) -> None:
    run = run_direct if tol.mode == "direct" else run_autocast
    y, ref = run(entry, tol.dtype)
    assert torch.isfinite(y).all()
    if tol.mode == "direct":
        assert y.dtype == tol.dtype
    err = normwise_error(y, ref)
    assert err <= tol.tol, f"{entry.id} {tol.id}: normwise error {err:.3g} > {tol.tol:.3g}"


# ---------------------------------------------------------------------------------------------
# Accumulation: products, sums and norms of many low-precision inputs
# ---------------------------------------------------------------------------------------------
LOW = [torch.float32, torch.bfloat16, torch.float16]


def overflowing_factors(dtype: torch.dtype, k: int = 40) -> list[torch.Tensor]:
    """``k`` inputs whose running product overflows float32 (big^(k/2) ≥ 1e80) long before the
    end, while the whole product is about 1 (and every partial product is finite in float64)."""
    big = 1e4 if dtype == torch.float16 else 1e10
    scales = [big * (1 + 0.01 * i) for i in range(k // 2)]
    values = scales + [1 / s for s in scales]  # every gradient Π_{j≠i} xⱼ ≈ 1/xᵢ fits too
    return [torch.full((3, 4), v).to(dtype) for v in values]


def prod_kernels() -> dict[str, object]:
    return {
        "functional.fused_prod": kernels.fused_prod,
        "ProdFusion": interfuse.ProdFusion(),
        "tinybig.prod_fusion": lambda xs: tb.prod_fusion(dims=[xs[0].shape[-1]] * len(xs))(xs),
    }


@pytest.mark.parametrize("dtype", LOW, ids=str)
@pytest.mark.parametrize("name", sorted(prod_kernels()))
def test_prod_of_many_inputs_does_not_overflow(name: str, dtype: torch.dtype, path: str) -> None:
    xs = overflowing_factors(dtype)
    ref = torch.stack([x.double() for x in xs]).prod(0)
    assert torch.isfinite(ref).all() and ref.abs().max() < torch.finfo(dtype).max
    y = prod_kernels()[name](xs)  # type: ignore[operator]
    assert y.dtype == dtype
    assert torch.isfinite(y).all(), f"{name} overflowed in {dtype}"
    tol = next(t.tol for t in TOLERANCES if t.dtype == dtype and t.mode == "direct")
    assert normwise_error(y, ref) <= tol


@pytest.mark.parametrize("dtype", LOW, ids=str)
def test_prod_gradient_of_many_inputs(dtype: torch.dtype, path: str) -> None:
    """∂/∂xᵢ Π xⱼ = Π_{j≠i} xⱼ: finite and accurate though the running product overflows."""
    xs = [x.requires_grad_() for x in overflowing_factors(dtype)]
    refs = [x.detach().double().requires_grad_() for x in xs]
    interfuse.ProdFusion()(xs).sum().backward()
    torch.stack(refs).prod(0).sum().backward()
    tol = next(t.tol for t in TOLERANCES if t.dtype == dtype and t.mode == "direct")
    for x, r in zip(xs, refs):
        assert x.grad is not None and r.grad is not None and torch.isfinite(x.grad).all()
        assert normwise_error(x.grad, r.grad) <= tol


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
def test_prod_under_autocast(dtype: torch.dtype, path: str) -> None:
    xs = overflowing_factors(torch.float32)
    ref = torch.stack([x.double() for x in xs]).prod(0)
    with torch.autocast("cpu", dtype=dtype):
        y = kernels.fused_prod(xs)
    assert torch.isfinite(y).all()
    assert normwise_error(y, ref) <= 1e-5  # elementwise ops are not autocast: float32 math


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
def test_sum_and_mean_of_many_inputs_accumulate_wide(dtype: torch.dtype, path: str) -> None:
    """64 inputs near the top of float16's range: a float16 running sum overflows at the second
    input; the mean is representable and must come out finite and accurate. In bfloat16 a
    running sum would lose about k/2 units in the last place; float32 accumulation loses none."""
    top = 6e4 if dtype == torch.float16 else 1e36
    xs = [torch.full((2, 5), top * (0.5 + i / 128)).to(dtype) for i in range(64)]
    ref = torch.stack([x.double() for x in xs]).mean(0)
    tol = next(t.tol for t in TOLERANCES if t.dtype == dtype and t.mode == "direct")
    weighted = interfuse.WeightedSumFusion(64, learnable=False).to(dtype)
    mask = torch.ones(64, dtype=torch.bool)
    for y in (
        kernels.fused_mean(xs),
        interfuse.MeanFusion()(xs),
        interfuse.MeanFusion()(xs, mask=mask),
        weighted(xs),
        weighted(xs, mask=mask),
        tb.mean_fusion(dims=[5] * 64)(xs),
    ):
        assert y.dtype == dtype and torch.isfinite(y).all()
        assert normwise_error(y, ref) <= tol


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0])
@pytest.mark.parametrize("dtype", LOW, ids=str)
def test_norm_does_not_overflow(dtype: torch.dtype, p: float, path: str) -> None:
    """``(Σ|x|^p)^(1/p)`` where ``|x|^p`` overflows the dtype but the norm does not."""
    big = {torch.float16: 300.0, torch.bfloat16: 1e25, torch.float32: 1e25}[dtype]
    xs = [torch.full((2, 3), big * (1 + i / 10)).to(dtype).requires_grad_() for i in range(4)]
    ref = torch.stack([x.detach().double() for x in xs]).abs().pow(p).sum(0).pow(1 / p)
    y = interfuse.NormFusion(p=p)(xs)
    torch.testing.assert_close(y, kernels.fused_norm(xs, p=p))
    assert torch.isfinite(y).all()
    tol = next(t.tol for t in TOLERANCES if t.dtype == dtype and t.mode == "direct")
    assert normwise_error(y, ref) <= tol
    y.sum().backward()  # ∂/∂xᵢ = (|xᵢ|/‖x‖)^(p-1) ≤ 1: finite
    assert all(torch.isfinite(x.grad).all() for x in xs if x.grad is not None)


@pytest.mark.parametrize("name", ["l1_norm_fusion", "l2_norm_fusion"])
def test_tinybig_norm_fusions_in_float16(name: str, path: str) -> None:
    xs = [torch.full((2, 3), 300.0 + i, dtype=torch.float16) for i in range(3)]
    y = getattr(tb, name)(dims=[3, 3, 3])(xs)
    p = 1 if name.startswith("l1") else 2
    ref = torch.stack([x.double() for x in xs]).abs().pow(p).sum(0).pow(1 / p)
    assert torch.isfinite(y).all() and normwise_error(y, ref) <= 2e-3


# ---------------------------------------------------------------------------------------------
# The docs table
# ---------------------------------------------------------------------------------------------
def render_table() -> str:
    rows = [
        "| dtype | mode | normwise tolerance | = machine epsilons of the dtype |",
        "|---|---|---|---|",
    ]
    for t in TOLERANCES:
        name = str(t.dtype).removeprefix("torch.")
        eps = torch.finfo(t.dtype).eps
        rows.append(f"| `{name}` | {t.mode} | {t.tol:g} | {t.tol / eps:.3g} |")
    return "\n".join(rows)


def test_docs_table_matches_parametrization() -> None:
    text = DOC.read_text()
    assert render_table() in text, (
        "docs/numerics.md must contain the tolerance table exactly as test_numerics.render_table"
        " prints it:\n" + render_table()
    )
    assert re.search(r"fused_prod", text)


@pytest.mark.parametrize(
    "module",
    [
        lambda: interfuse.ParameterizedInterdependence(4, device="meta"),
        lambda: interfuse.LowRankMatrix(4, 4, rank=2, device="meta"),
    ],
)
def test_meta_inputs_get_the_dtype_check_not_an_autocast_error(module: object) -> None:
    m = module()  # type: ignore[operator]
    assert m(torch.empty(2, 3, 4, device="meta")).device.type == "meta"
    with pytest.raises(TypeError, match=r"x has dtype torch.float64 but \w+ has dtype"):
        m(torch.empty(2, 3, 4, device="meta", dtype=torch.float64))
