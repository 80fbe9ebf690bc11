"""Property tests (hypothesis) over random shapes, widths, k, ranks, factors and dtypes.

Properties, for every class of both faces:

* no unexpected exception: valid arguments never raise; random, possibly invalid, arguments
  raise only ``ValueError``/``TypeError`` (the tinyBIG face's error classes derive from
  ``ValueError``), never ``IndexError``, ``AttributeError`` or a raw ``RuntimeError``;
* finite outputs for finite inputs;
* permutation invariance of the symmetric fusions;
* linearity of the weighted sums and of every projection (structured matrices, parameterized
  concatenations, parameterized interdependences);
* masked result equals the result on the present inputs alone (modern fusions).

Besides the fixed registry inputs, the modern fusions are drawn at random (every class of
:data:`interfuse.fusion.FUSIONS`, ``k`` in 1..6, widths in 1..8, any leading shape, and for the
projected concatenation any matrix of :data:`interfuse.matrices.MATRICES` with a rank and
Kronecker factors drawn among the divisors). The interdependences the registry-driven tests
leave out (the modern hybrid, tinyBIG's bilinear, rpn and hybrid classes) are in
``test_properties_interdependence.py``.

``max_examples`` stays modest and the runs are derandomized, so CI is deterministic and fast.
"""

from __future__ import annotations

import inspect
import itertools
import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import interfuse
import interfuse.tinybig as tb
from interfuse.fusion import FUSIONS, Fusion
from interfuse.matrices import MATRICES as MATRIX_REGISTRY
from interfuse.tinybig import fusion as tbf
from tests.registry import ModuleEntry
from tests.reliability._common import MODERN_ENTRIES

FUZZ = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FEW = settings(FUZZ, max_examples=15)

DTYPES = st.sampled_from([torch.float32, torch.float64])
CLEAN = (ValueError, TypeError)


def close(a: torch.Tensor, b: torch.Tensor, dtype: torch.dtype) -> None:
    """Equal up to rounding, relative to the scale of ``b``."""
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    scale = float(b.detach().abs().max()) + 1.0
    torch.testing.assert_close(a, b, rtol=tol, atol=tol * scale)


def clean_errors_only(fn: Callable[[], object]) -> None:
    """Run ``fn``; a ``ValueError``/``TypeError`` with a message is fine, anything else fails."""
    try:
        fn()
    except CLEAN as err:
        assert str(err), f"{type(err).__name__} without a message"


@st.composite
def leading(draw: st.DrawFn) -> tuple[int, ...]:
    return tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=3)))


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


#: The names of :data:`interfuse.matrices.MATRICES` (new matrices are fuzzed as they are added).
MATRIX_KEYS = sorted(MATRIX_REGISTRY)


def _takes(name: str, option: str) -> bool:
    return option in inspect.signature(MATRIX_REGISTRY[name]).parameters


@st.composite
def matrix_options(
    draw: st.DrawFn,
    name: str,
    in_features: int,
    out_features: int,
    modes: tuple[str, ...] = ("auto", "factored", "dense"),
) -> dict[str, Any]:
    """Valid options of matrix ``name``: a mode, a rank, and Kronecker factors ``p`` (a divisor
    of ``out_features``) and ``q`` (a divisor of ``in_features``) where the class takes them."""
    options: dict[str, Any] = {"mode": draw(st.sampled_from(modes))}
    if _takes(name, "rank"):
        options["rank"] = draw(st.integers(1, 4))
    if _takes(name, "p"):
        options["p"] = draw(st.sampled_from(divisors(out_features)))
        options["q"] = draw(st.sampled_from(divisors(in_features)))
    if _takes(name, "seed"):
        options["seed"] = draw(st.integers(0, 3))
    return options


# ---------------------------------------------------------------------------------------------
# Structured matrices
# ---------------------------------------------------------------------------------------------
MATRICES = [
    interfuse.DenseMatrix,
    interfuse.LowRankMatrix,
    interfuse.KroneckerMatrix,
    interfuse.LowRankKroneckerMatrix,
    interfuse.DualLowRankKroneckerMatrix,
    interfuse.RandomAdaptedMatrix,
]


@st.composite
def matrices(draw: st.DrawFn) -> tuple[interfuse.StructuredMatrix, torch.dtype]:
    cls = draw(st.sampled_from(MATRICES))
    p, s, q, t = (draw(st.integers(1, 4)) for _ in range(4))
    kwargs: dict[str, Any] = {"mode": draw(st.sampled_from(["auto", "factored", "dense"]))}
    if cls is not interfuse.DenseMatrix and cls is not interfuse.KroneckerMatrix:
        kwargs["rank"] = draw(st.integers(1, 4))
    if cls in (
        interfuse.KroneckerMatrix,
        interfuse.LowRankKroneckerMatrix,
        interfuse.DualLowRankKroneckerMatrix,
    ):
        kwargs.update(p=p, q=q)
    dtype = draw(DTYPES)
    return cls(q * t, p * s, dtype=dtype, **kwargs), dtype


@FUZZ
@given(matrices(), leading(), st.floats(-3, 3), st.floats(-3, 3))
def test_matrix_linear_and_finite(
    md: tuple[interfuse.StructuredMatrix, torch.dtype], lead: tuple[int, ...], a: float, b: float
) -> None:
    m, dtype = md
    x = torch.randn(*lead, m.in_features, dtype=dtype)
    y = torch.randn(*lead, m.in_features, dtype=dtype)
    out = m(x)
    assert out.shape == (*lead, m.out_features) and torch.isfinite(out).all()
    close(m(a * x + b * y), a * out + b * m(y), dtype)
    close(m.forward_factored(x), x @ m.materialize().T, dtype)


