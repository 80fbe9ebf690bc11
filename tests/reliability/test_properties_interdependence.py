"""Property tests (hypothesis) for the interdependences ``test_properties.py`` leaves out.

* the modern :class:`interfuse.HybridInterdependence`: random parts (parameterized and bilinear,
  any matrix of :data:`interfuse.matrices.MATRICES`, either axis) fused by any modern fusion;
* tinyBIG's six ``*parameterized_bilinear_interdependence`` classes,
  ``parameterized_rpn_interdependence`` and ``hybrid_interdependence``.

Properties: valid arguments never raise and give finite outputs for finite inputs; ``forward``
is the data times ``A`` (``calculate_A`` / ``interdependence_matrix``); the result is linear in
the data ``A`` is applied to, and in ``x`` itself where ``A`` does not depend on the data;
``A(c·w) = c^deg A(w)`` with the degree of the parameter fabrication; ``A(c·x) = c² A(x)`` for the
bilinear forms; hybrids of symmetric fusions do not depend on the order of their parts, and a
masked hybrid is the hybrid of its present parts. Broken calls raise only
``ValueError``/``TypeError`` with a message; the bugs these fuzzers found (raw matmul errors on
mismatched dtypes and row counts) are fixed, with rows in the bad-input catalogue and
``test_rpn_checks_before_the_product``.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

import interfuse
import interfuse.tinybig as tb
from interfuse.fusion import Fusion
from interfuse.interdependence import BilinearInterdependence, ParameterizedInterdependence
from interfuse.interdependence.hybrid import is_linear_fusion
from interfuse.tinybig import fusion as tbf
from tests.reliability.test_properties import (
    BAD_MASKS,
    CONCATENATIONS,
    DTYPES,
    FUSION_CLASSES,
    FUZZ,
    MATRIX_KEYS,
    SYMMETRIC,
    SYMMETRIC_TINYBIG,
    _mask,
    clean_errors_only,
    close,
    divisors,
    leading,
    matrix_options,
    modern_fusion,
)
from tests.tinybig.rpn_doubles import (
    IdentityExpansion,
    IdentityReconciliation,
    LowRankReconciliation,
    TaylorExpansion,
)

#: The broken-call fuzzers report the first failing example unshrunk: its module and the
#: corruption's name say enough.
FUZZ_ERRORS = settings(FUZZ, max_examples=8, phases=[Phase.explicit, Phase.reuse, Phase.generate])
SCALES = st.sampled_from([-2.0, -0.5, 0.5, 1.5, 3.0])
TYPES = st.sampled_from(["attribute", "instance"])


def _seed(draw: st.DrawFn) -> None:
    """Seed torch from the example, so inits and inputs replay with it."""
    torch.manual_seed(draw(st.integers(0, 2**16)))


# ---------------------------------------------------------------------------------------------
# Modern HybridInterdependence
# ---------------------------------------------------------------------------------------------
@st.composite
def hybrids(
    draw: st.DrawFn,
) -> tuple[interfuse.HybridInterdependence, torch.Tensor, torch.dtype]:
    """A hybrid of 1..3 random parts, any fusion and strategy, and an input ``(..., b, m)``."""
    axis = draw(TYPES)
    b, m = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    mixed = m if axis == "attribute" else b
    dtype = draw(DTYPES)
    fusion_name = draw(st.sampled_from(FUSION_CLASSES))
    kinds = draw(st.lists(st.sampled_from(["parameterized", "bilinear"]), min_size=1, max_size=3))
    # element-wise fusions need one width; a bilinear part keeps the mixed dimension
    common = mixed if "bilinear" in kinds else draw(st.integers(1, 5))
    _seed(draw)
    parts: list[Any] = []
    widths: list[int] = []
    for kind in kinds:
        matrix = draw(st.sampled_from(MATRIX_KEYS))
        if kind == "bilinear":
            dim = b if axis == "attribute" else m
            parts.append(
                BilinearInterdependence(
                    dim,
                    matrix=matrix,
                    axis=axis,
                    order=draw(st.sampled_from(["auto", "matrix_first", "data_first"])),
                    matrix_options=draw(matrix_options(matrix, dim, dim)),
                    dtype=dtype,
                )
            )
            widths.append(mixed)
        else:
            out = draw(st.integers(1, 5)) if fusion_name in CONCATENATIONS else common
            parts.append(
                ParameterizedInterdependence(
                    mixed,
                    out,
                    matrix=matrix,
                    axis=axis,
                    matrix_options=draw(matrix_options(matrix, mixed, out)),
                    dtype=dtype,
                )
            )
            widths.append(out)
    fusion = draw(modern_fusion(fusion_name, widths, dtype))
    strategies = (
        ["auto", "matrices", "outputs"] if is_linear_fusion(fusion) else ["auto", "matrices"]
    )
    f = interfuse.HybridInterdependence(parts, fusion, strategy=draw(st.sampled_from(strategies)))
    x = torch.randn(*draw(leading()), b, m, dtype=dtype)
    return f.eval(), x, dtype


def _apply(f: interfuse.HybridInterdependence, a: torch.Tensor, data: torch.Tensor) -> torch.Tensor:
    return data @ a if f.axis == "attribute" else a.mT @ data


def _fresh(fusion: Fusion) -> Fusion:
    """A parameter-free fusion of the same class and options, for any number of inputs."""
    rebuilt: Fusion = type(fusion)(**{**fusion.get_config(), "num_inputs": None})
    return rebuilt


@settings(FUZZ, max_examples=40)
@given(hybrids(), st.floats(-3, 3), st.floats(-3, 3), st.data())
def test_hybrid_interdependence_properties(
    case: tuple[interfuse.HybridInterdependence, torch.Tensor, torch.dtype],
    a: float,
    c: float,
    data: st.DataObject,
) -> None:
    f, x, dtype = case
    parts = list(f.parts)
    k, name = len(parts), type(f.fusion).__name__
    out = f(x)
    assert out.shape == f.output_shape(x.shape) and out.dtype == dtype
    assert torch.isfinite(out).all()
    close(out, _apply(f, f.interdependence_matrix(x), x), dtype)  # forward is data times A
    if f.linear_fusion:  # fusing the outputs is fusing the matrices
        drawn = f.strategy
        for strategy in ("matrices", "outputs"):
            f.strategy = strategy
            close(f(x), out, dtype)
        f.strategy = drawn

    # linear in the data A is applied to; in x itself when no part depends on the data
    d1, d2 = torch.randn_like(x), torch.randn_like(x)
    close(f(x, a * d1 + c * d2), a * f(x, d1) + c * f(x, d2), dtype)
    if not f.data_dependent:
        y = torch.randn_like(x)
        close(f(a * x + c * y), a * out + c * f(y), dtype)

    if name in SYMMETRIC:  # the order of the parts does not matter
        order = data.draw(st.permutations(range(k)))
        permuted = interfuse.HybridInterdependence([parts[i] for i in order], _fresh(f.fusion))
        close(permuted(x), out, dtype)

    mask = _mask(k, data)
    masked = f(x, mask=mask)
    assert masked.shape == out.shape and torch.isfinite(masked).all()
    close(masked, _apply(f, f.interdependence_matrix(x, mask), x), dtype)
    keep = [i for i in range(k) if mask[i]]
    if name in SYMMETRIC:  # the hybrid of the present parts alone
        alone = interfuse.HybridInterdependence([parts[i] for i in keep], _fresh(f.fusion))
        close(masked, alone(x), dtype)
    elif isinstance(f.fusion, interfuse.ConcatFusion):  # present blocks, zeros for the absent
        dim = -1 if f.axis == "attribute" else -2
        widths = [p.output_shape(x.shape)[dim] for p in parts]
        for i, block in enumerate(masked.split(widths, dim)):
            close(block, parts[i](x) if i in keep else torch.zeros_like(block), dtype)
    elif isinstance(f.fusion, interfuse.WeightedSumFusion):  # present weights, rescaled
        w = f.fusion.fusion_weights()
        alone = sum(w[i] * parts[i](x) for i in keep) * (w.sum() / w[keep].sum())
        close(masked, alone, dtype)  # type: ignore[arg-type]


HYBRID_CORRUPTIONS = [
    "integer x",
    "other float dtype x",
    "float16 x",
    "meta x",
    "b one too many",
    "m one too many",
    "1-d x",
    "list x",
    "scalar x",
    "no x",
    "other float dtype data",
    "integer data",
    "data of another shape",
    "meta data",
    "float mask",
    "mask of wrong k",
    "all masked",
    "list mask",
    "2-d mask",
]


@pytest.mark.parametrize("corruption", HYBRID_CORRUPTIONS)
@FUZZ_ERRORS
@given(hybrids())
def test_hybrid_interdependence_fuzz_only_clean_errors(
    corruption: str, case: tuple[interfuse.HybridInterdependence, torch.Tensor, torch.dtype]
) -> None:
    f, x, dtype = case
    k = f.num_parts
    other = torch.float32 if dtype == torch.float64 else torch.float64
    *lead, b, m = x.shape
    bad: Any = x
    kwargs: dict[str, Any] = {}
    if corruption == "integer x":
        bad = x.long()
    elif corruption == "other float dtype x":
        bad = x.to(other)
    elif corruption == "float16 x":
        bad = x.half()
    elif corruption == "meta x":
        bad = x.to("meta")
    elif corruption == "b one too many":
        bad = torch.randn(*lead, b + 1, m, dtype=dtype)
    elif corruption == "m one too many":
        bad = torch.randn(*lead, b, m + 1, dtype=dtype)
    elif corruption == "1-d x":
        bad = x.reshape(-1)
    elif corruption == "list x":
        bad = [x]
    elif corruption == "scalar x":
        bad = 1.0
    elif corruption == "no x":
        bad = None
    elif corruption == "other float dtype data":
        kwargs["data"] = x.to(other)
    elif corruption == "integer data":
        kwargs["data"] = x.long()
    elif corruption == "data of another shape":
        kwargs["data"] = torch.randn(*lead, b + 1, m + 1, dtype=dtype)
    elif corruption == "meta data":
        kwargs["data"] = x.to("meta")
    elif corruption in BAD_MASKS:
        kwargs["mask"] = BAD_MASKS[corruption](k)
    clean_errors_only(lambda: f(bad, **kwargs))


# ---------------------------------------------------------------------------------------------
# tinyBIG face: bilinear, rpn and hybrid interdependences
# ---------------------------------------------------------------------------------------------
#: The structures of the parameterized and bilinear families (class-name prefixes) and the
#: degree of their fabricated matrix in ``w``: ``W(c·w) = c^deg W(w)`` (reshape 1; U V, the hm
#: outer product a ⊗ b and diag(λ₁) R_A diag(λ₂) R_Bᵀ 2; a ⊗ (S T) 3; (P Q) ⊗ (S T) 4).
W_DEGREE = {
    "": 1,
    "lowrank_": 2,
    "hm_": 2,
    "lphm_": 3,
    "dual_lphm_": 4,
    "random_matrix_adaption_": 2,
}
PREFIXES = list(W_DEGREE)


@st.composite
def structure(draw: st.DrawFn, prefix: str, d: int, d_prime: int) -> dict[str, Any]:
    """Valid structure options of a ``{prefix}…interdependence`` whose ``W`` is ``d × d'``."""
    kwargs: dict[str, Any] = {}
    if prefix in ("lowrank_", "lphm_", "dual_lphm_", "random_matrix_adaption_"):
        kwargs["r"] = draw(st.integers(1, 3))
    if prefix in ("hm_", "lphm_", "dual_lphm_"):
        kwargs["p"] = draw(st.sampled_from(divisors(d)))
        kwargs["q"] = draw(st.sampled_from(divisors(d_prime)))
        kwargs["kronecker"] = draw(st.booleans())
    if prefix == "random_matrix_adaption_":
        kwargs["seed"] = draw(st.integers(0, 5))
    return kwargs


