"""Real-vs-real precision/recall: the ceiling a perfect generator could reach, per set size.

Precision/recall with k-NN manifolds (k = 3) is below 1 even for two samples of the *same*
distribution: a point of one set lies outside the other set's union of k-NN balls with some
probability that depends on the intrinsic dimension, on k and on the set size n (small sets
leave the sparse parts of the data uncovered). A generator that samples exactly the data
distribution scores like a second, disjoint draw of real data. This module measures that:
for each n, ``repeats`` random pairs of *disjoint* subsets of n real trajectories each
(so n <= N / 2), precision(A, B) and recall(A, B) with the same code as ``genrl eval-model``.

Note: ``genrl eval-model`` compares prior samples with n of the *training* trajectories
(paper Section 6.2.1: 15000 vs 15000). A generator that reproduced the training set exactly
would score 1 / 1 there; one that draws new trajectories from the data distribution scores
the ceiling measured here.

The ceiling of a smooth cloud of points falls with its intrinsic dimension d:
:func:`intrinsic_dimension_ceiling` measures it on synthetic data of known d (a uniform cube
and a standard normal, linearly embedded in the trajectories' 483 dimensions), and
:func:`mle_intrinsic_dimension` estimates d of a dataset (Levina and Bickel 2005, with
MacKay and Ghahramani's averaging), so that a dataset's ceiling can be compared with that of
a cloud of its dimension. (The hockey and basketball demonstrations score well below what
their estimated dimension predicts; see the README.)

What the demonstrations' ceiling comes from: :func:`shaping_ceiling` rebuilds perturbed
datasets from a dataset's own expert demonstrations with sim_bridge's expert trajectory
shaping (``sim_bridge.experts.shaping.perturb``, without simulating them), varying how many
demonstrations are perturbed and how (:data:`SHAPING_VARIANTS`), and measures each one's
ceiling. Each demonstration with each choice of perturbed joints is a family of
trajectories of at most 3 dimensions per joint; many families with few samples each keep
the ceiling near 0.87 even when every family is a line.

Command line (writes ``ceiling.json``, ``ceiling.csv`` and ``ceiling.png`` into ``--out``;
with ``--intrinsic-dims`` also ``ceiling_by_dimension.json/csv/png``, with ``--shaping``
also ``ceiling_by_shaping.json/csv``)::

    python -m genrl_ros.metrics.pr_ceiling --data DATASET --sizes 2500 5000 7500 --out DIR \
        [--intrinsic-dims 1 2 4 6 8 12 16] [--shaping]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from genrl_ros.metrics.precision_recall import precision_recall

#: :func:`shaping_ceiling`'s variants: name -> (demonstrations used (None: all), changes to
#: the task's ShapingConfig). ``min_window_fraction`` 1 makes every bump span the whole
#: trajectory, so that a joint's perturbation is a line (its height only). The ``gains``
#: design makes one family per demonstration (``sim_bridge.experts.shaping``).
SHAPING_VARIANTS: dict[str, tuple[int | None, dict[str, Any]]] = {
    "as generated (all demonstrations, 1-3 joints)": (None, {}),
    "all demonstrations, 1 joint": (None, {"max_joints": 1}),
    "all demonstrations, 1 joint, full-length bumps": (
        None, {"max_joints": 1, "min_window_fraction": 1.0}),
    "10 demonstrations, 1-3 joints": (10, {}),
    "1 demonstration, 1-3 joints": (1, {}),
    "1 demonstration, 1-3 joints, full-length bumps": (1, {"min_window_fraction": 1.0}),
    "1 demonstration, 1 joint": (1, {"max_joints": 1}),
    "1 demonstration, 1 joint, full-length bumps": (
        1, {"max_joints": 1, "min_window_fraction": 1.0}),
    "all demonstrations, gains of joints 1, 2, 4, 6 (--shaping gains)": (
        None, {"design": "gains"}),
    "10 demonstrations, gains of joints 1, 2, 4, 6": (10, {"design": "gains"}),
}


def real_vs_real(
    trajectories: np.ndarray,
    sizes: Sequence[int],
    *,
    repeats: int = 1,
    k: int = 3,
    seed: int = 0,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """Precision/recall of disjoint real subsets, one row per (size, repeat).

    :param trajectories: (N, T, J) or (N, D) real trajectories (rad).
    :param sizes: subset sizes n, each with 2 n <= N and n > k.
    :param repeats: random pairs of subsets per size.
    :returns: rows with ``n``, ``repeat``, ``precision``, ``recall``, ``seconds``.
    """
    data = np.asarray(trajectories)
    n_total = int(data.shape[0])
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    for n in sizes:
        if not k < int(n) <= n_total // 2:
            raise ValueError(
                f"size {n} must be in ({k}, {n_total // 2}]: two disjoint subsets of "
                f"{n_total} trajectories"
            )
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    for n in sizes:
        for repeat in range(repeats):
            order = rng.permutation(n_total)
            a, b = data[np.sort(order[:n])], data[np.sort(order[n : 2 * n])]
            started = time.perf_counter()
            pr = precision_recall(a, b, k=k, on_duplicates="ignore")
            rows.append(
                {
                    "n": int(n),
                    "repeat": repeat,
                    "precision": float(pr.precision),
                    "recall": float(pr.recall),
                    "seconds": round(time.perf_counter() - started, 2),
                }
            )
            if progress:
                print(f"[pr-ceiling] n={n} repeat={repeat}: precision {pr.precision:.3f} "
                      f"recall {pr.recall:.3f}", flush=True)
    return rows


def intrinsic_dimension_ceiling(
    dims: Sequence[int],
    n: int,
    *,
    ambient_dim: int = 483,
    k: int = 3,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Precision/recall of two disjoint samples of n points of the same d-dimensional
    distribution (uniform on the unit cube, and standard normal), each mapped linearly into
    ``ambient_dim`` dimensions by one random Gaussian matrix per d: the ceiling of a perfect
    generator on data of intrinsic dimension d. One row per (d, distribution) with ``dim``,
    ``distribution``, ``precision``, ``recall``."""
    if n <= k:
        raise ValueError(f"n must be > k = {k}, got {n}")
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    for dim in dims:
        if int(dim) < 1:
            raise ValueError(f"intrinsic dimensions must be >= 1, got {dim}")
        embedding = rng.standard_normal((int(dim), ambient_dim))
        for distribution in ("uniform", "normal"):
            if distribution == "uniform":
                points = rng.uniform(size=(2 * n, int(dim)))
            else:
                points = rng.standard_normal((2 * n, int(dim)))
            points = points @ embedding
            pr = precision_recall(points[:n], points[n:], k=k)
            rows.append({"dim": int(dim), "distribution": distribution,
                         "precision": float(pr.precision), "recall": float(pr.recall)})
    return rows


