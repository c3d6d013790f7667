"""Expert trajectory shaping on smooth synthetic demonstrations (no simulation needed)."""

import numpy as np
import pytest

from sim_bridge.experts.shaping import GAINS, ShapingConfig, perturb
from sim_bridge.tasks import make_task
from sim_bridge.trajectory import check_trajectories, joint_velocities


@pytest.fixture(scope="module")
def spec():
    return make_task("hockey").trajectory_spec


@pytest.fixture(scope="module")
def demos(spec):
    """Slow sines from the start pose, well inside the limits: (5, T, 7)."""
    rng = np.random.default_rng(0)
    time_s = np.arange(1, spec.horizon + 1) * spec.control_dt_s
    rate, phase = rng.uniform(0.5, 1.5, (2, 5, 1, 7))
    return spec.start_rad + 0.3 * (np.sin(rate * time_s[:, None] + phase) - np.sin(phase))


def test_gains_scale_only_the_chosen_joints(spec, demos):
    config = ShapingConfig(design=GAINS, joints=(0, 3), gain_range=0.3)
    perturbed, source = perturb(demos, spec, 200, np.random.default_rng(1), config)
    assert all(r is None for r in check_trajectories(perturbed, spec, 0.95))
    untouched = [1, 2, 4, 5, 6]
    np.testing.assert_allclose(perturbed[:, :, untouched], demos[source][:, :, untouched],
                               atol=1e-12)
    velocity = joint_velocities(perturbed, spec)
    original = joint_velocities(demos[source], spec)
    for j in (0, 3):
        # every step of the joint's velocity profile is multiplied by the same factor
        factor = velocity[:, :, j] / original[:, :, j]
        np.testing.assert_allclose(factor, np.repeat(factor[:, :1], spec.horizon, 1), rtol=1e-9)
        assert factor.min() >= 0.7 - 1e-9 and factor.max() <= 1.3 + 1e-9
        assert factor.max() - factor.min() > 0.4  # the factors do vary


def test_gains_shrink_what_would_leave_the_limits(spec):
    """Joint 1 swings out and back at 90 % of its velocity limit: gains above 0.95 / 0.9
    would exceed the 95 % margin and are shrunk, gains below stay as drawn."""
    limit = spec.limits.velocity_limit_rad_s[0]
    t = np.arange(1, spec.horizon + 1) / spec.horizon
    velocity = np.zeros((spec.horizon, 7))
    velocity[:, 0] = 0.9 * limit * np.sin(2 * np.pi * t)
    demo = spec.start_rad + np.cumsum(velocity * spec.control_dt_s, axis=0)
    assert check_trajectories(demo[None], spec, 0.95)[0] is None
    config = ShapingConfig(design=GAINS, joints=(0,), gain_range=0.5, velocity_margin=0.95)
    perturbed, _ = perturb(demo[None], spec, 100, np.random.default_rng(2), config)
    assert all(r is None for r in check_trajectories(perturbed, spec, 0.95))
    peak = np.abs(joint_velocities(perturbed, spec)[:, :, 0]).max(axis=1) / limit
    assert peak.max() <= 0.95 and peak.min() < 0.6  # shrunk above, untouched below


def test_bad_shaping_configs_are_refused(spec, demos):
    with pytest.raises(ValueError, match="design must be one of"):
        ShapingConfig(design="bumps")
    with pytest.raises(ValueError, match="gain_range"):
        ShapingConfig(design=GAINS, gain_range=1.5)
    with pytest.raises(ValueError, match="needs joints"):
        ShapingConfig(design=GAINS, joints=())
    with pytest.raises(ValueError, match=r"outside the arm's 7 joints"):
        perturb(demos, spec, 3, np.random.default_rng(0), ShapingConfig(design=GAINS, joints=(7,)))
    with pytest.raises(ValueError, match=r"outside the arm's 7 joints"):
        perturb(demos, spec, 3, np.random.default_rng(0), ShapingConfig(design=GAINS, joints=(-1,)))


def test_task_shaping_uses_each_tasks_margins():
    from sim_bridge.experts.demonstrations import task_shaping

    hockey, basketball = task_shaping("hockey", GAINS), task_shaping("basketball", GAINS)
    assert (hockey.velocity_margin, hockey.gain_range) == (0.95, 0.15)
    assert (basketball.velocity_margin, basketball.gain_range) == (0.85, 0.3)
    assert task_shaping("hockey").design == "windows"
    with pytest.raises(ValueError, match="no scripted expert"):
        task_shaping("pong")


def test_demonstrations_with_gains():
    """A small real data set: simulated, and its perturbed episodes move only the gains'
    joints of the demonstration they come from."""
    from sim_bridge.experts.demonstrations import generate_demonstrations, task_shaping

    demos = generate_demonstrations(
        "hockey", 10, seed=0, expert_goals=3, demonstrations=3,
        shaping=task_shaping("hockey", GAINS), progress=False,
    )
    assert demos.settings["shaping"]["design"] == GAINS
    assert demos.settings["shaping"]["gain_range"] == 0.15
    expert = demos.trajectories[demos.is_expert]
    assert expert.shape[0] == 3 and demos.trajectories.shape[0] == 10
    assert demos.outcomes.safe.all()
    for trajectory in demos.trajectories[~demos.is_expert]:
        source = np.abs(expert - trajectory).max(axis=(1, 2)).argmin()
        moved = np.abs(expert[source] - trajectory).max(axis=0) > 1e-5
        assert moved[[2, 4, 6]].sum() == 0 and moved.any()
