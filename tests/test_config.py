"""The modern face's config API: ``Class.from_config``, top-level functions, files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import interfuse
from interfuse import LowRankMatrix, ProjectedConcatFusion, SumFusion


def test_classmethod_rebuilds_same_class_and_outputs() -> None:
    fuse = ProjectedConcatFusion([3, 5], 4, matrix="lowrank", matrix_options={"rank": 2})
    rebuilt = ProjectedConcatFusion.from_config(fuse.to_config())
    assert type(rebuilt) is ProjectedConcatFusion
    rebuilt.load_state_dict(fuse.state_dict())
    xs = [torch.randn(2, 3), torch.randn(2, 5)]
    torch.testing.assert_close(rebuilt(xs), fuse(xs))


def test_classmethod_accepts_subclass_config_through_base() -> None:
    assert isinstance(interfuse.Fusion.from_config(SumFusion().to_config()), SumFusion)


def test_classmethod_rejects_other_class() -> None:
    with pytest.raises(TypeError, match="config describes SumFusion, which is not a LowRankMatrix"):
        LowRankMatrix.from_config(SumFusion().to_config())


def test_classmethod_passes_dtype() -> None:
    m = LowRankMatrix.from_config(LowRankMatrix(6, 4, rank=2).to_config(), dtype=torch.float64)
    assert all(p.dtype == torch.float64 for p in m.parameters())


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_dump_and_load_file(tmp_path: Path, suffix: str) -> None:
    m = LowRankMatrix(6, 4, rank=2)
    path = tmp_path / f"m{suffix}"
    interfuse.dump_config(m, path)
    loaded = interfuse.load_config(path)
    assert loaded.to_config() == m.to_config()
