"""The catalogue of bad inputs: one record per input, shared by the test and ``docs/errors.md``.

Each :class:`BadInput` says how to provoke the error (``call``), the exact exception class it
must raise and a regular expression its message must match. ``test_bad_inputs.py`` runs every
record; ``python -m tests.reliability.catalogue`` regenerates ``docs/errors.md`` from the same
records and the messages they actually produce (a test checks that the page is current).
"""

from __future__ import annotations

import inspect
import re
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

import interfuse
import interfuse.tinybig as tb
from interfuse.config import from_config
from interfuse.functional import check_mask
from interfuse.fusion import resolve_fusion
from interfuse.interdependence import BilinearInterdependence, ParameterizedInterdependence
from interfuse.matrices import matrix_class, register_structured_weight, resolve_matrix
from interfuse.tinybig import (
    ValueAssertionError,
    ValueAttributeError,
    ValueIndexError,
    ValueRuntimeError,
)

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "errors.md"


@dataclass(frozen=True)
class BadInput:
    """One bad input: ``call()`` must raise exactly ``raises`` with a message matching ``match``.

    ``code`` is the body of ``call`` as shown in the docs. ``clear_runtime`` marks the few cases
    where PyTorch itself raises a clear ``RuntimeError`` (``load_state_dict``), which the
    reliability rules otherwise forbid.
    """

    id: str
    face: str
    category: str
    call: Callable[[], object]
    raises: type[BaseException]
    match: str
    clear_runtime: bool = False

    @property
    def code(self) -> str:
        """The statements of ``call`` (``return`` dropped), joined with ``; ``."""
        source = textwrap.dedent(inspect.getsource(self.call))
        body = source[source.index("-> object:\n") + len("-> object:\n") :]
        statements: list[str] = []
        for line in textwrap.dedent(body).splitlines():
            line = re.sub(r"\s+# type: ignore\[[\w-]+\]$", "", line.rstrip())
            if not line or line.startswith("return None"):
                continue
            if line.startswith((" ", ")", "]", "}")) and statements:
                statements[-1] += " " + line.strip()
            else:
                statements.append(line.removeprefix("return "))
        return "; ".join(s.replace("( ", "(").replace(" )", ")") for s in statements)

    def __repr__(self) -> str:
        return self.id


CASES: list[BadInput] = []


def bad(
    id: str,
    face: str,
    category: str,
    raises: type[BaseException],
    match: str,
    *,
    clear_runtime: bool = False,
) -> Callable[[Callable[[], object]], Callable[[], object]]:
    """Register the decorated zero-argument function as a :class:`BadInput`."""

    def register(call: Callable[[], object]) -> Callable[[], object]:
        CASES.append(BadInput(id, face, category, call, raises, match, clear_runtime))
        return call

    return register


def x(*shape: int, dtype: torch.dtype = torch.float32, device: str = "cpu") -> torch.Tensor:
    """A deterministic input (ones: the catalogue tests error paths, not values)."""
    return torch.ones(*shape, dtype=dtype, device=device)


# ------------------------------------------------------------------------------------------
# Structured matrices (modern face)
# ------------------------------------------------------------------------------------------
M = "modern: matrices"


@bad(
    "matrix-width",
    M,
    "width disagrees",
    ValueError,
    r"x has width 7 but LowRankMatrix expects in_features=12",
)
def _() -> object:
    return interfuse.LowRankMatrix(12, 6, rank=2)(x(5, 7))


@bad(
    "matrix-piece-widths",
    M,
    "width disagrees",
    ValueError,
    r"x has width 8 but DenseMatrix expects in_features=12",
)
def _() -> object:
    return interfuse.DenseMatrix(12, 6)([x(5, 4), x(5, 4)])


@bad(
    "matrix-empty-list",
    M,
    "empty input list",
    ValueError,
    r"x must hold at least one tensor, got an empty list",
)
def _() -> object:
    return interfuse.DenseMatrix(12, 6)([])


@bad(
    "matrix-non-tensor-item",
    M,
    "non-tensor item",
    TypeError,
    r"x\[1\] must be a torch.Tensor, got float",
)
def _() -> object:
    return interfuse.DenseMatrix(12, 6)([x(5, 6), 1.0])  # type: ignore[list-item]


@bad(
    "matrix-string-input",
    M,
    "non-tensor item",
    TypeError,
    r"x must be a list or tuple of tensors, got str",
)
def _() -> object:
    return interfuse.LowRankMatrix(12, 6)("x")  # type: ignore[arg-type]


@bad(
    "matrix-leading-shapes",
    M,
    "mismatched leading shapes",
    ValueError,
    r"x\[1\] has leading shape \(4,\) but x\[0\] has \(5,\)",
)
def _() -> object:
    return interfuse.DenseMatrix(12, 6)([x(5, 6), x(4, 6)])


@bad(
    "matrix-scalar-input",
    M,
    "zero or negative dimensions",
    ValueError,
    r"x must have at least one dimension, got a 0-d tensor",
)
def _() -> object:
    return interfuse.DenseMatrix(12, 6)(torch.tensor(1.0))


@bad(
    "matrix-integer-input",
    M,
    "integer dtype",
    TypeError,
    r"x must have a floating dtype, got torch.int64",
)
def _() -> object:
    return interfuse.LowRankMatrix(12, 6)(x(5, 12, dtype=torch.long))


@bad(
    "matrix-dtype-mismatch",
    M,
    "mixed dtypes",
    TypeError,
    r"x has dtype torch.float64 but KroneckerMatrix has dtype torch.float32",
)
def _() -> object:
    return interfuse.KroneckerMatrix(12, 6)(x(5, 12, dtype=torch.float64))


@bad(
    "matrix-mixed-piece-dtypes",
    M,
    "mixed dtypes (promoted as torch.cat does, then unlike the matrix's)",
    TypeError,
    r"x has dtype torch.float64 but DenseMatrix has dtype torch.float32",
)
def _() -> object:
    return interfuse.DenseMatrix(12, 6)([x(5, 6), x(5, 6, dtype=torch.float64)])


@bad(
    "matrix-device-mismatch",
    M,
    "different devices",
    ValueError,
    r"x is on meta but RandomAdaptedMatrix is on cpu",
)
def _() -> object:
    return interfuse.RandomAdaptedMatrix(12, 6)(x(5, 12, device="meta"))


@bad(
    "matrix-piece-devices",
    M,
    "different devices",
    ValueError,
    r"x\[1\] is on meta but x\[0\] is on cpu",
)
def _() -> object:
    return interfuse.LowRankMatrix(12, 6)([x(5, 6), x(5, 6, device="meta")])


@bad(
    "matrix-zero-features",
    M,
    "zero or negative dimensions",
    ValueError,
    r"in_features must be a positive int, got 0",
)
def _() -> object:
    return interfuse.DenseMatrix(0, 6)


@bad(
    "matrix-negative-features",
    M,
    "zero or negative dimensions",
    ValueError,
    r"out_features must be a positive int, got -3",
)
def _() -> object:
    return interfuse.LowRankMatrix(12, -3)


