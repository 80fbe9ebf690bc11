r"""tinyBIG's ``tinybig.interdependence.hybrid_interdependence``: fused interdependences."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from interfuse.tinybig.errors import ValueAssertionError
from interfuse.tinybig.module.base_interdependence import (
    Device,
    check_w,
    interdependence,
    with_config_args,
)

__all__ = ["hybrid_interdependence"]


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
        interdependence_functions: the interdependences to fuse.
        interdependence_function_configs: their configs (``b``, ``m`` and the type are filled
            in), used when ``interdependence_functions`` is ``None``.
        fusion_function: any fusion of :mod:`interfuse.tinybig.fusion`.
        fusion_function_config: its config, used when ``fusion_function`` is ``None``.
        **kwargs: every other argument as :class:`interdependence` (pre-processing applies
            to ``x`` before the parts see it, post-processing to the fused ``A``).

    Shape:
        As the parts; ``A``: ``(m, m')`` or ``(b, b')``.

    Example:
        >>> from interfuse.tinybig.fusion import mean_fusion
        >>> parts = [tb.parameterized_interdependence(b=4, m=3) for _ in range(2)]
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
        **kwargs: Any,
    ) -> None:
        from interfuse.tinybig.config import instantiation_from_configs
        from interfuse.tinybig.fusion import fusion as fusion_base

        super().__init__(b, m, name, interdependence_type, device=device, **kwargs)
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
                full = {"function_class": cfg["function_class"], "function_parameters": params}
                parts.append(instantiation_from_configs(full, device=self.device))
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
        f = self.fusion_function
        return [*sizes, int(f.calculate_l() or 0) if f.require_parameters else 0]

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

    def _compute_A(self, x: Tensor | None, w: Tensor | None, device: Device) -> Tensor:
        """The fused matrix of the parts' ``calculate_A(x, w_i)``."""
        name = type(self).__name__
        sizes = self.get_function_parameter_numbers()
        n_w = sum(sizes)
        segments: list[Tensor | None] = [None] * len(sizes)
        if n_w > 0 or w is not None:
            w = check_w(w, name, n_w)
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
        return self.post_process(fused, device)

    def to_config(self) -> dict[str, Any]:
        """As :meth:`interdependence.to_config`, with the parts and the fusion as configs."""
        patched = dict(self._config_args)
        patched["interdependence_functions"] = None
        patched["interdependence_function_configs"] = [p.to_config() for p in self._parts()]
        patched["fusion_function"] = None
        patched["fusion_function_config"] = self.fusion_function.to_config()
        return with_config_args(self, patched)
