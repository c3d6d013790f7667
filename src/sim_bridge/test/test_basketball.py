"""Basketball task and scripted expert, on the real MuJoCo model."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from sim_bridge.arm import JOINT_LOWER_RAD, JOINT_UPPER_RAD
from sim_bridge.executor import BatchExecutor
from sim_bridge.experts.basketball import VELOCITY_MARGIN, BasketballExpert, BasketballThrow
from sim_bridge.tasks import make_task
from sim_bridge.tasks.basketball import (
    BALL_IN_HOLDER_M,
    GOAL_ANGLE_RANGE_RAD,
    GOAL_RADIUS_RANGE_M,
    NO_CROSSING_PENALTY_M,
    RELEASE_STEP,
    RIM_Z_M,
    COMMAND_MIN_SCENE_CLEARANCE_M,
    COMMAND_MIN_SELF_CLEARANCE_M,
    Basketball,
    rim_crossing_distance,
    rim_crossings,
)
from sim_bridge.trajectory import TrajectoryError, check_trajectories


@pytest.fixture(scope="module")
def task() -> Basketball:
    return Basketball()


@pytest.fixture(scope="module")
def executor(task) -> BatchExecutor:
    with BatchExecutor(task) as executor:
        yield executor


@pytest.fixture(scope="module")
def expert(executor) -> BasketballExpert:
    return BasketballExpert(executor)


def ball_and_holder(task, executor, commands):
    """Ball and holder positions (N, nstep, 3) of simulated trajectories."""
    sensordata = executor.simulate(commands)
    model = executor.model
    return (
        sensordata[:, :, task.sensor_slice(model, "ball_pos")],
        sensordata[:, :, task.sensor_slice(model, "holder_pos")],
        sensordata,
    )


def test_model_composes_with_arm(task):
    model = task.build_model()
    assert make_task("basketball").name == "basketball"
    assert model.nu == 14 and model.neq == 1
    assert model.opt.timestep == pytest.approx(task.physics_dt_s)
    assert model.body(task.target_body()).mocapid[0] >= 0
    assert model.camera("scene").id >= 0
    # the holder hangs on the arm's flange, the ball is a free body
    assert model.body(model.body("tool").parentid[0]).name == "flange"
    assert model.jnt_type[model.joint("ball_free").id] == mujoco.mjtJoint.mjJNT_FREE
    # the basket has no collision geometry
    basket = model.body("basket").id
    geoms = np.flatnonzero(model.geom_bodyid == basket)
    assert geoms.size and np.all(model.geom_contype[geoms] == 0)
    assert np.all(model.geom_conaffinity[geoms] == 0)


def test_start_configuration(task):
    start = task.start_rad
    assert start.shape == (7,)
    assert np.all(start > JOINT_LOWER_RAD) and np.all(start < JOINT_UPPER_RAD)
    model = task.build_model()
    data = mujoco.MjData(model)
    data.qpos[:] = task.initial_qpos(model)
    mujoco.mj_forward(model, data)
    assert data.ncon == 0
    holder = model.body("holder").id
    expected = data.xpos[holder] + data.xmat[holder].reshape(3, 3) @ BALL_IN_HOLDER_M
    np.testing.assert_allclose(data.xpos[model.body("ball").id], expected, atol=1e-9)


def test_ball_is_held_then_released(task, executor, expert):
    hold = np.repeat(task.start_rad[None, None], task.horizon, axis=1)
    throw = expert.trajectory(BasketballThrow(0.4, 0.7))[None]
    ball, holder, sensordata = ball_and_holder(task, executor, np.concatenate([hold, throw]))
    gap = np.linalg.norm(ball - holder, axis=2)  # (2, nstep)
    release = task.release_physics_step
    assert release == RELEASE_STEP * task.substeps
    # held: the ball stays in the holder (weld offset) until the release, even in the throw
    np.testing.assert_allclose(gap[:, :release], np.linalg.norm(BALL_IN_HOLDER_M), atol=2e-3)
    # no contact at all before the release
    counts = task.contact_counts(executor.model, sensordata)
    assert counts[:, :release].sum() == 0
    # released: the thrown ball leaves the holder right away, the held one falls off
    assert gap[1, release + 5] < 0.065  # 10 ms after the release: still beside the palm
    assert gap[1, release + 100] > 0.2  # 0.2 s after the release
    assert gap[0, release + 250] > 0.3  # 0.5 s after the release
    grip_bits, grip = task.extra_controls(2)
    assert grip_bits == int(mujoco.mjtState.mjSTATE_EQ_ACTIVE)
    assert grip.shape == (1, task.episode_physics_steps, 1)
    assert grip[0, release - 1, 0] == 1 and grip[0, release, 0] == 0


def test_reward_on_hand_made_stream(task):
    assert RIM_Z_M == pytest.approx(-0.4)
    nstep = 10
    ball = np.zeros((4, nstep, 3))
    ball[:, :, 2] = 1.0
    # 0: one crossing between samples 4 (z 0.2, x 1.0) and 5 (z -0.6, x 2.0)
    ball[0, 4, 2], ball[0, 5:, 2] = 0.2, -0.6
    ball[0, :5, 0], ball[0, 5:, 0] = 1.0, 2.0
    # 1: two crossings, before and after a bounce
    ball[1, :, 2] = [1.0, 0.5, 0.0, -0.5, -0.7, -0.5, 0.0, -0.2, -0.6, -0.7]
    ball[1, :, 0] = [2.0, 2.5, 2.8, 3.2, 3.5, 3.8, 4.1, 4.3, 4.7, 4.9]
    # 2: never below the rim height
    ball[2, :, 0] = np.linspace(0.0, 1.0, nstep)
    # 3: down through the rim height before ``first_step`` only, then up
    ball[3, :, 2] = [1.0, -1.0, -1.0, -1.0, -1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    ball[3, :, 0] = 2.0
    goals = np.array([[1.5, 0.0], [4.5, 0.0], [3.0, 4.0], [2.0, 0.0]])
    distance, position = rim_crossing_distance(ball, goals, RIM_Z_M, first_step=3)

    # 0: crossing at fraction (0.2 + 0.4) / 0.8 = 0.75 of the step: x = 1.75
    assert distance[0] == pytest.approx(0.25)
    np.testing.assert_allclose(position[0], [1.75, 0.0, RIM_Z_M])
    # 1: crossings at x = 2.8 + 0.8 * 0.4 = 3.12 and x = 4.3 + 0.5 * 0.4 = 4.5; the minimum
    assert distance[1] == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(position[1], [4.5, 0.0, RIM_Z_M])
    crossings = rim_crossings(ball[1:2], RIM_Z_M, first_step=1, max_crossings=3)
    np.testing.assert_allclose(crossings[0, :2, 0], [3.12, 4.5])
    assert np.isnan(crossings[0, 2]).all()
    # the pair (k-1, k) counts from k = first_step on
    assert rim_crossings(ball[1:2], RIM_Z_M, first_step=4)[0, 0, 0] == pytest.approx(4.5)
    # 2: no crossing: horizontal distance at the end + penalty
    assert distance[2] == pytest.approx(np.hypot(2.0, 4.0) + NO_CROSSING_PENALTY_M)
    np.testing.assert_allclose(position[2], ball[2, -1])
    # 3: the crossing before first_step does not count, going up never does
    assert distance[3] == pytest.approx(NO_CROSSING_PENALTY_M)

    # the same through Task.evaluate on a sensor stream (release at sample 3)
    class EarlyRelease(Basketball):
        release_physics_step = 3

    model = task.build_model()
    sensordata = np.zeros((4, nstep, model.nsensordata))
    sensordata[:, :, task.sensor_slice(model, "ball_pos")] = ball
    evaluation = EarlyRelease().evaluate(model, sensordata, goals)
    np.testing.assert_allclose(evaluation.reward, -distance)
    np.testing.assert_allclose(evaluation.distance_m, distance)
    np.testing.assert_allclose(evaluation.final_object_pos, position)


def test_contact_sensors_match_contact_list(task):
    """Random configurations: each contact class is seen by its sensors exactly when the
    contact list has such a contact."""
    model = task.build_model()
    data = mujoco.MjData(model)
    rng = np.random.default_rng(0)
    arm = {model.body(f"link{i}").id for i in range(1, 8)} | {
        model.body(name).id for name in ("flange", "tool", "holder")
    }
    link0, ball = model.body("link0").id, model.body("ball").id
    ground = {model.geom("floor").id, model.geom("pedestal").id}
    address = model.jnt_qposadr[model.joint("ball_free").id]
    seen = np.zeros(4, dtype=int)
    for _ in range(600):
        data.qpos[:] = task.initial_qpos(model)
        data.qpos[:7] = rng.uniform(JOINT_LOWER_RAD, JOINT_UPPER_RAD)
        data.qpos[address : address + 3] = rng.uniform([-1, -1, -0.8], [1, 1, 1.2])
        mujoco.mj_forward(model, data)
        expected = np.zeros(4, dtype=bool)
        for contact in data.contact[: data.ncon]:
            geoms = (contact.geom1, contact.geom2)
            bodies = {model.geom_bodyid[g] for g in geoms}
            robot = bodies & (arm | {link0})
            if bodies & arm and set(geoms) & ground:
                expected[0] = True
            elif len(robot) == 2:
                expected[1] = True
            elif ball in bodies and set(geoms) & ground:
                expected[2] = True
            elif ball in bodies and robot:
                expected[3] = True
        counts = task.contact_counts(model, data.sensordata[None, None])[0, 0]
        np.testing.assert_array_equal(counts > 0, expected)
        seen += expected
    assert np.all(seen > 0), seen  # every class occurred in the sample


def test_known_trajectory_is_deterministic(executor, expert):
    commands = expert.trajectories([BasketballThrow(-0.8, 0.55), BasketballThrow(1.2, 0.9)])[1]
    goals = np.array([[1.0, -1.0], [1.5, 4.0]])
    first = executor.execute(commands, goals)
    second = executor.execute(commands, goals)
    np.testing.assert_array_equal(first.reward, second.reward)
    np.testing.assert_array_equal(first.final_object_pos, second.final_object_pos)
    np.testing.assert_array_equal(first.contact_steps, second.contact_steps)
    assert np.all(first.executed) and not first.unsafe.any()
    # the ball lands along the aim
    angle = np.arctan2(first.final_object_pos[:, 1], first.final_object_pos[:, 0])
    np.testing.assert_allclose(angle, [-0.8, 1.2], atol=1e-3)


def test_sample_goals_in_documented_region(task):
    goals = task.sample_goals(2000, np.random.default_rng(3))
    radius = np.linalg.norm(goals, axis=1)
    angle = np.arctan2(goals[:, 1], goals[:, 0])
    assert goals.shape == (2000, 2)
    assert radius.min() >= GOAL_RADIUS_RANGE_M[0] and radius.max() <= GOAL_RADIUS_RANGE_M[1]
    assert angle.min() >= GOAL_ANGLE_RANGE_RAD[0] and angle.max() <= GOAL_ANGLE_RANGE_RAD[1]
    # uniform in radius and angle: both ends are populated
    assert (
        radius.min() < GOAL_RADIUS_RANGE_M[0] + 0.1 and radius.max() > GOAL_RADIUS_RANGE_M[1] - 0.1
    )
    assert angle.min() < -1.5 and angle.max() > 1.5
    assert task.goal_in_region(goals).all()
    outside = np.array([[0.5, 0.0], [-2.0, 0.1], [7.0, 0.0], [0.0, -6.5]])
    assert not task.goal_in_region(outside).any()


def test_expert_trajectories_within_limits(task, expert):
    rng = np.random.default_rng(4)
    throws = [
        BasketballThrow(a, s) for a, s in zip(rng.uniform(-1.7, 1.7, 40), rng.uniform(0.0, 1.0, 40))
    ]
    throws += [BasketballThrow(np.pi / 2, 1.0), BasketballThrow(-np.pi / 2, 1.0)]
    feasible, commands = expert.trajectories(throws)
    assert commands.shape == (len(throws), task.horizon, 7)
    assert all(
        r is None for r in check_trajectories(commands, task.trajectory_spec, VELOCITY_MARGIN)
    )
    # full strength at the widest goal angles is feasible as it is: the swing peaks at the
    # margin, and joint 1's turn to +-90 deg stays inside it
    assert [t.aim_rad for t in feasible[-2:]] == pytest.approx([np.pi / 2, -np.pi / 2])
    assert feasible[-1].strength == pytest.approx(1.0)
    assert expert.max_aim_rad >= GOAL_ANGLE_RANGE_RAD[1]


def test_expert_velocity_margin_leaves_head_room(task, expert):
    """The expert and its perturbations stay below 85 % of the velocity limits (decoded
    trajectories deviate from them), and the full swing uses that margin."""
    from sim_bridge.experts.demonstrations import expert_velocity_margin
    from sim_bridge.experts.shaping import ShapingConfig, perturb
    from sim_bridge.trajectory import joint_velocities

    assert VELOCITY_MARGIN == pytest.approx(0.85)
    assert expert_velocity_margin("basketball") == VELOCITY_MARGIN
    spec = task.trajectory_spec
    limit = spec.limits.velocity_limit_rad_s
    _, commands = expert.trajectories(
        [BasketballThrow(a, 1.0) for a in (-np.pi / 2, 0.0, np.pi / 2)]
    )
    usage = (np.abs(joint_velocities(commands, spec)) / limit).max(axis=(0, 1))
    assert usage.max() <= VELOCITY_MARGIN
    assert usage[[1, 3, 5]].min() > VELOCITY_MARGIN - 0.02  # the swing joints use it
    config = ShapingConfig(velocity_margin=expert_velocity_margin("basketball"))
    perturbed, _ = perturb(commands, spec, 30, np.random.default_rng(0), config)
    assert (np.abs(joint_velocities(perturbed, spec)) / limit).max() <= VELOCITY_MARGIN


@pytest.mark.slow
def test_expert_reach_covers_goal_region(expert):
    """The calibration throws (321, ~10-30 s) reach past the largest goal radius."""
    _, largest = expert.reachable_radius_m()
    assert GOAL_RADIUS_RANGE_M[1] < largest < GOAL_RADIUS_RANGE_M[1] + 0.5


def test_expert_solves_goals(task, expert):
    goals = np.array([[1.2, 0.3], [0.0, 2.0], [2.5, -1.5], [-0.1, -4.0], [3.0, 4.5]])
    throws, commands, outcome = expert.solve(goals, iterations=5)
    assert len(throws) == 5 and commands.shape == (5, task.horizon, 7)
    assert np.all(outcome.distance_m < 0.25), outcome.distance_m
    assert not outcome.unsafe.any()


def _ramp_to(task, target_rad):
    """Commands from the start configuration to ``target_rad`` in 2 s, then holding it."""
    share = np.clip(np.arange(1, task.horizon + 1) / 50.0, 0.0, 1.0)[:, None]
    return task.start_rad + share * (np.asarray(target_rad) - task.start_rad)


def test_workspace_check_refuses_commands_into_the_pedestal_or_the_arm(task, expert):
    rng = np.random.default_rng(5)
    throws = [
        BasketballThrow(a, s) for a, s in zip(rng.uniform(-1.5, 1.5, 12), rng.uniform(0.0, 1.0, 12))
    ]
    _, throw_commands = expert.trajectories(throws)
    # within the joint limits, but folded down into the pedestal / link 7 into link 4
    into_pedestal = _ramp_to(task, [-1.4, 0.93, 1.15, -2.69, -0.72, 1.57, 0.96])
    into_itself = _ramp_to(task, [2.06, 1.27, 2.18, -1.66, -1.31, 0.01, 0.84])
    batch = np.concatenate([throw_commands, [into_pedestal, into_itself]])
    assert all(r is None for r in check_trajectories(batch, task.trajectory_spec))
    clearance = task.commanded_clearances(batch)
    assert clearance.shape == (len(batch), task.horizon, 2)
    assert (clearance[:-2, :, 0] > 0.05).all()  # throws stay > 5 cm from floor and pedestal
    assert (clearance[:-2, :, 1] > 0.0).all()
    assert clearance[-2, :, 0].min() < -0.01 and clearance[-1, :, 1].min() < -0.005
    reasons = task.workspace_violations(batch)
    assert all(r is None for r in reasons[:-2])
    assert "the arm to the floor or the pedestal" in reasons[-2]
    assert f"workspace margin of {COMMAND_MIN_SCENE_CLEARANCE_M * 1e3:.0f} mm" in reasons[-2]
    assert "between two arm links" in reasons[-1]
    goals = np.tile([2.0, 0.0], (len(batch), 1))
    with BatchExecutor(task) as unchecked:
        outcome = unchecked.execute(batch[-2:], goals[-2:])
    # executed, both hit what the check measured
    assert outcome.contact_steps_of("robot_floor")[0] > 0
    assert outcome.contact_steps_of("robot_self")[1] > 0
    with BatchExecutor(task, workspace_check=True) as checked:
        outcome = checked.execute(batch, goals, on_invalid="skip")
        assert outcome.executed.tolist() == [True] * len(throws) + [False, False]
        assert not outcome.unsafe.any()
        with pytest.raises(TrajectoryError, match=f"episode {len(throws)}: commanded clearance"):
            checked.execute(batch, goals)


def test_workspace_check_keeps_a_margin_between_the_links(task):
    # a wind-up that bends the wrist (joint 6) until link 7 nearly touches link 4: commanded
    # 0.03 mm apart the held pose touches in the simulation, 0.2 mm apart it does not
    wind_up = np.array([-1.1447, -1.06, 0.0041, -0.2638, -0.016, 3.5425, -0.0017])
    near, apart = _ramp_to(task, wind_up), _ramp_to(task, wind_up - [0, 0, 0, 0, 0, 0.0025, 0])
    clearance = task.commanded_clearances(np.stack([near, apart]))[:, :, 1].min(axis=1)
    assert 0.0 < clearance[0] < 1e-4 and 1e-4 < clearance[1] < COMMAND_MIN_SELF_CLEARANCE_M
    with BatchExecutor(task) as unchecked:
        outcome = unchecked.execute(np.stack([near, apart]), np.tile([2.0, 0.0], (2, 1)))
    assert outcome.contact_steps_of("robot_self").tolist()[0] > 0
    assert outcome.contact_steps_of("robot_self").tolist()[1] == 0
    reasons = task.workspace_violations(np.stack([near, apart]))
    assert all("between two arm links" in r and "margin of 1 mm" in r for r in reasons)