@bad(
    "matrix-float-features",
    M,
    "zero or negative dimensions",
    TypeError,
    r"in_features must be a positive int, got 12.0 of type float",
)
def _() -> object:
    return interfuse.DenseMatrix(12.0, 6)  # type: ignore[arg-type]


@bad(
    "matrix-bool-features",
    M,
    "zero or negative dimensions",
    TypeError,
    r"in_features must be a positive int, got True of type bool",
)
def _() -> object:
    return interfuse.DenseMatrix(True, 6)


@bad(
    "matrix-zero-rank",
    M,
    "ranks that do not fit",
    ValueError,
    r"rank must be a positive int, got 0",
)
def _() -> object:
    return interfuse.LowRankMatrix(12, 6, rank=0)


@bad(
    "matrix-negative-rank",
    M,
    "ranks that do not fit",
    ValueError,
    r"rank must be a positive int, got -1",
)
def _() -> object:
    return interfuse.DualLowRankKroneckerMatrix(12, 6, rank=-1)


@bad(
    "kronecker-p-divides",
    M,
    "Kronecker factors that do not divide",
    ValueError,
    r"p=4 must divide out_features=6 .*choose a divisor of 6: \[1, 2, 3, 6\]",
)
def _() -> object:
    return interfuse.KroneckerMatrix(12, 6, p=4, q=3)


@bad(
    "kronecker-q-divides",
    M,
    "Kronecker factors that do not divide",
    ValueError,
    r"q=5 must divide in_features=12",
)
def _() -> object:
    return interfuse.LowRankKroneckerMatrix(12, 6, p=2, q=5)


@bad(
    "kronecker-q-without-p",
    M,
    "Kronecker factors that do not divide",
    ValueError,
    r"p must be given when q is given \(q=3\)",
)
def _() -> object:
    return interfuse.KroneckerMatrix(12, 6, q=3)


@bad(
    "random-factors-shape",
    M,
    "w of the wrong size",
    ValueError,
    r"random_factors must have shapes \(6, 2\) and \(12, 2\), got \(6, 3\) and \(12, 3\)",
)
def _() -> object:
    return interfuse.RandomAdaptedMatrix(12, 6, rank=2, random_factors=(x(6, 3), x(12, 3)))


@bad(
    "random-seed-type",
    M,
    "wrong argument type",
    TypeError,
    r"seed must be an int, got 1.5",
)
def _() -> object:
    return interfuse.RandomAdaptedMatrix(12, 6, seed=1.5)  # type: ignore[arg-type]


@bad(
    "matrix-mode",
    M,
    "unknown names",
    ValueError,
    r"mode must be one of \['auto', 'factored', 'dense'\], got 'fast'",
)
def _() -> object:
    return interfuse.LowRankMatrix(12, 6, mode="fast")


@bad(
    "matrix-unknown-name",
    M,
    "unknown names",
    ValueError,
    r"matrix must be one of \[.*'lowrank'.*\], got 'lowrnak'",
)
def _() -> object:
    return resolve_matrix("lowrnak", 12, 6)


@bad(
    "matrix-name-type",
    M,
    "unknown names",
    TypeError,
    r"matrix must be a name or a StructuredMatrix, got 3",
)
def _() -> object:
    return matrix_class(3)  # type: ignore[arg-type]


@bad(
    "matrix-instance-shape",
    M,
    "width disagrees",
    ValueError,
    r"matrix has in_features=4, out_features=4 but in_features=12, out_features=6",
)
def _() -> object:
    return resolve_matrix(interfuse.DenseMatrix(4, 4), 12, 6)


@bad(
    "matrix-instance-options",
    M,
    "configs with unknown keys",
    TypeError,
    r"matrix options \['rank'\] apply only when matrix is a name",
)
def _() -> object:
    return resolve_matrix(interfuse.DenseMatrix(12, 6), 12, 6, rank=2)


@bad(
    "matrix-identity-rank",
    M,
    "ranks that do not fit",
    ValueError,
    r"LowRankMatrix cannot represent the identity matrix",
)
def _() -> object:
    interfuse.LowRankMatrix(12, 12, rank=2).reset_to_identity()
    return None


@bad(
    "parametrize-shape",
    M,
    "width disagrees",
    ValueError,
    r"weight of Linear has shape \(12, 6\) but the matrix has shape \(6, 12\)",
)
def _() -> object:
    return register_structured_weight(nn.Linear(6, 12), interfuse.DenseMatrix(12, 6))


@bad(
    "matrix-state-dict-shape",
    M,
    "state_dict of a differently shaped module",
    RuntimeError,
    r"size mismatch for left: copying a param with shape torch.Size\(\[6, 3\]\)",
    clear_runtime=True,
)
def _() -> object:
    target = interfuse.LowRankMatrix(12, 6, rank=2)
    return target.load_state_dict(interfuse.LowRankMatrix(12, 6, rank=3).state_dict())


@bad(
    "matrix-state-dict-keys",
    M,
    "state_dict of a differently shaped module",
    RuntimeError,
    r'Missing key\(s\) in state_dict: "left", "right"',
    clear_runtime=True,
)
def _() -> object:
    target = interfuse.LowRankMatrix(12, 6)
    return target.load_state_dict(interfuse.DenseMatrix(12, 6).state_dict())


@bad(
    "matrix-bias-size",
    M,
    "w of the wrong size",
    ValueError,
    r"bias must have shape \(4,\) \(out_features of LowRankMatrix\), got \(5,\)",
)
def _() -> object:
    return interfuse.LowRankMatrix(4, 4)(torch.ones(2, 4), torch.ones(5))


@bad("matrix-bias-integer", M, "integer dtype", TypeError, r"bias must have a floating dtype")
def _() -> object:
    return interfuse.DenseMatrix(4, 4)(torch.ones(2, 4), torch.ones(4, dtype=torch.long))


@bad(
    "matrix-integer-factory-dtype",
    M,
    "integer dtype",
    TypeError,
    r"dtype must be a floating torch.dtype .* got torch.int64",
)
def _() -> object:
    return interfuse.DenseMatrix(4, 4, dtype=torch.long)


# ------------------------------------------------------------------------------------------
# The kernels of interfuse.functional, called directly
# ------------------------------------------------------------------------------------------
FN = "modern: functional"


@bad(
    "functional-empty",
    FN,
    "empty input list",
    ValueError,
    r"fused_sum: xs must hold at least one tensor",
)
def _() -> object:
    return interfuse.functional.fused_sum([])


@bad(
    "functional-shapes",
    FN,
    "mismatched leading shapes",
    ValueError,
    r"fused_max: xs\[1\] has shape \(2, 4\) but xs\[0\] has \(2, 3\)",
)
def _() -> object:
    return interfuse.functional.fused_max([torch.ones(2, 3), torch.ones(2, 4)])


@bad(
    "functional-weights-size",
    FN,
    "w of the wrong size",
    ValueError,
    r"weighted_sum: weights must have shape \(2,\) or \(\.\.\., 2\) for 2 inputs, got \(3,\)",
)
def _() -> object:
    return interfuse.functional.weighted_sum([torch.ones(2), torch.ones(2)], torch.ones(3))


