"""Gymnasium environments: API conformance, consistency with BatchExecutor, rejection and
clipping rules."""

import os

os.environ.setdefault("MUJOCO_GL", "osmesa")  # before mujoco is imported

import importlib.util  # noqa: E402

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from gymnasium.utils.env_checker import check_env  # noqa: E402

from sim_bridge.arm import JOINT_UPPER_RAD, JOINT_VELOCITY_LIMIT_RAD_S  # noqa: E402
from sim_bridge.envs import INVALID_TRAJECTORY_REWARD, OneShotEnv, StepEnv  # noqa: E402
from sim_bridge.executor import BatchExecutor  # noqa: E402
from sim_bridge.tasks import TASK_NAMES, make_task  # noqa: E402
from sim_bridge.trajectory import check_trajectories  # noqa: E402


def _task(name):
    if importlib.util.find_spec(f"sim_bridge.tasks.{name}") is None:
        pytest.skip(f"task module sim_bridge.tasks.{name} does not exist yet")
    return make_task(name)


@pytest.fixture(scope="module", params=TASK_NAMES)
def task(request):
    return _task(request.param)


@pytest.fixture(scope="module")
def executor(task):
    with BatchExecutor(task, nthread=1) as executor:
        yield executor


def smooth_trajectory(task, amplitude_rad=0.25, seed=0):
    """A slow, valid trajectory: a smooth excursion from the start configuration and back
    towards it (joint by joint sines with random phases)."""
    rng = np.random.default_rng(seed)
    times = task.trajectory_spec.time_from_start_s()
    duration = times[-1]
    phase = rng.uniform(0, 2 * np.pi, task.n_joints)
    envelope = np.sin(np.pi * times / duration)[:, None]
    wave = np.sin(2 * np.pi * times[:, None] / duration + phase[None])
    trajectory = task.start_rad + amplitude_rad * envelope * wave
    assert check_trajectories(trajectory, task.trajectory_spec)[0] is None
    return trajectory


def expert_trajectories(task, executor):
    """Realistic trajectories: the task's expert where one exists."""
    if task.name == "hockey":
        from sim_bridge.experts.hockey import HockeyExpert, HockeyShot

        expert = HockeyExpert(executor)
        return [expert.trajectory(HockeyShot(0.15, 1.0)), expert.trajectory(HockeyShot(-0.3, 0.7))]
    if importlib.util.find_spec(f"sim_bridge.experts.{task.name}") is None:
        return []
    if task.name == "basketball":
        from sim_bridge.experts.basketball import BasketballExpert, BasketballThrow

        throws = [BasketballThrow(0.4, 0.9), BasketballThrow(-1.0, 0.5)]
        return list(BasketballExpert(executor).trajectories(throws)[1])
    return []


def run_step_env(env, trajectory, goal):
    """Step through ``trajectory`` with actions = successive differences of the commands."""
    obs, info = env.reset(seed=0, options={"goal": goal})
    previous = env.task.start_rad
    rewards = []
    for t, command in enumerate(trajectory):
        obs, reward, terminated, truncated, info = env.step(command - previous)
        previous = command
        rewards.append(reward)
        assert terminated == (t == len(trajectory) - 1) and not truncated
        assert not info["action_clipped"] and not info["position_clipped"].any()
    assert all(r == 0.0 for r in rewards[:-1])
    return rewards[-1], info


# ---------------------------------------------------------------------- API conformance
def test_registered_ids():
    import sim_bridge.envs  # noqa: F401

    for prefix in ("Hockey", "Basketball"):
        for kind in ("Step", "OneShot"):
            assert f"genrl/{prefix}{kind}-v0" in gym.registry
    env = gym.make("genrl/HockeyStep-v0")
    assert isinstance(env.unwrapped, StepEnv) and env.unwrapped.task.name == "hockey"
    env.close()
    env = gym.make("genrl/HockeyOneShot-v0")
    assert isinstance(env.unwrapped, OneShotEnv)
    env.close()


def test_check_env_step(task):
    env = StepEnv(task)
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_check_env_one_shot(task):
    env = OneShotEnv(task)
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_gym_make_basketball():
    _task("basketball")
    for kind in ("Step", "OneShot"):
        env = gym.make(f"genrl/Basketball{kind}-v0")
        obs, _ = env.reset(seed=1)
        assert env.observation_space.contains(obs)
        env.close()


# ---------------------------------------------------------------------- consistency
def test_step_env_matches_executor(task, executor):
    """The same commands give the same outcome through StepEnv and BatchExecutor.execute."""
    env = StepEnv(task)
    experts = expert_trajectories(task, executor)
    trajectories = [smooth_trajectory(task)] + experts
    goals = task.sample_goals(len(trajectories), np.random.default_rng(11))
    contacts = 0
    for trajectory, goal in zip(trajectories, goals):
        reward, info = run_step_env(env, trajectory, goal)
        outcome = executor.execute(trajectory, goal)
        result = info["outcome"]
        np.testing.assert_allclose(info["trajectory"], trajectory, rtol=0, atol=1e-12)
        np.testing.assert_allclose(
            result["final_object_pos"], outcome.final_object_pos[0], rtol=0, atol=1e-6
        )
        assert reward == pytest.approx(outcome.reward[0], abs=1e-6)
        assert result["reward"] == reward
        expected = dict(zip(outcome.contact_classes, outcome.contact_steps[0].tolist()))
        assert result["contact_steps"] == expected
        assert info["contact_steps"] == expected
        assert result["joint_limit_violation_steps"] == outcome.joint_limit_violation_steps[0]
        assert result["object_at_rest"] == outcome.object_at_rest[0]
        assert result["unsafe"] == outcome.unsafe[0]
        contacts += sum(expected.values())
    if experts:  # the expert episodes touch the object: contact counting is exercised
        assert contacts > 0
    env.close()


