"""Fat % of T1/T2-weighted images by intensity clustering, the MuscleMap method.

We follow MuscleMap's ``mm_extract_metrics -m kmeans|gmm -c 2|3`` (MuscleMap/MuscleMap,
``scripts/mm_util.py``: ``apply_clustering`` and ``calculate_thresholds``):

1. the intensities of one label are clustered in 1D by scikit-learn ``KMeans``
   (``init='k-means++'``) or ``GaussianMixture`` (``covariance_type='full'``,
   ``init_params='kmeans'``), both with ``n_init=20``, ``max_iter=1000``, ``tol=1e-3``;
2. clusters are ordered by the mean intensity of their voxels; fat is bright;
3. two classes: ``muscle_max`` is the largest intensity of the darker cluster, and
   fat % is the share of voxels brighter than ``muscle_max``;
   three classes: ``muscle_max`` is the largest intensity of the darkest cluster, ``fat_min``
   the smallest of the brightest; fat % is the share of voxels >= ``fat_min`` and
   undefined % the share strictly between the two thresholds.

Differences, all deliberate: the fit is seeded (``random_state``; MuscleMap's is not), so
results repeat; labels with more than ``cluster_max_voxels`` voxels are fitted on a seeded
random subset and every voxel is then classified by the fitted model (a speed trade-off on
big muscles; ``cluster_max_voxels=0`` fits on every voxel as MuscleMap does); and
undefined % counts voxels in (muscle_max, fat_min), where MuscleMap's percentages count
voxels equal to ``muscle_max`` as undefined but its volumes count them as muscle. Fits run
single-threaded: these are small 1D problems, and scikit-learn's OpenMP threads competing
for shared cores slowed them a hundredfold.
"""

from __future__ import annotations

import warnings

import numpy as np

from myoscan.progress import progress

__all__ = ["cluster_fat_pct", "cluster_label_fat_pct"]


def _fit_predict(values: np.ndarray, method: str, components: int, *, n_init: int, max_iter: int,
                 tol: float, max_voxels: int, seed: int) -> np.ndarray:
    """Cluster index of every value (scikit-learn, seeded)."""
    from sklearn.cluster import KMeans
    from sklearn.mixture import GaussianMixture
    from threadpoolctl import threadpool_limits

    data = values.reshape(-1, 1)
    fit_data = data
    if 0 < max_voxels < data.shape[0]:
        pick = np.random.default_rng(seed).choice(data.shape[0], size=max_voxels, replace=False)
        fit_data = data[np.sort(pick)]
    if method == "kmeans":
        model = KMeans(n_clusters=components, init="k-means++", n_init=n_init, max_iter=max_iter,
                       tol=tol, random_state=seed)
    else:
        model = GaussianMixture(n_components=components, covariance_type="full", init_params="kmeans",
                                n_init=n_init, max_iter=max_iter, tol=tol, random_state=seed)
    with threadpool_limits(1):  # OpenMP threads on a busy machine made 1D fits ~100x slower
        model.fit(fit_data)
        if method == "kmeans" and fit_data is data:
            return model.labels_  # MuscleMap uses the fit's own labels
        return model.predict(data)


def cluster_fat_pct(
    values: np.ndarray,
    method: str = "gmm",
    components: int = 2,
    *,
    n_init: int = 20,
    max_iter: int = 1000,
    tol: float = 1e-3,
    max_voxels: int = 0,
    seed: int = 0,
) -> tuple[float, float]:
    """Fat % (and undefined %) of one label's intensities by k-means or a Gaussian mixture.

    Parameters
    ----------
    values : (n,) ndarray
        Intensities of the voxels of one label (T1- or T2-weighted: fat is bright).
    method : {'gmm', 'kmeans'}
        Clustering method.
    components : {2, 3}
        Classes: muscle and fat, or muscle, undefined and fat.
    n_init, max_iter, tol : int, int, float
        scikit-learn settings (MuscleMap's defaults: 20, 1000, 1e-3).
    max_voxels : int
        Fit on a seeded random subset of this many voxels when there are more; 0 = all.
    seed : int
        ``random_state`` of the fit and of the subset.

    Returns
    -------
    fat_pct : float
        Percentage of voxels classified as fat; NaN when the label has fewer distinct
        intensities than ``components``.
    undefined_pct : float
        Percentage between the muscle and fat thresholds (3 classes); NaN for 2 classes.

    Examples
    --------
    >>> v = np.r_[np.full(30, 100.0), np.full(10, 900.0)] + np.tile([0.0, 1.0], 20)
    >>> cluster_fat_pct(v, "kmeans", 2)
    (25.0, nan)
    """
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if np.unique(values).size < components:
        return float("nan"), float("nan")
    with warnings.catch_warnings():  # a cluster that collapses is handled below, not reported
        warnings.filterwarnings("ignore", message=".*[Cc]onverge.*")
        cluster = _fit_predict(values, method, components, n_init=n_init, max_iter=max_iter, tol=tol,
                               max_voxels=max_voxels, seed=seed)
    found = [c for c in range(components) if np.any(cluster == c)]
    if len(found) < components:
        return float("nan"), float("nan")
    by_mean = sorted(found, key=lambda c: values[cluster == c].mean())
    muscle_max = values[cluster == by_mean[0]].max()
    if components == 2:
        return float(100.0 * np.mean(values > muscle_max)), float("nan")
    fat_min = values[cluster == by_mean[-1]].min()
    fat = values >= fat_min
    undefined = (values > muscle_max) & ~fat
    return float(100.0 * fat.mean()), float(100.0 * undefined.mean())


def cluster_label_fat_pct(
    values: np.ndarray,
    bounds: np.ndarray,
    method: str,
    components: int,
    *,
    show_progress: bool = False,
    **fit: int | float,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`cluster_fat_pct` for every label segment of :func:`~myoscan.quantify.core.segment_values`.

    Returns
    -------
    fat_pct, undefined_pct : (n_rows,) ndarray
        NaN for empty rows (and row 0, background).

    Examples
    --------
    >>> v = np.r_[np.full(6, 1.0), np.full(2, 9.0), 3.0]
    >>> fat, _ = cluster_label_fat_pct(v, np.array([0, 0, 8, 9]), "kmeans", 2, n_init=2)
    >>> fat.tolist()
    [nan, 25.0, nan]
    """
    fat = np.full(bounds.size - 1, np.nan)
    undefined = np.full(bounds.size - 1, np.nan)
    rows = np.flatnonzero(np.diff(bounds))
    for row in progress(rows, desc=f"clustering ({method})", unit="label", enabled=show_progress):
        fat[row], undefined[row] = cluster_fat_pct(values[bounds[row]:bounds[row + 1]], method, components,
                                                   **fit)  # type: ignore[arg-type]
    return fat, undefined
