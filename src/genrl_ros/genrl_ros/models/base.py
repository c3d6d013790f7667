"""The trajectory-generator interface shared by the beta-VAE and the InfoGAN.

A :class:`TrajectoryGenerator` maps a latent action ``alpha`` (``latent_dim`` numbers) to a
joint trajectory of ``horizon`` commands of ``len(joint_names)`` joints, in radians.

Normalisation: the networks work on trajectories normalised per joint and per time step,
``(tau[t, j] - mean[t, j]) / std[t, j]``, with ``mean``/``std`` computed on the training
trajectories (``std`` floored at :data:`STD_FLOOR_RAD` so that a joint that never moves at a
time step does not blow up). Both are buffers of the module, so they are saved in every
checkpoint, and :meth:`TrajectoryGenerator.decode` always returns radians.

The interface used by the metrics (``genrl_ros.metrics``) and the policy training:
``latent_dim``, ``prior`` ("normal" | "uniform"), ``sample_prior(n, generator)``,
``decode(alpha)`` -> (n, T, J) radians, ``sample(n, generator)``, ``infer_latent(tau)``
(the inverse map, (n, T, J) -> (n, latent_dim)), plus ``horizon``,
``joint_names``, ``control_dt_s`` and ``task``.

BatchNorm: ``decode`` runs the decoder in the module's current mode. Generators returned by
:func:`genrl_ros.models.checkpoint.load_generator` are in ``eval()`` mode (running statistics,
any batch size including 1); the training code switches modes itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

#: lower bound of the per-joint, per-step standard deviation used for normalisation (rad)
STD_FLOOR_RAD = 1e-3

PRIORS = ("normal", "uniform")


def decoder_layers(latent_dim: int, output_dim: int) -> nn.Sequential:
    """The generator / decoder of Table 7 (paper, Appendix B):
    Lin(N_alpha,128)+BN+ReLU, Lin(128,256)+BN+ReLU, Lin(256,512)+BN+ReLU, Lin(512,InputDim)."""
    return nn.Sequential(
        nn.Linear(latent_dim, 128),
        nn.BatchNorm1d(128),
        nn.ReLU(),
        nn.Linear(128, 256),
        nn.BatchNorm1d(256),
        nn.ReLU(),
        nn.Linear(256, 512),
        nn.BatchNorm1d(512),
        nn.ReLU(),
        nn.Linear(512, output_dim),
    )


def _check_positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


class TrajectoryGenerator(nn.Module):
    """Base class: latent action -> joint trajectory (radians) through the Table-7 decoder.

    :param latent_dim: N_alpha.
    :param horizon: T, commands per trajectory.
    :param joint_names: the J joint names (last axis of the trajectories).
    :param control_dt_s: time between commands (s).
    :param task: task name the model was trained for ("hockey", ...).
    :param hparams: kind-specific hyperparameters (beta, lambda), JSON values.
    """

    kind: ClassVar[str] = ""
    prior: ClassVar[str] = "normal"

    def __init__(
        self,
        latent_dim: int,
        horizon: int,
        joint_names: Sequence[str],
        control_dt_s: float,
        task: str,
        **hparams: Any,
    ) -> None:
        super().__init__()
        self.latent_dim = _check_positive_int(latent_dim, "latent_dim")
        self.horizon = _check_positive_int(horizon, "horizon")
        if isinstance(joint_names, str) or not joint_names:
            raise ValueError(f"joint_names must be a non-empty sequence, got {joint_names!r}")
        self.joint_names = tuple(str(n) for n in joint_names)
        self.control_dt_s = float(control_dt_s)
        self.task = str(task)
        self.hparams = dict(hparams)
        if self.prior not in PRIORS:
            raise ValueError(f"prior must be one of {PRIORS}, got {self.prior!r}")
        shape = (self.horizon, self.n_joints)
        self.register_buffer("norm_mean", torch.zeros(shape))
        self.register_buffer("norm_std", torch.ones(shape))
        self.decoder = decoder_layers(self.latent_dim, self.output_dim)

    # ------------------------------------------------------------------ shapes
    @property
    def n_joints(self) -> int:
        return len(self.joint_names)

    @property
    def output_dim(self) -> int:
        """T * J, the flattened trajectory size (InputDim of Tables 7 and 8)."""
        return self.horizon * self.n_joints

    # ------------------------------------------------------------------ normalisation
    def set_normalization(self, trajectories: np.ndarray | torch.Tensor) -> None:
        """Per-joint, per-step mean and std (floored) of training trajectories (N, T, J)."""
        data = np.asarray(
            trajectories.detach().cpu().numpy() if torch.is_tensor(trajectories) else trajectories,
            dtype=np.float64,
        )
        if data.ndim != 3 or data.shape[1:] != (self.horizon, self.n_joints):
            raise ValueError(
                f"trajectories have shape {data.shape}, expected (N, {self.horizon}, "
                f"{self.n_joints})"
            )
        if data.shape[0] < 2:
            raise ValueError(f"need at least 2 trajectories for normalisation, got {data.shape[0]}")
        mean = data.mean(axis=0)
        std = np.maximum(data.std(axis=0), STD_FLOOR_RAD)
        with torch.no_grad():
            self.norm_mean.copy_(torch.from_numpy(mean.astype(np.float32)))
            self.norm_std.copy_(torch.from_numpy(std.astype(np.float32)))

    def normalize(self, trajectories: torch.Tensor) -> torch.Tensor:
        """(n, T, J) radians -> (n, T*J) normalised."""
        if trajectories.shape[1:] != (self.horizon, self.n_joints):
            raise ValueError(
                f"trajectories have shape {tuple(trajectories.shape)}, expected "
                f"(n, {self.horizon}, {self.n_joints})"
            )
        flat = (trajectories - self.norm_mean) / self.norm_std
        return flat.reshape(trajectories.shape[0], self.output_dim)

    def denormalize(self, flat: torch.Tensor) -> torch.Tensor:
        """(n, T*J) normalised -> (n, T, J) radians."""
        shaped = flat.reshape(flat.shape[0], self.horizon, self.n_joints)
        return shaped * self.norm_std + self.norm_mean

    # ------------------------------------------------------------------ the interface
    def _check_alpha(self, alpha: torch.Tensor) -> torch.Tensor:
        if not torch.is_tensor(alpha):
            alpha = torch.as_tensor(np.asarray(alpha), dtype=torch.float32)
        if alpha.ndim != 2 or alpha.shape[1] != self.latent_dim:
            raise ValueError(
                f"alpha has shape {tuple(alpha.shape)}, expected (n, {self.latent_dim})"
            )
        return alpha.to(self.norm_mean.dtype)

    def decode_normalized(self, alpha: torch.Tensor) -> torch.Tensor:
        """(n, latent_dim) -> (n, T*J) normalised trajectories (the raw network output)."""
        return self.decoder(self._check_alpha(alpha))

    def decode(self, alpha: torch.Tensor) -> torch.Tensor:
        """(n, latent_dim) latents -> (n, T, J) joint trajectories in radians."""
        return self.denormalize(self.decode_normalized(alpha))

    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n latents from the prior: N(0, I) ("normal") or U(-1, 1) ("uniform")."""
        n = int(n)
        if self.prior == "normal":
            return torch.randn(n, self.latent_dim, generator=generator)
        return torch.rand(n, self.latent_dim, generator=generator) * 2.0 - 1.0

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n trajectories (n, T, J) in radians decoded from prior samples (no gradient)."""
        with torch.no_grad():
            return self.decode(self.sample_prior(n, generator))

    def infer_latent(self, trajectories: torch.Tensor) -> torch.Tensor:
        """The latent that best explains each trajectory (n, T, J) radians -> (n, latent_dim),
        no gradient: the VAE's encoder mean, the InfoGAN's Q-network mean (the paper's
        inverse maps); e.g. the targets of a policy warm start from demonstrations."""
        raise NotImplementedError(f"{type(self).__name__} has no inverse map")

    # ------------------------------------------------------------------ description
    def model_config(self) -> dict[str, Any]:
        """JSON description from which :func:`make_generator` rebuilds the architecture."""
        return {
            "kind": self.kind,
            "latent_dim": self.latent_dim,
            "prior": self.prior,
            "horizon": self.horizon,
            "joint_names": list(self.joint_names),
            "control_dt_s": self.control_dt_s,
            "task": self.task,
            "hparams": dict(self.hparams),
        }

    def extra_repr(self) -> str:
        hp = ", ".join(f"{k}={v}" for k, v in self.hparams.items())
        return (
            f"task={self.task!r}, latent_dim={self.latent_dim}, prior={self.prior!r}, "
            f"T={self.horizon}, J={self.n_joints}" + (f", {hp}" if hp else "")
        )


def make_generator(config: dict[str, Any]) -> TrajectoryGenerator:
    """A fresh generator from :meth:`TrajectoryGenerator.model_config` output."""
    from genrl_ros.models.infogan import InfoGAN  # noqa: PLC0415
    from genrl_ros.models.vae import BetaVAE  # noqa: PLC0415

    kinds = {BetaVAE.kind: BetaVAE, InfoGAN.kind: InfoGAN}
    kind = config.get("kind")
    if kind not in kinds:
        raise ValueError(f"unknown model kind {kind!r}, expected one of {sorted(kinds)}")
    cls = kinds[kind]
    if config.get("prior", cls.prior) != cls.prior:
        raise ValueError(f"{kind} has prior {cls.prior!r}, config says {config.get('prior')!r}")
    return cls(
        latent_dim=config["latent_dim"],
        horizon=config["horizon"],
        joint_names=config["joint_names"],
        control_dt_s=config["control_dt_s"],
        task=config["task"],
        **dict(config.get("hparams", {})),
    )
