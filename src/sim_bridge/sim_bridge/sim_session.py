"""The simulated scene behind the sim_bridge node: one task, its current goal, and episodes
executed on demand; plus the simulated clock and the real-time pacing. No ROS import.

Episodes. The simulator is episodic, like the embedded mode: every trajectory runs from the
task's initial state (arm at ``start_rad``, objects at their initial positions, the goal as
last reset) for ``horizon + settle_steps`` control steps, through
:class:`sim_bridge.executor.BatchExecutor`, so an episode run by the node gives exactly the
outcome the embedded mode gives for the same commands. The whole episode is simulated when
it starts (``mujoco.rollout``, tens of milliseconds); the node then plays the measured joint
states back at the control rate (paced by the real-time factor). A cancel or an abort at step
``k`` simulates the episode again with the arm holding from ``k`` on: physics is causal and
deterministic, so steps up to ``k`` are unchanged and the outcome is that of the held episode.

After an episode the scene shows its final joint state until the next reset or goal.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sim_bridge.executor import BatchExecutor, EpisodeOutcomes
from sim_bridge.ros_outcome_conversions import EpisodeReport
from sim_bridge.tasks import make_task
from sim_bridge.tasks.base import Task
from sim_bridge.trajectory import TrajectorySpec


@dataclass(frozen=True, eq=False)
class EpisodeRun:
    """A simulated episode: measured joint states at the end of every control step,
    (S, 7) each with S = horizon + settle steps, and the executor's outcome (one row)."""

    commands: np.ndarray
    joint_positions: np.ndarray
    joint_velocities: np.ndarray
    outcomes: EpisodeOutcomes

    @property
    def n_steps(self) -> int:
        return int(self.joint_positions.shape[0])


class SimSession:
    """The scene of one task.

    :param task: a :class:`Task` or its name.
    :param seed: seed of the goal sampler (``reset(sample=True)``).
    :param nthread: simulation threads of the executor.
    """

    def __init__(self, task: Task | str, seed: int = 0, nthread: int = 1) -> None:
        self.task = make_task(task) if isinstance(task, str) else task
        self.executor = BatchExecutor(self.task, nthread=nthread)
        self._rng = np.random.default_rng(seed)
        self.goal_xy = np.asarray(self.task.sample_goals(1, self._rng)[0], dtype=np.float64)
        self.episode_index = 0
        self.joint_positions = self.task.start_rad.copy()
        self.joint_velocities = np.zeros(self.task.n_joints)

    # ------------------------------------------------------------------ properties
    @property
    def spec(self) -> TrajectorySpec:
        return self.task.trajectory_spec

    @property
    def joint_names(self) -> tuple[str, ...]:
        return tuple(self.task.joint_names)

    @property
    def n_steps(self) -> int:
        """Control steps of an episode: the trajectory, then the settling time."""
        return int(self.task.episode_control_steps)

    @property
    def control_dt_s(self) -> float:
        return float(self.task.control_dt_s)

    # ------------------------------------------------------------------ scene
    def reset(self, goal_xy: np.ndarray | None = None, sample: bool = False) -> np.ndarray:
        """Arm back at the start configuration, the goal at ``goal_xy`` (m) or sampled from
        the task's goal distribution; returns the goal (2,).

        A goal outside the task's goal region is accepted (the caller may warn: see
        :meth:`goal_in_region`).
        """
        if sample:
            goal = np.asarray(self.task.sample_goals(1, self._rng)[0], dtype=np.float64)
        else:
            if goal_xy is None:
                raise ValueError("reset needs a goal or sample=True")
            goal = np.asarray(goal_xy, dtype=np.float64).reshape(-1)[:2]
            if goal.shape != (2,) or not np.isfinite(goal).all():
                raise ValueError(f"goal must be a finite (x, y) in metres, got {goal_xy!r}")
        self.goal_xy = goal
        self.joint_positions = self.task.start_rad.copy()
        self.joint_velocities = np.zeros(self.task.n_joints)
        return goal.copy()

    def goal_in_region(self, goal_xy: np.ndarray | None = None) -> bool:
        goal = self.goal_xy if goal_xy is None else np.asarray(goal_xy, dtype=np.float64)
        return bool(self.task.goal_in_region(goal.reshape(1, 2))[0])

    # ------------------------------------------------------------------ episodes
    def simulate(self, commands: np.ndarray) -> EpisodeRun:
        """Simulate one episode of validated commands (T, 7) towards the current goal."""
        commands = np.asarray(commands, dtype=np.float64)
        outcomes = self.executor.execute(
            commands[None], self.goal_xy[None], record_joint_states=True
        )
        assert outcomes.joint_positions is not None and outcomes.joint_velocities is not None
        return EpisodeRun(
            commands=commands.copy(),
            joint_positions=outcomes.joint_positions[0],
            joint_velocities=outcomes.joint_velocities[0],
            outcomes=outcomes,
        )

    def finish(self, run: EpisodeRun) -> EpisodeReport:
        """The report of a played episode; the scene keeps its final joint state."""
        report = EpisodeReport.from_outcomes(run.outcomes, 0, self.episode_index)
        self.episode_index += 1
        self.joint_positions = run.joint_positions[-1].copy()
        self.joint_velocities = run.joint_velocities[-1].copy()
        return report

    def reject(self, reason: str) -> EpisodeReport:
        """The report of a goal that was not executed (counts as an episode)."""
        report = EpisodeReport.rejected(
            self.episode_index,
            self.task.name,
            self.goal_xy,
            reason,
            self.task.contact_class_names,
            self.task.unsafe_class_names,
        )
        self.episode_index += 1
        return report

    def close(self) -> None:
        self.executor.close()


class SimClock:
    """Simulated time (ns) published on /clock when the graph uses sim time: it advances by
    one control period per simulated (or idle) control step."""

    def __init__(self, start_ns: int = 0) -> None:
        if start_ns < 0:
            raise ValueError(f"start_ns must be >= 0, got {start_ns}")
        self._now_ns = int(start_ns)

    @property
    def now_ns(self) -> int:
        return self._now_ns

    def advance(self, ns: int) -> int:
        if ns < 0:
            raise ValueError(f"time cannot go backwards ({ns} ns)")
        self._now_ns += int(ns)
        return self._now_ns


class StepPacer:
    """Wall-clock pacing of played-back control steps.

    :param real_time_factor: simulated seconds per wall-clock second; 1.0 = real time,
        0 = as fast as possible (no waiting).
    :param control_dt_s: simulated time of one step.
    :param clock: monotonic wall clock in seconds (injectable for tests).
    """

    def __init__(
        self,
        real_time_factor: float,
        control_dt_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not np.isfinite(real_time_factor) or real_time_factor < 0:
            raise ValueError(f"real_time_factor must be >= 0, got {real_time_factor}")
        if not control_dt_s > 0:
            raise ValueError(f"control_dt_s must be > 0, got {control_dt_s}")
        self.real_time_factor = float(real_time_factor)
        self.control_dt_s = float(control_dt_s)
        self._clock = clock
        self._start = clock()

    def restart(self) -> None:
        """Step 0 is due one period from now."""
        self._start = self._clock()

    @property
    def step_wall_s(self) -> float:
        """Wall-clock time of one step (0 when as fast as possible)."""
        return 0.0 if self.real_time_factor == 0 else self.control_dt_s / self.real_time_factor

    def delay_s(self, step: int) -> float:
        """How long to wait before step ``step`` (counted from :meth:`restart`) is due."""
        if self.real_time_factor == 0:
            return 0.0
        due = self._start + (step + 1) * self.step_wall_s
        return max(0.0, due - self._clock())
