"""Hyperparameters of EM policy training (GenRL, seed 000, section 4 and Algorithm 1).

One dataclass, every field documented with its meaning and default (the stable-baselines3
manner). The paper gives the algorithm but not its batch size, learning rates or trust-region
size; the defaults here are ours, chosen on hockey with a 3-D beta-VAE (beta 0.001, trained on
5000 demonstrations), N = 64, seed 0. A 15-iteration comparison (with the E-step of that time,
which ended at the first step leaving the trust region): mean training reward of the 15th
iteration -0.42 m with lr 1e-3, 10 epochs, max_kl 0.05 (the trust region stopped most
E-steps, the policy std only fell from 1 to 0.85), -0.20 m with lr 3e-3, 20 epochs, max_kl 0.2
(std 0.36), -0.23 m with max_kl 0.5. Over 60 iterations the fresh Adam's first steps then left
the 0.2 trust region once the std was below ~0.3 and the E-steps stalled (held-out median
distance 0.080 m after 3840 episodes); shortening such steps and the later learning rate
(``max_kl`` below) gave 0.054 m with the same budget (``genrl train-policy --task hockey
--iterations 60 --seed 0``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

#: reward given to a trajectory the executor rejects (joint position / velocity limits), per
#: task: worse than any executed episode (hockey: the puck never ends more than ~1 m from a
#: goal; basketball: a miss without rim crossing costs -(distance + 1 m), at most ~8 m)
INVALID_REWARD_BY_TASK = {"hockey": -1.5, "basketball": -10.0}
#: success radius of the evaluation per task: 5 cm for hockey, the basket's rim radius (0.15 m)
SUCCESS_RADIUS_BY_TASK_M = {"hockey": 0.05, "basketball": 0.15}
#: input encoding of the goal networks (policy, q, value) per task, see
#: ``latent_policy_node.policy.GoalFeatures``: hockey keeps the normalised (x, y) its defaults
#: were tuned with; basketball adds range and direction from the arm's base at the origin
#: (the thrower acts on range and direction; measurements in :class:`EMConfig`)
GOAL_FEATURES_BY_TASK = {"hockey": "xy", "basketball": "polar"}
#: per-task defaults that differ from the dataclass defaults (which are hockey's), applied by
#: :meth:`EMConfig.for_task` (``genrl train-policy``) to the fields not set explicitly.
#: Basketball (6-D beta-VAE, seed 0, N = 64, 500 held-out goals): a 0.2 trust region is hit by
#: every E-step and learning is slow (xy features: held-out median 0.50 m after 60
#: iterations); max_kl 0.5 learns faster per iteration (xy: training median 0.67 vs 0.76 m at
#: iteration 60; polar features: held-out 0.405 m after 100 iterations), while 1.5 (polar)
#: collapses the policy std early (0.11 at iteration 60) and ends worse (0.436 m, 9 of 500
#: evaluation throws rejected); so does a state-dependent std with 0.5 (0.432 m).
#: With N = 64 the held-out median stalls at 0.335 m (300 iterations, 19200 episodes) / 0.346 m
#: (400): a 64-goal batch is too noisy an estimate of the goal -> latent update once the std is
#: small. N = 256 (minibatch 64: 80 E-step steps, N = 64 has 40) is better per episode in that
#: phase: 0.310 m after 60 iterations (15360 episodes, 23 % within the rim, 9 unsafe contact
#: steps in training vs 1485), 0.276 m after 100 iterations (25600 episodes, 25 %; N = 64 with
#: the same episodes: 0.346 m), 0.265 m after 150 (38400 episodes); N = 512 was worse per
#: episode (training median 0.57 vs 0.41 m at 10240 episodes). Fewer E-step epochs (5), lr
#: 1e-3 with 40 epochs and 200 value steps all learned slower per iteration.
TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "basketball": {"max_kl": 0.5, "episodes_per_iteration": 256, "minibatch_size": 64},
}
#: standard deviation of each prior's latent components (U(-1, 1): 1 / sqrt(3))
PRIOR_STD = {"normal": 1.0, "uniform": 1.0 / math.sqrt(3.0)}
OBSERVATIONS = ("goal", "image")


@dataclass
class EMConfig:
    """Settings of one EM policy-training run."""

    # ---- Algorithm 1, sampling --------------------------------------------------------------
    #: N, episodes (goal, latent, trajectory, reward) collected per iteration with pi_theta
    episodes_per_iteration: int = 64
    #: latents drawn per sampled goal: N / latents_per_goal goals, each repeated, so that the
    #: value fit sees several rewards per goal; 1 = one latent per goal (Algorithm 1). Measured
    #: on basketball (N = 256, seed 0, 100 iterations): 4 gave 0.269 m vs 0.276 m, no clear gain
    latents_per_goal: int = 1

    # ---- E-step (Eq. 5): maximise E_{alpha~pi}[q/pi * A] - kl_weight * KL(q || pi) ------------
    #: passes of the E-step over the iteration's batch
    estep_epochs: int = 20
    #: episodes per E-step gradient step (at most N; the batch is reshuffled every epoch)
    minibatch_size: int = 32
    #: Adam learning rate of the variational policy q_phi (a fresh Adam every E-step)
    lr: float = 3e-3
    #: weight of the KL(q || pi) penalty of Eq. 5 (the paper: 1)
    kl_weight: float = 1.0
    #: hard trust region: a gradient step after which the batch mean KL(q || pi) exceeds
    #: max(max_kl, KL at the start of the E-step) is shortened by halving until it is inside
    #: (the later steps of the E-step use the learning rate times the kept fraction; if 12
    #: halvings do not fit, the step is undone and the E-step ends), so the E-step never
    #: returns a q farther from pi than that (goal policy: KL at the start is 0)
    max_kl: float = 0.2
    #: advantages A = r - V(s) are centred and divided by their std over the batch (scale-free
    #: trust region: the same kl_weight works for rewards in cm or in m)
    normalize_advantages: bool = True

    # ---- value function V(s0), least squares on the batch's rewards -----------------------------
    #: full-batch Adam steps of the value fit per iteration (V is warm-started)
    value_epochs: int = 50
    #: Adam learning rate of the value function
    value_lr: float = 3e-3

    # ---- networks ---------------------------------------------------------------------------------
    #: hidden widths of the goal MLPs (policy, q, value)
    hidden_sizes: tuple[int, ...] = (64, 64)
    #: initial std of every latent dimension; None = the prior's std (1 for N(0, I),
    #: 1/sqrt(3) for U(-1, 1)), so that the first samples look like prior samples
    init_std: float | None = None
    #: a log-std head on the features instead of one learned log-std per latent dimension
    state_dependent_std: bool = False
    #: goal encoding of the goal networks, "xy" or "polar"; None = per task
    #: (:data:`GOAL_FEATURES_BY_TASK`)
    goal_features: str | None = None

    # ---- the latent-action environment ----------------------------------------------------------
    #: reward of a trajectory rejected by the executor (joint limits); None = per task
    #: (:data:`INVALID_REWARD_BY_TASK`); rejected episodes are counted and logged
    invalid_reward: float | None = None
    #: latents are clipped to [-b, b] before decoding (part of the environment: the policy's
    #: samples are kept as drawn); None = 1 for a uniform prior (the InfoGAN's support), no clip
    #: for a normal prior
    latent_bound: float | None = None
    #: refuse, before execution, trajectories whose commands would drive the arm into the
    #: scene (the task's workspace check, e.g. the hockey blade commanded into the table): they
    #: are not executed and get ``invalid_reward``, like trajectories beyond the joint limits
    workspace_check: bool = True

    # ---- warm start from demonstrations (em/warm_start.py; used when data is given) -----------
    #: demonstrations that ended at most this far from their goal give the (goal, latent)
    #: pairs (m); None = a tenth of the task's success radius (hockey 5 mm, basketball 15 mm)
    warm_start_max_distance_m: float | None = None
    #: epochs of the least-squares fit of the goal policy's mean to the pairs
    warm_start_epochs: int = 2000
    #: Adam learning rate of that fit
    warm_start_lr: float = 1e-3
    #: std of every latent dimension after the warm start (the prior's is 1): the pairs
    #: already locate the good latents, so EM explores around them. Measured on basketball
    #: (seed 0): std 1.0 lost the fit's advantage in the first iterations (0.33 m after the
    #: fit, 0.50 m after 10 iterations), 0.25 kept it (0.30 m, then 0.26 m after 20)
    warm_start_std: float = 0.25
    #: image policy: gradient steps (at least) of its distillation from the fitted goal
    #: policy on the pairs' scenes, in rounds of ``distill_epochs`` epochs
    warm_start_distill_steps: int = 2000

    # ---- image policy (input remapping, Appendix A.1) -----------------------------------------
    #: epochs of the M-step distillation KL(q(.|goal) || pi(.|image)) over the image buffer
    distill_epochs: int = 5
    #: Adam learning rate of the image policy
    distill_lr: float = 1e-3
    #: images per distillation step
    distill_minibatch_size: int = 64
    #: (goal, image) pairs of the most recent episodes kept for the distillation
    image_buffer_size: int = 2048
    #: camera image size (pixels, square)
    image_size: int = 64

    # ---- bookkeeping --------------------------------------------------------------------------------
    #: seed of goals, latent samples, minibatch order and network initialisation
    seed: int = 0
    #: held-out goals of the final evaluation (a fixed stream, the same for every seed)
    eval_goals: int = 500
    #: evaluation success radius (m); None = per task (:data:`SUCCESS_RADIUS_BY_TASK_M`)
    success_radius_m: float | None = None
    #: write the training checkpoint every this many iterations (and after the last one)
    checkpoint_every: int = 1
    #: free-form notes stored with the run
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.hidden_sizes = tuple(int(h) for h in self.hidden_sizes)
        for name in (
            "episodes_per_iteration", "latents_per_goal", "estep_epochs", "minibatch_size",
            "value_epochs", "distill_epochs", "distill_minibatch_size", "image_buffer_size",
            "image_size", "eval_goals", "checkpoint_every", "warm_start_epochs",
            "warm_start_distill_steps",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.episodes_per_iteration < 2:
            raise ValueError("episodes_per_iteration must be >= 2 (advantages need a spread)")
        if self.episodes_per_iteration % self.latents_per_goal:
            raise ValueError(
                f"episodes_per_iteration ({self.episodes_per_iteration}) must be a multiple of"
                f" latents_per_goal ({self.latents_per_goal})"
            )
        for name in ("lr", "value_lr", "distill_lr", "max_kl", "warm_start_lr", "warm_start_std"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if not (math.isfinite(self.kl_weight) and self.kl_weight >= 0):
            raise ValueError(f"kl_weight must be >= 0, got {self.kl_weight!r}")
        for name in ("init_std", "latent_bound", "success_radius_m", "warm_start_max_distance_m"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be None or a finite number > 0, got {value!r}")
        if self.invalid_reward is not None and not math.isfinite(self.invalid_reward):
            raise ValueError(f"invalid_reward must be finite, got {self.invalid_reward!r}")
        if self.goal_features not in (None, "xy", "polar"):
            raise ValueError(
                f"goal_features must be None, 'xy' or 'polar', got {self.goal_features!r}"
            )
        if not self.hidden_sizes or min(self.hidden_sizes) < 1:
            raise ValueError(f"hidden_sizes must be positive widths, got {self.hidden_sizes!r}")

    # ---- per task / per prior resolution ----------------------------------------------------
    @classmethod
    def for_task(cls, task: str, **values: Any) -> "EMConfig":
        """The config of ``task``: :data:`TASK_DEFAULTS` for the fields not in ``values``."""
        return cls(**{**TASK_DEFAULTS.get(task, {}), **values})

    def invalid_reward_for(self, task: str) -> float:
        if self.invalid_reward is not None:
            return float(self.invalid_reward)
        if task not in INVALID_REWARD_BY_TASK:
            raise ValueError(f"no default invalid_reward for task {task!r}; set invalid_reward")
        return INVALID_REWARD_BY_TASK[task]

    def success_radius_for(self, task: str) -> float:
        if self.success_radius_m is not None:
            return float(self.success_radius_m)
        if task not in SUCCESS_RADIUS_BY_TASK_M:
            raise ValueError(f"no default success radius for task {task!r}; set success_radius_m")
        return SUCCESS_RADIUS_BY_TASK_M[task]

    def warm_start_max_distance_for(self, task: str) -> float:
        if self.warm_start_max_distance_m is not None:
            return float(self.warm_start_max_distance_m)
        return round(0.1 * self.success_radius_for(task), 6)

    def goal_features_for(self, task: str) -> str:
        if self.goal_features is not None:
            return self.goal_features
        return GOAL_FEATURES_BY_TASK.get(task, "xy")

    def init_std_for(self, prior: str) -> float:
        return float(self.init_std) if self.init_std is not None else PRIOR_STD[prior]

    def latent_bound_for(self, prior: str) -> float | None:
        if self.latent_bound is not None:
            return float(self.latent_bound)
        return 1.0 if prior == "uniform" else None

    # ---- serialisation ----------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["hidden_sizes"] = list(self.hidden_sizes)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "EMConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown EMConfig fields {unknown}")
        return cls(**data)


#: settings that must not change when a run is resumed (iterations may grow; eval_goals and
#: checkpoint_every may change)
FIXED_ON_RESUME = tuple(
    f.name for f in fields(EMConfig) if f.name not in ("eval_goals", "checkpoint_every", "extra")
)
