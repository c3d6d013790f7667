"""Demonstration data of a task (seed 000, section 6.3): solved expert demonstrations, then
expert trajectory shaping, executed in the simulator.

1. The unperturbed expert is solved on ``expert_goals`` random goals; its accuracy on them
   is the expert's score (median final distance, unsafe episodes).
2. The first ``demonstrations`` usable solutions (safe, and within the task's
   demonstration margin, :meth:`Task.demonstration_ok`: e.g. the hockey blade at least 5 mm
   above the table) form the demonstration pool; they enter the data set as expert episodes.
3. Perturbed copies of pool demonstrations (:mod:`sim_bridge.experts.shaping`) are executed
   in batches; by default only usable ones are kept (no unsafe contact, no joint-limit
   violation, within the margin), until the data set holds ``n_episodes`` episodes. The
   fraction of perturbed episodes that were safe is reported, and the fraction kept.

The goal of a perturbed episode is the goal of the demonstration it was made from; the
outcome records where the puck or ball really went.
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass, field

import numpy as np

from sim_bridge.executor import BatchExecutor, EpisodeOutcomes
from sim_bridge.experts.shaping import WINDOWS, ShapingConfig, perturb
from sim_bridge.tasks import make_task


#: each task's scripted expert: its module (imported on first use) and class
EXPERTS = {
    "hockey": ("sim_bridge.experts.hockey", "HockeyExpert"),
    "basketball": ("sim_bridge.experts.basketball", "BasketballExpert"),
}


def _expert_module(task_name: str):
    if task_name not in EXPERTS:
        raise ValueError(f"no scripted expert for task {task_name!r}")
    return importlib.import_module(EXPERTS[task_name][0])


def make_expert(executor: BatchExecutor):
    """The scripted expert of the executor's task."""
    name = executor.task.name
    return getattr(_expert_module(name), EXPERTS[name][1])(executor)


def expert_velocity_margin(task_name: str) -> float:
    """Fraction of the joint velocity limits the task's expert stays below (its module's
    ``VELOCITY_MARGIN``); perturbed demonstrations keep the same margin."""
    return float(_expert_module(task_name).VELOCITY_MARGIN)


def task_shaping(task_name: str, design: str = WINDOWS) -> ShapingConfig:
    """The expert trajectory shaping of ``genrl demos`` for a task: within the expert's
    velocity margin, and for the ``gains`` design with the task's ``SHAPING_GAIN_RANGE``."""
    module = _expert_module(task_name)
    return ShapingConfig(
        design=design,
        velocity_margin=float(module.VELOCITY_MARGIN),
        gain_range=float(module.SHAPING_GAIN_RANGE),
    )


def as_stored(trajectories: np.ndarray) -> np.ndarray:
    """Commands rounded to the data set's float32 storage (returned as float64)."""
    return np.asarray(trajectories, dtype=np.float32).astype(np.float64)


def concatenate_outcomes(parts: list[EpisodeOutcomes]) -> EpisodeOutcomes:
    """One :class:`EpisodeOutcomes` from several of the same task, in order."""
    first = parts[0]

    def cat(name: str):
        values = [getattr(p, name) for p in parts]
        if any(v is None for v in values):
            return None
        return np.concatenate(values, axis=0)

    return EpisodeOutcomes(
        task=first.task,
        goals_xy=cat("goals_xy"),
        executed=cat("executed"),
        rejection=[r for p in parts for r in p.rejection],
        reward=cat("reward"),
        distance_m=cat("distance_m"),
        final_object_pos=cat("final_object_pos"),
        object_at_rest=cat("object_at_rest"),
        contact_steps=cat("contact_steps"),
        contact_classes=first.contact_classes,
        unsafe_classes=first.unsafe_classes,
        joint_limit_violation_steps=cat("joint_limit_violation_steps"),
        joint_positions=cat("joint_positions"),
        joint_velocities=cat("joint_velocities"),
        extras={
            name: np.concatenate([p.extras[name] for p in parts])
            for name in first.extras
            if all(name in p.extras for p in parts)
        },
    )


def select_outcomes(outcomes: EpisodeOutcomes, index: np.ndarray) -> EpisodeOutcomes:
    """The episodes ``index`` (integer array or boolean mask) of ``outcomes``."""
    rows = np.flatnonzero(index) if np.asarray(index).dtype == bool else np.asarray(index)

    def pick(value):
        return None if value is None else value[rows]

    return EpisodeOutcomes(
        task=outcomes.task,
        goals_xy=outcomes.goals_xy[rows],
        executed=outcomes.executed[rows],
        rejection=[outcomes.rejection[i] for i in rows],
        reward=outcomes.reward[rows],
        distance_m=outcomes.distance_m[rows],
        final_object_pos=outcomes.final_object_pos[rows],
        object_at_rest=outcomes.object_at_rest[rows],
        contact_steps=outcomes.contact_steps[rows],
        contact_classes=outcomes.contact_classes,
        unsafe_classes=outcomes.unsafe_classes,
        joint_limit_violation_steps=outcomes.joint_limit_violation_steps[rows],
        joint_positions=pick(outcomes.joint_positions),
        joint_velocities=pick(outcomes.joint_velocities),
        extras={name: values[rows] for name, values in outcomes.extras.items()},
    )


