"""Improved precision and recall (Kynkaanniemi et al. 2019) with exact k-nearest neighbours.

The manifold of a set is the union of balls around its members, each with radius equal to the
distance to the member's k-th nearest *other* member. Precision is the fraction of generated
(fake) samples inside the real manifold, recall the fraction of real samples inside the fake
manifold. Points are raw trajectories flattened to vectors (``(N, T, 7) -> (N, T*7)``).

Conventions (those of the ``prdc`` package; the tests check equality with it):

- radius = the (k+1)-th smallest distance from a member to all members of its set, self
  included (self-distance 0), i.e. the k-th nearest other member; exact duplicates count as
  neighbours at distance 0.
- membership is strict by default: ``dist(x, y_j) < radius_j`` (as ``prdc``);
  ``inclusive=True`` gives the paper's ``<=`` (eq. 10 of the GenRL paper).
- duplicates: a member with k or more exact copies in its own set has radius 0. With the
  strict test its ball is empty (it covers nothing, not even its copies); with
  ``inclusive=True`` it covers exactly its copies. The numbers follow ``prdc`` so that a
  collapsed generator (many identical outputs) scores a low recall instead of failing;
  ``on_duplicates`` says whether this is reported by a warning (default), a ValueError
  naming the count, or not at all. The count is in ``Manifold.n_zero_radius`` and in the
  ``PrecisionRecall`` result.
- ``k`` may be at most ``N - 1`` (``prdc`` itself fails already at ``k = N - 1``).

Exactness: every decision equals the one of float64 arithmetic on the input values, distance
``sum((x - y)^2)``. The bulk of the work is float32 matrix products by chunks, on coordinates
that give rigorous lower and upper bounds of each squared distance:

- the data are centred, scaled by a power of two (exact; keeps float32 clear of overflow
  and underflow) and rotated onto their leading principal axes (``projection``): with
  ``h`` the first P-1 principal coordinates and ``rho`` the norm of the rest,
  ``|h_i - h_j|^2 + (rho_i - rho_j)^2 <= d^2 <= |h_i - h_j|^2 + (rho_i + rho_j)^2``. The lower
  bound is a distance in P dimensions (``rho`` as an extra coordinate), hence one product of
  width P instead of D. With ``projection="none"`` the coordinates are the centred data and
  both bounds equal d^2;
- the float32 rounding error of a bound is at most ``(4P + 32) u (|x_i|^2 + |x_j|^2 + ...)``
  (u = 2^-24; about twice the worst-case error, see ``_error_factor``);
- only the pairs that the bounds cannot settle -- the few nearest candidates around each
  (k+1)-th distance, pairs within the error of a ball boundary -- are recomputed in float64
  from the inputs.

The result therefore equals ``prdc`` on float64 input except for pairs whose distance lies
within ``prdc``'s own rounding of a radius (it uses ``|x|^2 + |y|^2 - 2 x.y`` in float64 on
uncentred data, error ~1e-16 x D x |x|^2); ``prdc`` given float32 arrays also rounds its
distances to float32, which can make or break ties at ~1e-7 relative.

Speed (``bench/bench_measures.py``, one core, D = 483, smooth random walks): 15,000 x 15,000
in ~1.6 s (``prdc``: ~32 s, 3.2 GiB), 50,000 x 50,000 in ~16 s; peak RSS ~0.5-0.6 GiB of
which ~0.25 GiB is the interpreter and torch.

Memory: the inputs, float32 coordinates (4 B x N x P per set) and, per worker thread, one
float32 block of ``chunk_size x N`` reused through the loop (default ~8 MiB, which stays in
cache; ``memory_budget_mib`` caps it) plus small per-row arrays; nothing of size N x M.

Threads: ``num_threads`` workers (Python threads; torch itself single-threaded) take whole
row blocks; results do not depend on the number of workers.
"""

from __future__ import annotations

import math
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator, Literal, Union

import numpy as np
import torch

__all__ = [
    "DuplicatePolicy",
    "Manifold",
    "PrecisionRecall",
    "Projection",
    "knn_manifold",
    "precision_recall",
    "precision_recall_from_manifolds",
]

DuplicatePolicy = Literal["warn", "error", "ignore"]
#: "auto": the width P in (32, 64, 128), or "none", with the least estimated work, from a
#: pilot of 32 rows (see ``_bound_coordinates``); an int: that width P (speed only: a poor
#: width can be very slow); "none": the full centred coordinates.
Projection = Union[Literal["auto", "none"], int]

_U32 = 2.0**-24  # unit roundoff of float32
_AUTO_WIDTHS = (32, 64, 128)
_PILOT_ROWS = 32  # rows whose radii "auto" computes with each width to estimate the work
_PILOT_MAX_RESIDUAL = 0.5  # "auto" skips widths that leave more of the variance than this
# work model of "auto" (1 core, float32 AVX-512 products; it only steers speed): a block entry
# costs ~1.65 ns + 0.024 ns per coordinate, an exact float64 pair distance ~6.3 ns per dimension
_NS_PER_ENTRY, _NS_PER_ENTRY_WIDTH, _NS_PER_EXACT_DIM = 1.65, 0.024, 6.3
_BASIS_ROWS = 2048  # rows (per set) used to estimate the principal axes
_GROUP = 32  # columns per group in the search of the k+1 smallest values of a row
_SPARE = 2  # candidates beyond k+1 per row, so that the (k+1)-th can be certified
_BLOCK_BYTES = 8 * 2**20  # default block size: blocks that stay in cache are faster
_PAIR_BATCH_ELEMENTS = 2_000_000  # float64 elements per batch of exact pair distances


