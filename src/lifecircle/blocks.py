"""Street blocks: the areas a walking isochrone fills whole.

An isochrone is the band of ``buffer_m`` around the reached streets with
holes smaller than ``hole_fill_m2`` filled. A block whose streets are all
reached and whose inside (the block shrunk by ``buffer_m``) is under
``hole_fill_m2`` therefore ends up filled, whatever else is reached: every
hole the band leaves in it lies within that inside. Knowing such blocks in
advance lets the isochrone builder treat them as one polygon instead of
buffering each of their streets (see :mod:`lifecircle.isochrones`).

Blocks are the faces of the street drawing, traced once per isochrone run
over the streets that run can reach: around every node the streets are
ordered by angle, and leaving each street for the next one clockwise walks
around a face with the face on the left (the usual half-edge traversal of a
plane graph, done with numpy sorts and scipy's connected components instead
of per-face loops). A face of positive area is bounded. Streets that cross
or overlap another street without a shared node (bridges, tunnels, unnoded
data) make the drawing non-planar there, so faces along them are left out;
the remaining faces are closed rings of routing-graph edges, which is all the
filling rule needs (a ring's inside also covers anything the ring encloses,
such as streets not joined to it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from .csr import gather_rows, group_by_row
from .engine import RoutingGraph

__all__ = ["StreetBlocks"]

_QUAD_SEGS = 4
#: Faces smaller than this (square metres) are slivers or outer faces, never blocks.
_MIN_AREA_M2 = 1e-6


@dataclass(frozen=True)
class StreetBlocks:
    """Blocks small enough to end up filled, with the edges around each.

    Attributes
    ----------
    ring_indptr, ring_xy
        Outer ring of block ``i``: ``ring_xy[ring_indptr[i]:ring_indptr[i + 1]]``,
        each corner once (not closed), counter-clockwise.
    n_ring_edges
        Number of edges around each block (an edge walked along on both sides,
        such as a dead end inside the block, counts twice).
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
        # coordinates around the centre keep the cross products precise
        xy = graph.node_xy - (graph.node_xy[u].mean(axis=0) if len(u) else 0.0)
        faces = _HalfEdgeFaces.trace(xy, u, v)
        candidate = faces.bounded & ~faces.touches_any(_unplanar_edges(xy, u, v))
        candidate &= faces.area - faces.perimeter * buffer_m < hole_fill_m2
        rings = faces.rings(np.flatnonzero(candidate))
        small = _small_inside(xy, rings, faces.area, buffer_m, hole_fill_m2)
        kept = small[rings.face]
        side_block = (np.cumsum(small) - 1)[rings.face[kept]]
        n_blocks = int(small.sum())
        ring_indptr = group_by_row(side_block, n_blocks)[0]
        ring_xy = graph.node_xy[rings.node[kept]]
        side_edge = edges[faces.edge_of(rings.half_edge[kept])]
        n_ring_edges = np.diff(ring_indptr)
        edge_indptr, by_edge = group_by_row(side_edge, graph.edge_u.shape[0])
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
        """Outer rings of ``blocks`` (open), one after another, and where each starts."""
        xy, owner = gather_rows(self.ring_indptr, self.ring_xy, blocks)
        return xy, np.flatnonzero(np.diff(owner, prepend=-1))


def _small_inside(
    xy: NDArray[np.float64],
    rings: _Rings,
    area: NDArray[np.float64],
    buffer_m: float,
    hole_fill_m2: float,
) -> NDArray[np.bool_]:
    """Which faces (of those in ``rings``) enclose less than ``hole_fill_m2`` once shrunk.

    Shrinking by ``buffer_m`` removes at most ``perimeter x buffer_m``; faces
    already under the limit need no shrinking, the others are shrunk with GEOS.
    A ring that is not a valid polygon once closed (a dead end inside the
    block) cannot be shrunk reliably and is left out.
    """
    small = np.zeros(area.shape[0], dtype=bool)
    faces = np.unique(rings.face)
    sure = faces[area[faces] < hole_fill_m2]
    small[sure] = True
    unsure = np.setdiff1d(faces, sure)
    if unsure.size:
        picked = np.isin(rings.face, unsure)
        polygons = shapely.polygons(
            shapely.linearrings(
                xy[rings.node[picked]],
                indices=np.searchsorted(unsure, rings.face[picked]),
            )
        )
        valid = shapely.is_valid(polygons)
        shrunk = shapely.area(shapely.buffer(polygons, -buffer_m, quad_segs=_QUAD_SEGS))
        small[unsure] = valid & (shrunk < hole_fill_m2)
    return small


@dataclass(frozen=True)
class _Rings:
    """Half-edges of some faces in walking order, grouped by face."""

    half_edge: NDArray[np.int64]
    face: NDArray[np.int64]
    node: NDArray[np.int64]


