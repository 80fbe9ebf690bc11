"""Bad constructor arguments of the tinyBIG face: a ``TypeError`` naming the class.

The message names the class, the unexpected keywords (with the closest accepted name), the
missing required arguments and every argument the class accepts, including those a class
forwards to its base through ``**kwargs``. The exception stays a ``TypeError`` (what Python
raises for a bad call), chained to the original where ``inspect.Signature.bind`` failed.
Unknown keywords alone are what tinyBIG's ``**kwargs`` swallowed: they warn
(:class:`~interfuse.tinybig.errors.TinybigWarning`, with the same hints) and are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

import interfuse.tinybig as tb
from interfuse.tinybig.errors import TinybigWarning


@pytest.mark.parametrize(
    ("call", "match"),
    [
        pytest.param(
            lambda: tb.max_fusion(dimz=[2, 2]),
            r"^max_fusion\(\): unexpected keyword argument 'dimz' \(did you mean 'dims'\?\); "
            r"missing required argument 'dims'\. max_fusion accepts: name, dims \(required\), "
            r"preprocess_functions, .*device$",
            id="max-misspelled",
        ),
        pytest.param(
            lambda: tb.summation_fusion(),
            r"^summation_fusion\(\): missing required argument 'dims'\. summation_fusion "
            r"accepts: dims \(required\), name, require_parameters, ",
            id="summation-missing",
        ),
        pytest.param(
            lambda: tb.parameterized_interdependence(b=2),
            r"^parameterized_interdependence\(\): missing required argument 'm'\. "
            r"parameterized_interdependence accepts: b \(required\), m \(required\), b_prime, "
            r"m_prime, interdependence_type, ",
            id="interdependence-missing",
        ),
        pytest.param(
            lambda: tb.max_fusion([2, 2], "a", 3, 4, 5, 6, 7, 8),  # type: ignore[call-arg]
            r"^max_fusion\(\): too many positional arguments; missing required argument 'dims'",
            id="too-many-positional",
        ),
        pytest.param(
            lambda: tb.summation_fusion([2, 2], dims=[2, 2]),  # type: ignore[misc]
            r"^summation_fusion\(\): multiple values for argument 'dims'\. summation_fusion "
            r"accepts: ",
            id="given-twice",
        ),
        # **kwargs forwarded to the base class: checked against the base's arguments too
        pytest.param(
            lambda: tb.hm_parameterized_interdependence(p=2),  # type: ignore[call-arg]
            r"^hm_parameterized_interdependence\(\): missing required arguments 'b', 'm'\. "
            r"hm_parameterized_interdependence accepts: p \(required\), q, name, kronecker, "
            r"b \(required\), m \(required\), b_prime, m_prime, ",
            id="hm-missing-forwarded",
        ),
        pytest.param(
            lambda: tb.lowrank_parameterized_bilinear_interdependence(b=2, n=4, r=1),
            r"^lowrank_parameterized_bilinear_interdependence\(\): unexpected keyword argument "
            r"'n'; missing required argument 'm'\. lowrank_parameterized_bilinear_interdependence "
            r"accepts: r, name, b \(required\), m \(required\), interdependence_type, ",
            id="bilinear-forwarded",
        ),
    ],
)
def test_bad_constructor_arguments_name_the_class(call: Callable[[], object], match: str) -> None:
    with pytest.raises(TypeError, match=match) as info:
        call()
    assert type(info.value) is TypeError


def test_bind_errors_are_chained() -> None:
    with pytest.raises(TypeError, match=r"^max_fusion\(\)") as info:
        tb.max_fusion(dimz=[2, 2])
    assert isinstance(info.value.__cause__, TypeError)
    assert "missing a required argument: 'dims'" in str(info.value.__cause__)


def test_max_fusion_needs_dims_by_keyword() -> None:
    """``max_fusion`` takes ``dims`` by keyword only (its first positional is ``name``)."""
    with pytest.raises(TypeError, match=r"missing required argument 'dims'"):
        tb.max_fusion()
    assert tb.max_fusion(dims=[2, 2]).dims == [2, 2]


def test_good_arguments_still_work() -> None:
    f = tb.hm_parameterized_interdependence(b=2, m=4, p=2, m_prime=6, q=3, kronecker=True)
    assert (f.p, f.q, f.calculate_m_prime()) == (2, 3, 6)
    g = tb.hm_parameterized_interdependence(2, b=2, m=4)
    assert g.p == 2
    assert tb.summation_fusion([2, 2], "s", False).name == "s"


def test_message_lists_only_accepted_arguments() -> None:
    with pytest.raises(TypeError) as info:
        tb.mean_fusion(dim=[2])
    accepted = str(info.value).split("accepts: ", 1)[1]
    assert re.split(r", ", accepted)[:2] == ["name", "dims (required)"]
    assert "self" not in accepted and "kwargs" not in accepted


@pytest.mark.parametrize(
    ("call", "match"),
    [
        pytest.param(
            lambda: tb.parameterized_interdependence(b=2, m=2, foo=1, bar=2),
            r"unexpected keyword arguments 'foo', 'bar'\. parameterized_interdependence "
            r"accepts: b \(required\)",
            id="interdependence-two-unknown",
        ),
        pytest.param(
            lambda: tb.weighted_summation_fusion(dims=[2, 2], weight=[1.0, 1.0]),
            r"^weighted_summation_fusion\(\): unexpected keyword argument 'weight' "
            r"\(did you mean 'weights'\?\)\. weighted_summation_fusion accepts: dims, weights, ",
            id="weights-misspelled",
        ),
        pytest.param(
            lambda: tb.parameterized_concatenation_fusion(dims=[2, 2], m=3),
            r"^parameterized_concatenation_fusion\(\): unexpected keyword argument 'm'\. "
            r"parameterized_concatenation_fusion accepts: n, dims, name, ",
            id="concatenation-n",
        ),
        pytest.param(
            lambda: tb.lphm_parameterized_interdependence(
                b=2, m=4, r=1, p=2, mprime=4, kroneker=True
            ),
            r"^lphm_parameterized_interdependence\(\): unexpected keyword arguments 'mprime', "
            r"'kroneker' \(did you mean 'm_prime' for 'mprime', 'kronecker' for 'kroneker'\?\)",
            id="lphm-misspelled-forwarded",
        ),
    ],
)
def test_unknown_keywords_alone_warn_and_are_ignored(
    call: Callable[[], object], match: str
) -> None:
    with pytest.warns(TinybigWarning, match=match):
        call()
