"""beta-VAE over flattened, normalised joint trajectories (paper Section 5.1.1, Appendix B.1).

Decoder: Table 7 (:func:`~genrl_ros.models.base.decoder_layers`). Encoder: the mirror image,
Lin(T*J,512)+BN+ReLU, Lin(512,256)+BN+ReLU, Lin(256,128)+BN+ReLU, then two linear heads
Lin(128,N_alpha) for the mean and the log standard deviation of q(alpha | tau). Prior N(0, I).

Loss per sample (averaged over the batch), on normalised trajectories x (T*J values):

    recon(x, x_hat) + beta * KL(q(alpha|x) || N(0, I))

with ``recon = "mse"`` (default): the mean over the T*J values of the squared error, i.e. the
negative log likelihood of a Gaussian decoder with a fixed variance, scaled by 2 / (T*J) (up
to a constant); or ``recon = "sse"``: the sum over the T*J values (the unit-variance Gaussian
NLL times 2), which makes beta T*J times weaker. The KL term is the closed form for diagonal
Gaussians, summed over the latent dimensions.

Why "mse": the paper's beta values (0.01, 0.005, 0.001) only mean something next to a
per-value reconstruction term. With the sum over 69*7 = 483 values, beta = 0.001 leaves the
KL term negligible: on the 5000-episode hockey dataset (N_alpha 3, 300 epochs) the posterior
standard deviations shrank to ~0.008 with posterior means spread 1.6-2.6 (the prior covers
only the middle of the codes in use): precision 0.67, recall 0.52 of prior samples. With the
mean, the aggregate posterior has variance 0.9-1.3 per dimension (matches the N(0, I) prior)
and precision/recall were 0.82 / 0.67 after the same 300 epochs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from genrl_ros.models.base import TrajectoryGenerator

RECON_KINDS = ("sse", "mse")
#: clamp of the encoder's log standard deviation (numerical safety only)
LOG_STD_RANGE = (-12.0, 6.0)


def encoder_layers(input_dim: int) -> nn.Sequential:
    """The encoder body, symmetric to Table 7 (the heads are separate modules)."""
    return nn.Sequential(
        nn.Linear(input_dim, 512),
        nn.BatchNorm1d(512),
        nn.ReLU(),
        nn.Linear(512, 256),
        nn.BatchNorm1d(256),
        nn.ReLU(),
        nn.Linear(256, 128),
        nn.BatchNorm1d(128),
        nn.ReLU(),
    )


class BetaVAE(TrajectoryGenerator):
    """beta-VAE; ``hparams``: ``beta`` (KL weight), ``recon`` ("mse" | "sse")."""

    kind = "vae"
    prior = "normal"

    def __init__(
        self,
        latent_dim: int,
        horizon: int,
        joint_names: Sequence[str],
        control_dt_s: float,
        task: str,
        beta: float = 0.001,
        recon: str = "mse",
    ) -> None:
        beta = float(beta)
        if not beta >= 0.0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        if recon not in RECON_KINDS:
            raise ValueError(f"recon must be one of {RECON_KINDS}, got {recon!r}")
        super().__init__(
            latent_dim, horizon, joint_names, control_dt_s, task, beta=beta, recon=recon
        )
        self.beta = beta
        self.recon = recon
        self.encoder = encoder_layers(self.output_dim)
        self.enc_mean = nn.Linear(128, self.latent_dim)
        self.enc_log_std = nn.Linear(128, self.latent_dim)

    def encode_normalized(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(n, T*J) normalised -> (mean, log_std) of q(alpha | tau), each (n, latent_dim)."""
        hidden = self.encoder(x)
        log_std = self.enc_log_std(hidden).clamp(*LOG_STD_RANGE)
        return self.enc_mean(hidden), log_std

    def encode(self, trajectories: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(n, T, J) radians -> (mean, log_std) of the approximate posterior."""
        return self.encode_normalized(self.normalize(trajectories))

    def infer_latent(self, trajectories: torch.Tensor) -> torch.Tensor:
        """The encoder mean of q(alpha | tau) (n, latent_dim), no gradient."""
        with torch.no_grad():
            return self.encode(torch.as_tensor(trajectories, dtype=self.norm_mean.dtype))[0]

    def reconstruction_error(self, x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
        """Per-sample reconstruction term (n,) on normalised data (see module doc)."""
        squared = (x_hat - x).pow(2)
        return squared.sum(dim=1) if self.recon == "sse" else squared.mean(dim=1)

    @staticmethod
    def kl_divergence(mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
        """KL(N(mean, exp(log_std)^2) || N(0, I)) per sample (n,)."""
        return 0.5 * (mean.pow(2) + torch.exp(2.0 * log_std) - 1.0 - 2.0 * log_std).sum(dim=1)

    def loss(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """Batch loss on normalised x (n, T*J): ``loss``, ``recon`` and ``kl`` (batch means)."""
        mean, log_std = self.encode_normalized(x)
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
        alpha = mean + torch.exp(log_std) * noise
        x_hat = self.decode_normalized(alpha)
        recon = self.reconstruction_error(x, x_hat).mean()
        kl = self.kl_divergence(mean, log_std).mean()
        return {"loss": recon + self.beta * kl, "recon": recon, "kl": kl}

    def hparams_summary(self) -> dict[str, Any]:
        return {"beta": self.beta, "recon": self.recon}