@bad(
    "functional-concat-leading",
    FN,
    "mismatched leading shapes",
    ValueError,
    r"concat: xs\[1\] has shape \(3, 8\) but xs\[0\] has \(4, 8\); all but the last",
)
def _() -> object:
    return interfuse.functional.concat([torch.ones(4, 8), torch.ones(3, 8)])


@bad(
    "functional-mask-length",
    FN,
    "masks of the wrong shape or dtype",
    ValueError,
    r"mask must have shape \(k,\) or \(\.\.\., k\) with k=2 inputs, got \(1,\)",
)
def _() -> object:
    return interfuse.functional.fused_median([torch.ones(2), torch.ones(2)], torch.tensor([True]))


@bad(
    "functional-lowrank-width",
    FN,
    "width disagrees",
    ValueError,
    r"lowrank_linear: x has width 3 but the matrix expects in_features=5",
)
def _() -> object:
    return interfuse.functional.lowrank_linear(torch.ones(2, 3), torch.ones(4, 2), torch.ones(2, 5))


@bad(
    "functional-lowrank-rank",
    FN,
    "ranks that do not fit",
    ValueError,
    r"lowrank_linear: left.shape\[1\]=3 must equal right.shape\[0\]=2",
)
def _() -> object:
    return interfuse.functional.lowrank_linear(torch.ones(2, 5), torch.ones(4, 3), torch.ones(2, 5))


# ------------------------------------------------------------------------------------------
# Configs (modern face)
# ------------------------------------------------------------------------------------------
C = "modern: configs"


@bad(
    "config-unknown-class",
    C,
    "configs with unknown classes",
    ValueError,
    r"config class 'LowRankMatrx' is not registered; choose one of \[.*'LowRankMatrix'",
)
def _() -> object:
    return from_config({"class": "LowRankMatrx", "params": {}})


@bad(
    "config-unknown-key",
    C,
    "configs with unknown keys",
    TypeError,
    r"config for LowRankMatrix has unknown keys \['rnak'\]; it takes \[",
)
def _() -> object:
    params = {"in_features": 12, "out_features": 6, "rnak": 2}
    return from_config({"class": "LowRankMatrix", "params": params})


@bad(
    "config-missing-key",
    C,
    "configs with unknown keys",
    TypeError,
    r"config for DenseMatrix lacks required keys \['out_features'\]",
)
def _() -> object:
    return from_config({"class": "DenseMatrix", "params": {"in_features": 12}})


@bad(
    "config-layout",
    C,
    "configs with unknown keys",
    ValueError,
    r"config must be a dict with exactly the keys 'class' and 'params'",
)
def _() -> object:
    return from_config({"class": "DenseMatrix", "args": {}})


@bad(
    "config-params-type",
    C,
    "configs with unknown keys",
    TypeError,
    r"config params must be a dict, got list",
)
def _() -> object:
    return from_config({"class": "DenseMatrix", "params": [12, 6]})


@bad(
    "config-bad-value",
    C,
    "zero or negative dimensions",
    ValueError,
    r"p=4 must divide out_features=6",
)
def _() -> object:
    params = {"in_features": 12, "out_features": 6, "p": 4, "q": 3}
    return from_config({"class": "KroneckerMatrix", "params": params})


# ------------------------------------------------------------------------------------------
# Fusion (modern face)
# ------------------------------------------------------------------------------------------
F = "modern: fusion"
ID = "modern: interdependence"


@bad(
    "fusion-empty-list",
    F,
    "empty input list",
    ValueError,
    r"xs must hold at least one tensor, got an empty list",
)
def _() -> object:
    return interfuse.MeanFusion()([])


@bad(
    "fusion-stacked-tensor",
    F,
    "non-tensor item",
    TypeError,
    r"xs must be a list or tuple of tensors, got a single Tensor of shape \(3, 2, 4\); pass "
    r"list\(t.unbind\(0\)\)",
)
def _() -> object:
    return interfuse.MeanFusion()(x(3, 2, 4))  # type: ignore[arg-type]


@bad(
    "fusion-non-tensor-item",
    F,
    "non-tensor item",
    TypeError,
    r"xs\[1\] must be a torch.Tensor, got str",
)
def _() -> object:
    return interfuse.SumFusion()([x(2, 4), "a"])  # type: ignore[list-item]


@bad(
    "fusion-shapes",
    F,
    "mismatched leading shapes",
    ValueError,
    r"xs\[1\] has shape \(3, 4\) but xs\[0\] has \(2, 4\); this fusion needs identical shapes",
)
def _() -> object:
    return interfuse.MaxFusion()([x(2, 4), x(3, 4)])


@bad(
    "fusion-concat-leading",
    F,
    "mismatched leading shapes",
    ValueError,
    r"xs\[1\] has leading shape \(3,\) but xs\[0\] has \(2,\)",
)
def _() -> object:
    return interfuse.ConcatFusion()([x(2, 4), x(3, 4)])


@bad(
    "fusion-count",
    F,
    "wrong number of inputs for fixed weights",
    ValueError,
    r"xs has 2 tensors but WeightedSumFusion was built for num_inputs=3",
)
def _() -> object:
    return interfuse.WeightedSumFusion(3, learnable=False)([x(2, 4)] * 2)


@bad(
    "fusion-widths",
    F,
    "width disagrees",
    ValueError,
    r"xs have widths \[3, 3\] but ProjectedConcatFusion was built for in_dims=\[3, 2\]",
)
def _() -> object:
    return interfuse.ProjectedConcatFusion([3, 2], 4)([x(2, 3), x(2, 3)])


@bad(
    "fusion-out-features",
    F,
    "width disagrees",
    ValueError,
    r"in_dims must all be equal for MeanFusion \(an element-wise fusion\), got \[3, 4\]",
)
def _() -> object:
    return interfuse.MeanFusion().out_features([3, 4])


@bad(
    "fusion-weights-size",
    F,
    "w of the wrong size",
    ValueError,
    r"weights must have shape \(3,\) for num_inputs=3, got shape \(2,\)",
)
def _() -> object:
    return interfuse.WeightedSumFusion(3, weights=[1.0, 2.0])


@bad(
    "fusion-weights-rank",
    F,
    "w of the wrong rank",
    ValueError,
    r"weights must have shape \(2,\) for num_inputs=2, got shape \(1, 2\)",
)
def _() -> object:
    return interfuse.WeightedSumFusion(2, weights=[[1.0, 2.0]])


@bad(
    "fusion-weights-nan",
    F,
    "non-finite weights",
    ValueError,
    r"weights must be finite, got \[1.0, nan\]",
)
def _() -> object:
    return interfuse.WeightedSumFusion(2, weights=[1.0, float("nan")])


@bad(
    "fusion-weights-type",
    F,
    "w of the wrong size",
    TypeError,
    r"weights must be a sequence of 2 numbers or a tensor, got 'ab'",
)
def _() -> object:
    return interfuse.WeightedSumFusion(2, weights="ab")  # type: ignore[arg-type]


