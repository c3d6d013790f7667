"""Joint trajectories of the arm and their validation.

A trajectory is a sequence of ``horizon`` joint position commands (rad), one every
``control_dt_s`` seconds, shape (T, 7); a batch has shape (N, T, 7). Command ``t`` is the
set-point the arm should reach at time ``(t + 1) * control_dt_s`` after the start of the
episode, starting from the task's ``start_rad`` configuration at time 0 (the same
convention as ``time_from_start`` of trajectory_msgs/JointTrajectory points).

Nothing reaches an executor without passing :func:`validate_trajectories`: NaN or
infinite values, the wrong joint count or horizon, positions outside the joint limits, or
a step between two commands faster than the joint velocity limit are rejected with an
error naming the episode, step, joint and bound.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim_bridge.arm import PANDA_LIMITS, ArmLimits


class TrajectoryError(ValueError):
    """A trajectory that must not be executed; the message names the field and the bound."""


@dataclass(frozen=True)
class TrajectorySpec:
    """What a valid trajectory of one task looks like.

    :param horizon: number of joint position commands T.
    :param control_dt_s: time between two commands (s).
    :param start_rad: joint configuration at time 0, shape (7,); the first command must be
        reachable from it within the velocity limits.
    :param limits: joint position / velocity limits.
    """

    horizon: int
    control_dt_s: float
    start_rad: np.ndarray
    limits: ArmLimits = PANDA_LIMITS

    def __post_init__(self) -> None:
        object.__setattr__(self, "start_rad", np.asarray(self.start_rad, dtype=np.float64))
        if self.start_rad.shape != (self.limits.n_joints,):
            raise ValueError(f"start_rad has shape {self.start_rad.shape}, expected (7,)")
        if self.horizon < 1 or self.control_dt_s <= 0:
            raise ValueError("horizon must be >= 1 and control_dt_s > 0")

    @property
    def joint_names(self) -> tuple[str, ...]:
        return self.limits.joint_names

    @property
    def n_joints(self) -> int:
        return self.limits.n_joints

    @property
    def duration_s(self) -> float:
        return self.horizon * self.control_dt_s

    def time_from_start_s(self) -> np.ndarray:
        """Time of each command, shape (T,)."""
        return (np.arange(self.horizon) + 1) * self.control_dt_s


def _as_batch(positions: np.ndarray, spec: TrajectorySpec) -> np.ndarray:
    array = np.asarray(positions)
    if array.dtype.kind not in "fiu":
        raise TrajectoryError(f"trajectory dtype {array.dtype} is not numeric")
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise TrajectoryError(
            f"trajectory must have shape (T, {spec.n_joints}) or (N, T, {spec.n_joints}), "
            f"got {tuple(np.shape(positions))}"
        )
    if array.shape[2] != spec.n_joints:
        raise TrajectoryError(
            f"trajectory has {array.shape[2]} joints per command, expected {spec.n_joints} "
            f"({', '.join(spec.joint_names)})"
        )
    if array.shape[1] != spec.horizon:
        raise TrajectoryError(
            f"trajectory horizon is {array.shape[1]} commands, expected {spec.horizon}"
        )
    return array.astype(np.float64, copy=False)


def check_trajectories(
    positions: np.ndarray, spec: TrajectorySpec, velocity_margin: float = 1.0
) -> list[str | None]:
    """Per-episode reason why a trajectory must not be executed (``None`` when it is valid).

    Shape errors concern the whole batch and raise :class:`TrajectoryError` at once.

    :param positions: (N, T, 7) or (T, 7) joint position commands (rad).
    :param velocity_margin: fraction of the velocity limit that is allowed (1.0 = the limit).
    """
    batch = _as_batch(positions, spec)
    limits = spec.limits
    names = spec.joint_names
    reasons: list[str | None] = [None] * batch.shape[0]

    finite = np.isfinite(batch).all(axis=(1, 2))
    below = batch < limits.lower_rad
    above = batch > limits.upper_rad
    with np.errstate(invalid="ignore"):
        start = np.broadcast_to(spec.start_rad, (batch.shape[0], 1, spec.n_joints))
        steps = np.diff(np.concatenate([start, batch], axis=1), axis=1)
        speed = np.abs(steps) / spec.control_dt_s
    vmax = limits.velocity_limit_rad_s * velocity_margin
    too_fast = speed > vmax

    for i in range(batch.shape[0]):
        if not finite[i]:
            t, j = np.argwhere(~np.isfinite(batch[i]))[0]
            reasons[i] = (
                f"episode {i}: positions[{t}, {j}] ({names[j]}) is {batch[i, t, j]}, "
                "must be finite"
            )
        elif below[i].any():
            t, j = np.argwhere(below[i])[0]
            reasons[i] = (
                f"episode {i}: positions[{t}, {j}] ({names[j]}) = {batch[i, t, j]:.4f} rad is "
                f"below the lower joint limit {limits.lower_rad[j]:.4f} rad"
            )
        elif above[i].any():
            t, j = np.argwhere(above[i])[0]
            reasons[i] = (
                f"episode {i}: positions[{t}, {j}] ({names[j]}) = {batch[i, t, j]:.4f} rad is "
                f"above the upper joint limit {limits.upper_rad[j]:.4f} rad"
            )
        elif too_fast[i].any():
            t, j = np.argwhere(too_fast[i])[0]
            origin = "start configuration" if t == 0 else f"command {t - 1}"
            reasons[i] = (
                f"episode {i}: velocity from {origin} to command {t} of {names[j]} is "
                f"{speed[i, t, j]:.3f} rad/s, above the limit {vmax[j]:.3f} rad/s"
            )
    return reasons


def validate_trajectories(
    positions: np.ndarray, spec: TrajectorySpec, velocity_margin: float = 1.0
) -> np.ndarray:
    """Return the batch as float64 (N, T, 7), or raise :class:`TrajectoryError` for the first
    invalid episode."""
    reasons = check_trajectories(positions, spec, velocity_margin)
    bad = [r for r in reasons if r is not None]
    if bad:
        more = f" (and {len(bad) - 1} more invalid episodes)" if len(bad) > 1 else ""
        raise TrajectoryError(bad[0] + more)
    return _as_batch(positions, spec)


def joint_velocities(positions: np.ndarray, spec: TrajectorySpec) -> np.ndarray:
    """Commanded joint velocities (rad/s) between consecutive commands, same shape as the input.

    Element ``t`` is the velocity from command ``t-1`` (or the start configuration) to ``t``.
    """
    batch = _as_batch(positions, spec)
    start = np.broadcast_to(spec.start_rad, (batch.shape[0], 1, spec.n_joints))
    velocities = np.diff(np.concatenate([start, batch], axis=1), axis=1) / spec.control_dt_s
    return velocities[0] if np.ndim(positions) == 2 else velocities
