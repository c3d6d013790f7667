"""Is the policy or the generator the limit? A per-goal latent search around a trained policy.

A trained goal policy maps each goal to one latent (its mean). Whether a better result needs
a better *generator* or a better *policy* is answered here: for each held-out goal, a
cross-entropy search (CEM) in the latent space starts at the policy's mean and looks for the
latent whose trajectory ends closest to the goal, with the same decoder, executor and checks
(joint limits, workspace check) as EM training. If the search finds good latents near the
policy's mean, the generator can express the solutions and the policy's smooth goal ->
latent map is what misses them; if it does not, the generator is the limit.

This is a diagnostic, not a controller: it spends ``population x iterations`` simulated
episodes per goal, which a robot would not have.

Command line (writes ``latent_search.json`` and ``latent_search.csv``, one row per goal)::

    python -m genrl_ros.em.latent_search --policy RUN/policy.pt --model MODEL --goals 200 \\
        --out DIR [--iterations 3 --population 24 --init-std 0.2 --threads 2]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genrl_ros.em.config import SUCCESS_RADIUS_BY_TASK_M


@dataclass(frozen=True)
class LatentSearchConfig:
    """Settings of the per-goal cross-entropy search."""

    #: CEM iterations (each draws ``population`` latents per goal)
    iterations: int = 3
    #: latents drawn per goal and iteration
    population: int = 24
    #: best latents per goal that set the next iteration's mean and std
    elites: int = 6
    #: std of every latent dimension in the first iteration (around the policy's mean)
    init_std: float = 0.2
    #: lower bound of the std in later iterations
    min_std: float = 0.01
    #: seed of the latent draws
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("iterations", "population", "elites"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.elites > self.population:
            raise ValueError(f"elites ({self.elites}) must be <= population ({self.population})")
        for name in ("init_std", "min_std"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")


def search_latents(
    mean: np.ndarray,
    goals: np.ndarray,
    distance_of: Any,
    config: LatentSearchConfig = LatentSearchConfig(),
    progress: bool = False,
) -> dict[str, Any]:
    """CEM per goal, started at ``mean``.

    :param mean: (G, L) start latents (the policy's means).
    :param goals: (G, 2) goals (m).
    :param distance_of: ``(goals (N, 2), latents (N, L) float32) -> distances (N,)`` in metres,
        +inf for trajectories that are refused before execution.
    :returns: ``start_distance_m`` (G,) at the start latents, ``best_distance_m`` (G,) and
        ``best_latent`` (G, L) over everything drawn, ``median_by_iteration`` (the median of
        the best distances after each iteration).
    """
    mean = np.asarray(mean, dtype=np.float64)
    goals = np.asarray(goals, dtype=np.float64).reshape(-1, 2)
    n_goals, latent_dim = mean.shape
    if goals.shape[0] != n_goals:
        raise ValueError(f"{goals.shape[0]} goals for {n_goals} start latents")
    rng = np.random.default_rng(config.seed)
    start = np.asarray(distance_of(goals, mean.astype(np.float32)), dtype=np.float64)
    best, best_latent = start.copy(), mean.copy()
    std = np.full_like(mean, config.init_std)
    medians = []
    iterations = range(config.iterations)
    if progress:
        from tqdm import tqdm  # noqa: PLC0415

        iterations = tqdm(iterations, desc="latent search", unit="it")
    for _ in iterations:
        latents = mean[:, None] + std[:, None] * rng.standard_normal(
            (n_goals, config.population, latent_dim))
        distance = np.asarray(distance_of(
            np.repeat(goals, config.population, axis=0),
            latents.reshape(-1, latent_dim).astype(np.float32),
        ), dtype=np.float64).reshape(n_goals, config.population)
        order = np.argsort(distance, axis=1)
        elites = np.take_along_axis(latents, order[:, : config.elites, None], axis=1)
        mean = elites.mean(axis=1)
        std = np.maximum(elites.std(axis=1), config.min_std)
        top = order[:, 0]
        top_distance = distance[np.arange(n_goals), top]
        better = top_distance < best
        best[better] = top_distance[better]
        best_latent[better] = latents[np.arange(n_goals), top][better]
        medians.append(float(np.median(best)))
    return {
        "start_distance_m": start,
        "best_distance_m": best,
        "best_latent": best_latent,
        "median_by_iteration": medians,
    }


def _by_radius(goals: np.ndarray, values: dict[str, np.ndarray], width_m: float) -> list[dict[str, Any]]:
    radius = np.linalg.norm(goals, axis=1)
    rows = []
    low = np.floor(radius.min() / width_m) * width_m
    while low <= radius.max():
        inside = (radius >= low) & (radius < low + width_m)
        if inside.any():
            row: dict[str, Any] = {"radius_from_m": round(float(low), 3),
                                   "radius_to_m": round(float(low + width_m), 3),
                                   "goals": int(inside.sum())}
            for key, value in values.items():
                row[key] = float(np.median(value[inside]))
            rows.append(row)
        low += width_m
    return rows


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    from genrl_ros.em.config import EMConfig  # noqa: PLC0415
    from genrl_ros.em.trainer import (  # noqa: PLC0415
        SimulatedEpisodes,
        clip_to_bound,
        decode_latents,
        evaluation_goals,
        load_policy,
    )
    from genrl_ros.models.checkpoint import load_generator  # noqa: PLC0415
    from genrl_ros.run_dir import atomic_write_text, csv_text  # noqa: PLC0415
    from sim_bridge.tasks import make_task  # noqa: PLC0415

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--policy", required=True, help="policy.pt of a goal-policy run")
    parser.add_argument("--model", required=True, help="the generator it was trained on")
    parser.add_argument("--goals", type=int, default=200,
                        help="the first N goals of the held-out evaluation stream (train-policy "
                        "evaluates on the first 500)")
    parser.add_argument("--iterations", type=int, default=LatentSearchConfig.iterations)
    parser.add_argument("--population", type=int, default=LatentSearchConfig.population)
    parser.add_argument("--elites", type=int, default=LatentSearchConfig.elites)
    parser.add_argument("--init-std", type=float, default=LatentSearchConfig.init_std)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-workspace-check", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", required=True, help="output directory")
    args = parser.parse_args(argv)
    if args.goals < 1:
        parser.error(f"--goals must be >= 1, got {args.goals}")
    config = LatentSearchConfig(iterations=args.iterations, population=args.population,
                                elites=args.elites, init_std=args.init_std, seed=args.seed)
    torch.set_num_threads(args.threads)
    policy, info = load_policy(args.policy)
    if info["observation"] != "goal":
        raise SystemExit(f"{args.policy}: a {info['observation']} policy; the search needs a goal policy")
    task = make_task(info["task"])
    generator = load_generator(args.model, expect_task=task.name).eval()
    if generator.latent_dim != policy.latent_dim:
        raise SystemExit(f"{args.model}: latent_dim {generator.latent_dim}, the policy's is "
                         f"{policy.latent_dim}")
    goals = evaluation_goals(task, args.goals)
    with torch.no_grad():
        mean = policy(torch.as_tensor(goals, dtype=torch.float32))[0].numpy()

    # as in training: latents beyond the prior's support (InfoGAN: U(-1, 1)) are clipped
    latent_bound = EMConfig().latent_bound_for(generator.prior)

    def decode(latents: np.ndarray) -> np.ndarray:
        return decode_latents(generator, clip_to_bound(latents, latent_bound))

    episodes = SimulatedEpisodes(task, decode, nthread=args.threads,
                                 workspace_check=not args.no_workspace_check)

    def distance_of(goal_xy: np.ndarray, latents: np.ndarray) -> np.ndarray:
        results = episodes.run(goal_xy, latents)
        return np.where(results.executed, results.distance_m, np.inf)

    started = time.perf_counter()
    try:
        found = search_latents(mean, goals, distance_of, config, progress=True)
    finally:
        episodes.close()
    radius_m = SUCCESS_RADIUS_BY_TASK_M[task.name]
    start, best = found["start_distance_m"], found["best_distance_m"]
    summary = {
        "policy": args.policy, "model": args.model, "task": task.name, "goals": int(args.goals),
        "config": asdict(config), "workspace_check": not args.no_workspace_check,
        "episodes": int(args.goals * (1 + config.iterations * config.population)),
        "seconds": round(time.perf_counter() - started, 1),
        "policy_median_distance_m": float(np.median(start)),
        "policy_success_rate": float(np.mean(start <= radius_m)),
        "search_median_distance_m": float(np.median(best)),
        "search_success_rate": float(np.mean(best <= radius_m)),
        "success_radius_m": radius_m,
        "median_by_iteration": found["median_by_iteration"],
        "by_radius": _by_radius(goals, {"policy_median_m": start, "search_median_m": best},
                                1.0 if task.name == "basketball" else 0.1),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "latent_search.json", json.dumps(summary, indent=2))
    rows = [
        {"goal_x_m": float(g[0]), "goal_y_m": float(g[1]), "policy_distance_m": float(s),
         "search_distance_m": float(b),
         "latent_shift": float(np.linalg.norm(a - m))}
        for g, s, b, a, m in zip(goals, start, best, found["best_latent"], mean)
    ]
    atomic_write_text(out / "latent_search.csv", csv_text(rows, list(rows[0])))
    print(f"policy: median {summary['policy_median_distance_m']:.3f} m, "
          f"{summary['policy_success_rate']:.0%} within {radius_m} m; search around it: median "
          f"{summary['search_median_distance_m']:.3f} m, {summary['search_success_rate']:.0%}")
    for row in summary["by_radius"]:
        print(f"  r {row['radius_from_m']:.1f}-{row['radius_to_m']:.1f} m ({row['goals']} goals): "
              f"policy {row['policy_median_m']:.3f} m, search {row['search_median_m']:.3f} m")
    return summary


if __name__ == "__main__":
    main()
