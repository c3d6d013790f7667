"""Latent policies pi(alpha | s0) and the value function V(s0) of GenRL (seed 000, section 4),
in torch (training and ONNX export only; inference on the robot uses
:mod:`latent_policy_node.onnx_policy`, which needs no torch).

A policy maps the initial state of an episode to a diagonal Gaussian over the latent space of
a trajectory generator: ``forward(observation) -> (mean, std)``, both (B, L) with
L = ``latent_dim``. Two observations:

* :class:`GoalPolicy`, observation ``"goal"``: the goal (x, y) in metres, (B, 2). The goal is
  normalised inside the network to [-1, 1] per axis by the bounding box of the task's goal
  region (:func:`goal_bounds`), stored as buffers, so callers (and the ONNX graph) take
  metres. ``goal_features="polar"`` adds the goal's range and direction from the origin
  (:class:`GoalFeatures`), also computed inside the network.
* :class:`ImagePolicy`, observation ``"image"``: the camera image of the initial scene,
  (B, 3, H, W) float in [0, 1] (``sim_bridge.camera.SceneCamera`` images, 64 x 64, converted
  by :func:`latent_policy_node.onnx_policy.images_to_input`). Three convolutions, a spatial
  soft-argmax (expected image coordinates of each feature map: the goal marker is a small
  object whose position is what matters), then an MLP.

Standard deviation (both policies): by default *state independent*, one learned log-std per
latent dimension (as in PPO / TRPO for continuous actions): the exploration noise of the
bandit is then shared across goals, which is what the EM updates of the paper need and keeps
the trust region easy to reason about. ``state_dependent_std=True`` adds a log-std head on
the features instead. Either way the log-std is clamped to [``LOG_STD_MIN``, ``LOG_STD_MAX``]
(std in [1e-3, 7.4]). At initialisation the mean head has tiny weights and zero bias, so the
initial policy is close to N(0, init_std^2 I) for every observation: with ``init_std`` = the
prior's std the first samples look like prior samples of the generator.

:class:`ValueFunction` is an MLP on the normalised goal, V(s0) -> (B,). For the image policy
the value (and the variational policy q of the E-step) stay goal-based: the input remapping
trick of Appendix A.1; only the final policy sees images.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

#: clamp of the log standard deviation: std in [exp(-6.9), exp(2)] = [1e-3, 7.4]
LOG_STD_MIN = math.log(1e-3)
LOG_STD_MAX = 2.0
OBSERVATIONS = ("goal", "image")


# --------------------------------------------------------------------------- goal region


def goal_bounds(task: Any) -> tuple[np.ndarray, np.ndarray]:
    """Bounding box (low, high), each (2,) in metres, of a task's goal region.

    Hockey: x in [0.65, 1.3], y in [-0.4, 0.4]. Basketball (radius r in [1, 6] m, angle in
    [-pi/2, pi/2]): x in [0, 6], y in [-6, 6]. Another task: the box of 20000 goals drawn
    from its ``sample_goals`` with a fixed seed.

    :param task: a ``sim_bridge`` task or its name.
    """
    if isinstance(task, str):
        from sim_bridge.tasks import make_task  # noqa: PLC0415

        task = make_task(task)
    name = getattr(task, "name", "")
    if name == "hockey":
        from sim_bridge.tasks.hockey import GOAL_X_RANGE_M, GOAL_Y_RANGE_M  # noqa: PLC0415

        return (
            np.array([GOAL_X_RANGE_M[0], GOAL_Y_RANGE_M[0]], dtype=np.float64),
            np.array([GOAL_X_RANGE_M[1], GOAL_Y_RANGE_M[1]], dtype=np.float64),
        )
    if name == "basketball":
        from sim_bridge.tasks.basketball import (  # noqa: PLC0415
            GOAL_ANGLE_RANGE_RAD,
            GOAL_RADIUS_RANGE_M,
        )

        radii, angles = GOAL_RADIUS_RANGE_M, GOAL_ANGLE_RANGE_RAD  # angles within [-pi/2, pi/2]
        corners_x = [r * math.cos(a) for r in radii for a in angles]
        corners_y = [r * math.sin(a) for r in radii for a in angles]
        x_max = radii[1] * (1.0 if angles[0] <= 0.0 <= angles[1] else max(map(math.cos, angles)))
        return (
            np.array([max(min(corners_x), 0.0), min(corners_y)]),
            np.array([x_max, max(corners_y)]),
        )
    goals = np.asarray(task.sample_goals(20000, np.random.default_rng(0)), dtype=np.float64)
    return goals.min(axis=0), goals.max(axis=0)


# --------------------------------------------------------------------------- Gaussians


def gaussian_log_prob(alpha: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """log N(alpha; mean, diag(std^2)), summed over the latent: (B, L) x3 -> (B,)."""
    z = (alpha - mean) / std
    return (-0.5 * z.pow(2) - torch.log(std) - 0.5 * math.log(2.0 * math.pi)).sum(dim=-1)


def gaussian_kl(
    mean_q: torch.Tensor, std_q: torch.Tensor, mean_p: torch.Tensor, std_p: torch.Tensor
) -> torch.Tensor:
    """KL(N(mean_q, std_q^2) || N(mean_p, std_p^2)) of diagonal Gaussians: (B, L) x4 -> (B,)."""
    var_ratio = (std_q / std_p).pow(2)
    mean_term = ((mean_q - mean_p) / std_p).pow(2)
    return 0.5 * (var_ratio + mean_term - 1.0 - torch.log(var_ratio)).sum(dim=-1)


def gaussian_entropy(std: torch.Tensor) -> torch.Tensor:
    """Entropy of a diagonal Gaussian (nats): (B, L) -> (B,)."""
    return (torch.log(std) + 0.5 * math.log(2.0 * math.pi * math.e)).sum(dim=-1)


# --------------------------------------------------------------------------- building blocks


def _mlp(sizes: Sequence[int], activation: type[nn.Module] = nn.Tanh) -> nn.Sequential:
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(fan_in, fan_out), activation()]
    return nn.Sequential(*layers)


def _check_positive(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


class GoalNormalizer(nn.Module):
    """Goal (B, 2) in metres -> (B, 2) in [-1, 1] over the goal region's bounding box."""

    def __init__(self, goal_low: Sequence[float], goal_high: Sequence[float]) -> None:
        super().__init__()
        low = torch.as_tensor(np.asarray(goal_low, dtype=np.float32).reshape(2))
        high = torch.as_tensor(np.asarray(goal_high, dtype=np.float32).reshape(2))
        if not bool(torch.all(high > low)):
            raise ValueError(f"goal bounds need high > low, got low {low.tolist()}, high {high.tolist()}")
        self.register_buffer("goal_low", low)
        self.register_buffer("goal_high", high)

    def forward(self, goal_xy: torch.Tensor) -> torch.Tensor:
        return 2.0 * (goal_xy - self.goal_low) / (self.goal_high - self.goal_low) - 1.0


