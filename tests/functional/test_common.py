"""What the element-wise kernels share (``interfuse.functional._common``)."""

from __future__ import annotations

import pytest
import torch

from interfuse.functional._common import SMALL_BYTES, onnx_exporting, plain_size


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
