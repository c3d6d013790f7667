"""Safety decisions without ROS: trajectory validation (limits from the configuration, the
out-of-distribution guard and its calibration), collision accounting and the cancel / refuse
decisions, the monitor node's goal review and result relay, SafetyStatus messages."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from sim_bridge.arm import JOINT_NAMES
from sim_bridge.node_params import ParameterError, check_params
from sim_bridge.ros_conversions import MessageTypes, trajectory_to_msg
from sim_bridge.trajectory import TrajectorySpec
from sim_bridge.trajectory_action import (
    FollowJointTrajectoryTypes,
    ResultCode,
    goal_to_msg,
    register_follow_joint_trajectory,
)

from genrl_ros.data.interfaces import SAFETY_STATUS, make_typestore
from genrl_ros.node_params import SAFETY_MONITOR_PARAMS
from genrl_ros.safety import (
    DemonstrationDistanceGuard,
    MonitorConfig,
    SafetyLevel,
    SafetyMonitor,
    TrajectoryValidator,
    ValidationError,
    ValidatorConfig,
)
from genrl_ros.safety.gate import (
    STATUS_ABORTED,
    STATUS_CANCELED,
    STATUS_SUCCEEDED,
    GoalGate,
    relay_result,
)
from genrl_ros.safety.messages import status_from_msg, status_to_msg

START = np.array([0.0, -0.78, 0.0, -2.28, 0.0, 1.49, 0.0])
SPEC = TrajectorySpec(horizon=12, control_dt_s=0.04, start_rad=START)


def demonstrations(n=60, seed=0):
    """Smooth moves from the start towards random targets (a tight 'demonstration' family)."""
    rng = np.random.default_rng(seed)
    alpha = (1 - np.cos(np.linspace(0, np.pi, SPEC.horizon))) / 2
    targets = START + rng.uniform(-0.2, 0.2, (n, 7))
    return START + alpha[None, :, None] * (targets - START)[:, None, :]


def odd_move():
    """A smooth, valid move far outside the demonstration family (joint 1 by 0.5 rad)."""
    alpha = (1 - np.cos(np.linspace(0, np.pi, SPEC.horizon))) / 2
    target = START + np.array([0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    return START + alpha[:, None] * (target - START)


# --------------------------------------------------------------------------- validator


def test_limits_from_the_configuration():
    demo = demonstrations(1)[0]
    validator = TrajectoryValidator(SPEC)
    assert validator.check(demo).ok and math.isnan(validator.check(demo).ood_distance)
    # shrink joint 4's upper limit below the trajectory
    upper = list(SPEC.limits.upper_rad)
    upper[3] = float(demo[:, 3].min()) - 0.01
    strict = TrajectoryValidator(SPEC, ValidatorConfig(upper_rad=tuple(upper)))
    verdict = strict.check(demo)
    assert not verdict.ok and verdict.check == "limits"
    assert "(panda_joint4)" in verdict.reason and "above the upper joint limit" in verdict.reason
    slow = TrajectoryValidator(SPEC, ValidatorConfig(velocity_scale=0.01))
    verdict = slow.check(demo)
    assert verdict.check == "limits" and "rad/s, above the limit" in verdict.reason
    margin = TrajectoryValidator(SPEC, ValidatorConfig(position_margin_rad=0.1))
    np.testing.assert_allclose(margin.spec.limits.lower_rad, SPEC.limits.lower_rad + 0.1)


def test_nan_and_shape():
    validator = TrajectoryValidator(SPEC)
    bad = demonstrations(1)[0]
    bad[3, 2] = np.nan
    verdict = validator.check(bad)
    assert verdict.check == "finite" and "positions[3, 2] (panda_joint3) is nan" in verdict.reason
    verdict = validator.check(np.zeros((12, 6)))
    assert verdict.check == "shape" and "6 joints per command, expected 7" in verdict.reason
    verdict = validator.check(np.zeros((11, 7)))
    assert verdict.check == "shape" and "horizon is 11 commands, expected 12" in verdict.reason


def test_config_errors():
    with pytest.raises(ValidationError, match="velocity_scale"):
        TrajectoryValidator(SPEC, ValidatorConfig(velocity_scale=0.0))
    with pytest.raises(ValidationError, match="lower_rad has 6 values"):
        TrajectoryValidator(SPEC, ValidatorConfig(lower_rad=(0.0,) * 6))
    with pytest.raises(ValidationError, match="invalid"):
        TrajectoryValidator(SPEC, ValidatorConfig(position_margin_rad=3.5))


def test_ood_guard_calibration_and_decisions():
    demos = demonstrations(80)
    guard = DemonstrationDistanceGuard(demos, k=3, quantile=0.95)
    assert guard.n_reference == 80 and guard.calibration_scores.shape == (80,)
    # the threshold is the 95 % quantile of the leave-one-out k-th neighbour distances
    flat = demos.reshape(80, -1)
    d = np.sqrt(((flat[:, None] - flat[None]) ** 2).sum(-1) / flat.shape[1])
    np.fill_diagonal(d, np.inf)
    scores = np.sort(d, axis=1)[:, 2]
    np.testing.assert_allclose(guard.calibration_scores, scores, rtol=1e-6, atol=1e-9)
    assert guard.threshold == pytest.approx(np.quantile(scores, 0.95), rel=1e-6)
    # a demonstration itself: its k-th neighbour among all (itself is the nearest)
    assert guard.score(demos[0]) == pytest.approx(np.sort(d[0])[1], rel=1e-6)

    validator = TrajectoryValidator(SPEC, guard=guard)
    inside = demonstrations(1, seed=99)[0]  # same family, unseen
    verdict = validator.check(inside)
    assert verdict.ok and verdict.ood_distance <= verdict.ood_threshold
    odd = odd_move()  # within the limits, unlike any demonstration
    assert TrajectoryValidator(SPEC).check(odd).ok
    verdict = validator.check(odd)
    assert not verdict.ok and verdict.check == "ood"
    assert "out of distribution: distance to the 3-th nearest demonstration" in verdict.reason
    assert verdict.ood_distance > verdict.ood_threshold == guard.threshold
    wider = DemonstrationDistanceGuard(demos, k=3, quantile=0.95, threshold_scale=2.0)
    assert wider.threshold == pytest.approx(2 * guard.threshold)


def test_ood_guard_subsampling_and_errors():
    demos = demonstrations(50)
    small = DemonstrationDistanceGuard(demos, k=2, max_reference=30, max_calibration=10)
    assert small.n_reference == 30 and small.calibration_scores.shape == (10,)
    with pytest.raises(ValidationError, match="too few for k = 5"):
        DemonstrationDistanceGuard(demos[:5], k=5)
    with pytest.raises(ValidationError, match="quantile"):
        DemonstrationDistanceGuard(demos, quantile=1.5)
    with pytest.raises(ValidationError, match="finite"):
        DemonstrationDistanceGuard(np.full((10, 12, 7), np.nan))
    with pytest.raises(ValidationError, match="the task's are"):
        TrajectoryValidator(
            TrajectorySpec(horizon=10, control_dt_s=0.04, start_rad=START), guard=small
        )


def test_ood_guard_from_a_dataset(tmp_path):
    from genrl_ros.data.dataset import synthetic_dataset

    dataset = synthetic_dataset(n_episodes=12, horizon=12, joint_state_steps=None)
    dataset.save(tmp_path / "demos")
    guard = DemonstrationDistanceGuard.from_dataset(tmp_path / "demos", k=2)
    assert guard.n_reference == int((~dataset.unsafe).sum())
    everything = DemonstrationDistanceGuard.from_dataset(tmp_path / "demos", False, k=2)
    assert everything.n_reference == 12


# --------------------------------------------------------------------------- monitor


def test_outcome_counting_and_limits():
    monitor = SafetyMonitor(
        MonitorConfig(max_contact_steps_per_episode=2, max_total_contact_steps=5)
    )
    assert monitor.admit().allowed and monitor.level == SafetyLevel.OK
    monitor.begin_episode()
    monitor.end_episode({"blade_table": 1, "robot_self": 1, "stick_puck": 40})
    status = monitor.status()
    assert (status.episode_contact_steps, status.total_contact_steps) == (2, 2)
    assert status.level == SafetyLevel.OK and status.episodes == 1
    monitor.begin_episode()
    monitor.end_episode({"robot_table": 3})
    assert monitor.level == SafetyLevel.EPISODE_LIMIT and monitor.episodes_over_limit == 1
    assert not monitor.should_cancel  # the episode is over
    assert monitor.admit().allowed
    monitor.end_episode({"robot_floor": 1})  # an outcome of a goal that bypassed the monitor
    assert monitor.total_contact_steps == 6 and monitor.episodes == 3
    decision = monitor.admit()
    assert (
        not decision.allowed and "6 contact steps in total, above the limit of 5" in decision.reason
    )
    status = monitor.status()
    assert status.level == SafetyLevel.TOTAL_LIMIT and not status.accepting_goals
    monitor.reset_counts()
    assert monitor.admit().allowed and monitor.status().total_contact_steps == 0


def test_force_counting_cancels_the_running_goal():
    config = MonitorConfig(
        max_contact_steps_per_episode=1, force_threshold_n=20.0, control_dt_s=0.04
    )
    monitor = SafetyMonitor(config)
    assert not monitor.observe_force(0, 100.0)  # no episode: ignored
    monitor.begin_episode()
    assert not monitor.observe_force(10_000_000, 5.0)  # below the threshold
    assert not monitor.observe_force(20_000_000, 25.0)  # one contact step
    assert not monitor.observe_force(30_000_000, 25.0)  # same control period: not again
    assert monitor.episode_contact_steps == 1
    assert monitor.observe_force(50_000_000, 30.0)  # second period: above the limit of 1
    assert monitor.should_cancel and monitor.level == SafetyLevel.EPISODE_LIMIT
    monitor.record_cancel()
    monitor.end_episode(None)
    status = monitor.status()
    assert status.goals_canceled == 1 and status.episodes_over_limit == 1
    assert not status.episode_active and status.total_contact_steps == 2
    # an outcome for a live-counted episode replaces the live count
    monitor.begin_episode()
    monitor.observe_force(0, 50.0)
    monitor.end_episode({"robot_table": 4})
    assert monitor.total_contact_steps == 6


def test_monitor_config_errors():
    with pytest.raises(ValueError, match="limits must be >= 0"):
        MonitorConfig(max_total_contact_steps=-1)
    with pytest.raises(ValueError, match="force_threshold_n"):
        MonitorConfig(force_threshold_n=0.0)
    with pytest.raises(ValueError, match="counted_classes"):
        MonitorConfig(counted_classes=())


# --------------------------------------------------------------------------- gate and relay


@pytest.fixture(scope="module")
def fjt():
    store = make_typestore()
    register_follow_joint_trajectory(store)
    return store, FollowJointTrajectoryTypes.from_typestore(store)


def test_goal_review(fjt):
    _, types = fjt
    demos = demonstrations(60)
    validator = TrajectoryValidator(SPEC, guard=DemonstrationDistanceGuard(demos, k=3))
    monitor = SafetyMonitor(MonitorConfig(max_total_contact_steps=0))
    gate = GoalGate(validator, monitor)
    assert monitor.ood_threshold == validator.ood_threshold

    def goal(positions, names=JOINT_NAMES):
        return goal_to_msg(trajectory_to_msg(positions, names, 0.04, types.msg), types)

    review = gate.review(goal(demonstrations(1, seed=7)[0]), now_ns=0)
    assert review.accepted and review.commands.shape == (12, 7)
    review = gate.review(goal(demos[0][:, :6], JOINT_NAMES[:6]), now_ns=0)
    assert not review.accepted and review.code == ResultCode.INVALID_JOINTS
    assert review.reason.startswith("safety monitor: trajectory.joint_names has missing joints")
    review = gate.review(goal(odd_move()), now_ns=0)
    assert review.code == ResultCode.INVALID_GOAL and "out of distribution" in review.reason
    status = monitor.status()
    assert (status.trajectories_validated, status.trajectories_rejected) == (1, 2)
    assert "out of distribution" in status.last_rejection_reason
    assert status.last_ood_distance > status.ood_threshold
    monitor.end_episode({"robot_table": 1})  # total limit 0 crossed: refuse everything
    review = gate.review(goal(demos[1]), now_ns=0)
    assert not review.accepted and "new goals are refused" in review.reason


def test_relay_result():
    relay = relay_result(STATUS_SUCCEEDED, 0, "goal reached at step 70")
    assert (relay.terminal, relay.code, relay.error_string) == (
        "succeed",
        0,
        "goal reached at step 70",
    )
    assert relay_result(STATUS_CANCELED, 0, "canceled").terminal == "canceled"
    # canceled downstream without a cancel request from the monitor's client: abort, text kept
    relay = relay_result(STATUS_CANCELED, 0, "", cancel_requested=False)
    assert relay.terminal == "abort" and "canceled by someone else" in relay.error_string
    relay = relay_result(STATUS_ABORTED, -4, "")
    assert relay.terminal == "abort" and relay.code == -4 and "status 6" in relay.error_string
    relay = relay_result(STATUS_SUCCEEDED, 0, "ok", safety_stop="3 contact steps in this episode")
    assert relay.terminal == "abort" and relay.code == ResultCode.PATH_TOLERANCE_VIOLATED
    assert relay.error_string == "safety monitor: 3 contact steps in this episode"


# --------------------------------------------------------------------------- messages, params


def test_safety_status_round_trip_with_the_real_message():
    store = make_typestore()
    cls = store.types[SAFETY_STATUS]
    monitor = SafetyMonitor(MonitorConfig(max_contact_steps_per_episode=1), ood_threshold=0.25)
    monitor.record_validation(False, "too fast", 0.5)
    monitor.begin_episode()
    monitor.observe_force(0, 100.0)
    monitor.observe_force(50_000_000, 100.0)
    status = monitor.status()
    msg = status_to_msg(status, 123_456_789_012, cls, MessageTypes.from_typestore(store), "base")
    assert msg.level == cls.LEVEL_EPISODE_LIMIT == SafetyLevel.EPISODE_LIMIT
    raw = store.serialize_cdr(msg, SAFETY_STATUS)
    stamp, back = status_from_msg(store.deserialize_cdr(raw, SAFETY_STATUS))
    assert stamp == 123_456_789_012
    assert back == status
    huge = dataclasses.replace(status, total_contact_steps=2**40)
    assert status_to_msg(huge, 0, cls, MessageTypes.from_typestore(store)).total_contact_steps == (
        2**32 - 1
    )


def test_safety_monitor_params():
    values = check_params(SAFETY_MONITOR_PARAMS, {"contact_source": "force"})
    assert values["counted_classes"][0] == "blade_table" and len(values["joint_lower_rad"]) == 7
    with pytest.raises(ParameterError, match="joint_upper_rad has 6 values, expected 7"):
        check_params(SAFETY_MONITOR_PARAMS, {"joint_upper_rad": [1.0] * 6})
    with pytest.raises(ParameterError, match="max_total_contact_steps is 1.5 of type float"):
        check_params(SAFETY_MONITOR_PARAMS, {"max_total_contact_steps": 1.5})
