"""Hierarchical clustering of channels on cosine distance."""
import numpy as np
import pytest

from amrlib.pruning import PruningError, cluster_channels
from amrlib.pruning.cluster import cosine_distances


def test_exact_cluster_count_groups_nearest_directions():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 20))
    feats = np.concatenate([centres[i] * (1 + 0.01 * rng.normal(size=(4, 20))) * s
                            for i, s in zip(range(3), (1, 5, 0.1))])   # scale must not matter (cosine)
    clusters = cluster_channels(feats, n_clusters=3)
    assert clusters == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]


def test_threshold_and_zero_channels():
    feats = np.array([[1.0, 0], [2.0, 0.0001], [0, 1.0], [0, 0], [0, 0]])
    assert cluster_channels(feats, distance_threshold=1e-3) == [[0, 1], [2], [3, 4]]
    d = cosine_distances(feats)
    assert d[3, 4] == 0 and d[0, 3] == 1 and np.allclose(d, d.T)


def test_bad_arguments():
    feats = np.eye(4)
    with pytest.raises(PruningError):
        cluster_channels(feats, n_clusters=5)
    with pytest.raises(PruningError):
        cluster_channels(feats)
    with pytest.raises(PruningError):
        cluster_channels(feats, n_clusters=2, linkage="ward")
