r"""Hybrid interdependence: several interdependence matrices fused by any modern fusion."""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from interfuse._validation import check_factory_dtype, check_operand, resolve_choice
from interfuse.fusion import Fusion, fusion_class, resolve_fusion
from interfuse.interdependence.base import Interdependence

__all__ = ["HybridInterdependence", "is_linear_fusion"]

_STRATEGIES = ("auto", "matrices", "outputs")


def is_linear_fusion(fusion: Fusion) -> bool:
    r"""Whether ``fusion`` commutes with a left matrix product: its :attr:`Fusion.is_linear`.

    That is :math:`F(C A_1, \dots, C A_k) = C\,F(A_1, \dots, A_k)` for every ``C`` (a fixed
    ``(k,)`` mask included), so that fusing the outputs :math:`X A_i` equals applying the
    fused matrix. True for the weighted sum, sum and mean (weights that do not depend on the
    inputs), the concatenation, and the projected concatenation without bias (a bias ``b``
    would turn :math:`X (A + \mathbf{1} b^\top)` into :math:`XA + (X\mathbf{1}) b^\top`),
    unless they drop inputs at random (``input_dropout``). Each fusion class says so itself,
    so a new fusion needs no edit here; fusions that do not (products, extrema, medians,
    norms, attention, gates, statistics) are treated as non-linear, which is always correct
    (their matrices are fused instead).

    Args:
        fusion: the fusion module.

    Returns:
        Whether :class:`HybridInterdependence` may fuse the parts' outputs instead of their
        matrices.

    Example:
        >>> is_linear_fusion(MeanFusion()), is_linear_fusion(ProdFusion())
        (True, False)
        >>> is_linear_fusion(ProjectedConcatFusion([4, 4], 2, bias=False))
        True
    """
    return fusion.is_linear