@FUZZ
@given(matrices(), leading(), st.integers(1, 3))
def test_matrix_list_input_equals_concatenation(
    md: tuple[interfuse.StructuredMatrix, torch.dtype], lead: tuple[int, ...], pieces: int
) -> None:
    m, dtype = md
    x = torch.randn(*lead, m.in_features, dtype=dtype)
    cuts = sorted({0, m.in_features} | {m.in_features * i // pieces for i in range(pieces)})
    parts = [x[..., i:j] for i, j in itertools.pairwise(cuts) if j > i]
    close(m(parts), m(x), dtype)


@FUZZ
@given(
    st.sampled_from(MATRICES),
    st.integers(-1, 9),
    st.integers(-1, 9),
    st.one_of(st.none(), st.integers(-1, 5)),
    st.one_of(st.none(), st.integers(-1, 5)),
    st.one_of(st.none(), st.integers(-1, 5)),
    st.integers(-1, 10),
    st.sampled_from([torch.float32, torch.float64, torch.float16, torch.int64, torch.bool]),
)
def test_matrix_fuzz_only_clean_errors(
    cls: type,
    n_in: int,
    n_out: int,
    rank: int | None,
    p: int | None,
    q: int | None,
    width: int,
    dtype: torch.dtype,
) -> None:
    kwargs: dict[str, Any] = {}
    if rank is not None and cls not in (interfuse.DenseMatrix, interfuse.KroneckerMatrix):
        kwargs["rank"] = rank
    if cls in (
        interfuse.KroneckerMatrix,
        interfuse.LowRankKroneckerMatrix,
        interfuse.DualLowRankKroneckerMatrix,
    ):
        kwargs.update(p=p, q=q)

    def run() -> object:
        m = cls(n_in, n_out, **kwargs)
        return m(torch.ones(2, max(width, 0)).to(dtype))

    clean_errors_only(run)


# ---------------------------------------------------------------------------------------------
# tinyBIG face: fusions
# ---------------------------------------------------------------------------------------------
SYMMETRIC_TINYBIG = [
    "mean_fusion",
    "sum_fusion",
    "prod_fusion",
    "max_fusion",
    "min_fusion",
    "median_fusion",
    "l1_norm_fusion",
    "l2_norm_fusion",
]


@FUZZ
@given(
    st.sampled_from([*SYMMETRIC_TINYBIG, "summation_fusion", "average_fusion"]),
    st.integers(1, 6),
    leading(),
    st.integers(1, 5),
    DTYPES,
    st.randoms(use_true_random=False),
)
def test_tinybig_symmetric_fusions_are_permutation_invariant(
    name: str, k: int, lead: tuple[int, ...], n: int, dtype: torch.dtype, rnd: Any
) -> None:
    f = getattr(tb, name)(dims=[n] * k)
    xs = [torch.randn(*lead, n, dtype=dtype) for _ in range(k)]
    out = f(xs)
    assert out.shape == (*lead, n) and torch.isfinite(out).all()
    order = list(range(k))
    rnd.shuffle(order)
    close(f([xs[i] for i in order]), out, dtype)


#: A reference for every named metric of ``metric_fusion``, on the inputs stacked along dim 0.
METRIC_REFERENCE: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "mean": lambda s: s.mean(0),
    "sum": lambda s: s.sum(0),
    "prod": lambda s: s.prod(0),
    "max": lambda s: s.amax(0),
    "min": lambda s: s.amin(0),
    "median": lambda s: s.median(0).values,  # the lower median, as tinyBIG
    "l1_norm": lambda s: s.abs().sum(0),
    "l2_norm": lambda s: s.square().sum(0).sqrt(),
}


def test_metric_reference_covers_every_metric() -> None:
    assert set(METRIC_REFERENCE) == set(tbf.METRICS)


@FUZZ
@given(
    st.sampled_from(sorted(METRIC_REFERENCE)),
    st.booleans(),
    st.integers(1, 6),
    leading(),
    st.integers(1, 5),
    DTYPES,
    st.randoms(use_true_random=False),
    st.floats(-3, 3),
    st.floats(-3, 3),
    st.integers(0, 2**16),
)
def test_tinybig_metric_fusion_properties(
    metric: str,
    as_callable: bool,
    k: int,
    lead: tuple[int, ...],
    n: int,
    dtype: torch.dtype,
    rnd: Any,
    a: float,
    b: float,
    seed: int,
) -> None:
    """Named metrics and tinyBIG batch metrics (``(N, k) → (N,)`` callables) agree with the
    reference; every metric is symmetric, finite, ignores ``w``; mean and sum are linear."""
    torch.manual_seed(seed)
    reference = METRIC_REFERENCE[metric]

    def batch_metric(t: torch.Tensor) -> torch.Tensor:
        return reference(t.mT)

    f = tbf.metric_fusion([n] * k, metric=batch_metric if as_callable else metric)
    xs = [torch.randn(*lead, n, dtype=dtype) for _ in range(k)]
    out = f(xs)
    assert out.shape == (*lead, n) and out.dtype == dtype and torch.isfinite(out).all()
    close(out, reference(torch.stack(xs)), dtype)
    close(getattr(tbf, f"{metric}_fusion")(dims=[n] * k)(xs), out, dtype)
    close(f(xs, w=torch.randn(1, 3, dtype=dtype)), out, dtype)  # w is ignored
    order = list(range(k))
    rnd.shuffle(order)
    close(f([xs[i] for i in order]), out, dtype)
    if metric in ("mean", "sum"):
        ys = [torch.randn_like(x) for x in xs]
        close(f([a * x + b * y for x, y in zip(xs, ys)]), a * out + b * f(ys), dtype)


@FUZZ
@given(st.integers(1, 6), leading(), st.integers(1, 5), DTYPES, st.floats(-3, 3), st.floats(-3, 3))
def test_tinybig_weighted_sum_is_linear(
    k: int, lead: tuple[int, ...], n: int, dtype: torch.dtype, a: float, b: float
) -> None:
    f = tb.parameterized_weighted_summation_fusion(dims=[n] * k)
    xs = [torch.randn(*lead, n, dtype=dtype) for _ in range(k)]
    ys = [torch.randn(*lead, n, dtype=dtype) for _ in range(k)]
    w, v = torch.randn(1, k, dtype=dtype), torch.randn(1, k, dtype=dtype)
    mixed = [a * x + b * y for x, y in zip(xs, ys)]
    close(f(mixed, w=w), a * f(xs, w=w) + b * f(ys, w=w), dtype)  # linear in the inputs
    close(f(xs, w=a * w + b * v), a * f(xs, w=w) + b * f(xs, w=v), dtype)  # and in the weights


@st.composite
def tinybig_projections(draw: st.DrawFn) -> tuple[torch.nn.Module, list[int], torch.dtype]:
    dims = draw(st.lists(st.integers(1, 4), min_size=1, max_size=4))
    D = sum(dims)
    kind = draw(st.sampled_from(["plain", "lowrank", "hm", "lphm", "dual_lphm", "rma"]))
    p_ = draw(st.integers(1, 3))
    n = p_ * draw(st.integers(1, 3))
    q_ = draw(st.sampled_from([d for d in range(1, D + 1) if D % d == 0]))
    r = draw(st.integers(1, 3))
    kron = draw(st.booleans())
    build = {
        "plain": lambda: tbf.parameterized_concatenation_fusion(n=n, dims=dims),
        "lowrank": lambda: tbf.lowrank_parameterized_concatenation_fusion(n=n, dims=dims, r=r),
        "hm": lambda: tbf.hm_parameterized_concatenation_fusion(
            n=n, dims=dims, p=p_, q=q_, kronecker=kron
        ),
        "lphm": lambda: tbf.lphm_parameterized_concatenation_fusion(
            n=n, dims=dims, p=p_, q=q_, r=r, kronecker=kron
        ),
        "dual_lphm": lambda: tbf.dual_lphm_parameterized_concatenation_fusion(
            n=n, dims=dims, p=p_, q=q_, r=r, kronecker=kron
        ),
        "rma": lambda: tbf.random_matrix_adaption_parameterized_concatenation_fusion(
            n=n, dims=dims, r=r, seed=draw(st.integers(0, 5))
        ),
    }[kind]
    dtype = draw(DTYPES)
    return build().to(dtype), dims, dtype


@FUZZ
@given(tinybig_projections(), leading(), st.floats(-3, 3), st.floats(-3, 3))
def test_tinybig_projections_are_linear_and_match_the_matrix(
    fdd: tuple[torch.nn.Module, list[int], torch.dtype],
    lead: tuple[int, ...],
    a: float,
    b: float,
) -> None:
    f, dims, dtype = fdd
    w = torch.randn(1, f.calculate_l(), dtype=dtype)  # type: ignore[operator]
    xs = [torch.randn(*lead, d, dtype=dtype) for d in dims]
    ys = [torch.randn(*lead, d, dtype=dtype) for d in dims]
    out = f(xs, w=w)
    assert out.shape == (*lead, f.calculate_n()) and torch.isfinite(out).all()  # type: ignore[operator]
    close(f([a * x + b * y for x, y in zip(xs, ys)], w=w), a * out + b * f(ys, w=w), dtype)
    close(out, torch.cat(xs, -1) @ f.matrix(w).T, dtype)  # type: ignore[operator]


CORRUPTIONS = [
    "none",
    "integer inputs",
    "mixed dtypes",
    "float64 w",
    "meta input",
    "wrong width",
    "extra input",
    "missing input",
    "w one short",
    "w one long",
    "w of rank 3",
    "non-tensor item",
    "0-d input",
    "empty list",
    "stacked tensor",
    "no w",
]
TINYBIG_FUSIONS = [
    *SYMMETRIC_TINYBIG,
    "summation_fusion",
    "average_fusion",
    "weighted_summation_fusion",
    "parameterized_weighted_summation_fusion",
    "concatenation_fusion",
    "parameterized_concatenation_fusion",
    "lowrank_parameterized_concatenation_fusion",
    "hm_parameterized_concatenation_fusion",
    "lphm_parameterized_concatenation_fusion",
    "dual_lphm_parameterized_concatenation_fusion",
    "random_matrix_adaption_parameterized_concatenation_fusion",
    "metric_fusion",
]


@pytest.mark.parametrize("corruption", CORRUPTIONS)
@settings(FUZZ, max_examples=25)
@given(st.sampled_from(TINYBIG_FUSIONS), st.integers(1, 4), st.integers(1, 3), leading())
def test_tinybig_fusion_fuzz_only_clean_errors(
    corruption: str, name: str, k: int, width: int, lead: tuple[int, ...]
) -> None:
    """A valid call with one thing broken: it works or fails cleanly, never with a bare
    ``IndexError``/``AttributeError``/``RuntimeError``."""
    dims = [width] * k
    extra: dict[str, Any] = {}
    if "lowrank" in name or "lphm" in name or "adaption" in name:
        extra["r"] = 2
    if "hm_" in name:
        extra.update(p=1, q=width)
    if "parameterized_concatenation" in name:
        extra["n"] = 2
    if name == "weighted_summation_fusion":
        extra["weights"] = torch.ones(k)
    if name == "metric_fusion":
        extra["metric"] = "l2_norm"
    f = getattr(tbf, name)(dims=dims, **extra)
    xs: Any = [torch.randn(*lead, width) for _ in range(k)]
    n_w = f.calculate_l()
    w: Any = torch.randn(1, n_w) if n_w else None
    if corruption == "integer inputs":
        xs = [x.long() for x in xs]
    elif corruption == "mixed dtypes":
        xs[-1] = xs[-1].double()
    elif corruption == "float64 w" and w is not None:
        w = w.double()
    elif corruption == "meta input":
        xs[-1] = xs[-1].to("meta")
    elif corruption == "wrong width":
        xs[-1] = torch.randn(*lead, width + 1)
    elif corruption == "extra input":
        xs.append(xs[0])
    elif corruption == "missing input" and k > 1:
        xs.pop()
    elif corruption == "w one short" and w is not None:
        w = w[:, :-1]
    elif corruption == "w one long" and w is not None:
        w = torch.randn(1, n_w + 1)
    elif corruption == "w of rank 3" and w is not None:
        w = w[None]
    elif corruption == "non-tensor item":
        xs[-1] = 1.0
    elif corruption == "0-d input":
        xs[-1] = torch.tensor(1.0)
    elif corruption == "empty list":
        xs = []
    elif corruption == "stacked tensor":
        xs = torch.stack(xs)
    elif corruption == "no w":
        w = None
    clean_errors_only(lambda: f(xs, w=w))


# ---------------------------------------------------------------------------------------------
# tinyBIG face: parameterized interdependence (data-free A, so x ↦ x A is linear)
# ---------------------------------------------------------------------------------------------
@FEW
@given(
    st.sampled_from(["", "lowrank_", "hm_", "lphm_", "dual_lphm_", "random_matrix_adaption_"]),
    st.integers(1, 4),
    st.integers(1, 3),
    st.integers(1, 3),
    DTYPES,
    st.floats(-3, 3),
    st.floats(-3, 3),
)
def test_tinybig_parameterized_interdependence_is_linear(
    prefix: str, b_: int, m_half: int, rows: int, dtype: torch.dtype, a: float, c: float
) -> None:
    m = 2 * m_half
    kwargs: dict[str, Any] = {"b": b_, "m": m, "m_prime": m}
    if prefix in ("lowrank_", "lphm_", "dual_lphm_", "random_matrix_adaption_"):
        kwargs["r"] = 2
    if prefix in ("hm_", "lphm_", "dual_lphm_"):
        kwargs.update(p=2, q=2)
    f = getattr(tb, f"{prefix}parameterized_interdependence")(**kwargs).to(dtype)
    w = torch.randn(1, f.calculate_l(), dtype=dtype)
    x, y = torch.randn(rows, m, dtype=dtype), torch.randn(rows, m, dtype=dtype)
    out = f(x=x, w=w)
    assert torch.isfinite(out).all()
    close(f(x=a * x + c * y, w=w), a * out + c * f(x=y, w=w), dtype)
    close(out, x @ f.calculate_A(x=x, w=w), dtype)


@pytest.mark.parametrize("name", SYMMETRIC_TINYBIG)
def test_tinybig_symmetric_fusions_exact_on_ties(name: str) -> None:
    """Equal inputs are a fixed point of max/min/median/mean (exact, no rounding)."""
    x = torch.randn(3, 4)
    out = getattr(tb, name)(dims=[4] * 5)([x] * 5)
    expected = {
        "sum_fusion": 5 * x,
        "prod_fusion": x**5,
        "l1_norm_fusion": 5 * x.abs(),
        "l2_norm_fusion": 5**0.5 * x.abs(),
    }.get(name, x)
    torch.testing.assert_close(out, expected)


# ---------------------------------------------------------------------------------------------
# Modern interdependence
# ---------------------------------------------------------------------------------------------
MATRIX_NAMES = [
    "dense",
    "lowrank",
    "kronecker",
    "lowrank_kronecker",
    "dual_lowrank_kronecker",
    "rma",
]


def _options(name: str, d_in: int, d_out: int) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if name in ("lowrank", "lowrank_kronecker", "dual_lowrank_kronecker", "rma"):
        options["rank"] = 2
    if "kronecker" in name:
        options.update(
            p=next(p for p in (2, 1) if d_out % p == 0), q=next(q for q in (2, 1) if d_in % q == 0)
        )
    return options


@FUZZ
@given(
    st.sampled_from(MATRIX_NAMES),
    st.sampled_from(["attribute", "instance"]),
    st.integers(1, 6),
    st.integers(1, 6),
    st.integers(1, 5),
    leading(),
    DTYPES,
    st.floats(-3, 3),
    st.floats(-3, 3),
)
def test_parameterized_interdependence_is_linear(
    name: str,
    axis: str,
    d_in: int,
    d_out: int,
    other: int,
    lead: tuple[int, ...],
    dtype: torch.dtype,
    a: float,
    c: float,
) -> None:
    from interfuse.interdependence import ParameterizedInterdependence

    f = ParameterizedInterdependence(
        d_in, d_out, matrix=name, axis=axis, matrix_options=_options(name, d_in, d_out), dtype=dtype
    )
    shape = (*lead, other, d_in) if axis == "attribute" else (*lead, d_in, other)
    x, y = torch.randn(shape, dtype=dtype), torch.randn(shape, dtype=dtype)
    out = f(x)
    assert out.shape == f.output_shape(shape) and torch.isfinite(out).all()
    close(f(a * x + c * y), a * out + c * f(y), dtype)
    A = f.interdependence_matrix()
    close(out, x @ A if axis == "attribute" else A.mT @ x, dtype)


@FUZZ
@given(
    st.sampled_from(MATRIX_NAMES),
    st.sampled_from(["attribute", "instance"]),
    st.integers(1, 5),
    st.integers(1, 5),
    leading(),
    DTYPES,
    st.floats(-3, 3),
    st.floats(-3, 3),
)
def test_bilinear_interdependence_linear_in_data_and_order_free(
    name: str,
    axis: str,
    b_: int,
    m: int,
    lead: tuple[int, ...],
    dtype: torch.dtype,
    a: float,
    c: float,
) -> None:
    """Linear in the data ``A`` is applied to; both evaluation orders agree."""
    from interfuse.interdependence import BilinearInterdependence

    dim = b_ if axis == "attribute" else m
    options = _options(name, dim, dim)
    f = BilinearInterdependence(dim, matrix=name, axis=axis, matrix_options=options, dtype=dtype)
    x = torch.randn(*lead, b_, m, dtype=dtype) / 2
    d1, d2 = torch.randn_like(x), torch.randn_like(x)
    out = f(x, d1)
    assert torch.isfinite(out).all()
    close(f(x, a * d1 + c * d2), a * out + c * f(x, d2), dtype)
    g = BilinearInterdependence(dim, matrix=name, axis=axis, matrix_options=options, dtype=dtype)
    g.load_state_dict(f.state_dict())
    f.order, g.order = "matrix_first", "data_first"
    close(f(x, d1), g(x, d1), dtype)


INTERDEPENDENCE_CORRUPTIONS = [
    "none",
    "integer input",
    "float64 input",
    "meta input",
    "wrong width",
    "1-d input",
    "list input",
    "scalar input",
]


@pytest.mark.parametrize("corruption", INTERDEPENDENCE_CORRUPTIONS)
@settings(FUZZ, max_examples=15)
@given(
    st.sampled_from(["parameterized", "bilinear"]),
    st.sampled_from(MATRIX_NAMES),
    st.sampled_from(["attribute", "instance"]),
    st.integers(1, 4),
    st.integers(1, 4),
)
def test_interdependence_fuzz_only_clean_errors(
    corruption: str, kind: str, name: str, axis: str, b_: int, m: int
) -> None:
    from interfuse.interdependence import BilinearInterdependence, ParameterizedInterdependence

    def run() -> object:
        mixed = (m if axis == "attribute" else b_) if kind == "parameterized" else None
        if kind == "parameterized":
            assert mixed is not None
            f: Any = ParameterizedInterdependence(
                mixed, matrix=name, axis=axis, matrix_options=_options(name, mixed, mixed)
            )
        else:
            dim = b_ if axis == "attribute" else m
            f = BilinearInterdependence(
                dim, matrix=name, axis=axis, matrix_options=_options(name, dim, dim)
            )
        x: Any = torch.randn(2, b_, m)
        if corruption == "integer input":
            x = x.long()
        elif corruption == "float64 input":
            x = x.double()
        elif corruption == "meta input":
            x = x.to("meta")
        elif corruption == "wrong width":
            x = torch.randn(2, b_ + 1, m + 1)
        elif corruption == "1-d input":
            x = torch.randn(m)
        elif corruption == "list input":
            x = [x]
        elif corruption == "scalar input":
            x = 1.0
        return f(x)

    clean_errors_only(run)


# ---------------------------------------------------------------------------------------------
# Modern fusions (driven by the registry, so every fusion class is covered as it is added)
# ---------------------------------------------------------------------------------------------
def _is_modern_fusion(entry: ModuleEntry) -> bool:
    module = entry.factory()
    if not type(module).__module__.startswith("interfuse.fusion"):
        return False
    args, _ = entry.sample(torch.float32)
    return bool(args) and isinstance(args[0], (list, tuple))


FUSION_ENTRIES = [e for e in MODERN_ENTRIES if _is_modern_fusion(e)]
#: Fusions whose result does not depend on the order of the inputs.
SYMMETRIC = {
    "SumFusion",
    "MeanFusion",
    "ProdFusion",
    "MaxFusion",
    "MinFusion",
    "MedianFusion",
    "NormFusion",
    "VarFusion",
    "StdFusion",
    "LogSumExpFusion",
}
#: Fusions whose weights depend on the inputs (absent inputs must not matter, but no simpler
#: fusion of the present inputs alone gives their result).
DATA_DEPENDENT = {"AttentionFusion", "GatedFusion"}
#: Fusions that are affine in their inputs (linear, plus a bias where there is one).
AFFINE = {"WeightedSumFusion", "SumFusion", "MeanFusion", "ConcatFusion", "ProjectedConcatFusion"}
#: Fusions whose absent inputs count as zeros.
ZERO_FILL = {"ConcatFusion", "ProjectedConcatFusion"}


def _name(entry: ModuleEntry) -> str:
    return type(entry.factory()).__name__


def _inputs(entry: ModuleEntry, lead: tuple[int, ...], dtype: torch.dtype, seed: int) -> list:
    """The entry's inputs, redrawn with leading shape ``lead`` (widths kept)."""
    args, _ = entry.sample(torch.float32)
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(*lead, x.shape[-1], generator=gen).to(dtype) for x in args[0]]


