"""Every bad input of the catalogue fails at once, with the documented type and message."""

from __future__ import annotations

import re

import pytest

from tests.reliability.catalogue import CASES, BadInput, ids_are_unique, provoke, render

#: Exception types that must never reach the user on their own (spec: "no bad input may
#: surface as AssertionError alone, IndexError, AttributeError or a raw RuntimeError").
FORBIDDEN = (AssertionError, IndexError, AttributeError, KeyError, RuntimeError)


def test_catalogue_size_and_ids() -> None:
    assert len(CASES) >= 40, f"the catalogue holds {len(CASES)} bad inputs, the issue asks for 40"
    assert ids_are_unique()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input(case: BadInput) -> None:
    with pytest.raises(case.raises, match=case.match) as info:
        case.call()
    err = info.value
    assert type(err) is case.raises, f"{case.id}: expected exactly {case.raises}, got {type(err)}"
    assert str(err), f"{case.id}: empty message"
    if isinstance(err, FORBIDDEN) and not isinstance(err, ValueError):
        assert case.clear_runtime and type(err) is RuntimeError, (
            f"{case.id}: surfaced as a bare {type(err).__name__}: {err}"
        )


def test_forbidden_types_are_also_value_errors() -> None:
    """Where an original type is kept (tinyBIG face), it is paired with ``ValueError``."""
    for case in CASES:
        if issubclass(case.raises, (AssertionError, IndexError, AttributeError)):
            assert issubclass(case.raises, ValueError), case.id


def test_docs_page_is_current() -> None:
    from tests.reliability.catalogue import DOC_PATH

    assert DOC_PATH.exists(), "run `python -m tests.reliability.catalogue` to write docs/errors.md"
    assert DOC_PATH.read_text() == render(), (
        "docs/errors.md is stale: run `python -m tests.reliability.catalogue`"
    )


def test_unknown_names_list_the_choices() -> None:
    """Every 'unknown name' error shows the list of valid choices."""
    for case in CASES:
        if case.category == "unknown names" and case.raises is ValueError:
            assert re.search(r"\[('[^']+', )+'[^']+'\]", str(provoke(case))), case.id
