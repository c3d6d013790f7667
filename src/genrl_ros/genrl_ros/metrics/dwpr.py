"""Disentanglement with precision and recall (DwPR, GenRL paper section 5.2.2).

For each latent dimension l and D intervention values I_1..I_D, D sets of n latent codes are
drawn from the prior and their l-th component is set to I_d; T_l is the union of the D decoded
sets (n*D trajectories). The reference set is n*D trajectories decoded from prior samples. With
precision/recall of :mod:`genrl_ros.metrics.precision_recall` and the reference as the *real*
set (paper eq. 11):

    delta(l) = precision(reference, T_l) - recall(reference, T_l)

i.e. the fraction of T_l inside the reference manifold minus the fraction of the reference
inside the T_l manifold. A dimension whose intervention pins one aspect of the trajectories
gives realistic samples (high precision) that cover little of the reference (low recall).
delta_1 >= delta_2 are the two largest delta(l), delta_tilde = (delta_1 + delta_2) / 2.

Choices (the paper leaves them open):

- intervention values: the quantiles (d - 0.5) / D of the prior's marginal, d = 1..D: for
  N(0, 1) and D = 5 about [-1.28, -0.52, 0, 0.52, 1.28], for U(-1, 1) [-0.8, -0.4, 0, 0.4,
  0.8]; ``interventions=`` overrides them.
- every (l, d) gets its own fresh n prior samples (not one set reused for all d): with a
  reused set, a decoder that ignores dimension l would produce each trajectory D times, i.e.
  exact duplicates of radius 0, an empty T_l manifold, recall 0 and a spuriously high
  delta(l). With fresh samples such a dimension gets delta(l) ~ 0 as it should.
- determinism: all latent codes come from one ``torch.Generator`` seeded with ``seed``, drawn
  in the order reference, then (l = 1, d = 1), (1, 2), ..., (L, D).

Cost: L + 1 k-NN manifolds and L membership passes over sets of n*D trajectories. At the
paper's scale (n = 10,000, D = 5: 50,000 x 50,000) with L = 3 and a Table-7-sized MLP decoder
it took ~1.5 min on one core and < 1 GiB (``bench/bench_measures.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Protocol, Sequence, runtime_checkable

import numpy as np
import torch

from genrl_ros.metrics.precision_recall import (
    DuplicatePolicy,
    Projection,
    knn_manifold,
    precision_recall_from_manifolds,
)

__all__ = ["DwPRResult", "LatentGenerator", "dwpr", "intervention_values"]

PAPER_N = 10_000  # prior samples per intervention in the paper


@runtime_checkable
class LatentGenerator(Protocol):
    """What DwPR needs of a generative model (e.g. the models of ``genrl_ros.models``).

    ``latent_dim``: L; ``prior``: "normal" (N(0, I)) or "uniform" (U(-1, 1)^L);
    ``sample_prior(n, generator)``: (n, L) latent codes drawn with the torch generator;
    ``decode(alpha)``: (n, L) codes -> (n, T, J) or (n, T*J) trajectories.
    """

    latent_dim: int
    prior: str

    def sample_prior(self, n: int, generator: torch.Generator) -> torch.Tensor: ...

    def decode(self, alpha: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True)
class DwPRResult:
    """Result of :func:`dwpr`.

    :param delta: (L,) precision - recall per latent dimension, in [-1, 1].
    :param delta_1: largest delta(l).
    :param delta_2: second largest delta(l) (NaN when L = 1).
    :param delta_tilde: (delta_1 + delta_2) / 2 (NaN when L = 1).
    :param precision: (L,) fraction of T_l inside the reference manifold.
    :param recall: (L,) fraction of the reference inside the T_l manifold.
    :param interventions: (D,) the values I_d given to the intervened component.
    :param n: prior samples per intervention (|T_l| = |reference| = n * D).
    :param k: neighbourhood size of precision/recall.
    :param seed: seed of the latent codes.
    """

    delta: np.ndarray
    delta_1: float
    delta_2: float
    delta_tilde: float
    precision: np.ndarray
    recall: np.ndarray
    interventions: np.ndarray
    n: int
    k: int
    seed: int


def intervention_values(prior: str, num_interventions: int = 5) -> np.ndarray:
    """(D,) quantiles (d - 0.5) / D, d = 1..D, of the prior's marginal ("normal" or "uniform")."""
    if num_interventions < 1:
        raise ValueError(f"num_interventions must be >= 1, got {num_interventions}")
    levels = (np.arange(1, num_interventions + 1) - 0.5) / num_interventions
    if prior == "normal":
        return np.array([NormalDist().inv_cdf(p) for p in levels])
    if prior == "uniform":
        return 2.0 * levels - 1.0
    raise ValueError(f"prior must be 'normal' or 'uniform', got {prior!r}")


def _check_generator(generator: object) -> int:
    for attribute in ("latent_dim", "prior", "sample_prior", "decode"):
        if not hasattr(generator, attribute):
            raise TypeError(
                f"{type(generator).__name__} has no {attribute!r}: DwPR needs latent_dim, "
                f"prior, sample_prior(n, generator) and decode(alpha)"
            )
    latent_dim = generator.latent_dim  # type: ignore[attr-defined]
    if isinstance(latent_dim, bool) or not isinstance(latent_dim, (int, np.integer)):
        raise TypeError(f"latent_dim must be an int, got {latent_dim!r}")
    if latent_dim < 1:
        raise ValueError(f"latent_dim must be >= 1, got {latent_dim}")
    return int(latent_dim)