class HybridInterdependence(Interdependence):
    r"""Several interdependences, their matrices fused: ``A = F(A₁, …, A_k)``.

    .. math::
        \text{attribute:}\; Y = D\,F(A_1, \dots, A_k) \qquad
        \text{instance:}\; Y = F(A_1, \dots, A_k)^\top D

    where each :math:`A_i` comes from one part (a :class:`ParameterizedInterdependence`, a
    :class:`BilinearInterdependence` computed from ``x``, or another hybrid), ``F`` is any
    modern fusion acting on the last dimension of the matrices (element-wise: all
    :math:`A_i` of one shape; concatenations: the widths add up) and ``D`` is the data
    (``x`` by default). Data-free matrices are broadcast over the batch dimensions of
    data-dependent ones. tinyBIG's ``graph_bilinear`` heads, for example, are a bilinear
    part masked by a fixed graph through :class:`~interfuse.fusion.ProdFusion`.

    **Strategy.** ``'matrices'`` builds every :math:`A_i`, fuses them and applies the result
    (always correct). When ``F`` is linear (:func:`is_linear_fusion`: weighted sum, sum,
    mean, concatenation, projected concatenation without bias), ``'outputs'`` instead applies
    each part in its own cheapest (factored) way and fuses the outputs,
    :math:`F(D A_1, \dots, D A_k) = D\,F(A_1, \dots, A_k)` (for the instance axis the outputs
    are fused transposed), so no ``A`` is built. ``'auto'`` takes ``'outputs'`` for a linear
    fusion when its multiply-add count is lower, else ``'matrices'``.

    Args:
        parts: the interdependence modules, all with the same ``axis``; this module owns them.
        fusion: a :class:`~interfuse.fusion.Fusion` (owned), or a name or class for
            :func:`~interfuse.fusion.resolve_fusion` (``'mean'``, ``'prod'``, ``'concat'``,
            ...), built with ``fusion_options`` and, where it takes them, ``num_inputs=k`` and
            ``device``/``dtype``.
        strategy: ``'auto'``, ``'matrices'`` or ``'outputs'`` (linear fusions only).
        fusion_options: constructor options of the fusion when ``fusion`` is a name or class.
        device: device of a fusion built here (the parts keep theirs).
        dtype: dtype of a fusion built here.

    Shape:
        - x: ``(..., b, m)``, as every part accepts it.
        - data: what the fused ``A`` is applied to, as for the parts; defaults to ``x``.
        - mask: ``(k,)`` bool, the parts to include (passed to the fusion).
        - Output: ``(..., b, m'')`` (attribute axis) or ``(..., b'', m)`` (instance axis),
          ``m''``/``b''`` the fused width (:meth:`output_shape`).

    Example:
        >>> parts = [ParameterizedInterdependence(16, matrix="lowrank",
        ...                                       matrix_options={"rank": 2}),
        ...          ParameterizedInterdependence(16, matrix="hm",
        ...                                       matrix_options={"p": 4, "q": 4})]
        >>> mix = HybridInterdependence(parts, fusion="mean")
        >>> mix.num_parameters  # 64 + 32
        96
        >>> mix(torch.randn(8, 16)).shape
        torch.Size([8, 16])
        >>> HybridInterdependence(parts, fusion="concat")(torch.randn(8, 16)).shape
        torch.Size([8, 32])
    """

    def __init__(
        self,
        parts: Sequence[Interdependence],
        fusion: str | Fusion | type[Fusion] = "mean",
        strategy: str = "auto",
        fusion_options: dict[str, Any] | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        checked = _check_parts(parts)
        dtype = check_factory_dtype(dtype)
        super().__init__(checked[0].axis)
        self.parts = nn.ModuleList(checked)
        self.data_dependent = any(p.data_dependent for p in checked)
        self.fusion = _build_fusion(fusion, len(checked), fusion_options, device, dtype)
        self.strategy = resolve_choice("strategy", strategy, _STRATEGIES)
        self.linear_fusion = is_linear_fusion(self.fusion)
        if self.strategy == "outputs" and not self.linear_fusion:
            raise ValueError(
                f"strategy='outputs' needs a linear fusion (weighted sum, sum, mean, concat, "
                f"projected concat without bias; no input_dropout), got {self.fusion!r}; use "
                "strategy='matrices' or 'auto'"
            )

    @property
    def num_parts(self) -> int:
        """The number of parts ``k``."""
        return len(self.parts)

    def _parts(self) -> list[Interdependence]:
        return [p for p in self.parts if isinstance(p, Interdependence)]

    def reset_parameters(self) -> None:
        """Re-initialize every part and the fusion."""
        for part in self._parts():
            part.reset_parameters()
        self.fusion.reset_parameters()

    # -- shapes ---------------------------------------------------------------------------------
    def _widths(self, input_shape: Sequence[int], name: str = "input_shape") -> list[int]:
        """The fused dimension of each part's ``A`` (its output's mixed axis), validated."""
        widths = []
        for i, part in enumerate(self._parts()):
            try:
                shape = part.output_shape(input_shape, name=name)
            except ValueError as err:
                raise ValueError(f"parts[{i}] ({type(part).__name__}): {err}") from err
            widths.append(int(shape[-1] if self.axis == "attribute" else shape[-2]))
        return widths

    def _fused_width(self, widths: list[int]) -> int:
        try:
            return self.fusion.out_features(widths)
        except ValueError as err:
            raise ValueError(
                f"{type(self.fusion).__name__} cannot fuse the parts' matrices of widths "
                f"{widths}: {err}"
            ) from err

    def output_shape(self, input_shape: Sequence[int], *, name: str = "input_shape") -> torch.Size:
        """Shape of ``forward(x)`` for ``x`` of shape ``input_shape`` (validated).

        Example:
            >>> parts = [ParameterizedInterdependence(4, 3), ParameterizedInterdependence(4, 5)]
            >>> HybridInterdependence(parts, "concat").output_shape((2, 7, 4))
            torch.Size([2, 7, 8])
        """
        *lead, b, m = self._check_shape(input_shape)
        width = self._fused_width(self._widths(input_shape, name))
        if self.axis == "attribute":
            return torch.Size((*lead, b, width))
        return torch.Size((*lead, width, m))

    def out_features(self, in_features: int) -> int:
        """Width of the output's last dimension: the fused width (attribute axis) or
        ``in_features`` (instance axis)."""
        widths = [p.out_features(in_features) for p in self._parts()]
        if self.axis == "instance":
            return in_features
        return self._fused_width(widths)

    # -- A and its application ------------------------------------------------------------------
    def _check_mask(self, mask: Tensor | None) -> Tensor | None:
        if mask is None:
            return None
        if not isinstance(mask, Tensor) or mask.shape != (self.num_parts,):
            shape = tuple(mask.shape) if isinstance(mask, Tensor) else type(mask).__name__
            raise ValueError(
                f"mask must be a bool tensor of shape ({self.num_parts},), one flag per part, "
                f"got {shape}"
            )
        return mask

    def _check_x(self, x: object) -> Tensor:
        if x is None:
            raise TypeError("x is required: this HybridInterdependence has data-dependent parts")
        x = self._check_tensor("x", x)
        self._widths(x.shape, "x")
        return x

    def interdependence_matrix(self, x: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
        """The fused ``A = F(A₁, …, A_k)``; ``x`` is required when a part depends on the data.

        Args:
            x: the input ``(..., b, m)``.
            mask: ``(k,)`` bool, the parts to include.
        """
        if x is not None or self.data_dependent:
            x = self._check_x(x)
        mask = self._check_mask(mask)
        mats = _common_dtype([part.interdependence_matrix(x) for part in self._parts()])
        lead = torch.broadcast_shapes(*(a.shape[:-2] for a in mats))
        if len(lead) > 0:
            mats = [a.expand(*lead, *a.shape[-2:]) for a in mats]
        return self.fusion(mats, mask)

    def uses_outputs(self, x_shape: Sequence[int], data_shape: Sequence[int] | None = None) -> bool:
        """Whether ``forward`` fuses the parts' outputs (rather than their matrices)."""
        if self.strategy != "auto":
            return self.strategy == "outputs"
        if not self.linear_fusion:
            return False
        return self._outputs_flops(x_shape, data_shape) < self._matrices_flops(x_shape, data_shape)

    def forward(self, x: Tensor, data: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
        """``data @ A`` (attribute axis) or ``Aᵀ @ data`` (instance axis), ``A = F(A₁, …, A_k)``.

        Args:
            x: the input ``(..., b, m)`` the parts compute their matrices from.
            data: what the fused ``A`` is applied to; defaults to ``x``.
            mask: ``(k,)`` bool, the parts to include.
        """
        x = self._check_x(x)
        d = x if data is None else self._check_data(x, data)
        mask = self._check_mask(mask)
        if self.uses_outputs(x.shape, d.shape):
            outs = _common_dtype([self._apply_part(part, x, data) for part in self._parts()])
            # A part that ignores x returns data's leading shape, one that reads x the
            # broadcast of both: the fusion needs one shape.
            lead = torch.broadcast_shapes(*(y.shape[:-2] for y in outs))
            outs = [y.expand(*lead, *y.shape[-2:]) for y in outs]
            if self.axis == "attribute":
                return self.fusion(outs, mask)
            return self.fusion([y.transpose(-2, -1) for y in outs], mask).transpose(-2, -1)
        a = self.interdependence_matrix(x, mask)
        expected = x.shape[-1] if self.axis == "attribute" else x.shape[-2]
        if a.shape[-2] != expected:  # pragma: no cover - fusions act on the last dimension
            raise ValueError(
                f"{type(self.fusion).__name__} changed the rows of A to {a.shape[-2]}, "
                f"expected {expected}"
            )
        # Parts that ignore the data never see it, so no part has checked it.
        name = "x" if data is None else "data"
        check_operand(name, d, a, "the fused A of this HybridInterdependence")
        return self.apply_matrix(a, d)

    @staticmethod
    def _apply_part(part: Interdependence, x: Tensor, data: Tensor | None) -> Tensor:
        if part.data_dependent:
            return part(x, data)
        return part(x if data is None else data)

    # -- cost model -----------------------------------------------------------------------------
    def _fusion_flops(self, rows: int, widths: list[int]) -> int:
        """Rough multiply-adds of fusing ``rows`` rows of the given widths."""
        return rows * (sum(widths) + self.fusion.num_parameters)

    def _matrices_flops(self, x_shape: Sequence[int], data_shape: Sequence[int] | None) -> int:
        *lead_x, b, m = x_shape
        *lead_d, rows, cols = x_shape if data_shape is None else data_shape
        widths = self._widths(x_shape)
        batch = math.prod(lead_x) if self.data_dependent else 1
        batch_d = math.prod(torch.broadcast_shapes(torch.Size(lead_x), torch.Size(lead_d)))
        mixed = m if self.axis == "attribute" else b
        fused = self._fused_width(widths)
        build = sum(p.matrix_flops(x_shape) for p in self._parts())
        fuse = self._fusion_flops(batch * mixed, widths)
        apply = batch_d * (rows * m * fused if self.axis == "attribute" else fused * b * cols)
        return build + fuse + apply

    def _outputs_flops(self, x_shape: Sequence[int], data_shape: Sequence[int] | None) -> int:
        shape = tuple(x_shape if data_shape is None else data_shape)
        widths = self._widths(x_shape)
        outer = math.prod(shape[:-2]) * (shape[-2] if self.axis == "attribute" else shape[-1])
        parts = sum(p.forward_flops(x_shape, data_shape) for p in self._parts())
        return parts + self._fusion_flops(outer, widths)

    def matrix_flops(self, x_shape: Sequence[int]) -> int:
        """Rough multiply-adds of :meth:`interdependence_matrix` (parts and fusion)."""
        widths = self._widths(x_shape)
        *lead, b, m = x_shape
        batch = math.prod(lead) if self.data_dependent else 1
        mixed = m if self.axis == "attribute" else b
        build = sum(p.matrix_flops(x_shape) for p in self._parts())
        return build + self._fusion_flops(batch * mixed, widths)

    def forward_flops(self, x_shape: Sequence[int], data_shape: Sequence[int] | None = None) -> int:
        """Rough multiply-adds of ``forward`` with the strategy it picks."""
        if self.uses_outputs(x_shape, data_shape):
            return self._outputs_flops(x_shape, data_shape)
        return self._matrices_flops(x_shape, data_shape)

    # -- repr and config ------------------------------------------------------------------------
    def extra_repr(self) -> str:
        # A constructor call (the parts' axis follows from them, so it is not repeated).
        parts = ", ".join(f"{type(p).__name__}({p.extra_repr()})" for p in self.parts)
        fusion = f"{type(self.fusion).__name__}({self.fusion.extra_repr()})"
        return f"parts=[{parts}], fusion={fusion}, strategy={self.strategy!r}"

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments; parts and fusion are stored as nested configs."""
        return {"parts": list(self._parts()), "fusion": self.fusion, "strategy": self.strategy}


def _common_dtype(tensors: list[Tensor]) -> list[Tensor]:
    """Cast to the promoted dtype: under autocast, parts may return different precisions."""
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    return [t.to(dtype) for t in tensors]


def _check_parts(parts: object) -> list[Interdependence]:
    if isinstance(parts, (Interdependence, str, bytes)) or not isinstance(
        parts, (Sequence, nn.ModuleList)
    ):
        raise TypeError(
            f"parts must be a list of interdependence modules, got {type(parts).__name__}"
        )
    checked = list(parts)
    if not checked:
        raise ValueError("parts must hold at least one interdependence module, got none")
    for i, part in enumerate(checked):
        if not isinstance(part, Interdependence):
            raise TypeError(
                f"parts[{i}] must be an interfuse Interdependence module (Parameterized-, "
                f"Bilinear- or HybridInterdependence), got {type(part).__name__}"
            )
        if part.axis != checked[0].axis:
            raise ValueError(
                f"parts[{i}] has axis={part.axis!r} but parts[0] has axis={checked[0].axis!r}; "
                "all parts must mix the same axis"
            )
    return checked


def _build_fusion(
    fusion: object,
    k: int,
    options: object,
    device: torch.device | str | None,
    dtype: torch.dtype | None,
) -> Fusion:
    if options is not None and not isinstance(options, dict):
        raise TypeError(f"fusion_options must be a dict or None, got {options!r}")
    if isinstance(fusion, Fusion):
        if options:
            raise TypeError(
                f"fusion_options {sorted(options)} apply only when fusion is a name or a "
                f"class, not an instance ({type(fusion).__name__})"
            )
        expected = getattr(fusion, "num_inputs", None)
        if expected is not None and expected != k:
            raise ValueError(
                f"fusion {type(fusion).__name__} was built for num_inputs={expected} but there "
                f"are {k} parts; build it with num_inputs={k} (or pass its name)"
            )
        if device is not None or dtype is not None:
            fusion = fusion.to(device=device, dtype=dtype)
        return fusion
    if not isinstance(fusion, (str, type)):
        raise TypeError(f"fusion must be a name, a Fusion class or a Fusion, got {fusion!r}")
    cls = fusion_class(fusion)
    accepted = inspect.signature(cls).parameters
    kwargs = dict(options or {})
    if "num_inputs" in accepted and "num_inputs" not in kwargs:
        kwargs["num_inputs"] = k
    for key, value in (("device", device), ("dtype", dtype)):
        if key in accepted and value is not None:
            kwargs[key] = value
    try:
        return resolve_fusion(cls, **kwargs)
    except TypeError as err:
        raise TypeError(
            f"fusion={fusion!r} cannot be built from fusion_options={options!r}: {err}"
        ) from err