#: goal encodings of :class:`GoalFeatures`: "xy" (normalised x, y), "polar" (normalised x, y
#: plus the radius and the direction cosines seen from the robot base at the origin)
GOAL_FEATURES = ("xy", "polar")


class GoalFeatures(nn.Module):
    """Goal (B, 2) in metres -> network input features (B, F), F = :attr:`size`.

    ``"xy"``: the normalised goal (:class:`GoalNormalizer`), F = 2. ``"polar"``: additionally
    the distance r from the origin (the robot base), mapped to [-1, 1] over [0, the largest
    corner distance of the goal box], and the direction (cos, sin) = (x, y) / r, F = 5. A
    thrower at the origin (basketball) acts on direction and range; with polar features the
    MLP need not build atan2 / sqrt out of tanh units. Elementwise arithmetic only (no atan2),
    so the ONNX graph stays simple. The only state is the normaliser's two buffers (the state
    dict keys are ``normalizer.goal_low`` / ``normalizer.goal_high`` of the owner, as before
    the polar option existed: old checkpoints load unchanged).
    """

    def __init__(self, kind: str = "xy") -> None:
        super().__init__()
        if kind not in GOAL_FEATURES:
            raise ValueError(f"goal features must be one of {GOAL_FEATURES}, got {kind!r}")
        self.kind = kind
        self.size = 2 if kind == "xy" else 5

    def forward(self, goal_xy: torch.Tensor, normalizer: GoalNormalizer) -> torch.Tensor:
        xy = normalizer(goal_xy)
        if self.kind == "xy":
            return xy
        low, high = normalizer.goal_low, normalizer.goal_high
        radius_max = torch.sqrt(torch.maximum(low.pow(2), high.pow(2)).sum())
        radius = goal_xy.norm(dim=-1, keepdim=True)
        direction = goal_xy / radius.clamp_min(1e-6)  # (cos, sin); the base itself is no goal
        return torch.cat([xy, 2.0 * radius / radius_max - 1.0, direction], dim=-1)


