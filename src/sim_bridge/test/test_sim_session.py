"""The sim_bridge node's scene (SimSession), clock and pacing, and a whole goal played the way
the node plays it: check, simulate, observe every step, cancel (hold) and re-simulate."""

from __future__ import annotations

import numpy as np
import pytest

from sim_bridge.executor import BatchExecutor
from sim_bridge.sim_session import SimClock, SimSession, StepPacer
from sim_bridge.trajectory_action import (
    AcceptedGoal,
    ControllerConstraints,
    GoalExecution,
    GoalState,
    ResultCode,
    Tolerances,
)


@pytest.fixture(scope="module")
def session():
    scene = SimSession("hockey", seed=3)
    yield scene
    scene.close()


def smooth_move(spec, amplitude=0.3):
    alpha = (1 - np.cos(np.linspace(0, np.pi, spec.horizon))) / 2
    target = spec.start_rad + amplitude * np.array([1.0, 0.5, 0.0, -0.5, 0.0, 0.5, 0.0])
    return spec.start_rad + alpha[:, None] * (target - spec.start_rad)


def abrupt_stop(spec):
    """Joint 1 at 1.5 rad/s over the last 30 commands, up to the last one: the arm must brake
    while settling."""
    commands = np.broadcast_to(spec.start_rad, (spec.horizon, 7)).copy()
    ramp = np.clip(np.arange(spec.horizon) - (spec.horizon - 31), 0, None)
    commands[:, 0] += 1.5 * spec.control_dt_s * ramp
    return commands


def accepted(commands, constraints=None):
    return AcceptedGoal(
        commands=commands,
        tolerances=Tolerances.defaults(constraints or ControllerConstraints(), 7),
        last_point_step=commands.shape[0] - 1,
        start_stamp_ns=0,
        resampled=False,
    )


def test_episode_matches_the_batch_executor(session):
    session.reset(np.array([0.9, 0.1]))
    commands = smooth_move(session.spec)
    run = session.simulate(commands)
    assert run.n_steps == session.n_steps == 99
    with BatchExecutor("hockey") as executor:
        outcome = executor.execute(commands, np.array([0.9, 0.1]), record_joint_states=True)
    np.testing.assert_array_equal(run.joint_positions, outcome.joint_positions[0])
    index = session.episode_index
    report = session.finish(run)
    assert report.episode_index == index and session.episode_index == index + 1
    assert report.executed and report.reward == pytest.approx(float(outcome.reward[0]))
    assert report.contact_classes == outcome.contact_classes
    np.testing.assert_array_equal(report.goal_xy, [0.9, 0.1])
    np.testing.assert_array_equal(session.joint_positions, run.joint_positions[-1])


def test_holding_from_a_step_keeps_the_past_and_changes_the_future(session):
    commands = smooth_move(session.spec)
    full = session.simulate(commands)
    execution = GoalExecution(accepted(commands), session.spec, session.n_steps)
    assert execution.stop(20)  # cancel after step 20
    held = session.simulate(execution.commands)
    np.testing.assert_array_equal(held.joint_positions[:21], full.joint_positions[:21])
    assert not np.allclose(held.joint_positions[40], full.joint_positions[40])
    # the arm ends where command 20 holds it
    np.testing.assert_allclose(held.joint_positions[-1], commands[20], atol=0.02)


@pytest.mark.parametrize("make", [smooth_move, abrupt_stop])
def test_goal_played_like_the_node_succeeds_with_jtc_defaults(session, make):
    """Default constraints (stopped velocity 0.01 rad/s, no goal time): the arm settles
    within the task's settling time, so the goal succeeds after the last point."""
    commands = make(session.spec)
    execution = GoalExecution(accepted(commands), session.spec, session.n_steps)
    run = session.simulate(execution.commands)
    for step in range(session.n_steps):
        execution.observe(step, run.joint_positions[step], run.joint_velocities[step])
    assert execution.state == GoalState.SUCCEEDED, execution.error_string
    assert execution.code == ResultCode.SUCCESSFUL
    reached = int(execution.error_string.rsplit(" ", 1)[1])
    assert session.spec.horizon - 1 <= reached < session.n_steps


def test_reset_and_reject(session):
    goal = session.reset(sample=True)
    assert goal.shape == (2,) and session.goal_in_region()
    np.testing.assert_array_equal(session.joint_positions, session.task.start_rad)
    assert not session.goal_in_region(np.array([10.0, 10.0]))
    with pytest.raises(ValueError, match="finite"):
        session.reset(np.array([np.nan, 0.0]))
    with pytest.raises(ValueError, match="needs a goal"):
        session.reset()
    index = session.episode_index
    report = session.reject("bad goal")
    assert not report.executed and report.rejection_reason == "bad goal"
    assert np.isnan(report.reward) and sum(report.contact_steps) == 0
    assert report.episode_index == index and session.episode_index == index + 1


def test_sim_clock():
    clock = SimClock()
    assert clock.now_ns == 0
    assert clock.advance(40_000_000) == 40_000_000
    with pytest.raises(ValueError):
        clock.advance(-1)
    with pytest.raises(ValueError):
        SimClock(-5)


def test_step_pacer_with_a_fake_clock():
    now = [100.0]
    pacer = StepPacer(2.0, 0.04, clock=lambda: now[0])
    assert pacer.step_wall_s == pytest.approx(0.02)
    assert pacer.delay_s(0) == pytest.approx(0.02)
    now[0] += 0.05  # late: no waiting for steps already due
    assert pacer.delay_s(1) == 0.0
    assert pacer.delay_s(4) == pytest.approx(0.05)
    pacer.restart()
    assert pacer.delay_s(0) == pytest.approx(0.02)
    fast = StepPacer(0.0, 0.04, clock=lambda: now[0])
    assert fast.delay_s(10) == 0.0 and fast.step_wall_s == 0.0
    with pytest.raises(ValueError):
        StepPacer(-1.0, 0.04)
    with pytest.raises(ValueError):
        StepPacer(1.0, 0.0)