@bad(
    "fusion-zero-inputs",
    F,
    "zero or negative dimensions",
    ValueError,
    r"num_inputs must be a positive int, got 0",
)
def _() -> object:
    return interfuse.WeightedSumFusion(0)


@bad(
    "fusion-zero-width",
    F,
    "zero or negative dimensions",
    ValueError,
    r"in_dims\[1\] must be a positive int, got 0",
)
def _() -> object:
    return interfuse.ProjectedConcatFusion([3, 0], 4)


@bad(
    "fusion-negative-out",
    F,
    "zero or negative dimensions",
    ValueError,
    r"out_dim must be a positive int, got -4",
)
def _() -> object:
    return interfuse.ProjectedConcatFusion([3, 2], -4)


@bad(
    "fusion-kronecker",
    F,
    "Kronecker factors that do not divide",
    ValueError,
    r"p=3 must divide out_features=4",
)
def _() -> object:
    options = {"p": 3, "q": 1}
    return interfuse.ProjectedConcatFusion([3, 2], 4, matrix="kronecker", matrix_options=options)


@bad("fusion-rank", F, "ranks that do not fit", ValueError, r"rank must be a positive int, got 0")
def _() -> object:
    options = {"rank": 0}
    return interfuse.ProjectedConcatFusion([3, 2], 4, matrix="lowrank", matrix_options=options)


@bad(
    "fusion-matrix-name",
    F,
    "unknown names",
    ValueError,
    r"matrix must be one of \[.*'lowrank'.*\], got 'lowrnk'",
)
def _() -> object:
    return interfuse.ProjectedConcatFusion([3, 2], 4, matrix="lowrnk")


@bad(
    "fusion-name",
    F,
    "unknown names",
    ValueError,
    r"fusion must be one of \['attention', 'concat', .*'mean', .*\].*got 'avg'",
)
def _() -> object:
    return resolve_fusion("avg")


@bad(
    "fusion-normalize",
    F,
    "unknown names",
    ValueError,
    r"normalize must be one of \['none', 'softmax'\], got 'sigmoid'",
)
def _() -> object:
    return interfuse.WeightedSumFusion(2, normalize="sigmoid")


@bad(
    "fusion-median-mode",
    F,
    "unknown names",
    ValueError,
    r"mode must be one of \['lower', 'mean'\], got 'upper'",
)
def _() -> object:
    return interfuse.MedianFusion(mode="upper")


@bad(
    "fusion-norm-p",
    F,
    "zero or negative dimensions",
    ValueError,
    r"p must be a number >= 1 or math.inf, got 0.5",
)
def _() -> object:
    return interfuse.NormFusion(p=0.5)


@bad(
    "fusion-integer",
    F,
    "integer dtype",
    TypeError,
    r"xs\[0\] must have a floating dtype, got torch.int64",
)
def _() -> object:
    return interfuse.ProdFusion()([x(2, 3, dtype=torch.long)] * 2)


@bad(
    "fusion-complex",
    F,
    "mixed dtypes",
    TypeError,
    r"xs must hold real floating tensors, got dtype torch.complex64",
)
def _() -> object:
    return interfuse.MeanFusion()([x(2, 3, dtype=torch.complex64)] * 2)


@bad(
    "fusion-module-dtype",
    F,
    "mixed dtypes",
    TypeError,
    r"x has dtype torch.float64 but DenseMatrix has dtype torch.float32",
)
def _() -> object:
    return interfuse.ProjectedConcatFusion([3, 2], 4)([x(2, 3).double(), x(2, 2).double()])


@bad(
    "fusion-device",
    F,
    "different devices",
    ValueError,
    r"xs are on meta but ProjectedConcatFusion is on cpu",
)
def _() -> object:
    f = interfuse.ProjectedConcatFusion([3, 2], 4)
    return f([x(2, 3, device="meta"), x(2, 2, device="meta")])


@bad(
    "fusion-mask-dtype",
    F,
    "masks of the wrong shape or dtype",
    TypeError,
    r"mask must have dtype torch.bool, got torch.int64",
)
def _() -> object:
    return interfuse.MeanFusion()([x(2, 3)] * 2, mask=torch.tensor([1, 0]))


@bad(
    "fusion-mask-k",
    F,
    "masks of the wrong shape or dtype",
    ValueError,
    r"mask must have shape \(k,\) or \(\.\.\., k\) with k=2 inputs, got \(3,\)",
)
def _() -> object:
    return interfuse.MeanFusion()([x(2, 3)] * 2, mask=torch.tensor([True, False, True]))


@bad(
    "fusion-mask-enlarges",
    F,
    "masks of the wrong shape or dtype",
    ValueError,
    r"mask has leading shape \(5, 2\), which would enlarge the inputs' leading shape \(2,\)",
)
def _() -> object:
    return interfuse.MeanFusion()([x(2, 3)] * 2, mask=torch.ones(5, 2, 2, dtype=torch.bool))


@bad(
    "fusion-all-masked",
    F,
    "all inputs masked",
    ValueError,
    r"mask leaves no input present for some rows; at least one must be True",
)
def _() -> object:
    return interfuse.MaxFusion()([x(2, 3)] * 2, mask=torch.tensor([False, False]))


@bad(
    "fusion-state-dict",
    F,
    "state_dict of a differently shaped module",
    RuntimeError,
    r"size mismatch for weight: copying a param with shape torch.Size\(\[2\]\) from checkpoint, "
    r"the shape in current model is torch.Size\(\[3\]\)",
    clear_runtime=True,
)
def _() -> object:
    return interfuse.WeightedSumFusion(3).load_state_dict(
        interfuse.WeightedSumFusion(2).state_dict()
    )


@bad(
    "fusion-config-unknown-class",
    F,
    "configs with unknown classes",
    ValueError,
    r"config class 'MeanFusionn' is not registered; choose one of \[.*'MeanFusion'",
)
def _() -> object:
    return from_config({"class": "MeanFusionn", "params": {}})


@bad(
    "fusion-config-nested",
    F,
    "configs with unknown keys",
    TypeError,
    r"config for LowRankMatrix has unknown keys \['rnak'\]",
)
def _() -> object:
    config = interfuse.ProjectedConcatFusion([3, 2], 4, matrix="lowrank").to_config()
    config["params"]["matrix"]["params"]["rnak"] = 2
    return from_config(config)


@bad(
    "hybrid-empty",
    ID,
    "empty input list",
    ValueError,
    r"parts must hold at least one interdependence module, got none",
)
def _() -> object:
    return interfuse.HybridInterdependence([], interfuse.MeanFusion())


# ------------------------------------------------------------------------------------------
# Masks of present inputs (modern face: the check every masked fusion runs)
# ------------------------------------------------------------------------------------------
K = "modern: masks"
THREE = [torch.ones(4, 5)] * 3  # three inputs of shape (4, 5)


@bad(
    "mask-dtype",
    K,
    "masks of the wrong shape or dtype",
    TypeError,
    r"mask must have dtype torch.bool, got torch.float32",
)
def _() -> object:
    return check_mask(torch.ones(3), THREE)


