"""Gymnasium environments of the tasks: per-step (PPO / SAC baselines) and one-shot.

Importing this module registers

- ``genrl/HockeyStep-v0``, ``genrl/BasketballStep-v0``: :class:`StepEnv`, the feedback
  variant of seed 000 (section 6.1) used by the PPO / SAC baselines. Observation = goal
  (x, y) + 7 measured joint positions + 7 measured joint velocities; action = the change of
  the joint position command over one control step. One episode = ``horizon`` steps; the
  task's settling time is simulated inside the last step; the reward is terminal.
- ``genrl/HockeyOneShot-v0``, ``genrl/BasketballOneShot-v0``: :class:`OneShotEnv`, the
  contextual bandit of GenRL: observation = goal, action = a whole trajectory (T, 7),
  executed in one step by :class:`~sim_bridge.executor.BatchExecutor`.

Both simulate exactly what :class:`~sim_bridge.executor.BatchExecutor` simulates: the same
initial state, the same set-points (position interpolated linearly between commands at every
physics step, velocity = the segment's constant velocity, the last command held while
settling), the same extra rollout controls of the task (e.g. the basketball grip release),
the same reward and the same per-control-step contact counting. The same commands give the
same outcome in both (``test_envs.py`` checks it).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from sim_bridge.arm import JOINT_LOWER_RAD, JOINT_UPPER_RAD, JOINT_VELOCITY_LIMIT_RAD_S
from sim_bridge.executor import JOINT_LIMIT_TOLERANCE_RAD, BatchExecutor
from sim_bridge.tasks import make_task
from sim_bridge.tasks.base import Task
from sim_bridge.trajectory import check_trajectories

#: reward of a one-shot action that is not executed because it is not a valid trajectory
#: (outside the joint position limits or faster than the joint velocity limits). The same
#: for every task and below the reward of any executed episode whose object ends within
#: 10 m of the goal (rewards are minus a distance in metres), which covers both workspaces.
INVALID_TRAJECTORY_REWARD = -10.0

#: relative margin of the per-step action bound below velocity limit x control_dt_s
VELOCITY_BOUND_MARGIN = 1e-9
#: margin (rad) of the joint position observation bounds beyond the joint limits
JOINT_POSITION_OBS_MARGIN_RAD = 0.1
#: joint velocity observation bounds, as a multiple of the joint velocity limits
JOINT_VELOCITY_OBS_FACTOR = 3.0
#: margin (m) of the goal observation bounds around the task's goal distribution
GOAL_OBS_MARGIN_M = 0.5

TASK_ENV_NAMES = {"hockey": "Hockey", "basketball": "Basketball"}


def _float32_inside(low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float32 bounds that lie inside the float64 interval [low, high], so that any float32
    value of the Box, converted back to float64, respects the float64 bounds."""
    low32 = np.asarray(low, dtype=np.float32)
    high32 = np.asarray(high, dtype=np.float32)
    low32 = np.where(low32 < low, np.nextafter(low32, np.float32(np.inf)), low32)
    high32 = np.where(high32 > high, np.nextafter(high32, np.float32(-np.inf)), high32)
    return low32.astype(np.float32), high32.astype(np.float32)


def _goal_bounds(task: Task) -> tuple[np.ndarray, np.ndarray]:
    """Bounding box of the task's goal distribution (estimated from a fixed sample),
    widened by :data:`GOAL_OBS_MARGIN_M` and rounded outwards to 0.1 m."""
    goals = task.sample_goals(4096, np.random.default_rng(0))
    low = np.floor((goals.min(axis=0) - GOAL_OBS_MARGIN_M) * 10.0) / 10.0
    high = np.ceil((goals.max(axis=0) + GOAL_OBS_MARGIN_M) * 10.0) / 10.0
    return low, high


def _resolve_task(task: Task | str) -> Task:
    return make_task(task) if isinstance(task, str) else task


def initial_state(task: Task, model: mujoco.MjModel) -> np.ndarray:
    """Full physics state at time 0 of every episode, as the executor starts it: the arm at
    ``start_rad`` with the same set-point, objects at their initial positions."""
    data = mujoco.MjData(model)
    data.qpos[:] = task.initial_qpos(model)
    data.ctrl[: task.n_joints] = task.start_rad
    mujoco.mj_forward(model, data)
    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
    state = np.empty(mujoco.mj_stateSize(model, spec))
    mujoco.mj_getState(model, data, state, spec)
    return state


