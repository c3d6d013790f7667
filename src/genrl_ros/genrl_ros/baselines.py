"""PPO and SAC baselines (stable-baselines3) on the per-step environment, given the same
demonstrations as the generative model (GenRL, seed 000, section 6.4).

- The demonstrations (trajectories of joint position commands + goals) are replayed through
  :class:`sim_bridge.envs.StepEnv` to get what a per-step agent sees: per control step the
  observation (goal xy, measured joint positions and velocities), the action (the command
  difference, scaled to [-1, 1]), the next observation, the (terminal) reward and ``done``
  (:func:`replay_demonstrations`, :class:`DemonstrationTransitions`).
- PPO: its policy is pre-trained by behaviour cloning on the (observation, action) pairs
  (mean action by least squares, the value head on the demonstrations' discounted returns),
  then trained with PPO (:func:`make_ppo`, :func:`behaviour_clone`).
- SAC: its replay buffer holds every demonstration transition with its reward before the
  first environment step (:func:`make_sac`, :func:`prefill_replay_buffer`).
- Both act in :func:`make_step_env`: the StepEnv with actions rescaled to [-1, 1] (1 = the
  joint velocity limit x control_dt_s), because a unit-variance Gaussian on the raw +-0.09 rad
  box would be clipped to bang-bang actions.
- :class:`EpisodeLogCallback` logs every training episode (reward, final distance,
  table-contact steps) and stops training after the episode budget.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.callbacks import BaseCallback

from sim_bridge.envs import StepEnv
from sim_bridge.tasks import make_task
from sim_bridge.tasks.base import Task

METHODS = ("ppo", "sac")


# --------------------------------------------------------------------------- settings


@dataclass
class PPOBaselineConfig:
    """PPO pre-trained by behaviour cloning (SB3 defaults unless stated; episodes of the
    hockey task are 69 control steps, the reward is terminal)."""

    #: episodes per PPO rollout (n_steps = this x horizon): 16 x 69 = 1104 steps per update
    episodes_per_rollout: int = 16
    #: PPO minibatch size (steps); 1104 / 138 = 8 minibatches per epoch
    batch_size: int = 138
    #: PPO epochs per rollout
    n_epochs: int = 10
    #: Adam learning rate of PPO (SB3 default)
    learning_rate: float = 3e-4
    #: discount per control step (0.99^68 = 0.5: the terminal reward still reaches step 0)
    gamma: float = 0.99
    #: GAE lambda (SB3 default)
    gae_lambda: float = 0.95
    #: PPO clip range (SB3 default)
    clip_range: float = 0.2
    #: entropy bonus (SB3 default 0)
    ent_coef: float = 0.0
    #: hidden widths of the policy and value MLPs (SB3 default 64, 64)
    hidden_sizes: tuple[int, ...] = (64, 64)
    #: std of the Gaussian policy after behaviour cloning, in scaled action units (1 = the
    #: velocity limit): 0.1 explores ~0.009 rad per step around the cloned action; cloning
    #: only fits the mean, a fitted std would collapse to the demonstrations' tiny residual
    init_std: float = 0.1
    #: behaviour-cloning epochs over the demonstration pairs (0 = no pre-training)
    bc_epochs: int = 20
    #: behaviour-cloning minibatch (pairs)
    bc_batch_size: int = 1024
    #: behaviour-cloning Adam learning rate
    bc_lr: float = 1e-3
    #: also fit the value head to the demonstrations' discounted returns, so that the first
    #: PPO updates do not start from a value function that knows nothing
    bc_value: bool = True

    def __post_init__(self) -> None:
        self.hidden_sizes = tuple(int(h) for h in self.hidden_sizes)
        _check_positive(self, "episodes_per_rollout", "batch_size", "n_epochs", "bc_batch_size")
        _check_non_negative(self, "bc_epochs")
        _check_positive_float(self, "learning_rate", "gamma", "gae_lambda", "clip_range",
                              "init_std", "bc_lr")


@dataclass
class SACBaselineConfig:
    """SAC with the demonstration transitions in its replay buffer (SB3 defaults unless
    stated)."""

    #: Adam learning rate of actor, critics and temperature (SB3 default)
    learning_rate: float = 3e-4
    #: transitions sampled per gradient step (SB3 default)
    batch_size: int = 256
    #: gradient steps per environment step (SB3 default: 1, with train_freq 1)
    gradient_steps: int = 1
    #: environment steps before the first gradient step (SB3 default 100; the prefilled
    #: demonstrations are already in the buffer, so learning starts early)
    learning_starts: int = 100
    #: discount per control step
    gamma: float = 0.99
    #: target network averaging (SB3 default)
    tau: float = 0.005
    #: hidden widths of actor and critics: 64, 64 like PPO's (SB3 default) and GenRL's
    #: policy; SB3's SAC default 256, 256 costs ~2.6x more CPU per gradient step (measured
    #: 3.5 vs 1.35 s per 69-step episode on the shared 2-core machine), too much for the
    #: 3 x 640-episode comparison
    hidden_sizes: tuple[int, ...] = (64, 64)
    #: replay capacity beyond the demonstrations (transitions); None = the whole budget,
    #: so no demonstration is ever overwritten
    extra_buffer_size: int | None = None
    #: put the demonstrations into the replay buffer before learning (section 6.4)
    prefill_demonstrations: bool = True

    def __post_init__(self) -> None:
        self.hidden_sizes = tuple(int(h) for h in self.hidden_sizes)
        _check_positive(self, "batch_size", "gradient_steps")
        _check_non_negative(self, "learning_starts")
        _check_positive_float(self, "learning_rate", "gamma", "tau")
        if self.extra_buffer_size is not None:
            _check_positive(self, "extra_buffer_size")


def _check_positive(config: Any, *names: str) -> None:
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_non_negative(config: Any, *names: str) -> None:
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be an integer >= 0, got {value!r}")


def _check_positive_float(config: Any, *names: str) -> None:
    for name in names:
        value = getattr(config, name)
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


# --------------------------------------------------------------------------- environment


def make_step_env(task: Task | str) -> gym.Env:
    """The per-step environment with actions in [-1, 1] (x velocity limit x control_dt_s)."""
    env = StepEnv(task)
    ones = np.ones(env.action_space.shape, dtype=np.float32)
    return gym.wrappers.RescaleAction(env, -ones, ones)


def scale_actions(delta_rad: np.ndarray, env: gym.Env) -> np.ndarray:
    """Command differences (..., 7) rad -> the [-1, 1] actions of :func:`make_step_env`."""
    space = env.unwrapped.action_space
    low, high = space.low.astype(np.float64), space.high.astype(np.float64)
    return (2.0 * (np.asarray(delta_rad, dtype=np.float64) - low) / (high - low) - 1.0).astype(
        np.float32
    )


def table_contact_steps_of(outcome: dict[str, Any]) -> int:
    """Safety measure of one StepEnv episode outcome, as the EM trainer counts it:
    ``blade_table`` control steps (hockey), else the steps with an unsafe contact."""
    contacts = outcome["contact_steps"]
    if "blade_table" in contacts:
        return int(contacts["blade_table"])
    return int(outcome["unsafe_contact_steps"])


# --------------------------------------------------------------------------- demonstrations


@dataclass
class DemonstrationTransitions:
    """Per-step transitions of N demonstrations of horizon T (M = N x T rows, episode-major).

    Actions are in the scaled [-1, 1] units of :func:`make_step_env`.
    """

    observations: np.ndarray  #: (M, 16) float32: goal xy (m), joint positions (rad), velocities (rad/s)
    actions: np.ndarray  #: (M, 7) float32, scaled command differences
    next_observations: np.ndarray  #: (M, 16) float32
    rewards: np.ndarray  #: (M,) float32, 0 except at the last step of an episode
    dones: np.ndarray  #: (M,) bool, True at the last step of an episode
    horizon: int
    table_contact_steps: np.ndarray  #: (N,) per replayed episode
    distance_m: np.ndarray  #: (N,) final distance of each replayed episode

    @property
    def n_episodes(self) -> int:
        return int(self.rewards.shape[0] // self.horizon)

    def discounted_returns(self, gamma: float) -> np.ndarray:
        """(M,) float32: gamma^(steps to the end) x terminal reward, per row."""
        terminal = self.rewards.reshape(-1, self.horizon)[:, -1:]
        to_go = np.arange(self.horizon - 1, -1, -1)[None, :]
        return (terminal * gamma ** to_go).reshape(-1).astype(np.float32)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, **{k: np.asarray(v) for k, v in asdict(self).items()})
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> DemonstrationTransitions:
        with np.load(path) as data:
            values = {k: data[k] for k in data.files}
        values["horizon"] = int(values["horizon"])
        return cls(**values)


def replay_demonstrations(
    task: Task | str,
    trajectories: np.ndarray,
    goals_xy: np.ndarray,
    progress: bool = False,
) -> DemonstrationTransitions:
    """Replay demonstrations through the per-step environment.

    :param trajectories: (N, T, 7) joint position commands (rad), T = the task's horizon.
    :param goals_xy: (N, 2) goal of each demonstration (m).
    The action of step t is ``command[t] - command[t-1]`` (``command[-1]`` = the start pose),
    so the replay executes exactly the demonstration; the rewards and contacts are those of
    the replay (the same physics as the batched executor).
    """
    task = make_task(task) if isinstance(task, str) else task
    trajectories = np.asarray(trajectories, dtype=np.float64)
    goals_xy = np.asarray(goals_xy, dtype=np.float64)
    n, horizon = trajectories.shape[:2]
    if trajectories.shape[1:] != (task.horizon, task.n_joints):
        raise ValueError(
            f"trajectories must have shape (N, {task.horizon}, {task.n_joints}) for "
            f"{task.name}, got {trajectories.shape}"
        )
    if goals_xy.shape != (n, 2):
        raise ValueError(f"goals_xy must have shape ({n}, 2), got {goals_xy.shape}")
    env = make_step_env(task)
    start = np.broadcast_to(task.start_rad, (n, 1, task.n_joints))
    deltas = np.diff(np.concatenate([start, trajectories], axis=1), axis=1)
    actions = scale_actions(deltas, env)
    if np.abs(actions).max(initial=0.0) > 1.0:
        raise ValueError(
            "a demonstration is faster than the joint velocity limits: scaled action "
            f"{np.abs(actions).max():.3f} > 1"
        )
    obs_dim = env.observation_space.shape[0]
    observations = np.zeros((n, horizon + 1, obs_dim), dtype=np.float32)
    rewards = np.zeros((n, horizon), dtype=np.float32)
    contacts = np.zeros(n, dtype=np.int64)
    distance = np.zeros(n, dtype=np.float64)
    episodes = range(n)
    if progress:
        from tqdm.auto import tqdm  # noqa: PLC0415

        episodes = tqdm(episodes, desc=f"replaying {task.name} demonstrations", unit="ep")
    try:
        for i in episodes:
            observations[i, 0], _ = env.reset(options={"goal": goals_xy[i]})
            for t in range(horizon):
                observations[i, t + 1], reward, _, _, info = env.step(actions[i, t])
            rewards[i, -1] = reward
            contacts[i] = table_contact_steps_of(info["outcome"])
            distance[i] = info["outcome"]["distance_m"]
    finally:
        env.close()
    dones = np.zeros((n, horizon), dtype=bool)
    dones[:, -1] = True
    return DemonstrationTransitions(
        observations=observations[:, :-1].reshape(n * horizon, obs_dim),
        actions=actions.reshape(n * horizon, -1),
        next_observations=observations[:, 1:].reshape(n * horizon, obs_dim),
        rewards=rewards.reshape(-1),
        dones=dones.reshape(-1),
        horizon=int(horizon),
        table_contact_steps=contacts,
        distance_m=distance,
    )


# --------------------------------------------------------------------------- logging


@dataclass
class EpisodeLog:
    """Per training episode: reward, final distance (m), table-contact steps."""

    rewards: list[float] = field(default_factory=list)
    distance_m: list[float] = field(default_factory=list)
    table_contact_steps: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rewards)

    def rows(self) -> list[dict[str, Any]]:
        return [
            {"episode": i, "reward": r, "distance_m": d, "table_contact_steps": c}
            for i, (r, d, c) in enumerate(
                zip(self.rewards, self.distance_m, self.table_contact_steps)
            )
        ]


class EpisodeLogCallback(BaseCallback):
    """Logs every finished training episode from the StepEnv's final ``info["outcome"]`` and
    stops training once ``budget_episodes`` episodes are done."""

    def __init__(self, budget_episodes: int, progress: bool = False, desc: str = "") -> None:
        super().__init__()
        self.budget_episodes = int(budget_episodes)
        self.log = EpisodeLog()
        self._progress = progress
        self._desc = desc
        self._bar: Any = None

    def _on_training_start(self) -> None:
        if self._progress:
            from tqdm.auto import tqdm  # noqa: PLC0415

            self._bar = tqdm(total=self.budget_episodes, unit="ep", desc=self._desc)

    def _on_step(self) -> bool:
        for info, done in zip(self.locals["infos"], self.locals["dones"]):
            if not done or len(self.log) >= self.budget_episodes:
                continue
            outcome = info["outcome"]
            self.log.rewards.append(float(outcome["reward"]))
            self.log.distance_m.append(float(outcome["distance_m"]))
            self.log.table_contact_steps.append(table_contact_steps_of(outcome))
            if self._bar is not None:
                recent = self.log.rewards[-16:]
                self._bar.update(1)
                self._bar.set_postfix(reward=f"{np.mean(recent):.3f}",
                                      contacts=self.log.table_contact_steps[-1])
        return len(self.log) < self.budget_episodes

    def _on_training_end(self) -> None:
        if self._bar is not None:
            self._bar.close()


# --------------------------------------------------------------------------- PPO


def make_ppo(task: Task | str, config: PPOBaselineConfig, seed: int) -> PPO:
    """SB3 PPO on the scaled per-step environment (CPU, policy std = ``init_std``)."""
    env = make_step_env(task)
    horizon = env.unwrapped.task.horizon
    return PPO(
        "MlpPolicy",
        env,
        n_steps=config.episodes_per_rollout * horizon,
        batch_size=config.batch_size,
        n_epochs=config.n_epochs,
        learning_rate=config.learning_rate,
        gamma=config.gamma,
        gae_lambda=config.gae_lambda,
        clip_range=config.clip_range,
        ent_coef=config.ent_coef,
        policy_kwargs={
            "net_arch": {"pi": list(config.hidden_sizes), "vf": list(config.hidden_sizes)},
            "log_std_init": math.log(config.init_std),
        },
        seed=seed,
        device="cpu",
        verbose=0,
    )


def bc_loss(model: PPO, demos: DemonstrationTransitions) -> float:
    """Mean squared error between PPO's mean action and the demonstration actions (scaled
    units), over all pairs."""
    policy = model.policy
    with torch.no_grad():
        obs = torch.as_tensor(demos.observations)
        mean = policy.get_distribution(obs).distribution.mean
        return float(((mean - torch.as_tensor(demos.actions)) ** 2).mean())


def behaviour_clone(
    model: PPO,
    demos: DemonstrationTransitions,
    config: PPOBaselineConfig,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, float]:
    """Pre-train PPO's policy on the demonstrations: the mean action by least squares on the
    (observation, action) pairs (goal-conditioned: the goal is in the observation), the value
    head on the discounted returns when ``config.bc_value``. The log std is left at
    ``init_std``. Returns the BC loss before and after, and the value loss after."""
    policy = model.policy
    policy.set_training_mode(True)
    generator = torch.Generator().manual_seed(seed)
    obs = torch.as_tensor(demos.observations)
    actions = torch.as_tensor(demos.actions)
    returns = torch.as_tensor(demos.discounted_returns(config.gamma))
    parameters = [p for name, p in policy.named_parameters() if name != "log_std"]
    optimizer = torch.optim.Adam(parameters, lr=config.bc_lr)
    before = bc_loss(model, demos)
    epochs = range(config.bc_epochs)
    if progress:
        from tqdm.auto import tqdm  # noqa: PLC0415

        epochs = tqdm(epochs, desc="behaviour cloning", unit="epoch")
    value_loss = math.nan
    for _ in epochs:
        order = torch.randperm(obs.shape[0], generator=generator)
        for begin in range(0, obs.shape[0], config.bc_batch_size):
            index = order[begin:begin + config.bc_batch_size]
            mean = policy.get_distribution(obs[index]).distribution.mean
            loss = ((mean - actions[index]) ** 2).mean()
            if config.bc_value:
                value = policy.predict_values(obs[index]).squeeze(-1)
                value_term = ((value - returns[index]) ** 2).mean()
                loss = loss + value_term
                value_loss = float(value_term.detach())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    policy.set_training_mode(False)
    return {"bc_loss_before": before, "bc_loss_after": bc_loss(model, demos),
            "value_loss_after": value_loss}


# --------------------------------------------------------------------------- SAC


def make_sac(
    task: Task | str, config: SACBaselineConfig, seed: int, budget_steps: int,
    demo_steps: int = 0,
) -> SAC:
    """SB3 SAC on the scaled per-step environment, with room in its replay buffer for
    ``demo_steps`` demonstration transitions plus the training budget."""
    extra = config.extra_buffer_size if config.extra_buffer_size is not None else budget_steps
    return SAC(
        "MlpPolicy",
        make_step_env(task),
        learning_rate=config.learning_rate,
        buffer_size=int(demo_steps + extra + 1),
        learning_starts=config.learning_starts,
        batch_size=config.batch_size,
        tau=config.tau,
        gamma=config.gamma,
        train_freq=1,
        gradient_steps=config.gradient_steps,
        policy_kwargs={"net_arch": list(config.hidden_sizes)},
        seed=seed,
        device="cpu",
        verbose=0,
    )


def prefill_replay_buffer(model: SAC, demos: DemonstrationTransitions) -> int:
    """Add every demonstration transition (obs, next obs, scaled action, reward, done) to
    SAC's replay buffer; returns the buffer size after."""
    buffer = model.replay_buffer
    if buffer.buffer_size < demos.rewards.shape[0]:
        raise ValueError(
            f"replay buffer of {buffer.buffer_size} transitions cannot hold the "
            f"{demos.rewards.shape[0]} demonstration transitions"
        )
    for i in range(demos.rewards.shape[0]):
        buffer.add(
            demos.observations[i][None], demos.next_observations[i][None],
            demos.actions[i][None], demos.rewards[i:i + 1], demos.dones[i:i + 1], [{}],
        )
    return buffer.size()


