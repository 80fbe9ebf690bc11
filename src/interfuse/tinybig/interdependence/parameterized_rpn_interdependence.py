r"""tinyBIG's ``tinybig.interdependence.parameterized_rpn_interdependence``: ``A = κ(x) ψ(w)ᵀ``.

``κ`` is any data transformation and ``ψ`` any parameter fabrication (tinyBIG's expansion and
reconciliation classes qualify, or config dicts naming them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from torch import Tensor, nn

from interfuse.tinybig._base import encode_functions
from interfuse.tinybig.errors import ValueAssertionError, ValueRuntimeError
from interfuse.tinybig.fabrication import check_operands
from interfuse.tinybig.interdependence.parameterized_interdependence import _PrimesMixin
from interfuse.tinybig.module.base_interdependence import (
    Device,
    _got,
    check_w,
    interdependence,
    with_config_args,
)

__all__ = ["DataTransformation", "ParameterFabrication", "parameterized_rpn_interdependence"]


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
        data_transformation: any :class:`DataTransformation` (or its config dict).
        parameter_fabrication: any :class:`ParameterFabrication` (or its config dict).
        b_prime: output instances of the instance type (default ``b``).
        m_prime: output attributes of the attribute type (default ``m``).
        **kwargs: every other argument as :class:`interdependence` (pre-processing applies
            to ``x`` before the transformation, post-processing to ``A``).

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
        **kwargs: Any,
    ) -> None:
        flags = (require_data, require_parameters)
        super().__init__(b, m, name, interdependence_type, *flags, device=device, **kwargs)
        self.data_transformation: DataTransformation = _build_part(
            data_transformation, "data_transformation", self.device
        )
        self.parameter_fabrication: ParameterFabrication = _build_part(
            parameter_fabrication, "parameter_fabrication", self.device
        )
        self._set_primes(b_prime, m_prime)

    def _shape_changed(self) -> None:
        self._default_primes()

    def _dims(self) -> tuple[int, int]:
        if self.is_instance:
            return self.m, self.calculate_b_prime()
        return self.b, self.calculate_m_prime()

    def calculate_l(self) -> int:
        """``ψ.calculate_l(n=d', D=κ.calculate_D(d))``."""
        d, d_prime = self._dims()
        D = self.data_transformation.calculate_D(m=d)
        return int(self.parameter_fabrication.calculate_l(n=d_prime, D=D))

    def _compute_A(self, x: Tensor | None, w: Tensor | None, device: Device) -> Tensor:
        """``A = κ(xᵀ) ψ(w)ᵀ`` for the ``x`` given (``(b, m)``, or ``(m, b)`` for instance); a
        ``ValueAssertionError`` for a missing or misshapen ``x``, ``w`` or ``A``."""
        name = type(self).__name__
        if x is None or not isinstance(x, Tensor) or x.ndim != 2:
            raise ValueAssertionError(f"{name}: x must be a 2-D tensor, got {_got(x)}")
        n_w = self.calculate_l()
        w = check_w(w, name, n_w)
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
            what, dim = ("attributes", "m") if self.is_instance else ("instances", "b")
            raise ValueAssertionError(
                f"{name}: x has {x.size(0)} {what} but this function was built for {dim}={d}: "
                f"κ(x) has shape {_got(kappa)}, ψ(w) expects D={D} columns"
            )
        phi = self.parameter_fabrication(w=w, n=d_prime, D=D, device=device)
        check_operands(kappa, phi, name="κ(x)", ref_name="ψ(w)")
        return self._check_A(self.post_process(kappa @ phi.t(), device))

    def to_config(self) -> dict[str, Any]:
        """As :meth:`interdependence.to_config`, κ and ψ as their configs (a ``TypeError`` if
        one is not an ``nn.Module`` of an importable class, nor a config)."""
        patched = dict(self._config_args)
        for key in ("data_transformation", "parameter_fabrication"):
            value = getattr(self, key)
            if isinstance(value, nn.Module):
                patched[key] = encode_functions(value, key)[1]
        return with_config_args(self, patched)
