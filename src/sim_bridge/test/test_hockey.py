"""Hockey in real MuJoCo: executor determinism and rejection, contacts, the scripted expert."""

import re

import mujoco
import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from sim_bridge.executor import BatchExecutor
from sim_bridge.experts.hockey import (
    FOLLOW_THROUGH_RISE_M,
    FOLLOW_THROUGH_RISE_S,
    STRIKE_HEIGHT_M,
    T_IMPACT,
    T_WINDUP,
    HockeyExpert,
    HockeyShot,
)
from sim_bridge.experts.shaping import ShapingConfig, perturb
from sim_bridge.tasks.hockey import PUCK_START_XY, Hockey
from sim_bridge.ros_conversions import trajectory_to_msg
from sim_bridge.trajectory import TrajectoryError, check_trajectories
from sim_bridge.trajectory_action import (
    FollowJointTrajectoryTypes,
    GoalRejection,
    ResultCode,
    check_goal,
    check_workspace,
    goal_to_msg,
    register_follow_joint_trajectory,
)

TYPESTORE = get_typestore(Stores.ROS2_JAZZY)
register_follow_joint_trajectory(TYPESTORE)


@pytest.fixture(scope="module")
def expert():
    return HockeyExpert(BatchExecutor(Hockey(), nthread=1))


@pytest.fixture(scope="module")
def shots(expert):
    shots, trajectories = expert.trajectories(
        [HockeyShot(0.0, 0.9), HockeyShot(0.6, 1.1), HockeyShot(-0.9, 0.7)]
    )
    return shots, trajectories


def test_start_pose_has_no_contact_and_the_blade_where_documented():
    task = Hockey()
    model = task.build_model()
    data = mujoco.MjData(model)
    data.qpos[:] = task.initial_qpos(model)
    mujoco.mj_forward(model, data)
    touching = {
        tuple(sorted((model.geom(c.geom1).name, model.geom(c.geom2).name)))
        for c in data.contact[: data.ncon]
    }
    assert touching <= {("puck_geom", "table_top")}  # only the puck resting on the table
    assert data.site("blade_center").xpos == pytest.approx([0.30, 0.0, 0.15], abs=2e-3)


def test_goal_distribution_is_the_papers_rectangle():
    goals = Hockey().sample_goals(2000, np.random.default_rng(0))
    assert goals[:, 0].min() >= 0.65 and goals[:, 0].max() <= 1.3
    assert goals[:, 1].min() >= -0.4 and goals[:, 1].max() <= 0.4
    assert Hockey().goal_in_region(goals).all()
    assert not Hockey().goal_in_region(np.array([[0.5, 0.0], [1.0, 0.5]])).any()


def test_known_trajectory_gives_the_same_outcome_twice_and_across_threads(expert, shots):
    _, trajectories = shots
    goals = np.array([[1.0, 0.0], [1.0, 0.3], [0.8, -0.3]])
    first = expert.executor.execute(trajectories, goals)
    second = expert.executor.execute(trajectories, goals)
    with BatchExecutor(Hockey(), nthread=2, chunk_episodes=2) as threaded:
        third = threaded.execute(trajectories, goals)
    for other in (second, third):
        np.testing.assert_array_equal(first.final_object_pos, other.final_object_pos)
        np.testing.assert_array_equal(first.contact_steps, other.contact_steps)
        np.testing.assert_array_equal(first.reward, other.reward)
    # the shots really move the puck, towards their direction, and hit it with the stick
    travel = first.final_object_pos[:, :2] - PUCK_START_XY
    assert (np.linalg.norm(travel, axis=1) > 0.1).all()
    np.testing.assert_allclose(np.arctan2(travel[:, 1], travel[:, 0]), [0.0, 0.6, -0.9], atol=0.03)
    assert (first.contact_steps_of("stick_puck") > 0).all()
    assert (first.contact_steps_of("blade_table") == 0).all()
    assert first.safe.all() and first.object_at_rest.all()
    assert first.reward == pytest.approx(-first.distance_m)