def _tb_apply(instance: bool, A: torch.Tensor, data: torch.Tensor) -> torch.Tensor:
    return A.mT @ data if instance else data @ A


def _check_applies_linearly(
    f: Any,
    x: torch.Tensor,
    w: torch.Tensor,
    A: torch.Tensor,
    shape: tuple[int, int],
    scales: tuple[float, float],
) -> None:
    """``f(x, w, kappa_x=k)`` is ``A`` applied to ``k`` (of ``shape``), linearly in ``k``."""
    a, c = scales
    instance = f.is_instance
    k1, k2 = torch.randn(shape, dtype=x.dtype), torch.randn(shape, dtype=x.dtype)
    y1 = f(x=x, w=w, kappa_x=k1)
    close(y1, _tb_apply(instance, A, k1), x.dtype)
    close(f(x=x, w=w, kappa_x=a * k1 + c * k2), a * y1 + c * f(x=x, w=w, kappa_x=k2), x.dtype)


@settings(FUZZ, max_examples=40)
@given(
    st.sampled_from(PREFIXES),
    TYPES,
    st.integers(1, 4),
    st.integers(1, 4),
    st.integers(1, 4),
    st.integers(1, 9),
    DTYPES,
    SCALES,
    st.floats(-3, 3),
    st.floats(-3, 3),
    st.data(),
)
def test_tinybig_bilinear_interdependence_properties(
    prefix: str,
    type_: str,
    b: int,
    m: int,
    batch: int,
    other: int,
    dtype: torch.dtype,
    s: float,
    a: float,
    c: float,
    data: st.DataObject,
) -> None:
    """``A = xᵀ W x``: finite, quadratic in ``x``, of degree ``deg`` in ``w``; ``forward`` is the
    data times ``A`` (both evaluation orders) and linear in the data (``kappa_x``)."""
    instance = type_ == "instance"
    side = m if instance else b  # W is side × side
    options = data.draw(structure(prefix, side, side))
    cls = getattr(tb, f"{prefix}parameterized_bilinear_interdependence")
    torch.manual_seed(data.draw(st.integers(0, 2**16)))
    f = cls(b=b, m=m, interdependence_type=type_, **options).to(dtype)
    x = torch.randn(batch if instance else b, m, dtype=dtype)  # attribute: exactly b rows
    w = torch.randn(1, f.calculate_l(), dtype=dtype)
    x_in = x.t() if instance else x  # calculate_A takes the batch transposed for instances
    A = f.calculate_A(x_in, w)
    n = x.shape[0]
    assert A.shape == ((n, n) if instance else (m, m)) and torch.isfinite(A).all()
    close(f.calculate_A(s * x_in, w), s**2 * A, dtype)
    close(f.calculate_A(x_in, s * w), s ** W_DEGREE[prefix] * A, dtype)

    out = f(x=x, w=w)
    assert out.shape == x.shape and torch.isfinite(out).all()
    close(out, _tb_apply(instance, A, x), dtype)
    # other data (more or fewer rows / columns, so both product orders run)
    _check_applies_linearly(f, x, w, A, (n, other) if instance else (other, m), (a, c))


