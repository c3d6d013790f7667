"""EM policy training: GenRL's Algorithm 1 (seed 000, section 4), readable top to bottom.

Every iteration (:meth:`EMTrainer.iterate`):

1. sample N initial states s_i ~ p(s0) (goals; for the image policy also their camera images);
2. sample latent actions alpha_i ~ pi_theta(. | s_i): always from pi_theta, never from q_phi;
3. generate trajectories tau_i = g(alpha_i) with the (frozen) generative model;
4. execute them and get the terminal rewards r_i; a trajectory the executor rejects (joint
   position / velocity limits) is not executed and gets ``invalid_reward`` (counted as
   ``invalid`` in the logs);
5. E-step (Eq. 5): q_phi starts from pi_theta and maximises, over ``estep_epochs`` passes of
   minibatches of the batch, ``mean_i[q_phi(alpha_i|s_i) / pi_theta(alpha_i|s_i) * A_i] -
   kl_weight * mean_i KL(q_phi(.|s_i) || pi_theta(.|s_i))`` with A_i = r_i - V(s_i)
   (normalised over the batch). Trust region: a step after which the batch mean KL exceeds
   ``max(max_kl, KL at the start)`` is shortened by halving (backtracking, as TRPO's line
   search) until it is inside, and the learning rate of the remaining steps is multiplied by
   the kept fraction (the E-step ends when no halving fits);
6. M-step: theta <- phi (same architecture: the goal policy), or, for the image policy
   (input remapping, Appendix A.1), minimise KL(q_phi(.|goal) || pi_theta(.|image)) over the
   (goal, image) pairs of the recent episodes (q is goal-conditioned and persists across
   iterations; only pi sees images);
7. fit V by least squares to the batch's rewards (after the E/M steps, as in Algorithm 1:
   the advantage of iteration k uses the V fitted on iteration k-1; V = 0 at first).

Steps 3-4 are an :class:`EpisodeSource`: by default :class:`SimulatedEpisodes` (decode with
the generator, execute in the batched simulator, all N episodes at once). A caller that runs
the episodes elsewhere (the trainer node: one at a time through the ROS graph) uses the same
steps one by one: :meth:`EMTrainer.sample_episodes` (steps 1-2), its own execution, then
:meth:`EMTrainer.complete_batch` and :meth:`EMTrainer.update` (steps 5-7); :class:`RunRecorder`
writes the run directory for both.

Reading the paper's "repeat E-step, M-step until training done" inner loop: one E-step of
several epochs, then one M-step, per batch (the samples come from pi_theta of this iteration;
repeating E/M on them would need importance weights against a policy that did not sample
them).

:func:`train_em` runs the iterations for a run directory: per-episode log ``episodes.csv``
(goal, reward, distance, executed, table-contact steps, latent), learning curve ``curve.csv``
and ``curve.png`` (reward vs episodes), an atomic training checkpoint ``last.pt`` (policy, q,
value, optimiser states, RNG states, iteration, episode counter, curve rows, goals of the image
buffer), exact resume, the final evaluation on held-out goals (``eval.json``; per goal
``eval_goals.csv``), the final policy ``policy.pt`` and its ONNX export ``policy.onnx``.

Exact resume: every random number comes from two generators saved in the checkpoint (numpy
for goals, torch for latents and minibatch orders); the E-step's Adam starts fresh every
iteration, the value and distillation optimisers are saved; the simulator and the image
renderer are deterministic. A run resumed from ``last.pt`` (e.g. after SIGKILL) gives the same
parameters as an uninterrupted run with the same ``--threads``; on resume ``episodes.csv`` is
truncated to the checkpoint's episode counter and ``curve.csv`` rewritten from the
checkpoint's rows, so the logs have neither gaps nor duplicates.

Table-contact steps (the safety measure of the paper, Figure 7): hockey ``blade_table``
control steps; basketball (no table) the steps with an unsafe contact (arm against the floor
or pedestal, self-contact).
"""

from __future__ import annotations

import copy
import csv
import io
import json
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from genrl_ros.em.config import FIXED_ON_RESUME, OBSERVATIONS, EMConfig
from genrl_ros.em.warm_start import WarmStartPairs, warm_start
from genrl_ros.run_dir import (
    LAST_FILE,
    RUN_FILE,
    atomic_write_bytes,
    atomic_write_text,
    check_run_dir,
    csv_text,
)
from latent_policy_node.onnx_policy import images_to_input
from latent_policy_node.policy import (
    GoalPolicy,
    ImagePolicy,
    LatentPolicy,
    ValueFunction,
    gaussian_kl,
    gaussian_log_prob,
    goal_bounds,
    make_policy,
)
from sim_bridge.executor import BatchExecutor, EpisodeOutcomes
from sim_bridge.tasks import make_task
from sim_bridge.tasks.base import Task

CHECKPOINT_FORMAT = "genrl_ros.em_checkpoint"
POLICY_FORMAT = "genrl_ros.latent_policy"
FORMAT_VERSION = 1
POLICY_FILE = "policy.pt"
ONNX_FILE = "policy.onnx"
EPISODES_FILE = "episodes.csv"
CURVE_FILE = "curve.csv"
CURVE_PNG = "curve.png"
EVAL_FILE = "eval.json"
#: one row per held-out evaluation goal (where the deterministic policy's episode ended)
EVAL_GOALS_FILE = "eval_goals.csv"
EVAL_GOALS_COLUMNS = [
    "goal_x_m", "goal_y_m", "goal_radius_m", "executed", "distance_m", "reward",
    "table_contact_steps", "unsafe_contact_steps",
]
SUMMARY_FILE = "summary.json"
WARM_START_FILE = "warm_start.json"
#: seed of the held-out evaluation goals (a stream separate from every training seed)
EVAL_SEED = 20240607
#: halvings tried to bring a step that leaves the trust region back inside it
BACKTRACK_STEPS = 12


class Generator(Protocol):
    """What the trainer needs of a trajectory generator (``genrl_ros.models``)."""

    latent_dim: int
    prior: str
    horizon: int
    joint_names: tuple[str, ...]
    task: str

    def decode(self, alpha: torch.Tensor) -> torch.Tensor: ...


def clip_to_bound(latents: np.ndarray, bound: float | None) -> np.ndarray:
    """Latents (N, L) as float32, clipped to [-bound, bound] unless ``bound`` is None
    (:meth:`EMConfig.latent_bound_for`: the InfoGAN's U(-1, 1) support)."""
    latents = np.asarray(latents, dtype=np.float32)
    return latents if bound is None else np.clip(latents, -bound, bound)


def decode_latents(generator: Generator, latents: np.ndarray) -> np.ndarray:
    """tau = g(alpha) without gradient: latents (N, L) -> trajectories (N, T, 7) float64 (rad)."""
    with torch.no_grad():
        trajectories = generator.decode(torch.as_tensor(latents, dtype=torch.float32))
    return trajectories.detach().cpu().numpy().astype(np.float64)


