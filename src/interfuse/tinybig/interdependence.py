r"""tinyBIG 0.2.1's interdependence functions, name for name, on the interfuse core.

An interdependence function mixes either the attributes (columns) or the instances (rows) of a
data batch :math:`\mathbf{X} \in R^{b \times m}` through a matrix :math:`\mathbf{A}`:

* **attribute** type (``'attribute'``, ``'attribute_interdependence'``, ``'right'``,
  ``'column'``): :math:`\mathbf{A} \in R^{m \times m'}`, output :math:`\mathbf{X}\mathbf{A}`
  of shape ``(b, m')``;
* **instance** type (``'instance'``, ``'instance_interdependence'``, ``'left'``, ``'row'``):
  :math:`\mathbf{A} \in R^{b \times b'}`, output :math:`\mathbf{A}^\top\mathbf{X}` of shape
  ``(b', m)``.

``'row'`` means the instance type and ``'column'`` the attribute type, as in tinyBIG's own
branches (rows of ``X`` are instances, columns are attributes); tinyBIG 0.2.1 documented both
names but rejected them. The matrix can be computed from the raw ``x`` and applied to an
expansion ``kappa_x`` of it (``forward(x, w, kappa_x=κ(x))``), as an RPN head does.

| class | A | ``calculate_l()`` with ``(d, d')`` |
|---|---|---|
| ``parameterized_interdependence`` | ``reshape(w)`` | ``d·d'`` |
| ``lowrank_…`` | ``U V`` | ``r(d + d')`` |
| ``hm_…`` | reshaped ``outer(a, b)`` (or ``a ⊗ b``) | ``pq + dd'/(pq)`` |
| ``lphm_…`` | as hm with ``b = S T`` | ``pq + r(d/p + d'/q)`` |
| ``dual_lphm_…`` | as hm with ``a = P Q``, ``b = S T`` | ``r(p + q + d/p + d'/q)`` |
| ``random_matrix_adaption_…`` | ``diag(λ₁) R_A diag(λ₂) R_Bᵀ`` | ``d + r`` |

with ``(d, d') = (m, m')`` for the attribute type and ``(b, b')`` for the instance type. The
``parameterized_bilinear_*`` classes compute ``A = xᵀ W x`` with the same structures for the
square ``W`` (side ``b`` for the attribute type, ``m`` for the instance type);
:class:`parameterized_rpn_interdependence` computes ``A = κ(Xᵀ) ψ(w)ᵀ`` (attribute type) or
``κ(X) ψ(w)ᵀ`` (instance type) from any data transformation κ and parameter fabrication ψ;
:class:`hybrid_interdependence` fuses the matrices of several interdependences with any fusion
of :mod:`interfuse.tinybig.fusion`. The flat layouts of ``w`` are tinyBIG's
(:mod:`interfuse.tinybig.fabrication`), so its checkpoints give the same numbers; products run
in factored form where the structure allows.

Deliberate differences from tinyBIG 0.2.1 (everything else is kept, including the instance
type's fixed batch size ``b`` and the bilinear attribute type's ``W`` of side ``b``):

* ``'row'`` / ``'column'`` are accepted (see above); a bad type names the argument.
* A missing ``x`` / ``w`` or a shape mismatch raises a clear message in a class deriving from
  ``ValueError`` and the original's type (:mod:`interfuse.tinybig.errors`): where tinyBIG
  crashed with ``AttributeError`` (``w=None`` in ``calculate_A``, ``x=None`` in ``forward``),
  the error is a :class:`~interfuse.tinybig.errors.ValueAttributeError`; where it asserted, a
  :class:`~interfuse.tinybig.errors.ValueAssertionError`; where a matmul failed, a
  :class:`~interfuse.tinybig.errors.ValueRuntimeError`.
* ``w`` may also be 1-D ``(l,)`` (tinyBIG required 2-D).
* No stale matrix: ``A`` is cached only when neither data nor parameters are required, the
  cache is reused only by calls that pass no ``w`` (and, for data-dependent classes, no ``x``),
  and ``.to()`` drops it. tinyBIG froze the first ``A`` forever.
* ``forward`` works without ``x`` when ``require_data=False`` (it applies ``A`` to
  ``kappa_x``); tinyBIG dereferenced ``x`` anyway.
* ``to_config()`` keeps ``interdependence_type`` (and the current ``b``, ``m``) through a round
  trip; tinyBIG's configs turned instance-type functions into attribute-type ones.
* The random-matrix-adaption classes keep ``R_A`` / ``R_B`` as registered buffers (in the
  ``state_dict``, moved by ``.to()``), given as ``random_factors=(R_A, R_B)`` or drawn once from
  ``seed`` with a CPU generator.
* The hm family takes ``kronecker=True`` for the documented ``A ⊗ B`` (default: tinyBIG's
  reshaped outer product, spec §4).
* :class:`hybrid_interdependence` works for the attribute type too (tinyBIG's
  ``calculate_m_prime`` raised ``TypeError``), and its ``b'`` / ``m'`` fuse only the mixed
  axis. It rebinds the given parts to its ``b``, ``m`` and type as tinyBIG did, but then
  re-checks them (hm divisibility), redraws random factors whose shape changed, and lets a
  ``b'`` / ``m'`` that was left at its default follow the new ``b`` / ``m``.
* ``device`` (constructor and ``forward``) is passed to pre/post-processing functions and used
  for buffers; tensors are not moved to it (tinyBIG moved the reshaped ``A`` to ``device``).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from interfuse.tinybig._base import TinybigFunction, encode_functions
from interfuse.tinybig.errors import (
    ValueAssertionError,
    ValueAttributeError,
    ValueRuntimeError,
)
from interfuse.tinybig.fabrication import Fabrication, check_operands, given_random_factors

__all__ = [
    "ATTRIBUTE_TYPES",
    "INSTANCE_TYPES",
    "INTERDEPENDENCE_TYPES",
    "DataTransformation",
    "ParameterFabrication",
    "dual_lphm_parameterized_bilinear_interdependence",
    "dual_lphm_parameterized_interdependence",
    "hm_parameterized_bilinear_interdependence",
    "hm_parameterized_interdependence",
    "hybrid_interdependence",
    "interdependence",
    "lowrank_parameterized_bilinear_interdependence",
    "lowrank_parameterized_interdependence",
    "lphm_parameterized_bilinear_interdependence",
    "lphm_parameterized_interdependence",
    "parameterized_bilinear_interdependence",
    "parameterized_interdependence",
    "parameterized_rpn_interdependence",
    "random_matrix_adaption_parameterized_bilinear_interdependence",
    "random_matrix_adaption_parameterized_interdependence",
]

#: Names of the instance type (``A ∈ R^{b×b'}``, output ``Aᵀ X``); ``'row'`` is an alias.
INSTANCE_TYPES: tuple[str, ...] = ("instance_interdependence", "instance", "left", "row")
#: Names of the attribute type (``A ∈ R^{m×m'}``, output ``X A``); ``'column'`` is an alias.
ATTRIBUTE_TYPES: tuple[str, ...] = ("attribute_interdependence", "attribute", "right", "column")
#: Every accepted ``interdependence_type``.
INTERDEPENDENCE_TYPES: tuple[str, ...] = INSTANCE_TYPES + ATTRIBUTE_TYPES

Device = str | torch.device
RandomFactors = Sequence[Tensor] | Mapping[str, Tensor]


def _shape(t: Tensor) -> tuple[int, ...]:
    return tuple(t.shape)


def _mm(a: Tensor, b: Tensor) -> Tensor:
    """``a @ b`` with tinyBIG's sparse support (``torch.sparse.mm`` when either is sparse)."""
    if a.is_sparse:
        return torch.sparse.mm(a, b)
    if b.is_sparse:
        return torch.sparse.mm(b.t(), a.t()).t()
    return a @ b


