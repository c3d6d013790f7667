"""InfoGAN over flattened, normalised joint trajectories (paper Section 5.1.2, Appendix B.2).

Generator: Table 7 (:func:`~genrl_ros.models.base.decoder_layers`), input the code alpha
only: the paper's generator maps "a latent sample alpha sampled from the prior noise
distribution" through Lin(N_alpha, 128), so there is no separate incompressible noise input;
the whole input is the code. Prior U(-1, 1) on every code dimension.

Discriminator and Q network (Table 8): shared Lin(T*J,256)+ReLU, Lin(256,128)+ReLU; the
discriminator head Lin(128,1)+Sigmoid; the Q head Lin(128,64), Lin(64,N_alpha), exactly as
listed (no non-linearity between the two Q layers). The Q head outputs the mean of a
Gaussian posterior Q(alpha | tau) with a fixed unit variance, so the information term
-log Q(alpha | g(alpha)) is 0.5 * ||alpha - mu(g(alpha))||^2 (+ a constant), summed over the
code dimensions and averaged over the batch. A learned variance was not used: with a fixed
variance lambda keeps one meaning across models (the weight of a squared error in code units).

Objective (the paper's min-max with the information term weighted by lambda):

* discriminator step (shared layers, discriminator head and Q head):
  BCE(D(tau_real), 1) + BCE(D(g(alpha)), 0) + lambda * info(alpha, Q(g(alpha))), with the
  fake trajectories detached from the generator;
* generator step (generator only): the non-saturating BCE(D(g(alpha)), 1) +
  lambda * info(alpha, Q(g(alpha))).

Optimisers (``genrl train-model``): Adam with betas (0.5, 0.999), the usual GAN setting (the
paper gives only the learning rate 2e-4); the VAE uses Adam's default betas. Two time-scale
update rule (TTUR, Heusel et al. 2017; ours): the generator learns at
``GENERATOR_LR_FACTOR * lr`` (5e-5) and the discriminator at ``DISCRIMINATOR_LR_FACTOR * lr``
(4e-4), with ``lr`` the paper's 2e-4.

Why TTUR (measured on the 5000-episode hockey dataset, N_alpha 3, lambda 1.5): with one
learning rate for both sides the prior samples are jittery from step to step (second
differences ~50x those of the demonstrations; wrist joint's median per-trajectory max speed
~15 rad/s after 30 epochs against a 2.61 rad/s limit, no sample passes the velocity check).
It is not BatchNorm's mode (train- and eval-mode samples are equally jittery), not the
information term (lambda 0 is as jittery) and not the discriminator's capacity: a fresh
Table-8 discriminator separates the frozen generator's samples from the data within ~20
Adam steps. It is the chase: the discriminator stays near chance (BCE ~1.25 of 1.39) because
the generator moves along the discriminator's input gradient, which is spread over all
T*J outputs (the first layer is dense), and Adam turns it into a step of the same size on
every normalised output. A slower generator and a faster discriminator keep the
discriminator informative (BCE ~0.8) and halved the jitter (wrist 8.4 rad/s after 30 epochs);
it does not remove it.

Discriminator input: Table 8 leaves the input size ("in") open. Ours is the normalised
trajectory (T*J) followed by its joint velocities between consecutive commands ((T-1)*J),
each joint's divided by that joint's velocity standard deviation in the training data
(``velocity_scale``, a buffer saved with the model). A jittery sample has velocities far
outside the data's, so the discriminator sees jitter directly and the generator's gradient
pushes against it, instead of against one of T*J independent outputs at a time. Measured on
the same hockey data (N_alpha 3, lambda 1.5, TTUR, 1000 prior samples): positions only, no
sample within the velocity limits; with the velocities, after 100 epochs of ``genrl
train-model``, 76 % within them and 65 % executed safely (10.5 % touch the table), precision
0.25 and recall 0.00 (k = 3, 5000 vs 5000: the generator covers few of the demonstrations'
modes). The fraction within the limits varies from epoch to epoch (48-88 % between epochs 30
and 100 of another run). Also tried (scaled by a quarter of the velocity limits): adding the
accelerations (the discriminator wins outright, precision 0.09), an R1 gradient penalty
(gamma 5: 30 % within the limits), one learning rate for both sides (60 %).

The BCE is computed from the pre-sigmoid output of the discriminator head (numerically stable,
identical in value to the BCE of the Sigmoid output).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genrl_ros.models.base import STD_FLOOR_RAD, TrajectoryGenerator

#: TTUR (see the module doc): the generator's and the discriminator's Adam learning rates
#: are these factors times the configured learning rate (the paper's 2e-4)
GENERATOR_LR_FACTOR = 0.25
DISCRIMINATOR_LR_FACTOR = 2.0


class DiscriminatorQ(nn.Module):
    """Table 8: shared layers, discriminator head (probability real), Q head (code mean).

    :param input_dim: size of the discriminator input (``InfoGAN.discriminator_input``).
    """

    def __init__(self, input_dim: int, latent_dim: int) -> None:
        super().__init__()
        self.shared = nn.Sequential(
            nn.Linear(input_dim, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU()
        )
        self.d_head = nn.Sequential(nn.Linear(128, 1), nn.Sigmoid())
        self.q_head = nn.Sequential(nn.Linear(128, 64), nn.Linear(64, latent_dim))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(n, input_dim) -> (D logits (n,), Q mean (n, latent_dim)); D = sigmoid(logits)."""
        hidden = self.shared(x)
        logits = self.d_head[0](hidden).squeeze(1)
        return logits, self.q_head(hidden)

    def probability(self, x: torch.Tensor) -> torch.Tensor:
        """D(x), the Table-8 output (after the Sigmoid), (n, 1)."""
        return self.d_head(self.shared(x))