def evaluation_rows(goals: np.ndarray, results: EpisodeResults) -> list[dict[str, Any]]:
    """One row per evaluation goal (:data:`EVAL_GOALS_COLUMNS`); distance and reward are
    empty for a trajectory refused before execution."""
    goals = np.asarray(goals, dtype=np.float64).reshape(-1, 2)
    if goals.shape[0] != len(results):
        raise ValueError(f"{goals.shape[0]} goals but {len(results)} results")
    rows = []
    for i, (x, y) in enumerate(goals):
        ran = bool(results.executed[i])
        rows.append({
            "goal_x_m": f"{x:.6f}",
            "goal_y_m": f"{y:.6f}",
            "goal_radius_m": f"{math.hypot(x, y):.6f}",
            "executed": int(ran),
            "distance_m": f"{results.distance_m[i]:.6f}" if ran else "",
            "reward": f"{results.reward[i]:.6f}" if ran else "",
            "table_contact_steps": int(results.table_contact_steps[i]),
            "unsafe_contact_steps": int(results.unsafe_contact_steps[i]),
        })
    return rows


def table_contact_steps(outcomes: EpisodeOutcomes) -> np.ndarray:
    """Per-episode safety measure (N,): ``blade_table`` steps (hockey), else the steps with
    an unsafe contact (basketball)."""
    if "blade_table" in outcomes.contact_classes:
        return outcomes.contact_steps_of("blade_table").astype(np.int64)
    return outcomes.unsafe_contact_steps.astype(np.int64)


def evaluation_goals(task: Task, n: int, seed: int = EVAL_SEED) -> np.ndarray:
    """The held-out goals (n, 2): the same for every training seed, never used in training
    (training goals come from ``SeedSequence(config.seed)`` children)."""
    return task.sample_goals(n, np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(7,))))


@dataclass
class EpisodeResults:
    """What executing N episodes gave (steps 3-4), from the simulator or the ROS graph."""

    reward: np.ndarray  #: (N,) terminal rewards, NaN when not executed
    distance_m: np.ndarray  #: (N,) final distance to the goal (m), NaN when not executed
    executed: np.ndarray  #: (N,) bool, False = rejected before execution
    table_contact_steps: np.ndarray  #: (N,) int64, see :func:`table_contact_steps`
    unsafe_contact_steps: np.ndarray  #: (N,) int64, steps with any unsafe contact

    def __post_init__(self) -> None:
        self.reward = np.asarray(self.reward, dtype=np.float64).reshape(-1)
        self.distance_m = np.asarray(self.distance_m, dtype=np.float64).reshape(-1)
        self.executed = np.asarray(self.executed, dtype=bool).reshape(-1)
        self.table_contact_steps = np.asarray(self.table_contact_steps, np.int64).reshape(-1)
        self.unsafe_contact_steps = np.asarray(self.unsafe_contact_steps, np.int64).reshape(-1)
        sizes = {len(getattr(self, name)) for name in (
            "reward", "distance_m", "executed", "table_contact_steps", "unsafe_contact_steps")}
        if len(sizes) != 1:
            raise ValueError(f"EpisodeResults fields have different lengths {sorted(sizes)}")

    def __len__(self) -> int:
        return int(self.reward.shape[0])

    @classmethod
    def from_outcomes(cls, outcomes: EpisodeOutcomes) -> EpisodeResults:
        """The results of the batched executor's outcomes."""
        return cls(
            reward=outcomes.reward.copy(),
            distance_m=outcomes.distance_m.copy(),
            executed=outcomes.executed.copy(),
            table_contact_steps=table_contact_steps(outcomes),
            unsafe_contact_steps=outcomes.unsafe_contact_steps.astype(np.int64),
        )

    @classmethod
    def concatenate(cls, parts: list[EpisodeResults]) -> EpisodeResults:
        """The episodes of ``parts`` in order."""
        if not parts:
            raise ValueError("no episode results to concatenate")
        return cls(**{
            name: np.concatenate([getattr(part, name) for part in parts])
            for name in ("reward", "distance_m", "executed", "table_contact_steps",
                         "unsafe_contact_steps")
        })


class EpisodeSource(Protocol):
    """Executes latent actions (steps 3-4 of Algorithm 1)."""

    def run(self, goals: np.ndarray, latents: np.ndarray) -> EpisodeResults:
        """Episodes for goals (N, 2) m with latents (N, L) float32, already clipped to the
        generator's latent bound; returns their :class:`EpisodeResults` (N episodes)."""
        ...

    def close(self) -> None: ...


class SimulatedEpisodes:
    """The default :class:`EpisodeSource`: decode the latents into trajectories (N, T, 7)
    with ``decode`` and execute them in :class:`~sim_bridge.executor.BatchExecutor`;
    trajectories beyond the joint limits (or, with ``workspace_check``, commanded into the
    scene) are not simulated (``executed`` False)."""

    def __init__(
        self,
        task: Task,
        decode: Callable[[np.ndarray], np.ndarray],
        nthread: int = 1,
        workspace_check: bool = False,
    ) -> None:
        self.decode = decode
        self.executor = BatchExecutor(task, nthread=nthread, workspace_check=workspace_check)

    def run(self, goals: np.ndarray, latents: np.ndarray) -> EpisodeResults:
        outcomes = self.executor.execute(self.decode(latents), goals, on_invalid="skip")
        return EpisodeResults.from_outcomes(outcomes)

    def close(self) -> None:
        self.executor.close()


@dataclass
class PlannedEpisodes:
    """Steps 1-2 of one iteration: the goals and the latents drawn from pi_theta, before
    execution."""

    goals: np.ndarray  #: (N, 2) metres
    alpha: np.ndarray  #: (N, L) float32, sampled from pi_theta (as drawn, not clipped)
    images: np.ndarray | None = None  #: (N, H, W, 3) uint8 (image policy)

    def __len__(self) -> int:
        return int(self.goals.shape[0])


@dataclass
class EpisodeBatch:
    """The N episodes of one iteration."""

    goals: np.ndarray  #: (N, 2) metres
    alpha: np.ndarray  #: (N, L) float32, sampled from pi_theta
    rewards: np.ndarray  #: (N,) terminal rewards, ``invalid_reward`` for rejected ones
    distance_m: np.ndarray  #: (N,) final distance to the goal, NaN when rejected
    executed: np.ndarray  #: (N,) bool, False = rejected by the executor (not simulated)
    table_contact_steps: np.ndarray  #: (N,) see :func:`table_contact_steps`
    unsafe_contact_steps: np.ndarray  #: (N,) steps with any unsafe contact
    images: np.ndarray | None = None  #: (N, H, W, 3) uint8 (image policy)

    def __len__(self) -> int:
        return int(self.goals.shape[0])


def _float(value: Any) -> float:
    return float(value)


