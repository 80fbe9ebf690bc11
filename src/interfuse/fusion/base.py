r"""The :class:`Fusion` contract shared by the modern fusion modules.

A fusion combines a list of ``k`` tensors :math:`x_1, \dots, x_k` of shapes ``(..., n_i)``
(the same leading dimensions, any number of them) into one tensor ``(..., n')``. An optional
``mask`` marks the inputs that are present, as a bool tensor of shape ``(k,)`` (one flag per
input) or ``(..., k)`` (one flag per input and row; its leading dimensions broadcast to the
inputs'). Absent inputs are skipped, never multiplied by zero, so a ``nan`` placeholder in
an absent input cannot leak into the result.

Every fusion also takes its inputs as a mapping ``{name: tensor}`` (the order fixed by
``names=[...]`` at construction, else by sorted keys), with masks per name, and drops whole
inputs at random while training (``input_dropout``: modality dropout).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from itertools import chain
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from interfuse._validation import check_dims, check_positive_int, check_tensor_list
from interfuse.config import Configurable
from interfuse.functional import check_mask

__all__ = ["Fusion", "Inputs", "MaskLike"]

#: What every fusion's ``forward`` takes: a list of ``k`` tensors, or a mapping name → tensor.
Inputs = Sequence[Tensor] | Mapping[str, Tensor]
#: A presence mask: a bool tensor ``(k,)`` / ``(..., k)``, or (named inputs) a mapping name →
#: ``bool`` or bool tensor of the inputs' leading shape (names left out are present).
MaskLike = Tensor | Mapping[str, bool | Tensor]


class Fusion(Configurable, nn.Module, abc.ABC):
    """Base of the modern fusion modules: validates the inputs, the mask and the widths.

    Subclasses are final. They implement ``forward(xs, mask=None)`` (a few lines calling
    :mod:`interfuse.functional`), :meth:`out_features` and :meth:`get_config`; those with
    parameters own them and re-initialize them in :meth:`reset_parameters`.

    **Named inputs.** ``xs`` may be a mapping ``{name: tensor}``. Its order is ``names`` when
    the module was built with them, else the sorted keys (as torchmultimodal does). A list is
    still accepted, in that order. With named inputs the mask may be a mapping too,
    ``{name: flag}``, each flag a ``bool`` or a bool tensor of the inputs' leading shape (one
    flag per row); names it leaves out are present. A name of ``names`` left out of ``xs`` is
    a missing input: absent in every row (fusions whose widths differ need ``in_dims`` for
    that).

    **Modality dropout** (``input_dropout=p``). In training mode every input of every row is
    dropped with probability ``p``, independently, by marking it absent in the mask (combined
    with the caller's mask, so every fusion treats it as a missing input: means renormalize,
    concatenations zero-fill, ...). A row whose present inputs were all drawn for dropping
    keeps one of them, chosen uniformly at random, so no row is ever left empty. The draws use
    torch's default generator (seed it with :func:`torch.manual_seed`); in eval mode nothing
    is dropped. Nothing is rescaled: a dropped input is exactly a missing one.

    Args:
        num_inputs: the number of inputs ``k`` the module accepts; ``None`` accepts any.
        names: the input names, in fusion order (this also fixes ``k``); ``None``: inputs given
            as a mapping are ordered by their sorted keys.
        input_dropout: the probability ``p ∈ [0, 1)`` of dropping each input of each row while
            training.

    Shape:
        - xs: ``k`` tensors ``(..., n_i)`` with the same leading dims (one shape for the
          element-wise fusions), as a list or a mapping name → tensor.
        - mask: ``(k,)`` or ``(..., k)``, bool; or a mapping name → bool / bool ``(...)``.
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
        >>> g = MeanFusion(names=["text", "image"], input_dropout=0.25)
        >>> xs = {"image": torch.zeros(4, 16), "text": torch.ones(4, 16)}
        >>> g(xs, mask={"image": False})[0, :3]  # the text alone
        tensor([1., 1., 1.])
        >>> g
        MeanFusion(num_inputs=2, names=['text', 'image'], input_dropout=0.25)
    """

    #: Whether every input must have the same shape (element-wise fusions) or only the same
    #: leading dimensions (concatenations).
    same_shape: ClassVar[bool] = True

    #: The input widths a fusion was built for (checked with the inputs), or ``None``.
    in_dims: tuple[int, ...] | None = None

    #: Whether the fusion, without input dropout, commutes with a left matrix product (see
    #: :attr:`is_linear`); a class-level fact, refined per instance by :attr:`is_linear`.
    linear: ClassVar[bool] = False

    def __init__(
        self,
        num_inputs: int | None = None,
        *,
        names: Sequence[str] | None = None,
        input_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_inputs = (
            None if num_inputs is None else check_positive_int("num_inputs", num_inputs)
        )
        self.names = _check_names(names, self.num_inputs)
        if self.names is not None:
            self.num_inputs = len(self.names)
        self.input_dropout = _check_probability("input_dropout", input_dropout)

    # -- the contract -------------------------------------------------------------------------
    @abc.abstractmethod
    def forward(self, xs: Inputs, mask: MaskLike | None = None) -> Tensor:
        """Fuse ``xs`` (``k`` tensors ``(..., n_i)``, a list or a mapping name → tensor) over
        the present inputs."""

    @abc.abstractmethod
    def out_features(self, in_dims: Sequence[int]) -> int:
        """Width of the output's last dimension for inputs of widths ``in_dims`` (no data
        needed); raises if this module does not accept such inputs."""

    @abc.abstractmethod
    def get_config(self) -> dict[str, Any]:
        """The subclass's own constructor arguments (``device``/``dtype`` excluded); the base
        adds ``names`` and ``input_dropout`` (when not the defaults) to :meth:`to_config` and
        the ``repr``."""

    def reset_parameters(self) -> None:
        """Re-initialize the trainable parameters (nothing to do for parameter-free fusions)."""

    # -- shared behaviour ---------------------------------------------------------------------
    @property
    def num_parameters(self) -> int:
        """Scalars in the parameters (fixed weights, which are buffers, excluded; a parameter
        frozen with ``requires_grad_(False)`` still counts)."""
        return sum(p.numel() for p in self.parameters())

    @property
    def is_linear(self) -> bool:
        r"""Whether :math:`F(C A_1, \dots, C A_k) = C\,F(A_1, \dots, A_k)` for every matrix
        ``C`` (a fixed ``(k,)`` mask included): the fusion's weights do not depend on the
        inputs and it draws no random per-row mask (``input_dropout=0``).

        :class:`~interfuse.interdependence.HybridInterdependence` fuses its parts' outputs
        instead of their matrices only for such fusions. A subclass declares the class-level
        fact with ``linear = True`` (and refines this property when an option breaks it)."""
        return self.linear and self.input_dropout == 0.0

    def input_options(self) -> dict[str, Any]:
        """``names`` and ``input_dropout``, where they differ from the defaults."""
        options: dict[str, Any] = {}
        if self.names is not None:
            options["names"] = list(self.names)
        if self.input_dropout != 0.0:
            options["input_dropout"] = self.input_dropout
        return options

    def to_config(self) -> dict[str, Any]:
        config = super().to_config()
        config["params"].update(self.input_options())
        return config

    def extra_repr(self) -> str:
        options = {**self.get_config(), **self.input_options()}
        return ", ".join(f"{k}={v!r}" for k, v in options.items())

    def check_inputs(
        self, xs: Inputs, mask: MaskLike | None = None
    ) -> tuple[list[Tensor], Tensor | None]:
        """Validate ``xs`` and ``mask``; return ``xs`` as a list and the mask to apply (or
        ``None``): the caller's, with the inputs dropped by ``input_dropout`` in training.

        Named inputs (a mapping) are put in order first, and a mask by name becomes a bool
        tensor ``(k,)`` or ``(..., k)``.

        Inputs of different floating dtypes are promoted to one with torch's rules (as
        ``torch.stack`` and ``torch.cat`` do). Raises ``TypeError``/``ValueError`` naming the
        argument, the value and what was expected: not a list (or mapping) of real floating
        tensors on one device, names other than ``names``, leading dimensions (or, for
        element-wise fusions, shapes) that differ, a count other than ``num_inputs``, a mask
        that is not bool ``(k,)``/``(..., k)``, enlarges the inputs' leading shape or leaves no
        input present, inputs on another device than the module. Every forward calls this, so
        the common case costs one pass over the inputs.
        """
        # The common case (a list, no mask, no state, no dropout) skips the helpers' calls:
        # a small fusion's whole forward costs a few microseconds.
        if not (isinstance(xs, (list, tuple)) and (mask is None or isinstance(mask, Tensor))):
            xs, mask = self._order_inputs(xs, mask)
        tensors = check_tensor_list(
            "xs", xs, same_shape=self.same_shape, widths=self.in_dims, owner=type(self).__name__
        )
        if self.num_inputs is not None and len(tensors) != self.num_inputs:
            self._check_count("xs", len(tensors), "tensors")
        checked = None if mask is None else check_mask(mask, tensors)
        if self._parameters or self._buffers or self._modules:
            ref = self._state_ref()
            if (
                ref is not None
                and not (ref.is_cpu and tensors[0].is_cpu)
                and (ref.device != tensors[0].device)
            ):
                raise ValueError(
                    f"xs are on {tensors[0].device} but {type(self).__name__} is on "
                    f"{ref.device}; move the inputs or the module (.to(device))"
                )
        if self.input_dropout and self.training:
            checked = self._drop_inputs(tensors, checked)
        return tensors, checked

    def _order_inputs(
        self, xs: Inputs, mask: MaskLike | None
    ) -> tuple[Sequence[Tensor], Tensor | None]:
        """A mapping of inputs as a list in fusion order, a mask by name as a bool tensor."""
        if isinstance(xs, (list, tuple)) and (mask is None or isinstance(mask, Tensor)):
            return xs, mask  # the common case, without the abstract-class checks below
        names = self.names
        if isinstance(xs, Mapping):
            keys = list(xs)
            for key in keys:
                if not isinstance(key, str):
                    raise TypeError(f"xs keys must be input names (str), got {key!r}")
            if names is None:
                names = tuple(sorted(keys))
            elif set(keys) != set(names):
                unexpected = sorted(set(keys) - set(names))
                if unexpected or not keys:
                    raise ValueError(
                        f"xs has names {sorted(keys)} but {type(self).__name__} was built for "
                        f"names={list(names)} (unexpected {unexpected})"
                    )
                xs, mask = self._fill_missing(xs, names, mask)
            xs = [xs[n] for n in names]
        if not isinstance(mask, Mapping):
            return xs, mask
        if names is None:
            raise TypeError(
                "mask may be a mapping of names only for named inputs: pass xs as a mapping "
                f"or build {type(self).__name__} with names=[...]"
            )
        return xs, _mask_from_names(mask, names, xs)

    def expected_width(self, i: int) -> int | None:
        """The width of input ``i`` fixed at construction, if any (``None`` here: element-wise
        fusions take their inputs' common width)."""
        return None

    def _fill_missing(
        self, xs: Mapping[str, Tensor], names: Sequence[str], mask: MaskLike | None
    ) -> tuple[dict[str, Tensor], MaskLike]:
        """Named inputs left out of ``xs``: zero placeholders (broadcast views, no memory),
        marked absent in the mask."""
        first = next(iter(xs.values()))
        if not isinstance(first, Tensor) or first.ndim == 0:
            raise TypeError(f"xs values must be tensors of at least one dimension, got {first!r}")
        filled = dict(xs)
        missing = [n for n in names if n not in xs]
        for name in missing:
            width = first.shape[-1] if self.same_shape else self.expected_width(names.index(name))
            if width is None:
                raise ValueError(
                    f"xs lacks {missing} and {type(self).__name__} was built without in_dims, so "
                    "their widths are unknown; pass placeholder tensors marked absent in the mask"
                )
            filled[name] = first.new_zeros(()).expand(*first.shape[:-1], width)
        if isinstance(mask, Mapping):
            return filled, {**mask, **dict.fromkeys(missing, False)}
        present = torch.tensor([n not in missing for n in names], device=first.device)
        if mask is None:
            return filled, present
        if (
            isinstance(mask, Tensor)
            and mask.dtype == torch.bool
            and mask.shape[-1:] == (len(names),)
        ):
            return filled, mask & present
        return filled, mask  # malformed: check_mask says why

    def _drop_inputs(self, xs: Sequence[Tensor], mask: Tensor | None) -> Tensor | None:
        """The mask with modality dropout applied (training mode, ``input_dropout > 0``)."""
        first = xs[0]
        u = torch.rand((*first.shape[:-1], len(xs)), device=first.device)
        present = (
            torch.ones(len(xs), dtype=torch.bool, device=first.device) if mask is None else mask
        )
        kept = present & (u >= self.input_dropout)
        # Where every present input was drawn for dropping, keep the present one with the
        # largest draw: the draws are i.i.d., so that is a uniform choice among them.
        rescue = torch.where(present, u, -1.0).argmax(-1, keepdim=True)
        one = torch.zeros_like(kept).scatter_(-1, rescue, True)
        return torch.where(kept.any(-1, keepdim=True), kept, one)

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


def _check_names(names: object, num_inputs: int | None) -> tuple[str, ...] | None:
    if names is None:
        return None
    if isinstance(names, (str, bytes)) or not isinstance(names, Sequence):
        raise TypeError(f"names must be a list of str (input names), got {names!r}")
    for i, name in enumerate(names):
        if not isinstance(name, str) or not name:
            raise TypeError(f"names[{i}] must be a non-empty str, got {name!r}")
    if not names:
        raise ValueError("names must name at least one input, got []")
    dupes = sorted({n for n in names if list(names).count(n) > 1})
    if dupes:
        raise ValueError(f"names must be distinct, got {list(names)} ({dupes} repeated)")
    if num_inputs is not None and len(names) != num_inputs:
        raise ValueError(
            f"names has {len(names)} entries {list(names)} but num_inputs={num_inputs}"
        )
    return tuple(names)


def _check_probability(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a probability in [0, 1), got {value!r}")
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1), got {value}")
    return float(value)


def _mask_from_names(
    mask: Mapping[str, bool | Tensor], names: Sequence[str], xs: Sequence[Tensor]
) -> Tensor:
    """``{name: flag}`` as a bool tensor ``(k,)`` (all flags scalar) or ``(..., k)``."""
    unknown = sorted(set(mask) - set(names))
    if unknown:
        raise ValueError(f"mask names {unknown} are not inputs; the inputs are {list(names)}")
    device = xs[0].device if xs and isinstance(xs[0], Tensor) else None
    flags: list[Tensor] = []
    for name in names:
        flag = mask.get(name, True)
        if isinstance(flag, bool):
            flags.append(torch.tensor(flag, device=device))
        elif isinstance(flag, Tensor) and flag.dtype == torch.bool:
            flags.append(flag)
        else:
            raise TypeError(
                f"mask[{name!r}] must be a bool or a bool tensor of the inputs' leading shape, "
                f"got {flag!r}"
            )
    try:
        shape = torch.broadcast_shapes(*(f.shape for f in flags))
    except RuntimeError:
        shapes = {n: tuple(f.shape) for n, f in zip(names, flags, strict=True)}
        raise ValueError(f"mask flags have shapes {shapes} that do not broadcast") from None
    return torch.stack([f.expand(shape) for f in flags], dim=-1)


class _FixedWidths(Fusion):
    """Fusions built for fixed input widths ``in_dims`` (one learned map per input)."""

    in_dims: tuple[int, ...]

    def expected_width(self, i: int) -> int:
        return self.in_dims[i]

    def _check_built_dims(self, in_dims: Sequence[int]) -> None:
        """``in_dims`` (for :meth:`out_features`) must be the widths built for."""
        dims = self.check_in_dims(in_dims)
        if dims != self.in_dims:
            raise ValueError(
                f"in_dims={list(dims)} differ from the in_dims={list(self.in_dims)} "
                f"{type(self).__name__} was built for"
            )