class InfoGAN(TrajectoryGenerator):
    """InfoGAN; ``hparams``: ``lambda`` (weight of the information term)."""

    kind = "infogan"
    prior = "uniform"

    def __init__(
        self,
        latent_dim: int,
        horizon: int,
        joint_names: Sequence[str],
        control_dt_s: float,
        task: str,
        **hparams: Any,
    ) -> None:
        unknown = set(hparams) - {"lambda"}
        if unknown:
            raise ValueError(f"unknown InfoGAN hyperparameters {sorted(unknown)}")
        lam = float(hparams.get("lambda", 1.0))
        if not lam >= 0.0:
            raise ValueError(f"lambda must be >= 0, got {lam}")
        super().__init__(latent_dim, horizon, joint_names, control_dt_s, task, **{"lambda": lam})
        self.lam = lam
        #: per-joint divisor of the joint velocities the discriminator sees (rad/s)
        self.register_buffer("velocity_scale", torch.ones(self.n_joints))
        self.discriminator = DiscriminatorQ(
            self.output_dim + (self.horizon - 1) * self.n_joints, self.latent_dim
        )

    def set_normalization(self, trajectories: np.ndarray | torch.Tensor) -> None:
        """Also sets ``velocity_scale``: each joint's velocity std in the trajectories (N, T, J),
        floored at ``STD_FLOOR_RAD`` per control step."""
        super().set_normalization(trajectories)
        data = np.asarray(
            trajectories.detach().cpu().numpy() if torch.is_tensor(trajectories) else trajectories,
            dtype=np.float64,
        )
        velocity = np.diff(data, axis=1) / self.control_dt_s
        scale = np.maximum(velocity.std(axis=(0, 1)), STD_FLOOR_RAD / self.control_dt_s)
        with torch.no_grad():
            self.velocity_scale.copy_(torch.from_numpy(scale.astype(np.float32)))

    def discriminator_input(self, flat: torch.Tensor) -> torch.Tensor:
        """(n, T*J) normalised trajectories -> (n, T*J + (T-1)*J): the trajectories and their
        joint velocities divided by ``velocity_scale``."""
        radians = self.denormalize(flat)
        velocity = (radians[:, 1:] - radians[:, :-1]) / self.control_dt_s / self.velocity_scale
        return torch.cat([flat, velocity.reshape(flat.shape[0], -1)], dim=1)

    def discriminate(self, flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """D logits (n,) and Q means (n, latent_dim) of normalised trajectories (n, T*J)."""
        return self.discriminator(self.discriminator_input(flat))

    def infer_latent(self, trajectories: torch.Tensor) -> torch.Tensor:
        """The Q network's code mean for trajectories (n, T, J) radians, clipped to the
        prior's support [-1, 1], (n, latent_dim), no gradient."""
        with torch.no_grad():
            flat = self.normalize(torch.as_tensor(trajectories, dtype=self.norm_mean.dtype))
            return self.discriminate(flat)[1].clamp(-1.0, 1.0)

    @staticmethod
    def info_loss(alpha: torch.Tensor, q_mean: torch.Tensor) -> torch.Tensor:
        """-log Q(alpha | tau) of a unit-variance Gaussian, without the constant (batch mean)."""
        return 0.5 * (alpha - q_mean).pow(2).sum(dim=1).mean()

    def discriminator_loss(
        self, real: torch.Tensor, alpha: torch.Tensor, fake: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Discriminator + Q step on normalised real (n, T*J) and detached fake samples."""
        real_logits, _ = self.discriminate(real)
        fake_logits, q_mean = self.discriminate(fake.detach())
        adversarial = F.binary_cross_entropy_with_logits(
            real_logits, torch.ones_like(real_logits)
        ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        info = self.info_loss(alpha, q_mean)
        return {"loss": adversarial + self.lam * info, "adversarial": adversarial, "info": info}

    def generator_loss(self, alpha: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        """Generator step: non-saturating adversarial loss + lambda * information term."""
        logits, q_mean = self.discriminate(fake)
        adversarial = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        info = self.info_loss(alpha, q_mean)
        return {"loss": adversarial + self.lam * info, "adversarial": adversarial, "info": info}

    def hparams_summary(self) -> dict[str, Any]:
        return {"lambda": self.lam}
