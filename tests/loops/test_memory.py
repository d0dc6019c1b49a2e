"""Winner memory's pure core: qualification with evidence, lapsing, vectors, indexes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from adflywheel.loops import memory as core
from adflywheel.loops.memory import WinnerPolicy, WinnerSource, WinnerStatus

POLICY = WinnerPolicy()


def test_the_posterior_is_the_beta_with_a_uniform_prior() -> None:
    expected = stats.beta.sf(0.03, 1 + 40, 1 + 960)
    assert core.probability_above(40, 1000, 0.03) == pytest.approx(expected)


def test_a_few_lucky_clicks_are_not_a_winner() -> None:
    lucky = core.evaluate(3, 80, POLICY)  # 3.75% CTR, but on 80 impressions
    assert lucky.ctr > POLICY.threshold_ctr
    assert not lucky.enough_data and not lucky.qualifies


def test_a_credible_winner_qualifies_and_a_marginal_one_does_not() -> None:
    strong = core.evaluate(40, 1000, POLICY)  # 4%: P(CTR > 3%) ≈ 0.97
    marginal = core.evaluate(35, 1000, POLICY)  # 3.5%: above the line, not credibly
    assert strong.qualifies and strong.probability_above > 0.95
    assert marginal.ctr > POLICY.threshold_ctr and not marginal.qualifies
    assert 0.5 < marginal.probability_above < 0.95


def test_the_threshold_and_the_evidence_level_are_configurable() -> None:
    assert not core.evaluate(40, 1000, WinnerPolicy(threshold_ctr=0.05)).qualifies
    assert core.evaluate(35, 1000, WinnerPolicy(min_probability=0.75)).qualifies
    assert not core.evaluate(400, 900, WinnerPolicy(min_impressions=1000)).qualifies


@given(
    impressions=st.integers(1, 100_000),
    share=st.floats(0, 1),
    more=st.integers(1, 1000),
)
def test_more_clicks_never_lower_the_probability(impressions: int, share: float, more: int) -> None:
    clicks = int(share * impressions)
    extra = min(impressions, clicks + more)
    low = core.probability_above(clicks, impressions, 0.03)
    high = core.probability_above(extra, impressions, 0.03)
    assert high >= low - 1e-12


def test_bad_counts_and_policies_are_refused() -> None:
    with pytest.raises(ValueError):
        core.probability_above(10, 5, 0.03)
    with pytest.raises(ValueError):
        WinnerPolicy(threshold_ctr=0.0)
    with pytest.raises(ValueError):
        WinnerPolicy(min_probability=0.9, lapse_probability=0.95)
    with pytest.raises(ValueError):
        WinnerPolicy(min_impressions=0)


def test_transitions_keep_winners_and_mark_them() -> None:
    good = core.evaluate(60, 1000, POLICY)
    bad = core.evaluate(100, 10_000, POLICY)  # 1%: clearly below 3%
    between = core.evaluate(31, 1000, POLICY)  # P ≈ 0.6: inside the hysteresis band
    assert core.transition(None, None, good) == (WinnerStatus.QUALIFIED, "qualified")
    assert core.transition(None, None, bad) is None
    q, lapsed = WinnerStatus.QUALIFIED, WinnerStatus.LAPSED
    assert core.transition(q, WinnerSource.CYCLE, bad) == (lapsed, "lapsed")
    assert core.transition(q, WinnerSource.CYCLE, between) is None
    assert core.transition(q, WinnerSource.MANUAL, bad) is None
    assert core.transition(lapsed, WinnerSource.CYCLE, good) == (q, "requalified")
    assert core.transition(lapsed, WinnerSource.CYCLE, between) is None


def test_vectors_are_normalised_and_bad_ones_refused() -> None:
    unit = core.normalise([[3.0, 4.0], [0.0, 2.0]], 2)
    assert np.allclose(np.linalg.norm(unit, axis=1), 1.0)
    assert unit.dtype == np.float32 and unit[0].tolist() == pytest.approx([0.6, 0.8])
    for bad in ([[0.0, 0.0]], [[1.0, float("nan")]], [[1.0, 2.0, 3.0]]):
        with pytest.raises(ValueError):
            core.normalise(bad, 2)


def test_content_hash_ignores_order_and_sees_any_change() -> None:
    rng = np.random.default_rng(1)
    vectors = core.normalise(rng.normal(size=(5, 4)), 4)
    ids = np.arange(5, dtype=np.int64)
    base = core.content_hash(ids, vectors)
    order = np.array([3, 1, 4, 0, 2])
    assert core.content_hash(ids[order], vectors[order]) == base
    changed = vectors.copy()
    changed[2, 0] += 1e-3
    assert core.content_hash(ids, changed) != base
    assert core.content_hash(ids + 1, vectors) != base


def test_knn_estimate_pools_counts_weighted_by_similarity() -> None:
    got = core.knn_estimate([1.0, 0.5, -0.2], [1000, 4000, 1000], [50, 80, 900])
    assert got is not None
    assert got.ctr == pytest.approx((50 + 0.5 * 80) / (1000 + 0.5 * 4000))
    assert got.n == 2 and got.similarity == pytest.approx(0.75)
    assert core.knn_estimate([-0.1], [1000], [10]) is None
    assert core.knn_estimate([], [], []) is None


def test_shared_stats_are_coarse() -> None:
    c = core.coarse(347, 12_345)
    assert c.ctr == 0.028 and c.impressions_at_least == 10_000
    assert set(c.as_dict()) == {"ctr", "impressions_at_least"}


def test_exact_index_matches_brute_force_and_survives_serialisation() -> None:
    rng = np.random.default_rng(7)
    vectors = core.normalise(rng.normal(size=(300, 16)), 16)
    ids = np.arange(1000, 1300, dtype=np.int64)
    index = core.build(ids, vectors, core.IndexParams())
    assert core.kind_of(index) is core.IndexKind.FLAT
    queries = core.normalise(rng.normal(size=(5, 16)), 16)
    sims, found = core.search(core.from_bytes(core.to_bytes(index)), queries, 10)
    brute = np.argsort(-(queries @ vectors.T), axis=1)[:, :10] + 1000
    assert (found == brute).all()
    assert np.allclose(sims[:, 0], (queries @ vectors.T).max(axis=1), atol=1e-5)


def test_hnsw_past_the_configured_size_with_high_recall() -> None:
    rng = np.random.default_rng(3)
    vectors = core.normalise(rng.normal(size=(2000, 16)), 16)
    ids = np.arange(2000, dtype=np.int64)
    params = core.IndexParams(approx_min_size=1000)
    approx = core.build(ids, vectors, params)
    exact = core.build(ids, vectors, core.IndexParams())
    assert core.kind_of(approx) is core.IndexKind.HNSW
    assert core.kind_of(core.from_bytes(core.to_bytes(approx))) is core.IndexKind.HNSW
    queries = core.normalise(rng.normal(size=(50, 16)), 16)
    _, a = core.search(approx, queries, 10)
    _, e = core.search(exact, queries, 10)
    assert core.recall_at_k(a, e) >= 0.95


def test_torn_index_bytes_are_refused() -> None:
    vectors = core.normalise(np.eye(4, dtype=np.float32), 4)
    data = core.to_bytes(core.build(np.arange(4, dtype=np.int64), vectors, core.IndexParams()))
    with pytest.raises(ValueError):
        core.from_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError):
        core.search(core.from_bytes(data), vectors, 0)