# --------------------------------------------------------------------------- training runs


def evaluate_policy_episodes(
    model: PPO | SAC, task: Task | str, goals_xy: np.ndarray
) -> dict[str, Any]:
    """The deterministic policy (mean action) on the given goals (n, 2): median / mean
    distance (m), mean reward, total table-contact steps."""
    env = make_step_env(task)
    distances, rewards, contacts = [], [], []
    try:
        for goal in np.asarray(goals_xy, dtype=np.float64):
            obs, _ = env.reset(options={"goal": goal})
            done = False
            while not done:
                action, _ = model.predict(obs, deterministic=True)
                obs, reward, done, _, info = env.step(action)
            distances.append(info["outcome"]["distance_m"])
            rewards.append(reward)
            contacts.append(table_contact_steps_of(info["outcome"]))
    finally:
        env.close()
    distance = np.asarray(distances)
    return {
        "n_goals": int(distance.size),
        "median_distance_m": float(np.median(distance)),
        "mean_distance_m": float(distance.mean()),
        "mean_reward": float(np.mean(rewards)),
        "table_contact_steps": int(np.sum(contacts)),
        "deterministic": True,
    }


def train_baseline(
    method: str,
    task: Task | str,
    demos: DemonstrationTransitions | None,
    episodes: int,
    seed: int,
    *,
    ppo_config: PPOBaselineConfig | None = None,
    sac_config: SACBaselineConfig | None = None,
    eval_goals: np.ndarray | None = None,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Pre-train (BC for PPO, replay prefill for SAC) then train ``method`` for ``episodes``
    training episodes with seed ``seed``.

    :returns: ``log`` (:class:`EpisodeLog` of the training episodes), ``pretraining`` (BC
        losses / buffer size), ``eval`` (deterministic policy on ``eval_goals``, if given),
        ``seconds`` and the ``model``.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"episodes must be a positive integer, got {episodes!r}")
    task = make_task(task) if isinstance(task, str) else task
    say = log or (lambda message: None)
    started = time.perf_counter()
    budget_steps = episodes * task.horizon
    pretraining: dict[str, Any] = {}
    if method == "ppo":
        config = ppo_config or PPOBaselineConfig()
        model: PPO | SAC = make_ppo(task, config, seed)
        if demos is not None and config.bc_epochs > 0:
            pretraining = behaviour_clone(model, demos, config, seed=seed, progress=progress)
            say(f"PPO seed {seed}: BC loss {pretraining['bc_loss_before']:.4f} -> "
                f"{pretraining['bc_loss_after']:.4f}")
    else:
        config = sac_config or SACBaselineConfig()
        use_demos = demos is not None and config.prefill_demonstrations
        demo_steps = int(demos.rewards.shape[0]) if use_demos else 0
        model = make_sac(task, config, seed, budget_steps, demo_steps)
        if use_demos:
            pretraining = {"replay_buffer_demonstrations": prefill_replay_buffer(model, demos)}
            say(f"SAC seed {seed}: {demo_steps} demonstration transitions in the replay buffer")
    pretrain_seconds = time.perf_counter() - started
    callback = EpisodeLogCallback(episodes, progress=progress,
                                  desc=f"{method.upper()} {task.name} seed {seed}")
    # A little more than the budget: the callback stops at exactly ``episodes`` episodes.
    model.learn(total_timesteps=budget_steps + task.horizon, callback=callback)
    result: dict[str, Any] = {
        "method": method,
        "seed": seed,
        "log": callback.log,
        "pretraining": pretraining,
        "config": asdict(config),
        "pretrain_seconds": round(pretrain_seconds, 2),
        "model": model,
    }
    if eval_goals is not None:
        result["eval"] = evaluate_policy_episodes(model, task, eval_goals)
    result["seconds"] = round(time.perf_counter() - started, 2)
    return result