@settings(FUZZ, max_examples=30)
@given(
    TYPES,
    st.integers(1, 4),
    st.integers(1, 4),
    st.integers(1, 4),
    st.sampled_from(["identity", "taylor"]),
    st.sampled_from(["identity", "lowrank"]),
    st.integers(1, 2),
    st.integers(1, 5),
    DTYPES,
    SCALES,
    st.floats(-3, 3),
    st.floats(-3, 3),
    st.integers(0, 2**16),
)
def test_tinybig_rpn_interdependence_properties(
    type_: str,
    b: int,
    m: int,
    prime: int,
    kappa: str,
    psi: str,
    r: int,
    other: int,
    dtype: torch.dtype,
    s: float,
    a: float,
    c: float,
    seed: int,
) -> None:
    """``A = κ(xᵀ) ψ(w)ᵀ``: as its definition, of degree 1 (ψ = reshape) or 2 (ψ low-rank) in
    ``w`` and, for κ = identity, linear in ``x``; ``forward`` is linear in the data."""
    torch.manual_seed(seed)
    instance = type_ == "instance"
    expansion = IdentityExpansion() if kappa == "identity" else TaylorExpansion(2)
    fabrication = IdentityReconciliation() if psi == "identity" else LowRankReconciliation(r)
    f = tb.parameterized_rpn_interdependence(
        b=b,
        m=m,
        data_transformation=expansion,
        parameter_fabrication=fabrication,
        b_prime=prime,
        m_prime=prime,
        interdependence_type=type_,
    )
    x = torch.randn(b, m, dtype=dtype)
    w = torch.randn(1, f.calculate_l(), dtype=dtype) / 2
    x_in = x.t() if instance else x
    A = f.calculate_A(x_in, w)
    assert A.shape == ((b, prime) if instance else (m, prime)) and torch.isfinite(A).all()
    kx = expansion(x_in.t())
    close(A, kx @ fabrication(w, n=prime, D=kx.shape[-1]).t(), dtype)
    close(f.calculate_A(x_in, s * w), s ** (1 if psi == "identity" else 2) * A, dtype)
    if kappa == "identity":
        y = torch.randn_like(x_in)
        close(f.calculate_A(a * x_in + c * y, w), a * A + c * f.calculate_A(y, w), dtype)

    out = f(x=x, w=w)
    assert out.shape == ((prime, m) if instance else (b, prime)) and torch.isfinite(out).all()
    close(out, _tb_apply(instance, A, x), dtype)
    _check_applies_linearly(f, x, w, A, (b, other) if instance else (other, m), (a, c))


