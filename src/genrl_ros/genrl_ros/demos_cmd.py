"""``genrl demos``: demonstration datasets, their coverage plots and summary.

``genrl demos`` writes, in ``--out``: the dataset (``episodes.npz`` + ``metadata.json``),
``coverage.png`` (where pucks / balls ended over the goal region, and the reward
distribution), ``summary.json`` (the numbers of the ``--json`` summary and more) and, with
``--bag``, a rosbag2 copy.

:func:`make_demos` is also the first stage of the main job (``genrl run``,
:mod:`genrl_ros.main_job`).
"""

from __future__ import annotations

import json
import time
from argparse import Namespace
from pathlib import Path
from typing import Any

import numpy as np

from genrl_ros.data.dataset import TrajectoryDataset, check_output_target

def dataset_from_demonstrations(
    demos, task, seed: int, extra_metadata: dict[str, Any] | None = None
) -> TrajectoryDataset:
    """The :class:`TrajectoryDataset` of a :class:`~sim_bridge.experts.demonstrations.DemonstrationSet`."""
    outcomes = demos.outcomes
    return TrajectoryDataset(
        task=task.name,
        horizon=task.horizon,
        control_dt_s=task.control_dt_s,
        joint_names=task.joint_names,
        seed=seed,
        trajectories=demos.trajectories,
        goals_xy=outcomes.goals_xy,
        final_object_pos=outcomes.final_object_pos,
        rewards=outcomes.reward,
        distance_m=outcomes.distance_m,
        contact_steps=outcomes.contact_steps,
        contact_classes=outcomes.contact_classes,
        unsafe_classes=outcomes.unsafe_classes,
        joint_limit_violation_steps=outcomes.joint_limit_violation_steps,
        is_expert=demos.is_expert,
        joint_positions=outcomes.joint_positions,
        joint_velocities=outcomes.joint_velocities,
        metadata={
            "generator": "sim_bridge.experts.demonstrations",
            "physics_dt_s": task.physics_dt_s,
            "settle_steps": task.settle_steps,
            "start_rad": task.start_rad.tolist(),
            "goals": "goal of the demonstration each episode was made from",
            "perturbed_simulated": demos.perturbed_simulated,
            "perturbed_safe": demos.perturbed_safe,
            "perturbed_usable": demos.perturbed_usable,
            **demos.settings,
            **(extra_metadata or {}),
        },
    )


def _quantiles(values: np.ndarray) -> dict[str, float]:
    values = np.asarray(values, dtype=np.float64)
    return {
        "min": float(values.min()),
        "p10": float(np.quantile(values, 0.1)),
        "median": float(np.median(values)),
        "mean": float(values.mean()),
        "p90": float(np.quantile(values, 0.9)),
        "max": float(values.max()),
    }


def demos_summary(demos, task, seconds: float) -> dict[str, Any]:
    """Numbers of a demonstration set: the expert's score, safety, reward distribution."""
    expert = demos.expert_outcomes
    outcomes = demos.outcomes
    unsafe_names = list(outcomes.unsafe_classes)
    final_xy = outcomes.final_object_pos[:, :2]
    summary: dict[str, Any] = {
        "task": task.name,
        "episodes": int(len(outcomes)),
        "expert_episodes": int(demos.is_expert.sum()),
        "expert_goals": int(len(expert)),
        "expert_median_distance_m": float(np.median(expert.distance_m)),
        "expert_mean_distance_m": float(np.mean(expert.distance_m)),
        "expert_p90_distance_m": float(np.quantile(expert.distance_m, 0.9)),
        "expert_unsafe_episodes": int(expert.unsafe.sum()),
        "expert_contact_steps": {
            name: int(expert.contact_steps_of(name).sum()) for name in expert.contact_classes
        },
        "perturbed_simulated": int(demos.perturbed_simulated),
        "perturbed_safe": int(demos.perturbed_safe),
        "safe_fraction": float(demos.perturbed_safe_fraction),
        "usable_fraction": float(demos.perturbed_usable_fraction),
        "dataset_safe_fraction": float(outcomes.safe.mean()),
        "dataset_unsafe_classes": unsafe_names,
        "reward": _quantiles(outcomes.reward),
        "final_in_goal_region": float(task.goal_in_region(final_xy).mean()),
        **{
            f"{name}_quantiles": _quantiles(values)
            for name, values in outcomes.extras.items()
            if np.isfinite(values).all()
        },
        "seconds": round(seconds, 2),
    }
    return summary


