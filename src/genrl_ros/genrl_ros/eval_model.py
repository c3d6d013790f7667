"""``genrl eval-model``: the paper's measures of a trained generator (Section 5.2, 6.2).

* precision / recall (Kynkaanniemi et al. 2019, k = 3) on raw trajectories (T*J vectors, rad):
  ``n`` prior samples against ``n`` of the dataset's safe trajectories (a seeded subset; ``n``
  is ``--n-samples`` capped at the number of safe trajectories, so both sets have the same
  size). Paper protocol (Section 6.2.1): 15000 prior samples vs 15000 training trajectories,
  hence the default ``n_samples`` = 15000;
* two diagnostics of ours that say how far a model is from what is reachable:
  ``real_ceiling_precision`` / ``real_ceiling_recall``, the same measure between two disjoint
  random halves of the safe trajectories (``real_ceiling_n`` each = min(n, safe / 2)): what a
  generator drawing *new* trajectories from the data distribution would score (on the
  hockey data it is ~0.86-0.88 for n from 500 to 2500, i.e. below 0.9); and for a VAE
  ``reconstruction_precision`` / ``reconstruction_recall``: the real subset against its own
  reconstructions (posterior means decoded). A low reconstruction recall means the decoder
  blurs the trajectories beyond the k-NN radii of the data (capacity / training), not that
  the prior misses modes; ``recall_by_real_density_quartile``: recall of the real samples
  grouped by their own k-NN radius (densest quarter first): which real trajectories have no
  generated neighbour; ``precision_by_fake_density_quartile`` likewise for the prior samples;
* DwPR: delta(l) for every latent dimension, delta_1, delta_2 (the two largest) and
  delta_tilde = their mean (``genrl_ros.metrics.dwpr``, D = 5 interventions, k = 3);
* safe fraction: ``--n-safety`` prior samples executed in the simulator
  (``BatchExecutor(on_invalid="skip")``) towards goals drawn from the task's goal distribution
  (the goal changes the reward, not the safety); a trajectory rejected before simulation
  (joint position / velocity limits) counts as unsafe, as does any unsafe contact or
  joint-limit violation step.

Writes ``eval.json`` (everything) and ``eval.md`` (a Markdown table) into ``--out``
(default ``RUN/eval``).
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genrl_ros.data.dataset import TrajectoryDataset, check_output_target
from genrl_ros.models.base import TrajectoryGenerator
from genrl_ros.models.checkpoint import (
    check_dataset_matches,
    load_checkpoint,
    build_from_payload,
    resolve_model_path,
)
from genrl_ros.run_dir import atomic_write_text
from genrl_ros.train_model import safe_mask

EVAL_FILE = "eval.json"
EVAL_MD = "eval.md"
K_NEIGHBOURS = 3
N_INTERVENTIONS = 5
#: paper Section 6.2.1: 15000 prior samples vs 15000 training trajectories
PAPER_N_SAMPLES = 15000


def _rejection_kind(reason: str) -> str:
    """Short class of an executor rejection message (for counting)."""
    text = reason.lower()
    for key in ("velocity", "position", "nan", "finite", "horizon", "joint count", "shape"):
        if key in text:
            return key
    return "other"


def safe_fraction(
    trajectories: np.ndarray, task_name: str, *, seed: int = 0, threads: int = 1,
    progress: bool = False,
) -> dict[str, Any]:
    """Execute trajectories (N, T, J) towards random goals of the task; safety counts."""
    from sim_bridge.executor import BatchExecutor  # noqa: PLC0415 - lazy: mujoco
    from sim_bridge.tasks import make_task  # noqa: PLC0415

    task = make_task(task_name)
    goals = task.sample_goals(trajectories.shape[0], np.random.default_rng(seed))
    with BatchExecutor(task, nthread=threads) as executor:
        outcomes = executor.execute(
            np.asarray(trajectories, dtype=np.float64), goals, on_invalid="skip", progress=progress
        )
    n = int(trajectories.shape[0])
    rejected = [r for r in outcomes.rejection if r is not None]
    unsafe_contact = outcomes.executed & (outcomes.unsafe_contact_steps > 0)
    limit = outcomes.executed & (outcomes.joint_limit_violation_steps > 0)
    return {
        "safe_fraction": float(outcomes.safe.mean()) if n else math.nan,
        "n_safety": n,
        "n_safe": int(outcomes.safe.sum()),
        "n_rejected_by_limits": len(rejected),
        "rejections": dict(Counter(_rejection_kind(r) for r in rejected)),
        "n_unsafe_contact": int(unsafe_contact.sum()),
        "n_joint_limit_violation": int(limit.sum()),
        "unsafe_classes": list(outcomes.unsafe_classes),
        "mean_reward_random_goals": float(np.nanmean(outcomes.reward)) if outcomes.executed.any() else math.nan,
    }


def _by_quartile(inside: np.ndarray, radii: np.ndarray) -> list[float]:
    """Mean of ``inside`` (n,) bool per quartile of ``radii`` (n,), densest quarter first
    (small k-NN radius = dense region of the set)."""
    order = np.argsort(radii, kind="stable")
    return [float(part.mean()) for part in np.array_split(inside[order], 4)]


def _diagnostics(
    model: TrajectoryGenerator, safe: np.ndarray, real: np.ndarray, n: int, seed: int
) -> dict[str, Any]:
    """Real-vs-real ceiling (two disjoint halves of ``safe`` (N, T, J)) and, for a VAE, the
    precision/recall of the reconstructions of ``real`` (n, T, J) against ``real``."""
    from genrl_ros.metrics.precision_recall import precision_recall  # noqa: PLC0415

    out: dict[str, Any] = {}
    half = min(n, safe.shape[0] // 2)
    if half > K_NEIGHBOURS:
        order = np.random.default_rng(seed + 2).permutation(safe.shape[0])
        ceiling = precision_recall(
            safe[np.sort(order[:half])], safe[np.sort(order[half : 2 * half])],
            k=K_NEIGHBOURS, on_duplicates="ignore",
        )
        out.update(
            real_ceiling_n=half,
            real_ceiling_precision=float(ceiling.precision),
            real_ceiling_recall=float(ceiling.recall),
        )
    if hasattr(model, "encode"):
        with torch.no_grad():
            mean, _ = model.encode(torch.from_numpy(np.ascontiguousarray(real)))
            reconstructed = model.decode(mean).numpy()
        rec = precision_recall(real, reconstructed, k=K_NEIGHBOURS, on_duplicates="ignore")
        out.update(
            reconstruction_precision=float(rec.precision),
            reconstruction_recall=float(rec.recall),
            reconstruction_rmse_rad=float(np.sqrt(np.mean((reconstructed - real) ** 2))),
        )
    return out


def evaluate_generator(
    model: TrajectoryGenerator,
    dataset: TrajectoryDataset,
    *,
    n_samples: int = PAPER_N_SAMPLES,
    dwpr_n: int = 1000,
    n_safety: int = 1000,
    seed: int = 0,
    threads: int = 1,
    progress: bool = False,
    diagnostics: bool = True,
) -> dict[str, Any]:
    """All measures of one generator against a dataset (see the module docstring);
    ``diagnostics``: also the real-vs-real ceiling and (VAE) the reconstruction PR."""
    from genrl_ros.metrics.dwpr import dwpr  # noqa: PLC0415
    from genrl_ros.metrics.precision_recall import (  # noqa: PLC0415
        knn_manifold,
        precision_recall_from_manifolds,
    )

    model.eval()
    safe = np.flatnonzero(safe_mask(dataset))
    n = min(int(n_samples), safe.size)
    if n <= K_NEIGHBOURS:
        raise ValueError(
            f"dataset has {safe.size} safe trajectories: too few for precision/recall with "
            f"k={K_NEIGHBOURS}"
        )
    rng = np.random.default_rng(seed)
    real = dataset.trajectories[np.sort(rng.choice(safe, n, replace=False))]
    timings: dict[str, float] = {}
    started = time.perf_counter()
    with torch.no_grad():
        fake = model.sample(n, torch.Generator().manual_seed(seed)).numpy()
    real_manifold = knn_manifold(
        real, K_NEIGHBOURS, name="real", on_duplicates="ignore", progress=progress
    )
    fake_manifold = knn_manifold(
        fake, K_NEIGHBOURS, name="fake", on_duplicates="ignore", progress=progress
    )
    pr = precision_recall_from_manifolds(
        real_manifold, fake_manifold, progress=progress, return_membership=True
    )
    timings["precision_recall"] = time.perf_counter() - started
    extra: dict[str, Any] = {}
    if diagnostics:
        started = time.perf_counter()
        extra = _diagnostics(model, dataset.trajectories[safe], real, n, seed)
        extra["recall_by_real_density_quartile"] = _by_quartile(
            pr.real_inside, real_manifold.radii
        )
        extra["precision_by_fake_density_quartile"] = _by_quartile(
            pr.fake_inside, fake_manifold.radii
        )
        timings["diagnostics"] = time.perf_counter() - started

    started = time.perf_counter()
    with torch.no_grad():
        result = dwpr(
            model, n=int(dwpr_n), num_interventions=N_INTERVENTIONS, k=K_NEIGHBOURS, seed=seed,
            on_duplicates="ignore", progress=progress,
        )
    timings["dwpr"] = time.perf_counter() - started
    delta = [float(x) for x in np.asarray(result.delta, dtype=np.float64).reshape(-1)]

    safety: dict[str, Any] = {"safe_fraction": math.nan, "n_safety": 0}
    if n_safety > 0:
        started = time.perf_counter()
        with torch.no_grad():
            trajectories = model.sample(
                int(n_safety), torch.Generator().manual_seed(seed + 1)
            ).numpy()
        safety = safe_fraction(
            trajectories, dataset.task, seed=seed, threads=threads, progress=progress
        )
        timings["safety"] = time.perf_counter() - started

    dwpr_extra = {
        "dwpr_precision": [float(x) for x in np.asarray(result.precision).reshape(-1)],
        "dwpr_recall": [float(x) for x in np.asarray(result.recall).reshape(-1)],
        "dwpr_interventions_values": [float(x) for x in np.asarray(result.interventions)],
    }
    return {
        "task": dataset.task,
        "kind": model.kind,
        "latent_dim": model.latent_dim,
        "prior": model.prior,
        "hparams": dict(model.hparams),
        "precision": float(pr.precision),
        "recall": float(pr.recall),
        "n_samples": n,
        "k": K_NEIGHBOURS,
        **extra,
        "delta": delta,
        "delta_1": float(result.delta_1),
        "delta_2": float(result.delta_2),
        "delta_tilde": float(result.delta_tilde),
        "dwpr_n": int(dwpr_n),
        "dwpr_interventions": N_INTERVENTIONS,
        **dwpr_extra,
        **safety,
        "seconds": {k: round(v, 2) for k, v in timings.items()},
    }


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if not math.isfinite(value) else f"{value:.3f}"
    return str(value)


def markdown_report(result: dict[str, Any], title: str) -> str:
    """eval.md: the numbers of one model as Markdown tables."""
    lines = [
        f"# {title}",
        "",
        f"task `{result['task']}`, {result['kind']} with N_alpha = {result['latent_dim']} "
        f"(prior {result['prior']}), hyperparameters {json.dumps(result['hparams'])}",
        "",
        "| precision | recall | delta_1 | delta_2 | delta_tilde | safe fraction |",
        "| --- | --- | --- | --- | --- | --- |",
        "| " + " | ".join(
            _fmt(result[k])
            for k in ("precision", "recall", "delta_1", "delta_2", "delta_tilde", "safe_fraction")
        ) + " |",
        "",
        "| latent dimension l | " + " | ".join(str(i + 1) for i in range(len(result["delta"]))) + " |",
        "| --- |" + " --- |" * len(result["delta"]),
        "| delta(l) | " + " | ".join(_fmt(d) for d in result["delta"]) + " |",
        "",
        f"Precision/recall: {result['n_samples']} prior samples vs {result['n_samples']} safe "
        f"dataset trajectories, k = {result['k']}. DwPR: n = {result['dwpr_n']} per "
        f"intervention, D = {result['dwpr_interventions']}. Safe fraction: "
        f"{result.get('n_safety', 0)} prior samples executed in the simulator "
        f"({result.get('n_rejected_by_limits', 0)} rejected by joint limits, "
        f"{result.get('n_unsafe_contact', 0)} with unsafe contacts, "
        f"{result.get('n_joint_limit_violation', 0)} with joint-limit violations).",
        "",
    ]
    if "real_ceiling_n" in result:
        lines += [
            f"Ceiling (real vs real, two disjoint sets of {result['real_ceiling_n']} safe "
            f"trajectories): precision {_fmt(result['real_ceiling_precision'])}, recall "
            f"{_fmt(result['real_ceiling_recall'])}.",
            "",
        ]
    if "recall_by_real_density_quartile" in result:
        lines += [
            "Recall of the real samples by density quartile (k-NN radius, densest first): "
            + ", ".join(_fmt(v) for v in result["recall_by_real_density_quartile"])
            + "; precision of the prior samples likewise: "
            + ", ".join(_fmt(v) for v in result["precision_by_fake_density_quartile"]) + ".",
            "",
        ]
    if "reconstruction_recall" in result:
        lines += [
            "Reconstructions (posterior means decoded) vs the real set: precision "
            f"{_fmt(result['reconstruction_precision'])}, recall "
            f"{_fmt(result['reconstruction_recall'])}, RMSE "
            f"{_fmt(result['reconstruction_rmse_rad'])} rad.",
            "",
        ]
    return "\n".join(lines)


def write_eval(result: dict[str, Any], out: Path, title: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / EVAL_FILE, json.dumps(result, indent=2, allow_nan=True))
    atomic_write_text(out / EVAL_MD, markdown_report(result, title))


def eval_model(
    model_path: str | Path,
    data: str | Path,
    *,
    out: str | Path | None = None,
    overwrite: bool = False,
    n_samples: int = PAPER_N_SAMPLES,
    dwpr_n: int = 1000,
    n_safety: int = 1000,
    seed: int = 0,
    threads: int = 1,
    progress: bool = True,
) -> dict[str, Any]:
    """Load, check against the dataset, evaluate, write eval.json/eval.md; returns the result."""
    source = resolve_model_path(model_path)
    target = Path(out) if out is not None else (
        (Path(model_path) if Path(model_path).is_dir() else source.parent) / "eval"
    )
    check_output_target(target, overwrite, what="evaluation", marker=EVAL_FILE)
    if not Path(data).exists():
        raise FileNotFoundError(f"no dataset at {data}")
    payload = load_checkpoint(source)
    config = payload["metadata"]["model_config"]
    dataset = TrajectoryDataset.load(data)
    check_dataset_matches(config, dataset, model=str(source), data=str(data))
    model = build_from_payload(payload, source)
    started = time.perf_counter()
    result = evaluate_generator(
        model, dataset, n_samples=n_samples, dwpr_n=dwpr_n, n_safety=n_safety, seed=seed,
        threads=threads, progress=progress,
    )
    result.update(
        {
            "model": str(source),
            "model_sha256": payload["metadata"]["model_sha256"],
            "epoch": payload["metadata"].get("epoch"),
            "data": str(data),
            "out": str(target),
            "total_seconds": round(time.perf_counter() - started, 2),
        }
    )
    if target.exists() and overwrite:
        for name in (EVAL_FILE, EVAL_MD):
            (target / name).unlink(missing_ok=True)
    write_eval(result, target, f"Evaluation of {source}")
    return result


def run_eval_model(args: Any) -> dict[str, Any]:
    """Entry point of ``genrl eval-model``."""
    return eval_model(
        args.model,
        args.data,
        out=args.out,
        overwrite=args.overwrite,
        n_samples=args.n_samples,
        dwpr_n=args.dwpr_n,
        n_safety=args.n_safety,
        seed=args.seed,
        threads=args.threads,
        progress=True,
    )