#: Fusions of the tinyBIG hybrid: symmetric ones (any order of the parts) and the others.
TB_SYMMETRIC = [*SYMMETRIC_TINYBIG, "summation_fusion", "average_fusion", "metric_fusion"]
TB_ORDERED = [
    "parameterized_weighted_summation_fusion",
    "concatenation_fusion",
    "parameterized_concatenation_fusion",
    "lowrank_parameterized_concatenation_fusion",
]


def _tb_fusion(name: str, dims: list[int], n: int, metric: str) -> torch.nn.Module:
    if name == "metric_fusion":
        return tbf.metric_fusion(dims, metric=metric)
    if name == "parameterized_concatenation_fusion":
        return tbf.parameterized_concatenation_fusion(n=n, dims=dims)
    if name == "lowrank_parameterized_concatenation_fusion":
        return tbf.lowrank_parameterized_concatenation_fusion(n=n, dims=dims, r=2)
    fusion: torch.nn.Module = getattr(tbf, name)(dims=dims)
    return fusion


@st.composite
def tinybig_hybrids(
    draw: st.DrawFn, dtypes: st.SearchStrategy[torch.dtype] = DTYPES
) -> tuple[Any, list[Any], str, str, torch.dtype]:
    """``(hybrid, parts, fusion name, metric, dtype)``: 1..3 data-free parts of any structure,
    maybe one bilinear part, and any tinyBIG fusion."""
    type_ = draw(TYPES)
    instance = type_ == "instance"
    b, m = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    d = b if instance else m  # A is d × d'
    fusion_name = draw(st.sampled_from(TB_SYMMETRIC + TB_ORDERED))
    concat = "concatenation" in fusion_name
    bilinear = draw(st.booleans())
    k = draw(st.integers(1, 3))
    common = d if bilinear else draw(st.integers(1, 4))  # a bilinear A is d × d
    _seed(draw)
    parts: list[Any] = []
    primes: list[int] = []
    for i in range(k):
        if bilinear and i == k - 1:
            prefix = draw(st.sampled_from(PREFIXES))
            side = m if instance else b
            cls = getattr(tb, f"{prefix}parameterized_bilinear_interdependence")
            options = draw(structure(prefix, side, side))
            parts.append(cls(b=b, m=m, interdependence_type=type_, **options))
            primes.append(d)
            continue
        prefix = draw(st.sampled_from(PREFIXES))
        prime = draw(st.integers(1, 4)) if concat else common
        cls = getattr(tb, f"{prefix}parameterized_interdependence")
        options = draw(structure(prefix, d, prime))
        parts.append(
            cls(b=b, m=m, b_prime=prime, m_prime=prime, interdependence_type=type_, **options)
        )
        primes.append(prime)
    metric = draw(st.sampled_from(sorted(tbf.METRICS)))
    fusion = _tb_fusion(fusion_name, primes, draw(st.integers(1, 4)), metric)
    dtype = draw(dtypes)
    f = tb.hybrid_interdependence(
        b=b,
        m=m,
        interdependence_type=type_,
        interdependence_functions=parts,
        fusion_function=fusion,
    )
    return f.to(dtype), parts, fusion_name, metric, dtype