@bad(
    "mask-type",
    K,
    "masks of the wrong shape or dtype",
    TypeError,
    r"mask must be a bool torch.Tensor of shape \(k,\) or \(\.\.\., k\), got list",
)
def _() -> object:
    return check_mask([True, False, True], THREE)  # type: ignore[arg-type]


@bad(
    "mask-k",
    K,
    "masks of the wrong shape or dtype",
    ValueError,
    r"mask must have shape \(k,\) or \(\.\.\., k\) with k=3 inputs, got \(2,\)",
)
def _() -> object:
    return check_mask(torch.ones(2, dtype=torch.bool), THREE)


@bad(
    "mask-scalar",
    K,
    "masks of the wrong shape or dtype",
    ValueError,
    r"mask must have shape \(k,\) or \(\.\.\., k\) with k=3 inputs, got \(\)",
)
def _() -> object:
    return check_mask(torch.tensor(True), THREE)


@bad(
    "mask-leading",
    K,
    "masks of the wrong shape or dtype",
    ValueError,
    r"mask has leading shape \(3,\), which does not broadcast against the inputs' leading "
    r"shape \(4,\)",
)
def _() -> object:
    return check_mask(torch.ones(3, 3, dtype=torch.bool), THREE)


@bad(
    "mask-all-absent",
    K,
    "all inputs masked",
    ValueError,
    r"mask leaves no input present for some rows; at least one must be True",
)
def _() -> object:
    return check_mask(torch.zeros(3, dtype=torch.bool), THREE)


@bad(
    "mask-row-absent",
    K,
    "all inputs masked",
    ValueError,
    r"mask leaves no input present for some rows",
)
def _() -> object:
    mask = torch.ones(4, 3, dtype=torch.bool)
    mask[2] = False
    return check_mask(mask, THREE)


@bad(
    "mask-device", K, "different devices", ValueError, r"mask is on meta but the inputs are on cpu"
)
def _() -> object:
    return check_mask(torch.ones(3, dtype=torch.bool, device="meta"), THREE)


# ------------------------------------------------------------------------------------------
# Interdependence (modern face)
# ------------------------------------------------------------------------------------------


@bad(
    "interdependence-width",
    ID,
    "width disagrees",
    ValueError,
    r"x has 5 features but in_dim=6 \(dimension -1 of shape \(\.\.\., b, m\), axis='attribute'\)",
)
def _() -> object:
    return ParameterizedInterdependence(6, 4)(x(2, 3, 5))


@bad(
    "interdependence-instances",
    ID,
    "width disagrees",
    ValueError,
    r"x has 4 instances but in_dim=3 \(dimension -2",
)
def _() -> object:
    return ParameterizedInterdependence(3, 2, axis="instance")(x(2, 4, 6))


@bad(
    "interdependence-rank-1",
    ID,
    "zero or negative dimensions",
    ValueError,
    r"x must have shape \(\.\.\., b, m\) with at least 2 dimensions, got shape \(6,\)",
)
def _() -> object:
    return ParameterizedInterdependence(6, 4)(x(6))


@bad(
    "interdependence-list",
    ID,
    "non-tensor item",
    TypeError,
    r"x must be a torch.Tensor of shape \(\.\.\., b, m\)",
)
def _() -> object:
    return ParameterizedInterdependence(6, 4)([x(2, 6)])  # type: ignore[arg-type]


@bad(
    "interdependence-integer",
    ID,
    "integer dtype",
    TypeError,
    r"x must have a floating dtype, got torch.int64",
)
def _() -> object:
    return ParameterizedInterdependence(6, 4)(x(2, 3, 6, dtype=torch.long))


@bad(
    "interdependence-dtype",
    ID,
    "mixed dtypes",
    TypeError,
    r"x has dtype torch.float64 but ParameterizedInterdependence has dtype torch.float32",
)
def _() -> object:
    return ParameterizedInterdependence(6, 4)(x(2, 3, 6, dtype=torch.float64))


@bad(
    "interdependence-device",
    ID,
    "different devices",
    ValueError,
    r"x is on meta but ParameterizedInterdependence is on cpu",
)
def _() -> object:
    return ParameterizedInterdependence(6, 4)(x(2, 3, 6, device="meta"))


@bad(
    "hybrid-fusion-k",
    ID,
    "wrong number of inputs for fixed weights",
    ValueError,
    r"fusion WeightedSumFusion was built for num_inputs=3 but there are 2 parts",
)
def _() -> object:
    parts = [ParameterizedInterdependence(6, 6), ParameterizedInterdependence(6, 6)]
    return interfuse.HybridInterdependence(parts, interfuse.WeightedSumFusion(3))


@bad(
    "hybrid-dtype",
    ID,
    "mixed dtypes",
    TypeError,
    r"x has dtype torch.float64 but the fused A of this HybridInterdependence has dtype "
    r"torch.float32",
)
def _() -> object:
    parts = [ParameterizedInterdependence(6, 6)]
    return interfuse.HybridInterdependence(parts, "mean")(x(2, 3, 6, dtype=torch.float64))


@bad(
    "hybrid-device",
    ID,
    "different devices",
    ValueError,
    r"x is on meta but the fused A of this HybridInterdependence is on cpu",
)
def _() -> object:
    parts = [ParameterizedInterdependence(6, 6)]
    return interfuse.HybridInterdependence(parts, "mean")(x(2, 3, 6, device="meta"))


@bad(
    "interdependence-axis",
    ID,
    "unknown names",
    ValueError,
    r"axis must be one of \['attribute', 'instance'\], got 'row'",
)
def _() -> object:
    return ParameterizedInterdependence(6, 4, axis="row")


@bad(
    "interdependence-matrix-name",
    ID,
    "unknown names",
    ValueError,
    r"matrix must be one of \[.*'kronecker'.*\], got 'kroneker'",
)
def _() -> object:
    return ParameterizedInterdependence(6, 4, matrix="kroneker")


@bad(
    "interdependence-matrix-options",
    ID,
    "configs with unknown keys",
    TypeError,
    r"LowRankMatrix does not take the options \['rnak'\]; it takes \[.*'rank'\]",
)
def _() -> object:
    return ParameterizedInterdependence(6, 4, matrix="lowrank", matrix_options={"rnak": 2})


@bad(
    "interdependence-identity",
    ID,
    "ranks that do not fit",
    ValueError,
    r"init='identity' is not possible with LowRankMatrix",
)
def _() -> object:
    options = {"rank": 2}
    return ParameterizedInterdependence(
        6, 4, matrix="lowrank", init="identity", matrix_options=options
    )


@bad(
    "interdependence-kronecker",
    ID,
    "Kronecker factors that do not divide",
    ValueError,
    r"q=4 must divide in_features=6",
)
def _() -> object:
    return ParameterizedInterdependence(6, 4, matrix="kronecker", matrix_options={"p": 2, "q": 4})


@bad(
    "interdependence-zero-dim",
    ID,
    "zero or negative dimensions",
    ValueError,
    r"in_dim must be a positive int, got 0",
)
def _() -> object:
    return ParameterizedInterdependence(0, 4)


