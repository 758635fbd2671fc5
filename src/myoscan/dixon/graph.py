"""Supervoxel graph and exact minimum cut behind the swap mask (a binary Markov random field).

Nodes are the connected parts of one observed species within blocks of the analysis grid;
edge weights are the cost of cutting between neighbours; the cut is found by max-flow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

if TYPE_CHECKING:
    from myoscan.dixon.swap import SwapConfig

__all__ = ["min_cut", "supervoxel_graph"]


def _supervoxels(species: np.ndarray, body: np.ndarray, block: list[int]) -> tuple[np.ndarray, int]:
    """Label the connected parts of one species within each block (-1 outside the body).

    Blocks are separated by inserting an empty plane after every block along each axis,
    so one labelling pass per species finds the parts of all blocks at once.
    """
    index = [np.arange(n) + np.arange(n) // b for n, b in zip(body.shape, block, strict=True)]
    grid = np.ix_(*index)
    expanded = np.zeros(tuple(int(ix[-1]) + 1 for ix in index), dtype=bool)
    node = np.full(body.shape, -1, dtype=np.int64)
    n_nodes = 0
    for value in np.unique(species[body]):
        expanded[grid] = body & (species == value)
        labels, n = ndimage.label(expanded)
        part = labels[grid]
        node[part > 0] = part[part > 0] - 1 + n_nodes
        n_nodes += n
    return node, n_nodes


def supervoxel_graph(
    unary: np.ndarray, species: np.ndarray, conf: np.ndarray, body: np.ndarray,
    spacing_mm: tuple[float, float, float], config: SwapConfig,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Graph of supervoxels: connected parts of one observed species within each block.

    ``species`` is 0 water-looking, 1 fat-looking, 2 ambiguous, 3 without signal. Edge
    couplings are summed over the shared voxel faces (cost per mm^2 x face area); node
    costs are the unary votes summed over the voxels (x voxel volume). Returns the node
    of every voxel (-1 outside the body), node costs, and each edge's two nodes and weight.
    """
    block = [max(1, round(config.supervoxel_mm / s)) for s in spacing_mm]
    node, n_nodes = _supervoxels(species, body, block)
    voxel_mm3 = float(np.prod(spacing_mm))
    node_cost = np.bincount(node[body], weights=unary[body], minlength=n_nodes) * voxel_mm3
    areas_mm2 = voxel_mm3 / np.asarray(spacing_mm)
    firsts, seconds, couplings = [], [], []
    for axis in range(3):
        lo, hi = [slice(None)] * 3, [slice(None)] * 3
        lo[axis], hi[axis] = slice(None, -1), slice(1, None)
        a, b = node[tuple(lo)], node[tuple(hi)]
        cross = (a >= 0) & (b >= 0) & (a != b)
        kind_a, kind_b = species[tuple(lo)][cross], species[tuple(hi)][cross]
        strength = np.minimum(conf[tuple(lo)], conf[tuple(hi)])[cross]
        coupling = np.where(kind_a == kind_b, config.flip_coupling + (1 - config.flip_coupling) * strength,
                            config.flip_coupling)
        # A partial-volume voxel sits on a water/fat interface: both sides keep one label.
        # Voxels without signal (bone cortex, air in the gut) carry no such information.
        has_signal = (kind_a != 3) & (kind_b != 3)
        coupling = np.maximum(coupling, has_signal * config.interface_coupling * (1.0 - strength))
        firsts.append(np.minimum(a[cross], b[cross]))
        seconds.append(np.maximum(a[cross], b[cross]))
        couplings.append(coupling * config.boundary_mm * areas_mm2[axis])
    pair = np.concatenate(firsts) * n_nodes + np.concatenate(seconds)
    pairs, where = np.unique(pair, return_inverse=True)
    weight = np.bincount(where, weights=np.concatenate(couplings))
    return node, node_cost, pairs // n_nodes, pairs % n_nodes, weight


def min_cut(node_cost: np.ndarray, first: np.ndarray, second: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Exact minimiser of sum(cost * label) + sum(weight * [labels differ]); True = swapped."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import breadth_first_order, maximum_flow

    n = node_cost.size
    if not np.any(node_cost > 0):
        return np.zeros(n, dtype=bool)
    source, sink = n, n + 1
    to_swap, to_clean = np.maximum(-node_cost, 0.0), np.maximum(node_cost, 0.0)
    scale = min(1000.0, 2.0**30 / max(to_swap.sum() + to_clean.sum() + 2 * weight.sum(), 1e-9))
    rows = np.concatenate([first, second, np.full(n, source), np.arange(n)])
    cols = np.concatenate([second, first, np.arange(n), np.full(n, sink)])
    caps = np.rint(np.concatenate([weight, weight, to_swap, to_clean]) * scale).astype(np.int32)
    keep = caps > 0
    graph = sp.csr_matrix((caps[keep], (rows[keep], cols[keep])), shape=(n + 2, n + 2))
    flow = maximum_flow(graph, source, sink, method="dinic").flow
    residual = (graph - flow).tocsr()
    residual.data[residual.data < 0] = 0
    residual.eliminate_zeros()
    clean_side = np.zeros(n + 2, dtype=bool)
    clean_side[breadth_first_order(residual, source, directed=True, return_predecessors=False)] = True
    return ~clean_side[:n]
