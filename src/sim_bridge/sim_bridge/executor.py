"""Batched execution of joint trajectories in MuJoCo: the hot path of training.

N trajectories (N, T, 7) go in; per-episode outcomes come out (reward, final object position,
contact steps per class, joint-limit violations). Every trajectory is validated first (NaN,
joint count, horizon, joint position and velocity limits): by default an invalid one raises
before anything is simulated; with ``on_invalid="skip"`` it is not simulated and its outcome
says why.

Actuation: between two commands the position set-point is interpolated linearly at every
2 ms physics step and the velocity set-point is the constant velocity of that segment (what
a joint trajectory controller with linear interpolation sends to a joint impedance
controller). After the last command the arm holds it for the task's settling time.

Physics runs in ``mujoco.rollout`` (C++, no Python per step), split into chunks of episodes
over a thread pool of ``nthread`` threads. Results do not depend on ``nthread`` or the chunk
size: every episode starts from the same initial state and is simulated on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import mujoco
import numpy as np
from mujoco import rollout

from sim_bridge.arm import JOINT_LOWER_RAD, JOINT_UPPER_RAD
from sim_bridge.tasks import make_task
from sim_bridge.tasks.base import Task
from sim_bridge.trajectory import TrajectoryError, check_trajectories

#: a measured joint position beyond its limit by more than this counts as a violation
JOINT_LIMIT_TOLERANCE_RAD = 1e-3


@dataclass
class EpisodeOutcomes:
    """Outcomes of N episodes. Arrays are indexed by episode; episodes that were not
    executed (``executed`` False) have NaN rewards and zero counts."""

    task: str
    goals_xy: np.ndarray
    executed: np.ndarray
    rejection: list[str | None]
    reward: np.ndarray
    distance_m: np.ndarray
    final_object_pos: np.ndarray
    object_at_rest: np.ndarray
    #: (N, C) control steps with at least one contact of each class
    contact_steps: np.ndarray
    contact_classes: tuple[str, ...]
    unsafe_classes: tuple[str, ...]
    #: control steps in which a measured joint position was outside its limits
    joint_limit_violation_steps: np.ndarray
    #: measured joint positions / velocities at the end of every control step, (N, S, 7)
    joint_positions: np.ndarray | None = None
    joint_velocities: np.ndarray | None = None
    #: task-specific per-episode measurements, name -> (N,) array (NaN when not executed)
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.reward.shape[0])

    def contact_steps_of(self, name: str) -> np.ndarray:
        """Control steps with a contact of class ``name``, shape (N,)."""
        return self.contact_steps[:, self.contact_classes.index(name)]

    @property
    def unsafe_contact_steps(self) -> np.ndarray:
        """Control steps summed over the unsafe contact classes, shape (N,)."""
        columns = [self.contact_classes.index(name) for name in self.unsafe_classes]
        return self.contact_steps[:, columns].sum(axis=1)

    @property
    def unsafe(self) -> np.ndarray:
        """Executed episodes with any unsafe contact or joint-limit violation, shape (N,)."""
        return self.executed & (
            (self.unsafe_contact_steps > 0) | (self.joint_limit_violation_steps > 0)
        )

    @property
    def safe(self) -> np.ndarray:
        """Executed episodes without unsafe contact or joint-limit violation, shape (N,)."""
        return self.executed & ~self.unsafe


class BatchExecutor:
    """Executes batches of joint trajectories of one task.

    :param task: a :class:`Task` or its name (``hockey``, ``basketball``).
    :param nthread: simulation threads (1 = on the calling thread).
    :param chunk_episodes: episodes simulated per rollout call (bounds memory: the sensor
        buffer holds chunk_episodes x physics steps x sensor values).
    :param workspace_check: also refuse trajectories whose commands would drive the arm
        into the scene (:meth:`Task.workspace_violations`, e.g. the hockey blade into the
        table), like trajectories beyond the joint limits; off by default, so that contacts
        can be simulated and counted.
    """

    def __init__(
        self,
        task: Task | str,
        nthread: int = 1,
        chunk_episodes: int = 64,
        workspace_check: bool = False,
    ) -> None:
        self.task = make_task(task) if isinstance(task, str) else task
        self.workspace_check = bool(workspace_check)
        if nthread < 1:
            raise ValueError(f"nthread must be >= 1, got {nthread}")
        if chunk_episodes < 1:
            raise ValueError(f"chunk_episodes must be >= 1, got {chunk_episodes}")
        self.nthread = nthread
        self.chunk_episodes = chunk_episodes
        self.model = self.task.build_model()
        self._datas = [mujoco.MjData(self.model) for _ in range(nthread)]
        self._runner = rollout.Rollout(nthread=nthread if nthread > 1 else 0)
        self._initial_state = self._make_initial_state()
        self._joint_pos_cols = np.arange(self.task.n_joints)
        self._joint_vel_cols = np.arange(self.task.n_joints, 2 * self.task.n_joints)
        extra_spec, _ = self.task.extra_controls(1)
        self._control_spec = int(mujoco.mjtState.mjSTATE_CTRL) | extra_spec

    # ------------------------------------------------------------------ set-up
    def _make_initial_state(self) -> np.ndarray:
        data = mujoco.MjData(self.model)
        data.qpos[:] = self.task.initial_qpos(self.model)
        data.ctrl[: self.task.n_joints] = self.task.start_rad
        mujoco.mj_forward(self.model, data)
        spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
        state = np.empty(mujoco.mj_stateSize(self.model, spec))
        mujoco.mj_getState(self.model, data, state, spec)
        return state

    def close(self) -> None:
        """Stop the simulation threads."""
        if self._runner is not None:
            self._runner.close()
            self._runner = None

    def __enter__(self) -> "BatchExecutor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ set-points
    def setpoints(self, trajectories: np.ndarray) -> np.ndarray:
        """Actuator set-points at every physics step for a batch of trajectories.

        :param trajectories: (N, T, 7) joint position commands (rad), already validated.
        :returns: (N, nstep, 14): interpolated position set-points, then velocity set-points.
        """
        task = self.task
        n, horizon, joints = trajectories.shape
        substeps = task.substeps
        start = np.broadcast_to(task.start_rad, (n, 1, joints))
        previous = np.concatenate([start, trajectories[:, :-1]], axis=1)
        segment = trajectories - previous  # (N, T, 7)
        fraction = (np.arange(substeps) + 1.0) / substeps  # (S,)
        positions = previous[:, :, None, :] + fraction[None, None, :, None] * segment[:, :, None, :]
        velocities = np.repeat(segment / task.control_dt_s, substeps, axis=1)
        controls = np.empty((n, task.episode_physics_steps, 2 * joints))
        active = horizon * substeps
        controls[:, :active, :joints] = positions.reshape(n, active, joints)
        controls[:, :active, joints:] = velocities
        controls[:, active:, :joints] = trajectories[:, -1:, :]
        controls[:, active:, joints:] = 0.0
        return controls

    def _controls(self, trajectories: np.ndarray) -> np.ndarray:
        controls = self.setpoints(trajectories)
        _, extra = self.task.extra_controls(trajectories.shape[0])
        if extra is None:
            return controls
        extra = np.broadcast_to(extra, controls.shape[:2] + extra.shape[2:])
        # mjtState order: ctrl comes before the extra (e.g. eq_active) components.
        return np.concatenate([controls, extra], axis=2)

    # ------------------------------------------------------------------ execution
    def simulate(self, trajectories: np.ndarray) -> np.ndarray:
        """Raw sensor stream of validated trajectories, (N, nstep, nsensordata)."""
        n = trajectories.shape[0]
        nstep = self.task.episode_physics_steps
        sensordata = np.empty((n, nstep, self.model.nsensordata))
        if n == 0:
            return sensordata
        for begin in range(0, n, self.chunk_episodes):
            end = min(begin + self.chunk_episodes, n)
            controls = np.ascontiguousarray(self._controls(trajectories[begin:end]))
            initial = np.repeat(self._initial_state[None], end - begin, axis=0)
            # skip_checks: shapes are right by construction, and no state output is
            # allocated or written (only the sensors are read).
            self._runner.rollout(
                [self.model] * (end - begin),
                self._datas,
                initial,
                controls,
                control_spec=self._control_spec,
                skip_checks=True,
                nstep=nstep,
                sensordata=sensordata[begin:end],
                chunk_size=max(1, (end - begin) // (self.nthread * 4)),
            )
        return sensordata

    def execute(
        self,
        trajectories: np.ndarray,
        goals_xy: np.ndarray,
        *,
        on_invalid: Literal["raise", "skip"] = "raise",
        record_joint_states: bool = False,
        progress: bool = False,
    ) -> EpisodeOutcomes:
        """Validate and execute N trajectories towards N goals.

        :param trajectories: (N, T, 7) or (T, 7) joint position commands (rad).
        :param goals_xy: (N, 2) or (2,) goal positions (m).
        :param on_invalid: ``raise`` a :class:`TrajectoryError` naming the first invalid
            episode before simulating anything, or ``skip`` invalid episodes.
        :param record_joint_states: also return measured joint positions and velocities at
            the end of every control step, (N, horizon + settle_steps, 7).
        :param progress: show a progress bar over chunks.
        """
        if on_invalid not in ("raise", "skip"):
            raise ValueError(f"on_invalid must be 'raise' or 'skip', got {on_invalid!r}")
        task = self.task
        spec = task.trajectory_spec
        reasons = check_trajectories(trajectories, spec)
        batch = np.asarray(trajectories, dtype=np.float64)
        if batch.ndim == 2:
            batch = batch[None]
        if self.workspace_check:
            within_limits = [i for i, r in enumerate(reasons) if r is None]
            if within_limits:
                violations = task.workspace_violations(batch[within_limits])
                for i, why in zip(within_limits, violations):
                    if why is not None:
                        reasons[i] = f"episode {i}: {why}"
        n = batch.shape[0]
        goals = np.asarray(goals_xy, dtype=np.float64).reshape(-1, 2)
        if goals.shape[0] == 1 and n > 1:
            goals = np.repeat(goals, n, axis=0)
        if goals.shape != (n, 2):
            raise TrajectoryError(f"goals_xy must have shape ({n}, 2), got {np.shape(goals_xy)}")
        if not np.isfinite(goals).all():
            raise TrajectoryError("goals_xy must be finite")
        bad = [i for i, r in enumerate(reasons) if r is not None]
        if bad and on_invalid == "raise":
            more = f" (and {len(bad) - 1} more invalid episodes)" if len(bad) > 1 else ""
            raise TrajectoryError(reasons[bad[0]] + more)

        valid = np.array([r is None for r in reasons])
        classes = task.contact_class_names
        n_control = task.episode_control_steps
        outcomes = EpisodeOutcomes(
            task=task.name,
            goals_xy=goals.copy(),
            executed=valid.copy(),
            rejection=list(reasons),
            reward=np.full(n, np.nan),
            distance_m=np.full(n, np.nan),
            final_object_pos=np.full((n, 3), np.nan),
            object_at_rest=np.zeros(n, dtype=bool),
            contact_steps=np.zeros((n, len(classes)), dtype=np.int32),
            contact_classes=classes,
            unsafe_classes=task.unsafe_class_names,
            joint_limit_violation_steps=np.zeros(n, dtype=np.int32),
        )
        if record_joint_states:
            outcomes.joint_positions = np.full((n, n_control, task.n_joints), np.nan)
            outcomes.joint_velocities = np.full((n, n_control, task.n_joints), np.nan)

        index = np.flatnonzero(valid)
        chunks = range(0, index.size, self.chunk_episodes)
        if progress:
            from tqdm.auto import tqdm

            chunks = tqdm(chunks, desc=f"{task.name} episodes", unit="chunk")
        for begin in chunks:
            rows = index[begin : begin + self.chunk_episodes]
            sensordata = self.simulate(batch[rows])
            self._summarise(sensordata, rows, goals[rows], outcomes, record_joint_states)
        return outcomes

    def _summarise(
        self,
        sensordata: np.ndarray,
        rows: np.ndarray,
        goals: np.ndarray,
        outcomes: EpisodeOutcomes,
        record_joint_states: bool,
    ) -> None:
        task = self.task
        n = rows.size
        n_control, substeps = task.episode_control_steps, task.substeps
        evaluation = task.evaluate(self.model, sensordata, goals)
        outcomes.reward[rows] = evaluation.reward
        outcomes.distance_m[rows] = evaluation.distance_m
        outcomes.final_object_pos[rows] = evaluation.final_object_pos
        outcomes.object_at_rest[rows] = evaluation.object_at_rest
        for name, values in evaluation.extras.items():
            if name not in outcomes.extras:
                outcomes.extras[name] = np.full(len(outcomes), np.nan)
            outcomes.extras[name][rows] = values

        counts = task.contact_counts(self.model, sensordata)  # (n, nstep, C)
        per_control = counts.reshape(n, n_control, substeps, -1).max(axis=2) > 0
        outcomes.contact_steps[rows] = per_control.sum(axis=1)

        joint_pos = sensordata[:, :, self._joint_pos_cols]
        outside = (joint_pos < JOINT_LOWER_RAD - JOINT_LIMIT_TOLERANCE_RAD) | (
            joint_pos > JOINT_UPPER_RAD + JOINT_LIMIT_TOLERANCE_RAD
        )
        outside = outside.any(axis=2).reshape(n, n_control, substeps).any(axis=2)
        outcomes.joint_limit_violation_steps[rows] = outside.sum(axis=1)

        if record_joint_states:
            end_of_step = (np.arange(n_control) + 1) * substeps - 1
            outcomes.joint_positions[rows] = joint_pos[:, end_of_step]
            outcomes.joint_velocities[rows] = sensordata[:, end_of_step][:, :, self._joint_vel_cols]