class GaussianHead(nn.Module):
    """Features (B, F) -> mean (B, L), std (B, L); see the module docstring for the std."""

    def __init__(
        self, features: int, latent_dim: int, init_std: float, state_dependent_std: bool
    ) -> None:
        super().__init__()
        if not (init_std > 0 and math.isfinite(init_std)):
            raise ValueError(f"init_std must be > 0, got {init_std}")
        self.state_dependent_std = bool(state_dependent_std)
        self.mean = nn.Linear(features, latent_dim)
        nn.init.orthogonal_(self.mean.weight, gain=0.01)
        nn.init.zeros_(self.mean.bias)
        log_std = math.log(init_std)
        if self.state_dependent_std:
            self.log_std_head = nn.Linear(features, latent_dim)
            nn.init.orthogonal_(self.log_std_head.weight, gain=0.01)
            nn.init.constant_(self.log_std_head.bias, log_std)
        else:
            self.log_std = nn.Parameter(torch.full((latent_dim,), log_std))

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = self.mean(features)
        if self.state_dependent_std:
            log_std = self.log_std_head(features)
        else:
            log_std = self.log_std.expand_as(mean)
        return mean, torch.exp(torch.clamp(log_std, LOG_STD_MIN, LOG_STD_MAX))


# --------------------------------------------------------------------------- policies