def _fusion(entry: ModuleEntry, dtype: torch.dtype) -> torch.nn.Module:
    torch.manual_seed(0)
    return entry.factory().to(dtype).eval()


def _mask(k: int, data: st.DataObject) -> torch.Tensor:
    present = data.draw(st.lists(st.booleans(), min_size=k, max_size=k))
    present[data.draw(st.integers(0, k - 1))] = True  # at least one present
    return torch.tensor(present)


@pytest.mark.parametrize("entry", FUSION_ENTRIES, ids=lambda e: e.id)
@FEW
@given(leading(), DTYPES, st.integers(0, 2**16), st.floats(-3, 3), st.floats(-3, 3), st.data())
def test_fusion_properties(
    entry: ModuleEntry,
    lead: tuple[int, ...],
    dtype: torch.dtype,
    seed: int,
    a: float,
    b: float,
    data: st.DataObject,
) -> None:
    f = _fusion(entry, dtype)
    xs = _inputs(entry, lead, dtype, seed)
    k = len(xs)
    out = f(xs)
    assert torch.isfinite(out).all()
    name = _name(entry)

    if name in SYMMETRIC:
        order = data.draw(st.permutations(range(k)))
        close(f([xs[i] for i in order]), out, dtype)
    if name in AFFINE:
        ys = _inputs(entry, lead, dtype, seed + 1)
        zero = f([torch.zeros_like(x) for x in xs])
        mixed = f([a * x + b * y for x, y in zip(xs, ys)])
        close(mixed, a * out + b * f(ys) + (1 - a - b) * zero, dtype)

    # Masks: all present is no mask; absent inputs never leak (a nan placeholder is harmless).
    close(f(xs, mask=torch.ones(k, dtype=torch.bool)), out, dtype)
    mask = _mask(k, data)
    masked = f(xs, mask=mask)
    assert torch.isfinite(masked).all()
    poisoned = [x if keep else torch.full_like(x, float("nan")) for x, keep in zip(xs, mask)]
    close(f(poisoned, mask=mask), masked, dtype)
    if name in SYMMETRIC:  # the masked result is the result on the present inputs alone
        close(masked, f([x for x, keep in zip(xs, mask) if keep]), dtype)
    if name in ZERO_FILL:
        close(masked, f([x if keep else torch.zeros_like(x) for x, keep in zip(xs, mask)]), dtype)


