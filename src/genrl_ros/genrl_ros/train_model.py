"""``genrl train-model``: train a beta-VAE or an InfoGAN on a demonstration dataset.

Data: by default only the safe episodes are used: no contact of an unsafe class
(``dataset.unsafe`` False) and no joint-limit violation step, the executor's definition of a
safe episode. A seeded fraction (``holdout``, default 10 %) of them is held out; the model
never trains on it. The normalisation statistics (per joint and time step) are those of the
training part.

A run directory (``--out RUN``) holds:

``run.json``     the training configuration and the data it was trained on;
``losses.csv``   one row per epoch: training losses and held-out errors;
``tb/``          the same numbers as TensorBoard scalars;
``last.pt``      a training checkpoint (model, optimisers, RNG states, history), written
                 atomically after every ``checkpoint_every`` epochs and after the last one;
``best.pt``      the model of the best epoch so far (generator checkpoint);
``summary.json`` written when the run is complete (the ``--json`` summary).

Best epoch (Appendix B: "minimum squared error computed between 100 randomly generated
trajectories and trajectories in the test datasets not used during training"): after every
epoch, 100 fixed prior samples (``--selection-samples``) are decoded (BatchNorm in eval mode) and compared with the
held-out trajectories by squared errors (sum over the T*J values, rad^2):

* ``sample_error``: for each generated trajectory, the squared error to the nearest held-out
  one, averaged over the 100 (the literal reading of the paper);
* ``coverage_error``: for each held-out trajectory, the squared error to the nearest of the
  100 generated ones, averaged over the held-out set;
* ``selection_error`` = (sample_error + coverage_error) / 2, the criterion: the best epoch is
  the one with the smallest ``selection_error``.

The literal reading alone selects collapsed models: on the hockey data the first epoch, whose
samples all sit near the mean trajectory, has the smallest ``sample_error`` (0.20 rad^2 vs
0.35 after 300 epochs of an ``sse`` VAE, with precision 0.07 and recall 0.0 against 0.67 / 0.52), because the
mean is close to every trajectory. Adding the reverse direction penalises missing coverage.
The criterion sees distances only, not smoothness: on the hockey data (N_alpha 3, beta 0.001,
800 epochs) it plateaus after ~100 epochs and picked epoch 137, whose prior samples exceed a
velocity limit more often than those of epoch 800 (safe fraction 0.90 vs 0.985; precision /
recall 0.72 / 0.47 vs 0.83 / 0.60), while both are equally close to the held-out set
(selection error with 2000 samples 0.29 vs 0.30). ``best.pt`` is the paper's selection,
``last.pt`` the final weights; ``genrl eval-model`` evaluates either.
For the VAE the held-out reconstruction error (posterior mean decoded; in normalised units,
the loss's unit, and RMSE in rad) is logged as well.

Resuming (``resume=True``) continues from ``last.pt`` and gives bit-for-bit the weights of an
uninterrupted run: the optimiser states, the training RNG (reparameterisation noise / GAN
codes), the global torch, numpy and Python RNG states are restored, and the data order of
epoch e is a permutation drawn from a generator seeded with (seed, e).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import random
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genrl_ros.data.dataset import TrajectoryDataset
from genrl_ros.models.base import TrajectoryGenerator, make_generator
from genrl_ros.models.checkpoint import (
    BEST_FILE,
    CheckpointError,
    build_from_payload,
    check_dataset_matches,
    load_checkpoint,
    save_checkpoint,
)
from genrl_ros.run_dir import LAST_FILE, RUN_FILE, atomic_write_text, check_run_dir, csv_text

LOSSES_FILE = "losses.csv"
SUMMARY_FILE = "summary.json"
TB_DIR = "tb"
KINDS = ("vae", "infogan")
#: settings that must not change when a run is resumed (epochs may grow)
_FIXED_ON_RESUME = (
    "kind", "latent_dim", "beta", "lam", "recon", "batch_size", "lr", "seed", "holdout",
    "include_unsafe", "eval_samples", "lr_final",
)


@dataclass
class TrainConfig:
    """Settings of one training run (paper defaults: lr 2e-4, batch 256).

    ``lr_final`` (ours; None = the paper's fixed learning rate): cosine decay of the learning
    rate from ``lr`` at the first epoch to ``lr_final`` at the last one. Why: with a fixed lr
    the decoder outputs keep a step-to-step jitter (second differences of prior samples
    ~3x those of the hockey demonstrations), which costs precision; a decaying lr lets the
    last epochs settle. The schedule is tied to ``epochs``: resuming with more epochs
    re-times the rest of the schedule.
    """

    kind: str
    latent_dim: int
    epochs: int
    beta: float | None = None
    lam: float | None = None
    recon: str = "mse"
    batch_size: int = 256
    lr: float = 2e-4
    lr_final: float | None = None
    seed: int = 0
    holdout: float = 0.1
    include_unsafe: bool = False
    eval_samples: int = 100
    checkpoint_every: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "vae":
            if self.lam is not None:
                raise ValueError("--lambda is an InfoGAN setting; a VAE takes --beta")
            self.beta = 0.001 if self.beta is None else float(self.beta)
            if not self.beta >= 0:
                raise ValueError(f"beta must be >= 0, got {self.beta}")
        else:
            if self.beta is not None:
                raise ValueError("--beta is a VAE setting; an InfoGAN takes --lambda")
            self.lam = 1.0 if self.lam is None else float(self.lam)
            if not self.lam >= 0:
                raise ValueError(f"lambda must be >= 0, got {self.lam}")
        for name in ("latent_dim", "epochs", "batch_size", "eval_samples", "checkpoint_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.batch_size < 2:
            raise ValueError("batch_size must be >= 2 (BatchNorm)")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.lr_final is not None:
            self.lr_final = float(self.lr_final)
            if not (0 < self.lr_final <= self.lr):
                raise ValueError(f"lr_final must be in (0, lr={self.lr}], got {self.lr_final}")
        if not 0.0 <= self.holdout < 1.0:
            raise ValueError(f"holdout must be in [0, 1), got {self.holdout}")

    @property
    def hparams(self) -> dict[str, Any]:
        if self.kind == "vae":
            return {"beta": self.beta, "recon": self.recon}
        return {"lambda": self.lam}

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- data


def safe_mask(dataset: TrajectoryDataset) -> np.ndarray:
    """(N,) bool: no unsafe contact and no joint-limit violation step."""
    return ~dataset.unsafe & (dataset.joint_limit_violation_steps == 0)


@dataclass
class SplitData:
    train: np.ndarray  # (n_train, T, J) float32 rad
    heldout: np.ndarray  # (n_heldout, T, J)
    info: dict[str, Any]


def split_dataset(
    dataset: TrajectoryDataset, *, holdout: float, seed: int, include_unsafe: bool = False
) -> SplitData:
    """Safe episodes (unless ``include_unsafe``), split into training and held-out parts."""
    mask = np.ones(dataset.n_episodes, bool) if include_unsafe else safe_mask(dataset)
    index = np.flatnonzero(mask)
    n = index.size
    n_heldout = int(round(holdout * n)) if holdout > 0 else 0
    if holdout > 0:
        n_heldout = max(n_heldout, 1)
    if n - n_heldout < 2:
        raise ValueError(
            f"dataset has {n} usable episodes ({dataset.n_episodes} in total, "
            f"{int((~mask).sum())} unsafe excluded): too few to train with a {holdout:.0%} "
            "held-out split"
        )
    order = np.random.default_rng(seed).permutation(index)
    held, train = np.sort(order[:n_heldout]), np.sort(order[n_heldout:])
    trajectories = dataset.trajectories
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(trajectories[train]).tobytes())
    digest.update(b"|")
    digest.update(np.ascontiguousarray(trajectories[held]).tobytes())
    info = {
        "task": dataset.task,
        "horizon": dataset.horizon,
        "joint_names": list(dataset.joint_names),
        "n_episodes": dataset.n_episodes,
        "n_used": int(n),
        "n_excluded_unsafe": int(dataset.n_episodes - n),
        "n_train": int(train.size),
        "n_heldout": int(held.size),
        "data_sha256": digest.hexdigest(),
    }
    return SplitData(trajectories[train].copy(), trajectories[held].copy(), info)


def load_training_data(data: str | None = None, bag: str | None = None) -> tuple[TrajectoryDataset, str]:
    """A dataset from ``--data DIR`` or ``--bag PATH`` (exactly one)."""
    if (data is None) == (bag is None):
        raise ValueError("give exactly one of --data DIR or --bag PATH")
    if data is not None:
        if not Path(data).exists():
            raise FileNotFoundError(f"no dataset at {data}")
        return TrajectoryDataset.load(data), str(data)
    if not Path(bag).exists():
        raise FileNotFoundError(f"no rosbag2 at {bag}")
    from genrl_ros.data.rosbag_io import import_bag  # noqa: PLC0415 - lazy: rosbags

    return import_bag(bag), str(bag)


# --------------------------------------------------------------------------- errors


def nearest_squared_errors(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """For each row of ``a`` (n, D), the squared distance to its nearest row of ``b`` (m, D)."""
    a64, b64 = a.double(), b.double()
    best = torch.full((a64.shape[0],), math.inf, dtype=torch.float64)
    for start in range(0, b64.shape[0], 4096):
        chunk = b64[start : start + 4096]
        d2 = (
            a64.pow(2).sum(1, keepdim=True)
            - 2.0 * a64 @ chunk.T
            + chunk.pow(2).sum(1)[None, :]
        ).clamp_min(0.0)
        best = torch.minimum(best, d2.min(dim=1).values)
    return best


def evaluate_epoch(
    model: TrajectoryGenerator, alpha_eval: torch.Tensor, heldout: torch.Tensor
) -> dict[str, float]:
    """Held-out numbers of the current model (eval mode inside; restores the mode)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            generated = model.decode(alpha_eval).reshape(alpha_eval.shape[0], -1)
            flat_held = heldout.reshape(heldout.shape[0], -1)
            out = {
                "sample_error": float(nearest_squared_errors(generated, flat_held).mean()),
                "coverage_error": float(nearest_squared_errors(flat_held, generated).mean()),
            }
            out["selection_error"] = 0.5 * (out["sample_error"] + out["coverage_error"])
            out["sample_rmse_rad"] = math.sqrt(out["sample_error"] / flat_held.shape[1])
            if model.kind == "vae":
                x = model.normalize(heldout)
                mean, log_std = model.encode_normalized(x)
                x_hat = model.decode_normalized(mean)
                out["heldout_recon"] = float(model.reconstruction_error(x, x_hat).mean())
                out["heldout_kl"] = float(model.kl_divergence(mean, log_std).mean())
                rad = model.denormalize(x_hat) - heldout
                out["heldout_recon_rmse_rad"] = float(rad.pow(2).mean().sqrt())
    finally:
        model.train(was_training)
    return out


# --------------------------------------------------------------------------- run files


def _columns(kind: str) -> list[str]:
    common = ["epoch", "seconds", "lr"]
    if kind == "vae":
        losses = ["loss", "recon", "kl"]
        held = ["heldout_recon", "heldout_kl", "heldout_recon_rmse_rad"]
    else:
        losses = ["d_loss", "d_adversarial", "g_loss", "g_adversarial", "info"]
        held = []
    return common + losses + ["selection_error", "sample_error", "sample_rmse_rad", "coverage_error"] + held


def is_run_complete(run: str | os.PathLike[str]) -> bool:
    """The run directory has a summary (training finished)."""
    return (Path(run) / SUMMARY_FILE).is_file() and (Path(run) / BEST_FILE).is_file()


def prepare_run_dir(out: Path, *, resume: bool, overwrite: bool) -> bool:
    """Check the output directory; returns True when resuming from last.pt."""
    return check_run_dir(out, resume=resume, overwrite=overwrite, what="training run")


def _clear_run_dir(out: Path) -> None:
    if out.is_dir():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def _rng_json() -> dict[str, Any]:
    state = np.random.get_state()
    py_state = random.getstate()
    return {
        "numpy_global": [state[0], state[1].tolist(), int(state[2]), int(state[3]), float(state[4])],
        "python": [py_state[0], list(py_state[1]), py_state[2]],
    }


def _restore_rng_json(saved: dict[str, Any]) -> None:
    kind, keys, pos, has_gauss, gauss = saved["numpy_global"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = saved["python"]
    random.setstate((version, tuple(internal), gauss_next))


def epoch_learning_rate(config: TrainConfig, epoch: int) -> float:
    """Learning rate of ``epoch`` (1-based): ``lr``, or the cosine from ``lr`` (epoch 1) to
    ``lr_final`` (epoch ``epochs``) when ``lr_final`` is set."""
    if config.lr_final is None or config.epochs == 1:
        return config.lr
    progress = (min(epoch, config.epochs) - 1) / (config.epochs - 1)
    return config.lr_final + 0.5 * (config.lr - config.lr_final) * (1.0 + math.cos(math.pi * progress))


def _epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed((int(seed) * 1_000_003 + int(epoch)) % (2**63))
    return torch.randperm(n, generator=generator)


# --------------------------------------------------------------------------- training


class _Optimizers:
    def __init__(self, model: TrajectoryGenerator, lr: float) -> None:
        betas = (0.5, 0.999) if model.kind == "infogan" else (0.9, 0.999)
        if model.kind == "vae":
            self.opts = {"model": torch.optim.Adam(model.parameters(), lr=lr)}
        else:
            # TTUR (models/infogan.py): per-side factors of lr, kept in the param groups so
            # that the lr_final schedule scales both sides
            from genrl_ros.models.infogan import (  # noqa: PLC0415
                DISCRIMINATOR_LR_FACTOR,
                GENERATOR_LR_FACTOR,
            )

            self.opts = {
                "generator": torch.optim.Adam(
                    [{"params": model.decoder.parameters(), "lr_factor": GENERATOR_LR_FACTOR}],
                    lr=lr * GENERATOR_LR_FACTOR,
                    betas=betas,
                ),
                "discriminator": torch.optim.Adam(
                    [
                        {
                            "params": model.discriminator.parameters(),
                            "lr_factor": DISCRIMINATOR_LR_FACTOR,
                        }
                    ],
                    lr=lr * DISCRIMINATOR_LR_FACTOR,
                    betas=betas,
                ),
            }

    def load(self, states: dict[str, Any], path: Path) -> None:
        if set(states) != set(self.opts):
            raise CheckpointError(
                f"{path}: optimiser states {sorted(states)} do not match {sorted(self.opts)}"
            )
        for name, opt in self.opts.items():
            opt.load_state_dict(states[name])


def _train_epoch(
    model: TrajectoryGenerator,
    opts: _Optimizers,
    train_x: torch.Tensor,
    perm: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
) -> dict[str, float]:
    model.train()
    sums: dict[str, float] = {}
    count = 0
    n = perm.numel()
    for start in range(0, n, batch_size):
        rows = perm[start : start + batch_size]
        if rows.numel() < 2:  # BatchNorm needs 2 samples; only a last batch of 1 is dropped
            continue
        x = train_x[rows]
        b = rows.numel()
        if model.kind == "vae":
            opt = opts.opts["model"]
            opt.zero_grad(set_to_none=True)
            losses = model.loss(x, generator=generator)
            losses["loss"].backward()
            opt.step()
            values = {k: float(v.detach()) for k, v in losses.items()}
        else:
            g_opt, d_opt = opts.opts["generator"], opts.opts["discriminator"]
            alpha = model.sample_prior(b, generator)
            fake = model.decode_normalized(alpha)
            d_opt.zero_grad(set_to_none=True)
            d_losses = model.discriminator_loss(x, alpha, fake)
            d_losses["loss"].backward()
            d_opt.step()
            g_opt.zero_grad(set_to_none=True)
            g_losses = model.generator_loss(alpha, fake)
            g_losses["loss"].backward()
            g_opt.step()
            values = {
                "d_loss": float(d_losses["loss"].detach()),
                "d_adversarial": float(d_losses["adversarial"].detach()),
                "g_loss": float(g_losses["loss"].detach()),
                "g_adversarial": float(g_losses["adversarial"].detach()),
                "info": float(g_losses["info"].detach()),
            }
        for key, value in values.items():
            sums[key] = sums.get(key, 0.0) + value * b
        count += b
    return {k: v / max(count, 1) for k, v in sums.items()}


def train_model(
    dataset: TrajectoryDataset,
    out: str | os.PathLike[str],
    config: TrainConfig,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    data_source: str = "",
    tensorboard: bool = True,
) -> dict[str, Any]:
    """Train (or continue) a run in ``out``; returns the summary (also in summary.json)."""
    out = Path(out)
    resuming = prepare_run_dir(out, resume=resume, overwrite=overwrite)
    split = split_dataset(
        dataset, holdout=config.holdout, seed=config.seed, include_unsafe=config.include_unsafe
    )
    payload = None
    if resuming:
        payload = load_checkpoint(out / LAST_FILE, content="training")
        meta = payload["metadata"]
        check_dataset_matches(
            meta["model_config"], dataset, model=str(out / LAST_FILE), data=data_source or "given"
        )
        saved = meta["train_config"]
        changed = [
            f"{k} {saved.get(k)!r} -> {getattr(config, k)!r}"
            for k in _FIXED_ON_RESUME
            if saved.get(k) != getattr(config, k)
        ]
        if changed:
            raise ValueError(
                f"cannot resume {out} with other settings: {', '.join(changed)} "
                "(only --epochs may change)"
            )
        if meta["data"]["data_sha256"] != split.info["data_sha256"]:
            raise ValueError(
                f"cannot resume {out}: the dataset {data_source} differs from the one the run "
                f"was trained on ({meta['data']['n_used']} usable episodes then, "
                f"{split.info['n_used']} now, or different trajectories)"
            )
    elif out.exists():
        _clear_run_dir(out)  # prepare_run_dir allowed it (overwrite of a run directory)
    out.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(config.seed)
    np.random.seed(config.seed % (2**32))
    random.seed(config.seed)
    model = make_generator(
        {
            "kind": config.kind,
            "latent_dim": config.latent_dim,
            "horizon": dataset.horizon,
            "joint_names": list(dataset.joint_names),
            "control_dt_s": dataset.control_dt_s,
            "task": dataset.task,
            "hparams": config.hparams,
        }
    )
    model.set_normalization(split.train)
    opts = _Optimizers(model, config.lr)
    train_gen = torch.Generator().manual_seed(config.seed + 1)
    history: list[dict[str, Any]] = []
    start_epoch = 0
    best = {"epoch": None, "selection_error": math.inf}
    elapsed_before = 0.0
    if payload is not None:
        restored = build_from_payload(payload, out / LAST_FILE)
        model.load_state_dict(restored.state_dict())
        opts.load(payload["optimizers"], out / LAST_FILE)
        meta = payload["metadata"]
        start_epoch = int(meta["epoch"])
        history = list(meta["history"])
        best = dict(meta["best"])
        elapsed_before = float(meta.get("train_seconds", 0.0))
        rng = payload["rng"]
        torch.set_rng_state(rng["torch"])
        train_gen.set_state(rng["train_generator"])
        _restore_rng_json(meta["rng"])

    run_info = {
        "train_config": config.to_json(),
        "model_config": model.model_config(),
        "data": {**split.info, "source": data_source},
        "safe_definition": "no unsafe contact class and no joint-limit violation step",
    }
    atomic_write_text(out / RUN_FILE, json.dumps(run_info, indent=2, allow_nan=False))
    columns = _columns(config.kind)
    atomic_write_text(out / LOSSES_FILE, csv_text(history, columns))

    if progress:
        info = split.info
        print(
            f"[train-model] {config.kind} N_alpha={config.latent_dim} {config.hparams} on "
            f"{info['task']}: {info['n_used']} of {info['n_episodes']} episodes used "
            f"({info['n_excluded_unsafe']} unsafe excluded), {info['n_train']} for training, "
            f"{info['n_heldout']} held out; epochs {start_epoch + 1}..{config.epochs}",
            file=sys.stderr,
            flush=True,
        )
    train_x = model.normalize(torch.from_numpy(split.train)).detach()
    heldout = torch.from_numpy(split.heldout if len(split.heldout) else split.train[:100])
    alpha_eval = model.sample_prior(
        config.eval_samples, torch.Generator().manual_seed(config.seed + 7919)
    )
    writer = None
    if tensorboard:
        from torch.utils.tensorboard import SummaryWriter  # noqa: PLC0415

        writer = SummaryWriter(
            log_dir=str(out / TB_DIR), purge_step=start_epoch + 1 if start_epoch else None
        )
    bar = None
    epochs = range(start_epoch + 1, config.epochs + 1)
    if progress:
        from tqdm.auto import tqdm  # noqa: PLC0415

        bar = tqdm(
            total=config.epochs, initial=start_epoch, desc=f"train {config.kind}", unit="epoch",
            mininterval=1.0,
        )
    started = time.perf_counter()

    def save_last(epoch: int) -> None:
        meta = {
            **run_info,
            "content_note": "training state after this epoch",
            "epoch": epoch,
            "history": history,
            "best": best,
            "train_seconds": elapsed_before + time.perf_counter() - started,
            "rng": _rng_json(),
        }
        save_checkpoint(
            out / LAST_FILE,
            model,
            content="training",
            metadata=meta,
            optimizers=opts.opts,
            rng={"torch": torch.get_rng_state(), "train_generator": train_gen.get_state()},
        )

    try:
        for epoch in epochs:
            epoch_start = time.perf_counter()
            perm = _epoch_permutation(train_x.shape[0], config.seed, epoch)
            row: dict[str, Any] = {"epoch": epoch, "lr": epoch_learning_rate(config, epoch)}
            if config.lr_final is not None:
                for opt in opts.opts.values():
                    for group in opt.param_groups:
                        group["lr"] = row["lr"] * group.get("lr_factor", 1.0)
            row.update(_train_epoch(model, opts, train_x, perm, config.batch_size, train_gen))
            row.update(evaluate_epoch(model, alpha_eval, heldout))
            row["seconds"] = round(time.perf_counter() - epoch_start, 4)
            for key, value in row.items():
                if isinstance(value, float) and not math.isfinite(value):
                    raise FloatingPointError(f"epoch {epoch}: {key} is {value}; training diverged")
            history.append(row)
            if row["selection_error"] < best["selection_error"]:
                best = {"epoch": epoch, "selection_error": row["selection_error"]}
                save_checkpoint(
                    out / BEST_FILE,
                    model,
                    content="generator",
                    metadata={**run_info, "epoch": epoch, "selection": "min selection_error", "row": row},
                )
            with open(out / LOSSES_FILE, "a", encoding="utf-8", newline="") as handle:
                csv.DictWriter(
                    handle, fieldnames=columns, extrasaction="ignore", lineterminator="\n"
                ).writerow(row)
            if writer is not None:
                for key, value in row.items():
                    if key != "epoch":
                        writer.add_scalar(key, value, epoch)
            if epoch % config.checkpoint_every == 0 or epoch == config.epochs:
                save_last(epoch)
            if bar is not None:
                shown = ("loss", "d_loss", "g_loss", "selection_error")
                bar.set_postfix({k: f"{row[k]:.4g}" for k in shown if k in row}, refresh=False)
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        if writer is not None:
            writer.close()

    if not history:
        raise ValueError(f"{out}: no epoch was trained")
    seconds = elapsed_before + time.perf_counter() - started
    best_row = next(r for r in history if r["epoch"] == best["epoch"])
    summary: dict[str, Any] = {
        "kind": config.kind,
        "latent_dim": config.latent_dim,
        **({"beta": config.beta, "recon": config.recon} if config.kind == "vae" else {"lambda": config.lam}),
        "epochs": config.epochs,
        "epochs_this_call": len(list(epochs)),
        "best_epoch": best["epoch"],
        "best_selection_error": best["selection_error"],
        "best_sample_error": best_row["sample_error"],
        "best_coverage_error": best_row["coverage_error"],
        "best_sample_rmse_rad": best_row["sample_rmse_rad"],
        "final_selection_error": history[-1]["selection_error"],
        "n_train": split.info["n_train"],
        "n_heldout": split.info["n_heldout"],
        "n_excluded_unsafe": split.info["n_excluded_unsafe"],
        "seconds": round(seconds, 2),
        "run": str(out),
        "best_model": str(out / BEST_FILE),
    }
    if config.kind == "vae":
        summary["best_heldout_recon"] = best_row["heldout_recon"]
        summary["best_heldout_recon_rmse_rad"] = best_row["heldout_recon_rmse_rad"]
        summary["final_heldout_recon_rmse_rad"] = history[-1]["heldout_recon_rmse_rad"]
        summary["final_loss"] = history[-1]["loss"]
    else:
        summary["final_d_loss"] = history[-1]["d_loss"]
        summary["final_g_loss"] = history[-1]["g_loss"]
    atomic_write_text(out / SUMMARY_FILE, json.dumps(summary, indent=2, allow_nan=False))
    return summary


def run_train_model(args: Any) -> dict[str, Any]:
    """Entry point of ``genrl train-model`` (argparse namespace)."""
    if args.resume and args.overwrite:
        raise ValueError("--resume and --overwrite exclude each other")
    config = TrainConfig(
        kind=args.kind,
        latent_dim=args.latent_dim,
        epochs=args.epochs,
        beta=args.beta,
        lam=args.lam,
        recon=args.recon,
        batch_size=args.batch_size,
        lr=args.lr,
        lr_final=getattr(args, "lr_final", None),
        seed=args.seed,
        holdout=args.holdout,
        include_unsafe=args.include_unsafe,
        eval_samples=args.selection_samples,
        checkpoint_every=args.checkpoint_every,
    )
    prepare_run_dir(Path(args.out), resume=args.resume, overwrite=args.overwrite)  # fail early
    dataset, source = load_training_data(args.data, args.bag)
    return train_model(
        dataset,
        args.out,
        config,
        resume=args.resume,
        overwrite=args.overwrite,
        progress=not args.no_progress,
        data_source=source,
    )
