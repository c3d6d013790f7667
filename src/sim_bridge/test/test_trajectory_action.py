"""FollowJointTrajectory goal handling of the simulated controller: checks and result codes
(as ros2_controllers' joint_trajectory_controller), resampling, tolerances, feedback, cancel
and preemption. Goals are built with the control_msgs definitions registered into a rosbags
typestore, so field names and types are the real ones."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

rosbags_typesys = pytest.importorskip("rosbags.typesys")

from sim_bridge.arm import JOINT_NAMES  # noqa: E402
from sim_bridge.ros_conversions import (  # noqa: E402
    duration_to_ns,
    ns_to_duration,
    trajectory_to_msg,
)
from sim_bridge.trajectory import TrajectorySpec  # noqa: E402
from sim_bridge.trajectory_action import (  # noqa: E402
    ACTION,
    AcceptedGoal,
    ControllerConstraints,
    FollowJointTrajectoryTypes,
    GoalExecution,
    GoalRejection,
    GoalState,
    ResultCode,
    Tolerances,
    check_goal,
    feedback_to_msg,
    goal_to_msg,
    register_follow_joint_trajectory,
    resample_commands,
    result_code_name,
    result_to_msg,
)

TS = rosbags_typesys.get_typestore(rosbags_typesys.Stores.ROS2_JAZZY)
register_follow_joint_trajectory(TS)
FJT = FollowJointTrajectoryTypes.from_typestore(TS)
MT = FJT.msg
DT = 0.04
START = np.array([0.0, -0.3, 0.0, -2.0, 0.0, 1.8, 0.8])
SPEC = TrajectorySpec(horizon=10, control_dt_s=DT, start_rad=START)
NOW = 5_000_000_000


def cdr(msg, typename):
    return TS.deserialize_cdr(TS.serialize_cdr(msg, typename), typename)


def smooth(horizon=10, amplitude=0.2):
    alpha = (1 - np.cos(np.linspace(0, np.pi, horizon))) / 2
    target = START + amplitude * np.array([1, 0.5, -1, 0.5, 1, -0.5, 1])
    return START + alpha[:, None] * (target - START)


def goal_of(positions, names=JOINT_NAMES, dt=DT, stamp_ns=0, **changes):
    trajectory = trajectory_to_msg(positions, names, dt, MT, stamp_ns=stamp_ns)
    goal = goal_to_msg(trajectory, FJT)
    return dataclasses.replace(goal, **changes) if changes else goal


def tolerance(name, position=0.0, velocity=0.0, acceleration=0.0):
    return FJT.JointTolerance(
        name=name, position=position, velocity=velocity, acceleration=acceleration
    )


def check(goal, **kwargs):
    return check_goal(goal, SPEC, NOW, **kwargs)


# --------------------------------------------------------------------------- messages


def test_action_messages_serialize_with_real_field_types():
    goal = cdr(goal_of(smooth()), f"{ACTION}_Goal")
    assert list(goal.trajectory.joint_names) == list(JOINT_NAMES)
    assert duration_to_ns(goal.goal_time_tolerance) == 0
    result = cdr(result_to_msg(ResultCode.INVALID_JOINTS, "bad", FJT), f"{ACTION}_Result")
    assert (result.error_code, result.error_string) == (-2, "bad")
    assert FJT.Result.INVALID_JOINTS == ResultCode.INVALID_JOINTS
    assert FJT.Result.GOAL_TOLERANCE_VIOLATED == ResultCode.GOAL_TOLERANCE_VIOLATED
    assert result_code_name(-4) == "PATH_TOLERANCE_VIOLATED" and result_code_name(7) == "7"


def test_on_grid_goal_is_executed_unchanged():
    positions = smooth()
    accepted = check(goal_of(positions))
    assert isinstance(accepted, AcceptedGoal), accepted
    np.testing.assert_array_equal(accepted.commands, positions)
    assert not accepted.resampled and accepted.last_point_step == 9
    assert accepted.start_delay_ns(NOW) == 0


def test_joint_order_is_a_permutation():
    positions = smooth()
    order = [3, 0, 6, 1, 5, 2, 4]
    goal = goal_of(positions[:, order], names=[JOINT_NAMES[j] for j in order])
    accepted = check(goal)
    assert isinstance(accepted, AcceptedGoal)
    np.testing.assert_array_equal(accepted.commands, positions)


@pytest.mark.parametrize(
    "names, text",
    [
        (JOINT_NAMES[:6], "missing joints \\['panda_joint7'\\]"),
        ((*JOINT_NAMES[:6], "elbow"), "unknown joints \\['elbow'\\]"),
        ((*JOINT_NAMES[:6], JOINT_NAMES[0]), "duplicate joints"),
    ],
)
def test_invalid_joints(names, text):
    goal = goal_of(smooth()[:, : len(names)], names=JOINT_NAMES[: len(names)])
    goal = dataclasses.replace(
        goal, trajectory=dataclasses.replace(goal.trajectory, joint_names=list(names))
    )
    rejection = check(goal)
    assert isinstance(rejection, GoalRejection)
    assert rejection.code == ResultCode.INVALID_JOINTS
    assert rejection.code == FJT.Result.INVALID_JOINTS
    assert re.search(text, rejection.error_string), rejection.error_string


def test_empty_names_and_empty_trajectory():
    goal = goal_of(smooth())
    empty_names = dataclasses.replace(goal.trajectory, joint_names=[])
    assert check(dataclasses.replace(goal, trajectory=empty_names)).code == (
        ResultCode.INVALID_JOINTS
    )
    no_points = dataclasses.replace(goal.trajectory, points=[])
    rejection = check(dataclasses.replace(goal, trajectory=no_points))
    assert rejection.code == ResultCode.INVALID_GOAL and "no points" in rejection.error_string


def _with_point(goal, i, **changes):
    points = list(goal.trajectory.points)
    points[i] = dataclasses.replace(points[i], **changes)
    return dataclasses.replace(goal, trajectory=dataclasses.replace(goal.trajectory, points=points))


def test_point_field_checks():
    goal = goal_of(smooth())
    rejection = check(_with_point(goal, 9, velocities=np.full(7, 0.1)))
    assert rejection.code == ResultCode.INVALID_GOAL and "end at rest" in rejection.error_string
    assert isinstance(check(_with_point(goal, 9, velocities=np.zeros(7))), AcceptedGoal)
    assert isinstance(check(_with_point(goal, 3, velocities=np.full(7, 0.1))), AcceptedGoal)
    rejection = check(_with_point(goal, 2, positions=np.zeros(6)))
    assert "points[2].positions has 6 values" in rejection.error_string
    rejection = check(_with_point(goal, 2, accelerations=np.zeros(3)))
    assert "points[2].accelerations has 3 values" in rejection.error_string
    rejection = check(_with_point(goal, 2, effort=np.zeros(7)))
    assert "effort" in rejection.error_string and rejection.code == ResultCode.INVALID_GOAL
    bad = smooth()[4].copy()
    bad[5] = np.nan
    rejection = check(_with_point(goal, 4, positions=bad))
    assert rejection.error_string == "points[4].positions[5] (panda_joint6) is nan, must be finite"


def test_time_from_start_must_increase():
    goal = goal_of(smooth())
    same = _with_point(goal, 5, time_from_start=goal.trajectory.points[4].time_from_start)
    rejection = check(same)
    assert rejection.code == ResultCode.INVALID_GOAL
    assert "not strictly increasing: points[4] at 0.2" in rejection.error_string
    negative = _with_point(goal, 0, time_from_start=ns_to_duration(-1, MT.Duration))
    assert "must be >= 0" in check(negative).error_string


def test_old_header_timestamp():
    positions = smooth()
    # ends at 1.0 + 0.4 s < NOW = 5 s: in the past
    rejection = check(goal_of(positions, stamp_ns=1_000_000_000))
    assert rejection.code == ResultCode.OLD_HEADER_TIMESTAMP == FJT.Result.OLD_HEADER_TIMESTAMP
    assert "before now" in rejection.error_string
    # still running at NOW: accepted; a future start is a delay
    assert isinstance(check(goal_of(positions, stamp_ns=NOW - 100_000_000)), AcceptedGoal)
    accepted = check(goal_of(positions, stamp_ns=NOW + 250_000_000))
    assert accepted.start_delay_ns(NOW) == 250_000_000
    assert accepted.start_stamp_ns == NOW + 250_000_000


def test_multi_dof_trajectory_is_refused():
    goal = goal_of(smooth())
    multi = dataclasses.replace(goal.multi_dof_trajectory, joint_names=["base"])
    rejection = check(dataclasses.replace(goal, multi_dof_trajectory=multi))
    assert rejection.code == ResultCode.INVALID_GOAL and "multi_dof" in rejection.error_string


def test_limits_reject_with_the_bound_named():
    positions = smooth()
    positions[6, 3] = -0.01  # panda_joint4 upper limit is -0.0698
    rejection = check(goal_of(positions))
    assert rejection.code == ResultCode.INVALID_GOAL
    assert rejection.error_string.startswith("the trajectory violates the arm's limits: ")
    assert "positions[6, 3] (panda_joint4)" in rejection.error_string
    assert "above the upper joint limit -0.0698 rad" in rejection.error_string
    fast = smooth(amplitude=0.0)
    fast[3, 0] += 0.2  # 0.2 rad in 40 ms = 5 rad/s > 2.175 rad/s
    rejection = check(goal_of(fast))
    assert "velocity from command 2 to command 3 of panda_joint1" in rejection.error_string
    assert "above the limit 2.175 rad/s" in rejection.error_string
    # a margin on the velocity limits
    slow = smooth(amplitude=0.3)
    assert isinstance(check(goal_of(slow)), AcceptedGoal)
    assert isinstance(check(goal_of(slow), velocity_margin=0.05), GoalRejection)


def test_off_grid_goals_are_resampled_linearly_from_the_start():
    positions = smooth()
    # two points: halfway at 0.2 s, the end at 0.4 s
    goal = goal_of(positions[[4, 9]], dt=0.2)
    accepted = check(goal)
    assert isinstance(accepted, AcceptedGoal) and accepted.resampled
    assert accepted.last_point_step == 9
    expected = np.empty((10, 7))
    for t in range(10):
        time_s = (t + 1) * DT
        if time_s <= 0.2:
            expected[t] = START + (positions[4] - START) * time_s / 0.2
        else:
            expected[t] = positions[4] + (positions[9] - positions[4]) * (time_s - 0.2) / 0.2
    np.testing.assert_allclose(accepted.commands, expected, atol=1e-12)


def test_shorter_goal_holds_its_last_point_and_longer_is_refused():
    target = smooth()[-1]
    goal = goal_of(np.stack([smooth()[4], target]), dt=0.1)  # ends at 0.2 s = step 4
    accepted = check(goal)
    assert accepted.last_point_step == 4
    np.testing.assert_allclose(accepted.commands[4:], np.broadcast_to(target, (6, 7)))
    long = goal_of(smooth(horizon=11), dt=DT)
    rejection = check(long)
    assert rejection.code == ResultCode.INVALID_GOAL
    assert "lasts 0.440000 s, longer than the task's episode of 10 commands" in (
        rejection.error_string
    )


def test_point_at_time_zero_replaces_the_start():
    positions = np.stack([START, smooth()[-1]])
    trajectory = trajectory_to_msg(positions, JOINT_NAMES, 0.2, MT)  # at 0.2 s, 0.4 s
    points = list(trajectory.points)
    points[0] = dataclasses.replace(points[0], time_from_start=ns_to_duration(0, MT.Duration))
    commands = resample_commands(positions, np.array([0, 400_000_000]), SPEC)
    goal = goal_to_msg(dataclasses.replace(trajectory, points=points), FJT)
    np.testing.assert_allclose(check(goal).commands, commands)
    np.testing.assert_allclose(commands[-1], smooth()[-1])


def test_tolerances_follow_joint_tolerance_semantics():
    constraints = ControllerConstraints(path_position_rad=0.1, goal_position_rad=0.02)
    goal = goal_of(
        smooth(),
        path_tolerance=[tolerance("panda_joint2", position=0.3), tolerance("panda_joint3", -1.0)],
        goal_tolerance=[tolerance("panda_joint7", position=0.0, velocity=0.5)],
        goal_time_tolerance=ns_to_duration(250_000_000, MT.Duration),
    )
    accepted = check(goal, constraints=constraints)
    tol = accepted.tolerances
    np.testing.assert_allclose(tol.path_position, [0.1, 0.3, 0.0, 0.1, 0.1, 0.1, 0.1])
    np.testing.assert_allclose(tol.goal_position, [0.02] * 7)
    np.testing.assert_allclose(tol.goal_velocity, [0.01] * 6 + [0.5])
    assert tol.goal_time_s == 0.25 and accepted.warnings == ()


@pytest.mark.parametrize(
    "changes, text",
    [
        ({"path_tolerance": [tolerance("wrist", 0.3)]}, "unknown joint 'wrist'"),
        ({"goal_tolerance": [tolerance("panda_joint1", -0.5)]}, "illegal tolerance -0.5"),
        (
            {"goal_time_tolerance": ns_to_duration(-2_000_000_000, MT.Duration)},
            "goal_time_tolerance",
        ),
    ],
)
def test_illegal_tolerances_fall_back_to_the_defaults(changes, text):
    constraints = ControllerConstraints(path_position_rad=0.1)
    accepted = check(goal_of(smooth(), **changes), constraints=constraints)
    assert isinstance(accepted, AcceptedGoal)
    defaults = Tolerances.defaults(constraints, 7)
    np.testing.assert_array_equal(accepted.tolerances.path_position, defaults.path_position)
    assert len(accepted.warnings) == 1 and text in accepted.warnings[0]


# --------------------------------------------------------------------------- execution


def execution_of(positions=None, n_steps=14, **kwargs):
    accepted = check(goal_of(smooth() if positions is None else positions), **kwargs)
    assert isinstance(accepted, AcceptedGoal)
    return GoalExecution(accepted, SPEC, n_steps)


def play(execution, actual_positions, actual_velocities=None, stop_at=None):
    """Observe every step; returns the feedback list."""
    feedback = []
    for step in range(execution.n_steps):
        if stop_at is not None and step == stop_at:
            execution.stop(step - 1)
        velocity = np.zeros(7) if actual_velocities is None else actual_velocities[step]
        feedback.append(execution.observe(step, actual_positions[step], velocity))
    return feedback


def tracked(execution, lag=0.0):
    """Actual positions that trail the desired ones by ``lag`` (fraction of a step)."""
    desired = np.stack([execution.desired(s)[0] for s in range(execution.n_steps)])
    previous = np.concatenate([START[None], desired[:-1]])
    return desired - lag * (desired - previous)


def test_feedback_desired_actual_error():
    execution = execution_of()
    actual = tracked(execution, lag=0.5)
    feedback = play(execution, actual)
    first = feedback[0]
    np.testing.assert_array_equal(first.desired_positions, smooth()[0])
    np.testing.assert_allclose(first.desired_velocities, (smooth()[0] - START) / DT)
    np.testing.assert_allclose(first.error_positions, smooth()[0] - actual[0])
    assert first.time_from_start_ns == 40_000_000
    settle = feedback[12]
    np.testing.assert_array_equal(settle.desired_positions, smooth()[-1])
    np.testing.assert_array_equal(settle.desired_velocities, np.zeros(7))
    assert execution.state == GoalState.SUCCEEDED and execution.code == ResultCode.SUCCESSFUL
    msg = cdr(feedback_to_msg(first, JOINT_NAMES, 123, FJT), f"{ACTION}_Feedback")
    assert list(msg.joint_names) == list(JOINT_NAMES) and msg.header.stamp.nanosec == 123
    np.testing.assert_allclose(msg.error.positions, first.error_positions)
    assert duration_to_ns(msg.actual.time_from_start) == 40_000_000


def test_goal_succeeds_only_once_stopped_within_the_goal_tolerances():
    execution = execution_of(constraints=ControllerConstraints(goal_position_rad=0.01))
    actual = tracked(execution)
    actual[9:11] += 0.05  # still 5 cm rad off at the last point and one step later
    velocities = np.zeros((14, 7))
    velocities[11] = 0.02  # then moving faster than the stopped tolerance (0.01 rad/s)
    play(execution, actual, velocities)
    assert execution.state == GoalState.SUCCEEDED
    assert execution.error_string == "goal reached at step 12"


def test_goal_tolerance_violated_after_goal_time_or_at_the_end():
    constraints = ControllerConstraints(goal_position_rad=0.01, goal_time_s=0.05)
    execution = execution_of(constraints=constraints)
    actual = tracked(execution)
    actual[9:] += 0.05
    play(execution, actual)
    assert execution.state == GoalState.ABORTED
    assert execution.code == ResultCode.GOAL_TOLERANCE_VIOLATED
    assert "within 0.05 s" in execution.error_string and "panda_joint1 position error" in (
        execution.error_string
    )
    unlimited = execution_of(constraints=ControllerConstraints(goal_position_rad=0.01))
    play(unlimited, actual)
    assert unlimited.code == ResultCode.GOAL_TOLERANCE_VIOLATED
    assert "by the end of the episode" in unlimited.error_string


def test_path_tolerance_abort_holds_the_last_command():
    execution = execution_of(constraints=ControllerConstraints(path_position_rad=0.05))
    actual = tracked(execution)
    actual[5, 2] += 0.2
    feedback = play(execution, actual)
    assert execution.state == GoalState.ABORTED
    assert execution.code == ResultCode.PATH_TOLERANCE_VIOLATED
    assert execution.error_string.startswith("path tolerance violated at step 5 (0.240 s)")
    assert "panda_joint3 position error -0.2000 beyond 0.0500" in execution.error_string
    assert execution.hold_after_step == 5 and execution.revision == 1
    np.testing.assert_array_equal(execution.commands[:6], smooth()[:6])
    np.testing.assert_array_equal(execution.commands[6:], np.broadcast_to(smooth()[5], (4, 7)))
    np.testing.assert_array_equal(feedback[8].desired_velocities, np.zeros(7))


def test_cancel_and_preempt():
    execution = execution_of()
    feedback = play(execution, tracked(execution), stop_at=4)
    assert execution.state == GoalState.CANCELED and execution.code == ResultCode.SUCCESSFUL
    assert execution.hold_after_step == 3
    np.testing.assert_array_equal(execution.commands[4:], np.broadcast_to(smooth()[3], (6, 7)))
    np.testing.assert_array_equal(feedback[6].desired_positions, smooth()[3])

    before_start = execution_of()
    assert before_start.stop(-1)
    np.testing.assert_array_equal(before_start.commands, np.broadcast_to(START, (10, 7)))

    preempted = execution_of()
    assert preempted.preempt(2)
    assert preempted.state == GoalState.ABORTED and preempted.code == ResultCode.INVALID_GOAL
    assert "preempted" in preempted.error_string
    assert not preempted.stop(5)  # already ended: nothing changes
    late = execution_of()
    assert not late.stop(9)  # the trajectory is over: the last command is held anyway
    assert late.state == GoalState.CANCELED and late.revision == 0