def test_invalid_trajectories_are_rejected_before_simulating(shots):
    _, trajectories = shots
    executor = BatchExecutor(Hockey())
    goals = np.zeros((3, 2)) + 1.0
    bad = trajectories.copy()
    bad[1, 10, 2] = np.nan
    with pytest.raises(TrajectoryError, match=r"episode 1: positions\[10, 2\] \(panda_joint3\) is nan"):
        executor.execute(bad, goals)
    too_fast = trajectories.copy()
    too_fast[2, 30:, 0] += 0.3
    with pytest.raises(TrajectoryError, match="episode 2: velocity from command 29 to command 30"):
        executor.execute(too_fast, goals)
    with pytest.raises(TrajectoryError, match="6 joints per command"):
        executor.execute(trajectories[:, :, :6], goals)
    with pytest.raises(TrajectoryError, match="horizon is 68 commands, expected 69"):
        executor.execute(trajectories[:, :68], goals)
    with pytest.raises(TrajectoryError, match=r"goals_xy must have shape \(3, 2\)"):
        executor.execute(trajectories, np.zeros((2, 2)))
    # nothing was simulated: the simulation data never advanced
    assert all(data.time == 0.0 for data in executor._datas)

    skipped = executor.execute(bad, goals, on_invalid="skip")
    assert skipped.executed.tolist() == [True, False, True]
    assert "is nan" in skipped.rejection[1] and skipped.rejection[0] is None
    assert np.isnan(skipped.reward[1]) and np.isfinite(skipped.reward[[0, 2]]).all()


def test_joint_states_are_recorded_at_the_control_rate(expert, shots):
    _, trajectories = shots
    outcome = expert.executor.execute(
        trajectories[:1], np.array([1.0, 0.0]), record_joint_states=True
    )
    task = expert.task
    assert outcome.joint_positions.shape == (1, task.horizon + task.settle_steps, 7)
    # the arm tracks its commands (PD + velocity feed-forward): within a few centiradians
    tracking = np.abs(outcome.joint_positions[0, : task.horizon] - trajectories[0])
    assert tracking.max() < 0.05
    assert np.abs(outcome.joint_positions[0, -1] - trajectories[0, -1]).max() < 1e-3


def test_blade_into_the_table_is_counted_as_unsafe(expert):
    task = expert.task
    shot = HockeyShot(0.0, 0.8)
    _, commands = expert.feasible(shot)
    # lower the whole trajectory by bending the shoulder forward after the wind-up
    lowered = commands.copy()
    ramp = np.clip((np.arange(task.horizon) - 25) / 10.0, 0.0, 1.0)
    lowered[:, 1] += 0.12 * ramp
    assert check_trajectories(lowered, task.trajectory_spec)[0] is None
    outcome = expert.executor.execute(lowered, np.array([1.0, 0.0]))
    assert outcome.contact_steps_of("blade_table")[0] > 0
    assert outcome.unsafe[0]
    assert outcome.extras["min_blade_clearance_m"][0] < 0.0  # pressed into the table
    assert not expert.task.demonstration_ok(outcome)[0]


def test_workspace_check_refuses_the_blade_commanded_into_the_table(expert, shots):
    task = expert.task
    _, commands = expert.feasible(HockeyShot(0.0, 0.8))
    lowered = commands.copy()
    lowered[:, 1] += 0.12 * np.clip((np.arange(task.horizon) - 25) / 10.0, 0.0, 1.0)
    batch = np.stack([commands, lowered, shots[1][1]])
    clearance = task.commanded_blade_clearance(batch)
    # the expert commands its stroke 15 mm above the table; the lowered shot goes into it
    assert clearance[0].min() == pytest.approx(0.015, abs=2e-3)
    assert clearance[1].min() < -0.01
    # at the start the commanded and the simulated clearance agree (the arm is at rest)
    assert clearance[0, 0] == pytest.approx(0.13, abs=3e-3)
    reasons = task.workspace_violations(batch)
    assert reasons[0] is None and reasons[2] is None
    assert re.search(r"commanded blade clearance -\d+\.\d mm at step \d+ .* below the "
                     r"workspace margin of 4 mm above the table top", reasons[1])
    checked = BatchExecutor(task, workspace_check=True)
    outcome = checked.execute(batch, np.array([1.0, 0.0]), on_invalid="skip")
    assert outcome.executed.tolist() == [True, False, True]
    assert outcome.rejection[1].startswith("episode 1: commanded blade clearance")
    assert (outcome.contact_steps[1] == 0).all()  # nothing simulated
    with pytest.raises(TrajectoryError, match="episode 1: commanded blade clearance"):
        checked.execute(batch, np.array([1.0, 0.0]))
    # the action server's check refuses it as an invalid goal, and passes the expert's shot
    trajectory_types = FollowJointTrajectoryTypes.from_typestore(TYPESTORE)
    for positions, refused in ((commands, False), (lowered, True)):
        message = trajectory_to_msg(positions, task.joint_names, task.control_dt_s,
                                    trajectory_types.msg)
        verdict = check_workspace(
            check_goal(goal_to_msg(message, trajectory_types), task.trajectory_spec, 0), task)
        assert isinstance(verdict, GoalRejection) == refused
        if refused:
            assert verdict.code == ResultCode.INVALID_GOAL
            assert "leaves the workspace" in verdict.error_string