class EMTrainer:
    """GenRL's EM policy training for one generator and task (Algorithm 1).

    :param generator: a trained trajectory generator (``latent_dim``, ``prior``,
        ``decode(alpha (n, L)) -> (n, T, 7)`` radians, ``horizon``, ``joint_names``, ``task``);
        frozen (put in eval mode here).
    :param task: the task (or its name) the episodes run on; must match the generator's.
    :param config: hyperparameters.
    :param observation: ``goal`` (MLP policy on the goal) or ``image`` (CNN policy on the
        camera image, trained by input remapping).
    :param nthread: simulator threads (of the default episode source).
    :param episode_source: executes the episodes (steps 3-4); default
        :class:`SimulatedEpisodes` with the generator's decoder.
    """

    def __init__(
        self,
        generator: Generator,
        task: Task | str,
        config: EMConfig | None = None,
        observation: str = "goal",
        nthread: int = 1,
        episode_source: EpisodeSource | None = None,
    ) -> None:
        self.task = make_task(task) if isinstance(task, str) else task
        self.config = config = config if config is not None else EMConfig()
        if observation not in OBSERVATIONS:
            raise ValueError(f"observation must be one of {OBSERVATIONS}, got {observation!r}")
        self.observation = observation
        self.generator = generator
        if hasattr(generator, "eval"):
            generator.eval()
        problems = []
        if str(generator.task) != self.task.name:
            problems.append(f"task {generator.task!r} vs {self.task.name!r}")
        if int(generator.horizon) != self.task.horizon:
            problems.append(f"horizon {generator.horizon} vs {self.task.horizon}")
        if tuple(generator.joint_names) != tuple(self.task.joint_names):
            problems.append("joint names differ")
        if problems:
            raise ValueError("the generator does not fit the task: " + "; ".join(problems))
        if generator.prior not in ("normal", "uniform"):
            raise ValueError(f"unknown generator prior {generator.prior!r}")
        self.latent_dim = int(generator.latent_dim)
        self.invalid_reward = config.invalid_reward_for(self.task.name)
        self.success_radius_m = config.success_radius_for(self.task.name)
        self.latent_bound = config.latent_bound_for(generator.prior)

        # Networks: pi_theta, q_phi (goal-conditioned, same architecture as the goal policy),
        # V (goal-conditioned). Initialised from the seed.
        torch.manual_seed(config.seed)
        low, high = goal_bounds(self.task)
        init_std = config.init_std_for(generator.prior)
        goal_features = config.goal_features_for(self.task.name)
        self.q = GoalPolicy(
            self.latent_dim, low, high, config.hidden_sizes, init_std, config.state_dependent_std,
            goal_features,
        )
        self.policy: LatentPolicy
        self.camera = None
        if observation == "goal":
            self.policy = copy.deepcopy(self.q)
        else:
            size = config.image_size
            self.policy = ImagePolicy(
                self.latent_dim, (size, size), init_std=init_std,
                state_dependent_std=config.state_dependent_std,
            )
            from sim_bridge.camera import SceneCamera  # noqa: PLC0415 - needs an OpenGL backend

            self.camera = SceneCamera(self.task, size, size)
        self.value = ValueFunction(low, high, config.hidden_sizes, goal_features)
        self.value_optimizer = torch.optim.Adam(self.value.parameters(), lr=config.value_lr)
        self.distill_optimizer = (
            torch.optim.Adam(self.policy.parameters(), lr=config.distill_lr)
            if observation == "image" else None
        )

        # Random streams (saved in checkpoints): goals (numpy), latents and minibatches (torch).
        goal_seed, torch_seed = np.random.SeedSequence(config.seed).spawn(2)
        self.goal_rng = np.random.default_rng(goal_seed)
        self.torch_rng = torch.Generator().manual_seed(int(torch_seed.generate_state(1, np.uint64)[0]) >> 1)

        self.episode_source: EpisodeSource = (
            episode_source if episode_source is not None
            else SimulatedEpisodes(self.task, self.decode, nthread, config.workspace_check)
        )
        self.iteration = 0
        self.episodes = 0
        #: goals (and their images) of recent episodes, for the image policy's M-step
        self.buffer_goals = np.zeros((0, 2))
        self.buffer_images: np.ndarray | None = None

    # ================================================================== Algorithm 1
    def iterate(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """One iteration of Algorithm 1; returns (curve row, per-episode rows)."""
        started = time.perf_counter()
        batch = self.collect()  # s_i ~ p(s0), alpha_i ~ pi_theta, tau_i = g(alpha_i), r_i
        return self.update(batch, started)

    def update(
        self, batch: EpisodeBatch, started: float | None = None
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Steps 5-7 on a collected batch; returns (curve row, per-episode rows).

        :param started: ``time.perf_counter()`` when the batch's collection began (the row's
            ``seconds`` then include the collection).
        """
        started = time.perf_counter() if started is None else started
        e_stats = self.e_step(batch)  # q_phi <- argmax Eq. 5
        m_stats = self.m_step(batch)  # pi_theta <- q_phi
        v_stats = self.fit_value(batch)  # V <- argmin sum (V(s_i) - r_i)^2
        first_episode = self.episodes
        self.iteration += 1
        self.episodes += len(batch)
        row = self._curve_row(batch, {**e_stats, **m_stats, **v_stats})
        row["seconds"] = round(time.perf_counter() - started, 3)
        return row, self._episode_rows(batch, first_episode)

    # ------------------------------------------------------------------ sampling
    def observe(self, goals: np.ndarray) -> tuple[torch.Tensor, np.ndarray | None]:
        """The policy input for goals (N, 2): the goals, or their camera images."""
        if self.observation == "goal":
            return torch.as_tensor(goals, dtype=torch.float32), None
        images = self.camera.render_batch(goals)
        return torch.from_numpy(images_to_input(images)), images

    def clip_latents(self, alpha: np.ndarray) -> np.ndarray:
        """The latents the generator decodes: clipped to ``latent_bound`` if any (part of the
        environment: the policy's samples are kept as drawn), (N, L) float32."""
        return clip_to_bound(alpha, self.latent_bound)

    def decode(self, latents: np.ndarray) -> np.ndarray:
        """tau = g(alpha): (N, L) -> (N, T, 7) float64 radians (no clipping)."""
        return decode_latents(self.generator, latents)

    def rewards_of(self, results: EpisodeResults) -> np.ndarray:
        """r_i (N,): the terminal rewards, ``invalid_reward`` for rejected trajectories."""
        return np.where(results.executed, results.reward, self.invalid_reward).astype(np.float64)

    def run_episodes(self, goals: np.ndarray, alpha: np.ndarray) -> EpisodeResults:
        """Decode and execute through the episode source (rewards: :meth:`rewards_of`)."""
        results = self.episode_source.run(goals, self.clip_latents(alpha))
        if len(results) != len(goals):
            raise ValueError(f"the episode source returned {len(results)} episodes for {len(goals)}")
        return results

    def sample_episodes(self) -> PlannedEpisodes:
        """Steps 1-2: N goals s_i ~ p(s0) and latents alpha_i ~ pi_theta(.|s_i)."""
        repeats = self.config.latents_per_goal
        goals = self.task.sample_goals(
            self.config.episodes_per_iteration // repeats, self.goal_rng
        )
        goals = np.repeat(goals, repeats, axis=0)
        observation, images = self.observe(goals)
        alpha, _, _ = self.policy.sample(observation, self.torch_rng)
        return PlannedEpisodes(goals=goals, alpha=alpha.numpy().astype(np.float32), images=images)

    def complete_batch(self, planned: PlannedEpisodes, results: EpisodeResults) -> EpisodeBatch:
        """The batch of planned episodes and what executing them gave (steps 3-4)."""
        if len(results) != len(planned):
            raise ValueError(f"{len(results)} episode results for {len(planned)} planned episodes")
        return EpisodeBatch(
            goals=planned.goals,
            alpha=planned.alpha,
            rewards=self.rewards_of(results),
            distance_m=results.distance_m.copy(),
            executed=results.executed.copy(),
            table_contact_steps=results.table_contact_steps.copy(),
            unsafe_contact_steps=results.unsafe_contact_steps.copy(),
            images=planned.images,
        )

    def collect(self) -> EpisodeBatch:
        """Sample N goals and latents from pi_theta, generate, execute (steps 1-4)."""
        planned = self.sample_episodes()
        results = self.run_episodes(planned.goals, planned.alpha)
        return self.complete_batch(planned, results)

    # ------------------------------------------------------------------ E-step
    def advantages(self, batch: EpisodeBatch) -> torch.Tensor:
        """A_i = r_i - V(s_i), centred and scaled over the batch if configured, (N,)."""
        with torch.no_grad():
            baseline = self.value(torch.as_tensor(batch.goals, dtype=torch.float32))
        advantage = torch.as_tensor(batch.rewards, dtype=torch.float32) - baseline
        if self.config.normalize_advantages:
            advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
        return advantage

    def e_step(self, batch: EpisodeBatch) -> dict[str, Any]:
        """Maximise Eq. 5 over q_phi on the batch, within the trust region.

        :returns: ``surrogate_before`` / ``surrogate_after`` (mean ratio x advantage),
            ``kl`` (batch mean KL(q || pi) after), ``kl_bound``, ``estep_steps`` (kept
            gradient steps, shortened ones included), ``trust_region_steps`` (steps that
            left the trust region and were shortened, or undone).
        """
        cfg = self.config
        goals = torch.as_tensor(batch.goals, dtype=torch.float32)
        alpha = torch.as_tensor(batch.alpha)
        observation = self._observation_tensor(batch)
        with torch.no_grad():
            pi_mean, pi_std = self.policy(observation)
            log_pi = gaussian_log_prob(alpha, pi_mean, pi_std)
        advantage = self.advantages(batch)
        if self.observation == "goal":
            self.q.load_state_dict(self.policy.state_dict())  # q_phi initialised from pi_theta
        optimizer = torch.optim.Adam(self.q.parameters(), lr=cfg.lr)

        def terms(index: torch.Tensor | slice) -> tuple[torch.Tensor, torch.Tensor]:
            mean, std = self.q(goals[index])
            ratio = torch.exp(gaussian_log_prob(alpha[index], mean, std) - log_pi[index])
            surrogate = (ratio * advantage[index]).mean()
            kl = gaussian_kl(mean, std, pi_mean[index], pi_std[index]).mean()
            return surrogate, kl

        with torch.no_grad():
            surrogate_before, kl_before = (float(t) for t in terms(slice(None)))
        bound = max(cfg.max_kl, kl_before)
        steps, shortened, ended = 0, 0, False
        n = len(batch)
        for _ in range(cfg.estep_epochs):
            order = torch.randperm(n, generator=self.torch_rng)
            for index in order.split(cfg.minibatch_size):
                saved = {k: v.clone() for k, v in self.q.state_dict().items()}
                surrogate, kl = terms(index)
                loss = -(surrogate - cfg.kl_weight * kl)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                with torch.no_grad():
                    _, kl_all = terms(slice(None))
                if not float(kl_all) <= bound:  # the step leaves the trust region (or NaN)
                    shortened += 1
                    kept = self._backtrack(saved, lambda: float(terms(slice(None))[1]), bound)
                    if kept == 0.0:  # no shortened step fits: q stays where it was, stop
                        ended = True
                        break
                    for group in optimizer.param_groups:  # smaller steps from here on
                        group["lr"] *= kept
                steps += 1
            if ended:
                break
        with torch.no_grad():
            surrogate_after, kl_after = (float(t) for t in terms(slice(None)))
        return {
            "surrogate_before": surrogate_before,
            "surrogate_after": surrogate_after,
            "kl_before": kl_before,
            "kl": kl_after,
            "kl_bound": bound,
            "estep_steps": steps,
            "trust_region_steps": shortened,
        }

    def _backtrack(self, saved: dict[str, torch.Tensor], kl: Callable[[], float], bound: float) -> float:
        """Shorten the last step of q (from ``saved``) by halving until KL <= ``bound``
        (at most ``BACKTRACK_STEPS`` halvings; else q goes back to ``saved``). With Adam a
        single step moves every weight by about the learning rate, which leaves a small
        trust region once the policy's std has shrunk; this lands inside it instead of
        stalling. Returns the fraction of the step kept (0 when none fits)."""
        stepped = {k: v.clone() for k, v in self.q.state_dict().items()}
        fraction = 1.0
        with torch.no_grad():
            for _ in range(BACKTRACK_STEPS):
                fraction *= 0.5
                self.q.load_state_dict({
                    k: saved[k] + fraction * (stepped[k] - saved[k])
                    if saved[k].is_floating_point() else saved[k]
                    for k in saved
                })
                if kl() <= bound:
                    return fraction
        self.q.load_state_dict(saved)
        return 0.0

    # ------------------------------------------------------------------ M-step
    def m_step(self, batch: EpisodeBatch) -> dict[str, Any]:
        """theta <- phi (goal policy), or distil q into the image policy (input remapping)."""
        if self.observation == "goal":
            self.policy.load_state_dict(self.q.state_dict())
            return {"distill_kl": 0.0}
        self._add_to_buffer(batch.goals, batch.images)
        return {"distill_kl": self.distill()}

    def _add_to_buffer(self, goals: np.ndarray, images: np.ndarray) -> None:
        keep = self.config.image_buffer_size
        self.buffer_goals = np.concatenate([self.buffer_goals, goals])[-keep:]
        if self.buffer_images is None:
            self.buffer_images = images[-keep:].copy()
        else:
            self.buffer_images = np.concatenate([self.buffer_images, images])[-keep:]

    def distill(self) -> float:
        """Minimise mean KL(q(.|goal) || pi(.|image)) over the buffer; returns the mean KL
        over the buffer after ``distill_epochs`` epochs."""
        cfg = self.config
        goals = torch.as_tensor(self.buffer_goals, dtype=torch.float32)
        images = torch.from_numpy(images_to_input(self.buffer_images))
        with torch.no_grad():
            q_mean, q_std = self.q(goals)
        n = goals.shape[0]
        for _ in range(cfg.distill_epochs):
            order = torch.randperm(n, generator=self.torch_rng)
            for index in order.split(cfg.distill_minibatch_size):
                pi_mean, pi_std = self.policy(images[index])
                loss = gaussian_kl(q_mean[index], q_std[index], pi_mean, pi_std).mean()
                self.distill_optimizer.zero_grad()
                loss.backward()
                self.distill_optimizer.step()
        with torch.no_grad():
            total = 0.0
            for index in torch.arange(n).split(256):
                pi_mean, pi_std = self.policy(images[index])
                total += float(gaussian_kl(q_mean[index], q_std[index], pi_mean, pi_std).sum())
        return total / n

    # ------------------------------------------------------------------ value function
    def fit_value(self, batch: EpisodeBatch) -> dict[str, Any]:
        """Least squares V(s_i) ~ r_i on the batch (``value_epochs`` full-batch Adam steps)."""
        goals = torch.as_tensor(batch.goals, dtype=torch.float32)
        rewards = torch.as_tensor(batch.rewards, dtype=torch.float32)
        loss = torch.zeros(())
        for _ in range(self.config.value_epochs):
            loss = (self.value(goals) - rewards).pow(2).mean()
            self.value_optimizer.zero_grad()
            loss.backward()
            self.value_optimizer.step()
        with torch.no_grad():
            after = float((self.value(goals) - rewards).pow(2).mean())
        return {"value_loss": after}

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, goals: np.ndarray, chunk: int = 250) -> dict[str, Any]:
        """The deterministic policy (latent = mean of pi) on the given goals.

        Rejected trajectories count as failures (distance +inf in the median and the success
        rate); ``mean_distance_m`` is over the executed episodes.
        """
        return self.evaluation_summary(goals, self.evaluation_episodes(goals, chunk))

    def evaluation_episodes(self, goals: np.ndarray, chunk: int = 250) -> EpisodeResults:
        """The deterministic policy's episodes on goals (N, 2), in goal order."""
        goals = np.asarray(goals, dtype=np.float64).reshape(-1, 2)
        parts = []
        for begin in range(0, goals.shape[0], chunk):
            part = goals[begin:begin + chunk]
            parts.append(self.run_episodes(part, self.evaluation_latents(part, chunk)))
        return EpisodeResults.concatenate(parts)

    def evaluation_latents(self, goals: np.ndarray, chunk: int = 250) -> np.ndarray:
        """The deterministic policy's latents (the mean of pi) for goals (N, 2), (N, L)
        float32 (computed ``chunk`` goals at a time, as :meth:`evaluate` does)."""
        goals = np.asarray(goals, dtype=np.float64).reshape(-1, 2)
        means = []
        for begin in range(0, goals.shape[0], chunk):
            observation, _ = self.observe(goals[begin:begin + chunk])
            with torch.no_grad():
                mean, _ = self.policy(observation)
            means.append(mean.numpy().astype(np.float32))
        return np.concatenate(means) if means else np.zeros((0, self.latent_dim), np.float32)

    def evaluation_summary(self, goals: np.ndarray, results: EpisodeResults) -> dict[str, Any]:
        """The metrics of :meth:`evaluate` from the results of the deterministic policy's
        episodes on ``goals`` (N, 2)."""
        goals = np.asarray(goals, dtype=np.float64).reshape(-1, 2)
        ran = results.executed
        distance = np.where(ran, results.distance_m, np.inf)
        finite = distance[ran]
        return {
            "n_goals": int(goals.shape[0]),
            "median_distance_m": float(np.median(distance)),
            "mean_distance_m": float(finite.mean()) if finite.size else math.nan,
            "p90_distance_m": float(np.quantile(distance, 0.9)),
            "success_rate": float(np.mean(distance <= self.success_radius_m)),
            "success_radius_m": self.success_radius_m,
            "mean_reward": float(-finite.mean()) if finite.size else math.nan,
            "rejected": int((~ran).sum()),
            "table_contact_steps": int(results.table_contact_steps.sum()),
            "unsafe_contact_steps": int(results.unsafe_contact_steps.sum()),
            "deterministic": True,
        }

    # ------------------------------------------------------------------ logs
    def _observation_tensor(self, batch: EpisodeBatch) -> torch.Tensor:
        if self.observation == "goal":
            return torch.as_tensor(batch.goals, dtype=torch.float32)
        return torch.from_numpy(images_to_input(batch.images))

    def _curve_row(self, batch: EpisodeBatch, stats: dict[str, Any]) -> dict[str, Any]:
        executed = batch.executed
        distance = batch.distance_m[executed]
        with torch.no_grad():
            _, std = self.policy(self._observation_tensor(batch))
        return {
            "iteration": self.iteration,
            "episodes": self.episodes,
            "reward_mean": _float(batch.rewards.mean()),
            "reward_std": _float(batch.rewards.std()),
            "reward_median": _float(np.median(batch.rewards)),
            "reward_max": _float(batch.rewards.max()),
            "distance_median_m": _float(np.median(distance)) if distance.size else math.nan,
            "success_rate": _float(np.mean(np.where(executed, batch.distance_m, np.inf)
                                           <= self.success_radius_m)),
            "invalid": int((~executed).sum()),
            "table_contact_steps": int(batch.table_contact_steps.sum()),
            "unsafe_contact_steps": int(batch.unsafe_contact_steps.sum()),
            "policy_std_mean": _float(std.mean()),
            "surrogate_before": _float(stats["surrogate_before"]),
            "surrogate_after": _float(stats["surrogate_after"]),
            "kl": _float(stats["kl"]),
            "estep_steps": int(stats["estep_steps"]),
            "trust_region_steps": int(stats["trust_region_steps"]),
            "value_loss": _float(stats["value_loss"]),
            "distill_kl": _float(stats["distill_kl"]),
        }

    def _episode_rows(self, batch: EpisodeBatch, first_episode: int) -> list[dict[str, Any]]:
        rows = []
        for i in range(len(batch)):
            row = {
                "episode": first_episode + i,
                "iteration": self.iteration,
                "goal_x": _float(batch.goals[i, 0]),
                "goal_y": _float(batch.goals[i, 1]),
                "reward": _float(batch.rewards[i]),
                "distance_m": _float(batch.distance_m[i]),
                "executed": int(batch.executed[i]),
                "table_contact_steps": int(batch.table_contact_steps[i]),
                "unsafe_contact_steps": int(batch.unsafe_contact_steps[i]),
            }
            for j in range(self.latent_dim):
                row[f"alpha_{j}"] = _float(batch.alpha[i, j])
            rows.append(row)
        return rows

    def episode_columns(self) -> list[str]:
        return [
            "episode", "iteration", "goal_x", "goal_y", "reward", "distance_m", "executed",
            "table_contact_steps", "unsafe_contact_steps",
        ] + [f"alpha_{j}" for j in range(self.latent_dim)]

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Everything an exact resume needs (tensors and plain values only)."""
        return {
            "iteration": self.iteration,
            "episodes": self.episodes,
            "policy": _cloned(self.policy.state_dict()),
            "policy_config": self.policy.config(),
            "q": _cloned(self.q.state_dict()),
            "value": _cloned(self.value.state_dict()),
            "value_optimizer": copy.deepcopy(self.value_optimizer.state_dict()),
            "distill_optimizer": (
                copy.deepcopy(self.distill_optimizer.state_dict())
                if self.distill_optimizer is not None else None
            ),
            "goal_rng": json.dumps(self.goal_rng.bit_generator.state),
            "torch_rng": self.torch_rng.get_state(),
            "buffer_goals": torch.as_tensor(self.buffer_goals),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.iteration = int(state["iteration"])
        self.episodes = int(state["episodes"])
        self.policy.load_state_dict(state["policy"])
        self.q.load_state_dict(state["q"])
        self.value.load_state_dict(state["value"])
        self.value_optimizer.load_state_dict(state["value_optimizer"])
        if self.distill_optimizer is not None:
            self.distill_optimizer.load_state_dict(state["distill_optimizer"])
        self.goal_rng.bit_generator.state = json.loads(state["goal_rng"])
        self.torch_rng.set_state(state["torch_rng"])
        self.buffer_goals = state["buffer_goals"].numpy().astype(np.float64)
        self.buffer_images = None
        if self.observation == "image" and self.buffer_goals.shape[0]:
            # the renderer is deterministic: the images are rendered again, not stored
            self.buffer_images = self.camera.render_batch(self.buffer_goals)

    def close(self) -> None:
        self.episode_source.close()
        if self.camera is not None:
            self.camera.close()


def _cloned(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in state.items()}


# ====================================================================== run directory


def _atomic_torch_save(path: Path, payload: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def _append_rows(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    """Append CSV rows durably (header first if the file is new)."""
    new = not path.exists()
    with open(path, "a", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        if new:
            writer.writeheader()
        writer.writerows(rows)
        handle.flush()
        os.fsync(handle.fileno())


def truncate_episode_log(path: Path, episodes: int, columns: list[str]) -> None:
    """Keep the header and the rows of episodes 0 .. ``episodes`` - 1 (rows a killed run
    wrote after its last checkpoint go); raise if rows are missing or out of order."""
    if episodes == 0:
        path.unlink(missing_ok=True)
        return
    if not path.is_file():
        raise ValueError(f"cannot resume: {path} is missing ({episodes} episodes expected)")
    with open(path, encoding="utf-8", newline="") as handle:
        lines = handle.read().split("\n")
    header = lines[0]
    if header != ",".join(columns):
        raise ValueError(f"cannot resume: {path} has header {header!r}, expected {','.join(columns)!r}")
    # a row is kept only when it is complete: a line followed by a newline
    complete = lines[1:-1][:episodes]
    if len(complete) != episodes or not all(
        line.split(",", 1)[0] == str(i) for i, line in enumerate(complete)
    ):
        raise ValueError(
            f"cannot resume: {path} holds {len(complete)} consistent rows, the checkpoint "
            f"counts {episodes} episodes"
        )
    if len(lines) != episodes + 2 or lines[-1]:
        atomic_write_text(path, "\n".join([header, *complete]) + "\n")


def plot_curve(curve: list[dict[str, Any]], episode_log: Path, out: Path, title: str) -> Path:
    """Reward vs episodes (per-episode rewards and the iteration means) and table-contact
    steps per iteration; written to ``out`` (PNG)."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 1]})
    if episode_log.is_file():
        with open(episode_log, encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
        if rows:
            x = np.array([int(r["episode"]) + 1 for r in rows])
            y = np.array([float(r["reward"]) for r in rows])
            top.scatter(x, y, s=2, alpha=0.25, color="tab:gray", label="episode reward")
    if curve:
        x = np.array([r["episodes"] for r in curve])
        mean = np.array([r["reward_mean"] for r in curve])
        std = np.array([r["reward_std"] for r in curve])
        top.plot(x, mean, color="tab:blue", label="iteration mean")
        top.fill_between(x, mean - std, mean + std, color="tab:blue", alpha=0.2)
        bottom.step(x, [r["table_contact_steps"] for r in curve], where="post", color="tab:red")
    top.set_ylabel("reward (m)")
    top.set_title(title)
    top.legend(loc="lower right")
    top.grid(alpha=0.3)
    bottom.set_ylabel("table-contact\nsteps / iteration")
    bottom.set_xlabel("training episodes")
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(out, buffer.getvalue())
    return out


def _check_run_dir(out: Path, resume: bool, overwrite: bool) -> bool:
    """Returns True when resuming from ``out/last.pt``; clears a run being overwritten."""
    resuming = check_run_dir(out, resume=resume, overwrite=overwrite, what="policy-training run")
    if not resuming and out.is_dir() and any(out.iterdir()):
        shutil.rmtree(out)  # check_run_dir allowed it: --overwrite of a policy-training run
    return resuming


def save_policy(path: Path, trainer: EMTrainer, model_info: dict[str, Any]) -> Path:
    """The trained policy alone (``policy.pt``): config, weights, task, generator info."""
    _atomic_torch_save(path, {
        "format": POLICY_FORMAT,
        "format_version": FORMAT_VERSION,
        "task": trainer.task.name,
        "observation": trainer.observation,
        "prior": trainer.generator.prior,
        "policy_config_json": json.dumps(trainer.policy.config()),
        "model_json": json.dumps(model_info, sort_keys=True),
        "policy": _cloned(trainer.policy.state_dict()),
        "value": _cloned(trainer.value.state_dict()),
        "value_config_json": json.dumps(trainer.value.config()),
        "iteration": trainer.iteration,
        "episodes": trainer.episodes,
    })
    return path


def load_policy(path: str | os.PathLike[str]) -> tuple[LatentPolicy, dict[str, Any]]:
    """A policy saved by :func:`save_policy` (eval mode) and its metadata."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:
        raise ValueError(f"{path} is not a readable policy file: {type(err).__name__}: {err}") from None
    if not isinstance(payload, dict) or payload.get("format") != POLICY_FORMAT:
        raise ValueError(f"{path} is not a genrl_ros latent policy ({POLICY_FORMAT})")
    policy = make_policy(json.loads(payload["policy_config_json"]))
    policy.load_state_dict(payload["policy"])
    policy.eval()
    info = {k: payload[k] for k in ("task", "observation", "prior", "iteration", "episodes")}
    info["model"] = json.loads(payload["model_json"])
    return policy, info


def open_run_dir(
    out: Path,
    run_info: dict[str, Any],
    iterations: int,
    *,
    resume: bool,
    overwrite: bool,
) -> dict[str, Any] | None:
    """Prepare the run directory ``out`` of a policy-training run: refuse to clobber, clear a
    run being overwritten, check a resumed run's settings, write ``run.json``.

    :param run_info: what the run is (task, observation, config, model, latent_dim, prior).
    :returns: the checkpoint to resume from (``last.pt``), or None for a fresh run.
    """
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"iterations must be a positive integer, got {iterations!r}")
    resuming = _check_run_dir(out, resume, overwrite)
    checkpoint = None
    if resuming:
        checkpoint = _load_checkpoint(out / LAST_FILE)
        _check_resume(out, checkpoint, run_info)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / RUN_FILE, json.dumps({**run_info, "iterations": iterations},
                                                  indent=2, sort_keys=True) + "\n")
    return checkpoint


def run_info_of(
    generator: Generator, task: str, observation: str, config: EMConfig, model_info: dict[str, Any]
) -> dict[str, Any]:
    """The ``run.json`` content of a run (without ``iterations``), checked on resume."""
    return {
        "task": task,
        "observation": observation,
        "config": config.to_json(),
        "model": model_info,
        "latent_dim": int(generator.latent_dim),
        "prior": generator.prior,
    }


class RunRecorder:
    """Writes what a policy-training run leaves in its directory, for ``genrl train-policy``
    (:func:`train_em`) and the trainer node alike: ``episodes.csv`` (appended before the
    checkpoint, so a kill never loses logged episodes of a checkpointed iteration),
    ``curve.csv``, ``last.pt`` (every ``checkpoint_every`` iterations and after the last),
    and at the end ``eval.json``, ``policy.pt``, ``curve.png``, ``policy.onnx``,
    ``summary.json``.

    Constructing it restores the trainer from ``checkpoint`` (if any) and truncates the
    episode log to the checkpoint's episode counter.
    """

    def __init__(
        self,
        out: Path,
        trainer: EMTrainer,
        run_info: dict[str, Any],
        checkpoint: dict[str, Any] | None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.out = out
        self.trainer = trainer
        self.run_info = run_info
        self.columns = trainer.episode_columns()
        self.curve: list[dict[str, Any]] = []
        say = log or (lambda message: None)
        if checkpoint is not None:
            trainer.load_state_dict(checkpoint["trainer"])
            self.curve = list(checkpoint["curve"])
            truncate_episode_log(out / EPISODES_FILE, trainer.episodes, self.columns)
            say(f"resumed at iteration {trainer.iteration} ({trainer.episodes} episodes)")
        else:
            (out / EPISODES_FILE).unlink(missing_ok=True)
            (out / WARM_START_FILE).unlink(missing_ok=True)  # of an attempt killed before it
        if self.curve:
            atomic_write_text(out / CURVE_FILE, csv_text(self.curve, list(self.curve[0])))

    def save_checkpoint(self) -> None:
        """``last.pt``: the trainer's state and the curve rows (atomic)."""
        _atomic_torch_save(self.out / LAST_FILE, {
            "format": CHECKPOINT_FORMAT,
            "format_version": FORMAT_VERSION,
            "run_json": json.dumps(self.run_info, sort_keys=True),
            "trainer": self.trainer.state_dict(),
            "curve": self.curve,
        })

    def record(self, row: dict[str, Any], episode_rows: list[dict[str, Any]], iterations: int) -> None:
        """Log one finished iteration (the trainer has updated); checkpoint when due."""
        self.curve.append(row)
        _append_rows(self.out / EPISODES_FILE, episode_rows, self.columns)  # before the checkpoint
        atomic_write_text(self.out / CURVE_FILE, csv_text(self.curve, list(row)))
        iteration = self.trainer.iteration
        if iteration % self.trainer.config.checkpoint_every == 0 or iteration == iterations:
            self.save_checkpoint()

    def finish(
        self,
        evaluation: dict[str, Any],
        model_info: dict[str, Any],
        export_onnx: str | None = "dynamo",
        eval_rows: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """The final outputs of a complete run; returns the summary (``summary.json``).

        :param evaluation: :meth:`EMTrainer.evaluation_summary` of the held-out goals.
        :param eval_rows: :func:`evaluation_rows` of the same episodes, written to
            ``eval_goals.csv``.
        """
        trainer, out, curve = self.trainer, self.out, self.curve
        task, observation, prior = trainer.task.name, trainer.observation, trainer.generator.prior
        config = trainer.config
        atomic_write_text(out / EVAL_FILE, json.dumps(evaluation, indent=2, sort_keys=True) + "\n")
        if eval_rows is not None:
            atomic_write_text(out / EVAL_GOALS_FILE, csv_text(eval_rows, EVAL_GOALS_COLUMNS))
        save_policy(out / POLICY_FILE, trainer, model_info)
        plot_curve(curve, out / EPISODES_FILE, out / CURVE_PNG,
                   f"GenRL EM, {task}, {observation} policy")
        onnx_path = None
        if export_onnx:
            export_policy_onnx(trainer, out / ONNX_FILE, model_info, export_onnx)
            onnx_path = out / ONNX_FILE
        contacts = sum(r["table_contact_steps"] for r in curve)
        summary = {
            "complete": True,
            "task": task,
            "observation": observation,
            "iterations": trainer.iteration,
            "episodes": trainer.episodes,
            "episodes_per_iteration": config.episodes_per_iteration,
            "median_distance_m": evaluation["median_distance_m"],
            "mean_distance_m": evaluation["mean_distance_m"],
            "success_rate": evaluation["success_rate"],
            "success_radius_m": evaluation["success_radius_m"],
            "eval_goals": evaluation["n_goals"],
            "eval_rejected": evaluation["rejected"],
            "eval_table_contact_steps": evaluation["table_contact_steps"],
            "table_contact_steps": int(contacts),
            "unsafe_contact_steps": int(sum(r["unsafe_contact_steps"] for r in curve)),
            "invalid_episodes": int(sum(r["invalid"] for r in curve)),
            "final_reward_mean": curve[-1]["reward_mean"] if curve else math.nan,
            "best_reward_mean": max(r["reward_mean"] for r in curve) if curve else math.nan,
            "training_seconds": round(sum(r["seconds"] for r in curve), 2),
            "latent_dim": trainer.latent_dim,
            "prior": prior,
            "model": model_info.get("path"),
            "model_sha256": model_info.get("model_sha256"),
            "out": str(out),
            "policy": str(out / POLICY_FILE),
            "onnx": str(onnx_path) if onnx_path else None,
            "curve_csv": str(out / CURVE_FILE),
            "curve_png": str(out / CURVE_PNG),
            "episodes_csv": str(out / EPISODES_FILE),
            "eval_goals_csv": str(out / EVAL_GOALS_FILE) if eval_rows is not None else None,
            "seed": config.seed,
            "warm_start": (json.loads((out / WARM_START_FILE).read_text())
                           if (out / WARM_START_FILE).exists() else None),
        }
        atomic_write_text(out / SUMMARY_FILE,
                           json.dumps(_finite(summary), indent=2, sort_keys=True) + "\n")
        return summary


def export_policy_onnx(
    trainer: EMTrainer, path: Path, model_info: dict[str, Any], exporter: str = "dynamo"
) -> Path:
    """The trainer's current policy as ONNX at ``path`` (checked against torch, written
    atomically: a reader never sees a partial file), for the latent policy node."""
    from latent_policy_node.onnx_export import export_policy  # noqa: PLC0415

    export_policy(
        trainer.policy, path, task=trainer.task.name, prior=trainer.generator.prior,
        decoder_sha256=model_info.get("model_sha256"), overwrite=True, exporter=exporter,
    )
    return path


def train_em(
    generator: Generator,
    task: str,
    out: str | os.PathLike[str],
    *,
    iterations: int,
    config: EMConfig | None = None,
    observation: str = "goal",
    model_info: dict[str, Any] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    nthread: int = 1,
    progress: bool = False,
    export_onnx: str | None = "dynamo",
    stop_after: int | None = None,
    log: Callable[[str], None] | None = None,
    warm_start_pairs: WarmStartPairs | None = None,
) -> dict[str, Any]:
    """Train a latent policy with EM for ``iterations`` iterations in the run directory
    ``out``, evaluate it on ``config.eval_goals`` held-out goals and write the outputs.

    :param model_info: describes the generator (``path``, ``model_sha256``, ...): stored in
        ``run.json``, checked on resume (same ``model_sha256``), the hash goes into the ONNX
        metadata.
    :param resume: continue from ``out/last.pt`` (settings must match; ``iterations`` may
        grow). Without a checkpoint in an empty ``out`` the run starts from scratch.
    :param overwrite: replace an existing run directory.
    :param export_onnx: ``dynamo`` / ``torchscript`` exporter for ``policy.onnx``, or None.
    :param stop_after: return after this many new iterations without the final evaluation
        (simulates an interruption; the checkpoint is written as usual).
    :param warm_start_pairs: (goal, latent) pairs of demonstrations
        (:func:`~genrl_ros.em.warm_start.demonstration_pairs`): a fresh run first fits the
        policy to them (:func:`~genrl_ros.em.warm_start.warm_start`, ``warm_start.json``).
    :returns: the summary (also written to ``summary.json`` when the run is complete).
    """
    config = config if config is not None else EMConfig()
    model_info = dict(model_info or {})
    out = Path(out)
    say = log or (lambda message: None)
    run_info = run_info_of(generator, task, observation, config, model_info)
    run_info["warm_start"] = warm_start_pairs.describe() if warm_start_pairs is not None else None
    checkpoint = open_run_dir(out, run_info, iterations, resume=resume, overwrite=overwrite)

    trainer = EMTrainer(generator, task, config, observation=observation, nthread=nthread)
    try:
        run = RunRecorder(out, trainer, run_info, checkpoint, say)
        if checkpoint is None and warm_start_pairs is not None:
            stats = warm_start(trainer, warm_start_pairs)
            evaluation = trainer.evaluate(evaluation_goals(trainer.task, config.eval_goals))
            stats["eval_median_distance_m"] = evaluation["median_distance_m"]
            stats["eval_success_rate"] = evaluation["success_rate"]
            write_warm_start(out, stats)
            say(
                f"warm start: {stats['pairs']} demonstrations, held-out median "
                f"{stats['eval_median_distance_m']:.3f} m before EM"
            )
        bar = None
        if progress and trainer.iteration < iterations:
            from tqdm.auto import tqdm  # noqa: PLC0415

            bar = tqdm(total=iterations, initial=trainer.iteration, unit="it",
                       desc=f"EM {task} ({observation})")
        new = 0
        while trainer.iteration < iterations:
            if stop_after is not None and new >= stop_after:
                break
            row, episode_rows = trainer.iterate()
            new += 1
            run.record(row, episode_rows, iterations)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(reward=f"{row['reward_mean']:.3f}", std=f"{row['policy_std_mean']:.3f}",
                                invalid=row["invalid"], contacts=row["table_contact_steps"])
        if bar is not None:
            bar.close()
        if trainer.iteration < iterations:  # stopped early on purpose
            run.save_checkpoint()
            return {"complete": False, "iterations": trainer.iteration, "episodes": trainer.episodes}

        say(f"evaluating on {config.eval_goals} held-out goals")
        goals = evaluation_goals(trainer.task, config.eval_goals)
        results = trainer.evaluation_episodes(goals)
        return run.finish(trainer.evaluation_summary(goals, results), model_info, export_onnx,
                          evaluation_rows(goals, results))
    finally:
        trainer.close()


def write_warm_start(out: Path, stats: dict[str, Any]) -> Path:
    """``warm_start.json``: what the warm start did (the run's summary repeats it)."""
    atomic_write_text(out / WARM_START_FILE,
                      json.dumps(_finite(stats), indent=2, sort_keys=True) + "\n")
    return out / WARM_START_FILE


def _finite(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(
            f"{path} is not a readable training checkpoint (corrupted?): {type(err).__name__}: "
            f"{' '.join(str(err).split())[:200]}"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not an EM training checkpoint ({CHECKPOINT_FORMAT})")
    if int(payload.get("format_version", 0)) > FORMAT_VERSION:
        raise ValueError(f"{path}: format_version {payload.get('format_version')} is too new")
    return payload


def _check_resume(out: Path, checkpoint: dict[str, Any], run_info: dict[str, Any]) -> None:
    saved = json.loads(checkpoint["run_json"])
    problems = []
    for key in ("task", "observation", "latent_dim", "prior", "warm_start"):
        if saved.get(key) != run_info.get(key):
            problems.append(f"{key} {saved.get(key)!r} -> {run_info.get(key)!r}")
    old_sha = (saved.get("model") or {}).get("model_sha256")
    new_sha = run_info["model"].get("model_sha256")
    if old_sha != new_sha:
        problems.append(f"generator {str(old_sha)[:12]} -> {str(new_sha)[:12]}")
    defaults = EMConfig().to_json()  # fields a run of an older version did not have
    for key in FIXED_ON_RESUME:
        old, new = saved["config"].get(key, defaults[key]), run_info["config"].get(key)
        if json.dumps(old) != json.dumps(new):
            problems.append(f"{key} {old!r} -> {new!r}")
    if problems:
        raise ValueError(f"cannot resume {out} with other settings: " + "; ".join(problems))
