"""Expert trajectory shaping (seed 000, section 6.3): random values added to some joint
velocities of a demonstration, giving shots and throws of other strengths and directions.

For each new trajectory: pick a demonstration, pick 1 to ``max_joints`` joints, and add to
each picked joint's commanded velocity a smooth bump (a Hann window over a random part of
the trajectory) whose height is a random fraction of that joint's peak speed in the
demonstration, or of ``min_bump_rad_s`` for joints that barely move. The perturbed
velocities are integrated from the start configuration, so the trajectory stays continuous;
a perturbation that would leave the joint position limits or exceed ``velocity_margin`` of
the velocity limits is shrunk until it does not (nothing invalid is ever produced).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim_bridge.trajectory import TrajectorySpec, check_trajectories, joint_velocities


@dataclass(frozen=True)
class ShapingConfig:
    """Parameters of the random perturbations.

    :param max_joints: at most this many joints are perturbed per trajectory.
    :param relative_scale: bump height ~ N(0, relative_scale) x the joint's peak speed.
    :param min_bump_rad_s: floor of the reference speed for joints that barely move.
    :param min_window_fraction: shortest bump, as a fraction of the horizon.
    :param velocity_margin: perturbed trajectories stay below this fraction of the limits
        (:func:`~sim_bridge.experts.demonstrations.generate_demonstrations` uses the task
        expert's margin: 0.95 for hockey, 0.85 for basketball).
    """

    max_joints: int = 3
    relative_scale: float = 0.15
    min_bump_rad_s: float = 0.2
    min_window_fraction: float = 0.2
    velocity_margin: float = 0.95


def perturb(
    demonstrations: np.ndarray,
    spec: TrajectorySpec,
    n: int,
    rng: np.random.Generator,
    config: ShapingConfig = ShapingConfig(),
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` perturbed versions of randomly chosen demonstrations.

    :param demonstrations: (D, T, 7) valid joint position commands (rad).
    :returns: trajectories (n, T, 7) and the index of the demonstration each came from (n,).
    """
    demos = np.asarray(demonstrations, dtype=np.float64)
    horizon, joints = spec.horizon, spec.n_joints
    velocities = joint_velocities(demos, spec)  # (D, T, 7)
    reference = np.maximum(np.abs(velocities).max(axis=1), config.min_bump_rad_s)  # (D, 7)
    source = rng.integers(0, demos.shape[0], size=n)
    out = np.empty((n, horizon, joints))
    steps = np.arange(horizon)
    min_window = max(2, int(config.min_window_fraction * horizon))
    for i, d in enumerate(source):
        count = rng.integers(1, config.max_joints + 1)
        chosen = rng.choice(joints, size=count, replace=False)
        bump = np.zeros((horizon, joints))
        for j in chosen:
            width = rng.integers(min_window, horizon + 1)
            begin = rng.integers(0, horizon - width + 1)
            window = np.zeros(horizon)
            phase = (steps[begin : begin + width] - begin + 0.5) / width
            window[begin : begin + width] = np.sin(np.pi * phase) ** 2
            bump[:, j] = rng.normal(0.0, config.relative_scale) * reference[d, j] * window
        for _ in range(20):
            candidate = spec.start_rad + np.cumsum(
                (velocities[d] + bump) * spec.control_dt_s, axis=0
            )
            if check_trajectories(candidate, spec, config.velocity_margin)[0] is None:
                break
            bump *= 0.7
        else:
            candidate = demos[d]
        out[i] = candidate
    return out, source
