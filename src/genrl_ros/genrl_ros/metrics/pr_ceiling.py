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

Command line (writes ``ceiling.json``, ``ceiling.csv`` and ``ceiling.png`` into ``--out``)::

    python -m genrl_ros.metrics.pr_ceiling --data DATASET --sizes 2500 5000 7500 --out DIR
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
    parser.add_argument("--out", required=True, help="output directory")
    args = parser.parse_args(argv)
    dataset = TrajectoryDataset.load(args.data)
    safe = dataset.trajectories[safe_mask(dataset)]
    rows = real_vs_real(safe, args.sizes, repeats=args.repeats, seed=args.seed, progress=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"data": args.data, "n_safe": int(safe.shape[0]), "k": 3, "rows": rows}
    atomic_write_text(out / "ceiling.json", json.dumps(result, indent=2))
    atomic_write_text(out / "ceiling.csv", csv_text(rows, ["n", "repeat", "precision", "recall", "seconds"]))
    plot_ceiling(rows, out / "ceiling.png", f"{args.data}: disjoint real subsets")
    return result


if __name__ == "__main__":
    main()
