"""The 3-token preferred region and the simplex plotting helpers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from matplotlib.path import Path

from llm_auction_utils.workbook.plotting import SIMPLEX_CORNERS, simplex_xy
from llm_auction_utils.theory.preferences import preferred_region_vertices, weakly_prefers

simplex3 = arrays(np.float64, 3, elements=st.floats(0.01, 1.0)).map(lambda a: a / a.sum())


@settings(max_examples=40, deadline=None)
@given(q=simplex3, p=simplex3, seed=st.integers(0, 2**16))
def test_region_polygon_matches_weak_preference(q: np.ndarray, p: np.ndarray, seed: int) -> None:
    vertices = preferred_region_vertices(q, p)
    assert np.allclose(vertices.sum(-1), 1.0)
    assert bool(np.all(weakly_prefers(vertices, q, p, atol=1e-9)))
    if len(vertices) < 3 or np.abs(q - p).max() < 1e-3:
        return  # degenerate (a segment or a point): nothing to compare inside
    polygon = Path(simplex_xy(vertices))
    points = np.random.default_rng(seed).dirichlet(np.ones(3), size=400)
    inside = polygon.contains_points(simplex_xy(points), radius=-1e-9)
    preferred = np.asarray(weakly_prefers(points, q, p, atol=0.0))
    # strictly inside the drawn polygon implies preferred; preferred points lie in or on it
    assert not np.any(inside & ~preferred)
    on_or_in = polygon.contains_points(simplex_xy(points), radius=1e-6) | polygon.contains_points(simplex_xy(points), radius=-1e-6)
    assert np.all(on_or_in[preferred])


def test_region_corners_include_q_and_p() -> None:
    q, p = np.array([0.2, 0.3, 0.5]), np.array([0.6, 0.3, 0.1])
    vertices = preferred_region_vertices(q, p)
    assert any(np.allclose(v, q) for v in vertices) and any(np.allclose(v, p) for v in vertices)


def test_simplex_xy_maps_point_masses_to_corners() -> None:
    assert np.allclose(simplex_xy(np.eye(3)), SIMPLEX_CORNERS)
    with pytest.raises(ValueError, match="3 tokens"):
        simplex_xy(np.ones(4) / 4)
    with pytest.raises(ValueError, match="over 3 tokens"):
        preferred_region_vertices(np.ones(4) / 4, np.ones(4) / 4)
