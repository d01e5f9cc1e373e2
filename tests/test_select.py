import itertools

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from composer.planner.select import assign, best_free


def test_assignment_is_optimal_where_greedy_is_not():
    sim = np.array([[0.9, 0.8], [0.85, 0.1]])
    # Greedy would give slot 0 image 0 (0.9) and slot 1 image 1 (0.1): total 1.0.
    assert assign(sim) == [1, 0]  # total 1.65


def test_more_slots_than_images_leaves_none():
    out = assign(np.array([[0.1], [0.9], [0.2]]))
    assert out == [None, 0, None]


@given(st.integers(1, 4), st.integers(0, 4), st.integers(0, 2**31 - 1))
def test_assignment_matches_brute_force(n_slots, n_images, seed):
    sim = np.random.default_rng(seed).random((n_slots, n_images))
    out = assign(sim)
    used = [i for i in out if i is not None]
    assert len(used) == len(set(used)) == min(n_slots, n_images)
    best = max((sum(sim[s, i] for s, i in zip(slots, perm))
                for slots in itertools.permutations(range(n_slots), min(n_slots, n_images))
                for perm in [range(min(n_slots, n_images))]
                for perm in itertools.permutations(range(n_images), min(n_slots, n_images))), default=0.0)
    got = sum(sim[s, i] for s, i in enumerate(out) if i is not None)
    assert abs(got - best) < 1e-9


def test_best_free_skips_used_images_and_nan():
    assert best_free([1.0, 0.5, 0.9], [1, 2]) == 2
    assert best_free([float("nan"), 0.1], [0, 1]) == 1
    assert best_free([0.3, 0.3], [0, 1]) == 0  # ties go to the earlier image
