"""The mask information charged in p_eff: measured where an estimate exists, else bounded."""

import math
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robustlaw.bounds import effective_parameter_count, mask_information
from robustlaw.errors import ValidationError


@settings(max_examples=80, deadline=None)
@given(p=st.integers(1, 400), frac=st.floats(0, 1), share=st.floats(0, 1))
def test_sources_and_values(p, frac, share):
    kept = round(frac * p)
    ceiling = math.log2(math.comb(p, kept))
    assert mask_information(p=p, kept=kept, data_dependent=False, measured=1.0).bits == 0.0
    bound = mask_information(p=p, kept=kept, data_dependent=True)
    assert bound.source == "entropy-bound"
    assert bound.bits == pytest.approx(ceiling, rel=1e-9, abs=1e-9)
    measured = mask_information(p=p, kept=kept, data_dependent=True, measured=share * ceiling)
    assert (measured.source, measured.bits) == ("measured", share * ceiling)
    # a measured value never charges more than the ceiling, so its p_eff is never larger
    common = dict(kept=kept, W=10.0, J=10.0, eps=0.5)
    assert effective_parameter_count(mutual_information_bits=measured.bits, **common) <= (
        effective_parameter_count(mutual_information_bits=bound.bits, **common) + 1e-9
    )


def test_an_estimate_charges_its_interval_upper_end():
    # shaped like robustlaw.empirical.entropy.EntropyEstimate (this test stays torch-free)
    est = SimpleNamespace(bits=2.0, ci_low=1.5, ci_high=2.5)
    assert mask_information(p=21, kept=10, data_dependent=True, measured=est).bits == 2.5
    exact = SimpleNamespace(bits=3.25, ci_low=None, ci_high=None)
    assert mask_information(p=21, kept=10, data_dependent=True, measured=exact).bits == 3.25


@pytest.mark.parametrize("measured", [-0.1, math.nan, math.inf, "3", True, 18.43])
def test_impossible_measurements_are_refused(measured):
    # log2 C(21, 10) = 18.428...: 18.43 bits is more than any such mask can carry
    with pytest.raises(ValidationError):
        mask_information(p=21, kept=10, data_dependent=True, measured=measured)