@bad(
    "bilinear-order",
    ID,
    "unknown names",
    ValueError,
    r"order must be one of \['auto', 'matrix_first', 'data_first'\], got 'fast'",
)
def _() -> object:
    return BilinearInterdependence(6, order="fast")


@bad(
    "bilinear-non-square",
    ID,
    "width disagrees",
    ValueError,
    r"matrix has in_features=6, out_features=4 but in_features=6, out_features=6 are needed",
)
def _() -> object:
    return BilinearInterdependence(6, matrix=interfuse.DenseMatrix(6, 4))


@bad(
    "interdependence-state-dict",
    ID,
    "state_dict of a differently shaped module",
    RuntimeError,
    r"size mismatch for matrix.weight: copying a param with shape torch.Size\(\[5, 6\]\)",
    clear_runtime=True,
)
def _() -> object:
    return ParameterizedInterdependence(6, 4).load_state_dict(
        ParameterizedInterdependence(6, 5).state_dict()
    )


# ------------------------------------------------------------------------------------------
# tinyBIG face
# ------------------------------------------------------------------------------------------
TF = "tinybig: fusion"
TI = "tinybig: interdependence"


def ws(k: int = 2) -> nn.Module:
    """``weighted_summation_fusion`` of ``k`` inputs of width 3."""
    return tb.weighted_summation_fusion(dims=[3] * k, weights=torch.ones(k) / k)


@bad(
    "tinybig-empty-list",
    TF,
    "empty input list",
    ValueError,
    r"x cannot be empty: expected at least one tensor, got an empty list",
)
def _() -> object:
    return ws()([])


@bad(
    "tinybig-stacked-tensor",
    TF,
    "non-tensor item",
    ValueRuntimeError,
    r"x must be a list or tuple of tensors, got a single Tensor of shape \(2, 4, 3\)",
)
def _() -> object:
    return ws()(x(2, 4, 3))


@bad(
    "tinybig-non-tensor-item",
    TF,
    "non-tensor item",
    TypeError,
    r"x\[1\] must be a torch.Tensor, got int",
)
def _() -> object:
    return ws()([x(4, 3), 3])


@bad(
    "tinybig-shapes",
    TF,
    "mismatched leading shapes",
    ValueError,
    r"x must have the same shape: x\[1\] has shape \(5, 3\) but x\[0\] has \(4, 3\)",
)
def _() -> object:
    return ws()([x(4, 3), x(5, 3)])


@bad(
    "tinybig-concat-leading",
    TF,
    "mismatched leading shapes",
    ValueError,
    r"x\[1\] has leading shape \(5,\) but x\[0\] has \(4,\)",
)
def _() -> object:
    return tb.concatenation_fusion(dims=[3, 2])([x(4, 3), x(5, 2)])


@bad(
    "tinybig-count",
    TF,
    "wrong number of inputs for fixed weights",
    ValueAssertionError,
    r"x holds 3 tensors but dims=\[3, 3\] expects 2",
)
def _() -> object:
    return ws()([x(4, 3)] * 3)


@bad(
    "tinybig-width",
    TF,
    "width disagrees",
    ValueRuntimeError,
    r"x\[1\] has width 4 \(shape \(2, 4\)\) but dims\[1\]=3; dims=\[3, 3\]",
)
def _() -> object:
    return tb.parameterized_concatenation_fusion(n=2, dims=[3, 3])([x(2, 3), x(2, 4)], w=x(1, 12))


@bad(
    "tinybig-weights-size",
    TF,
    "w of the wrong size",
    ValueAssertionError,
    r"weights must have shape \(2,\), \(2, 1\) or \(1, 2\) for k=2 inputs, got shape \(3,\)",
)
def _() -> object:
    return tb.weighted_summation_fusion(dims=[3, 3], weights=x(3))


@bad(
    "tinybig-weights-rank",
    TF,
    "w of the wrong rank",
    ValueAssertionError,
    r"weights must have shape \(2,\), \(2, 1\) or \(1, 2\) for k=2 inputs, got shape \(2, 2\)",
)
def _() -> object:
    return tb.weighted_summation_fusion(dims=[3, 3], weights=x(2, 2))


@bad(
    "tinybig-weights-nan",
    TF,
    "non-finite weights",
    ValueError,
    r"weights must be finite, got \[1.0, nan\]",
)
def _() -> object:
    return tb.weighted_summation_fusion(dims=[3, 3], weights=torch.tensor([1.0, float("nan")]))


@bad(
    "tinybig-weights-inf",
    TF,
    "non-finite weights",
    ValueError,
    r"weights must be finite, got \[inf, 0.5\]",
)
def _() -> object:
    return tb.weighted_summation_fusion(dims=[3, 3], weights=torch.tensor([float("inf"), 0.5]))


@bad(
    "tinybig-w-missing",
    TF,
    "w of the wrong size",
    ValueAttributeError,
    r"w is required: parameterized_concatenation_fusion needs l=12 parameters",
)
def _() -> object:
    return tb.parameterized_concatenation_fusion(n=2, dims=[3, 3])([x(2, 3), x(2, 3)])


@bad(
    "tinybig-w-size",
    TF,
    "w of the wrong size",
    ValueRuntimeError,
    r"w must hold l=n\*D=2\*6=12 parameters \(shape \(1, 12\)\), got shape \(1, 11\)",
)
def _() -> object:
    return tb.parameterized_concatenation_fusion(n=2, dims=[3, 3])([x(2, 3)] * 2, w=x(1, 11))


@bad(
    "tinybig-w-rank",
    TF,
    "w of the wrong rank",
    ValueAssertionError,
    r"w must hold l=10 parameters as shape \(10,\) or \(1, 10\), got shape \(1, 1, 10\)",
)
def _() -> object:
    f = tb.lphm_parameterized_concatenation_fusion(n=4, dims=[3, 3], p=2, q=3, r=1)
    return f([x(2, 3)] * 2, w=x(1, 1, 10))


@bad(
    "tinybig-summation-w",
    TF,
    "w of the wrong size",
    ValueAssertionError,
    r"w must have shape \(2,\), \(2, 1\) or \(1, 2\) for k=2 inputs, got shape \(3,\)",
)
def _() -> object:
    return tb.parameterized_weighted_summation_fusion(dims=[3, 3])([x(2, 3)] * 2, w=x(3))


@bad(
    "tinybig-dims-zero",
    TF,
    "zero or negative dimensions",
    ValueError,
    r"dims\[1\] must be a positive int, got 0 \(dims=\[3, 0\]\)",
)
def _() -> object:
    return tb.mean_fusion(dims=[3, 0])


@bad(
    "tinybig-n-zero",
    TF,
    "zero or negative dimensions",
    ValueError,
    r"n must be a positive int, got 0",
)
def _() -> object:
    return tb.parameterized_concatenation_fusion(n=0, dims=[3, 3])


@bad(
    "tinybig-rank-zero", TF, "ranks that do not fit", ValueError, r"r must be a positive int, got 0"
)
def _() -> object:
    return tb.lowrank_parameterized_concatenation_fusion(n=2, dims=[3, 3], r=0)


