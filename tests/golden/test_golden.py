"""Behaviour that must not move by accident: the recorded outputs, byte for byte (timings aside).

A change that moves behaviour on purpose regenerates them with ``make golden`` in its own commit.
"""

from __future__ import annotations

import pytest

from tests.golden.cases import CASES, Case

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_output_matches_the_recorded_golden_file(case: Case) -> None:
    assert case.path.exists(), f"no golden file {case.path.name}: run `make golden`"
    assert case.produce() == case.path.read_text()
