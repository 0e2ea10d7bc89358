"""Street blocks: the areas a walking isochrone fills whole.

An isochrone is the band of ``buffer_m`` around the reached streets with
holes smaller than ``hole_fill_m2`` filled. A block whose streets are all
reached and whose inside (the block shrunk by ``buffer_m``) is under
``hole_fill_m2`` therefore ends up filled, whatever else is reached: every
hole the band leaves in it lies within that inside. Knowing such blocks in
advance lets the isochrone builder treat them as one polygon instead of
buffering each of their streets (see :mod:`lifecircle.isochrones`).

Blocks are the faces of the street drawing, found once per isochrone run by
GEOS ``polygonize`` on the streets that run reaches. Each block keeps the
routing-graph edges along its outer ring; the holes of a block (streets not
joined to its ring) do not matter, since the whole ring encloses them.
Polygonize leaves out rings that cross themselves (streets crossing without a
shared node, such as bridges), and a ring whose sides do not all match an
edge is dropped, so every block here is enclosed by edges of the graph.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray

from .engine import RoutingGraph, gather_rows

__all__ = ["StreetBlocks"]

_QUAD_SEGS = 4


def _indptr(row_of: NDArray[np.int64], n_rows: int) -> NDArray[np.int64]:
    """CSR row pointers for values whose row ids are ``row_of``."""
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(row_of, minlength=n_rows), out=indptr[1:])
    return indptr


def _node_at(
    node_xy: NDArray[np.float64], nodes: NDArray[np.int64], xy: NDArray[np.float64]
) -> NDArray[np.int64]:
    """Id of a node among ``nodes`` with exactly the coordinates ``xy``, or -1."""
    nodes = np.unique(nodes)
    # complex numbers sort by x, then y: an exact lookup table for coordinates
    keys = node_xy[nodes, 0] + 1j * node_xy[nodes, 1]
    order = np.argsort(keys)
    keys = keys[order]
    wanted = xy[:, 0] + 1j * xy[:, 1]
    at = np.searchsorted(keys, wanted).clip(0, max(len(keys) - 1, 0))
    found = keys[at] == wanted if len(keys) else np.zeros(len(xy), dtype=bool)
    return np.where(found, nodes[order[at]] if len(keys) else -1, -1)


def _edge_between(
    u: NDArray[np.int64],
    v: NDArray[np.int64],
    edges: NDArray[np.int64],
    a: NDArray[np.int64],
    b: NDArray[np.int64],
) -> NDArray[np.int64]:
    """Id of an edge among ``edges`` (ends ``u``, ``v``) joining ``a`` and ``b``, or -1."""
    width = int(max(u.max(initial=0), v.max(initial=0))) + 1
    keys = np.minimum(u, v) * width + np.maximum(u, v)
    order = np.argsort(keys)
    keys = keys[order]
    wanted = np.minimum(a, b) * width + np.maximum(a, b)
    at = np.searchsorted(keys, wanted).clip(0, max(len(keys) - 1, 0))
    found = (a >= 0) & (b >= 0) & (keys[at] == wanted if len(keys) else False)
    return np.where(found, edges[order[at]] if len(keys) else -1, -1)


@dataclass(frozen=True)
class StreetBlocks:
    """Blocks small enough to end up filled, with the edges around each.

    Attributes
    ----------
    ring_indptr, ring_xy
        Outer ring of block ``i``: ``ring_xy[ring_indptr[i]:ring_indptr[i + 1]]``
        (closed: the first point repeated last).
    n_ring_edges
        Number of edges around each block.
    edge_indptr, edge_blocks
        Blocks along routing-graph edge ``e``:
        ``edge_blocks[edge_indptr[e]:edge_indptr[e + 1]]``.
    """

    ring_indptr: NDArray[np.int64]
    ring_xy: NDArray[np.float64]
    n_ring_edges: NDArray[np.int64]
    edge_indptr: NDArray[np.int64]
    edge_blocks: NDArray[np.int64]

    @property
    def n_blocks(self) -> int:
        """Number of blocks."""
        return int(self.n_ring_edges.shape[0])

    @classmethod
    def from_graph(
        cls,
        graph: RoutingGraph,
        edges: NDArray[np.int64],
        *,
        buffer_m: float,
        hole_fill_m2: float,
    ) -> StreetBlocks:
        """Find the blocks formed by ``edges`` whose inside is under ``hole_fill_m2``.

        Parameters
        ----------
        graph
            The routing graph.
        edges
            Ids of the edges to look at (e.g. those an isochrone run can reach).
        buffer_m, hole_fill_m2
            The isochrone band width and hole-filling limit.

        Examples
        --------
        Two 100 m squares side by side: two blocks, the middle street on both.

        >>> import numpy as np
        >>> from scipy import sparse
        >>> xy = np.array([[0, 0], [100, 0], [200, 0], [0, 100], [100, 100], [200, 100]], float)
        >>> u, v = np.array([0, 1, 3, 4, 0, 1, 2]), np.array([1, 2, 4, 5, 3, 4, 5])
        >>> g = RoutingGraph(xy, u, v, np.hypot(*(xy[v] - xy[u]).T), np.array([0]),
        ...                  sparse.csr_matrix((6, 6)))
        >>> blocks = StreetBlocks.from_graph(g, np.arange(7), buffer_m=40, hole_fill_m2=5000)
        >>> blocks.n_blocks, sorted(blocks.n_ring_edges.tolist())
        (2, [4, 4])
        >>> filled, on_filled = blocks.enclosed(np.array([0, 2, 4, 5]))  # the left square
        >>> len(filled), on_filled.tolist()
        (1, [True, True, True, True])
        """
        u, v = graph.edge_u[edges], graph.edge_v[edges]
        segments = shapely.linestrings(np.stack([graph.node_xy[u], graph.node_xy[v]], 1))
        rings = shapely.get_exterior_ring(shapely.get_parts(shapely.polygonize(segments)))
        ring_xy, ring_of = shapely.get_coordinates(rings, return_index=True)
        ring_indptr = _indptr(ring_of, rings.shape[0])
        keep = _small_inside(ring_xy, ring_of, ring_indptr, buffer_m, hole_fill_m2)
        vertex_kept = keep[ring_of]
        ring_xy = ring_xy[vertex_kept]
        ring_of = (np.cumsum(keep) - 1)[ring_of[vertex_kept]]
        n_blocks = int(keep.sum())
        ring_indptr = _indptr(ring_of, n_blocks)

        # the sides of each ring, matched to graph edges through their end nodes
        side = np.flatnonzero(ring_of[1:] == ring_of[:-1])
        side_block = ring_of[side]
        vertex_node = _node_at(graph.node_xy, np.concatenate([u, v]), ring_xy)
        side_edge = _edge_between(u, v, edges, vertex_node[side], vertex_node[side + 1])
        matched = side_edge >= 0
        n_ring_edges = np.bincount(side_block, minlength=n_blocks)
        # a block with an unmatched side is never filled: its edge count cannot be met
        n_ring_edges[np.unique(side_block[~matched])] = -1
        side_edge, side_block = side_edge[matched], side_block[matched]
        by_edge = np.argsort(side_edge, kind="stable")
        edge_indptr = _indptr(side_edge, graph.edge_u.shape[0])
        return cls(ring_indptr, ring_xy, n_ring_edges, edge_indptr, side_block[by_edge])

    def enclosed(
        self, full_edges: NDArray[np.int64]
    ) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
        """Blocks whose every edge is among ``full_edges``.

        Returns the block ids and, per full edge, whether it lies along one of
        them.
        """
        blocks, owner = gather_rows(self.edge_indptr, self.edge_blocks, full_edges)
        filled = np.bincount(blocks, minlength=self.n_blocks) == self.n_ring_edges
        on_filled = np.zeros(full_edges.shape[0], dtype=bool)
        on_filled[owner[filled[blocks]]] = True
        return np.flatnonzero(filled), on_filled

    def rings(self, blocks: NDArray[np.int64]) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
        """Outer rings of ``blocks`` (closed), one after another, and where each starts."""
        xy, owner = gather_rows(self.ring_indptr, self.ring_xy, blocks)
        return xy, np.flatnonzero(np.diff(owner, prepend=-1))


def _small_inside(
    ring_xy: NDArray[np.float64],
    ring_of: NDArray[np.int64],
    ring_indptr: NDArray[np.int64],
    buffer_m: float,
    hole_fill_m2: float,
) -> NDArray[np.bool_]:
    """Which closed rings enclose less than ``hole_fill_m2`` once shrunk by ``buffer_m``.

    Area and perimeter come from the coordinates (shoelace, relative to each
    ring's first point for precision). Shrinking removes at most
    ``perimeter x buffer_m``, so only rings that this bound cannot settle are
    actually shrunk with GEOS.
    """
    n = ring_indptr.shape[0] - 1
    local = ring_xy - ring_xy[ring_indptr[:-1]][ring_of]
    side = np.flatnonzero(ring_of[1:] == ring_of[:-1])
    a, b = local[side], local[side + 1]
    cross = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
    area = np.abs(np.bincount(ring_of[side], weights=cross, minlength=n)) / 2
    perimeter = np.bincount(ring_of[side], weights=np.hypot(*(b - a).T), minlength=n)
    small = area < hole_fill_m2
    unsure = np.flatnonzero(~small & (area - perimeter * buffer_m < hole_fill_m2))
    if unsure.size:
        in_unsure = np.isin(ring_of, unsure)
        rings = shapely.linearrings(
            ring_xy[in_unsure], indices=np.searchsorted(unsure, ring_of[in_unsure])
        )
        polygons = shapely.polygons(rings)
        shrunk = shapely.buffer(polygons, -buffer_m, quad_segs=_QUAD_SEGS)
        small[unsure] = shapely.area(shrunk) < hole_fill_m2
    return small
