r"""tinyBIG's ``tinybig.module.base_interdependence``: the base class :class:`interdependence`.

An interdependence function mixes the attributes (columns, :data:`ATTRIBUTE_TYPES`) or the
instances (rows, :data:`INSTANCE_TYPES`) of a batch ``X ∈ R^{b×m}`` through a matrix ``A``.
``'row'`` means the instance type and ``'column'`` the attribute type, as in tinyBIG's own
branches; tinyBIG 0.2.1 documented both names but rejected them.

The families live in :mod:`interfuse.tinybig.interdependence`; what differs from tinyBIG 0.2.1
(and why) is listed on the tinyBIG page of the documentation.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import Tensor

from interfuse._validation import check_positive_int
from interfuse.tinybig._base import TinybigFunction
from interfuse.tinybig.errors import ValueAssertionError, ValueAttributeError
from interfuse.tinybig.fabrication import check_operands

__all__ = [
    "ATTRIBUTE_TYPES",
    "INSTANCE_TYPES",
    "INTERDEPENDENCE_TYPES",
    "check_w",
    "interdependence",
    "with_config_args",
]


#: Names of the instance type (``A ∈ R^{b×b'}``, output ``Aᵀ X``); ``'row'`` is an alias.
INSTANCE_TYPES: tuple[str, ...] = ("instance_interdependence", "instance", "left", "row")
#: Names of the attribute type (``A ∈ R^{m×m'}``, output ``X A``); ``'column'`` is an alias.
ATTRIBUTE_TYPES: tuple[str, ...] = ("attribute_interdependence", "attribute", "right", "column")
#: Every accepted ``interdependence_type``.
INTERDEPENDENCE_TYPES: tuple[str, ...] = INSTANCE_TYPES + ATTRIBUTE_TYPES

Device = str | torch.device


def _got(x: object) -> object:
    """What an error says it got: a tensor's shape, else ``None`` or the type's name."""
    return tuple(x.shape) if isinstance(x, Tensor) else "None" if x is None else type(x).__name__


def _mm(a: Tensor, b: Tensor) -> Tensor:
    """``a @ b`` with tinyBIG's sparse support (``torch.sparse.mm`` when either is sparse)."""
    if a.is_sparse:
        return torch.sparse.mm(a, b)
    if b.is_sparse:
        return torch.sparse.mm(b.t(), a.t()).t()
    return a @ b


def _warn_unchanged(axis: str, dim: str) -> None:
    message = f"The interdependence_type is not about the {axis}, its {dim} dimension will not"
    warnings.warn(f"{message} be changed...", UserWarning, stacklevel=3)


