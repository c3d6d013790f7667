"""Expert trajectory shaping (seed 000, section 6.3): random values added to some joint
velocities of a demonstration, giving shots and throws of other strengths and directions.

Two designs; for each new trajectory a demonstration is picked at random, then

- ``windows`` (:data:`WINDOWS`): 1 to ``max_joints`` random joints each get a smooth bump
  added to their commanded velocity (a Hann window over a random part of the trajectory)
  whose height is N(0, ``relative_scale``) x that joint's peak speed in the demonstration
  (or ``min_bump_rad_s`` for joints that barely move);
- ``gains`` (:data:`GAINS`): the same ``joints`` every time (by default the ones that set a
  shot's or throw's direction and strength, Panda joints 1, 2, 4 and 6) have their whole
  velocity profile multiplied by 1 + U(-``gain_range``, ``gain_range``), each its own
  factor: a faster or slower swing, a wider or narrower turn (``genrl demos`` takes each
  task's ``SHAPING_GAIN_RANGE``: 15 % for hockey, whose blade passes 15 mm above the
  table, 30 % for basketball).

Why two: ``windows`` makes every demonstration x joint subset x window a family of its own
(63 joint subsets of 1-3 joints, each bump with a start and a width), so two halves of such
a data set overlap only to precision/recall ~0.86 with k = 3, and no generative model can
score much higher against it (``genrl_ros.metrics.pr_ceiling --shaping``). ``gains`` gives
one family of ``len(joints)`` dimensions per demonstration: its halves score ~0.95.

The perturbed velocities are integrated from the start configuration, so the trajectory
stays continuous; a perturbation that would leave the joint position limits or exceed
``velocity_margin`` of the velocity limits is shrunk until it does not (nothing invalid is
ever produced).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim_bridge.trajectory import TrajectorySpec, check_trajectories, joint_velocities

WINDOWS = "windows"
GAINS = "gains"
DESIGNS = (WINDOWS, GAINS)


@dataclass(frozen=True)
class ShapingConfig:
    """Parameters of the random perturbations.

    :param design: ``windows`` or ``gains`` (module docstring).
    :param max_joints: ``windows``: at most this many joints are perturbed per trajectory.
    :param relative_scale: ``windows``: bump height ~ N(0, relative_scale) x the joint's
        peak speed.
    :param min_bump_rad_s: ``windows``: floor of the reference speed for joints that
        barely move.
    :param min_window_fraction: ``windows``: shortest bump, as a fraction of the horizon.
    :param joints: ``gains``: the perturbed joints (0-based indices).
    :param gain_range: ``gains``: each joint's velocity x (1 + U(-gain_range, gain_range)).
    :param velocity_margin: perturbed trajectories stay below this fraction of the limits
        (:func:`~sim_bridge.experts.demonstrations.generate_demonstrations` uses the task
        expert's margin: 0.95 for hockey, 0.85 for basketball).
    """

    design: str = WINDOWS
    max_joints: int = 3
    relative_scale: float = 0.15
    min_bump_rad_s: float = 0.2
    min_window_fraction: float = 0.2
    joints: tuple[int, ...] = (0, 1, 3, 5)
    gain_range: float = 0.3
    velocity_margin: float = 0.95

    def __post_init__(self) -> None:
        if self.design not in DESIGNS:
            raise ValueError(f"shaping design must be one of {DESIGNS}, got {self.design!r}")
        if self.design == GAINS and (not self.joints or not 0.0 < self.gain_range < 1.0):
            raise ValueError(
                f"gains shaping needs joints (got {self.joints}) and 0 < gain_range < 1 "
                f"(got {self.gain_range})"
            )


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
    if config.design == GAINS and not all(0 <= j < joints for j in config.joints):
        raise ValueError(f"shaping joints {config.joints} outside the arm's {joints} joints")
    for i, d in enumerate(source):
        bump = np.zeros((horizon, joints))
        if config.design == GAINS:
            for j in config.joints:
                change = rng.uniform(-config.gain_range, config.gain_range)
                bump[:, j] = change * velocities[d, :, j]
        else:
            count = rng.integers(1, config.max_joints + 1)
            for j in rng.choice(joints, size=count, replace=False):
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