class interdependence(TinybigFunction):
    r"""Base of tinyBIG's interdependence functions: ``forward`` applies ``calculate_A``.

    For data ``X ∈ R^{b×m}`` (or an expansion ``κ(X)`` passed as ``kappa_x``) the attribute
    type returns :math:`\kappa(\mathbf{X})\mathbf{A}` with ``A = calculate_A(X, w)`` of shape
    ``(m, m')``; the instance type returns :math:`\mathbf{A}^\top\kappa(\mathbf{X})` with
    ``A = calculate_A(Xᵀ, w)`` of shape ``(b, b')`` (subclasses receive the transposed batch, as
    in tinyBIG). The base class computes no matrix (``calculate_A`` returns ``None``); use a
    subclass. See the module docstring for the type names (``'row'`` ≡ instance,
    ``'column'`` ≡ attribute) and the differences from tinyBIG.

    Args:
        b: number of instances (rows of ``X``).
        m: number of attributes (columns of ``X``).
        name: the function's name.
        interdependence_type: one of :data:`INTERDEPENDENCE_TYPES`.
        require_data: whether ``forward`` needs ``x``.
        require_parameters: whether ``forward`` needs ``w``.
        preprocess_functions: applied to ``x`` by subclasses that use data (see
            :func:`interfuse.tinybig._base.resolve_functions`).
        postprocess_functions: applied to ``A`` by subclasses.
        preprocess_function_configs: config form of ``preprocess_functions``.
        postprocess_function_configs: config form of ``postprocess_functions``.
        device: passed to pre/post-processing functions and used for buffers.

    Shape:
        - ``x``: ``(b, m)``; ``kappa_x``: ``(b_any, m)`` (attribute) or ``(b, D)`` (instance).
        - output: ``(b_any, m')`` (attribute) or ``(b', D)`` (instance).

    Example:
        >>> f = parameterized_interdependence(b=2, m=3, m_prime=2)
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
        super().__init__(
            name=name,
            preprocess_functions=preprocess_functions,
            postprocess_functions=postprocess_functions,
            preprocess_function_configs=preprocess_function_configs,
            postprocess_function_configs=postprocess_function_configs,
            device=device,
        )
        self.A: Tensor | None = None
        self.interdependence_type = interdependence_type
        self.b = _check_dim(b, "b")
        self.m = _check_dim(m, "m")
        self.require_data = bool(require_data)
        self.require_parameters = bool(require_parameters)

    # -- the type ---------------------------------------------------------------------------------
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

    # -- getters ----------------------------------------------------------------------------------
    def get_A(self) -> Tensor | None:
        """The cached ``A`` (only kept when neither data nor parameters are required).

        Warns and returns ``None`` when nothing is cached, as tinyBIG did.
        """
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

    # -- sizes ------------------------------------------------------------------------------------
    def calculate_l(self) -> int:
        """Length of the flat ``w`` (0: the base class needs no parameters)."""
        return 0

    def calculate_b_prime(self, b: int | None = None) -> int:
        """Output rows ``b'`` (``b`` unchanged here; warns for the attribute type, as tinyBIG)."""
        if not self.is_instance:
            warnings.warn(
                "The interdependence_type is not about the instances, its b dimension will not "
                "be changed...",
                UserWarning,
                stacklevel=2,
            )
        return b if b is not None else self.b

    def calculate_m_prime(self, m: int | None = None) -> int:
        """Output columns ``m'`` (``m`` unchanged here; warns for the instance type, as tinyBIG)."""
        if self.is_instance:
            warnings.warn(
                "The interdependence_type is not about the attributes, its m dimension will not "
                "be changed...",
                UserWarning,
                stacklevel=2,
            )
        return m if m is not None else self.m

    def _expected_A_shape(self) -> tuple[int, int]:
        if self.is_instance:
            return self.b, self.calculate_b_prime()
        return self.m, self.calculate_m_prime()

    def check_A_shape_validity(self, A: Tensor | None) -> bool:
        """Check that ``A`` is ``(b, b')`` (instance type) or ``(m, m')`` (attribute type).

        Raises:
            ValueError: ``A`` is ``None``.
            ValueAssertionError: ``A`` has another shape.
        """
        if A is None:
            raise ValueError("A is None: compute it with calculate_A(x, w) first")
        expected = self._expected_A_shape()
        if _shape(A) != expected:
            raise ValueAssertionError(
                f"A must have shape {expected} for the {self.interdependence_type!r} type "
                f"(b={self.b}, m={self.m}), got {_shape(A)}"
            )
        return True

    # -- the matrix -------------------------------------------------------------------------------
    def calculate_A(
        self, x: Tensor | None = None, w: Tensor | None = None, device: Device = "cpu"
    ) -> Tensor | None:
        """The interdependence matrix (``None`` on the base class, which computes none)."""
        return None

    @property
    def _cacheable(self) -> bool:
        return not self.require_data and not self.require_parameters

    def _cached(self, x: Tensor | None, w: Tensor | None) -> Tensor | None:
        if not self._cacheable or self.A is None or w is not None:
            return None
        if self._A_uses_data and x is not None:
            return None
        return self.A

    def _store(self, A: Tensor) -> Tensor:
        if self._cacheable:
            self.A = A
        return A

    def _apply(self, fn: Any, recurse: bool = True) -> interdependence:
        self.A = None  # a cached A is not moved by .to(); recompute it on the next call
        return super()._apply(fn, recurse)

    def _check_A(self, A: Tensor) -> Tensor:
        expected = self._expected_A_shape()
        if _shape(A) != expected:
            raise ValueAssertionError(
                f"{type(self).__name__}: A has shape {_shape(A)} but the "
                f"{self.interdependence_type!r} type expects {expected} (did a postprocess "
                "function change its shape?)"
            )
        return A

    def _has_postprocess(self) -> bool:
        return bool(self.postprocess_functions)

    # -- forward ----------------------------------------------------------------------------------
    def forward(
        self,
        x: Tensor | None = None,
        w: Tensor | None = None,
        kappa_x: Tensor | None = None,
        device: Device = "cpu",
    ) -> Tensor:
        """Attribute type: ``data @ A``; instance type: ``Aᵀ @ data``.

        ``data`` is ``kappa_x`` when given, else ``x``; ``A`` is always computed from ``x``.

        Raises:
            ValueAssertionError: a required ``x`` / ``w`` is missing or has the wrong shape.
            ValueAttributeError: neither ``x`` nor ``kappa_x`` is given.
        """
        name = type(self).__name__
        if x is not None and (not isinstance(x, Tensor) or x.ndim != 2):
            got = _shape(x) if isinstance(x, Tensor) else type(x).__name__
            raise ValueAssertionError(f"{name}: x must be a 2-D tensor (b, m), got {got}")
        if self.require_data and x is None:
            raise ValueAssertionError(f"{name}: x is required (require_data=True), got x=None")
        if self.require_parameters:
            _check_w_present(w, name, self.calculate_l())
        data = kappa_x if kappa_x is not None else x
        if data is None:
            raise ValueAttributeError(
                f"{name}: nothing to apply the interdependence to: pass x or kappa_x"
            )
        if not isinstance(data, Tensor) or data.ndim != 2:
            got = _shape(data) if isinstance(data, Tensor) else type(data).__name__
            raise ValueAssertionError(f"{name}: kappa_x must be a 2-D tensor, got {got}")
        label = "kappa_x" if kappa_x is not None else "x"
        if self.is_instance:
            x_in = None if x is None else x.t()
            return self._rows_times_A(data.t(), x_in, w, device, label).t()
        return self._rows_times_A(data, x, w, device, label)

    def _rows_times_A(
        self, rows: Tensor, x_in: Tensor | None, w: Tensor | None, device: Device, data: str
    ) -> Tensor:
        """``rows @ A`` (``rows`` is the data, named ``data``, transposed for the instance type)."""
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

    # -- configs ----------------------------------------------------------------------------------
    def to_config(self) -> dict[str, Any]:
        """The constructor arguments as a config, with the current ``b``, ``m`` and type."""
        config = super().to_config()
        params = config["function_parameters"]
        params["b"] = self.b
        params["m"] = self.m
        params["interdependence_type"] = self.interdependence_type
        return config

    def _set_shape(self, b: int, m: int, interdependence_type: str) -> None:
        """Rebind ``b``, ``m`` and the type (what :class:`hybrid_interdependence` does)."""
        self.b = _check_dim(b, "b")
        self.m = _check_dim(m, "m")
        self.interdependence_type = interdependence_type
        self._shape_changed()

    def _shape_changed(self) -> None:
        """Hook: re-validate derived state after :meth:`_set_shape`."""