def shaping_ceiling(
    demonstrations: np.ndarray,
    task: str,
    n: int,
    *,
    variants: dict[str, tuple[int | None, dict[str, Any]]] | None = None,
    k: int = 3,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Real-vs-real precision/recall of datasets perturbed from ``demonstrations`` (D, T, 7)
    with the task's expert trajectory shaping, one per variant (default
    :data:`SHAPING_VARIANTS`): two disjoint sets of n perturbed trajectories each (not
    simulated, so nothing is filtered out). One row per variant with ``variant``,
    ``demonstrations``, ``precision``, ``recall``."""
    from dataclasses import replace  # noqa: PLC0415

    from sim_bridge.experts.demonstrations import task_shaping  # noqa: PLC0415
    from sim_bridge.experts.shaping import perturb  # noqa: PLC0415
    from sim_bridge.tasks import make_task  # noqa: PLC0415

    if n <= k:
        raise ValueError(f"n must be > k = {k}, got {n}")
    demos = np.asarray(demonstrations, dtype=np.float64)
    spec = make_task(task).trajectory_spec
    base = task_shaping(task)  # as `genrl demos`
    rows: list[dict[str, Any]] = []
    for name, (count, changes) in (variants or SHAPING_VARIANTS).items():
        used = demos if count is None else demos[:count]
        if used.shape[0] == 0:
            raise ValueError(f"variant {name!r}: no demonstrations")
        config = replace(base, **changes)
        points, _ = perturb(used, spec, 2 * n, np.random.default_rng(seed), config)
        pr = precision_recall(points[:n], points[n:], k=k, on_duplicates="ignore")
        rows.append({"variant": name, "demonstrations": int(used.shape[0]),
                     "precision": float(pr.precision), "recall": float(pr.recall)})
    return rows


def mle_intrinsic_dimension(points: np.ndarray, k: int = 10) -> float:
    """Maximum-likelihood intrinsic dimension of a point set (Levina and Bickel 2005) from
    the distances to each point's k nearest neighbours, averaged over the points as the
    inverse (MacKay and Ghahramani's correction). ``points``: (N, ...) with N > k; exact
    neighbours, distances computed 1024 rows at a time (1024 x N memory)."""
    import torch  # noqa: PLC0415

    x = torch.as_tensor(np.asarray(points, dtype=np.float64).reshape(len(points), -1))
    n = x.shape[0]
    if not 2 <= k < n:
        raise ValueError(f"k must be in [2, {n - 1}] for {n} points, got {k}")
    inverse_estimates = []
    for start in range(0, n, 1024):
        distance = torch.cdist(x[start : start + 1024], x)
        rows = torch.arange(distance.shape[0])
        distance[rows, rows + start] = float("inf")  # a point is not its own neighbour
        knn = torch.topk(distance, k, dim=1, largest=False).values  # (B, k), ascending
        if bool((knn[:, 0] <= 0).any()):
            raise ValueError("duplicate points: the intrinsic dimension is undefined")
        log_ratio = torch.log(knn[:, -1:] / knn[:, :-1])  # log(T_k / T_j), j < k
        inverse_estimates.append(log_ratio.mean(dim=1))
    return float(1.0 / torch.cat(inverse_estimates).mean())


def plot_ceiling_by_dimension(
    rows: Sequence[dict[str, Any]], path: Path, data_point: dict[str, float] | None = None
) -> None:
    """PNG: synthetic real-vs-real precision and recall against the intrinsic dimension,
    with the dataset's (estimated dimension, measured ceiling) if given."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for distribution, style in (("uniform", "-"), ("normal", "--")):
        part = [r for r in rows if r["distribution"] == distribution]
        for key, marker in (("precision", "o"), ("recall", "s")):
            ax.plot([r["dim"] for r in part], [r[key] for r in part], marker + style,
                    alpha=0.7, label=f"{distribution} {key}")
    if data_point is not None:
        ax.plot([data_point["dim"]], [data_point["ceiling"]], "k*", ms=12,
                label="dataset (MLE dim, real vs real)")
    ax.axhline(0.9, color="grey", ls=":", lw=0.8)
    ax.set_xlabel("intrinsic dimension d")
    ax.set_ylabel("real vs real (k = 3)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_ceiling(rows: Sequence[dict[str, Any]], path: Path, title: str) -> None:
    """PNG: real-vs-real precision and recall against the set size n."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for key, marker in (("precision", "o"), ("recall", "s")):
        ax.plot([r["n"] for r in rows], [r[key] for r in rows], marker, alpha=0.6, label=key)
    sizes = sorted({r["n"] for r in rows})
    means = [np.mean([r["precision"] + r["recall"] for r in rows if r["n"] == n]) / 2 for n in sizes]
    ax.plot(sizes, means, "k-", lw=1, label="mean of both")
    ax.axhline(0.9, color="grey", ls="--", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("trajectories per set n")
    ax.set_ylabel("real vs real (k = 3)")
    ax.set_title(title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    from genrl_ros.data.dataset import TrajectoryDataset  # noqa: PLC0415
    from genrl_ros.run_dir import atomic_write_text, csv_text  # noqa: PLC0415
    from genrl_ros.train_model import safe_mask  # noqa: PLC0415

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="dataset directory")
    parser.add_argument("--sizes", type=int, nargs="+", required=True, help="set sizes n")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--intrinsic-dims", type=int, nargs="*", default=None, metavar="D",
                        help="also measure the ceiling of synthetic data of these intrinsic "
                        "dimensions (n = the largest --sizes) and estimate the dataset's")
    parser.add_argument("--shaping", action="store_true",
                        help="also measure the ceiling of datasets perturbed from the dataset's "
                        "expert demonstrations in other ways (n = the largest --sizes)")
    parser.add_argument("--out", required=True, help="output directory")
    args = parser.parse_args(argv)
    dataset = TrajectoryDataset.load(args.data)
    safe = dataset.trajectories[safe_mask(dataset)]
    rows = real_vs_real(safe, args.sizes, repeats=args.repeats, seed=args.seed, progress=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"data": args.data, "n_safe": int(safe.shape[0]), "k": 3, "rows": rows}
    atomic_write_text(out / "ceiling.csv", csv_text(rows, ["n", "repeat", "precision", "recall", "seconds"]))
    plot_ceiling(rows, out / "ceiling.png", f"{args.data}: disjoint real subsets")
    if args.intrinsic_dims:
        n = max(args.sizes)
        by_dim = intrinsic_dimension_ceiling(args.intrinsic_dims, n, ambient_dim=safe[0].size,
                                             seed=args.seed)
        for row in by_dim:
            print(f"[pr-ceiling] d={row['dim']} {row['distribution']}: precision "
                  f"{row['precision']:.3f} recall {row['recall']:.3f}", flush=True)
        sample = safe[np.random.default_rng(args.seed).permutation(len(safe))[: 2 * n]]
        dim = mle_intrinsic_dimension(sample)
        largest = [r for r in rows if r["n"] == n]
        ceiling = float(np.mean([(r["precision"] + r["recall"]) / 2 for r in largest]))
        print(f"[pr-ceiling] dataset: MLE intrinsic dimension {dim:.1f} (k = 10, "
              f"{len(sample)} trajectories), real vs real {ceiling:.3f} at n = {n}", flush=True)
        result["intrinsic_dimension_mle"] = dim
        result["ceiling_by_dimension"] = by_dim
        atomic_write_text(out / "ceiling_by_dimension.json", json.dumps(
            {"n": n, "dataset_dim_mle": dim, "dataset_ceiling": ceiling, "rows": by_dim}, indent=2))
        atomic_write_text(out / "ceiling_by_dimension.csv",
                          csv_text(by_dim, ["dim", "distribution", "precision", "recall"]))
        plot_ceiling_by_dimension(by_dim, out / "ceiling_by_dimension.png",
                                  {"dim": dim, "ceiling": ceiling})
    if args.shaping:
        n = max(args.sizes)
        experts = dataset.trajectories[dataset.is_expert & safe_mask(dataset)]
        by_shaping = shaping_ceiling(experts, dataset.task, n, seed=args.seed)
        for row in by_shaping:
            print(f"[pr-ceiling] {row['variant']}: precision {row['precision']:.3f} "
                  f"recall {row['recall']:.3f}", flush=True)
        result["ceiling_by_shaping"] = by_shaping
        atomic_write_text(out / "ceiling_by_shaping.json",
                          json.dumps({"n": n, "rows": by_shaping}, indent=2))
        atomic_write_text(out / "ceiling_by_shaping.csv", csv_text(
            by_shaping, ["variant", "demonstrations", "precision", "recall"]))
    atomic_write_text(out / "ceiling.json", json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
