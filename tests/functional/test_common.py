"""What the element-wise kernels share (``interfuse.functional._common``)."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch.overrides import TorchFunctionMode

from interfuse import functional as fn
from interfuse.functional import _common, elementwise
from interfuse.functional._common import SMALL_BYTES, onnx_exporting, plain_size, reads_cheaply


def test_onnx_exporting_agrees_with_torch_for_both_exporters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The cached flag reads what ``torch.onnx.is_in_onnx_export`` reads, for the dynamo
    exporter's flag and the TorchScript exporter's."""
    from torch.onnx._internal.exporter import _flags
    from torch.onnx._internal.torchscript_exporter._globals import GLOBALS

    assert onnx_exporting() is False and torch.onnx.is_in_onnx_export() is False
    monkeypatch.setattr(_flags, "_is_onnx_exporting", True)
    assert onnx_exporting() is True and torch.onnx.is_in_onnx_export() is True
    monkeypatch.setattr(_flags, "_is_onnx_exporting", False)
    monkeypatch.setattr(GLOBALS, "in_onnx_export", True)
    assert onnx_exporting() is True and torch.onnx.is_in_onnx_export() is True


def test_plain_size_is_the_threshold_outside_tracing() -> None:
    assert plain_size(SMALL_BYTES) and not plain_size(SMALL_BYTES + 1)


class _NoHostReads(TorchFunctionMode):
    """Fails on any read of a tensor's value on the host (a synchronization on a GPU)."""

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        name = getattr(func, "__name__", "")
        if name in ("item", "tolist", "__bool__", "__float__", "__int__"):
            raise AssertionError(f"{name} read a value on the host")
        return func(*args, **(kwargs or {}))


def test_overflow_guarantees_read_no_value_where_a_read_would_stall(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # On an accelerator a host read would synchronize the stream on every call: the small-size
    # products and norms take float64 from the start there, with the results the CPU's
    # check-and-redo gives.
    assert reads_cheaply(torch.ones(1))
    big = [torch.full((2, 3), 1e30), torch.full((2, 3), 1e30), torch.full((2, 3), 1e-30)]
    cpu = (fn.fused_prod(big), fn.fused_norm(big, p=2))
    for module in (_common, elementwise):
        monkeypatch.setattr(module, "reads_cheaply", lambda t: False)
    with _NoHostReads():
        prod, norm = fn.fused_prod(big), fn.fused_norm(big, p=2)
    torch.testing.assert_close(prod, torch.full((2, 3), 1e30))
    torch.testing.assert_close(norm, torch.full((2, 3), 1e30 * math.sqrt(2)))
    assert torch.equal(prod, cpu[0]) and torch.equal(norm, cpu[1])