@dataclass(frozen=True)
class Manifold:
    """k-NN manifold of a set of points.

    :param points: (N, D) the members, flattened, dtype as given (float32 or float64).
    :param radii_sq: (N,) float64 squared distance of each member to its k-th nearest other
        member (unit of the points, squared).
    :param k: neighbourhood size.
    :param name: label used in messages, e.g. ``"real"``.
    """

    points: torch.Tensor
    radii_sq: torch.Tensor
    k: int
    name: str = "points"

    @property
    def n(self) -> int:
        """Number of members N."""
        return int(self.points.shape[0])

    @property
    def dim(self) -> int:
        """Dimension D of the flattened points."""
        return int(self.points.shape[1])

    @property
    def radii(self) -> np.ndarray:
        """(N,) float64 radii: distance to the k-th nearest other member."""
        return np.sqrt(self.radii_sq.numpy())

    @property
    def n_zero_radius(self) -> int:
        """Members with k or more exact copies in the set (radius 0)."""
        return int((self.radii_sq == 0).sum())


@dataclass(frozen=True)
class PrecisionRecall:
    """Result of :func:`precision_recall`.

    :param precision: fraction of fake samples inside the real manifold, in [0, 1].
    :param recall: fraction of real samples inside the fake manifold, in [0, 1].
    :param k: neighbourhood size.
    :param n_real: number of real samples N.
    :param n_fake: number of fake samples M.
    :param inclusive: True for the ``<=`` boundary test, False for ``prdc``'s ``<``.
    :param n_real_zero_radius: real samples with k or more exact copies (radius 0).
    :param n_fake_zero_radius: fake samples with k or more exact copies (radius 0).
    :param fake_inside: (M,) bool, which fake samples lie in the real manifold (only with
        ``return_membership=True``, else None): the complement shows what is unrealistic.
    :param real_inside: (N,) bool, which real samples lie in the fake manifold (idem): the
        complement shows which real trajectories the generator misses (recall).
    """

    precision: float
    recall: float
    k: int
    n_real: int
    n_fake: int
    inclusive: bool = False
    n_real_zero_radius: int = 0
    n_fake_zero_radius: int = 0
    fake_inside: np.ndarray | None = field(default=None, compare=False, repr=False)
    real_inside: np.ndarray | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class _Frame:
    """Where bound coordinates are taken: ``scale * (x - centre) @ basis``.

    :param centre: (D,) float64 mean of the sets.
    :param basis: (D, P-1) float64 orthonormal principal axes, or None (no projection).
    :param scale: power of two bringing the largest centred norm near 1 (exact in float64;
        keeps float32 away from overflow and underflow).
    """

    centre: torch.Tensor
    basis: torch.Tensor | None
    scale: float


@dataclass(frozen=True)
class _Coords:
    """float32 bound coordinates of a set (see module docstring), in units of ``scale``.

    :param coords: (N, P) float32: principal coordinates then the residual norm rho, or the
        centred points without projection.
    :param sq_norms: (N,) float64 squared norms of the scaled centred points.
    :param rho: (N,) float64 residual norms (zeros without projection).
    :param scale_sq: scale^2: a squared distance of the inputs times this is in these units.
    :param max_sq_norm: largest of ``sq_norms``.
    """

    coords: torch.Tensor
    sq_norms: torch.Tensor
    rho: torch.Tensor
    scale_sq: float
    max_sq_norm: float

    @property
    def width(self) -> int:
        return int(self.coords.shape[1])


@contextmanager
def _torch_settings(num_threads: int | None) -> Iterator[int]:
    """Yields the number of workers (``num_threads``, None: torch's current thread count).

    Inside the block torch runs single-threaded, with IEEE float32 products and no autograd;
    parallelism comes from the workers, Python threads that each take whole row blocks
    (torch releases the GIL): no fine-grained barriers, which stall on a busy machine.
    """
    if num_threads is not None and (
        isinstance(num_threads, bool) or not isinstance(num_threads, (int, np.integer))
        or num_threads < 1
    ):  # fmt: skip
        raise ValueError(f"num_threads must be a positive integer or None, got {num_threads!r}")
    old_threads = torch.get_num_threads()
    old_precision = torch.get_float32_matmul_precision()
    workers = old_threads if num_threads is None else int(num_threads)
    torch.set_num_threads(1)
    torch.set_float32_matmul_precision("highest")  # no bf16/tf32 shortcuts in the products
    try:
        with torch.no_grad():
            yield workers
    finally:
        torch.set_float32_matmul_precision(old_precision)
        torch.set_num_threads(old_threads)


