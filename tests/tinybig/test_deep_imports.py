"""A tinyBIG-style script with the original's deep imports runs after the rename
``tinybig.`` → ``interfuse.tinybig.`` (the migration the face promises), with tinyBIG's numbers.

The script is kept as tinyBIG code (it imports ``tinybig``); the test renames and runs it.
"""

from __future__ import annotations

import re
import textwrap

import pytest

TINYBIG_SCRIPT = textwrap.dedent(
    """
    import torch
    from tinybig.module.base_fusion import fusion
    from tinybig.module.base_interdependence import interdependence
    from tinybig.fusion.metric_fusion import max_fusion, mean_fusion
    from tinybig.fusion.basic_fusion import weighted_summation_fusion, summation_fusion
    from tinybig.fusion.concatenation_fusion import concatenation_fusion
    from tinybig.fusion.parameterized_concatenation_fusion import (
        lowrank_parameterized_concatenation_fusion,
        hm_parameterized_concatenation_fusion,
    )
    from tinybig.interdependence.parameterized_interdependence import (
        parameterized_interdependence,
    )
    from tinybig.interdependence.parameterized_bilinear_interdependence import (
        lowrank_parameterized_bilinear_interdependence,
    )
    from tinybig.interdependence.hybrid_interdependence import hybrid_interdependence
    import tinybig.fusion

    x1 = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    x2 = torch.tensor([[5.0, 6.0], [7.0, 8.0]])
    results = {}
    results["max"] = max_fusion(dims=[2, 2])([x1, x2])
    results["mean"] = tinybig.fusion.mean_fusion(dims=[2, 2])([x1, x2])
    results["weighted"] = weighted_summation_fusion(
        dims=[2, 2], weights=torch.tensor([0.25, 0.75])
    )([x1, x2])
    results["sum"] = summation_fusion(dims=[2, 2])([x1, x2])
    cat = concatenation_fusion(dims=[2, 2])
    results["cat_n"] = cat.calculate_n()
    f = lowrank_parameterized_concatenation_fusion(r=1, n=2, dims=[2, 2])
    results["lowrank_l"] = f.calculate_l([2, 2])  # tinyBIG's tests pass dims here too
    results["lowrank"] = f([x1, x2], w=torch.ones(1, f.calculate_l()))
    hm = hm_parameterized_concatenation_fusion(p=2, n=4, dims=[2, 2])
    results["hm"] = hm([x1[:1], x2[:1]], w=torch.arange(1.0, 9.0).view(1, 8))
    dep = parameterized_interdependence(b=2, m=2, interdependence_type="attribute")
    results["A"] = dep.calculate_A(w=torch.arange(4.0).view(1, 4))
    bil = lowrank_parameterized_bilinear_interdependence(
        b=2, m=2, r=1, interdependence_type="attribute"
    )
    results["bilinear_l"] = bil.calculate_l()
    hyb = hybrid_interdependence(
        b=2,
        m=2,
        interdependence_functions=[parameterized_interdependence(b=2, m=2) for _ in range(2)],
        fusion_function=mean_fusion(dims=[2, 2]),
    )
    results["hybrid_l"] = hyb.calculate_l()
    results["is_fusion"] = isinstance(cat, fusion) and isinstance(dep, interdependence)
    """
)


def migrate(source: str) -> str:
    """The whole migration: rename the imports."""
    return re.sub(r"\btinybig\.", "interfuse.tinybig.", source)


def test_script_needs_only_the_rename() -> None:
    migrated = migrate(TINYBIG_SCRIPT)
    assert "from tinybig" not in migrated and "import tinybig" not in migrated.replace(
        "import interfuse.tinybig", ""
    )
    namespace: dict[str, object] = {}
    exec(compile(migrated, "<tinybig script>", "exec"), namespace)
    r = namespace["results"]
    assert isinstance(r, dict)
    torch = pytest.importorskip("torch")
    torch.testing.assert_close(r["max"], torch.tensor([[5.0, 6.0], [7.0, 8.0]]))
    torch.testing.assert_close(r["mean"], torch.tensor([[3.0, 4.0], [5.0, 6.0]]))
    torch.testing.assert_close(r["weighted"], torch.tensor([[4.0, 5.0], [6.0, 7.0]]))
    torch.testing.assert_close(r["sum"], torch.tensor([[6.0, 8.0], [10.0, 12.0]]))
    assert r["cat_n"] == 4 and r["lowrank_l"] == 6 and r["bilinear_l"] == 4
    # w = 1: W = U V = 1·1ᵀ (2×4), so each output is the sum of the concatenated row
    torch.testing.assert_close(r["lowrank"], torch.tensor([[14.0, 14.0], [22.0, 22.0]]))
    # W = reshape(outer(a, b)): y_i = a_i (b · x) = a_i · 100 (tinyBIG's numbers)
    torch.testing.assert_close(r["hm"], torch.tensor([[100.0, 200.0, 300.0, 400.0]]))
    torch.testing.assert_close(r["A"], torch.tensor([[0.0, 1.0], [2.0, 3.0]]))
    assert r["hybrid_l"] == 8 and r["is_fusion"] is True


def test_every_tinybig_module_path_of_the_face_imports() -> None:
    import importlib

    for path in (
        "fusion.basic_fusion",
        "fusion.metric_fusion",
        "fusion.concatenation_fusion",
        "fusion.parameterized_concatenation_fusion",
        "interdependence.parameterized_interdependence",
        "interdependence.parameterized_bilinear_interdependence",
        "interdependence.parameterized_rpn_interdependence",
        "interdependence.hybrid_interdependence",
        "module.base_fusion",
        "module.base_interdependence",
        "module.base_function",
    ):
        module = importlib.import_module(f"interfuse.tinybig.{path}")
        assert module.__all__, path


def test_configs_naming_deep_paths_load() -> None:
    """tinyBIG's configs name classes by module path; both spellings load."""
    import interfuse.tinybig as tb

    for path in (
        "tinybig.fusion.metric_fusion.max_fusion",
        "interfuse.tinybig.fusion.metric_fusion.max_fusion",
    ):
        f = tb.instantiation_from_configs(
            {"function_class": path, "function_parameters": {"dims": [2, 2]}}
        )
        assert type(f) is tb.max_fusion