def _sample(model: LatentGenerator, n: int, rng: torch.Generator, latent_dim: int) -> torch.Tensor:
    alpha = torch.as_tensor(model.sample_prior(n, rng))
    if tuple(alpha.shape) != (n, latent_dim):
        raise ValueError(
            f"sample_prior({n}) returned shape {tuple(alpha.shape)}, expected ({n}, {latent_dim})"
        )
    return alpha


def _decode(model: LatentGenerator, alpha: torch.Tensor, batch_size: int) -> torch.Tensor:
    """(n, F) float32 flattened trajectories of latent codes (n, L), decoded in batches."""
    parts = []
    for s in range(0, alpha.shape[0], batch_size):
        out = torch.as_tensor(model.decode(alpha[s : s + batch_size])).detach()
        if out.ndim < 2 or out.shape[0] != alpha[s : s + batch_size].shape[0]:
            raise ValueError(
                f"decode of {alpha[s : s + batch_size].shape[0]} codes returned shape "
                f"{tuple(out.shape)}, expected (n, T, J) or (n, T*J)"
            )
        parts.append(out.reshape(out.shape[0], -1).to(device="cpu", dtype=torch.float32))
    return torch.cat(parts)


def dwpr(
    generator: LatentGenerator,
    n: int = 1000,
    *,
    num_interventions: int = 5,
    interventions: Sequence[float] | None = None,
    k: int = 3,
    seed: int = 0,
    decode_batch_size: int = 4096,
    projection: Projection = "auto",
    chunk_size: int | None = None,
    memory_budget_mib: float = 256.0,
    num_threads: int | None = 1,
    on_duplicates: DuplicatePolicy = "warn",
    progress: bool = False,
) -> DwPRResult:
    """DwPR of a latent-variable generator: delta(l) for every latent dimension l.

    :param generator: object with ``latent_dim``, ``prior``, ``sample_prior(n, generator)``
        and ``decode(alpha)`` (see :class:`LatentGenerator`); decoded under ``no_grad`` as is
        (put a torch module in eval mode first).
    :param n: prior samples per intervention (paper: 10,000; default 1000 for speed); the
        reference and every T_l hold n * D trajectories.
    :param num_interventions: D (paper: 5).
    :param interventions: the D values I_d; default :func:`intervention_values` of the prior.
    :param k: neighbourhood size of precision/recall (paper: 3).
    :param seed: seed of the latent codes; equal seeds give equal results.
    :param decode_batch_size: latent codes per ``decode`` call.
    :param projection, chunk_size, memory_budget_mib, on_duplicates: as in
        :func:`genrl_ros.metrics.precision_recall.precision_recall`.
    :param num_threads: torch threads for decoding and measures (restored after); None keeps
        the current setting.
    :param progress: tqdm bar over the latent dimensions.
    """
    latent_dim = _check_generator(generator)
    if interventions is None:
        values = intervention_values(str(generator.prior), num_interventions)
    else:
        values = np.asarray(interventions, dtype=np.float64).reshape(-1)
        if values.size == 0 or not np.all(np.isfinite(values)):
            raise ValueError(f"interventions must be finite values, got {interventions!r}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if decode_batch_size < 1:
        raise ValueError(f"decode_batch_size must be >= 1, got {decode_batch_size}")
    size = n * values.size
    if k >= size:
        raise ValueError(f"k={k} must be smaller than n * D = {size}")
    options = dict(
        projection=projection,
        chunk_size=chunk_size,
        memory_budget_mib=memory_budget_mib,
        num_threads=num_threads,
    )
    old_threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        with torch.no_grad():
            rng = torch.Generator().manual_seed(int(seed))
            reference = _decode(
                generator, _sample(generator, size, rng, latent_dim), decode_batch_size
            )
            ref_manifold = knn_manifold(
                reference, k, name="reference", on_duplicates=on_duplicates, **options
            )
            precision = np.empty(latent_dim)
            recall = np.empty(latent_dim)
            dims = range(latent_dim)
            if progress:
                from tqdm.auto import tqdm

                dims = tqdm(dims, desc="DwPR", unit="latent dim")
            for l in dims:
                alpha = torch.cat([_sample(generator, n, rng, latent_dim) for _ in values])
                alpha[:, l] = torch.as_tensor(values, dtype=alpha.dtype).repeat_interleave(n)
                t_l = _decode(generator, alpha, decode_batch_size)
                t_manifold = knn_manifold(
                    t_l, k, name=f"T_{l + 1}", on_duplicates=on_duplicates, **options
                )
                pr = precision_recall_from_manifolds(ref_manifold, t_manifold, **options)
                precision[l], recall[l] = pr.precision, pr.recall
    finally:
        torch.set_num_threads(old_threads)
    delta = precision - recall
    top = np.sort(delta)[::-1]
    delta_1 = float(top[0])
    delta_2 = float(top[1]) if latent_dim > 1 else math.nan
    return DwPRResult(
        delta=delta,
        delta_1=delta_1,
        delta_2=delta_2,
        delta_tilde=(delta_1 + delta_2) / 2,
        precision=precision,
        recall=recall,
        interventions=values,
        n=int(n),
        k=int(k),
        seed=int(seed),
    )