@pytest.mark.parametrize("entry", FUSION_ENTRIES, ids=lambda e: e.id)
@FEW
@given(st.integers(2, 4), DTYPES, st.integers(0, 2**16), st.data())
def test_fusion_row_masks(
    entry: ModuleEntry, rows: int, dtype: torch.dtype, seed: int, data: st.DataObject
) -> None:
    """A per-row mask ``(rows, k)`` gives, row by row, the result of that row's ``(k,)`` mask."""
    f = _fusion(entry, dtype)
    xs = _inputs(entry, (rows,), dtype, seed)
    k = len(xs)
    mask = torch.stack([_mask(k, data) for _ in range(rows)])
    out = f(xs, mask=mask)
    for r in range(rows):
        close(out[r], f([x[r : r + 1] for x in xs], mask=mask[r])[0], dtype)


FUSION_CORRUPTIONS = [
    "integer inputs",
    "mixed dtypes",
    "meta input",
    "wrong width",
    "wrong leading shape",
    "extra input",
    "missing input",
    "non-tensor item",
    "0-d input",
    "empty list",
    "stacked tensor",
    "float mask",
    "mask of wrong k",
    "all masked",
    "meta mask",
]


#: Broken masks for ``k`` inputs (or parts), by corruption name; the fuzzers of both the
#: fusions and the hybrid interdependence use them.
BAD_MASKS: dict[str, Callable[[int], object]] = {
    "float mask": lambda k: torch.ones(k),
    "mask of wrong k": lambda k: torch.ones(k + 1, dtype=torch.bool),
    "all masked": lambda k: torch.zeros(k, dtype=torch.bool),
    "list mask": lambda k: [True] * k,
    "2-d mask": lambda k: torch.ones(2, k, dtype=torch.bool),
    "meta mask": lambda k: torch.ones(k, dtype=torch.bool, device="meta"),
}


