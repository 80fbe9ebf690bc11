"""ONNX export with both exporters, checked in onnxruntime.

Every modern module of the registry is exported with ``torch.onnx.export(dynamo=False)`` (the
TorchScript tracer) and ``dynamo=True`` (``torch.export`` + onnxscript) at batch 2 with a
dynamic batch dimension, then run in onnxruntime at batch 5: the outputs equal eager's, the
graph has every input, and with another value of any one input the output is eager's again
(a graph that traced an input into a constant fails here). The same checks run on the
factored kernels (``mode='factored'`` for every matrix family), on masks fed as graph inputs,
on paths the registry's entries do not take, on the tinyBIG face with ``w`` as an input, and
on modules whose ``mode='auto'`` choice changes within the batch range (also through
``torch.export`` alone).

The TorchScript exporter runs on every case. The dynamo exporter costs about 20 times more a
case (measured: 0.9 s of CPU against 0.05 s), so beyond the registry, which it covers whole,
it runs on a representative subset: the masks of one mean, one max, the projection and the
hybrid interdependences; each matrix family's factored kernel alone; the lower median; seven
tinyBIG modules (:data:`TINYBIG_DYNAMO`); every ``mode='auto'`` case.
"""

from __future__ import annotations

import copy
import inspect
import io
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils import _pytree as pytree

import interfuse
from interfuse.matrices import MATRICES
from tests.registry import ModuleEntry
from tests.reliability._common import MODERN_ENTRIES, TINYBIG_ENTRIES, build, sample

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

BATCH_EXPORT, BATCH_RUN = 2, 5
EXPORTERS = ["torchscript", "dynamo"]


def _exporters(id_: str, dynamo: bool) -> list[Any]:
    """``(id, exporter)`` params: the TorchScript exporter always, dynamo where asked."""
    names = EXPORTERS if dynamo else EXPORTERS[:1]
    return [pytest.param(name, id=f"{id_}-{name}") for name in names]


Batched = Callable[[int, Any], bool]


def _modern_batched(index: int, leaf: torch.Tensor) -> bool:
    """Modern modules: every input of 2+ dims (data, per-row mask) has the batch first."""
    return leaf.ndim >= 2


