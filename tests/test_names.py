"""One resolver for fusions and matrices: canonical names, aliases and class names, the same
rules and messages for both registries."""

from __future__ import annotations

import pytest

from interfuse._names import NameResolver
from interfuse.fusion import FUSIONS, Fusion, SumFusion, fusion_class
from interfuse.fusion.registry import _ALIASES as FUSION_ALIASES
from interfuse.matrices import MATRICES, LowRankMatrix, StructuredMatrix, matrix_class
from interfuse.matrices.registry import _ALIASES as MATRIX_ALIASES


@pytest.mark.parametrize(
    ("resolve", "table", "aliases"),
    [(fusion_class, FUSIONS, FUSION_ALIASES), (matrix_class, MATRICES, MATRIX_ALIASES)],
    ids=["fusion", "matrix"],
)
def test_every_name_alias_and_class_name_resolves(
    resolve: object, table: dict[str, type], aliases: dict[str, str]
) -> None:
    for name, cls in table.items():
        for spelling in (name, name.upper(), name.replace("_", "-"), cls.__name__, cls):
            assert resolve(spelling) is cls, spelling  # type: ignore[operator]
    for alias, canonical in aliases.items():
        assert resolve(alias) is table[canonical]  # type: ignore[operator]


def test_class_names_resolve_in_both_registries() -> None:
    assert fusion_class("SumFusion") is fusion_class("sum") is SumFusion
    assert matrix_class("LowRankMatrix") is matrix_class("low_rank") is LowRankMatrix
    assert matrix_class("lowrank-matrix") is LowRankMatrix


@pytest.mark.parametrize(
    ("resolve", "name", "error", "match"),
    [
        (
            fusion_class,
            "avg",
            ValueError,
            r"fusion must be one of \['attention', .*\] or the aliases",
        ),
        (matrix_class, "lowrnak", ValueError, r"matrix must be one of \[.*'monarch'.*\], got"),
        (matrix_class, "SumFusion", ValueError, r"got 'SumFusion'"),
        (fusion_class, 3, TypeError, r"fusion must be a name, a Fusion class or a Fusion, got 3"),
        (matrix_class, SumFusion, TypeError, r"matrix must be a name or a StructuredMatrix"),
    ],
)
def test_errors_list_the_choices(resolve: object, name: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        resolve(name)  # type: ignore[operator]


def test_an_entry_added_to_the_registry_is_found_at_once() -> None:
    table: dict[str, type] = {"plain": LowRankMatrix}
    names: NameResolver[StructuredMatrix] = NameResolver(
        "matrix", StructuredMatrix, table, {}, "Matrix", "a name"
    )
    with pytest.raises(ValueError):
        names.resolve("extra")
    table["extra"] = Fusion
    assert names.resolve("Extra_Matrix") is Fusion