def _corrupt_fusion_call(xs: list[torch.Tensor], corruption: str) -> tuple[Any, dict[str, Any]]:
    """A valid fusion call ``f(xs)`` with one thing broken: ``(xs, kwargs)``."""
    bad: Any = list(xs)
    k, lead, width = len(xs), xs[-1].shape[:-1], xs[-1].shape[-1]
    kwargs: dict[str, Any] = {}
    if corruption == "integer inputs":
        bad = [x.long() for x in xs]
    elif corruption == "mixed dtypes":
        bad[-1] = xs[-1].double() if xs[-1].dtype != torch.float64 else xs[-1].float()
    elif corruption == "meta input":
        bad[-1] = xs[-1].to("meta")
    elif corruption == "wrong width":
        bad[-1] = torch.randn(*lead, width + 1, dtype=xs[-1].dtype)
    elif corruption == "wrong leading shape":
        bad[-1] = torch.randn(*(n + 1 for n in lead), width, dtype=xs[-1].dtype)
    elif corruption == "extra input":
        bad.append(xs[0])
    elif corruption == "missing input":
        bad.pop()
    elif corruption == "non-tensor item":
        bad[-1] = 1.0
    elif corruption == "0-d input":
        bad[-1] = torch.tensor(1.0, dtype=xs[-1].dtype)
    elif corruption == "empty list":
        bad = []
    elif corruption == "stacked tensor":
        bad = torch.stack(xs) if all(x.shape == xs[0].shape for x in xs) else xs[0]
    elif corruption in BAD_MASKS:
        kwargs["mask"] = BAD_MASKS[corruption](k)
    return bad, kwargs


