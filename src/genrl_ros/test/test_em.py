"""EM policy training (GenRL Algorithm 1): E-step, M-step, value fit, a tiny run that learns,
exact resume, logs, and ``genrl train-policy``.

The generator here is a tiny linear one: PCA of 25 scripted hockey shots (5 directions x 5
speeds, joint commands from the expert's IK, no simulation), latent N(0, I) -> mean + latent
x principal directions. It has the interface of ``genrl_ros.models`` generators.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from genrl_ros import cli
from genrl_ros.data.dataset import TrajectoryDataset
from genrl_ros.em.config import EMConfig
from genrl_ros.em.trainer import (
    CURVE_FILE,
    EPISODES_FILE,
    EVAL_GOALS_FILE,
    LAST_FILE,
    EMTrainer,
    EpisodeBatch,
    evaluation_goals,
    load_policy,
    train_em,
)
from genrl_ros.em.warm_start import demonstration_pairs, warm_start
from sim_bridge.arm import JOINT_NAMES
from sim_bridge.executor import BatchExecutor
from sim_bridge.tasks import make_task


class PCAGenerator:
    """Linear generator: alpha (n, L) -> mean + alpha @ basis, basis scaled so that the
    training trajectories have latents of unit variance."""

    prior = "normal"
    task = "hockey"

    def __init__(self, trajectories: np.ndarray, latent_dim: int) -> None:
        n, self.horizon, _ = trajectories.shape
        flat = trajectories.reshape(n, -1)
        self.mean = flat.mean(axis=0)
        _, s, vt = np.linalg.svd(flat - self.mean, full_matrices=False)
        self.basis = vt[:latent_dim] * (s[:latent_dim] / np.sqrt(n))[:, None]
        self.latent_dim = latent_dim
        self.joint_names = JOINT_NAMES

    def eval(self) -> "PCAGenerator":
        return self

    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, generator=generator)

    def decode(self, alpha: torch.Tensor) -> torch.Tensor:
        flat = self.mean + np.asarray(alpha, dtype=np.float64) @ self.basis
        return torch.as_tensor(flat.reshape(-1, self.horizon, len(self.joint_names)),
                               dtype=torch.float32)

    def infer_latent(self, trajectories: torch.Tensor) -> torch.Tensor:
        flat = np.asarray(trajectories, dtype=np.float64).reshape(len(trajectories), -1)
        return torch.as_tensor((flat - self.mean) @ np.linalg.pinv(self.basis), dtype=torch.float32)


@pytest.fixture(scope="module")
def shots() -> np.ndarray:
    from sim_bridge.experts.hockey import HockeyExpert, HockeyShot

    expert = HockeyExpert()
    grid = [HockeyShot(float(d), float(v)) for d in np.linspace(-0.6, 0.6, 5)
            for v in np.linspace(0.4, 1.3, 5)]
    _, trajectories = expert.trajectories(grid)
    expert.executor.close()
    return trajectories


@pytest.fixture(scope="module")
def generator(shots) -> PCAGenerator:
    return PCAGenerator(shots, 2)


def synthetic_batch(trainer: EMTrainer, n: int = 64, seed: int = 0) -> EpisodeBatch:
    """A batch without simulation: alpha from pi, reward = -||alpha - target(goal)||."""
    rng = np.random.default_rng(seed)
    goals = trainer.task.sample_goals(n, rng)
    observation, images = trainer.observe(goals)
    alpha, _, _ = trainer.policy.sample(observation, torch.Generator().manual_seed(seed))
    target = np.stack([goals[:, 1] * 2.0, goals[:, 0] - 1.0], axis=1)[:, : trainer.latent_dim]
    rewards = -np.linalg.norm(alpha.numpy() - target, axis=1)
    return EpisodeBatch(
        goals=goals, alpha=alpha.numpy(), rewards=rewards, distance_m=-rewards,
        executed=np.ones(n, bool), table_contact_steps=np.zeros(n, np.int64),
        unsafe_contact_steps=np.zeros(n, np.int64), images=images,
    )


# ----------------------------------------------------------------------------- config


def test_config_defaults_validation_and_json():
    config = EMConfig()
    assert config.episodes_per_iteration >= 2 and config.max_kl > 0
    assert config.invalid_reward_for("hockey") < -1.0
    assert config.success_radius_for("hockey") == 0.05
    assert config.success_radius_for("basketball") == 0.15
    assert config.init_std_for("normal") == 1.0
    assert config.init_std_for("uniform") == pytest.approx(3 ** -0.5)
    assert config.latent_bound_for("uniform") == 1.0 and config.latent_bound_for("normal") is None
    assert EMConfig.from_json(json.loads(json.dumps(config.to_json()))) == config
    for bad in ({"episodes_per_iteration": 1}, {"lr": 0.0}, {"max_kl": -1.0},
                {"init_std": 0.0}, {"estep_epochs": True}):
        with pytest.raises(ValueError):
            EMConfig(**bad)
    with pytest.raises(ValueError, match="unknown EMConfig fields"):
        EMConfig.from_json({"batch": 3})


def test_several_latents_per_goal_repeat_each_goal(generator):
    config = EMConfig(episodes_per_iteration=12, latents_per_goal=3)
    trainer = EMTrainer(generator, "hockey", config)
    planned = trainer.sample_episodes()
    trainer.close()
    goals = planned.goals.reshape(4, 3, 2)
    assert (goals == goals[:, :1]).all()
    assert len(np.unique(goals[:, 0], axis=0)) == 4
    alpha = planned.alpha.reshape(4, 3, -1)
    assert not np.allclose(alpha[:, 0], alpha[:, 1])  # each goal gets its own latents
    with pytest.raises(ValueError, match=r"multiple of latents_per_goal \(3\)"):
        EMConfig(episodes_per_iteration=10, latents_per_goal=3)


def test_generator_must_fit_the_task(generator):
    with pytest.raises(ValueError, match="does not fit the task"):
        EMTrainer(generator, "basketball", EMConfig(episodes_per_iteration=4))


# ----------------------------------------------------------------------------- E / M / V


def test_e_step_increases_the_surrogate_within_the_trust_region(generator):
    trainer = EMTrainer(generator, "hockey", EMConfig(max_kl=0.05, estep_epochs=20, lr=3e-3))
    try:
        batch = synthetic_batch(trainer)
        before = {k: v.clone() for k, v in trainer.policy.state_dict().items()}
        stats = trainer.e_step(batch)
        # q starts at pi: ratio 1, normalised advantages have mean 0, KL 0
        assert stats["surrogate_before"] == pytest.approx(0.0, abs=1e-5)
        assert stats["kl_before"] == pytest.approx(0.0, abs=1e-7)
        assert stats["surrogate_after"] > stats["surrogate_before"] + 0.05
        # the stated bound: batch mean KL(q || pi) <= max(max_kl, KL at the start) = max_kl
        assert 0.0 < stats["kl"] <= 0.05
        assert stats["estep_steps"] > 0
        # pi_theta is untouched by the E-step
        for key, value in trainer.policy.state_dict().items():
            assert torch.equal(value, before[key])

        # a step that leaves the trust region is shortened onto it (progress, KL <= bound)
        tight = EMTrainer(generator, "hockey", EMConfig(max_kl=1e-3, estep_epochs=20, lr=0.05))
        stats = tight.e_step(synthetic_batch(tight))
        assert stats["trust_region_steps"] >= 1 and 0.0 < stats["kl"] <= 1e-3
        assert stats["estep_steps"] >= 1 and stats["surrogate_after"] > stats["surrogate_before"]
        tight.close()
    finally:
        trainer.close()


def test_m_step_copies_q_into_pi_and_value_fit(generator):
    trainer = EMTrainer(generator, "hockey", EMConfig(value_epochs=100))
    try:
        batch = synthetic_batch(trainer)
        trainer.e_step(batch)
        goals = torch.as_tensor(batch.goals, dtype=torch.float32)
        assert not torch.equal(trainer.policy(goals)[0], trainer.q(goals)[0])
        trainer.m_step(batch)
        for key, value in trainer.q.state_dict().items():
            assert torch.equal(trainer.policy.state_dict()[key], value)
        assert torch.equal(trainer.policy(goals)[0], trainer.q(goals)[0])
        rewards = torch.as_tensor(batch.rewards, dtype=torch.float32)
        with torch.no_grad():
            before = float((trainer.value(goals) - rewards).pow(2).mean())
        after = trainer.fit_value(batch)["value_loss"]
        assert after < 0.5 * before
    finally:
        trainer.close()


def test_image_m_step_distils_q_into_the_camera_policy(generator):
    config = EMConfig(episodes_per_iteration=16, estep_epochs=10, lr=1e-3, distill_epochs=40,
                      distill_lr=3e-3, distill_minibatch_size=16)
    trainer = EMTrainer(generator, "hockey", config, observation="image")
    try:
        batch = synthetic_batch(trainer, n=16)
        assert batch.images.shape == (16, 64, 64, 3)
        stats = trainer.e_step(batch)  # q is goal-conditioned; pi sees images
        assert stats["surrogate_after"] > stats["surrogate_before"]
        goals = torch.as_tensor(batch.goals, dtype=torch.float32)
        images = trainer._observation_tensor(batch)
        from latent_policy_node.policy import gaussian_kl

        def kl() -> float:
            with torch.no_grad():
                return float(gaussian_kl(*trainer.q(goals), *trainer.policy(images)).mean())

        before = kl()
        distill_kl = trainer.m_step(batch)["distill_kl"]
        assert distill_kl == pytest.approx(kl(), rel=1e-4, abs=1e-7)
        assert distill_kl < 0.5 * before
    finally:
        trainer.close()


def test_image_policy_iterations_resume_exactly_from_state(generator):
    """Input remapping end to end: samples from the camera policy, goal-conditioned q; the
    state (with the image buffer rendered again) continues exactly."""
    config = EMConfig(episodes_per_iteration=4, estep_epochs=2, value_epochs=2, distill_epochs=2)
    first = EMTrainer(generator, "hockey", config, observation="image")
    second = EMTrainer(generator, "hockey", config, observation="image")
    try:
        row, episodes = first.iterate()
        assert row["distill_kl"] >= 0 and len(episodes) == 4
        assert first.buffer_images.shape == (4, 64, 64, 3)
        second.load_state_dict(first.state_dict())
        np.testing.assert_array_equal(second.buffer_images, first.buffer_images)
        a, b = first.iterate()[0], second.iterate()[0]
        assert {k: v for k, v in a.items() if k != "seconds"} == {
            k: v for k, v in b.items() if k != "seconds"}
        for key, value in first.policy.state_dict().items():
            assert torch.equal(second.policy.state_dict()[key], value), key
    finally:
        first.close()
        second.close()


def test_rejected_trajectories_get_the_penalty_and_are_counted(generator, shots):
    class Wild(PCAGenerator):
        """alpha_0 > 0 gives a trajectory beyond the joint limits."""

        def decode(self, alpha):
            out = super().decode(alpha)
            return out + 5.0 * (torch.as_tensor(alpha)[:, :1, None] > 0).float()

    trainer = EMTrainer(Wild(shots, 2), "hockey", EMConfig(episodes_per_iteration=8, invalid_reward=-3.0))
    try:
        row, episodes = trainer.iterate()
        rejected = [e for e in episodes if not e["executed"]]
        assert row["invalid"] == len(rejected) > 0
        assert all(e["reward"] == -3.0 and np.isnan(e["distance_m"]) for e in rejected)
        assert all((e["alpha_0"] > 0) == (not e["executed"]) for e in episodes)
    finally:
        trainer.close()


def test_the_workspace_check_refuses_the_blade_commanded_into_the_table(generator, shots):
    class Low(PCAGenerator):
        """alpha_0 > 0 bends the shoulder forward after the wind-up: the blade into the table."""

        def decode(self, alpha):
            out = super().decode(alpha)
            ramp = torch.clamp((torch.arange(self.horizon) - 25) / 10.0, 0.0, 1.0)
            low = (torch.as_tensor(alpha)[:, :1] > 0).float()
            out[:, :, 1] += 0.12 * low * ramp
            return out

    results = {}
    for check in (True, False):
        config = EMConfig(episodes_per_iteration=8, invalid_reward=-3.0, workspace_check=check)
        trainer = EMTrainer(Low(shots, 2), "hockey", config)
        try:
            _, results[check] = trainer.iterate()
        finally:
            trainer.close()
    low = [e["alpha_0"] > 0 for e in results[True]]
    assert 0 < sum(low) < 8
    assert [not e["executed"] for e in results[True]] == low
    assert all(e["table_contact_steps"] == 0 for e in results[True])
    assert all(e["reward"] == -3.0 for e, is_low in zip(results[True], low) if is_low)
    # without the check the same latents are executed and touch the table
    assert all(e["executed"] for e in results[False])
    assert all(e["table_contact_steps"] > 0 for e, is_low in zip(results[False], low) if is_low)


# ----------------------------------------------------------------------------- a tiny run


def test_tiny_em_run_improves_the_policy(generator):
    config = EMConfig(episodes_per_iteration=32, estep_epochs=20, lr=3e-3, max_kl=0.5, seed=0)
    trainer = EMTrainer(generator, "hockey", config)
    try:
        goals = evaluation_goals(trainer.task, 24)
        before = trainer.evaluate(goals)
        rows = [trainer.iterate()[0] for _ in range(6)]
        after = trainer.evaluate(goals)
    finally:
        trainer.close()
    assert [r["episodes"] for r in rows] == [32 * (i + 1) for i in range(6)]
    assert after["median_distance_m"] < 0.7 * before["median_distance_m"]
    assert np.mean([r["reward_mean"] for r in rows[-2:]]) > rows[0]["reward_mean"]
    assert all(r["kl"] <= 0.5 for r in rows)


# ----------------------------------------------------------------------------- warm start


@pytest.fixture(scope="module")
def shot_dataset(shots) -> TrajectoryDataset:
    return make_shot_dataset(shots)


def make_shot_dataset(shots: np.ndarray) -> TrajectoryDataset:
    """The 25 shots as simulated demonstrations: goal = where the puck ended, except 5 goals
    moved 0.3 m away (missed) and one shot marked unsafe (a blade-table contact)."""
    task = make_task("hockey")
    with BatchExecutor(task) as executor:
        outcome = executor.execute(shots, np.zeros((len(shots), 2)))
    goals = outcome.final_object_pos[:, :2].copy()
    goals[::5, 0] += 0.3
    distance = np.linalg.norm(outcome.final_object_pos[:, :2] - goals, axis=1)
    contacts = np.zeros((len(shots), len(task.contact_classes)), np.int32)
    contacts[1, [c.name for c in task.contact_classes].index("blade_table")] = 3
    return TrajectoryDataset(
        task="hockey", horizon=task.horizon, control_dt_s=task.control_dt_s,
        joint_names=task.joint_names, trajectories=shots, goals_xy=goals,
        final_object_pos=outcome.final_object_pos, rewards=-distance, distance_m=distance,
        contact_steps=contacts, contact_classes=tuple(c.name for c in task.contact_classes),
        unsafe_classes=tuple(c.name for c in task.contact_classes if c.unsafe),
        joint_limit_violation_steps=np.zeros(len(shots), np.int32),
        is_expert=np.ones(len(shots), bool),
    )


def test_warm_start_fits_the_policy_to_the_demonstrations_that_reached_their_goal(
    generator, shot_dataset
):
    pairs = demonstration_pairs(generator, shot_dataset, 0.005)
    assert len(pairs) == 25 - 5 - 1  # neither the missed goals nor the unsafe shot
    keep = np.ones(25, bool)
    keep[::5] = False
    keep[1] = False
    np.testing.assert_allclose(pairs.goals_xy, shot_dataset.goals_xy[keep])
    np.testing.assert_allclose(
        pairs.latents, generator.infer_latent(shot_dataset.trajectories[keep]).numpy(), atol=1e-6
    )
    config = EMConfig(seed=0, warm_start_epochs=400, warm_start_std=0.3)
    trainer = EMTrainer(generator, "hockey", config)
    try:
        goals = pairs.goals_xy.astype(np.float64)
        before = trainer.evaluate(goals)
        stats = warm_start(trainer, pairs)
        after = trainer.evaluate(goals)
        with torch.no_grad():
            mean, std = trainer.policy(torch.as_tensor(pairs.goals_xy))
        assert trainer.iteration == 0 and trainer.episodes == 0
        with pytest.raises(ValueError, match="comes before EM"):
            trainer.iterate()
            warm_start(trainer, pairs)
    finally:
        trainer.close()
    assert stats["pairs"] == 19 and max(stats["fit_rms_residual"]) < 0.15
    np.testing.assert_allclose(mean.numpy(), pairs.latents, atol=0.4)
    torch.testing.assert_close(std, torch.full_like(std, 0.3))
    # the 2-D generator only approximates the shots, yet their goals are reached far better
    assert after["median_distance_m"] < 0.5 * before["median_distance_m"]
    # a dataset of another task is refused
    other = TrajectoryDataset(**{**shot_dataset.__dict__, "task": "basketball"})
    with pytest.raises(ValueError, match="does not fit the generator"):
        demonstration_pairs(generator, other, 0.005)
    missed = TrajectoryDataset(**{**shot_dataset.__dict__,
                                  "distance_m": shot_dataset.distance_m + 0.3})
    with pytest.raises(ValueError, match="none of the 25 demonstrations is safe and ended "
                                         "within 0.005 m"):
        demonstration_pairs(generator, missed, 0.005)


def test_warm_start_of_the_camera_policy_distils_the_fitted_goal_policy(generator, shot_dataset):
    pairs = demonstration_pairs(generator, shot_dataset, 0.005)
    config = EMConfig(seed=0, warm_start_epochs=400, warm_start_distill_steps=600)
    trainer = EMTrainer(generator, "hockey", config, observation="image")
    try:
        before = trainer.policy(trainer.observe(pairs.goals_xy.astype(np.float64))[0])
        stats = warm_start(trainer, pairs)
        observation, _ = trainer.observe(pairs.goals_xy.astype(np.float64))
        with torch.no_grad():
            image_mean, image_std = trainer.policy(observation)
            goal_mean, _ = trainer.q(torch.as_tensor(pairs.goals_xy))
    finally:
        trainer.close()
    # the camera policy follows the goal-conditioned fit on the demonstrations' scenes
    assert stats["distill_kl"] < 0.5
    error = (image_mean - goal_mean).abs().mean()
    assert float(error) < 0.3 * float((before[0].detach() - goal_mean).abs().mean())
    torch.testing.assert_close(image_std.mean(), torch.tensor(0.25), atol=0.05, rtol=0)


# ----------------------------------------------------------------------------- run directory


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_resume_reproduces_the_uninterrupted_run(generator, tmp_path):
    config = EMConfig(episodes_per_iteration=8, estep_epochs=3, value_epochs=5, eval_goals=4)
    kwargs = dict(iterations=3, config=config, model_info={"model_sha256": "x"}, export_onnx=None)
    full = train_em(generator, "hockey", tmp_path / "full", **kwargs)
    assert full["complete"] and full["episodes"] == 24 and full["iterations"] == 3
    for key in ("median_distance_m", "success_rate", "episodes", "table_contact_steps"):
        assert key in full

    run = tmp_path / "killed"
    partial = train_em(generator, "hockey", run, stop_after=2, **kwargs)
    assert partial == {"complete": False, "iterations": 2, "episodes": 16}
    # a kill after the episode log was appended but before the checkpoint was written:
    # rows of a third iteration and a half-written line
    with open(run / EPISODES_FILE, "a") as handle:
        handle.write("16,3,1.0,0.0,-0.5,0.5,1,0,0,0.1,0.2\n17,3,1.0")
    with pytest.raises(FileExistsError, match="--resume"):
        train_em(generator, "hockey", run, **kwargs)
    resumed = train_em(generator, "hockey", run, resume=True, **kwargs)
    assert resumed["iterations"] == 3 and resumed["episodes"] == 24

    policy_full, info = load_policy(tmp_path / "full" / "policy.pt")
    policy_resumed, _ = load_policy(run / "policy.pt")
    assert info["episodes"] == 24
    for key, value in policy_full.state_dict().items():
        assert torch.equal(policy_resumed.state_dict()[key], value), key
    assert (run / EPISODES_FILE).read_text() == (tmp_path / "full" / EPISODES_FILE).read_text()
    episodes = _read_csv(run / EPISODES_FILE)
    assert [int(r["episode"]) for r in episodes] == list(range(24))  # no gaps, no duplicates
    curve = _read_csv(run / CURVE_FILE)
    curve_full = _read_csv(tmp_path / "full" / CURVE_FILE)
    assert [int(r["iteration"]) for r in curve] == [1, 2, 3]
    for a, b in zip(curve, curve_full):
        assert {k: v for k, v in a.items() if k != "seconds"} == {
            k: v for k, v in b.items() if k != "seconds"}
    evaluation = json.loads((run / "eval.json").read_text())
    assert evaluation == json.loads((tmp_path / "full" / "eval.json").read_text())
    assert (run / "curve.png").stat().st_size > 1000
    # one row per held-out goal, in the order of the goals, agreeing with eval.json
    per_goal = _read_csv(run / EVAL_GOALS_FILE)
    goals = evaluation_goals(make_task("hockey"), evaluation["n_goals"])
    assert len(per_goal) == evaluation["n_goals"]
    np.testing.assert_allclose([[float(r["goal_x_m"]), float(r["goal_y_m"])] for r in per_goal],
                               goals, atol=1e-6)
    distance = [float(r["distance_m"]) if r["executed"] == "1" else np.inf for r in per_goal]
    assert np.median(distance) == pytest.approx(evaluation["median_distance_m"], abs=1e-6)
    assert sum(int(r["table_contact_steps"]) for r in per_goal) == evaluation["table_contact_steps"]

    # resuming with other settings is refused; more iterations are allowed
    with pytest.raises(ValueError, match="max_kl"):
        train_em(generator, "hockey", run, resume=True,
                 **{**kwargs, "config": EMConfig(**{**config.to_json(), "max_kl": 0.3})})
    with pytest.raises(ValueError, match="generator"):
        train_em(generator, "hockey", run, resume=True, **{**kwargs, "model_info": {"model_sha256": "y"}})
    longer = train_em(generator, "hockey", run, resume=True, **{**kwargs, "iterations": 4})
    assert longer["episodes"] == 32


# ----------------------------------------------------------------------------- the command


def _tiny_vae_checkpoint(path: Path, shots: np.ndarray) -> Path:
    from genrl_ros.models.checkpoint import save_checkpoint
    from genrl_ros.models.vae import BetaVAE

    torch.manual_seed(0)
    model = BetaVAE(latent_dim=2, horizon=shots.shape[1], joint_names=JOINT_NAMES,
                    control_dt_s=0.04, task="hockey", beta=0.001)
    model.set_normalization(shots)
    with torch.no_grad():  # outputs within a tenth of the data's spread around its mean
        model.decoder[-1].weight.mul_(0.1)
        model.decoder[-1].bias.zero_()
    model.eval()
    return save_checkpoint(path, model)


def test_train_policy_command(shots, tmp_path, capsys):
    model = _tiny_vae_checkpoint(tmp_path / "vae" / "best.pt", shots)
    out = tmp_path / "policy"
    argv = ["train-policy", "--task", "hockey", "--model", str(model.parent), "--iterations", "2",
            "--episodes-per-iteration", "4", "--eval-goals", "4", "--out", str(out),
            "--no-onnx", "--no-progress", "--json"]
    assert cli.main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["command"] == "train-policy"
    assert summary["episodes"] == 8 and summary["iterations"] == 2
    assert summary["eval_goals"] == 4 and summary["table_contact_steps"] >= 0
    assert set(summary) >= {"median_distance_m", "success_rate", "episodes", "table_contact_steps"}
    assert len(_read_csv(out / EPISODES_FILE)) == 8
    run = json.loads((out / "run.json").read_text())
    assert run["model"]["kind"] == "vae" and run["model"]["model_sha256"]
    # an existing run needs --resume or --overwrite; a model of another task is refused
    assert cli.main(argv) == 2
    assert "--resume" in capsys.readouterr().err
    assert cli.main([*argv[:2], "basketball", *argv[3:-5], "--out", str(tmp_path / "b")]) == 2
    assert "does not match" in capsys.readouterr().err

    # the latent search around the trained policy: never worse than the policy's own latents
    from genrl_ros.em import latent_search

    found = latent_search.main([
        "--policy", str(out / "policy.pt"), "--model", str(model.parent), "--goals", "4",
        "--iterations", "2", "--population", "6", "--elites", "2", "--out", str(tmp_path / "ls"),
    ])
    rows = _read_csv(tmp_path / "ls" / "latent_search.csv")
    assert len(rows) == 4 and found["episodes"] == 4 * (1 + 2 * 6)
    assert all(float(r["search_distance_m"]) <= float(r["policy_distance_m"]) for r in rows)
    assert json.loads((tmp_path / "ls" / "latent_search.json").read_text())["goals"] == 4


def test_latent_search_finds_better_latents_than_the_start():
    from genrl_ros.em.latent_search import LatentSearchConfig, search_latents

    goals = np.random.default_rng(0).uniform(-1, 1, size=(20, 2))
    target = np.concatenate([goals, goals[:, :1] ** 2], axis=1)  # the best latent per goal
    calls = []

    def distance_of(goal_xy, latents):
        calls.append(len(goal_xy))
        distance = np.linalg.norm(latents - np.concatenate([goal_xy, goal_xy[:, :1] ** 2], 1), axis=1)
        return np.where(latents[:, 0] > 1.5, np.inf, distance)  # a refused region

    config = LatentSearchConfig(iterations=5, population=32, elites=8, init_std=0.5)
    found = search_latents(np.zeros((20, 3)), goals, distance_of, config)
    assert calls == [20] + [20 * 32] * 5
    np.testing.assert_allclose(found["start_distance_m"], np.linalg.norm(target, axis=1), rtol=1e-5)
    assert (found["best_distance_m"] <= found["start_distance_m"]).all()
    assert np.median(found["best_distance_m"]) < 0.3 * np.median(found["start_distance_m"])
    assert np.all(np.diff(found["median_by_iteration"]) <= 0)
    with pytest.raises(ValueError, match="elites"):
        LatentSearchConfig(population=4, elites=5)


def test_train_policy_command_with_a_warm_start(shots, shot_dataset, tmp_path, capsys):
    model = _tiny_vae_checkpoint(tmp_path / "vae" / "best.pt", shots)
    shot_dataset.save(tmp_path / "demos")
    out = tmp_path / "policy"
    argv = ["train-policy", "--task", "hockey", "--model", str(model.parent), "--iterations", "1",
            "--episodes-per-iteration", "4", "--eval-goals", "4", "--out", str(out),
            "--no-onnx", "--no-progress", "--json", "--warm-start", str(tmp_path / "demos"),
            "--warm-start-std", "0.2"]
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert "warm start from 19 of 25 demonstrations" in captured.err
    assert summary["warm_start"]["pairs"] == 19 and summary["warm_start"]["std"] == 0.2
    assert summary["warm_start"]["max_distance_m"] == 0.005  # a tenth of the success radius
    assert 0 <= summary["warm_start"]["eval_success_rate"] <= 1
    assert json.loads((out / "warm_start.json").read_text())["pairs"] == 19
    run = json.loads((out / "run.json").read_text())
    assert run["warm_start"]["pairs"] == 19 and len(run["warm_start"]["pairs_sha256"]) == 64
    # resuming it without the warm start (or from other demonstrations) is refused
    more = [*argv[:6], "2", *argv[7:-4], "--resume"]
    assert cli.main(more) == 2
    assert "cannot resume" in capsys.readouterr().err
    assert cli.main([*more, "--warm-start", str(tmp_path / "demos"), "--warm-start-std", "0.2"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["iterations"] == 2
    # a missing dataset is named
    assert cli.main([*argv[:-4], "--warm-start", str(tmp_path / "nothing"), "--overwrite"]) == 2
    assert "no dataset at" in capsys.readouterr().err


@pytest.mark.slow
def test_sigkill_and_resume_ends_like_an_uninterrupted_run(shots, tmp_path):
    """A ``genrl train-policy`` process killed with SIGKILL mid-run, then resumed, ends with
    the iterations, episode log and policy of an uninterrupted run."""
    model = _tiny_vae_checkpoint(tmp_path / "vae" / "best.pt", shots)
    exe = [sys.executable, "-m", "genrl_ros.cli"]

    def argv(out: Path, *extra: str) -> list[str]:
        return [*exe, "train-policy", "--task", "hockey", "--model", str(model), "--iterations", "8",
                "--episodes-per-iteration", "8", "--eval-goals", "8", "--out", str(out),
                "--no-onnx", "--no-progress", "--json", *extra]

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    full = subprocess.run(argv(tmp_path / "full"), capture_output=True, text=True, env=env, timeout=600)
    assert full.returncode == 0, full.stderr
    killed = tmp_path / "killed"
    process = subprocess.Popen(argv(killed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 300
    while time.time() < deadline:
        log = killed / EPISODES_FILE
        if (killed / LAST_FILE).exists() and log.exists() and log.read_text().count("\n") > 3 * 8:
            break
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (killed / "summary.json").exists()
    resumed = subprocess.run(argv(killed, "--resume"), capture_output=True, text=True, env=env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    a = json.loads(full.stdout.strip().splitlines()[-1])
    b = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert b["iterations"] == a["iterations"] == 8 and b["episodes"] == a["episodes"] == 64
    assert b["median_distance_m"] == a["median_distance_m"]
    assert (killed / EPISODES_FILE).read_text() == (tmp_path / "full" / EPISODES_FILE).read_text()
    assert [int(r["iteration"]) for r in _read_csv(killed / CURVE_FILE)] == list(range(1, 9))
    p_full, _ = load_policy(tmp_path / "full" / "policy.pt")
    p_killed, _ = load_policy(killed / "policy.pt")
    for key, value in p_full.state_dict().items():
        assert torch.equal(p_killed.state_dict()[key], value), key
