"""The arm model agrees with the published limits; trajectory validation names the bound."""

import xml.etree.ElementTree as ET

import mujoco
import numpy as np
import pytest

from sim_bridge.arm import (
    ARM_XML,
    JOINT_EFFORT_LIMIT_NM,
    JOINT_LOWER_RAD,
    JOINT_NAMES,
    JOINT_UPPER_RAD,
    ArmLimits,
)
from sim_bridge.tasks import make_task
from sim_bridge.trajectory import (
    TrajectoryError,
    TrajectorySpec,
    check_trajectories,
    joint_velocities,
    validate_trajectories,
)


def test_mjcf_joint_limits_are_the_published_ones():
    model = make_task("hockey").build_model()
    for i, name in enumerate(JOINT_NAMES):
        joint = model.joint(name)
        assert joint.range == pytest.approx([JOINT_LOWER_RAD[i], JOINT_UPPER_RAD[i]])
        assert model.jnt_actfrcrange[joint.id] == pytest.approx(
            [-JOINT_EFFORT_LIMIT_NM[i], JOINT_EFFORT_LIMIT_NM[i]]
        )
    # the arm's joints are the first seven degrees of freedom (kinematics relies on it)
    assert [model.joint(i).name for i in range(7)] == list(JOINT_NAMES)
    assert ET.parse(ARM_XML).getroot().tag == "mujoco"


def test_forward_kinematics_match_the_panda_at_zero():
    model = make_task("hockey").build_model()
    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    # Panda flange at q = 0: x = 0.0825 - 0.0825 + 0.088, z = 0.333 + 0.316 + 0.384 - 0.107
    assert data.site("flange").xpos == pytest.approx([0.088, 0.0, 0.926], abs=1e-9)


def test_arm_limits_reject_inconsistent_arrays():
    with pytest.raises(ValueError, match="lower_rad has shape"):
        ArmLimits(lower_rad=np.zeros(6))
    with pytest.raises(ValueError, match="below upper_rad"):
        ArmLimits(lower_rad=JOINT_UPPER_RAD, upper_rad=JOINT_LOWER_RAD)


@pytest.fixture
def spec():
    start = np.array([0.0, -0.78, 0.0, -2.28, 0.0, 1.49, 0.0])
    return TrajectorySpec(horizon=5, control_dt_s=0.04, start_rad=start)


def still(spec, n=1):
    return np.repeat(spec.start_rad[None, None], spec.horizon, axis=1).repeat(n, axis=0)


def test_valid_trajectory_passes(spec):
    batch = still(spec, 3)
    assert check_trajectories(batch, spec) == [None, None, None]
    assert validate_trajectories(batch[0], spec).shape == (1, 5, 7)
    assert np.all(joint_velocities(batch[0], spec) == 0)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda t: t.__setitem__((0, 2, 3), np.nan), r"positions\[2, 3\] \(panda_joint4\) is nan"),
        (lambda t: t.__setitem__((0, 1, 0), np.inf), "must be finite"),
        (lambda t: t.__setitem__((0, 4, 1), 1.80), r"above the upper joint limit 1.7628 rad"),
        (lambda t: t.__setitem__((0, 0, 5), -0.03), r"below the lower joint limit -0.0175 rad"),
    ],
)
def test_invalid_values_are_named(spec, edit, message):
    batch = still(spec)
    edit(batch)
    with pytest.raises(TrajectoryError, match=message):
        validate_trajectories(batch, spec)


def test_velocity_limit_names_the_step_and_bound(spec):
    batch = still(spec)
    batch[0, 3:, 4] += 0.2  # 0.2 rad in 40 ms = 5 rad/s on a 2.61 rad/s joint
    with pytest.raises(TrajectoryError) as err:
        validate_trajectories(batch, spec)
    text = str(err.value)
    assert "command 2 to command 3 of panda_joint5" in text
    assert "5.000 rad/s, above the limit 2.610 rad/s" in text
    # the first command is checked against the start configuration too
    batch = still(spec)
    batch[0, :, 0] += 0.1
    assert "from start configuration to command 0" in check_trajectories(batch, spec)[0]


def test_shape_errors(spec):
    with pytest.raises(TrajectoryError, match="6 joints per command, expected 7"):
        validate_trajectories(np.zeros((5, 6)), spec)
    with pytest.raises(TrajectoryError, match="horizon is 4 commands, expected 5"):
        validate_trajectories(still(spec)[:, :4], spec)
    with pytest.raises(TrajectoryError, match="must have shape"):
        validate_trajectories(np.zeros(7), spec)
    with pytest.raises(TrajectoryError, match="not numeric"):
        validate_trajectories(np.full((5, 7), "a"), spec)