@bad(
    "tinybig-hm-p",
    TF,
    "Kronecker factors that do not divide",
    ValueAssertionError,
    r"p=2 must divide the output width n=3 \(n % p = 1\); divisors of n: \[1, 3\]",
)
def _() -> object:
    return tb.hm_parameterized_concatenation_fusion(n=3, dims=[3, 3], p=2, q=2)


@bad(
    "tinybig-hm-q",
    TF,
    "Kronecker factors that do not divide",
    ValueAssertionError,
    r"q=4 must divide the concatenated width D=sum\(dims\)=6",
)
def _() -> object:
    return tb.hm_parameterized_concatenation_fusion(n=4, dims=[3, 3], p=2, q=4)


@bad(
    "tinybig-integer-mean",
    TF,
    "integer dtype",
    ValueRuntimeError,
    r"x\[0\] has dtype torch.int64 but mean_fusion needs floating inputs",
)
def _() -> object:
    return tb.mean_fusion(dims=[3, 3])([x(2, 3, dtype=torch.long)] * 2)


@bad(
    "tinybig-integer-projection",
    TF,
    "integer dtype",
    ValueRuntimeError,
    r"x\[0\] has dtype torch.int64; the product with w needs floating inputs",
)
def _() -> object:
    f = tb.parameterized_concatenation_fusion(n=2, dims=[3, 3])
    return f([x(2, 3, dtype=torch.long)] * 2, w=x(1, 12))


@bad(
    "tinybig-mixed-dtypes",
    TF,
    "mixed dtypes",
    ValueRuntimeError,
    r"x\[1\] has dtype torch.float64 but w has dtype torch.float32",
)
def _() -> object:
    f = tb.lowrank_parameterized_concatenation_fusion(n=2, dims=[3, 3], r=1)
    return f([x(2, 3), x(2, 3, dtype=torch.float64)], w=x(1, 8))


@bad(
    "tinybig-devices",
    TF,
    "different devices",
    ValueRuntimeError,
    r"x\[1\] is on meta but x\[0\] is on cpu; move all inputs to one device",
)
def _() -> object:
    return tb.prod_fusion(dims=[3, 3])([x(2, 3), x(2, 3, device="meta")])


@bad(
    "tinybig-w-device",
    TF,
    "different devices",
    ValueRuntimeError,
    r"x\[0\] is on cpu but w is on meta",
)
def _() -> object:
    f = tb.parameterized_concatenation_fusion(n=2, dims=[3, 3])
    return f([x(2, 3)] * 2, w=x(1, 12, device="meta"))


@bad(
    "tinybig-metric-name",
    TF,
    "unknown names",
    ValueError,
    r"metric must be one of \['l1_norm', 'l2_norm', 'max', 'mean', 'median', 'min', 'prod', "
    r"'sum'\], a dotted path to a batch metric, or a callable, got 'avg'",
)
def _() -> object:
    return tb.metric_fusion(dims=[3, 3], metric="avg")


@bad(
    "tinybig-function-name",
    TF,
    "unknown names",
    ValueError,
    r"preprocess_functions: the function 'softmax' is not one of tinyBIG's built-in string "
    r"functions",
)
def _() -> object:
    return tb.mean_fusion(dims=[3, 3], preprocess_functions="softmax")


@bad(
    "tinybig-get-dim",
    TF,
    "zero or negative dimensions",
    ValueIndexError,
    r"index must be an int in \[0, 1\] for dims=\[3, 3\], got 2",
)
def _() -> object:
    return tb.concatenation_fusion(dims=[3, 3]).get_dim(2)


@bad(
    "tinybig-random-factors",
    TF,
    "w of the wrong size",
    ValueAssertionError,
    r"random_factors must have shapes \(4, 2\) and \(6, 2\), got \(4, 3\) and \(6, 2\)",
)
def _() -> object:
    return tb.random_matrix_adaption_parameterized_concatenation_fusion(
        n=4, dims=[3, 3], r=2, random_factors=(x(4, 3), x(6, 2))
    )


@bad(
    "tinybig-config-class",
    TF,
    "configs with unknown classes",
    ValueError,
    r"names no interfuse.tinybig class; choose one of \[.*'mean_fusion'",
)
def _() -> object:
    return tb.instantiation_from_configs(
        {"function_class": "tinybig.fusion.mean_fusionn", "function_parameters": {"dims": [3]}}
    )


@bad(
    "tinybig-config-key",
    TF,
    "configs with unknown keys",
    TypeError,
    r"config for mean_fusion has unknown keys \['dimz'\]; it takes \[",
)
def _() -> object:
    params = {"dims": [3, 3], "dimz": 2}
    return tb.instantiation_from_configs(
        {"function_class": "interfuse.tinybig.mean_fusion", "function_parameters": params}
    )


@bad(
    "tinybig-written-config-key",
    TF,
    "configs with unknown keys",
    TypeError,
    r"lowrank_parameterized_concatenation_fusion does not take 'rank' \(in function_parameters\)",
)
def _() -> object:
    params = {"dims": [3, 3], "n": 4, "rank": 5}  # tinyBIG names it r
    return tb.instantiation_from_configs(
        {
            "function_class": "tinybig.fusion.lowrank_parameterized_concatenation_fusion",
            "function_parameters": params,
        }
    )


@bad(
    "tinybig-constructor-keyword",
    TF,
    "unknown names",
    TypeError,
    r"max_fusion\(\): unexpected keyword argument 'dimz' \(did you mean 'dims'\?\); missing "
    r"required argument 'dims'\. max_fusion accepts: name, dims \(required\), ",
)
def _() -> object:
    return tb.max_fusion(dimz=[3, 3])  # type: ignore[call-arg]


@bad(
    "tinybig-state-dict",
    TF,
    "state_dict of a differently shaped module",
    RuntimeError,
    r"size mismatch for weights: copying a param with shape torch.Size\(\[3\]\)",
    clear_runtime=True,
)
def _() -> object:
    return ws(2).load_state_dict(ws(3).state_dict())


@bad(
    "tinybig-w-none-interdependence",
    TI,
    "w of the wrong size",
    ValueAssertionError,
    r"parameterized_interdependence: w is required \(require_parameters=True\): pass l=36",
)
def _() -> object:
    return tb.parameterized_interdependence(b=4, m=6)(x=x(4, 6))


@bad(
    "tinybig-x-none-interdependence",
    TI,
    "empty input list",
    ValueAssertionError,
    r"parameterized_bilinear_interdependence: x is required \(require_data=True\), got x=None",
)
def _() -> object:
    return tb.parameterized_bilinear_interdependence(b=4, m=6)(w=x(1, 36))


@bad(
    "tinybig-interdependence-w-size",
    TI,
    "w of the wrong size",
    ValueAssertionError,
    r"w must hold l=36 parameters as shape \(1, 36\) or \(36,\), got shape \(1, 35\)",
)
def _() -> object:
    return tb.parameterized_interdependence(b=4, m=6)(x=x(4, 6), w=x(1, 35))