def _as_points(x: np.ndarray | torch.Tensor, name: str) -> torch.Tensor:
    """(N, ...) array -> (N, D) float32/float64 CPU tensor; checks emptiness and finiteness."""
    t = torch.as_tensor(x).detach()
    if t.device.type != "cpu":
        t = t.cpu()
    if t.ndim < 2:
        raise ValueError(f"{name} must have shape (N, D) or (N, T, J), got {tuple(t.shape)}")
    if t.numel() == 0:
        raise ValueError(f"{name} is empty: shape {tuple(t.shape)}")
    t = t.reshape(t.shape[0], -1)
    if t.dtype not in (torch.float32, torch.float64):
        t = t.to(torch.float64)
    # amax/amin propagate NaN and show inf: a cheap test before the detailed one
    if not (math.isfinite(float(t.amax())) and math.isfinite(float(t.amin()))):
        bad = ~torch.isfinite(t)
        bad_rows = bad.any(dim=1).nonzero().flatten()
        raise ValueError(
            f"{name} has {int(bad.sum())} NaN/inf values in {bad_rows.numel()} of "
            f"{t.shape[0]} samples (first bad sample: index {int(bad_rows[0])})"
        )
    return t


def _check_k(k: int, n: int, name: str) -> None:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if k >= n:
        raise ValueError(
            f"k={k} must be smaller than the number of {name} samples ({n}): each radius is "
            f"the distance to the k-th nearest other sample of the set"
        )