def _segments(f: Any, w: torch.Tensor) -> list[torch.Tensor | None]:
    """``w`` split as the hybrid splits it: one segment per part, the fusion's last."""
    out: list[torch.Tensor | None] = []
    offset = 0
    for size in f.get_function_parameter_numbers():
        out.append(w[:, offset : offset + size] if size else None)
        offset += size
    return out


@settings(FUZZ, max_examples=40)
@given(tinybig_hybrids(), st.floats(-3, 3), st.floats(-3, 3), st.integers(1, 5), st.data())
def test_tinybig_hybrid_interdependence_properties(
    case: tuple[Any, list[Any], str, str, torch.dtype],
    a: float,
    c: float,
    other: int,
    data: st.DataObject,
) -> None:
    """``A`` is the fusion of the parts' matrices (``w`` split in order), ``forward`` the data
    times ``A``, linear in the data (and in ``x`` for data-free parts); symmetric fusions do
    not depend on the order of the parts."""
    f, parts, fusion_name, metric, dtype = case
    instance = f.is_instance
    x = torch.randn(f.b, f.m, dtype=dtype)
    w = torch.randn(1, f.calculate_l(), dtype=dtype) / 2
    x_in = x.t() if instance else x
    A = f.calculate_A(x_in, w)
    d = f.b if instance else f.m
    assert A.shape == (d, f.calculate_b_prime() if instance else f.calculate_m_prime())
    assert torch.isfinite(A).all()
    segments = _segments(f, w)
    mats = [p.calculate_A(x_in, seg) for p, seg in zip(parts, segments)]
    close(A, f.fusion_function(x=mats, w=segments[-1]), dtype)

    out = f(x=x, w=w)
    assert torch.isfinite(out).all()
    close(out, _tb_apply(instance, A, x), dtype)
    shape = (f.b, other) if instance else (other, f.m)
    k1, k2 = torch.randn(shape, dtype=dtype), torch.randn(shape, dtype=dtype)
    y1 = f(x=x, w=w, kappa_x=k1)
    close(f(x=x, w=w, kappa_x=a * k1 + c * k2), a * y1 + c * f(x=x, w=w, kappa_x=k2), dtype)
    if not f.require_data:  # every part data-free: x ↦ f(x) is linear
        y = torch.randn_like(x)
        close(f(x=a * x + c * y, w=w), a * out + c * f(x=y, w=w), dtype)

    if fusion_name in TB_SYMMETRIC and len(parts) > 1:
        order = data.draw(st.permutations(range(len(parts))))
        dims = [f.fusion_function.dims[i] for i in order] if f.fusion_function.dims else None
        g = tb.hybrid_interdependence(
            b=f.b,
            m=f.m,
            interdependence_type=f.interdependence_type,
            interdependence_functions=[parts[i] for i in order],
            fusion_function=_tb_fusion(fusion_name, dims or [], 1, metric),
        ).to(dtype)
        w_perm = torch.cat([segments[i] for i in order if segments[i] is not None], -1)
        close(g.calculate_A(x_in, w_perm), A, dtype)


