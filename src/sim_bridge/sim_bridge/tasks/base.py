"""What every task defines: timing, start configuration, goal distribution, contact classes,
and how the sensor stream of an episode becomes a reward.

The executor (``sim_bridge.executor``) is task-agnostic: it turns joint trajectories into
actuator set-points, rolls the physics out, and hands the per-physics-step sensor data to
the task's :meth:`Task.evaluate`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import mujoco
import numpy as np

from sim_bridge.arm import JOINT_NAMES, N_JOINTS
from sim_bridge.model import load_model
from sim_bridge.trajectory import TrajectorySpec


@dataclass(frozen=True)
class ContactClass:
    """A kind of contact counted per control step.

    :param name: e.g. ``blade_table``.
    :param unsafe: whether an episode with such a contact counts as unsafe.
    :param description: what touches what.
    """

    name: str
    unsafe: bool
    description: str


@dataclass
class TaskEvaluation:
    """Per-episode results computed by a task from the sensor stream (N episodes).

    :param reward: terminal reward, shape (N,).
    :param distance_m: distance that the reward penalises (m), shape (N,).
    :param final_object_pos: puck / ball position the reward was measured at (m), (N, 3).
    :param object_at_rest: whether the object had stopped at the end, (N,).
    :param extras: task-specific per-episode measurements, name -> (N,) array (e.g. the
        hockey blade's smallest clearance above the table).
    """

    reward: np.ndarray
    distance_m: np.ndarray
    final_object_pos: np.ndarray
    object_at_rest: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)


class Task(ABC):
    """Base class of the hockey and basketball tasks."""

    #: task name, e.g. ``hockey``
    name: str
    #: number of joint position commands in a trajectory
    horizon: int
    #: time between two commands (s)
    control_dt_s: float
    #: physics steps per control step
    substeps: int
    #: control steps after the last command, holding it, until the outcome is measured
    settle_steps: int
    #: MJCF of the task world (composed with the arm's MJCF)
    xml_path: Path
    #: contact classes in the order of ``contact_steps`` columns
    contact_classes: tuple[ContactClass, ...]

    @property
    @abstractmethod
    def start_rad(self) -> np.ndarray:
        """Joint configuration at time 0 of every episode, shape (7,)."""

    @abstractmethod
    def sample_goals(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` goals from the task's goal distribution, shape (n, 2), metres in the world
        frame (robot base)."""

    @abstractmethod
    def goal_in_region(self, goals_xy: np.ndarray) -> np.ndarray:
        """Whether each goal (n, 2) lies in the goal region, shape (n,)."""

    @abstractmethod
    def contact_counts(self, model: mujoco.MjModel, sensordata: np.ndarray) -> np.ndarray:
        """Number of contacts of each class at every physics step.

        :param sensordata: (N, nstep, nsensordata).
        :returns: (N, nstep, C) int, columns ordered as ``contact_classes``.
        """

    @abstractmethod
    def evaluate(
        self, model: mujoco.MjModel, sensordata: np.ndarray, goals_xy: np.ndarray
    ) -> TaskEvaluation:
        """Reward and outcome of N episodes from their sensor streams (N, nstep, nsd)."""

    def demonstration_ok(self, outcomes) -> np.ndarray:
        """Which executed episodes are good enough to be demonstrations beyond being safe
        (e.g. a safety margin to the table), shape (N,). By default all of them."""
        return np.ones(len(outcomes), dtype=bool)

    def workspace_violations(self, positions: np.ndarray) -> list[str | None]:
        """Per trajectory, why its joint position commands (N, T, 7) would drive the arm into
        the scene (checked by forward kinematics at the commanded positions, before any
        simulation), or None. By default nothing is checked."""
        return [None] * np.asarray(positions).reshape(-1, self.horizon, self.n_joints).shape[0]

    def extra_controls(self, n_episodes: int) -> tuple[int, np.ndarray | None]:
        """Additional rollout control columns (beyond actuator set-points).

        :returns: (mjtState bits they stand for, array (N or 1, nstep, k) or None).
        """
        return 0, None

    # Shared helpers -----------------------------------------------------------------

    @property
    def joint_names(self) -> tuple[str, ...]:
        return JOINT_NAMES

    @property
    def n_joints(self) -> int:
        return N_JOINTS

    @property
    def physics_dt_s(self) -> float:
        return self.control_dt_s / self.substeps

    @property
    def episode_control_steps(self) -> int:
        """Control steps simulated per episode: the trajectory, then the settling time."""
        return self.horizon + self.settle_steps

    @property
    def episode_physics_steps(self) -> int:
        return self.episode_control_steps * self.substeps

    @property
    def contact_class_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.contact_classes)

    @property
    def unsafe_class_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.contact_classes if c.unsafe)

    @cached_property
    def trajectory_spec(self) -> TrajectorySpec:
        return TrajectorySpec(
            horizon=self.horizon, control_dt_s=self.control_dt_s, start_rad=self.start_rad
        )

    def build_model(self) -> mujoco.MjModel:
        """A new compiled model of the task (each executor / renderer owns its own)."""
        model = load_model(self.xml_path)
        expected_dt = self.control_dt_s / self.substeps
        if abs(model.opt.timestep - expected_dt) > 1e-12:
            raise ValueError(
                f"{self.xml_path.name}: physics timestep {model.opt.timestep} s does not equal "
                f"control_dt_s / substeps = {expected_dt} s"
            )
        return model

    def initial_qpos(self, model: mujoco.MjModel) -> np.ndarray:
        """Generalised positions at time 0: the arm at ``start_rad``, objects at their
        MJCF positions."""
        qpos = model.qpos0.copy()
        qpos[: self.n_joints] = self.start_rad
        return qpos

    def sensor_slice(self, model: mujoco.MjModel, name: str) -> slice:
        """Columns of ``sensordata`` holding the sensor ``name``."""
        sensor = model.sensor(name)
        start = int(model.sensor_adr[sensor.id])
        return slice(start, start + int(model.sensor_dim[sensor.id]))