@dataclass
class DemonstrationSet:
    """Demonstration episodes of one task (N episodes) and the expert's own score.

    :param trajectories: (N, T, 7) commanded joint positions (rad).
    :param outcomes: outcomes of the N episodes (goals included).
    :param is_expert: (N,) unperturbed expert episodes.
    :param expert_outcomes: outcomes of the unperturbed expert on its evaluation goals.
    :param perturbed_simulated: perturbed episodes simulated (kept or not).
    :param perturbed_safe: of those, the safe ones.
    :param perturbed_usable: of those, the safe ones within the demonstration margin.
    """

    trajectories: np.ndarray
    outcomes: EpisodeOutcomes
    is_expert: np.ndarray
    expert_outcomes: EpisodeOutcomes
    perturbed_simulated: int
    perturbed_safe: int
    perturbed_usable: int
    settings: dict = field(default_factory=dict)

    @property
    def perturbed_safe_fraction(self) -> float:
        return self.perturbed_safe / max(self.perturbed_simulated, 1)

    @property
    def perturbed_usable_fraction(self) -> float:
        return self.perturbed_usable / max(self.perturbed_simulated, 1)


def generate_demonstrations(
    task_name: str,
    n_episodes: int,
    *,
    seed: int = 0,
    expert_goals: int = 500,
    demonstrations: int = 200,
    nthread: int = 1,
    keep_unsafe: bool = False,
    record_joint_states: bool = False,
    shaping: ShapingConfig | None = None,
    batch_episodes: int = 512,
    progress: bool = True,
) -> DemonstrationSet:
    """Solve, perturb and execute demonstrations of a task (see the module docstring).

    ``shaping`` None: the task's default perturbations (:func:`task_shaping`)."""
    if n_episodes < 1 or expert_goals < 1 or demonstrations < 1:
        raise ValueError("n_episodes, expert_goals and demonstrations must be >= 1")
    if shaping is None:
        shaping = task_shaping(task_name)
    rng = np.random.default_rng(seed)
    task = make_task(task_name)
    with BatchExecutor(task, nthread=nthread) as executor:
        expert = make_expert(executor)
        goals = task.sample_goals(max(expert_goals, demonstrations), rng)
        if progress:
            print(f"[{task.name}] solving the expert on {goals.shape[0]} goals", flush=True)
        _, solved, solved_outcomes = expert.solve(goals)
        expert_outcomes = select_outcomes(solved_outcomes, np.arange(expert_goals))

        usable = solved_outcomes.safe & task.demonstration_ok(solved_outcomes)
        pool = np.flatnonzero(usable)[:demonstrations]
        if pool.size == 0:
            raise RuntimeError(f"the {task.name} expert produced no safe demonstration")
        # The data set stores float32 commands, and a puck or ball outcome can change by
        # millimetres when the commands change by 1e-6 rad (contacts): every episode is
        # executed with the commands exactly as stored, so that a replay reproduces it.
        pool_trajectories = as_stored(solved[pool])
        n_expert = min(pool.size, n_episodes)
        kept_trajectories = [pool_trajectories[:n_expert]]
        expert_kept = executor.execute(
            pool_trajectories[:n_expert],
            goals[pool[:n_expert]],
            record_joint_states=record_joint_states,
        )
        kept_outcomes = [expert_kept]
        kept = n_expert
        simulated = safe = usable = 0

        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=n_episodes, initial=kept, desc=f"{task.name} demonstrations")
        while kept < n_episodes:
            batch, source = perturb(pool_trajectories, task.trajectory_spec, batch_episodes, rng, shaping)
            batch = as_stored(batch)
            outcome = executor.execute(
                batch, goals[pool[source]], record_joint_states=record_joint_states
            )
            simulated += batch.shape[0]
            safe += int(outcome.safe.sum())
            usable += int((outcome.safe & task.demonstration_ok(outcome)).sum())
            keep = (
                np.ones(batch.shape[0], bool)
                if keep_unsafe
                else outcome.safe & task.demonstration_ok(outcome)
            )
            rows = np.flatnonzero(keep)[: n_episodes - kept]
            kept_trajectories.append(batch[rows])
            kept_outcomes.append(select_outcomes(outcome, rows))
            kept += rows.size
            if bar is not None:
                bar.update(rows.size)
            if simulated >= 50 * n_episodes and safe == 0:
                raise RuntimeError("no safe perturbed episode in 50x the requested number")
        if bar is not None:
            bar.close()

    trajectories = np.concatenate(kept_trajectories)
    is_expert = np.zeros(trajectories.shape[0], bool)
    is_expert[:n_expert] = True
    return DemonstrationSet(
        trajectories=trajectories,
        outcomes=concatenate_outcomes(kept_outcomes),
        is_expert=is_expert,
        expert_outcomes=expert_outcomes,
        perturbed_simulated=simulated,
        perturbed_safe=safe,
        perturbed_usable=usable,
        settings={
            "seed": seed,
            "expert_goals": expert_goals,
            "demonstrations": int(pool.size),
            "keep_unsafe": keep_unsafe,
            "shaping": asdict(shaping),
        },
    )