def test_hockey_expert_shot_hits_the_puck():
    """Sanity check of the test data: the expert's shot touches the puck, so the
    consistency test covers contacts."""
    task = make_task("hockey")
    with BatchExecutor(task) as executor:
        env = StepEnv(task)
        _, info = run_step_env(env, expert_trajectories(task, executor)[0], np.array([1.0, 0.1]))
    assert info["outcome"]["contact_steps"]["stick_puck"] > 0
    assert info["outcome"]["distance_m"] < 0.5


def test_one_shot_env_matches_executor(task, executor):
    env = OneShotEnv(task)
    goal = task.sample_goals(1, np.random.default_rng(2))[0]
    trajectory = smooth_trajectory(task, seed=4)
    obs, _ = env.reset(options={"goal": goal})
    np.testing.assert_array_equal(obs, goal.astype(np.float32))
    obs, reward, terminated, truncated, info = env.step(trajectory)
    outcome = executor.execute(trajectory, goal)
    assert terminated and not truncated and info["rejection"] is None
    assert reward == outcome.reward[0]
    np.testing.assert_array_equal(info["final_object_pos"], outcome.final_object_pos[0])
    assert info["contact_steps"] == dict(
        zip(outcome.contact_classes, outcome.contact_steps[0].tolist())
    )
    with pytest.raises(RuntimeError, match="reset"):
        env.step(trajectory)
    env.close()


# ---------------------------------------------------------------------- rules
def test_one_shot_rejects_invalid_trajectories(task):
    env = OneShotEnv(task)
    env.action_space.seed(0)
    env.reset(seed=0)
    obs, reward, terminated, _, info = env.step(env.action_space.sample())
    assert terminated and reward == INVALID_TRAJECTORY_REWARD
    assert "velocity" in info["rejection"] and "limit" in info["rejection"]
    env.close()


def test_one_shot_action_bounds_are_valid_positions(task):
    env = OneShotEnv(task)
    high = env.action_space.high.astype(np.float64)
    assert np.all(high <= JOINT_UPPER_RAD) and np.all(high > JOINT_UPPER_RAD - 1e-6)
    env.close()


def test_step_env_clips_actions_and_positions():
    env = StepEnv("hockey")
    env.reset(seed=0, options={"goal": [1.0, 0.0]})
    max_step = JOINT_VELOCITY_LIMIT_RAD_S * env.task.control_dt_s
    assert np.all(env.action_space.high.astype(np.float64) <= max_step)
    _, _, _, _, info = env.step(np.full(7, 10.0))
    assert info["action_clipped"]
    np.testing.assert_allclose(info["command"], env.task.start_rad + max_step)
    # Keep pushing joint 4 up: its command stops at the upper limit.
    action = np.zeros(7)
    action[3] = max_step[3]
    clipped = False
    for _ in range(env.task.horizon - 1):
        _, reward, terminated, _, info = env.step(action)
        clipped |= bool(info["position_clipped"][3])
    assert clipped and terminated
    assert info["command"][3] == JOINT_UPPER_RAD[3]
    assert check_trajectories(info["trajectory"], env.task.trajectory_spec)[0] is None
    env.close()


def test_step_env_reset_goal_and_seeding():
    env = StepEnv("hockey")
    obs, info = env.reset(seed=0, options={"goal": [0.9, -0.2]})
    np.testing.assert_allclose(obs[:2], [0.9, -0.2], rtol=1e-6)
    np.testing.assert_allclose(obs[2:9], env.task.start_rad, atol=1e-6)
    assert info["time_step"] == 0 and set(info["contact_steps"]) == set(
        env.task.contact_class_names
    )
    first, _ = env.reset(seed=7)
    second, _ = env.reset(seed=7)
    np.testing.assert_array_equal(first, second)
    assert env.task.goal_in_region(first[None, :2].astype(np.float64))[0]
    with pytest.raises(ValueError, match="outside"):
        env.reset(options={"goal": [50.0, 0.0]})
    env.close()


def test_step_after_end_raises():
    env = StepEnv("hockey")
    env.reset(seed=0)
    for _ in range(env.task.horizon):
        *_, terminated, _, _ = env.step(np.zeros(7, dtype=np.float32))
    assert terminated
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(7, dtype=np.float32))
    env.close()


def test_step_env_render():
    env = StepEnv("hockey", render_mode="rgb_array", render_size=(64, 64))
    env.reset(seed=0)
    before = env.render()
    assert before.shape == (64, 64, 3) and before.dtype == np.uint8
    env.close()
