"""Warm start of the latent policy from the demonstrations (ours, optional).

Algorithm 1 leaves the initial policy pi_theta open; by default it starts near the prior
(``EMConfig.init_std``). With a warm start, the goal policy's mean is first fitted by least
squares to (goal, latent) pairs of demonstrations that reached their goal: the latent of a
demonstration is the generator's inverse map of its trajectory
(:meth:`~genrl_ros.models.base.TrajectoryGenerator.infer_latent`: the VAE's encoder mean, the
InfoGAN's Q mean). Its std is then set to ``warm_start_std``, and EM goes on from there. It
uses the data the generative model was trained on, as the PPO baseline's behaviour cloning
does (section 6.4: every method gets the same demonstrations).

The image policy (input remapping) is warm-started the same way: the goal-conditioned q is
fitted, then distilled into the camera policy on the rendered scenes of the pairs' goals.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from genrl_ros.data.dataset import TrajectoryDataset
    from genrl_ros.em.config import EMConfig
    from genrl_ros.em.trainer import EMTrainer


@dataclass
class WarmStartPairs:
    """Goals (n, 2) (m) and the latents (n, L) of the demonstrations that reached them."""

    goals_xy: np.ndarray
    latents: np.ndarray
    max_distance_m: float
    n_demonstrations: int

    def __len__(self) -> int:
        return int(self.goals_xy.shape[0])

    def describe(self) -> dict[str, Any]:
        """What identifies the pairs (``run.json``; a resumed run must use the same)."""
        digest = hashlib.sha256()
        digest.update(np.ascontiguousarray(self.goals_xy, dtype=np.float32).tobytes())
        digest.update(np.ascontiguousarray(self.latents, dtype=np.float32).tobytes())
        return {
            "pairs": len(self),
            "demonstrations": self.n_demonstrations,
            "max_distance_m": self.max_distance_m,
            "pairs_sha256": digest.hexdigest(),
        }


def demonstration_pairs(
    generator: Any, dataset: TrajectoryDataset, max_distance_m: float
) -> WarmStartPairs:
    """(goal, latent) pairs of the safe demonstrations that ended at most ``max_distance_m``
    from their goal.

    :raises ValueError: the dataset does not fit the generator, or no demonstration qualifies.
    """
    from genrl_ros.train_model import safe_mask  # noqa: PLC0415

    if dataset.task != generator.task or dataset.horizon != generator.horizon or tuple(
        dataset.joint_names
    ) != tuple(generator.joint_names):
        raise ValueError(
            f"warm-start data ({dataset.task}, horizon {dataset.horizon}, "
            f"{len(dataset.joint_names)} joints) does not fit the generator ({generator.task}, "
            f"horizon {generator.horizon}, {len(generator.joint_names)} joints)"
        )
    chosen = safe_mask(dataset) & (np.asarray(dataset.distance_m) <= max_distance_m)
    if not chosen.any():
        raise ValueError(
            f"warm start: none of the {dataset.n_episodes} demonstrations is safe and ended "
            f"within {max_distance_m} m of its goal"
        )
    trajectories = torch.as_tensor(np.asarray(dataset.trajectories)[chosen], dtype=torch.float32)
    latents = generator.infer_latent(trajectories).detach().cpu().numpy().astype(np.float32)
    return WarmStartPairs(
        goals_xy=np.asarray(dataset.goals_xy, dtype=np.float32)[chosen],
        latents=latents,
        max_distance_m=float(max_distance_m),
        n_demonstrations=int(dataset.n_episodes),
    )


def pairs_from_data(generator: Any, data: str | os.PathLike[str], config: EMConfig) -> WarmStartPairs:
    """:func:`demonstration_pairs` of the dataset directory ``data`` (``genrl demos``), within
    the config's warm-start distance for the generator's task."""
    from genrl_ros.train_model import load_training_data  # noqa: PLC0415

    dataset, _ = load_training_data(data=str(data))  # names a missing directory
    return demonstration_pairs(generator, dataset,
                               config.warm_start_max_distance_for(str(generator.task)))


def warm_start(trainer: EMTrainer, pairs: WarmStartPairs) -> dict[str, Any]:
    """Fit the trainer's goal-conditioned q to the pairs (mean squared error of its mean,
    ``warm_start_epochs`` epochs of Adam), set its std to ``warm_start_std``, and make it the
    policy (goal policy: a copy; image policy: distilled). Deterministic for a config seed.

    :returns: what was done: pairs, epochs, per-dimension RMS residual of the fit.
    """
    config = trainer.config
    if trainer.iteration != 0:
        raise ValueError(f"a warm start comes before EM; the trainer is at iteration {trainer.iteration}")
    if pairs.latents.shape[1] != trainer.latent_dim:
        raise ValueError(
            f"warm-start latents have {pairs.latents.shape[1]} dimensions, the generator "
            f"{trainer.latent_dim}"
        )
    goals = torch.as_tensor(pairs.goals_xy, dtype=torch.float32)
    targets = torch.as_tensor(pairs.latents, dtype=torch.float32)
    q = trainer.q
    mean_parameters = [p for name, p in q.named_parameters() if "log_std" not in name]
    optimizer = torch.optim.Adam(mean_parameters, lr=config.warm_start_lr)
    order_rng = torch.Generator().manual_seed(int(config.seed))
    for _ in range(config.warm_start_epochs):
        order = torch.randperm(len(pairs), generator=order_rng)
        for index in order.split(config.minibatch_size * 4):  # 128 hockey, 256 basketball
            mean, _ = q(goals[index])
            loss = (mean - targets[index]).pow(2).sum(dim=1).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        residual = (q(goals)[0] - targets).pow(2).mean(dim=0).sqrt()
    _set_std(q, config.warm_start_std)
    if trainer.observation == "goal":
        trainer.policy.load_state_dict(q.state_dict())
        distill_kl = 0.0
    else:
        _set_std(trainer.policy, config.warm_start_std)
        goals_xy = pairs.goals_xy.astype(np.float64)
        trainer._add_to_buffer(goals_xy, trainer.camera.render_batch(goals_xy))
        steps_per_round = config.distill_epochs * -(-len(pairs) // config.distill_minibatch_size)
        for _ in range(-(-config.warm_start_distill_steps // steps_per_round)):
            distill_kl = trainer.distill()
    return {
        "pairs": len(pairs),
        "demonstrations": pairs.n_demonstrations,
        "max_distance_m": pairs.max_distance_m,
        "epochs": config.warm_start_epochs,
        "std": config.warm_start_std,
        "fit_rms_residual": [round(float(v), 4) for v in residual],
        "distill_kl": float(distill_kl),
    }


def _set_std(policy: torch.nn.Module, std: float) -> None:
    """The same std for every latent dimension and observation."""
    head = policy.head
    with torch.no_grad():
        if head.state_dependent_std:
            head.log_std_head.weight.zero_()
            head.log_std_head.bias.fill_(float(np.log(std)))
        else:
            head.log_std.fill_(float(np.log(std)))
