"""Model checkpoints: atomic saving, validated loading.

A checkpoint is a ``torch.save`` file of a dict holding only tensors and plain JSON values,
read back with ``torch.load(weights_only=True)`` (no pickled code):

``format`` / ``format_version``
    :data:`FORMAT_NAME` and :data:`FORMAT_VERSION`;
``content``
    ``"generator"`` (the model only; ``best.pt``) or ``"training"`` (model, optimisers, RNG
    states, history; ``last.pt``, what ``--resume`` continues from);
``metadata_json``
    a JSON string: the model config (kind, latent_dim, prior, horizon, joint_names,
    control_dt_s, task, hparams), ``model_sha256`` (hash of the weights), the epoch and
    free-form extras (training config, losses history, RNG states of Python / numpy);
``model``
    the ``state_dict`` (weights, BatchNorm statistics, normalisation mean / std);
``optimizers``, ``rng``
    only in training checkpoints: optimiser ``state_dict`` s and torch RNG states.

Saving writes a temporary file next to the target, fsyncs it and renames it over the target
(``os.replace``), so a crash leaves either the old or the new file. Loading reports a
corrupted or truncated file, a file of another format or content, weights that do not hash to
the recorded value, and weights that do not fit the recorded architecture, as
:class:`CheckpointError` naming the file and what does not match.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from genrl_ros.models.base import TrajectoryGenerator, make_generator
from genrl_ros.run_dir import LAST_FILE, atomic_write_bytes

FORMAT_NAME = "genrl_ros.generator_checkpoint"
FORMAT_VERSION = 1
CONTENTS = ("generator", "training")
BEST_FILE = "best.pt"
_REQUIRED_CONFIG = ("kind", "latent_dim", "prior", "horizon", "joint_names", "control_dt_s", "task")


class CheckpointError(ValueError):
    """A checkpoint that is unreadable, corrupted, or not what the caller expects."""


def state_sha256(state: Mapping[str, torch.Tensor]) -> str:
    """sha256 over the names, dtypes, shapes and bytes of a state_dict (sorted by name)."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name]
        if not torch.is_tensor(tensor):
            raise CheckpointError(f"state entry {name!r} is a {type(tensor).__name__}, not a tensor")
        tensor = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def model_sha256(model: TrajectoryGenerator) -> str:
    return state_sha256(model.state_dict())


def save_checkpoint(
    path: str | os.PathLike[str],
    model: TrajectoryGenerator,
    *,
    content: str = "generator",
    metadata: Mapping[str, Any] | None = None,
    optimizers: Mapping[str, torch.optim.Optimizer] | None = None,
    rng: Mapping[str, torch.Tensor] | None = None,
) -> Path:
    """Atomically write a checkpoint of ``model`` (and training state) to ``path``."""
    if content not in CONTENTS:
        raise ValueError(f"content must be one of {CONTENTS}, got {content!r}")
    path = Path(path)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    info = {
        **dict(metadata or {}),
        "model_config": model.model_config(),
        "model_sha256": state_sha256(state),
    }
    try:
        metadata_json = json.dumps(info, allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as err:
        raise ValueError(f"checkpoint metadata must be JSON-serializable (no NaN/inf): {err}") from None
    payload: dict[str, Any] = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "content": content,
        "metadata_json": metadata_json,
        "model": state,
    }
    if content == "training":
        payload["optimizers"] = {k: o.state_dict() for k, o in (optimizers or {}).items()}
        payload["rng"] = dict(rng or {})
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def resolve_model_path(path: str | os.PathLike[str]) -> Path:
    """A checkpoint file, or a run directory (its ``best.pt``, else ``last.pt``)."""
    path = Path(path)
    if path.is_dir():
        for name in (BEST_FILE, LAST_FILE):
            if (path / name).is_file():
                return path / name
        raise FileNotFoundError(f"{path} holds no {BEST_FILE} or {LAST_FILE}: not a training run")
    if not path.exists():
        raise FileNotFoundError(f"no model checkpoint at {path}")
    return path