@dataclass(frozen=True)
class _HalfEdgeFaces:
    """Faces of a straight-line drawing, traced over half-edges.

    Half-edge ``h < m`` runs ``u[h] -> v[h]``, half-edge ``h + m`` back; ``next``
    is the half-edge that follows ``h`` around its face (face on the left).
    """

    origin: NDArray[np.int64]
    next: NDArray[np.int64]
    face: NDArray[np.int64]
    area: NDArray[np.float64]
    perimeter: NDArray[np.float64]
    n_edges: int

    @classmethod
    def trace(
        cls, xy: NDArray[np.float64], u: NDArray[np.int64], v: NDArray[np.int64]
    ) -> _HalfEdgeFaces:
        m = u.shape[0]
        origin = np.concatenate([u, v])
        target = np.concatenate([v, u])
        step = xy[target] - xy[origin]
        # around each node, outgoing half-edges counter-clockwise by angle
        order = np.lexsort((np.arctan2(step[:, 1], step[:, 0]), origin))
        position = np.empty_like(order)
        position[order] = np.arange(order.shape[0])
        sorted_origin = origin[order]
        block_start = np.searchsorted(sorted_origin, origin, side="left")
        degree = np.searchsorted(sorted_origin, origin, side="right") - block_start
        twin = np.concatenate([np.arange(m, 2 * m), np.arange(m)])
        # after h, leave its end by the half-edge just clockwise of the way back
        back = twin
        rank = position[back] - block_start[back]
        following = order[block_start[back] + (rank - 1) % degree[back]]
        n_faces, face = connected_components(
            sparse.csr_matrix(
                (np.ones(2 * m, dtype=bool), (np.arange(2 * m), following)), shape=(2 * m, 2 * m)
            ),
            directed=True,
            connection="weak",
        )
        start, end = xy[origin], xy[target]
        cross = start[:, 0] * end[:, 1] - start[:, 1] * end[:, 0]
        area = np.bincount(face, weights=cross, minlength=n_faces) / 2
        perimeter = np.bincount(face, weights=np.hypot(*step.T), minlength=n_faces).astype(float)
        return cls(origin, following, face, area, perimeter, m)

    @property
    def bounded(self) -> NDArray[np.bool_]:
        """Faces of positive area (an outer face walks clockwise: negative)."""
        return self.area > _MIN_AREA_M2

    def edge_of(self, half_edge: NDArray[np.int64]) -> NDArray[np.int64]:
        """Position in the input edges of each half-edge's edge."""
        return half_edge % self.n_edges

    def touches_any(self, edge_mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
        """Faces with a half-edge of a masked edge."""
        hits = np.concatenate([edge_mask, edge_mask])
        return np.bincount(self.face[hits], minlength=self.area.shape[0]) > 0

    def rings(self, faces: NDArray[np.int64]) -> _Rings:
        """Half-edges of ``faces`` in walking order, face after face.

        Each face's walk starts at its lowest half-edge; positions along the
        walk come from pointer doubling (log2 of the longest walk in rounds).
        """
        wanted = np.zeros(self.area.shape[0], dtype=bool)
        wanted[faces] = True
        members = np.flatnonzero(wanted[self.face])
        face = self.face[members]
        head = np.full(self.area.shape[0], self.next.shape[0])
        np.minimum.at(head, face, members)
        # distance from each half-edge to the last one of its walk
        last = self.next[members] == head[face]
        jump = self.next.copy()
        jump[members[last]] = members[last]
        to_last = np.zeros(self.next.shape[0], dtype=np.int64)
        to_last[members] = ~last
        while members.size and (jump[jump[members]] != jump[members]).any():
            to_last[members] = to_last[members] + to_last[jump[members]]
            jump[members] = jump[jump[members]]
        order = np.lexsort((-to_last[members], face))
        half_edge = members[order]
        return _Rings(half_edge, face[order], self.origin[half_edge])


def _unplanar_edges(
    xy: NDArray[np.float64], u: NDArray[np.int64], v: NDArray[np.int64]
) -> NDArray[np.bool_]:
    """Edges that cross, touch or overlap another edge other than at a shared node.

    Candidate pairs come from an STRtree of the edges' bounding boxes; the
    test itself is the orientation of each end against the other segment.
    Zero-length edges count too (they have no direction to order by).
    """
    a, b = xy[u], xy[v]
    bad = np.all(a == b, axis=1)
    if u.shape[0] < 2:
        return bad
    segments = shapely.linestrings(np.stack([a, b], axis=1))
    i, j = shapely.STRtree(segments).query(segments)
    i, j = i[i < j], j[i < j]
    o1, o2 = _orientation(a[i], b[i], a[j]), _orientation(a[i], b[i], b[j])
    o3, o4 = _orientation(a[j], b[j], a[i]), _orientation(a[j], b[j], b[i])
    meet = (o1 * o2 <= 0) & (o3 * o4 <= 0)
    shared = (u[i] == u[j]) | (u[i] == v[j]) | (v[i] == u[j]) | (v[i] == v[j])
    same_ends = (np.minimum(u[i], v[i]) == np.minimum(u[j], v[j])) & (
        np.maximum(u[i], v[i]) == np.maximum(u[j], v[j])
    )
    # two edges from one node overlap when they are collinear and point the same way
    collinear = (o1 == 0) & (o2 == 0)
    node = np.where((u[i] == u[j]) | (u[i] == v[j]), u[i], v[i])
    far_i = np.where(u[i] == node, v[i], u[i])
    far_j = np.where(u[j] == node, v[j], u[j])
    same_way = np.einsum("ij,ij->i", xy[far_i] - xy[node], xy[far_j] - xy[node]) > 0
    overlapping = shared & ~same_ends & collinear & same_way
    hit = (meet & ~shared) | overlapping
    bad[i[hit]] = True
    bad[j[hit]] = True
    return bad


def _orientation(
    p: NDArray[np.float64], q: NDArray[np.float64], r: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Sign of the turn p -> q -> r (1 left, -1 right, 0 straight)."""
    return np.sign(
        (q[:, 0] - p[:, 0]) * (r[:, 1] - p[:, 1]) - (q[:, 1] - p[:, 1]) * (r[:, 0] - p[:, 0])
    )