def _chunk_rows(n_cols: int, chunk_size: int | None, memory_budget_mib: float) -> int:
    """Rows per block: ``chunk_size``, else rows of a float32 (rows, n_cols) block of about
    8 MiB (cache-sized; at least 16 rows), at most what fits twice in the budget."""
    if chunk_size is not None:
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)):
            raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        return int(chunk_size)
    if memory_budget_mib <= 0:
        raise ValueError(f"memory_budget_mib must be > 0, got {memory_budget_mib}")
    rows = max(16, _BLOCK_BYTES // (4 * n_cols))
    return max(1, min(rows, int(memory_budget_mib * 2**20 // (2 * 4 * n_cols))))


def _error_factor(width: int) -> float:
    """c such that a float32 bound of width P is within c * (|x_i|^2 + |x_j|^2) of its value.

    Worst case (any summation order): product 2 gamma_P ~ 2 P u, rounding the coordinates
    to float32 4u, bias additions a few u; c = (4P + 32) u leaves a factor ~2 to spare.
    """
    return (4 * width + 32) * _U32


def _run_blocks(
    n_rows: int,
    rows: int,
    work: Callable[[torch.Tensor], None],
    *,
    workers: int,
    progress: bool,
    desc: str,
) -> None:
    """Call ``work(r)`` for every row block ``r = arange(start, start + rows)`` of
    ``range(n_rows)``, on ``workers`` threads (blocks in any order)."""
    starts = range(0, n_rows, rows)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(starts), desc=desc, unit="block")

    def task(start: int) -> None:
        work(torch.arange(start, min(start + rows, n_rows)))
        if bar is not None:
            bar.update()

    try:
        if workers == 1 or len(starts) == 1:
            for start in starts:
                task(start)
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(task, starts))
    finally:
        if bar is not None:
            bar.close()


class _PerThread:
    """One lazily created tensor per worker thread (e.g. its reusable block buffer)."""

    def __init__(self, make: Callable[[], torch.Tensor]) -> None:
        self._make = make
        self._local = threading.local()
        self.all: list[torch.Tensor] = []  # every tensor created, for reductions

    def get(self) -> torch.Tensor:
        value = getattr(self._local, "value", None)
        if value is None:
            value = self._local.value = self._make()
            self.all.append(value)
        return value


def _duplicate_check(n_zero: int, n: int, k: int, name: str, policy: DuplicatePolicy) -> None:
    if n_zero == 0 or policy == "ignore":
        return
    message = (
        f"{n_zero} of {n} {name} samples have k={k} or more exact duplicates in their set: "
        f"their radius is 0, so their ball covers nothing with the strict '<' test (prdc's "
        f"convention) and only their copies with inclusive=True"
    )
    if policy == "error":
        raise ValueError(message)
    warnings.warn(message, RuntimeWarning, stacklevel=3)


def _check_policy(policy: str) -> None:
    if policy not in ("warn", "error", "ignore"):
        raise ValueError(f"on_duplicates must be 'warn', 'error' or 'ignore', got {policy!r}")


def _exact_sq_dist_pairs(
    a: torch.Tensor, ia: torch.Tensor, b: torch.Tensor, ib: torch.Tensor
) -> torch.Tensor:
    """(P,) float64 ``sum((a[ia] - b[ib])^2)`` for P index pairs (the reference arithmetic)."""
    out = torch.empty(ia.numel(), dtype=torch.float64)
    step = max(1, _PAIR_BATCH_ELEMENTS // a.shape[1])
    for s in range(0, ia.numel(), step):
        diff = a[ia[s : s + step]].to(torch.float64)
        diff -= b[ib[s : s + step]]
        out[s : s + step] = diff.square_().sum(dim=1)
    return out


def _rows_any(rows: torch.Tensor, values: torch.Tensor, n_rows: int) -> torch.Tensor:
    """(n_rows,) bool: OR of bool ``values`` grouped by ``rows``."""
    out = torch.zeros(n_rows, dtype=torch.bool)
    out[rows[values]] = True
    return out


def _rows_kth(rows: torch.Tensor, values: torch.Tensor, n_rows: int, kth: int) -> torch.Tensor:
    """(n_rows,) the kth smallest (1-based) of ``values`` grouped by ``rows``; each row must
    have at least ``kth`` values."""
    order = torch.argsort(values, stable=True)
    order = order[torch.argsort(rows[order], stable=True)]  # by row, then by value
    counts = torch.bincount(rows, minlength=n_rows)
    starts = torch.cumsum(counts, 0) - counts
    return values[order][starts + kth - 1]


def _bound_coordinates(
    sets: list[torch.Tensor], projection: Projection, k: int
) -> list[_Coords]:
    """Bound coordinates of ``sets`` (each (N, D)) with one centre, scale and basis.

    The principal axes come from evenly spaced rows of each set (deterministic); any
    orthonormal axes keep the bounds valid, good ones keep them tight. "auto" tries the
    widths in increasing order on the first set (skipping those that leave more than half of
    the variance out): it computes the k-NN radii of _PILOT_ROWS rows, counts the float64
    pair distances they needed, estimates the work per row, and stops when the float64 part
    is small (a wider basis could not do better); "none" is the fallback. Deterministic: the
    estimate uses counts, not timings. A fixed width on data with a flat spectrum can be
    very slow (most pairs recomputed in float64).
    """
    dim = sets[0].shape[1]
    total = sum(s.shape[0] for s in sets)
    centre = sum(s.sum(dim=0, dtype=torch.float64) for s in sets) / total
    step = max(1, _PAIR_BATCH_ELEMENTS // dim)
    max_sq_norm = max(
        float((s[i : i + step].to(torch.float64) - centre).square_().sum(dim=1).max())
        for s in sets
        for i in range(0, s.shape[0], step)
    )
    scale = 1.0 if max_sq_norm == 0 else 2.0 ** -math.floor(0.5 * math.log2(max_sq_norm))
    plain = _Frame(centre, None, scale)
    if projection == "none":
        return [_coordinates(s, plain) for s in sets]
    if isinstance(projection, str):
        if projection != "auto":
            raise ValueError(f"projection must be 'auto', 'none' or an int, got {projection!r}")
        widths = [w for w in _AUTO_WIDTHS if w < dim]
    else:
        if isinstance(projection, bool) or not isinstance(projection, (int, np.integer)):
            raise ValueError(f"projection must be 'auto', 'none' or an int, got {projection!r}")
        if projection < 2:
            raise ValueError(f"projection width must be >= 2, got {projection}")
        widths = [int(projection)] if projection < dim else []
    if not widths:
        return [_coordinates(s, plain) for s in sets]
    sample = torch.cat(
        [
            s[torch.linspace(0, s.shape[0] - 1, min(s.shape[0], _BASIS_ROWS)).long()]
            for s in sets
        ]
    ).to(torch.float64)
    sample -= centre
    sample *= scale
    eigenvalues, eigenvectors = torch.linalg.eigh(sample.T @ sample)
    eigenvalues, eigenvectors = eigenvalues.flip(0).clamp_min(0.0), eigenvectors.flip(1)
    if projection != "auto":
        frame = _Frame(centre, eigenvectors[:, : widths[0] - 1].contiguous(), scale)
        return [_coordinates(s, frame) for s in sets]
    # pilot: work per row ~ n * (entry + width costs) + float64 pairs per row * dim * cost
    x = sets[0]
    n = x.shape[0]
    rows = torch.linspace(0, n - 1, min(n, _PILOT_ROWS)).long().unique()
    best_frame, best_coords = plain, None
    best_ns = n * (_NS_PER_ENTRY + _NS_PER_ENTRY_WIDTH * dim) + (k + 1 + _SPARE) * (
        _NS_PER_EXACT_DIM * dim
    )
    total_variance = float(eigenvalues.sum())
    for width in widths:
        if float(eigenvalues[width - 1 :].sum()) > _PILOT_MAX_RESIDUAL * total_variance:
            continue  # hopeless: the bounds would settle almost nothing
        frame = _Frame(centre, eigenvectors[:, : width - 1].contiguous(), scale)
        cs = _coordinates(x, frame)
        cols, bias = _padded_columns(cs)
        block = torch.empty(rows.numel(), cols.shape[0], dtype=torch.float32)
        exact_ns = (
            _radii_of_rows(x, cs, cols, bias, rows, k, block)[1]
            / rows.numel()
            * (_NS_PER_EXACT_DIM * dim)
        )
        entry_ns = n * (_NS_PER_ENTRY + _NS_PER_ENTRY_WIDTH * width)
        if entry_ns + exact_ns < best_ns:
            best_frame, best_coords, best_ns = frame, cs, entry_ns + exact_ns
        if exact_ns < 0.1 * entry_ns:
            break
    first = best_coords if best_coords is not None else _coordinates(x, best_frame)
    return [first] + [_coordinates(s, best_frame) for s in sets[1:]]


def _coordinates(x: torch.Tensor, frame: _Frame) -> _Coords:
    """Bound coordinates of ``x`` (N, D), by row batches in float64."""
    n = x.shape[0]
    basis = frame.basis
    width = x.shape[1] if basis is None else basis.shape[1] + 1
    coords = torch.empty(n, width, dtype=torch.float32)
    sq_norms = torch.empty(n, dtype=torch.float64)
    rho = torch.zeros(n, dtype=torch.float64)
    step = max(1, _PAIR_BATCH_ELEMENTS // x.shape[1])
    for s in range(0, n, step):
        xc = (x[s : s + step].to(torch.float64) - frame.centre).mul_(frame.scale)
        sq_norms[s : s + step] = xc.square().sum(dim=1)
        if basis is None:
            coords[s : s + step] = xc
            continue
        head = xc @ basis
        # rho^2 = |xc|^2 - |head|^2: absolute error ~1e-16 |xc|^2, hence rho off by at most
        # ~1e-8 |xc| and the bounds by ~1e-7 max |xc|^2, far inside the float32 error bound
        head_sq = head.square().sum(dim=1)
        rho[s : s + step] = (sq_norms[s : s + step] - head_sq).clamp_min_(0.0).sqrt_()
        coords[s : s + step, :-1] = head
        coords[s : s + step, -1] = rho[s : s + step]
    return _Coords(
        coords=coords,
        sq_norms=sq_norms,
        rho=rho,
        scale_sq=frame.scale**2,
        max_sq_norm=float(sq_norms.max()),
    )


def _k_smallest(g: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The ``count`` smallest values of each row of ``g`` (C, N), N a multiple of _GROUP.

    Returns ascending values (C, count), their columns (C, count), and a lower bound (C,) of
    every value left out. Rows are cut in groups of _GROUP columns; the ``count`` smallest
    values lie in the ``count`` groups of smallest minima, so only those are searched.
    """
    c, n = g.shape
    if n // _GROUP <= 4 * count:
        vals, idx = torch.topk(g, min(count + 1, n), dim=1, largest=False, sorted=True)
        rest = vals[:, count] if n > count else torch.full((c,), math.inf)
        return vals[:, :count], idx[:, :count], rest
    group_min = g.view(c, n // _GROUP, _GROUP).amin(dim=2)
    gvals, groups = torch.topk(group_min, count + 1, dim=1, largest=False, sorted=True)
    cols = (groups[:, :count, None] * _GROUP + torch.arange(_GROUP)).view(c, -1)
    vals, j = torch.topk(g.gather(1, cols), count + 1, dim=1, largest=False, sorted=True)
    rest = torch.minimum(vals[:, count], gvals[:, count])
    return vals[:, :count], cols.gather(1, j[:, :count]), rest


def _padded_columns(cs: _Coords) -> tuple[torch.Tensor, torch.Tensor]:
    """Coordinates (N', P) and bias (1, N') ``|c_j|^2`` of the columns of a radii block, padded
    to whole groups of _GROUP with zero coordinates and an infinite bias."""
    n = cs.coords.shape[0]
    n_pad = -(-n // _GROUP) * _GROUP
    cols = torch.zeros(n_pad, cs.width, dtype=torch.float32)
    cols[:n] = cs.coords
    bias = torch.full((1, n_pad), math.inf, dtype=torch.float32)
    bias[0, :n] = cs.sq_norms
    return cols, bias


def _radii_of_rows(
    x: torch.Tensor,
    cs: _Coords,
    cols: torch.Tensor,
    bias: torch.Tensor,
    r: torch.Tensor,
    k: int,
    block: torch.Tensor,
) -> tuple[torch.Tensor, int]:
    """Exact squared k-NN radii (C,) of rows ``r`` of ``x`` and the number of float64 pair
    distances they took; ``block``: a float32 buffer of at least (C, N')."""
    # g[i, j] = |c_j|^2 - 2 c_i.c_j = LB(i, j) - |c_i|^2, float32
    g = torch.addmm(bias, cs.coords[r], cols.T, alpha=-2.0, out=block[: r.numel()])
    vals, idx, rest = _k_smallest(g, min(x.shape[0], k + 1 + _SPARE))
    eps_factor = _error_factor(cs.width)
    return _certified_kth(x, cs, r, vals, idx, rest, g, k, eps_factor, cs.max_sq_norm)


def _knn_radii(
    x: torch.Tensor,
    cs: _Coords,
    k: int,
    *,
    chunk_size: int | None,
    memory_budget_mib: float,
    workers: int,
    progress: bool,
    name: str,
) -> torch.Tensor:
    """(N,) float64 exact squared distance of each row of ``x`` to its k-th nearest other row;
    ``cs``: bound coordinates of ``x``."""
    n = x.shape[0]
    cols, bias = _padded_columns(cs)
    rows = _chunk_rows(cols.shape[0], chunk_size, memory_budget_mib)
    blocks = _PerThread(lambda: torch.empty(min(rows, n), cols.shape[0], dtype=torch.float32))
    radii_sq = torch.empty(n, dtype=torch.float64)

    def work(r: torch.Tensor) -> None:
        radii_sq[r] = _radii_of_rows(x, cs, cols, bias, r, k, blocks.get())[0]

    _run_blocks(n, rows, work, workers=workers, progress=progress, desc=f"radii {name}")
    return radii_sq


def knn_manifold(
    points: np.ndarray | torch.Tensor,
    k: int = 3,
    *,
    name: str = "points",
    projection: Projection = "auto",
    chunk_size: int | None = None,
    memory_budget_mib: float = 256.0,
    num_threads: int | None = 1,
    on_duplicates: DuplicatePolicy = "warn",
    progress: bool = False,
) -> Manifold:
    """Exact k-NN radii of a set: the manifold used by precision and recall.

    :param points: (N, D) or (N, T, J) samples, flattened to (N, D); float32 or float64
        (other dtypes are converted to float64). NaN/inf raise ValueError.
    :param k: neighbourhood size, 1 <= k <= N - 1.
    :param name: label of the set in messages.
    :param projection: width of the bound coordinates (see :data:`Projection`); changes the
        speed, never the result.
    :param chunk_size: rows per block; default: blocks of ~8 MiB (cache-sized), within
        ``memory_budget_mib``.
    :param memory_budget_mib: target size (MiB) of the reused float32 blocks.
    :param num_threads: torch threads during the call (restored after); None keeps the
        current setting.
    :param on_duplicates: members with radius 0 (k or more exact copies): "warn", "error"
        or "ignore" (see module docstring).
    :param progress: tqdm bar over the blocks.
    """
    x = _as_points(points, name)
    _check_k(k, x.shape[0], name)
    _check_policy(on_duplicates)
    with _torch_settings(num_threads) as workers:
        radii_sq = _knn_radii(
            x,
            _bound_coordinates([x], projection, k)[0],
            k,
            chunk_size=chunk_size,
            memory_budget_mib=memory_budget_mib,
            workers=workers,
            progress=progress,
            name=name,
        )
    _duplicate_check(int((radii_sq == 0).sum()), x.shape[0], k, name, on_duplicates)
    return Manifold(points=x, radii_sq=radii_sq, k=k, name=name)


def _certified_kth(
    x: torch.Tensor,
    cs: _Coords,
    r: torch.Tensor,
    vals: torch.Tensor,
    idx: torch.Tensor,
    rest: torch.Tensor,
    g: torch.Tensor,
    k: int,
    eps_factor: float,
    n_max: float,
) -> tuple[torch.Tensor, int]:
    """Exact (k+1)-th smallest squared distance (C,) of rows ``r`` to all of ``x``, and the
    number of float64 pair distances it took.

    ``vals``/``idx``: the smallest lower-bound values of ``g`` (C, count) and their columns;
    ``rest``: lower bound of the values left out. Each candidate has an interval
    [LB - eps, UB + eps] around its exact d^2; candidates certainly below or above the
    (k+1)-th are not recomputed, the others are (float64). A row whose left-out values might
    reach below the result is redone from all its columns within reach.
    """
    n_r = cs.sq_norms[r].unsqueeze(1)
    eps = (eps_factor * (cs.sq_norms[r] + n_max)).unsqueeze(1)
    lower = vals.to(torch.float64) + n_r - eps
    upper = lower + 2 * eps + 4 * cs.rho[r].unsqueeze(1) * cs.rho[idx]
    q_lo = torch.kthvalue(lower, k + 1, dim=1).values.unsqueeze(1)
    q_hi = torch.kthvalue(upper, k + 1, dim=1).values.unsqueeze(1)
    # certainly below the (k+1)-th: -inf; certainly above: +inf; unsure: exact float64
    value = torch.where(upper < q_lo, -math.inf, math.inf).to(torch.float64)
    unsure = (upper >= q_lo) & (lower <= q_hi)
    pi, pj = unsure.nonzero(as_tuple=True)
    value[pi, pj] = _exact_sq_dist_pairs(x, r[pi], x, idx[pi, pj])
    n_exact = pi.numel()
    q = torch.kthvalue(value, k + 1, dim=1).values
    q_scaled = q * cs.scale_sq  # exact values are in input units, bounds in scaled units
    rest_lower = rest.to(torch.float64) + cs.sq_norms[r] - eps.squeeze(1)
    # a radius 0 is final (distances are >= 0); otherwise nothing left out may be below it
    redo = ((q > 0) & (rest_lower < q_scaled)).nonzero().flatten()
    if redo.numel():
        # every column with exact d^2 <= q (>= the true (k+1)-th) has LB - eps <= q
        reach = (g[redo].to(torch.float64) + n_r[redo] - eps[redo]) <= q_scaled[redo].unsqueeze(1)
        ri, rj = reach.nonzero(as_tuple=True)
        d = _exact_sq_dist_pairs(x, r[redo][ri], x, rj)
        q[redo] = _rows_kth(ri, d, redo.numel(), k + 1)
        n_exact += ri.numel()
    return q, n_exact


def _membership(
    real: Manifold,
    fake: Manifold,
    cr: _Coords,
    cf: _Coords,
    *,
    inclusive: bool,
    chunk_size: int | None,
    memory_budget_mib: float,
    workers: int,
    progress: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(fake inside real manifold (M,) bool, real inside fake manifold (N,) bool).

    One pass over float32 blocks of (fake rows, all real columns) of lower bounds minus the
    radii: a row (column) is out if all its pairs are surely outside, in if its best pair is
    surely inside by the upper bound; the remaining rows (columns) are settled with float64
    distances of their pairs within the error of a boundary. ``cr``, ``cf``: bound
    coordinates of both sets with a common centre and basis.
    """
    xr, xf = real.points, fake.points
    eps_factor = _error_factor(cr.width)
    big = 3.0 * (cr.max_sq_norm + cf.max_sq_norm)
    eps_real = eps_factor * (cr.sq_norms + big)  # (N,)
    eps_fake = eps_factor * (cf.sq_norms + big)  # (M,)
    # |c_j|^2 - R_j^2 and |c_i|^2 - Rf_i^2 in scaled units
    bias_real = (cr.sq_norms - real.radii_sq * cr.scale_sq).to(torch.float32)
    bias_fake = (cf.sq_norms - fake.radii_sq * cf.scale_sq).to(torch.float32)
    rho_real_max, rho_fake_max = float(cr.rho.max()), float(cf.rho.max())

    def inside(d_sq: torch.Tensor, r_sq: torch.Tensor) -> torch.Tensor:
        return d_sq <= r_sq if inclusive else d_sq < r_sq

    n_real, n_fake = xr.shape[0], xf.shape[0]
    rows = _chunk_rows(n_real, chunk_size, memory_budget_mib)
    blocks = _PerThread(lambda: torch.empty(min(rows, n_fake), n_real, dtype=torch.float32))
    col_mins = _PerThread(lambda: torch.full((n_real,), math.inf, dtype=torch.float32))
    fake_in = torch.zeros(n_fake, dtype=torch.bool)

    def work(f: torch.Tensor) -> None:
        # g[i, j] = |c_j|^2 - R_j^2 - 2 c_i.c_j = LB(i, j) - R_j^2 - |c_i|^2
        g = torch.addmm(bias_real.unsqueeze(0), cf.coords[f], cr.coords.T, alpha=-2.0,
                        out=blocks.get()[: f.numel()])  # fmt: skip
        margin = g.amin(dim=1).to(torch.float64) + cf.sq_norms[f]  # min_j LB - R_j^2
        eps = eps_fake[f]
        surely_in = margin + 4 * cf.rho[f] * rho_real_max < -eps
        unsure = ((margin <= eps) & ~surely_in).nonzero().flatten()
        fake_in[f] = surely_in
        if unsure.numel():
            near = g[unsure].to(torch.float64) + cf.sq_norms[f[unsure]].unsqueeze(1)
            pi, pj = (near <= eps[unsure].unsqueeze(1)).nonzero(as_tuple=True)
            d = _exact_sq_dist_pairs(xf, f[unsure][pi], xr, pj)
            fake_in[f[unsure]] = _rows_any(pi, inside(d, real.radii_sq[pj]), unsure.numel())
        # g[i, j] = |c_i|^2 - Rf_i^2 - 2 c_i.c_j = LB(i, j) - Rf_i^2 - |c_j|^2
        g.sub_(bias_real.unsqueeze(0)).add_(bias_fake[f].unsqueeze(1))
        col_min = col_mins.get()
        torch.minimum(col_min, g.amin(dim=0), out=col_min)

    _run_blocks(n_fake, rows, work, workers=workers, progress=progress, desc="membership")
    col_min = torch.stack(col_mins.all).amin(dim=0)

    margin = col_min.to(torch.float64) + cr.sq_norms  # min_i LB - Rf_i^2 per real sample
    surely_in = margin + 4 * cr.rho * rho_fake_max < -eps_real
    real_in = surely_in.clone()
    unsure = ((margin <= eps_real) & ~surely_in).nonzero().flatten()
    for start in range(0, unsure.numel(), rows):
        j = unsure[start : start + rows]
        # g[j, i] = |c_i|^2 - Rf_i^2 - 2 c_j.c_i, as in the main pass
        g = torch.addmm(bias_fake.unsqueeze(0), cr.coords[j], cf.coords.T, alpha=-2.0)
        near = (g.to(torch.float64) + cr.sq_norms[j].unsqueeze(1)) <= eps_real[j].unsqueeze(1)
        pj, pi = near.nonzero(as_tuple=True)
        d = _exact_sq_dist_pairs(xr, j[pj], xf, pi)
        real_in[j] = _rows_any(pj, inside(d, fake.radii_sq[pi]), j.numel())
    return fake_in, real_in


def precision_recall_from_manifolds(
    real: Manifold,
    fake: Manifold,
    *,
    inclusive: bool = False,
    projection: Projection = "auto",
    chunk_size: int | None = None,
    memory_budget_mib: float = 256.0,
    num_threads: int | None = 1,
    progress: bool = False,
    return_membership: bool = False,
) -> PrecisionRecall:
    """Precision and recall from two precomputed manifolds (same k and dimension).

    Lets a reference manifold be computed once and compared with many sets (DwPR).
    Parameters as in :func:`precision_recall`.
    """
    if real.dim != fake.dim:
        raise ValueError(
            f"real samples have dimension {real.dim} but fake samples have {fake.dim}"
        )
    if real.k != fake.k:
        raise ValueError(f"manifolds use different k: real {real.k}, fake {fake.k}")
    with _torch_settings(num_threads) as workers:
        cr, cf = _bound_coordinates([real.points, fake.points], projection, real.k)
        fake_in, real_in = _membership(
            real,
            fake,
            cr,
            cf,
            inclusive=inclusive,
            chunk_size=chunk_size,
            memory_budget_mib=memory_budget_mib,
            workers=workers,
            progress=progress,
        )
    return _result(real, fake, fake_in, real_in, inclusive, return_membership)


def _result(
    real: Manifold,
    fake: Manifold,
    fake_in: torch.Tensor,
    real_in: torch.Tensor,
    inclusive: bool,
    membership: bool = False,
) -> PrecisionRecall:
    return PrecisionRecall(
        precision=float(fake_in.double().mean()),
        recall=float(real_in.double().mean()),
        k=real.k,
        n_real=real.n,
        n_fake=fake.n,
        inclusive=inclusive,
        n_real_zero_radius=real.n_zero_radius,
        n_fake_zero_radius=fake.n_zero_radius,
        fake_inside=fake_in.numpy().copy() if membership else None,
        real_inside=real_in.numpy().copy() if membership else None,
    )


def precision_recall(
    real: np.ndarray | torch.Tensor,
    fake: np.ndarray | torch.Tensor,
    k: int = 3,
    *,
    inclusive: bool = False,
    projection: Projection = "auto",
    chunk_size: int | None = None,
    memory_budget_mib: float = 256.0,
    num_threads: int | None = 1,
    on_duplicates: DuplicatePolicy = "warn",
    progress: bool = False,
    return_membership: bool = False,
) -> PrecisionRecall:
    """Improved precision and recall of ``fake`` samples against ``real`` ones, exact k-NN.

    :param real: (N, D) or (N, T, J) reference samples (training trajectories).
    :param fake: (M, D) or (M, T, J) generated samples of the same flattened dimension D.
    :param k: neighbourhood size (paper: 3), at most min(N, M) - 1.
    :param inclusive: ``<=`` at the ball boundary (paper eq. 10) instead of ``prdc``'s ``<``.
    :param projection: width of the bound coordinates: "auto", "none" or an int (speed only,
        the result is the same).
    :param chunk_size: rows per block; default: blocks of ~8 MiB (cache-sized), within
        ``memory_budget_mib``.
    :param memory_budget_mib: target size (MiB) of the reused float32 blocks; the peak above
        the inputs is about this plus 4 B x (N + M) x P for the coordinates.
    :param num_threads: torch threads during the call; None keeps the current setting.
    :param on_duplicates: samples with k or more exact copies (radius 0): "warn" (default),
        "error" (ValueError naming the count) or "ignore"; the numbers follow ``prdc``.
    :param progress: tqdm bars over the blocks.
    :param return_membership: also return the per-sample booleans ``fake_inside`` /
        ``real_inside`` (for diagnosing which samples are missed).
    """
    r = _as_points(real, "real")
    f = _as_points(fake, "fake")
    if r.shape[1] != f.shape[1]:
        raise ValueError(
            f"real samples have dimension {r.shape[1]} but fake samples have {f.shape[1]}"
        )
    _check_k(k, r.shape[0], "real")
    _check_k(k, f.shape[0], "fake")
    _check_policy(on_duplicates)
    with _torch_settings(num_threads) as workers:
        blocks = dict(
            chunk_size=chunk_size,
            memory_budget_mib=memory_budget_mib,
            workers=workers,
            progress=progress,
        )
        # one centre and basis for both sets: each coordinate array serves twice
        cr, cf = _bound_coordinates([r, f], projection, k)
        real_manifold = Manifold(r, _knn_radii(r, cr, k, name="real", **blocks), k, "real")
        _duplicate_check(real_manifold.n_zero_radius, r.shape[0], k, "real", on_duplicates)
        fake_manifold = Manifold(f, _knn_radii(f, cf, k, name="fake", **blocks), k, "fake")
        _duplicate_check(fake_manifold.n_zero_radius, f.shape[0], k, "fake", on_duplicates)
        fake_in, real_in = _membership(
            real_manifold, fake_manifold, cr, cf, inclusive=inclusive, **blocks
        )
    return _result(real_manifold, fake_manifold, fake_in, real_in, inclusive, return_membership)