def load_checkpoint(
    path: str | os.PathLike[str], *, content: str | Sequence[str] | None = None
) -> dict[str, Any]:
    """Read and validate a checkpoint; returns the payload with ``metadata`` parsed.

    :param content: the accepted content(s) ("generator", "training"); default both.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model checkpoint at {path}")
    size = path.stat().st_size
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # RuntimeError (zip), UnpicklingError, EOFError, ...
        first = " ".join(str(err).split())[:200]
        raise CheckpointError(
            f"{path} is not a readable checkpoint (corrupted or truncated? {size} bytes): "
            f"{type(err).__name__}: {first}"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(f"{path}: format is {found!r}, expected {FORMAT_NAME!r}")
    version = payload.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CheckpointError(f"{path}: unknown format_version {version!r}")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: format_version {version} is newer than the supported {FORMAT_VERSION}"
        )
    accepted = CONTENTS if content is None else ((content,) if isinstance(content, str) else tuple(content))
    if payload.get("content") not in accepted:
        raise CheckpointError(
            f"{path}: holds a {payload.get('content')!r} checkpoint, expected "
            f"{' or '.join(repr(c) for c in accepted)}"
        )
    try:
        metadata = json.loads(payload["metadata_json"])
    except (KeyError, TypeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: metadata_json is missing or not JSON: {err}") from None
    config = metadata.get("model_config") if isinstance(metadata, dict) else None
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: metadata has no model_config")
    missing = [k for k in _REQUIRED_CONFIG if k not in config]
    if missing:
        raise CheckpointError(f"{path}: model_config lacks {missing}")
    state = payload.get("model")
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise CheckpointError(f"{path}: 'model' is not a state_dict of tensors")
    digest = state_sha256(state)
    if digest != metadata.get("model_sha256"):
        raise CheckpointError(
            f"{path} is corrupted: the weights hash to {digest[:16]}..., the checkpoint "
            f"records {str(metadata.get('model_sha256'))[:16]}..."
        )
    payload["metadata"] = metadata
    return payload


def build_from_payload(payload: Mapping[str, Any], path: str | os.PathLike[str] = "") -> TrajectoryGenerator:
    """The generator of a validated payload, weights loaded, in eval mode."""
    config = payload["metadata"]["model_config"]
    try:
        model = make_generator(config)
    except (ValueError, TypeError, KeyError) as err:
        raise CheckpointError(f"{path}: model_config {config} is invalid: {err}") from None
    expected = model.state_dict()
    state = payload["model"]
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: weights do not fit a {config['kind']} model: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}"
        )
    for name, tensor in expected.items():
        if tuple(state[name].shape) != tuple(tensor.shape):
            raise CheckpointError(
                f"{path}: weight {name} has shape {tuple(state[name].shape)}, the "
                f"{config['kind']} with latent_dim {config['latent_dim']} and T*J "
                f"{model.output_dim} needs {tuple(tensor.shape)}"
            )
    model.load_state_dict(state)
    model.eval()
    return model


def check_compatible(
    config: Mapping[str, Any],
    *,
    source: str,
    task: str | None = None,
    horizon: int | None = None,
    joint_names: Sequence[str] | None = None,
    against: str = "expected",
) -> None:
    """Raise :class:`CheckpointError` when a model config does not fit a task/horizon/joints."""
    problems = []
    if task is not None and config["task"] != task:
        problems.append(f"task {config['task']!r} vs {task!r}")
    if horizon is not None and int(config["horizon"]) != int(horizon):
        problems.append(f"horizon {config['horizon']} vs {horizon} commands")
    if joint_names is not None and tuple(config["joint_names"]) != tuple(joint_names):
        problems.append(
            f"{len(config['joint_names'])} joints {list(config['joint_names'])} vs "
            f"{len(joint_names)} joints {list(joint_names)}"
        )
    if problems:
        raise CheckpointError(f"{source} does not match {against}: " + "; ".join(problems))


def load_generator(
    path: str | os.PathLike[str],
    *,
    expect_task: str | None = None,
    expect_horizon: int | None = None,
    expect_joint_names: Sequence[str] | None = None,
    expect_kind: str | None = None,
) -> TrajectoryGenerator:
    """Load the generator of a checkpoint file or run directory (eval mode), validated."""
    path = resolve_model_path(path)
    payload = load_checkpoint(path)
    config = payload["metadata"]["model_config"]
    if expect_kind is not None and config["kind"] != expect_kind:
        raise CheckpointError(f"{path}: model kind is {config['kind']!r}, expected {expect_kind!r}")
    check_compatible(
        config,
        source=f"model {path}",
        task=expect_task,
        horizon=expect_horizon,
        joint_names=expect_joint_names,
    )
    return build_from_payload(payload, path)


def check_dataset_matches(config: Mapping[str, Any], dataset: Any, *, model: str, data: str) -> None:
    """The dataset has the model's horizon and joints (and task): else a clear error."""
    check_compatible(
        config,
        source=f"model {model} (task {config['task']!r}, horizon {config['horizon']}, "
        f"{len(config['joint_names'])} joints)",
        task=dataset.task,
        horizon=dataset.horizon,
        joint_names=dataset.joint_names,
        against=f"dataset {data} (task {dataset.task!r}, horizon {dataset.horizon}, "
        f"{dataset.n_joints} joints)",
    )