class interdependence(TinybigFunction):
    r"""Base of tinyBIG's interdependence functions: ``forward`` applies ``calculate_A``.

    For data ``X ∈ R^{b×m}`` (or an expansion ``κ(X)`` passed as ``kappa_x``) the attribute
    type returns :math:`\kappa(\mathbf{X})\mathbf{A}` with ``A = calculate_A(X, w)`` of shape
    ``(m, m')``; the instance type returns :math:`\mathbf{A}^\top\kappa(\mathbf{X})` with
    ``A = calculate_A(Xᵀ, w)`` of shape ``(b, b')`` (subclasses receive the transposed batch, as
    in tinyBIG). ``A`` can be computed from the raw ``x`` and applied to an expansion
    ``kappa_x`` of it, as an RPN head does. The base class computes no matrix (``calculate_A``
    returns ``None``); use a subclass.

    Args:
        b: number of instances (rows of ``X``).
        m: number of attributes (columns of ``X``).
        name: the function's name.
        interdependence_type: one of :data:`INTERDEPENDENCE_TYPES`.
        require_data: whether ``forward`` needs ``x``.
        require_parameters: whether ``forward`` needs ``w``.
        preprocess_functions: applied to ``x`` by subclasses using data (postprocess: to ``A``);
            these and ``device`` as :class:`~interfuse.tinybig.TinybigFunction`.

    Shape:
        - ``x``: ``(b, m)``; ``kappa_x``: ``(b_any, m)`` (attribute) or ``(b, D)`` (instance).
        - output: ``(b_any, m')`` (attribute) or ``(b', D)`` (instance).

    Example:
        >>> f = tb.parameterized_interdependence(b=2, m=3, m_prime=2)
        >>> f(x=torch.ones(2, 3), w=torch.ones(1, f.calculate_l())).shape
        torch.Size([2, 2])
    """

    config_module = "interfuse.tinybig.interdependence"

    #: Whether ``A`` depends on ``x`` (a cached ``A`` is then reused only for calls without x).
    _A_uses_data: bool = True

    def __init__(
        self,
        b: int,
        m: int,
        name: str = "base_interdependency",
        interdependence_type: str = "attribute",
        require_data: bool = True,
        require_parameters: bool = False,
        preprocess_functions: object = None,
        postprocess_functions: object = None,
        preprocess_function_configs: object = None,
        postprocess_function_configs: object = None,
        device: Device = "cpu",
    ) -> None:
        pre_post = (preprocess_functions, postprocess_functions)
        configs = (preprocess_function_configs, postprocess_function_configs)
        super().__init__(name, *pre_post, *configs, device)
        self.A: Tensor | None = None
        self.interdependence_type = interdependence_type
        self.b = check_positive_int("b", b)
        self.m = check_positive_int("m", m)
        self.require_data = bool(require_data)
        self.require_parameters = bool(require_parameters)

    @property
    def interdependence_type(self) -> str:
        """The type as given (one of :data:`INTERDEPENDENCE_TYPES`); setting it validates."""
        return self._interdependence_type

    @interdependence_type.setter
    def interdependence_type(self, value: str) -> None:
        if not isinstance(value, str) or value not in INTERDEPENDENCE_TYPES:
            raise ValueError(
                f"interdependence_type must be one of {list(INTERDEPENDENCE_TYPES)} ('row' is the "
                f"instance type, 'column' the attribute type), got {value!r}"
            )
        self._interdependence_type = value
        self.A = None

    @property
    def is_instance(self) -> bool:
        """Whether the type mixes instances (``Aᵀ X``) rather than attributes (``X A``)."""
        return self._interdependence_type in INSTANCE_TYPES

    def get_A(self) -> Tensor | None:
        """The cached ``A`` (kept when neither data nor parameters are required), else warns and
        returns ``None``, as tinyBIG did."""
        if self.A is None:
            warnings.warn(
                "The A matrix is None: A is cached only when neither data nor parameters are "
                "required; call calculate_A(x, w) to compute it",
                UserWarning,
                stacklevel=2,
            )
        return self.A

    def get_b(self) -> int:
        """Number of instances ``b``."""
        return self.b

    def get_m(self) -> int:
        """Number of attributes ``m``."""
        return self.m

    def calculate_l(self) -> int:
        """Length of the flat ``w`` (0: the base class needs no parameters)."""
        return 0

    def calculate_b_prime(self, b: int | None = None) -> int:
        """Output rows ``b'`` (``b`` unchanged here; warns for the attribute type, as tinyBIG)."""
        if not self.is_instance:
            _warn_unchanged("instances", "b")
        return b if b is not None else self.b

    def calculate_m_prime(self, m: int | None = None) -> int:
        """Output columns ``m'`` (``m`` unchanged here; warns for the instance type, as tinyBIG)."""
        if self.is_instance:
            _warn_unchanged("attributes", "m")
        return m if m is not None else self.m

    def _expected_A_shape(self) -> tuple[int, int]:
        if self.is_instance:
            return self.b, self.calculate_b_prime()
        return self.m, self.calculate_m_prime()

    def check_A_shape_validity(self, A: Tensor | None) -> bool:
        """Check that ``A`` is ``(b, b')`` (instance type) or ``(m, m')`` (attribute type): a
        ``ValueError`` for ``None``, a ``ValueAssertionError`` for another shape."""
        if A is None:
            raise ValueError("A is None: compute it with calculate_A(x, w) first")
        expected = self._expected_A_shape()
        if _got(A) != expected:
            raise ValueAssertionError(
                f"A must have shape {expected} for the {self.interdependence_type!r} type "
                f"(b={self.b}, m={self.m}), got {_got(A)}"
            )
        return True

    def calculate_A(
        self,
        x: Tensor | None = None,
        w: Tensor | None = None,
        device: Device = "cpu",
        *args: Any,
        **kwargs: Any,
    ) -> Tensor | None:
        """The interdependence matrix of ``x`` and ``w`` (:meth:`_compute_A`), cached when
        neither is required; ``None`` on the base class, which computes none."""
        keep = self._cacheable and self.A is not None and w is None
        if keep and (not self._A_uses_data or x is None):
            return self.A
        A = self._compute_A(x, w, device)
        if A is not None and self._cacheable:
            self.A = A
        return A

    def _compute_A(self, x: Tensor | None, w: Tensor | None, device: Device) -> Tensor | None:
        """Hook: the matrix (subclasses); errors name the class and the argument at fault."""
        return None

    @property
    def _cacheable(self) -> bool:
        return not self.require_data and not self.require_parameters

    def _apply(self, fn: Any, recurse: bool = True) -> interdependence:
        self.A = None  # a cached A is not moved by .to(); recompute it on the next call
        return super()._apply(fn, recurse)

    def _check_A(self, A: Tensor) -> Tensor:
        expected = self._expected_A_shape()
        if _got(A) != expected:
            raise ValueAssertionError(
                f"{type(self).__name__}: A has shape {_got(A)} but the "
                f"{self.interdependence_type!r} type expects {expected} (did a postprocess "
                "function change its shape?)"
            )
        return A

    def _has_postprocess(self) -> bool:
        return bool(self.postprocess_functions)

    def forward(
        self,
        x: Tensor | None = None,
        w: Tensor | None = None,
        kappa_x: Tensor | None = None,
        device: Device = "cpu",
        *args: Any,
        **kwargs: Any,
    ) -> Tensor:
        """Attribute type: ``data @ A``; instance type: ``Aᵀ @ data``, where ``data`` is
        ``kappa_x`` when given, else ``x``; ``A`` is always computed from ``x``."""
        name = type(self).__name__
        if x is not None and (not isinstance(x, Tensor) or x.ndim != 2):
            raise ValueAssertionError(f"{name}: x must be a 2-D tensor (b, m), got {_got(x)}")
        if self.require_data and x is None:
            raise ValueAssertionError(f"{name}: x is required (require_data=True), got x=None")
        if self.require_parameters:
            check_w(w, name, self.calculate_l())
        data = kappa_x if kappa_x is not None else x
        if data is None:
            raise ValueAttributeError(
                f"{name}: nothing to apply the interdependence to: pass x or kappa_x"
            )
        if not isinstance(data, Tensor) or data.ndim != 2:
            raise ValueAssertionError(f"{name}: kappa_x must be a 2-D tensor, got {_got(data)}")
        label = "kappa_x" if kappa_x is not None else "x"
        if self.is_instance:
            x_in = None if x is None else x.t()
            return self._rows_times_A(data.t(), x_in, w, device, label).t()
        return self._rows_times_A(data, x, w, device, label)

    def _rows_times_A(
        self, rows: Tensor, x_in: Tensor | None, w: Tensor | None, device: Device, data: str
    ) -> Tensor:
        A = self.calculate_A(x_in, w, device)
        if A is None:
            raise ValueAssertionError(
                f"{type(self).__name__}.calculate_A returned None: the base interdependence "
                "class computes no matrix; use a subclass"
            )
        self._check_rows(rows, A.size(0))
        check_operands(rows, A, name=data, ref_name=f"{type(self).__name__}'s A")
        return _mm(rows, A)

    def _check_rows(self, rows: Tensor, expected: int) -> None:
        if rows.size(-1) == expected:
            return
        if self.is_instance:
            raise ValueAssertionError(
                f"{type(self).__name__}: the data has {rows.size(-1)} rows (instances) but A "
                f"mixes {expected}; an instance-type interdependence needs batches of exactly "
                f"{expected} rows"
            )
        raise ValueAssertionError(
            f"{type(self).__name__}: the data has {rows.size(-1)} columns (attributes) but A "
            f"expects {expected}"
        )

    def to_config(self) -> dict[str, Any]:
        """The constructor arguments as a config, with the current ``b``, ``m`` and type."""
        config = super().to_config()
        params = config["function_parameters"]
        params["b"] = self.b
        params["m"] = self.m
        params["interdependence_type"] = self.interdependence_type
        return config

    def _set_shape(self, b: int, m: int, interdependence_type: str) -> None:
        self.b = check_positive_int("b", b)
        self.m = check_positive_int("m", m)
        self.interdependence_type = interdependence_type
        self._shape_changed()

    def _shape_changed(self) -> None:
        """Hook: re-validate derived state after ``_set_shape`` (a hybrid's rebinding)."""


def check_w(w: object, name: str, n_w: int) -> Tensor:
    """``w``, a tensor of 1 or 2 dimensions holding ``n_w`` parameters, else a
    ``ValueAssertionError`` naming ``name``."""
    if w is None:
        raise ValueAssertionError(
            f"{name}: w is required (require_parameters=True): pass l={n_w} parameters as "
            f"shape (1, {n_w}) or ({n_w},), got w=None"
        )
    if not isinstance(w, Tensor) or w.ndim not in (1, 2) or w.numel() != n_w:
        raise ValueAssertionError(
            f"{name}: w must hold l={n_w} parameters as shape (1, {n_w}) or ({n_w},), got {_got(w)}"
        )
    return w


def with_config_args(function: interdependence, args: dict[str, Any]) -> dict[str, Any]:
    """``interdependence.to_config`` of ``function`` as if it had recorded ``args``."""
    saved = function._config_args
    function._config_args = args
    try:
        return interdependence.to_config(function)
    finally:
        function._config_args = saved