class LatentPolicy(nn.Module):
    """Base class of the Gaussian latent policies: ``forward(obs) -> (mean, std)``."""

    observation: str = ""

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.latent_dim = _check_positive(latent_dim, "latent_dim")

    def sample(
        self, observation: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """alpha ~ pi(. | obs) without gradient: returns (alpha, mean, std), each (B, L)."""
        with torch.no_grad():
            mean, std = self(observation)
            noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
            return mean + std * noise, mean, std

    def log_prob(self, observation: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        """log pi(alpha | obs), (B,)."""
        mean, std = self(observation)
        return gaussian_log_prob(alpha, mean, std)

    def config(self) -> dict[str, Any]:
        """JSON description from which :func:`make_policy` rebuilds the architecture."""
        raise NotImplementedError


class GoalPolicy(LatentPolicy):
    """pi(alpha | goal): MLP on the normalised goal.

    :param latent_dim: L, the generator's latent size.
    :param goal_low, goal_high: (2,) bounding box of the goal region (m), see
        :func:`goal_bounds`.
    :param hidden_sizes: hidden layer widths (tanh).
    :param init_std: initial standard deviation of every latent dimension.
    :param state_dependent_std: learn a log-std head on the features instead of one global
        log-std per dimension.
    :param goal_features: input encoding of the goal, see :class:`GoalFeatures`.

    ``forward(goal_xy (B, 2) metres) -> (mean (B, L), std (B, L))``.
    """

    observation = "goal"

    def __init__(
        self,
        latent_dim: int,
        goal_low: Sequence[float],
        goal_high: Sequence[float],
        hidden_sizes: Sequence[int] = (64, 64),
        init_std: float = 1.0,
        state_dependent_std: bool = False,
        goal_features: str = "xy",
    ) -> None:
        super().__init__(latent_dim)
        self.hidden_sizes = tuple(_check_positive(h, "hidden size") for h in hidden_sizes)
        self.init_std = float(init_std)
        self.normalizer = GoalNormalizer(goal_low, goal_high)
        self.features = GoalFeatures(goal_features)
        self.body = _mlp((self.features.size, *self.hidden_sizes))
        features = self.hidden_sizes[-1] if self.hidden_sizes else self.features.size
        self.head = GaussianHead(features, self.latent_dim, self.init_std, state_dependent_std)

    def forward(self, goal_xy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.body(self.features(goal_xy, self.normalizer)))

    def config(self) -> dict[str, Any]:
        return {
            "observation": self.observation,
            "latent_dim": self.latent_dim,
            "goal_low": self.normalizer.goal_low.tolist(),
            "goal_high": self.normalizer.goal_high.tolist(),
            "hidden_sizes": list(self.hidden_sizes),
            "init_std": self.init_std,
            "state_dependent_std": self.head.state_dependent_std,
            "goal_features": self.features.kind,
        }


class SpatialSoftArgmax(nn.Module):
    """Feature maps (B, C, H, W) -> expected (x, y) image coordinates in [-1, 1] of each
    map's softmax, (B, 2C) (Levine et al. 2016), with a learned temperature."""

    def __init__(self, height: int, width: int) -> None:
        super().__init__()
        ys, xs = torch.meshgrid(
            torch.linspace(-1.0, 1.0, height), torch.linspace(-1.0, 1.0, width), indexing="ij"
        )
        self.register_buffer("pos_x", xs.reshape(-1))
        self.register_buffer("pos_y", ys.reshape(-1))
        self.log_temperature = nn.Parameter(torch.zeros(()))

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        b, c = maps.shape[0], maps.shape[1]
        flat = maps.reshape(b, c, -1) / torch.exp(self.log_temperature)
        weights = torch.softmax(flat, dim=-1)
        x = (weights * self.pos_x).sum(dim=-1)
        y = (weights * self.pos_y).sum(dim=-1)
        return torch.cat([x, y], dim=1)


class ImagePolicy(LatentPolicy):
    """pi(alpha | image): small CNN on the camera image of the initial scene.

    Conv(3->c1, 5x5, stride 2) + ReLU, Conv(c1->c2, 3x3, stride 2) + ReLU,
    Conv(c2->c3, 3x3, stride 1) + ReLU, spatial soft-argmax (2 c3 coordinates), then an MLP
    (tanh) and the Gaussian head. 64 x 64 input: feature maps of 16 x 16.

    :param latent_dim: L.
    :param image_size: (height, width) of the input images.
    :param channels: (c1, c2, c3).
    :param hidden_sizes: MLP widths after the soft-argmax.
    :param init_std, state_dependent_std: as :class:`GoalPolicy`.

    ``forward(image (B, 3, H, W) float in [0, 1]) -> (mean (B, L), std (B, L))``.
    """

    observation = "image"

    def __init__(
        self,
        latent_dim: int,
        image_size: Sequence[int] = (64, 64),
        channels: Sequence[int] = (16, 32, 32),
        hidden_sizes: Sequence[int] = (128, 128),
        init_std: float = 1.0,
        state_dependent_std: bool = False,
    ) -> None:
        super().__init__(latent_dim)
        height, width = (_check_positive(s, "image size") for s in image_size)
        if height < 8 or width < 8:
            raise ValueError(f"images must be at least 8 x 8 pixels, got {height} x {width}")
        self.image_size = (height, width)
        self.channels = tuple(_check_positive(c, "channels") for c in channels)
        if len(self.channels) != 3:
            raise ValueError(f"channels must be 3 numbers, got {channels!r}")
        self.hidden_sizes = tuple(_check_positive(h, "hidden size") for h in hidden_sizes)
        self.init_std = float(init_std)
        c1, c2, c3 = self.channels
        self.conv = nn.Sequential(
            nn.Conv2d(3, c1, 5, stride=2, padding=2),
            nn.ReLU(),
            nn.Conv2d(c1, c2, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(c2, c3, 3, stride=1, padding=1),
            nn.ReLU(),
        )
        with torch.no_grad():
            fh, fw = self.conv(torch.zeros(1, 3, height, width)).shape[2:]
        self.keypoints = SpatialSoftArgmax(int(fh), int(fw))
        self.body = _mlp((2 * c3, *self.hidden_sizes))
        features = self.hidden_sizes[-1] if self.hidden_sizes else 2 * c3
        self.head = GaussianHead(features, self.latent_dim, self.init_std, state_dependent_std)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        maps = self.conv((image - 0.5) * 2.0)
        return self.head(self.body(self.keypoints(maps)))

    def config(self) -> dict[str, Any]:
        return {
            "observation": self.observation,
            "latent_dim": self.latent_dim,
            "image_size": list(self.image_size),
            "channels": list(self.channels),
            "hidden_sizes": list(self.hidden_sizes),
            "init_std": self.init_std,
            "state_dependent_std": self.head.state_dependent_std,
        }


class ValueFunction(nn.Module):
    """V(goal): expected terminal reward of the current policy for a goal.

    :param goal_low, goal_high: (2,) bounding box of the goal region (m).
    :param hidden_sizes: hidden widths (tanh).
    :param goal_features: input encoding of the goal, see :class:`GoalFeatures`.

    ``forward(goal_xy (B, 2) metres) -> (B,)``.
    """

    def __init__(
        self,
        goal_low: Sequence[float],
        goal_high: Sequence[float],
        hidden_sizes: Sequence[int] = (64, 64),
        goal_features: str = "xy",
    ) -> None:
        super().__init__()
        self.hidden_sizes = tuple(_check_positive(h, "hidden size") for h in hidden_sizes)
        self.normalizer = GoalNormalizer(goal_low, goal_high)
        self.features = GoalFeatures(goal_features)
        self.body = _mlp((self.features.size, *self.hidden_sizes))
        self.out = nn.Linear(self.hidden_sizes[-1] if self.hidden_sizes else self.features.size, 1)
        nn.init.orthogonal_(self.out.weight, gain=1.0)
        nn.init.zeros_(self.out.bias)

    def forward(self, goal_xy: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(self.features(goal_xy, self.normalizer))).squeeze(-1)

    def config(self) -> dict[str, Any]:
        return {
            "goal_low": self.normalizer.goal_low.tolist(),
            "goal_high": self.normalizer.goal_high.tolist(),
            "hidden_sizes": list(self.hidden_sizes),
            "goal_features": self.features.kind,
        }


def make_policy(config: dict[str, Any]) -> LatentPolicy:
    """A fresh policy from :meth:`LatentPolicy.config` output."""
    config = dict(config)
    observation = config.pop("observation", None)
    if observation == "goal":
        return GoalPolicy(**config)
    if observation == "image":
        return ImagePolicy(**config)
    raise ValueError(f"unknown policy observation {observation!r}, expected one of {OBSERVATIONS}")
