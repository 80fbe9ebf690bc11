r"""The :class:`Fusion` contract shared by the modern fusion modules.

A fusion combines a list of ``k`` tensors :math:`x_1, \dots, x_k` of shapes ``(..., n_i)``
(the same leading dimensions, any number of them) into one tensor ``(..., n')``. An optional
``mask`` marks the inputs that are present, as a bool tensor of shape ``(k,)`` (one flag per
input) or ``(..., k)`` (one flag per input and row; its leading dimensions broadcast to the
inputs'). Absent inputs are skipped, never multiplied by zero, so a ``nan`` placeholder in
an absent input cannot leak into the result.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from itertools import chain
from typing import Any, ClassVar

from torch import Tensor, nn

from interfuse._validation import check_dims, check_positive_int, check_tensor_list
from interfuse.config import Configurable
from interfuse.functional import check_mask

__all__ = ["Fusion"]


class Fusion(Configurable, nn.Module, abc.ABC):
    """Base of the modern fusion modules: validates the inputs, the mask and the widths.

    Subclasses are final. They implement ``forward(xs, mask=None)`` (a few lines calling
    :mod:`interfuse.functional`), :meth:`out_features` and :meth:`get_config`; those with
    parameters own them and re-initialize them in :meth:`reset_parameters`.

    Args:
        num_inputs: the number of inputs ``k`` the module accepts; ``None`` accepts any.

    Shape:
        - xs: ``k`` tensors ``(..., n_i)`` with the same leading dims (one shape for the
          element-wise fusions).
        - mask: ``(k,)`` or ``(..., k)``, bool.
        - Output: ``(..., n')``, ``n' = out_features([n_1, …, n_k])``.

    Example:
        >>> f = MeanFusion(num_inputs=2)
        >>> isinstance(f, Fusion), f.out_features([16, 16])
        (True, 16)
        >>> f([torch.ones(4, 16), torch.zeros(4, 16)]).shape
        torch.Size([4, 16])
        >>> f([torch.ones(4, 16)])
        Traceback (most recent call last):
        ValueError: xs has 1 tensors but MeanFusion was built for num_inputs=2
    """

    #: Whether every input must have the same shape (element-wise fusions) or only the same
    #: leading dimensions (concatenations).
    same_shape: ClassVar[bool] = True

    def __init__(self, num_inputs: int | None = None) -> None:
        super().__init__()
        self.num_inputs = (
            None if num_inputs is None else check_positive_int("num_inputs", num_inputs)
        )

    # -- the contract -------------------------------------------------------------------------
    @abc.abstractmethod
    def forward(self, xs: Sequence[Tensor], mask: Tensor | None = None) -> Tensor:
        """Fuse ``xs`` (a list of ``k`` tensors ``(..., n_i)``) over the present inputs."""

    @abc.abstractmethod
    def out_features(self, in_dims: Sequence[int]) -> int:
        """Width of the output's last dimension for inputs of widths ``in_dims`` (no data
        needed); raises if this module does not accept such inputs."""

    @abc.abstractmethod
    def get_config(self) -> dict[str, Any]:
        """Constructor arguments (``device``/``dtype`` excluded)."""

    def reset_parameters(self) -> None:
        """Re-initialize the trainable parameters (nothing to do for parameter-free fusions)."""

    # -- shared behaviour ---------------------------------------------------------------------
    @property
    def num_parameters(self) -> int:
        """Scalars in the parameters (fixed weights, which are buffers, excluded; a parameter
        frozen with ``requires_grad_(False)`` still counts)."""
        return sum(p.numel() for p in self.parameters())

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())

    def check_inputs(
        self, xs: Sequence[Tensor], mask: Tensor | None = None
    ) -> tuple[list[Tensor], Tensor | None]:
        """Validate ``xs`` and ``mask``; return ``xs`` as a list and ``mask`` (or ``None``).

        Inputs of different floating dtypes are promoted to one with torch's rules (as
        ``torch.stack`` and ``torch.cat`` do). Raises ``TypeError``/``ValueError`` naming the
        argument, the value and what was expected: not a list of real floating tensors on one
        device, leading dimensions (or, for element-wise fusions, shapes) that differ, a count
        other than ``num_inputs``, a mask that is not bool ``(k,)``/``(..., k)``, enlarges the
        inputs' leading shape or leaves no input present, inputs on another device than the
        module. Every forward calls this, so the common case costs one pass over the inputs.
        """
        tensors = check_tensor_list("xs", xs, same_shape=self.same_shape)
        if self.num_inputs is not None and len(tensors) != self.num_inputs:
            self._check_count("xs", len(tensors), "tensors")
        checked = None if mask is None else check_mask(mask, tensors)
        ref = self._state_ref()
        if ref is not None and ref.device != tensors[0].device:
            raise ValueError(
                f"xs are on {tensors[0].device} but {type(self).__name__} is on "
                f"{ref.device}; move the inputs or the module (.to(device))"
            )
        return tensors, checked

    def _state_ref(self) -> Tensor | None:
        """A parameter or buffer of this module (its device is the module's), or ``None``;
        looked up on every call (a module may be moved or its parameters replaced), the own
        ones first because walking ``parameters()`` costs microseconds."""
        for param in self._parameters.values():
            if param is not None:
                return param
        for buffer in self._buffers.values():
            if buffer is not None:
                return buffer
        if not self._modules:
            return None
        return next(chain(self.parameters(), self.buffers()), None)

    def check_in_dims(self, in_dims: Sequence[int]) -> tuple[int, ...]:
        """Validate the widths ``in_dims`` (positive ints, ``num_inputs`` of them, all equal
        for element-wise fusions) and return them as a tuple."""
        dims = check_dims("in_dims", in_dims)
        self._check_count("in_dims", len(dims), "widths")
        if self.same_shape and len(set(dims)) > 1:
            raise ValueError(
                f"in_dims must all be equal for {type(self).__name__} (an element-wise fusion), "
                f"got {list(dims)}"
            )
        return dims

    def _check_count(self, name: str, k: int, what: str) -> None:
        if self.num_inputs is not None and k != self.num_inputs:
            raise ValueError(
                f"{name} has {k} {what} but {type(self).__name__} was built for "
                f"num_inputs={self.num_inputs}"
            )