# ---------------------------------------------------------------------------------------------
# tinyBIG interdependences: broken calls fail cleanly
# ---------------------------------------------------------------------------------------------
TB_FAMILIES = ["parameterized", "bilinear", "rpn", "hybrid"]
TB_CORRUPTIONS = [
    "none",
    "integer x",
    "float64 x",
    "float16 x",
    "float64 w",
    "integer w",
    "bool w",
    "meta x",
    "x with a row too many",
    "x with a column too many",
    "empty x",
    "1-d x",
    "3-d x",
    "list x",
    "scalar x",
    "no x",
    "no w",
    "w one short",
    "w one long",
    "w of rank 3",
    "list w",
    "integer kappa_x",
    "float64 kappa_x",
    "kappa_x of another shape",
]


@st.composite
def tinybig_interdependences(draw: st.DrawFn, family: str) -> Any:
    """A valid float32 interdependence of ``family`` with ``b, m`` in 1..4."""
    type_ = draw(TYPES)
    instance = type_ == "instance"
    b, m = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    _seed(draw)
    if family == "hybrid":
        return draw(tinybig_hybrids(st.just(torch.float32)))[0]
    if family == "rpn":
        return tb.parameterized_rpn_interdependence(
            b=b,
            m=m,
            data_transformation=draw(st.sampled_from([IdentityExpansion, TaylorExpansion]))(),
            parameter_fabrication=draw(
                st.sampled_from([IdentityReconciliation, LowRankReconciliation])
            )(),
            b_prime=draw(st.integers(1, 4)),
            m_prime=draw(st.integers(1, 4)),
            interdependence_type=type_,
        )
    prefix = draw(st.sampled_from(PREFIXES))
    if family == "bilinear":
        side = m if instance else b
        cls = getattr(tb, f"{prefix}parameterized_bilinear_interdependence")
        return cls(b=b, m=m, interdependence_type=type_, **draw(structure(prefix, side, side)))
    prime = draw(st.integers(1, 4))
    cls = getattr(tb, f"{prefix}parameterized_interdependence")
    options = draw(structure(prefix, b if instance else m, prime))
    return cls(b=b, m=m, b_prime=prime, m_prime=prime, interdependence_type=type_, **options)