@pytest.mark.parametrize("corruption", FUSION_CORRUPTIONS)
@pytest.mark.parametrize("entry", FUSION_ENTRIES, ids=lambda e: e.id)
def test_fusion_bad_inputs_fail_cleanly(entry: ModuleEntry, corruption: str) -> None:
    f = _fusion(entry, torch.float32)
    xs, kwargs = _corrupt_fusion_call(_inputs(entry, (2, 3), torch.float32, 0), corruption)
    clean_errors_only(lambda: f(xs, **kwargs))


# ---------------------------------------------------------------------------------------------
# Modern fusions at random: every class, k, widths, leading shape, dtype, matrix and its options
# ---------------------------------------------------------------------------------------------
#: Every modern fusion class, by name (from the registry, so a new class must be added here).
FUSION_CLASSES = sorted(cls.__name__ for cls in FUSIONS.values())
#: Fusions that are linear in their inputs (no bias); the projected concatenation is linear
#: without its bias and affine with it.
LINEAR = {"WeightedSumFusion", "SumFusion", "MeanFusion", "ConcatFusion"}
CONCATENATIONS = {"ConcatFusion", "ProjectedConcatFusion"}


@st.composite
def modern_fusion(draw: st.DrawFn, name: str, widths: list[int], dtype: torch.dtype) -> Fusion:
    """A fusion of class ``name`` for inputs of ``widths``, its options drawn at random."""
    k = len(widths)
    num_inputs = draw(st.sampled_from([None, k]))
    if name == "WeightedSumFusion":
        normalize = draw(st.sampled_from(["none", "softmax"]))
        # unnormalized weights stay positive, so no subset of present weights sums to zero
        low = -2.0 if normalize == "softmax" else 0.1
        weights = draw(st.lists(st.floats(low, 2.0), min_size=k, max_size=k))
        learnable = draw(st.booleans())
        return interfuse.WeightedSumFusion(
            k, weights=weights, learnable=learnable, normalize=normalize, dtype=dtype
        )
    if name == "MedianFusion":
        return interfuse.MedianFusion(
            draw(st.sampled_from(["lower", "mean"])), num_inputs=num_inputs
        )
    if name == "NormFusion":
        p = draw(st.sampled_from([1.0, 2.0, 3.0, math.inf]))
        return interfuse.NormFusion(p, num_inputs=num_inputs)
    if name in ("VarFusion", "StdFusion"):  # correction 0: one present input is finite
        return getattr(interfuse, name)(0, num_inputs=num_inputs)  # type: ignore[no-any-return]
    if name == "AttentionFusion":
        out_dim = draw(st.one_of(st.none(), st.integers(1, 5)))
        hidden = draw(st.one_of(st.none(), st.integers(1, 4)))
        return interfuse.AttentionFusion(widths, out_dim, hidden, dtype=dtype)
    if name == "GatedFusion":
        gate = draw(st.sampled_from(["softmax", "sigmoid"]))
        return interfuse.GatedFusion(
            widths, draw(st.integers(1, 5)), gate=gate, bias=draw(st.booleans()), dtype=dtype
        )
    if name == "ConcatFusion":
        return interfuse.ConcatFusion(None if num_inputs is None else widths)
    if name == "ProjectedConcatFusion":
        matrix = draw(st.sampled_from(MATRIX_KEYS))
        out = draw(st.integers(1, 8))
        options = draw(matrix_options(matrix, sum(widths), out))
        bias = draw(st.booleans())
        return interfuse.ProjectedConcatFusion(
            widths, out, matrix=matrix, bias=bias, matrix_options=options, dtype=dtype
        )
    fusion: Fusion = getattr(interfuse, name)(num_inputs=num_inputs)
    return fusion