def _check_dim(value: object, argument: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{argument} must be a positive int, got {value!r}")
    return value


def _check_optional_dim(value: object, argument: str) -> int | None:
    return None if value is None else _check_dim(value, argument)


def _check_w_present(w: object, name: str, n_w: int) -> Tensor:
    if w is None:
        raise ValueAssertionError(
            f"{name}: w is required (require_parameters=True): pass l={n_w} parameters as "
            f"shape (1, {n_w}) or ({n_w},), got w=None"
        )
    if not isinstance(w, Tensor) or w.ndim not in (1, 2):
        got = _shape(w) if isinstance(w, Tensor) else type(w).__name__
        raise ValueAssertionError(
            f"{name}: w must be a tensor of shape (1, {n_w}) or ({n_w},), got {got}"
        )
    return w


def _check_w_numel(w: Tensor, name: str, n_w: int) -> Tensor:
    if w.numel() != n_w:
        raise ValueAssertionError(
            f"{name}: w must hold l={n_w} parameters as shape (1, {n_w}) or ({n_w},), "
            f"got shape {_shape(w)}"
        )
    return w


# -- structure helpers -----------------------------------------------------------------------------


class _RandomMixin:
    """Registers ``R_A (d, r)`` and ``R_B (d', r)`` as buffers: given, or drawn from ``seed``."""

    R_A: Tensor
    R_B: Tensor
    r: int
    seed: int

    def _init_random(
        self: Any, d: int, d_prime: int, random_factors: RandomFactors | None, device: Device
    ) -> None:
        r = self.r
        if random_factors is not None:
            ra, rb = given_random_factors(random_factors, d, d_prime, r, device)
        else:
            ra, rb = _draw_random(d, d_prime, r, self.seed)
        self.register_buffer("R_A", ra.to(device))
        self.register_buffer("R_B", rb.to(device))

    def _redraw_if_needed(self: Any, d: int, d_prime: int) -> None:
        r = self.r
        if _shape(self.R_A) == (d, r) and _shape(self.R_B) == (d_prime, r):
            return
        ra, rb = _draw_random(d, d_prime, r, self.seed)
        self.R_A = ra.to(self.R_A.device, self.R_A.dtype)
        self.R_B = rb.to(self.R_B.device, self.R_B.dtype)


def _draw_random(d: int, d_prime: int, r: int, seed: int) -> tuple[Tensor, Tensor]:
    generator = torch.Generator(device="cpu").manual_seed(seed)
    return torch.randn(d, r, generator=generator), torch.randn(d_prime, r, generator=generator)


def _check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {seed!r}")
    return seed


def _positive(value: object, argument: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{argument} must be a positive int, got {value!r}")
    return value


def _hm_fabrication(kind: str, p: object, q: object, r: object, kronecker: bool) -> Fabrication:
    p_ = _positive(p, "p")
    q_ = p_ if q is None else _positive(q, "q")
    r_ = None if kind == "hm" else _positive(r, "r")
    return Fabrication(kind, r=r_, p=p_, q=q_, kronecker=bool(kronecker))


def _rank_fabrication(kind: str, r: object) -> Fabrication:
    return Fabrication(kind, r=_positive(r, "r"))


class _PrimesMixin:
    """``b'`` / ``m'`` of the classes that change the mixed axis (parameterized and rpn)."""

    b: int
    m: int
    b_prime: int
    m_prime: int
    _primes: tuple[int | None, int | None]
    is_instance: bool

    def _default_primes(self) -> None:
        """``b'`` / ``m'`` as given, else ``b`` / ``m`` (following a rebinding)."""
        b_prime, m_prime = self._primes
        self.b_prime = b_prime if b_prime is not None else self.b
        self.m_prime = m_prime if m_prime is not None else self.m

    def calculate_b_prime(self, b: int | None = None) -> int:
        """``b'`` for the instance type; ``b`` (or ``self.b``) for the attribute type."""
        if self.is_instance:
            return self.b_prime
        return b if b is not None else self.b

    def calculate_m_prime(self, m: int | None = None) -> int:
        """``m'`` for the attribute type; ``m`` (or ``self.m``) for the instance type."""
        if not self.is_instance:
            return self.m_prime
        return m if m is not None else self.m


# -- parameterized_interdependence ----------------------------------------------------------------


class parameterized_interdependence(_PrimesMixin, interdependence):
    r"""Data-free interdependence: ``A`` is ``w`` reshaped (or fabricated) to ``(d, d')``.

    .. math::
        \xi(\mathbf{w}) = \text{reshape}(\mathbf{w}) = \mathbf{A} \in R^{d \times d'},
        \qquad l = d \cdot d',

    with ``(d, d') = (m, m')`` for the attribute type (output ``X A``, any batch size) and
    ``(b, b')`` for the instance type (output ``Aᵀ X``; the batch must have exactly ``b`` rows,
    as in tinyBIG). ``A[i, j] = w[i·d' + j]``. ``forward`` applies ``w`` without building
    ``A`` where the structure allows; ``calculate_A`` returns the matrix.

    Args:
        b: number of instances.
        m: number of attributes.
        b_prime: output instances ``b'`` of the instance type (default ``b``).
        m_prime: output attributes ``m'`` of the attribute type (default ``m``).
        interdependence_type: one of :data:`INTERDEPENDENCE_TYPES`.
        name: the function's name.
        require_parameters: whether ``forward`` needs ``w``.
        require_data: whether ``forward`` needs ``x``.
        device: see :class:`interdependence`.
        preprocess_functions: see :class:`interdependence` (unused: ``A`` ignores ``x``).
        postprocess_functions: applied to ``A``.
        preprocess_function_configs: see :class:`interdependence`.
        postprocess_function_configs: see :class:`interdependence`.

    Shape:
        - ``w``: ``(1, l)`` or ``(l,)``.
        - ``x``: ``(b_any, m)`` (attribute) or ``(b, m)`` (instance); ``kappa_x`` likewise with
          any width for the instance type.
        - output: ``(b_any, m')`` or ``(b', m)``; ``calculate_A``: ``(m, m')`` or ``(b, b')``.

    Example:
        >>> f = parameterized_interdependence(b=5, m=3, m_prime=4)
        >>> f.calculate_l()
        12
        >>> x = torch.arange(15.0).view(5, 3)
        >>> f(x=x, w=torch.arange(12.0).view(1, 12))[0]
        tensor([20., 23., 26., 29.])
    """

    _A_uses_data = False
    parameter_fabrication: Fabrication | None

    def __init__(
        self,
        b: int,
        m: int,
        b_prime: int | None = None,
        m_prime: int | None = None,
        interdependence_type: str = "attribute",
        name: str = "parameterized_interdependence",
        require_parameters: bool = True,
        require_data: bool = False,
        device: Device = "cpu",
        *,
        preprocess_functions: object = None,
        postprocess_functions: object = None,
        preprocess_function_configs: object = None,
        postprocess_function_configs: object = None,
    ) -> None:
        super().__init__(
            b=b,
            m=m,
            name=name,
            interdependence_type=interdependence_type,
            require_data=require_data,
            require_parameters=require_parameters,
            preprocess_functions=preprocess_functions,
            postprocess_functions=postprocess_functions,
            preprocess_function_configs=preprocess_function_configs,
            postprocess_function_configs=postprocess_function_configs,
            device=device,
        )
        self._primes = (
            _check_optional_dim(b_prime, "b_prime"),
            _check_optional_dim(m_prime, "m_prime"),
        )
        self._default_primes()
        self.parameter_fabrication = None
        self._fab = Fabrication("reshape")

    # sizes
    def _dims(self) -> tuple[int, int]:
        """``(d, d')``: the shape of ``A``."""
        if self.is_instance:
            return self.b, self.calculate_b_prime()
        return self.m, self.calculate_m_prime()

    def _dim_names(self) -> tuple[str, str]:
        """The constructor arguments behind :meth:`_dims`, for error messages."""
        return ("b", "b_prime") if self.is_instance else ("m", "m_prime")

    def _check_fab_shape(self) -> None:
        """``p`` must divide ``d`` and ``q`` must divide ``d'`` (hm family; no-op otherwise)."""
        self._fab.check_shape(*self._dims(), names=self._dim_names(), owner=type(self).__name__)

    def calculate_l(self) -> int:
        """Length of the flat ``w`` (module table)."""
        d, d_prime = self._dims()
        return self._fab.calculate_l(d, d_prime)

    def _random_factors(self) -> tuple[Tensor, Tensor] | None:
        return None

    def _require_w(self, w: Tensor | None) -> Tensor:
        name = type(self).__name__
        n_w = self.calculate_l()
        if w is None:
            raise ValueAttributeError(
                f"{name}: w is required to compute A: pass l={n_w} parameters as shape "
                f"(1, {n_w}) or ({n_w},), got w=None"
            )
        return _check_w_numel(_check_w_present(w, name, n_w), name, n_w)

    def calculate_A(
        self, x: Tensor | None = None, w: Tensor | None = None, device: Device = "cpu"
    ) -> Tensor:
        """``A`` of shape ``(d, d')`` from ``w`` (``x`` is ignored).

        Raises:
            ValueAttributeError: ``w`` is ``None``.
            ValueAssertionError: ``w`` does not hold ``l`` parameters.
        """
        cached = self._cached(x, w)
        if cached is not None:
            return cached
        d, d_prime = self._dims()
        A = self._fab.matrix(self._require_w(w), d, d_prime, self._random_factors())
        A = self._check_A(self.post_process(A, device))
        return self._store(A)

    def _rows_times_A(
        self, rows: Tensor, x_in: Tensor | None, w: Tensor | None, device: Device, data: str
    ) -> Tensor:
        if self._cacheable or self._has_postprocess() or rows.is_sparse:
            return super()._rows_times_A(rows, x_in, w, device, data)
        d, d_prime = self._dims()
        w = self._require_w(w)
        self._check_rows(rows, d)
        return self._fab.apply(
            rows, w, d, d_prime, transpose=True, random_factors=self._random_factors(), name=data
        )

    def _shape_changed(self) -> None:
        self._default_primes()
        self._check_fab_shape()


class lowrank_parameterized_interdependence(parameterized_interdependence):
    r"""Low-rank parameterized interdependence: ``A = U V``.

    .. math::
        \mathbf{A} = \mathbf{U}\mathbf{V} \in R^{d \times d'}, \quad
        \mathbf{U} \in R^{d \times r}, \mathbf{V} \in R^{r \times d'}, \qquad l = r(d + d'),

    with ``U = w[:r·d].view(d, r)`` and ``V = w[r·d:].view(r, d')`` (tinyBIG's layout). Applied
    factored: ``(X U) V``.

    Args:
        r: the rank.
        name: the function's name.
        **kwargs: the arguments of :class:`parameterized_interdependence` (``b`` and ``m``
            by keyword).

    Shape:
        As :class:`parameterized_interdependence`.

    Example:
        >>> f = lowrank_parameterized_interdependence(b=5, m=3, m_prime=4, r=2)
        >>> f.calculate_l()
        14
        >>> f.calculate_A(w=torch.arange(14.0).view(1, 14))[0]
        tensor([10., 11., 12., 13.])
    """

    def __init__(
        self, r: int = 2, name: str = "lowrank_parameterized_interdependence", **kwargs: Any
    ) -> None:
        super().__init__(name=name, **kwargs)
        self._fab = _rank_fabrication("lowrank", r)
        self.r = r
        self.parameter_fabrication = self._fab


class hm_parameterized_interdependence(parameterized_interdependence):
    r"""Hypercomplex-multiplication interdependence: ``A`` from two small factors.

    With ``s = d/p`` and ``t = d'/q``, ``a = w[:pq]`` and ``b = w[pq:]``:

    .. math::
        \mathbf{A} = \text{reshape}(\mathbf{a} \otimes_{outer} \mathbf{b}) \text{ (default)}
        \quad\text{or}\quad
        \mathbf{A} = \mathbf{a}_{p \times q} \otimes \mathbf{b}_{s \times t}
        \text{ (kronecker=True)}, \qquad l = pq + st.

    The default reproduces tinyBIG 0.2.1, which builds a row-major reshape of the outer product
    of the two flat vectors (rank 1); it equals the Kronecker product only when ``q = 1`` or
    ``p = d``. ``kronecker=True`` gives the documented ``A ⊗ B`` on the same ``w`` layout,
    applied factored.

    Args:
        p: rows of the first factor; must divide ``d``.
        q: columns of the first factor (default ``p``); must divide ``d'``.
        name: the function's name.
        kronecker: use the true Kronecker product.
        **kwargs: the arguments of :class:`parameterized_interdependence`.

    Shape:
        As :class:`parameterized_interdependence`.

    Example:
        >>> f = hm_parameterized_interdependence(b=3, m=4, m_prime=6, p=2, q=3)
        >>> f.calculate_l()
        10
        >>> f.calculate_A(w=torch.arange(1.0, 11.0).view(1, 10))[0]
        tensor([ 7.,  8.,  9., 10., 14., 16.])
    """

    def __init__(
        self,
        p: int,
        q: int | None = None,
        name: str = "hm_parameterized_interdependence",
        *,
        kronecker: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self._fab = _hm_fabrication("hm", p, q, None, kronecker)
        self.p, self.q, self.kronecker = p, self._fab.q, bool(kronecker)
        self._check_fab_shape()
        self.parameter_fabrication = self._fab


class lphm_parameterized_interdependence(parameterized_interdependence):
    r"""Low-rank hm interdependence: hm with a low-rank second factor ``b = S T``.

    .. math::
        \mathbf{b} = \mathbf{S}\mathbf{T},\ \mathbf{S} \in R^{s \times r},
        \mathbf{T} \in R^{r \times t}, \qquad l = pq + r(s + t),

    with ``s = d/p``, ``t = d'/q`` and ``A`` assembled from ``a`` and ``b`` as in
    :class:`hm_parameterized_interdependence` (reshaped outer product by default,
    ``kronecker=True`` for ``a ⊗ (S T)``).

    Args:
        r: rank of the second factor.
        p: rows of the first factor; must divide ``d``.
        q: columns of the first factor (default ``p``); must divide ``d'``.
        name: the function's name.
        kronecker: use the true Kronecker product.
        **kwargs: the arguments of :class:`parameterized_interdependence`.

    Shape:
        As :class:`parameterized_interdependence`.

    Example:
        >>> f = lphm_parameterized_interdependence(b=3, m=4, r=1, p=2, q=2)
        >>> f.calculate_A(w=torch.arange(1.0, 9.0).view(1, 8))[0]
        tensor([35., 40., 42., 48.])
    """

    def __init__(
        self,
        r: int,
        p: int,
        q: int | None = None,
        name: str = "lphm_parameterized_interdependence",
        *,
        kronecker: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self._fab = _hm_fabrication("lphm", p, q, r, kronecker)
        self.r, self.p, self.q, self.kronecker = r, p, self._fab.q, bool(kronecker)
        self._check_fab_shape()
        self.parameter_fabrication = self._fab


class dual_lphm_parameterized_interdependence(parameterized_interdependence):
    r"""Dual low-rank hm interdependence: both factors low-rank, ``a = P Q`` and ``b = S T``.

    .. math::
        \mathbf{a} = \mathbf{P}\mathbf{Q},\ \mathbf{b} = \mathbf{S}\mathbf{T},
        \qquad l = r(p + q + s + t),

    with ``P (p, r)``, ``Q (r, q)``, ``S (s, r)``, ``T (r, t)`` taken in that order from ``w``,
    ``s = d/p``, ``t = d'/q``; ``A`` as in :class:`hm_parameterized_interdependence`.

    Args:
        r: rank of both factors.
        p: rows of the first factor; must divide ``d``.
        q: columns of the first factor (default ``p``); must divide ``d'``.
        name: the function's name.
        kronecker: use the true Kronecker product.
        **kwargs: the arguments of :class:`parameterized_interdependence`.

    Shape:
        As :class:`parameterized_interdependence`.

    Example:
        >>> f = dual_lphm_parameterized_interdependence(b=3, m=4, r=1, p=2, q=2)
        >>> f.calculate_A(w=torch.arange(1.0, 9.0).view(1, 8))[0]
        tensor([105., 120., 126., 144.])
    """

    def __init__(
        self,
        r: int,
        p: int,
        q: int | None = None,
        name: str = "dual_lphm_parameterized_interdependence",
        *,
        kronecker: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self._fab = _hm_fabrication("dual_lphm", p, q, r, kronecker)
        self.r, self.p, self.q, self.kronecker = r, p, self._fab.q, bool(kronecker)
        self._check_fab_shape()
        self.parameter_fabrication = self._fab


class random_matrix_adaption_parameterized_interdependence(
    _RandomMixin, parameterized_interdependence
):
    r"""Random-matrix-adaption interdependence: frozen random factors scaled by ``w``.

    .. math::
        \mathbf{A} = \text{diag}(\boldsymbol{\lambda}_1)\, \mathbf{R}_A\,
        \text{diag}(\boldsymbol{\lambda}_2)\, \mathbf{R}_B^\top \in R^{d \times d'},
        \qquad l = d + r,

    with ``λ₁ = w[:d]``, ``λ₂ = w[d:d+r]`` and the frozen ``R_A (d, r)``, ``R_B (d', r)``
    (registered buffers). Applied factored, without ``diag`` matrices.

    Args:
        r: the rank of the random factors.
        name: the function's name.
        random_factors: ``(R_A, R_B)`` or ``{'A': R_A, 'B': R_B}`` to reuse recorded factors
            (copied); else they are drawn from ``N(0, 1)`` with ``seed``.
        seed: seed of the CPU generator that draws the factors.
        **kwargs: the arguments of :class:`parameterized_interdependence`.

    Shape:
        As :class:`parameterized_interdependence`; ``R_A``: ``(d, r)``, ``R_B``: ``(d', r)``.

    Example:
        >>> f = random_matrix_adaption_parameterized_interdependence(b=3, m=4, m_prime=5, r=2)
        >>> f.calculate_l(), tuple(f.R_A.shape), tuple(f.R_B.shape)
        (6, (4, 2), (5, 2))
    """

    def __init__(
        self,
        r: int = 2,
        name: str = "random_matrix_adaption_parameterized_interdependence",
        random_factors: RandomFactors | None = None,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self._fab = _rank_fabrication("random_matrix_adaption", r)
        self.r, self.seed = r, _check_seed(seed)
        self.parameter_fabrication = self._fab
        self._init_random(*self._dims(), random_factors, self.device)

    def _random_factors(self) -> tuple[Tensor, Tensor]:
        return self.R_A, self.R_B

    def _shape_changed(self) -> None:
        self._default_primes()
        self._redraw_if_needed(*self._dims())


# -- parameterized_bilinear_interdependence --------------------------------------------------------


class parameterized_bilinear_interdependence(interdependence):
    r"""Bilinear interdependence: ``A = xᵀ W x`` with a learnable square ``W``.

    .. math::
        \mathbf{A} = \mathbf{X}^\top \mathbf{W} \mathbf{X}, \qquad l = d^2,

    For the **attribute** type ``X ∈ R^{b×m}``, ``W ∈ R^{b×b}`` (``d = b``: the batch must have
    exactly ``b`` rows) and ``A ∈ R^{m×m}``; for the **instance** type (the default, as in
    tinyBIG 0.2.1) the roles swap: ``W ∈ R^{m×m}`` (``d = m``), ``A = X W Xᵀ ∈ R^{b×b}`` for
    any batch size. ``W = reshape(w)`` (row-major); the variants fabricate it like the
    parameterized family (``d' = d``) and apply it factored. ``x`` is pre-processed before use
    and ``A`` post-processed; ``forward`` applies ``A`` without building it when that is
    cheaper.

    Args:
        b: number of instances.
        m: number of attributes.
        interdependence_type: one of :data:`INTERDEPENDENCE_TYPES` (default ``'instance'``).
        name: the function's name.
        require_parameters: whether ``forward`` needs ``w``.
        require_data: whether ``forward`` needs ``x``.
        device: see :class:`interdependence`.
        preprocess_functions: applied to ``x`` before ``A`` is computed.
        postprocess_functions: applied to ``A``.
        preprocess_function_configs: config form of ``preprocess_functions``.
        postprocess_function_configs: config form of ``postprocess_functions``.

    Shape:
        - ``w``: ``(1, l)`` or ``(l,)``; ``x``: ``(b, m)`` (attribute) or ``(b_any, m)``.
        - output: ``(b_any, m)``; ``calculate_A``: ``(m, m)`` or ``(b_any, b_any)``.

    Example:
        >>> f = lowrank_parameterized_bilinear_interdependence(
        ...     b=2, m=4, r=1, interdependence_type='attribute')
        >>> x = torch.tensor([[2.0, 7, 6, 4], [6, 5, 0, 4]])
        >>> f.calculate_A(x, w=torch.tensor([[1.0, 2, 3, 4]]))[0]
        tensor([420., 574., 252., 392.])
    """

    def __init__(
        self,
        b: int,
        m: int,
        interdependence_type: str = "instance",
        name: str = "parameterized_bilinear_interdependence",
        require_parameters: bool = True,
        require_data: bool = True,
        device: Device = "cpu",
        *,
        preprocess_functions: object = None,
        postprocess_functions: object = None,
        preprocess_function_configs: object = None,
        postprocess_function_configs: object = None,
    ) -> None:
        super().__init__(
            b=b,
            m=m,
            name=name,
            interdependence_type=interdependence_type,
            require_data=require_data,
            require_parameters=require_parameters,
            preprocess_functions=preprocess_functions,
            postprocess_functions=postprocess_functions,
            preprocess_function_configs=preprocess_function_configs,
            postprocess_function_configs=postprocess_function_configs,
            device=device,
        )
        self.parameter_fabrication: Fabrication | None = None
        self._fab = Fabrication("reshape")

    def _side(self) -> int:
        """Side ``d`` of the square ``W``: ``m`` (instance type) or ``b`` (attribute type)."""
        return self.m if self.is_instance else self.b

    def _dims(self) -> tuple[int, int]:
        d = self._side()
        return d, d

    def _dim_names(self) -> tuple[str, str]:
        """The constructor argument behind :meth:`_side` (twice), for error messages."""
        side = "m" if self.is_instance else "b"
        return side, side

    def _check_fab_shape(self) -> None:
        """``p`` and ``q`` must divide ``d`` (hm family; no-op otherwise)."""
        self._fab.check_shape(*self._dims(), names=self._dim_names(), owner=type(self).__name__)

    def calculate_b_prime(self, b: int | None = None) -> int:
        """``b`` (bilinear interdependences keep the shape)."""
        return b if b is not None else self.b

    def calculate_m_prime(self, m: int | None = None) -> int:
        """``m`` (bilinear interdependences keep the shape)."""
        return m if m is not None else self.m

    def calculate_l(self) -> int:
        """Length of the flat ``w`` for the ``d × d`` matrix ``W``."""
        d = self._side()
        return self._fab.calculate_l(d, d)

    def _random_factors(self) -> tuple[Tensor, Tensor] | None:
        return None

    def _check_x_in(self, x: Tensor | None) -> Tensor:
        name = type(self).__name__
        if x is None:
            raise ValueAssertionError(f"{name}: x is required to compute A = xᵀ W x, got x=None")
        if not isinstance(x, Tensor) or x.ndim != 2:
            got = _shape(x) if isinstance(x, Tensor) else type(x).__name__
            raise ValueAssertionError(f"{name}: x must be a 2-D tensor, got {got}")
        d = self._side()
        if x.size(0) != d:
            if self.is_instance:
                msg = f"x has {x.size(0)} attributes but W is {d}×{d} (m={d})"
            else:
                msg = (
                    f"the batch has {x.size(0)} rows but the attribute type's W is {d}×{d} "
                    f"(b={d}): batches must have exactly b rows"
                )
            raise ValueRuntimeError(f"{name}: {msg}")
        return x

    def _check_w(self, w: Tensor | None) -> Tensor:
        name = type(self).__name__
        n_w = self.calculate_l()
        return _check_w_numel(_check_w_present(w, name, n_w), name, n_w)

    def calculate_A(
        self, x: Tensor | None = None, w: Tensor | None = None, device: Device = "cpu"
    ) -> Tensor:
        """``A = xᵀ W x`` for the ``x`` given (``(b, m)``, or ``(m, b)`` for the instance type).

        Raises:
            ValueAssertionError: ``x`` or ``w`` missing or of the wrong shape.
            ValueRuntimeError: ``x`` does not match the side of ``W``.
        """
        cached = self._cached(x, w)
        if cached is not None:
            return cached
        x = self._check_x_in(x)
        w = self._check_w(w)
        x = self.pre_process(x, device)
        d = self._side()
        xt_w = self._fab.apply(
            x.t(), w, d, d, transpose=True, random_factors=self._random_factors()
        )
        A = self.post_process(xt_w @ x, device)
        return self._store(A)

    def _rows_times_A(
        self, rows: Tensor, x_in: Tensor | None, w: Tensor | None, device: Device, data: str
    ) -> Tensor:
        if self._cacheable or self._has_postprocess() or rows.is_sparse:
            return super()._rows_times_A(rows, x_in, w, device, data)
        x = self._check_x_in(x_in)
        w = self._check_w(w)
        x = self.pre_process(x, device)
        d, k = x.shape
        self._check_rows(rows, k)
        check_operands(rows, x, name=data, ref_name="x")
        rf = self._random_factors()
        n = rows.size(0)
        # rows @ xᵀ W x: either through A (k×k) or as a chain of thin products.
        if n * (2 * d * k + d * d) < k * d * d + d * k * k + n * k * k:
            t = self._fab.apply(rows @ x.t(), w, d, d, transpose=True, random_factors=rf)
            return t @ x
        xt_w = self._fab.apply(x.t(), w, d, d, transpose=True, random_factors=rf)
        return rows @ (xt_w @ x)

    def _shape_changed(self) -> None:
        self._check_fab_shape()


class lowrank_parameterized_bilinear_interdependence(parameterized_bilinear_interdependence):
    r"""Bilinear interdependence with a low-rank ``W = U V``: ``l = 2 r d``.

    .. math::
        \mathbf{A} = \mathbf{X}^\top \mathbf{U}\mathbf{V} \mathbf{X}, \quad
        \mathbf{U} \in R^{d \times r}, \mathbf{V} \in R^{r \times d}.

    Args:
        r: the rank.
        name: the function's name.
        **kwargs: the arguments of :class:`parameterized_bilinear_interdependence`.

    Shape:
        As :class:`parameterized_bilinear_interdependence`.

    Example:
        >>> f = lowrank_parameterized_bilinear_interdependence(b=2, m=4, r=1)
        >>> f.calculate_l()
        8
    """

    def __init__(
        self,
        r: int = 2,
        name: str = "lowrank_parameterized_bilinear_interdependence",
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self._fab = _rank_fabrication("lowrank", r)
        self.r = r
        self.parameter_fabrication = self._fab


class hm_parameterized_bilinear_interdependence(parameterized_bilinear_interdependence):
    r"""Bilinear interdependence with an hm-structured ``W``: ``l = pq + d²/(pq)``.

    ``W`` is built from ``a = w[:pq]`` and ``b = w[pq:]`` as in
    :class:`hm_parameterized_interdependence` (tinyBIG's reshaped outer product by default,
    ``a ⊗ b`` with ``kronecker=True``), then ``A = Xᵀ W X``.

    Args:
        p: rows of the first factor; must divide ``d``.
        q: columns of the first factor (default ``p``); must divide ``d``.
        name: the function's name.
        kronecker: use the true Kronecker product.
        **kwargs: the arguments of :class:`parameterized_bilinear_interdependence`.

    Shape:
        As :class:`parameterized_bilinear_interdependence`.

    Example:
        >>> f = hm_parameterized_bilinear_interdependence(b=4, m=6, p=2, q=3)
        >>> f.calculate_l()
        12
    """

    def __init__(
        self,
        p: int,
        q: int | None = None,
        name: str = "hm_parameterized_bilinear_interdependence",
        *,
        kronecker: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self._fab = _hm_fabrication("hm", p, q, None, kronecker)
        self.p, self.q, self.kronecker = p, self._fab.q, bool(kronecker)
        self._check_fab_shape()
        self.parameter_fabrication = self._fab


class lphm_parameterized_bilinear_interdependence(parameterized_bilinear_interdependence):
    r"""Bilinear interdependence with an lphm-structured ``W``: ``l = pq + r(d/p + d/q)``.

    ``W`` as in :class:`lphm_parameterized_interdependence` with ``d' = d``; ``A = Xᵀ W X``.

    Args:
        r: rank of the second factor.
        p: rows of the first factor; must divide ``d``.
        q: columns of the first factor (default ``p``); must divide ``d``.
        name: the function's name.
        kronecker: use the true Kronecker product.
        **kwargs: the arguments of :class:`parameterized_bilinear_interdependence`.

    Shape:
        As :class:`parameterized_bilinear_interdependence`.

    Example:
        >>> f = lphm_parameterized_bilinear_interdependence(b=4, m=6, r=1, p=2, q=3)
        >>> f.calculate_l()
        11
    """

    def __init__(
        self,
        r: int,
        p: int,
        q: int | None = None,
        name: str = "lphm_parameterized_bilinear_interdependence",
        *,
        kronecker: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self._fab = _hm_fabrication("lphm", p, q, r, kronecker)
        self.r, self.p, self.q, self.kronecker = r, p, self._fab.q, bool(kronecker)
        self._check_fab_shape()
        self.parameter_fabrication = self._fab


class dual_lphm_parameterized_bilinear_interdependence(parameterized_bilinear_interdependence):
    r"""Bilinear interdependence with a dual-lphm ``W``: ``l = r(p + q + d/p + d/q)``.

    ``W`` as in :class:`dual_lphm_parameterized_interdependence` with ``d' = d``;
    ``A = Xᵀ W X``.

    Args:
        r: rank of both factors.
        p: rows of the first factor; must divide ``d``.
        q: columns of the first factor (default ``p``); must divide ``d``.
        name: the function's name.
        kronecker: use the true Kronecker product.
        **kwargs: the arguments of :class:`parameterized_bilinear_interdependence`.

    Shape:
        As :class:`parameterized_bilinear_interdependence`.

    Example:
        >>> f = dual_lphm_parameterized_bilinear_interdependence(b=4, m=6, r=1, p=2, q=3)
        >>> f.calculate_l()
        10
    """

    def __init__(
        self,
        r: int,
        p: int,
        q: int | None = None,
        name: str = "dual_lphm_parameterized_bilinear_interdependence",
        *,
        kronecker: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self._fab = _hm_fabrication("dual_lphm", p, q, r, kronecker)
        self.r, self.p, self.q, self.kronecker = r, p, self._fab.q, bool(kronecker)
        self._check_fab_shape()
        self.parameter_fabrication = self._fab


class random_matrix_adaption_parameterized_bilinear_interdependence(
    _RandomMixin, parameterized_bilinear_interdependence
):
    r"""Bilinear interdependence with a random-matrix-adaption ``W``: ``l = d + r``.

    .. math::
        \mathbf{W} = \text{diag}(\boldsymbol{\lambda}_1)\, \mathbf{R}_A\,
        \text{diag}(\boldsymbol{\lambda}_2)\, \mathbf{R}_B^\top \in R^{d \times d},
        \qquad \mathbf{A} = \mathbf{X}^\top \mathbf{W} \mathbf{X},

    with frozen ``R_A``, ``R_B`` of shape ``(d, r)`` (registered buffers).

    Args:
        r: the rank of the random factors.
        name: the function's name.
        random_factors: ``(R_A, R_B)`` or ``{'A': R_A, 'B': R_B}`` (copied); else drawn from
            ``N(0, 1)`` with ``seed``.
        seed: seed of the CPU generator that draws the factors.
        **kwargs: the arguments of :class:`parameterized_bilinear_interdependence`.

    Shape:
        As :class:`parameterized_bilinear_interdependence`; ``R_A``, ``R_B``: ``(d, r)``.

    Example:
        >>> f = random_matrix_adaption_parameterized_bilinear_interdependence(b=4, m=6, r=2)
        >>> f.calculate_l(), tuple(f.R_B.shape)
        (8, (6, 2))
    """

    def __init__(
        self,
        r: int = 2,
        name: str = "random_matrix_adaption_parameterized_bilinear_interdependence",
        random_factors: RandomFactors | None = None,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self._fab = _rank_fabrication("random_matrix_adaption", r)
        self.r, self.seed = r, _check_seed(seed)
        self.parameter_fabrication = self._fab
        self._init_random(*self._dims(), random_factors, self.device)

    def _random_factors(self) -> tuple[Tensor, Tensor]:
        return self.R_A, self.R_B

    def _shape_changed(self) -> None:
        self._redraw_if_needed(*self._dims())


# -- parameterized_rpn_interdependence -------------------------------------------------------------


@runtime_checkable
class DataTransformation(Protocol):
    """What :class:`parameterized_rpn_interdependence` needs of a data transformation κ.

    ``calculate_D(m)`` is the expansion width of ``m`` inputs; calling it maps ``(k, m)`` to
    ``(k, D)`` (tinyBIG's ``transformation`` classes qualify).
    """

    def calculate_D(self, m: int) -> int: ...

    def __call__(self, x: Tensor, device: Device = ...) -> Tensor: ...


@runtime_checkable
class ParameterFabrication(Protocol):
    """What :class:`parameterized_rpn_interdependence` needs of a parameter fabrication ψ.

    ``calculate_l(n, D)`` is the length of ``w``; calling it builds ``(n, D)`` from ``w``
    (tinyBIG's ``fabrication`` / reconciliation classes qualify).
    """

    def calculate_l(self, n: int, D: int) -> int: ...

    def __call__(self, w: Tensor, n: int, D: int, device: Device = ...) -> Tensor: ...


def _build_part(value: object, argument: str, device: Device) -> Any:
    if value is None:
        raise ValueError(f"{argument} must be specified, got None")
    if isinstance(value, Mapping):
        from interfuse.tinybig.config import instantiation_from_configs

        return instantiation_from_configs(value, device=device)
    return value


class parameterized_rpn_interdependence(_PrimesMixin, interdependence):
    r"""Interdependence computed by a small RPN: ``A = κ(x) ψ(w)ᵀ``.

    .. math::
        \mathbf{A} = \kappa(\mathbf{X}^\top)\, \psi(\mathbf{w})^\top,
        \qquad l = \psi.\text{calculate\_l}(n=d', D=\kappa.\text{calculate\_D}(d)),

    For the **attribute** type ``κ`` expands the columns of ``X`` (``κ(Xᵀ) ∈ R^{m×D}``,
    ``D = κ.calculate_D(b)``), ``ψ(w) ∈ R^{m'×D}`` and ``A ∈ R^{m×m'}``; for the **instance**
    type ``κ(X) ∈ R^{b×D}`` with ``D = κ.calculate_D(m)``, ``ψ(w) ∈ R^{b'×D}`` and
    ``A ∈ R^{b×b'}``. ``x`` is pre-processed and ``A`` post-processed.

    Args:
        b: number of instances.
        m: number of attributes.
        data_transformation: any :class:`DataTransformation` (or its config dict).
        parameter_fabrication: any :class:`ParameterFabrication` (or its config dict).
        b_prime: output instances of the instance type (default ``b``).
        m_prime: output attributes of the attribute type (default ``m``).
        interdependence_type: one of :data:`INTERDEPENDENCE_TYPES`.
        name: the function's name.
        require_parameters: whether ``forward`` needs ``w``.
        require_data: whether ``forward`` needs ``x``.
        device: see :class:`interdependence`.
        preprocess_functions: applied to ``x`` before the transformation.
        postprocess_functions: applied to ``A``.
        preprocess_function_configs: config form of ``preprocess_functions``.
        postprocess_function_configs: config form of ``postprocess_functions``.

    Shape:
        - ``x``: ``(b, m)``; output ``(b, m')`` (attribute) or ``(b', m)`` (instance).

    Example:
        >>> class Identity:
        ...     def calculate_D(self, m): return m
        ...     def __call__(self, x, device='cpu'): return x
        >>> class Reshape:
        ...     def calculate_l(self, n, D): return n * D
        ...     def __call__(self, w, n, D, device='cpu'): return w.view(n, D)
        >>> f = parameterized_rpn_interdependence(5, 2, Identity(), Reshape(), m_prime=3)
        >>> f.calculate_l()
        15
        >>> f(x=torch.ones(5, 2), w=torch.ones(1, 15)).shape
        torch.Size([5, 3])
    """

    def __init__(
        self,
        b: int,
        m: int,
        data_transformation: DataTransformation | Mapping[str, Any] | None = None,
        parameter_fabrication: ParameterFabrication | Mapping[str, Any] | None = None,
        b_prime: int | None = None,
        m_prime: int | None = None,
        interdependence_type: str = "attribute",
        name: str = "parameterized_rpn_interdependence",
        require_parameters: bool = True,
        require_data: bool = True,
        device: Device = "cpu",
        *,
        preprocess_functions: object = None,
        postprocess_functions: object = None,
        preprocess_function_configs: object = None,
        postprocess_function_configs: object = None,
    ) -> None:
        super().__init__(
            b=b,
            m=m,
            name=name,
            interdependence_type=interdependence_type,
            require_data=require_data,
            require_parameters=require_parameters,
            preprocess_functions=preprocess_functions,
            postprocess_functions=postprocess_functions,
            preprocess_function_configs=preprocess_function_configs,
            postprocess_function_configs=postprocess_function_configs,
            device=device,
        )
        self.data_transformation: DataTransformation = _build_part(
            data_transformation, "data_transformation", self.device
        )
        self.parameter_fabrication: ParameterFabrication = _build_part(
            parameter_fabrication, "parameter_fabrication", self.device
        )
        self._primes = (
            _check_optional_dim(b_prime, "b_prime"),
            _check_optional_dim(m_prime, "m_prime"),
        )
        self._default_primes()

    def _shape_changed(self) -> None:
        self._default_primes()

    def _dims(self) -> tuple[int, int]:
        """``(d, d')``: the transformation's input width and the fabricated rows."""
        if self.is_instance:
            return self.m, self.calculate_b_prime()
        return self.b, self.calculate_m_prime()

    def calculate_l(self) -> int:
        """``ψ.calculate_l(n=d', D=κ.calculate_D(d))``."""
        d, d_prime = self._dims()
        D = self.data_transformation.calculate_D(m=d)
        return int(self.parameter_fabrication.calculate_l(n=d_prime, D=D))

    def calculate_A(
        self, x: Tensor | None = None, w: Tensor | None = None, device: Device = "cpu"
    ) -> Tensor:
        """``A = κ(xᵀ) ψ(w)ᵀ`` for the ``x`` given (``(b, m)``, or ``(m, b)`` for instance).

        Raises:
            ValueAssertionError: ``x`` or ``w`` missing or of the wrong shape, or ``A`` not of
                shape ``(m, m')`` / ``(b, b')``.
        """
        cached = self._cached(x, w)
        if cached is not None:
            return cached
        name = type(self).__name__
        if x is None or not isinstance(x, Tensor) or x.ndim != 2:
            got = (
                "None" if x is None else (_shape(x) if isinstance(x, Tensor) else type(x).__name__)
            )
            raise ValueAssertionError(f"{name}: x must be a 2-D tensor, got {got}")
        n_w = self.calculate_l()
        w = _check_w_numel(_check_w_present(w, name, n_w), name, n_w)
        for label, t in (("x", x), ("w", w)):
            if not t.is_floating_point():  # κ and ψ are the user's: check before they see it
                raise ValueRuntimeError(
                    f"{name}: {label} has dtype {t.dtype}; κ(x) ψ(w)ᵀ needs floating tensors "
                    "(convert with .float())"
                )
        x = self.pre_process(x, device)
        d, d_prime = self._dims()
        kappa = self.data_transformation(x.t(), device=device)
        D = self.data_transformation.calculate_D(m=d)
        if not isinstance(kappa, Tensor) or kappa.ndim != 2 or kappa.size(-1) != D:
            got = _shape(kappa) if isinstance(kappa, Tensor) else type(kappa).__name__
            what, dim = ("attributes", "m") if self.is_instance else ("instances", "b")
            raise ValueAssertionError(
                f"{name}: x has {x.size(0)} {what} but this function was built for {dim}={d}: "
                f"κ(x) has shape {got}, ψ(w) expects D={D} columns"
            )
        phi = self.parameter_fabrication(w=w, n=d_prime, D=D, device=device)
        check_operands(kappa, phi, name="κ(x)", ref_name="ψ(w)")
        A = self.post_process(kappa @ phi.t(), device)
        return self._store(self._check_A(A))

    def to_config(self) -> dict[str, Any]:
        """As :meth:`interdependence.to_config`; κ and ψ are written as their configs.

        Raises:
            TypeError: κ or ψ is not an ``nn.Module`` of an importable class (or a config).
        """
        patched = dict(self._config_args)
        for key in ("data_transformation", "parameter_fabrication"):
            value = getattr(self, key)
            if isinstance(value, nn.Module):
                patched[key] = encode_functions(value, key)[1]
        return _with_config_args(self, patched)


# -- hybrid_interdependence ------------------------------------------------------------------------


class hybrid_interdependence(interdependence):
    r"""Several interdependence matrices fused into one by a fusion function.

    .. math::
        \mathbf{A} = \text{fusion}(\mathbf{A}_1, \ldots, \mathbf{A}_k),
        \qquad l = \sum_i l_i + l_{\text{fusion}},

    where ``A_i = f_i.calculate_A(x, w_i)`` and ``w = [w_1, …, w_k, w_fusion]`` is split along
    its last dimension in that order (only functions that require parameters take a segment).
    The fusion acts on the last axis of the ``A_i``: ``(m, m'_i) → (m, m')`` for the attribute
    type, ``(b, b'_i) → (b, b')`` for the instance type (both work; tinyBIG's attribute type
    crashed). The given functions are rebound to this ``b``, ``m`` and type, as in tinyBIG.

    Args:
        b: number of instances.
        m: number of attributes.
        interdependence_type: one of :data:`INTERDEPENDENCE_TYPES`.
        name: the function's name.
        interdependence_functions: the interdependences to fuse.
        interdependence_function_configs: their configs (``b``, ``m`` and the type are filled
            in), used when ``interdependence_functions`` is ``None``.
        fusion_function: any fusion of :mod:`interfuse.tinybig.fusion`.
        fusion_function_config: its config, used when ``fusion_function`` is ``None``.
        device: see :class:`interdependence`.
        preprocess_functions: applied to ``x`` before the parts see it.
        postprocess_functions: applied to the fused ``A``.
        preprocess_function_configs: config form of ``preprocess_functions``.
        postprocess_function_configs: config form of ``postprocess_functions``.

    Shape:
        As the parts; ``A``: ``(m, m')`` or ``(b, b')``.

    Example:
        >>> from interfuse.tinybig.fusion import mean_fusion
        >>> parts = [parameterized_interdependence(b=4, m=3) for _ in range(2)]
        >>> f = hybrid_interdependence(b=4, m=3, interdependence_functions=parts,
        ...                            fusion_function=mean_fusion(dims=[3, 3]))
        >>> f.calculate_l()
        18
        >>> f(x=torch.ones(4, 3), w=torch.ones(1, 18)).shape
        torch.Size([4, 3])
    """

    def __init__(
        self,
        b: int,
        m: int,
        interdependence_type: str = "attribute",
        name: str = "hybrid_interdependence",
        interdependence_functions: Sequence[interdependence] | None = None,
        interdependence_function_configs: Sequence[Mapping[str, Any]] | None = None,
        fusion_function: nn.Module | None = None,
        fusion_function_config: Mapping[str, Any] | None = None,
        device: Device = "cpu",
        *,
        preprocess_functions: object = None,
        postprocess_functions: object = None,
        preprocess_function_configs: object = None,
        postprocess_function_configs: object = None,
    ) -> None:
        from interfuse.tinybig.config import instantiation_from_configs
        from interfuse.tinybig.fusion import fusion as fusion_base

        super().__init__(
            b=b,
            m=m,
            name=name,
            interdependence_type=interdependence_type,
            preprocess_functions=preprocess_functions,
            postprocess_functions=postprocess_functions,
            preprocess_function_configs=preprocess_function_configs,
            postprocess_function_configs=postprocess_function_configs,
            device=device,
        )
        parts: list[interdependence] = []
        if interdependence_functions is not None:
            parts = list(interdependence_functions)
        elif interdependence_function_configs is not None:
            for i, cfg in enumerate(interdependence_function_configs):
                if not isinstance(cfg, Mapping) or "function_class" not in cfg:
                    raise ValueError(
                        f"interdependence_function_configs[{i}] must be a config dict with a "
                        f"'function_class' key, got {cfg!r}"
                    )
                params = dict(cfg.get("function_parameters") or {})
                params.update(b=b, m=m, interdependence_type=interdependence_type)
                parts.append(
                    instantiation_from_configs(
                        {"function_class": cfg["function_class"], "function_parameters": params},
                        device=self.device,
                    )
                )
        if not parts:
            raise ValueError(
                "hybrid_interdependence needs interdependence_functions or "
                "interdependence_function_configs (a non-empty list), got neither"
            )
        for i, part in enumerate(parts):
            if not isinstance(part, interdependence):
                raise TypeError(
                    f"interdependence_functions[{i}] must be an interfuse.tinybig "
                    f"interdependence, got {type(part).__name__}"
                )
            part._set_shape(self.b, self.m, interdependence_type)
        if fusion_function is None and fusion_function_config is not None:
            fusion_function = instantiation_from_configs(fusion_function_config, device=self.device)
        if fusion_function is None:
            raise ValueError(
                "hybrid_interdependence needs fusion_function or fusion_function_config, got "
                "neither"
            )
        if not isinstance(fusion_function, fusion_base):
            raise TypeError(
                "fusion_function must be a fusion of interfuse.tinybig.fusion, got "
                f"{type(fusion_function).__name__}"
            )
        self.interdependence_functions = nn.ModuleList(parts)
        self.fusion_function = fusion_function
        self.require_parameters = any(p.require_parameters for p in parts) or bool(
            fusion_function.require_parameters
        )
        self.require_data = any(p.require_data for p in parts)
        self._A_uses_data = any(p._A_uses_data for p in parts)

    def _parts(self) -> list[interdependence]:
        return list(self.interdependence_functions)  # type: ignore[arg-type]

    def get_function_parameter_numbers(self) -> list[int]:
        """``[l_1, …, l_k, l_fusion]`` (0 for functions that require no parameters)."""
        sizes = [p.calculate_l() if p.require_parameters else 0 for p in self._parts()]
        fusion_l = (
            self.fusion_function.calculate_l() if self.fusion_function.require_parameters else 0
        )
        return [*sizes, int(fusion_l or 0)]

    def calculate_l(self) -> int:
        """``Σ l_i + l_fusion``."""
        return sum(self.get_function_parameter_numbers())

    def calculate_b_prime(self, b: int | None = None) -> int:
        """Instance type: the fusion's output width over the parts' ``b'``; else ``b``."""
        if not self.is_instance:
            return b if b is not None else self.b
        dims = [p.calculate_b_prime(b=b) for p in self._parts()]
        return int(self.fusion_function.calculate_n(dims=dims))

    def calculate_m_prime(self, m: int | None = None) -> int:
        """Attribute type: the fusion's output width over the parts' ``m'``; else ``m``."""
        if self.is_instance:
            return m if m is not None else self.m
        dims = [p.calculate_m_prime(m=m) for p in self._parts()]
        return int(self.fusion_function.calculate_n(dims=dims))

    def calculate_A(
        self, x: Tensor | None = None, w: Tensor | None = None, device: Device = "cpu"
    ) -> Tensor:
        """The fused matrix of the parts' ``calculate_A(x, w_i)``.

        Raises:
            ValueAssertionError: ``w`` does not hold ``l`` parameters.
        """
        cached = self._cached(x, w)
        if cached is not None:
            return cached
        name = type(self).__name__
        sizes = self.get_function_parameter_numbers()
        n_w = sum(sizes)
        segments: list[Tensor | None] = [None] * len(sizes)
        if n_w > 0 or w is not None:
            w = _check_w_numel(_check_w_present(w, name, n_w), name, n_w)
            flat = w.reshape(1, -1)
            offset = 0
            for i, size in enumerate(sizes):
                if size:
                    segments[i] = flat[:, offset : offset + size]
                offset += size
        if x is not None:
            x = self.pre_process(x, device)
        mats: list[Tensor] = []
        for part, segment in zip(self._parts(), segments):
            A = part.calculate_A(x, segment, device)
            if A is None:
                raise ValueAssertionError(f"{name}: a part computed no matrix ({part.name})")
            mats.append(A.to_dense() if A.is_sparse else A)
        fused = self.fusion_function(x=mats, w=segments[-1], device=device)
        A = self.post_process(fused, device)
        return self._store(A)

    def to_config(self) -> dict[str, Any]:
        """As :meth:`interdependence.to_config`, with the parts and the fusion as configs."""
        patched = dict(self._config_args)
        patched["interdependence_functions"] = None
        patched["interdependence_function_configs"] = [p.to_config() for p in self._parts()]
        patched["fusion_function"] = None
        patched["fusion_function_config"] = self.fusion_function.to_config()
        return _with_config_args(self, patched)


def _with_config_args(function: interdependence, args: dict[str, Any]) -> dict[str, Any]:
    """``interdependence.to_config`` of ``function`` as if it had recorded ``args``."""
    saved = function._config_args
    function._config_args = args
    try:
        return interdependence.to_config(function)
    finally:
        function._config_args = saved
