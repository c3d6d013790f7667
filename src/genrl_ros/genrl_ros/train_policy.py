"""``genrl train-policy``: EM policy training (GenRL Algorithm 1) of a latent policy on a
trained generator, in the batched simulator.

    genrl train-policy --task hockey --model RUN --iterations 100 --seed 0 --out DIR

The generator is a ``genrl train-model`` run directory or checkpoint (its ``best.pt``). The
run directory ``DIR`` receives (see :mod:`genrl_ros.em.trainer`): ``run.json``,
``episodes.csv`` (every training episode: goal, reward, distance, executed, table-contact
steps, latent), ``curve.csv`` / ``curve.png`` (reward vs episodes), ``last.pt`` (training
checkpoint, atomic, every ``--checkpoint-every`` iterations), and when the run is complete
``eval.json`` (final evaluation of the deterministic policy on ``--eval-goals`` held-out
goals) with ``eval_goals.csv`` (one row per goal), ``policy.pt``, ``policy.onnx`` (for the ROS latent-policy node) and ``summary.json``.
``--resume`` continues a killed run from ``last.pt`` exactly.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from genrl_ros.em.config import EMConfig


def _log(message: str) -> None:
    print(f"[train-policy] {message}", file=sys.stderr, flush=True)


def em_config_from_args(args: Any) -> EMConfig:
    """The :class:`EMConfig` of the command line (unset options keep the task's defaults,
    :meth:`EMConfig.for_task`)."""
    values: dict[str, Any] = {"seed": args.seed, "eval_goals": args.eval_goals}
    for name in (
        "episodes_per_iteration", "latents_per_goal", "estep_epochs", "minibatch_size", "lr",
        "kl_weight", "max_kl", "value_epochs", "init_std", "invalid_reward", "distill_epochs",
        "checkpoint_every", "workspace_check", "warm_start_std", "warm_start_max_distance_m",
    ):
        value = getattr(args, name, None)
        if value is not None:
            values[name] = value
    return EMConfig.for_task(args.task, **values)


def load_generator_for(task_name: str, model: str) -> tuple[Any, dict[str, Any]]:
    """The generator of a run directory / checkpoint, checked against the task, and its
    description (path, kind, latent_dim, prior, model_sha256)."""
    from genrl_ros.models.checkpoint import (  # noqa: PLC0415 - imports torch
        build_from_payload,
        check_compatible,
        load_checkpoint,
        resolve_model_path,
    )
    from sim_bridge.tasks import make_task  # noqa: PLC0415

    task = make_task(task_name)
    path = resolve_model_path(model)
    payload = load_checkpoint(path)
    config = payload["metadata"]["model_config"]
    check_compatible(
        config, source=f"model {path}", task=task.name, horizon=task.horizon,
        joint_names=task.joint_names, against=f"task {task.name!r}",
    )
    generator = build_from_payload(payload, path)
    info = {
        "path": str(path),
        "kind": config["kind"],
        "latent_dim": int(config["latent_dim"]),
        "prior": config["prior"],
        "hparams": config.get("hparams", {}),
        "model_sha256": payload["metadata"]["model_sha256"],
    }
    return generator, info


def run_train_policy(args: Any) -> dict[str, Any]:
    """Entry point of ``genrl train-policy``."""
    if getattr(args, "resume", False) and getattr(args, "overwrite", False):
        raise ValueError("--resume and --overwrite exclude each other")
    if args.observation == "image" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("MUJOCO_GL", "osmesa")  # before mujoco is imported, if it is not yet
    if not Path(args.model).exists():
        raise FileNotFoundError(f"no model run or checkpoint at {args.model}")
    config = em_config_from_args(args)
    import torch  # noqa: PLC0415

    torch.set_num_threads(int(args.threads))
    from genrl_ros.em.trainer import train_em  # noqa: PLC0415 - imports torch and mujoco

    generator, model_info = load_generator_for(args.task, args.model)
    _log(
        f"{args.task}: {model_info['kind']} with latent_dim {model_info['latent_dim']} "
        f"({model_info['path']}), {args.observation} policy, {args.iterations} iterations x "
        f"{config.episodes_per_iteration} episodes"
    )
    pairs = None
    if getattr(args, "warm_start", None):
        from genrl_ros.em.warm_start import pairs_from_data  # noqa: PLC0415

        pairs = pairs_from_data(generator, args.warm_start, config)
        _log(f"warm start from {len(pairs)} of {pairs.n_demonstrations} demonstrations "
             f"({args.warm_start})")
    summary = train_em(
        generator,
        args.task,
        args.out,
        iterations=args.iterations,
        config=config,
        observation=args.observation,
        model_info=model_info,
        resume=args.resume,
        overwrite=args.overwrite,
        nthread=args.threads,
        progress=not args.no_progress,
        export_onnx=None if args.no_onnx else "dynamo",
        log=_log,
        warm_start_pairs=pairs,
    )
    return summary
