"""PPO / SAC baselines (real stable-baselines3, real MuJoCo) and ``genrl compare``.

The demonstrations are scripted hockey shots of the expert (joint commands from its IK),
replayed through the per-step environment; budgets are tiny.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from genrl_ros import cli
from genrl_ros.baselines import (
    PPOBaselineConfig,
    SACBaselineConfig,
    bc_loss,
    behaviour_clone,
    make_ppo,
    make_sac,
    prefill_replay_buffer,
    replay_demonstrations,
    train_baseline,
)
from genrl_ros.compare import CompareConfig
from genrl_ros.data.dataset import TrajectoryDataset
from sim_bridge.arm import JOINT_NAMES
from sim_bridge.executor import BatchExecutor
from sim_bridge.tasks import make_task


@pytest.fixture(scope="module")
def shots() -> tuple[np.ndarray, np.ndarray]:
    """6 expert hockey shots (N, 69, 7) and goals (N, 2) they are given."""
    from sim_bridge.experts.hockey import HockeyExpert, HockeyShot

    expert = HockeyExpert()
    grid = [HockeyShot(float(d), float(v)) for d in (-0.4, 0.0, 0.4) for v in (0.6, 1.1)]
    _, trajectories = expert.trajectories(grid)
    expert.executor.close()
    goals = make_task("hockey").sample_goals(len(grid), np.random.default_rng(3))
    return trajectories, goals


@pytest.fixture(scope="module")
def demos(shots):
    return replay_demonstrations("hockey", *shots)


def test_replay_gives_the_executor_outcome_and_per_step_transitions(shots, demos):
    trajectories, goals = shots
    n, horizon = trajectories.shape[:2]
    assert demos.n_episodes == n and demos.horizon == horizon
    assert demos.observations.shape == (n * horizon, 16) == demos.next_observations.shape
    assert demos.actions.shape == (n * horizon, 7) and np.abs(demos.actions).max() <= 1.0
    # consecutive rows chain, the goal is in every observation, the reward is terminal
    obs = demos.observations.reshape(n, horizon, 16)
    nxt = demos.next_observations.reshape(n, horizon, 16)
    np.testing.assert_array_equal(obs[:, 1:], nxt[:, :-1])
    np.testing.assert_allclose(obs[:, :, :2], np.repeat(goals[:, None], horizon, 1), atol=1e-6)
    assert demos.dones.reshape(n, horizon)[:, -1].all() and demos.dones.sum() == n
    with BatchExecutor(make_task("hockey"), nthread=1) as executor:
        outcomes = executor.execute(trajectories, goals)
    # the same physics; the float32 actions round the commands (< 1e-6 rad per step)
    np.testing.assert_allclose(demos.rewards.reshape(n, horizon)[:, -1], outcomes.reward,
                               atol=2e-3)
    assert np.all(demos.rewards.reshape(n, horizon)[:, :-1] == 0.0)
    np.testing.assert_array_equal(demos.table_contact_steps,
                                  outcomes.contact_steps_of("blade_table"))
    returns = demos.discounted_returns(0.5).reshape(n, horizon)
    np.testing.assert_allclose(returns[:, -2], 0.5 * demos.rewards[horizon - 1::horizon])


def test_behaviour_cloning_makes_ppo_mean_action_match_the_demonstrations(demos):
    torch.set_num_threads(1)
    config = PPOBaselineConfig(bc_epochs=60, bc_batch_size=64, bc_lr=3e-3, init_std=0.05)
    model = make_ppo("hockey", config, seed=0)
    stats = behaviour_clone(model, demos, config, seed=0)
    assert stats["bc_loss_before"] == pytest.approx(bc_loss(make_ppo("hockey", config, 0), demos))
    assert stats["bc_loss_after"] < 0.1 * stats["bc_loss_before"]
    assert np.isfinite(stats["value_loss_after"])
    mean_action, _ = model.predict(demos.observations, deterministic=True)
    spread = np.abs(demos.actions - demos.actions.mean(axis=0)).mean()
    assert np.abs(mean_action - demos.actions).mean() < 0.3 * spread
    # the exploration std is the configured one, not the demonstrations' residual
    assert torch.exp(model.policy.log_std).detach().numpy() == pytest.approx(0.05, rel=1e-5)


def test_sac_replay_buffer_holds_the_demonstrations_before_learning(demos):
    torch.set_num_threads(1)
    m = demos.rewards.shape[0]
    model = make_sac("hockey", SACBaselineConfig(), seed=0, budget_steps=69, demo_steps=m)
    assert model.replay_buffer.size() == 0
    assert prefill_replay_buffer(model, demos) == m
    buffer = model.replay_buffer
    np.testing.assert_array_equal(buffer.observations[:m, 0], demos.observations)
    np.testing.assert_array_equal(buffer.next_observations[:m, 0], demos.next_observations)
    np.testing.assert_array_equal(buffer.actions[:m, 0], demos.actions)
    np.testing.assert_array_equal(buffer.rewards[:m, 0], demos.rewards)
    np.testing.assert_array_equal(buffer.dones[:m, 0], demos.dones.astype(np.float32))
    with pytest.raises(ValueError, match="cannot hold"):
        prefill_replay_buffer(make_sac("hockey", SACBaselineConfig(), 0, 1, 0), demos)


@pytest.mark.parametrize("method", ["ppo", "sac"])
def test_training_logs_exactly_the_episode_budget(method, demos):
    torch.set_num_threads(1)
    result = train_baseline(
        method, "hockey", demos, 3, seed=1,
        ppo_config=PPOBaselineConfig(episodes_per_rollout=2, batch_size=69, n_epochs=1,
                                     bc_epochs=1),
        sac_config=SACBaselineConfig(learning_starts=10, batch_size=32, hidden_sizes=(32,)),
        eval_goals=make_task("hockey").sample_goals(2, np.random.default_rng(0)),
    )
    log = result["log"]
    assert len(log) == 3 and len(log.distance_m) == 3 == len(log.table_contact_steps)
    assert all(r <= 0.0 for r in log.rewards) and all(c >= 0 for c in log.table_contact_steps)
    assert result["eval"]["n_goals"] == 2 and result["eval"]["median_distance_m"] >= 0.0
    if method == "sac":
        assert result["pretraining"]["replay_buffer_demonstrations"] == demos.rewards.shape[0]
        # SB3 stops (callback) before it stores the transition of the very last step
        assert result["model"].replay_buffer.size() == demos.rewards.shape[0] + 3 * 69 - 1
    else:
        assert result["pretraining"]["bc_loss_after"] < result["pretraining"]["bc_loss_before"]


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="init_std"):
        PPOBaselineConfig(init_std=0.0)
    with pytest.raises(ValueError, match="gradient_steps"):
        SACBaselineConfig(gradient_steps=0)
    with pytest.raises(ValueError, match="multiple of genrl_episodes_per_iteration"):
        CompareConfig(task="hockey", episodes=100)
    with pytest.raises(ValueError, match="methods"):
        CompareConfig(task="hockey", episodes=64, methods=("dqn",))
    with pytest.raises(ValueError, match="trajectories must have shape"):
        replay_demonstrations("hockey", np.zeros((1, 5, 7)), np.zeros((1, 2)))


# ----------------------------------------------------------------------------- the command


def _tiny_vae_checkpoint(path: Path, trajectories: np.ndarray) -> Path:
    from genrl_ros.models.checkpoint import save_checkpoint
    from genrl_ros.models.vae import BetaVAE

    torch.manual_seed(0)
    model = BetaVAE(latent_dim=2, horizon=trajectories.shape[1], joint_names=JOINT_NAMES,
                    control_dt_s=0.04, task="hockey", beta=0.001)
    model.set_normalization(trajectories)
    with torch.no_grad():  # outputs within a tenth of the data's spread around its mean
        model.decoder[-1].weight.mul_(0.1)
        model.decoder[-1].bias.zero_()
    model.eval()
    return save_checkpoint(path, model)


def _dataset(path: Path, trajectories: np.ndarray, goals: np.ndarray) -> Path:
    task = make_task("hockey")
    with BatchExecutor(task, nthread=1) as executor:
        outcomes = executor.execute(trajectories, goals)
    TrajectoryDataset(
        task="hockey", horizon=task.horizon, control_dt_s=task.control_dt_s,
        joint_names=task.joint_names, trajectories=trajectories, goals_xy=goals,
        final_object_pos=outcomes.final_object_pos, rewards=outcomes.reward,
        distance_m=outcomes.distance_m, contact_steps=outcomes.contact_steps,
        contact_classes=outcomes.contact_classes, unsafe_classes=outcomes.unsafe_classes,
        joint_limit_violation_steps=outcomes.joint_limit_violation_steps,
        is_expert=np.ones(len(goals), dtype=bool), seed=0,
    ).save(path)
    return path


def test_compare_command_end_to_end(shots, tmp_path, capsys):
    torch.set_num_threads(1)
    trajectories, goals = shots
    model = _tiny_vae_checkpoint(tmp_path / "vae" / "best.pt", trajectories)
    data = _dataset(tmp_path / "demos", trajectories, goals)
    out = tmp_path / "cmp"
    argv = ["compare", "--task", "hockey", "--model", str(model), "--data", str(data),
            "--episodes", "2", "--seeds", "2", "--genrl-episodes-per-iteration", "2",
            "--eval-goals", "2", "--bins", "2", "--bc-epochs", "2", "--out", str(out),
            "--no-progress", "--json"]
    assert cli.main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["command"] == "compare" and summary["episodes"] == 2
    for method in ("genrl", "ppo", "sac"):
        assert summary[f"{method}_table_contact_steps"] >= 0
        assert summary[f"{method}_final_reward"] <= 0.0
    for name in ("compare.json", "compare.md", "reward_vs_episodes.png", "table_contacts.png"):
        assert (out / name).stat().st_size > 0
    assert "table-contact steps (total)" in (out / "compare.md").read_text()
    from genrl_ros.compare import CONTACT_LABELS  # basketball has no table: it counts unsafe contacts

    assert CONTACT_LABELS["basketball"] == "unsafe-contact steps"
    report = json.loads((out / "compare.json").read_text())
    assert report["demonstration_transitions"] == len(goals) * 69
    for method in ("genrl", "ppo", "sac"):
        assert set(report["runs"][method]) == {"0", "1"}
        for run in report["runs"][method].values():
            assert len(run["rewards"]) == 2 == len(run["table_contact_steps"])
        s = report["summary"][method]
        assert s["table_contact_steps_total"] == sum(
            sum(r["table_contact_steps"]) for r in report["runs"][method].values())
    # a second call reuses the finished runs (same numbers, no training)
    assert cli.main(argv) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["ppo_final_reward"] == summary["ppo_final_reward"]
    assert again["seconds"] < summary["seconds"]
    # bad input names the field
    assert cli.main([*argv[:-4], "--episodes", "3", "--out", str(tmp_path / "x"), "--json"]) == 2
    assert "genrl_episodes_per_iteration" in capsys.readouterr().err