def _leaves(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[torch.Tensor]:
    return [t for t in pytree.tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]


def _with_batch(
    args: tuple[Any, ...], kwargs: dict[str, Any], batch: int, batched: Batched, seed: int
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The sample's structure with fresh random data, the batched leaves at ``batch`` rows."""
    gen = torch.Generator().manual_seed(seed)
    counter = iter(range(10**6))

    def fresh(t: Any) -> Any:
        if not isinstance(t, torch.Tensor):
            return t
        i = next(counter)
        shape = (batch, *t.shape[1:]) if batched(i, t) else t.shape
        if t.dtype == torch.bool and t.ndim >= 2:
            # A per-row mask: the last input absent from every other row.
            mask = torch.ones(shape, dtype=torch.bool)
            mask[1::2, ..., -1] = False
            return mask
        if not t.is_floating_point():
            return t.clone()
        return torch.randn(shape, generator=gen, dtype=t.dtype)

    out: tuple[tuple[Any, ...], dict[str, Any]] = pytree.tree_map(fresh, (args, kwargs))
    return out


def _export(
    module: nn.Module,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    exporter: str,
    batched: Batched,
) -> bytes:
    """The ONNX model of ``module(*args, **kwargs)``, its batched inputs' dim 0 dynamic."""
    flags = [batched(i, t) for i, t in enumerate(_leaves(args, kwargs))]
    with warnings.catch_warnings():
        # TracerWarnings: the shape checks read sizes as Python values; the dynamic-batch run
        # below checks the graph does not depend on them.
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            pytest.importorskip("onnxscript")
            program = torch.onnx.export(
                module,
                args,
                kwargs=kwargs,
                dynamo=True,
                dynamic_shapes=_dynamic_shapes(module, args, kwargs, flags),
                verbose=False,
            )
            assert program is not None
            return bytes(program.model_proto.SerializeToString())
        names = [f"input_{i}" for i in range(len(flags))]
        axes: dict[str, dict[int, str]] = {n: {0: "batch"} for n, f in zip(names, flags) if f}
        axes["output"] = {0: "batch"}
        buffer = io.BytesIO()
        torch.onnx.export(
            module,
            args,
            buffer,
            kwargs=kwargs,
            dynamo=False,
            input_names=names,
            output_names=["output"],
            dynamic_axes=axes,
        )
        return buffer.getvalue()


def _dynamic_shapes(
    module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], flags: list[bool]
) -> dict[str, Any]:
    """``dynamic_shapes`` keyed by the forward's argument names: one unbounded ``Dim`` (as
    users write it) for dim 0 of the flagged tensors."""
    batch = torch.export.Dim("batch")
    it = iter(flags)
    args_spec, kwargs_spec = pytree.tree_map(
        lambda t: ({0: batch} if next(it) else None) if isinstance(t, torch.Tensor) else None,
        (args, kwargs),
    )
    names = list(inspect.signature(module.forward).parameters)
    return {**dict(zip(names, args_spec)), **kwargs_spec}


def _run(session: Any, leaves: list[torch.Tensor]) -> torch.Tensor:
    feed = {i.name: t.numpy() for i, t in zip(session.get_inputs(), leaves)}
    return torch.from_numpy(session.run(None, feed)[0])


def _check_onnx(
    module: nn.Module,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    exporter: str,
    batched: Batched = _modern_batched,
) -> None:
    """Export at batch 2; in onnxruntime at batch 5: same output as eager, every input kept
    and reaching the output."""
    module = copy.deepcopy(module).eval()
    at_export = _with_batch(args, kwargs, BATCH_EXPORT, batched, seed=0)
    model = _export(module, *at_export, exporter, batched)
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])

    run_args, run_kwargs = _with_batch(args, kwargs, BATCH_RUN, batched, seed=1)
    leaves = _leaves(run_args, run_kwargs)
    assert len(session.get_inputs()) == len(leaves), "the graph lost inputs (traced to constants)"
    with torch.no_grad():
        expected = module(*run_args, **run_kwargs)
    got = _run(session, leaves)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)

    # Each input reaches the output as in eager: with another value of it (a fresh draw; for
    # a mask, all inputs present) the output is eager's again (a graph that traced an input
    # into a constant keeps the old output).
    spec = pytree.tree_structure((run_args, run_kwargs))
    for i, leaf in enumerate(leaves):
        if leaf.is_floating_point():
            changed = torch.randn_like(leaf)
        elif leaf.dtype == torch.bool and not bool(leaf.all()):
            changed = torch.ones_like(leaf)
        else:  # pragma: no cover - every sample input is floating or a mask
            continue
        other = [changed if j == i else t for j, t in enumerate(leaves)]
        moved = _run(session, other)
        it = iter(other)
        flat = [
            next(it) if isinstance(t, torch.Tensor) else t
            for t in pytree.tree_leaves((run_args, run_kwargs))
        ]
        o_args, o_kwargs = pytree.tree_unflatten(flat, spec)
        with torch.no_grad():
            torch.testing.assert_close(moved, module(*o_args, **o_kwargs), rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# Every modern module of the registry
# ---------------------------------------------------------------------------------------------
def _named_rows(entry: ModuleEntry) -> bool:
    """Samples with a per-name mask: its per-row flags are 1-D, which the dynamic-batch
    harness cannot tell from a ``(k,)`` mask (see :func:`test_named_inputs`)."""
    return isinstance(sample(entry)[1].get("mask"), dict)


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize(
    "entry", [e for e in MODERN_ENTRIES if not _named_rows(e)], ids=lambda e: e.id
)
def test_registry(entry: ModuleEntry, exporter: str) -> None:
    _check_onnx(build(entry), *sample(entry), exporter)


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_named_inputs(exporter: str) -> None:
    """A mapping of named inputs is flattened by both exporters. Pass it by keyword:
    ``torch.onnx.export`` reads a dict at the end of ``args`` as keyword arguments."""
    module = interfuse.GatedFusion([4, 3, 2], 5, gate="sigmoid", names=["c", "a", "b"])
    xs = {name: torch.randn(3, n) for name, n in zip("cab", (4, 3, 2), strict=True)}
    _check_onnx(module, (), {"xs": xs}, exporter)


# ---------------------------------------------------------------------------------------------
# Masks as graph inputs
# ---------------------------------------------------------------------------------------------
def _takes_mask(entry: ModuleEntry) -> bool:
    return "mask" in inspect.signature(build(entry).forward).parameters


def _mask_for(module: nn.Module, args: tuple[Any, ...], per_row: bool) -> torch.Tensor:
    """A mask with the last input absent: ``(k,)``, or per row ``(..., k)`` over the inputs'
    leading dims (:func:`_with_batch` redraws it: the last input absent from every other
    row)."""
    k = getattr(module, "num_parts", None) or len(args[0])
    flags = torch.ones(k, dtype=torch.bool)
    flags[-1] = False
    if not per_row:
        return flags
    return torch.ones((*args[0][0].shape[:-1], k), dtype=torch.bool)


MASK_DYNAMO = ("fusion-MeanFusion", "fusion-MaxFusion", "fusion-ProjectedConcatFusion")
MASK_CASES = [
    pytest.param(entry, per_row, exporter.values[0], id=exporter.id)
    for entry in MODERN_ENTRIES
    if _takes_mask(entry) and not _named_rows(entry)
    for per_row in (False, True)
    if not (per_row and entry.id.startswith("interdependence-"))  # a (k,) mask of parts
    for exporter in _exporters(
        f"{entry.id}-{'rows' if per_row else 'k'}",
        entry.id in MASK_DYNAMO or entry.id.startswith("interdependence-"),
    )
]


@pytest.mark.parametrize(("entry", "per_row", "exporter"), MASK_CASES)
def test_mask_input(entry: ModuleEntry, per_row: bool, exporter: str) -> None:
    """The mask is a graph input: the model exported with one mask computes with another."""
    module = build(entry)
    args, kwargs = sample(entry)
    _check_onnx(module, args, {**kwargs, "mask": _mask_for(module, args, per_row)}, exporter)


# ---------------------------------------------------------------------------------------------
# The factored kernels (mode='factored'), every matrix family
# ---------------------------------------------------------------------------------------------
def _factored_options(name: str, n_in: int, n_out: int) -> dict[str, Any]:
    params = inspect.signature(MATRICES[name]).parameters
    options: dict[str, Any] = {"mode": "factored"}
    if "rank" in params:
        options["rank"] = 2
    if "p" in params:  # both contraction orders of the Kronecker kernel: (12, 6) and (6, 12)
        options.update(p=2, q=3) if n_in > n_out else options.update(p=3, q=2)
    if "seed" in params:
        options["seed"] = 7
    return options


def _factored(kind: str, name: str, n_in: int, n_out: int) -> tuple[nn.Module, Any, Any]:
    torch.manual_seed(0)
    options = _factored_options(name, n_in, n_out)
    if kind == "matrix":
        return MATRICES[name](n_in, n_out, **options), (torch.randn(3, n_in),), {}
    if kind == "projected_concat":
        widths = [n_in // 2 - 1, n_in - n_in // 2 + 1]
        f = interfuse.ProjectedConcatFusion(widths, n_out, matrix=name, matrix_options=options)
        return f, ([torch.randn(2, 3, n) for n in widths],), {}
    axis = kind.split("-")[1]
    f = interfuse.ParameterizedInterdependence(
        n_in, n_out, matrix=name, axis=axis, matrix_options=options
    )
    return f, (torch.randn((2, 3, n_in) if axis == "attribute" else (2, n_in, 3)),), {}


def _kronecker(name: str) -> bool:
    return "p" in inspect.signature(MATRICES[name]).parameters


# The dynamo exporter's factored graphs are the torch.export programs that
# tests/reliability/test_compile_export.py checks: here it runs on every matrix alone.
FACTORED_CASES = [
    pytest.param(kind, name, n_in, n_out, exporter.values[0], id=exporter.id)
    for name in sorted(MATRICES)
    for kind, n_in, n_out in [
        ("matrix", 12, 6),
        *([("matrix", 6, 12)] if _kronecker(name) else []),
        ("projected_concat", 12, 6),
        ("interdependence-attribute", 12, 6),
        ("interdependence-instance", 6, 12),
    ]
    for exporter in _exporters(f"{kind}-{name}-{n_in}to{n_out}", (kind, n_in) == ("matrix", 12))
]


@pytest.mark.parametrize(("kind", "name", "n_in", "n_out", "exporter"), FACTORED_CASES)
def test_factored(kind: str, name: str, n_in: int, n_out: int, exporter: str) -> None:
    module, args, kwargs = _factored(kind, name, n_in, n_out)
    _check_onnx(module, args, kwargs, exporter)


# ---------------------------------------------------------------------------------------------
# The tinyBIG face: w is a graph input
# ---------------------------------------------------------------------------------------------
def _tinybig_batched(entry: ModuleEntry) -> Batched:
    """Fusions: the rows of x vary; interdependences keep tinyBIG's 2-D ``(b, m)``, where b
    is fixed by the matrix for the instance axis: static shapes."""
    fusion = type(build(entry)).__module__.startswith("interfuse.tinybig.fusion")
    args, _ = sample(entry)
    n_x = len(_leaves((args[0],), {})) if args else 0

    def batched(index: int, leaf: torch.Tensor) -> bool:
        return fusion and index < n_x

    return batched


#: The tinyBIG modules the dynamo exporter runs on: ``w`` in a weighted sum, a projection
#: with the Kronecker switch, random factors, the median, three interdependence kinds.
TINYBIG_DYNAMO = {
    "tinybig-parameterized_weighted_summation_fusion",
    "tinybig-median_fusion",
    "tinybig-lphm_parameterized_concatenation_fusion-kron",
    "tinybig-random_matrix_adaption_parameterized_concatenation_fusion",
    "tinybig-lowrank_parameterized_interdependence",
    "tinybig-hm_parameterized_bilinear_interdependence",
    "tinybig-hybrid_interdependence",
}
TINYBIG_CASES = [
    pytest.param(entry, exporter.values[0], id=exporter.id)
    for entry in TINYBIG_ENTRIES
    for exporter in _exporters(entry.id, entry.id in TINYBIG_DYNAMO)
]


def test_tinybig_dynamo_subset_exists() -> None:
    assert TINYBIG_DYNAMO.issubset(e.id for e in TINYBIG_ENTRIES), "a renamed entry"


@pytest.mark.parametrize(("entry", "exporter"), TINYBIG_CASES)
def test_tinybig_face(entry: ModuleEntry, exporter: str) -> None:
    _check_onnx(build(entry), *sample(entry), exporter, _tinybig_batched(entry))


# ---------------------------------------------------------------------------------------------
# Paths the registry's one entry per class does not take
# ---------------------------------------------------------------------------------------------
VARIANTS = {
    "MedianFusion-lower": lambda: interfuse.MedianFusion(),  # torch.median: sorted under ONNX
    "NormFusion-p1": lambda: interfuse.NormFusion(p=1.0),
    "NormFusion-pinf": lambda: interfuse.NormFusion(p=float("inf")),
    "WeightedSumFusion-plain": lambda: interfuse.WeightedSumFusion(3),
}


@pytest.mark.parametrize(
    ("name", "exporter"),
    [
        pytest.param(name, exporter.values[0], id=exporter.id)
        for name in sorted(VARIANTS)
        for exporter in _exporters(name, name == "MedianFusion-lower")
    ],
)
def test_fusion_variants(name: str, exporter: str) -> None:
    torch.manual_seed(0)
    xs = [torch.randn(2, 3, 4) for _ in range(3)]
    _check_onnx(VARIANTS[name](), (xs,), {}, exporter)


# ---------------------------------------------------------------------------------------------
# mode='auto' across a dynamic batch
# ---------------------------------------------------------------------------------------------
def _crossover_cases() -> dict[str, tuple[nn.Module, tuple[Any, ...]]]:
    """Modules whose ``mode='auto'`` choice (factored or materialized) changes between 2 rows
    and many: deciding at a symbolic batch must not constrain it (torch.export raised
    ``Constraints violated (batch)`` for an unbounded ``Dim``)."""
    torch.manual_seed(0)
    pi = interfuse.ParameterizedInterdependence
    lowrank = {"rank": 4}
    return {
        "ProjectedConcatFusion": (
            interfuse.ProjectedConcatFusion([64, 32], 16, matrix="lowrank", matrix_options=lowrank),
            ([torch.randn(2, 64), torch.randn(2, 32)],),
        ),
        "KroneckerMatrix": (interfuse.KroneckerMatrix(256, 256), (torch.randn(2, 256),)),
        "ParameterizedInterdependence-instance": (
            pi(256, matrix="kronecker", axis="instance"),
            (torch.randn(2, 256, 3),),
        ),
        "BilinearInterdependence": (
            interfuse.BilinearInterdependence(64, matrix="kronecker"),
            (torch.randn(2, 64, 8),),
        ),
        "HybridInterdependence": (
            interfuse.HybridInterdependence(
                [pi(16, matrix="lowrank", matrix_options={"rank": 2}), pi(16, matrix="kronecker")]
            ),
            (torch.randn(2, 8, 16),),
        ),
    }


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("name", sorted(_crossover_cases()))
def test_auto_mode_dynamic_batch(name: str, exporter: str) -> None:
    module, args = _crossover_cases()[name]
    _check_onnx(module, args, {}, exporter)


@pytest.mark.parametrize("name", sorted(_crossover_cases()))
def test_auto_mode_torch_export(name: str) -> None:
    """``torch.export`` itself (the ONNX exporter falls back to a draft export when it fails)."""
    module, args = _crossover_cases()[name]
    module.eval()
    flags = [_modern_batched(i, t) for i, t in enumerate(_leaves(args, {}))]
    program = torch.export.export(
        module, args, dynamic_shapes=_dynamic_shapes(module, args, {}, flags)
    )
    for batch in (2, 5, 300):
        run_args, _ = _with_batch(args, {}, batch, _modern_batched, seed=batch)
        with torch.no_grad():
            torch.testing.assert_close(program.module()(*run_args), module(*run_args))