def _corrupt_tinybig_call(f: Any, corruption: str) -> dict[str, Any]:
    """Keyword arguments of a valid ``f(x=..., w=...)`` call with one thing broken."""
    b, m, n_w = f.b, f.m, f.calculate_l()
    x: Any = torch.randn(b, m)
    w: Any = torch.randn(1, n_w)
    extra: dict[str, Any] = {}
    if corruption == "integer x":
        x = x.long()
    elif corruption == "float64 x":
        x = x.double()
    elif corruption == "float16 x":
        x = x.half()
    elif corruption == "float64 w":
        w = w.double()
    elif corruption == "integer w":
        w = w.long()
    elif corruption == "bool w":
        w = w > 0
    elif corruption == "meta x":
        x = x.to("meta")
    elif corruption == "x with a row too many":
        x = torch.randn(b + 1, m)
    elif corruption == "x with a column too many":
        x = torch.randn(b, m + 1)
    elif corruption == "empty x":
        x = torch.randn(0, m)
    elif corruption == "1-d x":
        x = x.reshape(-1)
    elif corruption == "3-d x":
        x = x[None]
    elif corruption == "list x":
        x = x.tolist()
    elif corruption == "scalar x":
        x = 1.0
    elif corruption == "no x":
        x = None
    elif corruption == "no w":
        w = None
    elif corruption == "w one short":
        w = w[:, :-1]
    elif corruption == "w one long":
        w = torch.randn(1, n_w + 1)
    elif corruption == "w of rank 3":
        w = w[None]
    elif corruption == "list w":
        w = w.tolist()
    elif corruption == "integer kappa_x":
        extra["kappa_x"] = torch.ones(b, m, dtype=torch.long)
    elif corruption == "float64 kappa_x":
        extra["kappa_x"] = torch.randn(b, m, dtype=torch.float64)
    elif corruption == "kappa_x of another shape":
        extra["kappa_x"] = torch.randn(b + 1, m + 1)
    return {"x": x, "w": w, **extra}


@pytest.mark.parametrize(
    ("family", "corruption"),
    [pytest.param(f, c, id=f"{f}-{c}") for f in TB_FAMILIES for c in TB_CORRUPTIONS],
)
@settings(FUZZ_ERRORS, max_examples=6)
@given(st.data())
def test_tinybig_interdependence_fuzz_only_clean_errors(
    family: str, corruption: str, data: st.DataObject
) -> None:
    f = data.draw(tinybig_interdependences(family))
    kwargs = _corrupt_tinybig_call(f, corruption)
    clean_errors_only(lambda: f(**kwargs))


# ---------------------------------------------------------------------------------------------
# parameterized_rpn_interdependence once raised a bare RuntimeError from its product; the other
# bugs the fuzzers found have rows in the bad-input catalogue (tests/reliability/catalogue.py)
# ---------------------------------------------------------------------------------------------
def _rpn() -> Any:
    return tb.parameterized_rpn_interdependence(
        b=2,
        m=3,
        data_transformation=IdentityExpansion(),
        parameter_fabrication=IdentityReconciliation(),
    )


@pytest.mark.parametrize(
    ("x", "w", "match"),
    [
        (torch.randn(3, 3), torch.randn(1, 6), r"x has 3 instances but this function was built"),
        (
            torch.randn(2, 3, dtype=torch.float64),
            torch.randn(1, 6),
            r"κ\(x\) has dtype torch.float64 but ψ\(w\) has dtype torch.float32",
        ),
        (torch.randn(2, 3), torch.ones(1, 6, dtype=torch.bool), r"w has dtype torch.bool"),
    ],
    ids=["rows", "dtype", "bool-w"],
)
def test_rpn_checks_before_the_product(x: torch.Tensor, w: torch.Tensor, match: str) -> None:
    """κ and ψ are the user's: mismatches raise before (bool w) or after them, never inside."""
    with pytest.raises(ValueError, match=match):
        _rpn()(x=x, w=w)
