r"""tinyBIG's ``tinybig.fusion.metric_fusion``: element-wise metrics over ``k`` equal inputs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from interfuse import functional as fn
from interfuse.tinybig._base import import_object, import_path
from interfuse.tinybig.errors import ValueAssertionError, ValueRuntimeError
from interfuse.tinybig.module.base_fusion import Dims, fusion

__all__ = [
    "METRICS",
    "l1_norm_fusion",
    "l2_norm_fusion",
    "max_fusion",
    "mean_fusion",
    "median_fusion",
    "metric_fusion",
    "min_fusion",
    "prod_fusion",
    "sum_fusion",
]

#: Named metrics of :class:`metric_fusion` and the kernels computing them over the k inputs.
METRICS: dict[str, Callable[[Sequence[Tensor]], Tensor]] = {
    "mean": fn.fused_mean,
    "sum": fn.fused_sum,
    "prod": fn.fused_prod,
    "max": fn.fused_max,
    "min": fn.fused_min,
    "median": lambda xs: fn.fused_median(xs, mode="lower"),
    "l1_norm": lambda xs: fn.fused_norm(xs, p=1.0),
    "l2_norm": lambda xs: fn.fused_norm(xs, p=2.0),
}
_NEED_FLOAT = ("mean", "l1_norm", "l2_norm")  # tinyBIG failed on integers (RuntimeError)

BatchMetric = Callable[[Tensor], Tensor]


def _resolve_metric(metric: object) -> str | BatchMetric:
    if isinstance(metric, str):
        if metric in METRICS:
            return metric
        try:
            target = import_object(metric)
        except (ImportError, AttributeError):
            target = None
        if not callable(target):
            raise ValueError(
                f"metric must be one of {sorted(METRICS)}, a dotted path to a batch metric, or a "
                f"callable, got {metric!r}"
            )
        return target
    if callable(metric):
        return metric
    raise ValueAssertionError(
        f"metric must be callable or one of {sorted(METRICS)}, got {metric!r} of type "
        f"{type(metric).__name__}"
    )


class metric_fusion(fusion):
    r"""Element-wise metric over ``k`` equally shaped inputs.

    .. math:: \text{fusion}(A_1, …, A_k)(i, j) = \text{metric}(A_1(i, j), …, A_k(i, j))

    ``metric`` is a name of :data:`METRICS`, computed by the copy-free kernels, or a tinyBIG
    batch metric: a callable mapping ``(N, k)`` to ``(N,)`` (given as the callable or its dotted
    import path), applied as tinyBIG did to the stacked inputs. ``w`` is ignored,
    ``calculate_l()`` is 0 and ``require_parameters`` is a ``TypeError``, as in tinyBIG. The
    named classes fix the metric (their ``dims`` is keyword-only and required, may be ``None``):

    | class | metric |
    |---|---|
    | ``mean_fusion`` | ``(1/k) Σ Aₘ`` (``tinybig.fusion.mean_fusion``; not ``average_fusion``) |
    | ``sum_fusion``, ``prod_fusion`` | ``Σ Aₘ``, ``Π Aₘ`` (may overflow, as in tinyBIG) |
    | ``max_fusion``, ``min_fusion`` | ``maxₘ Aₘ``, ``minₘ Aₘ`` |
    | ``median_fusion`` | the lower median for an even ``k`` (``torch.median``) |
    | ``l1_norm_fusion``, ``l2_norm_fusion`` | ``Σ ∣Aₘ∣``, ``√(Σ Aₘ²)`` (gradient 0 at 0, not nan) |

    Args:
        dims: widths of the inputs (all equal), or ``None``.
        metric: the metric name or a batch metric callable.
        **kwargs: every other argument as :class:`fusion`.

    Shape:
        - Input: ``k`` tensors of one shape ``(*, n)``.
        - Output: ``(*, n)``.

    Example:
        >>> metric_fusion([1, 1], metric="max")([torch.tensor([1.0]), torch.tensor([3.0])])
        tensor([3.])
    """

    _filled: ClassVar[tuple[str, ...]] = ("require_parameters",)  # tinyBIG configs have it

    def __init__(
        self,
        dims: Dims | None,
        metric: str | BatchMetric,
        name: str = "metric_fusion",
        **kwargs: Any,
    ) -> None:
        if "require_parameters" in kwargs:
            raise TypeError(
                f"{type(self).__name__}() got an unexpected keyword argument 'require_parameters' "
                "(metric fusions take no parameters, as in tinyBIG)"
            )
        super().__init__(dims=dims, name=name, require_parameters=False, **kwargs)
        self.metric: str | BatchMetric = _resolve_metric(metric)

    def _config_value(self, key: str, value: Any) -> Any:
        if key == "metric" and not isinstance(value, str) and callable(value):
            path = import_path(value)
            if path is None:
                raise TypeError(
                    f"metric={value!r} cannot be written to a config: use one of {sorted(METRICS)} "
                    "or a module-level function (written as its import path)"
                )
            return path
        return super()._config_value(key, value)

    def calculate_n(self, dims: Dims | None = None, *args: Any, **kwargs: Any) -> int:
        """``dims[0]``; a ``ValueAssertionError`` if ``dims`` are unequal or unknown."""
        return self._equal_dims_n(dims)

    def calculate_l(self, *args: Any, **kwargs: Any) -> int:
        """0: metric fusions take no parameters."""
        return 0

    def _fuse(self, xs: list[Tensor], w: Tensor | None) -> Tensor:
        if isinstance(self.metric, str):
            if self.metric in _NEED_FLOAT and not xs[0].is_floating_point():
                raise ValueRuntimeError(
                    f"x has dtype {xs[0].dtype} but {type(self).__name__} needs floating inputs; "
                    "convert with .float()"
                )
            return METRICS[self.metric](xs)
        stacked = torch.stack(xs, dim=-1).reshape(-1, len(xs))
        return self.metric(stacked).reshape(xs[0].shape)


class _named_metric_fusion(metric_fusion):
    _filled: ClassVar[tuple[str, ...]] = ("metric", "require_parameters")

    def __init__(self, name: str | None = None, *, dims: Dims | None, **kwargs: Any) -> None:
        # the metric is the class's name (max_fusion: 'max'), or its nearest base's
        metrics = (c.__name__.removesuffix("_fusion") for c in type(self).__mro__)
        metric = next(m for m in metrics if m in METRICS)
        super().__init__(dims, metric, name=name or type(self).__name__, **kwargs)


class mean_fusion(_named_metric_fusion):
    """Element-wise mean (see :class:`metric_fusion`); every named metric class takes these Args.

    Args:
        name: the function's name (default: the class's).
        dims: widths of the inputs (all equal), or ``None``; keyword-only and required.
        **kwargs: every other argument as :class:`fusion`.

    Example:
        >>> xs = [torch.tensor([[1.0, -4.0]]), torch.tensor([[3.0, 2.0]])]
        >>> for cls in (mean_fusion, sum_fusion, prod_fusion, max_fusion, min_fusion,
        ...             median_fusion, l1_norm_fusion, l2_norm_fusion):
        ...     print(f"{cls.__name__:14}", cls(dims=[2, 2])(xs).tolist())
        mean_fusion    [[2.0, -1.0]]
        sum_fusion     [[4.0, -2.0]]
        prod_fusion    [[3.0, -8.0]]
        max_fusion     [[3.0, 2.0]]
        min_fusion     [[1.0, -4.0]]
        median_fusion  [[1.0, -4.0]]
        l1_norm_fusion [[4.0, 6.0]]
        l2_norm_fusion [[3.1622776985168457, 4.4721360206604]]
    """


class sum_fusion(_named_metric_fusion):
    """Element-wise sum; arguments as :class:`mean_fusion`."""


class prod_fusion(_named_metric_fusion):
    """Element-wise product; arguments as :class:`mean_fusion`."""


class max_fusion(_named_metric_fusion):
    """Element-wise maximum; arguments as :class:`mean_fusion`."""


class min_fusion(_named_metric_fusion):
    """Element-wise minimum; arguments as :class:`mean_fusion`."""


class median_fusion(_named_metric_fusion):
    """Element-wise (lower) median; arguments as :class:`mean_fusion`."""


class l1_norm_fusion(_named_metric_fusion):
    """Element-wise L1 norm; arguments as :class:`mean_fusion`."""


class l2_norm_fusion(_named_metric_fusion):
    """Element-wise L2 norm; arguments as :class:`mean_fusion`."""