def test_blade_clearance_is_the_lowest_corner_above_the_table(expert, shots):
    _, trajectories = shots
    sensordata = expert.executor.simulate(trajectories[:1])
    clearance = expert.task.blade_clearance(expert.executor.model, sensordata)
    # at the start the stick is vertical: blade centre 0.15 m up, half height 0.02 m
    assert clearance[0, 0] == pytest.approx(0.13, abs=2e-3)


def test_expert_reaches_goals_without_touching_the_table(expert):
    goals = np.array([[0.7, 0.35], [1.0, 0.0], [1.25, -0.3], [0.9, -0.38]])
    _, trajectories, outcome = expert.solve(goals, iterations=5)
    assert outcome.distance_m.max() < 0.02
    assert (outcome.contact_steps_of("blade_table") == 0).all()
    # the stroke passes 15 mm above the table; tracking error takes at most a few mm of it
    assert outcome.extras["min_blade_clearance_m"].min() > 0.010
    assert expert.task.demonstration_ok(outcome).all()
    assert outcome.safe.all()
    assert all(r is None for r in check_trajectories(trajectories, expert.task.trajectory_spec, 0.95))


def test_follow_through_rises_from_the_impact_on(expert, shots):
    # the blade is at stroke height until it meets the puck, then rises: the measured lowest
    # corner stays near 15 mm up to the impact and is >= 25 mm above the table 0.15-0.45 s later
    positions, _, _ = expert.blade_path(shots[0][0])
    times = expert.task.trajectory_spec.time_from_start_s()
    at_stroke = (times > T_WINDUP) & (times <= T_IMPACT)
    assert positions[at_stroke, 2] == pytest.approx(STRIKE_HEIGHT_M)
    after = times >= T_IMPACT + FOLLOW_THROUGH_RISE_S
    assert positions[after, 2].min() >= STRIKE_HEIGHT_M + FOLLOW_THROUGH_RISE_M - 1e-9
    task = expert.task
    sensordata = expert.executor.simulate(shots[1])
    clearance = task.blade_clearance(expert.executor.model, sensordata)
    t = (np.arange(clearance.shape[1]) + 1) * task.control_dt_s / task.substeps
    follow_through = (t >= T_IMPACT + 0.15) & (t <= T_IMPACT + 0.45)
    assert clearance[:, follow_through].min() >= 0.025


def test_perturbations_stay_valid_and_change_the_shot(expert, shots):
    _, trajectories = shots
    spec = expert.task.trajectory_spec
    perturbed, source = perturb(trajectories, spec, 40, np.random.default_rng(3), ShapingConfig())
    assert perturbed.shape == (40, 69, 7) and source.shape == (40,)
    assert all(r is None for r in check_trajectories(perturbed, spec, 0.95))
    changed = np.abs(perturbed - trajectories[source]).max(axis=(1, 2))
    assert (changed > 1e-3).mean() > 0.9
    outcome = expert.executor.execute(perturbed, np.tile([1.0, 0.0], (40, 1)))
    assert np.std(outcome.final_object_pos[:, 0]) > 0.02