@bad(
    "tinybig-interdependence-width",
    TI,
    "width disagrees",
    ValueAssertionError,
    r"the data has 5 columns \(attributes\) but A expects 6",
)
def _() -> object:
    return tb.parameterized_interdependence(b=4, m=6)(x=x(4, 5), w=x(1, 36))


@bad(
    "tinybig-interdependence-rows",
    TI,
    "mismatched leading shapes",
    ValueAssertionError,
    r"the data has 5 rows \(instances\) but A mixes 4",
)
def _() -> object:
    f = tb.parameterized_interdependence(b=4, m=6, interdependence_type="instance")
    return f(x=x(5, 6), w=x(1, 16))


@bad(
    "tinybig-interdependence-kappa-dtype",
    TI,
    "mixed dtypes",
    ValueRuntimeError,
    r"kappa_x has dtype torch.float64 but x has dtype torch.float32",
)
def _() -> object:
    f = tb.parameterized_bilinear_interdependence(b=4, m=6)
    return f(x=x(4, 6), w=x(1, 36), kappa_x=x(4, 6, dtype=torch.float64))


@bad(
    "tinybig-hybrid-w-dtype",
    TI,
    "mixed dtypes",
    ValueRuntimeError,
    r"x has dtype torch.float32 but hybrid_interdependence's A has dtype torch.float64",
)
def _() -> object:
    parts = [tb.parameterized_interdependence(b=4, m=6)]
    f = tb.hybrid_interdependence(
        b=4, m=6, interdependence_functions=parts, fusion_function=tb.mean_fusion(dims=[6])
    )
    return f(x=x(4, 6), w=x(1, 36, dtype=torch.float64))


@bad(
    "tinybig-interdependence-bool-w",
    TI,
    "integer dtype",
    ValueRuntimeError,
    r"w has dtype torch.bool; the 'lowrank' fabrication needs floating parameters",
)
def _() -> object:
    f = tb.lowrank_parameterized_interdependence(b=4, m=6, r=1)
    return f.calculate_A(w=x(1, 12, dtype=torch.bool))


@bad(
    "tinybig-interdependence-type",
    TI,
    "unknown names",
    ValueError,
    r"interdependence_type must be one of \[.*'attribute'.*\].*got 'diag'",
)
def _() -> object:
    return tb.parameterized_interdependence(b=4, m=6, interdependence_type="diag")


@bad(
    "tinybig-interdependence-hm",
    TI,
    "Kronecker factors that do not divide",
    ValueAssertionError,
    r"hm_parameterized_interdependence: p=4 must divide m=6 and q=2 must divide m_prime=6",
)
def _() -> object:
    return tb.hm_parameterized_interdependence(b=4, m=6, p=4, q=2)


@bad(
    "tinybig-interdependence-missing",
    TI,
    "unknown names",
    TypeError,
    r"parameterized_interdependence\(\): missing required argument 'm'\. "
    r"parameterized_interdependence accepts: b \(required\), m \(required\), ",
)
def _() -> object:
    return tb.parameterized_interdependence(b=2)  # type: ignore[call-arg]


@bad(
    "tinybig-interdependence-b",
    TI,
    "zero or negative dimensions",
    ValueError,
    r"b must be a positive int, got 0",
)
def _() -> object:
    return tb.parameterized_interdependence(b=0, m=6)


@bad(
    "tinybig-interdependence-dtype",
    TI,
    "mixed dtypes",
    ValueRuntimeError,
    r"x has dtype torch.float64 but w has dtype torch.float32",
)
def _() -> object:
    return tb.parameterized_bilinear_interdependence(b=4, m=6)(
        x=x(4, 6, dtype=torch.float64), w=x(1, 36)
    )


@bad(
    "tinybig-hybrid-empty",
    TI,
    "empty input list",
    ValueError,
    r"hybrid_interdependence needs interdependence_functions or "
    r"interdependence_function_configs \(a non-empty list\), got neither",
)
def _() -> object:
    return tb.hybrid_interdependence(b=4, m=6, interdependence_functions=[], fusion_function=None)


# ------------------------------------------------------------------------------------------
# The docs page
# ------------------------------------------------------------------------------------------
def provoke(case: BadInput) -> BaseException:
    """Run ``case`` and return the exception it raises (``AssertionError`` if none)."""
    try:
        case.call()
    except Exception as err:
        return err
    raise AssertionError(f"{case.id}: {case.code} raised nothing")


def _cell(text: str) -> str:
    text = " ".join(text.split())
    return text.replace("|", "\\|")


def render() -> str:
    """``docs/errors.md``: the catalogue as a table, with the messages the code gives today."""
    lines = [
        "# Errors: the bad-input catalogue",
        "",
        "Every row is one bad input and the error interfuse raises for it, generated from the",
        "catalogue in `tests/reliability/catalogue.py`, which",
        "`tests/reliability/test_bad_inputs.py` runs, checking the exception type exactly and the",
        "message with a regular expression. Regenerate this page with",
        "`python -m tests.reliability.catalogue`; a test fails when it is stale.",
        "",
        "Rules every row obeys: the message names the argument, the value received and what was",
        "expected; no bad input surfaces as a bare `AssertionError`, an `IndexError`, an",
        "`AttributeError` or a `RuntimeError` from inside a matrix product. The tinyBIG face keeps",
        "the original's exception types by raising classes that derive from both `ValueError` and",
        "the original type (`ValueAssertionError`, `ValueAttributeError`, ...), so existing",
        "`except` clauses keep working. The only `RuntimeError`s are PyTorch's own clear",
        "`load_state_dict` reports.",
        "",
        f"{len(CASES)} bad inputs. In the inputs, `x(*shape, dtype=..., device=...)` is",
        "`torch.ones(*shape, ...)`, `tb` is `interfuse.tinybig` and `ws(k)` is",
        "`tb.weighted_summation_fusion(dims=[3] * k, weights=torch.ones(k) / k)`, `THREE` is",
        "three inputs of shape `(4, 5)` and `check_mask` is `interfuse.functional.check_mask`",
        "(the check every masked fusion runs); the `meta`",
        "device stands in for a second device (a GPU) so the table is the same on every",
        "machine.",
        "",
        "| # | face | kind of bad input | input | exception | message |",
        "|---|---|---|---|---|---|",
    ]
    for i, case in enumerate(CASES, 1):
        err = provoke(case)
        message = _cell(str(err))
        if len(message) > 220:
            message = message[:217] + "..."
        lines.append(
            f"| {i} | {case.face} | {case.category} | `{_cell(case.code)}` | "
            f"`{type(err).__name__}` | {message} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    """Write ``docs/errors.md`` (``--check``: exit 1 if it is stale instead)."""
    text = render()
    if "--check" in argv:
        current = DOC_PATH.read_text() if DOC_PATH.exists() else ""
        return 0 if current == text else 1
    DOC_PATH.parent.mkdir(parents=True, exist_ok=True)
    DOC_PATH.write_text(text)
    print(f"wrote {DOC_PATH} ({len(CASES)} bad inputs)")
    return 0


def ids_are_unique() -> bool:
    return len({c.id for c in CASES}) == len(CASES) and all(
        re.fullmatch(r"[a-z0-9-]+", c.id) for c in CASES
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