def plot_coverage(demos, task, path: Path, n_goal_samples: int = 4000) -> None:
    """Where the objects ended (over the goal region), and the reward histogram, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outcomes = demos.outcomes
    final_xy = outcomes.final_object_pos[:, :2]
    region = task.sample_goals(n_goal_samples, np.random.default_rng(12345))
    fig, (ax_map, ax_reward) = plt.subplots(1, 2, figsize=(12, 5.2))
    ax_map.scatter(region[:, 0], region[:, 1], s=2, c="0.85", label="goal region (samples)")
    perturbed = ~demos.is_expert
    ax_map.scatter(
        final_xy[perturbed, 0], final_xy[perturbed, 1], s=3, alpha=0.35, c="tab:blue",
        label=f"perturbed episodes ({perturbed.sum()})",
    )
    ax_map.scatter(
        final_xy[~perturbed, 0], final_xy[~perturbed, 1], s=8, c="tab:red",
        label=f"expert demonstrations ({(~perturbed).sum()})",
    )
    ax_map.scatter([0.0], [0.0], marker="^", s=80, c="k", label="robot base")
    ax_map.set_aspect("equal")
    ax_map.set_xlabel("x (m)")
    ax_map.set_ylabel("y (m)")
    ax_map.set_title(f"{task.name}: final object positions")
    span = np.concatenate([region, np.zeros((1, 2))])
    pad = 0.3
    ax_map.set_xlim(span[:, 0].min() - pad, span[:, 0].max() + pad)
    ax_map.set_ylim(span[:, 1].min() - pad, span[:, 1].max() + pad)
    ax_map.legend(loc="best", fontsize=8, markerscale=2, framealpha=0.6)
    bins = np.linspace(min(outcomes.reward.min(), -1e-3), 0.0, 61)
    ax_reward.hist(outcomes.reward[perturbed], bins=bins, color="tab:blue", alpha=0.7, label="perturbed")
    ax_reward.hist(
        outcomes.reward[~perturbed], bins=bins, color="tab:red", histtype="step", lw=2, label="expert"
    )
    ax_reward.set_yscale("log")
    ax_reward.set_xlabel("terminal reward (-distance to the episode's goal, m)")
    ax_reward.set_ylabel("episodes")
    ax_reward.set_title(f"reward distribution (safe fraction of perturbed: {demos.perturbed_safe_fraction:.2f})")
    ax_reward.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def make_demos(
    task_name: str,
    episodes: int,
    out: Path,
    *,
    seed: int,
    expert_goals: int,
    demonstrations: int,
    threads: int,
    bag: Path | None = None,
    keep_unsafe: bool = False,
    shaping: str = "windows",
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Generate, save and plot the demonstrations of one task; returns the summary.

    ``shaping``: the expert trajectory shaping design (``sim_bridge.experts.shaping``)."""
    from sim_bridge.experts.demonstrations import generate_demonstrations, task_shaping
    from sim_bridge.tasks import make_task

    out = Path(out)
    check_output_target(out, overwrite, what="dataset", marker="metadata.json")
    if bag is not None:
        check_output_target(Path(bag), overwrite, what="rosbag2", marker="metadata.yaml")
    task = make_task(task_name)
    started = time.perf_counter()
    demos = generate_demonstrations(
        task_name,
        episodes,
        seed=seed,
        expert_goals=expert_goals,
        demonstrations=demonstrations,
        nthread=threads,
        keep_unsafe=keep_unsafe,
        record_joint_states=bag is not None,
        shaping=task_shaping(task_name, shaping),
        progress=progress,
    )
    seconds = time.perf_counter() - started
    summary = demos_summary(demos, task, seconds)
    dataset = dataset_from_demonstrations(demos, task, seed, {"summary": summary})
    dataset.save(out, overwrite=overwrite)
    plot_coverage(demos, task, out / "coverage.png")
    summary["dataset"] = str(out)
    summary["coverage_png"] = str(out / "coverage.png")
    if bag is not None:
        from genrl_ros.data.rosbag_io import export_bag

        export_bag(dataset, Path(bag), overwrite=overwrite, progress=progress)
        summary["bag"] = str(bag)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def run_demos(args: Namespace) -> dict[str, Any]:
    """``genrl demos``."""
    return make_demos(
        args.task,
        args.episodes,
        Path(args.out),
        seed=args.seed,
        expert_goals=args.expert_goals,
        demonstrations=args.demonstrations,
        threads=args.threads,
        bag=Path(args.bag) if args.bag else None,
        keep_unsafe=args.keep_unsafe,
        shaping=args.shaping,
        overwrite=args.overwrite,
    )