class _GoalMixin:
    """Goal handling shared by both environments."""

    task: Task
    np_random: np.random.Generator
    _goal_low: np.ndarray
    _goal_high: np.ndarray

    def _choose_goal(self, options: dict[str, Any] | None) -> np.ndarray:
        if options and options.get("goal") is not None:
            goal = np.asarray(options["goal"], dtype=np.float64).reshape(-1)
            if goal.shape != (2,) or not np.isfinite(goal).all():
                raise ValueError(
                    f"options['goal'] must be a finite (x, y), got {options['goal']!r}"
                )
            if np.any(goal < self._goal_low) or np.any(goal > self._goal_high):
                raise ValueError(
                    f"goal {goal.tolist()} is outside the observation bounds "
                    f"{self._goal_low.tolist()} .. {self._goal_high.tolist()} of {self.task.name}"
                )
            return goal
        return np.asarray(self.task.sample_goals(1, self.np_random)[0], dtype=np.float64)


class StepEnv(_GoalMixin, gym.Env):
    """Per-step control of the arm (feedback policies: PPO / SAC baselines).

    :param task: a :class:`Task` or its name.
    :param render_mode: ``None`` or ``"rgb_array"`` (the current scene from the task's
        ``scene`` camera; needs an OpenGL backend, see :mod:`sim_bridge.camera`).
    :param render_size: (width, height) of rendered frames.

    - Observation (float32, 16): goal (x, y) (m), measured joint positions (rad) and
      velocities (rad/s) after the step. Bounds: the goal distribution's bounding box
      + 0.5 m, the joint limits + 0.1 rad, 3 x the joint velocity limits; measured values
      beyond them (hard collisions) are clipped into the box.
    - Action (float32, 7): change of the joint position command over one control step,
      within +- velocity limit x ``control_dt_s`` (rounded inwards to float32). An action
      outside the box is clipped (``info["action_clipped"]``), then the command is clipped to
      the joint position limits (``info["position_clipped"]``, per joint), so every executed
      command sequence is a valid trajectory.
    - Physics: ``substeps`` physics steps per step with the executor's set-point
      interpolation and the task's extra controls; the last of the ``horizon`` steps also
      simulates the ``settle_steps`` holding the last command.
    - Reward: 0 until the last step, then the task's terminal reward; ``terminated`` is True
      after ``horizon`` steps (never truncated).
    - Info: ``time_step`` (steps taken), ``command`` (the command now held, rad),
      ``contact_steps`` (control steps so far with a contact of each class, counted like the
      executor); at the end also ``outcome`` (reward, distance_m, final_object_pos,
      object_at_rest, contact_steps, unsafe_contact_steps, joint_limit_violation_steps,
      unsafe) and ``trajectory`` (the executed commands, (T, 7)).
    - ``reset(options={"goal": (x, y)})`` fixes the goal; otherwise it is drawn from the
      task's goal distribution with the environment's ``np_random``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 25}

    def __init__(
        self,
        task: Task | str = "hockey",
        render_mode: str | None = None,
        render_size: tuple[int, int] = (128, 128),
    ) -> None:
        super().__init__()
        self.task = _resolve_task(task)
        task_ = self.task
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.render_mode = render_mode
        self.render_size = render_size
        self.metadata = {**self.metadata, "render_fps": round(1.0 / task_.control_dt_s)}

        self.model = task_.build_model()
        self.data = mujoco.MjData(self.model)
        self._initial_state = initial_state(task_, self.model)
        n_joints = task_.n_joints
        self._qpos_adr = np.array(
            [self.model.jnt_qposadr[self.model.joint(name).id] for name in task_.joint_names]
        )
        self._qvel_adr = np.array(
            [self.model.jnt_dofadr[self.model.joint(name).id] for name in task_.joint_names]
        )

        extra_spec, extra = task_.extra_controls(1)
        self._extra = None if extra is None else np.asarray(extra, dtype=np.float64)[0]
        self._control_spec = int(mujoco.mjtState.mjSTATE_CTRL) | int(extra_spec)
        n_control = mujoco.mj_stateSize(self.model, self._control_spec)
        if self._extra is not None and self._extra.ndim == 1:  # (nstep,) -> (nstep, 1)
            self._extra = self._extra[:, None]
        n_extra = 0 if self._extra is None else self._extra.shape[1]
        if n_control != self.model.nu + n_extra or 2 * n_joints > self.model.nu:
            raise ValueError(
                f"{task_.name}: control vector of {n_control} values does not match "
                f"{self.model.nu} actuators + {n_extra} extra controls"
            )
        self._controls = np.zeros((task_.episode_physics_steps, n_control))
        if self._extra is not None:
            self._controls[:, self.model.nu :] = self._extra

        self._lower = JOINT_LOWER_RAD.astype(np.float64)
        self._upper = JOINT_UPPER_RAD.astype(np.float64)
        # A hair below the limit, so that the executed commands pass the trajectory
        # validation despite rounding (command - previous) / control_dt_s.
        self._max_step = (
            JOINT_VELOCITY_LIMIT_RAD_S * task_.control_dt_s * (1.0 - VELOCITY_BOUND_MARGIN)
        )
        self._fraction = (np.arange(task_.substeps) + 1.0) / task_.substeps

        act_low, act_high = _float32_inside(-self._max_step, self._max_step)
        self.action_space = spaces.Box(act_low, act_high, dtype=np.float32)
        self._goal_low, self._goal_high = _goal_bounds(task_)
        vel = JOINT_VELOCITY_OBS_FACTOR * JOINT_VELOCITY_LIMIT_RAD_S
        obs_low = np.concatenate(
            [self._goal_low, self._lower - JOINT_POSITION_OBS_MARGIN_RAD, -vel]
        ).astype(np.float32)
        obs_high = np.concatenate(
            [self._goal_high, self._upper + JOINT_POSITION_OBS_MARGIN_RAD, vel]
        ).astype(np.float32)
        self.observation_space = spaces.Box(obs_low, obs_high, dtype=np.float32)

        self._sensordata = np.zeros((task_.episode_physics_steps, self.model.nsensordata))
        self._contact_steps = np.zeros(len(task_.contact_classes), dtype=np.int64)
        self._commands = np.zeros((task_.horizon, n_joints))
        self._goal = np.zeros(2)
        self._command = task_.start_rad.copy()
        self._step = 0
        self._done = True
        self._renderer: mujoco.Renderer | None = None

    # ------------------------------------------------------------------ gym API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._goal = self._choose_goal(options)
        mujoco.mj_resetData(self.model, self.data)
        mujoco.mj_setState(
            self.model, self.data, self._initial_state, mujoco.mjtState.mjSTATE_FULLPHYSICS
        )
        self._command = self.task.start_rad.copy()
        self._contact_steps[:] = 0
        self._commands[:] = 0.0
        self._sensordata[:] = 0.0
        self._step = 0
        self._done = False
        return self._observation(), self._info()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._done:
            raise RuntimeError("episode is over: call reset() first")
        task = self.task
        delta = np.asarray(action, dtype=np.float64).reshape(task.n_joints)
        if not np.isfinite(delta).all():
            raise ValueError(f"action must be finite, got {action!r}")
        clipped_delta = np.clip(delta, -self._max_step, self._max_step)
        action_clipped = bool(np.any(clipped_delta != delta))
        target = self._command + clipped_delta
        command = np.clip(target, self._lower, self._upper)
        position_clipped = command != target

        t = self._step
        substeps = task.substeps
        previous = self._command
        segment = command - previous
        # Same formula as BatchExecutor.setpoints: interpolated position, segment velocity.
        rows = slice(t * substeps, (t + 1) * substeps)
        n_joints = task.n_joints
        self._controls[rows, :n_joints] = previous + self._fraction[:, None] * segment
        self._controls[rows, n_joints : 2 * n_joints] = segment / task.control_dt_s
        self._simulate(rows)
        self._count_contacts(t, 1)
        self._commands[t] = command
        self._command = command
        self._step = t + 1

        reward = 0.0
        terminated = self._step == task.horizon
        outcome = None
        if terminated:
            settle = slice(task.horizon * substeps, task.episode_physics_steps)
            self._controls[settle, :n_joints] = command
            self._controls[settle, n_joints : 2 * n_joints] = 0.0
            self._simulate(settle)
            self._count_contacts(task.horizon, task.settle_steps)
            outcome = self._outcome()
            reward = outcome["reward"]
            self._done = True
        info = self._info()
        info["action_clipped"] = action_clipped
        info["position_clipped"] = position_clipped
        if outcome is not None:
            info["outcome"] = outcome
            info["trajectory"] = self._commands.copy()
        return self._observation(), float(reward), terminated, False, info

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            return None
        if self._renderer is None:
            from sim_bridge.camera import SCENE_CAMERA, _check_gl_backend

            width, height = self.render_size
            self.model.vis.global_.offwidth = max(self.model.vis.global_.offwidth, width)
            self.model.vis.global_.offheight = max(self.model.vis.global_.offheight, height)
            _check_gl_backend()
            self._renderer = mujoco.Renderer(self.model, height=height, width=width)
            self._render_camera = SCENE_CAMERA
            self._render_data = mujoco.MjData(self.model)
            goal_body = self.model.body(self.task.target_body())
            self._goal_mocap = int(self.model.body_mocapid[goal_body.id])
        # A copy of the state with the goal marker placed: rendering never touches the
        # simulated data.
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        state = np.empty(mujoco.mj_stateSize(self.model, spec))
        mujoco.mj_getState(self.model, self.data, state, spec)
        mujoco.mj_setState(self.model, self._render_data, state, spec)
        self._render_data.mocap_pos[self._goal_mocap, :2] = self._goal
        mujoco.mj_forward(self.model, self._render_data)
        self._renderer.update_scene(self._render_data, camera=self._render_camera)
        return self._renderer.render()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        super().close()

    # ------------------------------------------------------------------ internals
    @property
    def goal(self) -> np.ndarray:
        """Goal of the current episode (m), shape (2,)."""
        return self._goal.copy()

    def _simulate(self, rows: slice) -> None:
        model, data = self.model, self.data
        sensordata = self._sensordata
        controls = self._controls
        if self._extra is None:
            ctrl = data.ctrl
            for i in range(rows.start, rows.stop):
                ctrl[:] = controls[i]
                mujoco.mj_step(model, data)
                sensordata[i] = data.sensordata
        else:
            spec = self._control_spec
            for i in range(rows.start, rows.stop):
                mujoco.mj_setState(model, data, controls[i], spec)
                mujoco.mj_step(model, data)
                sensordata[i] = data.sensordata

    def _count_contacts(self, first_control_step: int, n_control_steps: int) -> None:
        substeps = self.task.substeps
        rows = self._sensordata[
            first_control_step * substeps : (first_control_step + n_control_steps) * substeps
        ]
        counts = self.task.contact_counts(self.model, rows[None])  # (1, nstep, C)
        per_step = counts[0].reshape(n_control_steps, substeps, -1).max(axis=1) > 0
        self._contact_steps += per_step.sum(axis=0)

    def _outcome(self) -> dict[str, Any]:
        task = self.task
        sensordata = self._sensordata[None]
        evaluation = task.evaluate(self.model, sensordata, self._goal[None])
        joint_pos = self._sensordata[:, : task.n_joints]
        outside = (joint_pos < self._lower - JOINT_LIMIT_TOLERANCE_RAD) | (
            joint_pos > self._upper + JOINT_LIMIT_TOLERANCE_RAD
        )
        outside = outside.any(axis=1).reshape(task.episode_control_steps, task.substeps)
        violations = int(outside.any(axis=1).sum())
        contact = self._contact_dict()
        unsafe_contact = int(sum(contact[name] for name in task.unsafe_class_names))
        return {
            "reward": float(evaluation.reward[0]),
            "distance_m": float(evaluation.distance_m[0]),
            "final_object_pos": evaluation.final_object_pos[0].copy(),
            "object_at_rest": bool(evaluation.object_at_rest[0]),
            "contact_steps": contact,
            "unsafe_contact_steps": unsafe_contact,
            "joint_limit_violation_steps": violations,
            "unsafe": bool(unsafe_contact > 0 or violations > 0),
        }

    def _contact_dict(self) -> dict[str, int]:
        return {
            name: int(count)
            for name, count in zip(self.task.contact_class_names, self._contact_steps)
        }

    def _observation(self) -> np.ndarray:
        obs = np.concatenate(
            [self._goal, self.data.qpos[self._qpos_adr], self.data.qvel[self._qvel_adr]]
        ).astype(np.float32)
        return np.clip(obs, self.observation_space.low, self.observation_space.high)

    def _info(self) -> dict[str, Any]:
        return {
            "time_step": self._step,
            "command": self._command.copy(),
            "contact_steps": self._contact_dict(),
        }


class OneShotEnv(_GoalMixin, gym.Env):
    """One decision per episode: the whole joint trajectory (GenRL's contextual bandit).

    :param task: a :class:`Task` or its name.
    :param invalid_reward: reward of an action that is not a valid trajectory.

    - Observation (float32, 2): the goal (x, y) (m).
    - Action (float32, (T, 7)): joint position commands within the joint position limits
      (rounded inwards to float32). Most samples of this box are *not* valid trajectories:
      they are faster than the joint velocity limits.
    - Step: a valid trajectory is executed by a :class:`BatchExecutor` (one thread);
      reward = the task's terminal reward, info = its outcome (``distance_m``,
      ``final_object_pos``, ``object_at_rest``, ``contact_steps`` per class,
      ``unsafe_contact_steps``, ``joint_limit_violation_steps``, ``unsafe``). An invalid one
      is not simulated: reward = ``invalid_reward`` (:data:`INVALID_TRAJECTORY_REWARD`),
      ``info["rejection"]`` = why (otherwise ``None``). ``terminated`` is always True.
    """

    metadata = {"render_modes": []}

    def __init__(
        self, task: Task | str = "hockey", invalid_reward: float = INVALID_TRAJECTORY_REWARD
    ) -> None:
        super().__init__()
        self.task = _resolve_task(task)
        self.invalid_reward = float(invalid_reward)
        self.executor = BatchExecutor(self.task, nthread=1, chunk_episodes=1)
        horizon, n_joints = self.task.horizon, self.task.n_joints
        low, high = _float32_inside(
            np.tile(JOINT_LOWER_RAD, (horizon, 1)), np.tile(JOINT_UPPER_RAD, (horizon, 1))
        )
        self.action_space = spaces.Box(low, high, shape=(horizon, n_joints), dtype=np.float32)
        self._goal_low, self._goal_high = _goal_bounds(self.task)
        self.observation_space = spaces.Box(
            self._goal_low.astype(np.float32), self._goal_high.astype(np.float32), dtype=np.float32
        )
        self._goal = np.zeros(2)
        self._done = True

    @property
    def goal(self) -> np.ndarray:
        """Goal of the current episode (m), shape (2,)."""
        return self._goal.copy()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._goal = self._choose_goal(options)
        self._done = False
        return self._goal.astype(np.float32), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._done:
            raise RuntimeError("episode is over: call reset() first")
        self._done = True
        trajectory = np.asarray(action, dtype=np.float64)
        if trajectory.shape != self.action_space.shape:
            raise ValueError(
                f"action must have shape {self.action_space.shape}, got {trajectory.shape}"
            )
        observation = self._goal.astype(np.float32)
        reason = check_trajectories(trajectory, self.task.trajectory_spec)[0]
        if reason is not None:
            reason = reason.removeprefix("episode 0: ")
            return observation, self.invalid_reward, True, False, {"rejection": reason}
        outcomes = self.executor.execute(trajectory[None], self._goal[None])
        contact = {
            name: int(outcomes.contact_steps_of(name)[0]) for name in outcomes.contact_classes
        }
        info = {
            "rejection": None,
            "distance_m": float(outcomes.distance_m[0]),
            "final_object_pos": outcomes.final_object_pos[0].copy(),
            "object_at_rest": bool(outcomes.object_at_rest[0]),
            "contact_steps": contact,
            "unsafe_contact_steps": int(outcomes.unsafe_contact_steps[0]),
            "joint_limit_violation_steps": int(outcomes.joint_limit_violation_steps[0]),
            "unsafe": bool(outcomes.unsafe[0]),
        }
        return observation, float(outcomes.reward[0]), True, False, info

    def close(self) -> None:
        self.executor.close()
        super().close()


def register_envs() -> None:
    """Register the environments with gymnasium (idempotent; done on import)."""
    for task_name, prefix in TASK_ENV_NAMES.items():
        for kind, cls in (("Step", "StepEnv"), ("OneShot", "OneShotEnv")):
            env_id = f"genrl/{prefix}{kind}-v0"
            if env_id in gym.registry:
                continue
            gym.register(
                id=env_id,
                entry_point=f"sim_bridge.envs:{cls}",
                kwargs={"task": task_name},
            )


register_envs()