@st.composite
def fusion_cases(draw: st.DrawFn) -> tuple[Fusion, list[int], torch.dtype]:
    """``(fusion, widths, dtype)``: any class, ``k`` in 1..6, widths in 1..8."""
    name = draw(st.sampled_from(FUSION_CLASSES))
    k = draw(st.integers(1, 6))
    if name in CONCATENATIONS or name == "GatedFusion":
        widths = draw(st.lists(st.integers(1, 8), min_size=k, max_size=k))
    else:
        widths = [draw(st.integers(1, 8))] * k
    dtype = draw(DTYPES)
    torch.manual_seed(draw(st.integers(0, 2**16)))  # inits and inputs replay with the example
    return draw(modern_fusion(name, widths, dtype)).eval(), widths, dtype


def test_every_modern_fusion_class_is_drawn() -> None:
    assert set(FUSION_CLASSES) == {cls.__name__ for cls in FUSIONS.values()}
    assert SYMMETRIC | LINEAR | CONCATENATIONS | DATA_DEPENDENT | {"ProdFusion"} >= set(
        FUSION_CLASSES
    )


def _present_only(f: Fusion, xs: list[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
    """What ``f(xs, mask)`` must be, computed from the present inputs alone (a ``(k,)`` mask)."""
    keep = [i for i, m in enumerate(mask.tolist()) if m]
    name = type(f).__name__
    if name in SYMMETRIC:  # the same fusion, on the present inputs only
        config = {**f.get_config(), "num_inputs": None}
        out: torch.Tensor = type(f)(**config)([xs[i] for i in keep])
        return out
    if isinstance(f, interfuse.WeightedSumFusion):  # present weights, rescaled to the total
        w = f.fusion_weights()
        return sum(w[i] * xs[i] for i in keep) * (w.sum() / w[keep].sum())  # type: ignore[return-value]
    if name in DATA_DEPENDENT:  # whatever the absent inputs hold
        return f([x if i in keep else torch.randn_like(x) * 1e3 for i, x in enumerate(xs)], mask)
    if isinstance(f, interfuse.ConcatFusion):  # absent inputs zero-filled, slots kept
        return torch.cat([x if i in keep else torch.zeros_like(x) for i, x in enumerate(xs)], -1)
    assert isinstance(f, interfuse.ProjectedConcatFusion)  # the present columns of W only
    offsets = [0, *itertools.accumulate(x.shape[-1] for x in xs)]
    cols = torch.cat([torch.arange(offsets[i], offsets[i + 1]) for i in keep])
    out = torch.cat([xs[i] for i in keep], -1) @ f.matrix.materialize()[:, cols].T
    return out if f.bias is None else out + f.bias


@settings(FUZZ, max_examples=60)
@given(fusion_cases(), leading(), st.floats(-3, 3), st.floats(-3, 3), st.data())
def test_fusion_random_shapes_properties(
    case: tuple[Fusion, list[int], torch.dtype],
    lead: tuple[int, ...],
    a: float,
    b: float,
    data: st.DataObject,
) -> None:
    """Finite, symmetric where it should be, linear where it should be, and a masked result
    that is the result on the present inputs alone (per call and per row)."""
    f, widths, dtype = case
    name, k = type(f).__name__, len(widths)
    xs = [torch.randn(*lead, n, dtype=dtype) for n in widths]
    out = f(xs)
    assert out.shape == (*lead, f.out_features(widths)) and out.dtype == dtype
    assert torch.isfinite(out).all()

    if name in SYMMETRIC:
        order = data.draw(st.permutations(range(k)))
        close(f([xs[i] for i in order]), out, dtype)
    if name in LINEAR or isinstance(f, interfuse.ProjectedConcatFusion):
        ys = [torch.randn_like(x) for x in xs]
        mixed = f([a * x + b * y for x, y in zip(xs, ys)])
        bias = getattr(f, "bias", None)
        if bias is None:  # linear: f(a·x + b·y) = a·f(x) + b·f(y)
            close(mixed, a * out + b * f(ys), dtype)
        else:  # affine: the bias once
            close(mixed, a * out + b * f(ys) + (1 - a - b) * bias, dtype)

    mask = _mask(k, data)
    masked = f(xs, mask=mask)
    assert masked.shape == out.shape and torch.isfinite(masked).all()
    close(masked, _present_only(f, xs, mask), dtype)
    poisoned = [x if keep else torch.full_like(x, float("nan")) for x, keep in zip(xs, mask)]
    close(f(poisoned, mask=mask), masked, dtype)

    # A per-row mask (..., k): each row is fused over its own present inputs.
    rows = math.prod(lead)
    row_mask = torch.rand(*lead, k) < 0.5
    row_mask.scatter_(-1, torch.randint(k, (*lead, 1)), True)  # one present input per row
    by_row = f(xs, mask=row_mask).reshape(rows, -1)
    for r in data.draw(st.lists(st.integers(0, rows - 1), min_size=1, max_size=2)):
        one = [x.reshape(rows, -1)[r : r + 1] for x in xs]
        close(by_row[r], f(one, mask=row_mask.reshape(rows, k)[r])[0], dtype)


@pytest.mark.parametrize(
    "name",
    sorted(SYMMETRIC | {"WeightedSumFusion"}),
)
def test_row_mask_of_width_one_inputs(name: str) -> None:
    """Row r of ``f(xs, mask)`` is ``f`` of row r under ``mask[r]``, for inputs of width 1 too."""
    f = getattr(interfuse, name)(2) if name == "WeightedSumFusion" else getattr(interfuse, name)()
    xs = [torch.tensor([[1.0], [2.0]]), torch.tensor([[10.0], [20.0]])]
    mask = torch.tensor([[True, False], [False, True]])  # row 0: input 0 only; row 1: input 1
    expected = torch.cat([f([x[r : r + 1] for x in xs], mask=mask[r]) for r in range(2)])
    torch.testing.assert_close(f(xs, mask=mask), expected, equal_nan=True)  # var of one: nan


@pytest.mark.parametrize("corruption", FUSION_CORRUPTIONS)
@settings(FUZZ, max_examples=8)
@given(fusion_cases(), leading())
def test_fusion_random_shapes_only_clean_errors(
    corruption: str, case: tuple[Fusion, list[int], torch.dtype], lead: tuple[int, ...]
) -> None:
    f, widths, dtype = case
    xs, kwargs = _corrupt_fusion_call(
        [torch.randn(*lead, n, dtype=dtype) for n in widths], corruption
    )
    clean_errors_only(lambda: f(xs, **kwargs))


@FUZZ
@given(
    st.lists(st.integers(-1, 6), max_size=4),
    st.integers(-1, 8),
    st.sampled_from([*MATRIX_KEYS, "hm", "lphm", "rma", "no_such_matrix"]),
    st.one_of(st.none(), st.integers(-1, 5)),
    st.one_of(st.none(), st.integers(-1, 5)),
    st.one_of(st.none(), st.integers(-1, 5)),
    st.sampled_from([None, "auto", "factored", "dense", "sparse"]),
    st.integers(-1, 1),
)
def test_projected_concat_fuzz_only_clean_errors(
    in_dims: list[int],
    out_dim: int,
    matrix: str,
    rank: int | None,
    p: int | None,
    q: int | None,
    mode: str | None,
    drift: int,
) -> None:
    """Random, often invalid, constructor arguments (widths, ranks, factors that do not divide,
    options the matrix does not take, unknown names) and inputs one width off: clean errors."""
    options = {
        key: value
        for key, value in (("rank", rank), ("p", p), ("q", q), ("mode", mode))
        if value is not None
    }

    def run() -> object:
        f = interfuse.ProjectedConcatFusion(in_dims, out_dim, matrix=matrix, matrix_options=options)
        widths = [*in_dims[:-1], max(in_dims[-1] + drift, 0)] if in_dims else []
        return f([torch.randn(2, n) for n in widths])

    clean_errors_only(run)
