"""Export a latent policy (torch) to ONNX for :class:`latent_policy_node.onnx_policy.OnnxPolicy`.

The graph is the policy in eval mode: input ``goal_xy`` (B, 2) float32 metres or ``image``
(B, 3, H, W) float32 in [0, 1], outputs ``mean`` and ``std`` (B, L), dynamic batch axis, with
the metadata described in :mod:`latent_policy_node.onnx_policy`. The file is written to a
temporary name next to the target, checked, and only then renamed over the target:

* onnxruntime's (mean, std) on random observations (batch sizes 1, 7 and ``check_batch``)
  must equal torch's within ``tolerance`` (default 1e-5, absolute);
* the file loads through :class:`OnnxPolicy` with the expected task, latent size and
  observation.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from latent_policy_node import __version__
from latent_policy_node.onnx_policy import (
    FORMAT_NAME,
    FORMAT_VERSION,
    INPUT_NAMES,
    META_FORMAT,
    OUTPUT_NAMES,
    OnnxPolicy,
)
from latent_policy_node.policy import GoalPolicy, ImagePolicy, LatentPolicy

OPSET = 18
TOLERANCE = 1e-5
EXPORTERS = ("dynamo", "torchscript")


def policy_metadata(
    policy: LatentPolicy,
    *,
    task: str,
    prior: str,
    decoder_sha256: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, str]:
    """The ``metadata_props`` of an exported policy (all values strings)."""
    if prior not in ("normal", "uniform"):
        raise ValueError(f"prior must be 'normal' or 'uniform', got {prior!r}")
    meta = {
        META_FORMAT: FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "task": str(task),
        "observation": policy.observation,
        "latent_dim": str(policy.latent_dim),
        "prior": prior,
        "input_name": INPUT_NAMES[policy.observation],
        "policy_config": json.dumps(policy.config(), sort_keys=True),
        "latent_policy_node_version": __version__,
    }
    if isinstance(policy, ImagePolicy):
        meta["image_height"], meta["image_width"] = (str(s) for s in policy.image_size)
    if decoder_sha256:
        meta["decoder_sha256"] = str(decoder_sha256)
    for key, value in (extra or {}).items():
        if key in meta:
            raise ValueError(f"extra metadata may not override {key!r}")
        meta[str(key)] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return meta


def example_observations(policy: LatentPolicy, batch: int, seed: int = 0) -> torch.Tensor:
    """Random observations for checks: goals uniform in the goal box (B, 2), or images
    (B, 3, H, W) uniform in [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    if isinstance(policy, GoalPolicy):
        low, high = policy.normalizer.goal_low, policy.normalizer.goal_high
        return low + (high - low) * torch.rand(batch, 2, generator=generator)
    if isinstance(policy, ImagePolicy):
        return torch.rand(batch, 3, *policy.image_size, generator=generator)
    raise TypeError(f"cannot export a {type(policy).__name__}")


class _Exported(nn.Module):
    def __init__(self, policy: LatentPolicy) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, observation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.policy(observation)


def _export_proto(module: nn.Module, example: torch.Tensor, input_name: str, opset: int, exporter: str) -> Any:
    import onnx  # noqa: PLC0415

    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # e.g. "torchvision is not installed" notices
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if exporter == "dynamo":
                program = torch.onnx.export(
                    module,
                    (example,),
                    dynamo=True,
                    input_names=[input_name],
                    output_names=list(OUTPUT_NAMES),
                    dynamic_shapes={"observation": {0: torch.export.Dim("batch", min=1)}},
                    opset_version=opset,
                    optimize=True,
                    verbose=False,
                )
                return program.model_proto
            import io  # noqa: PLC0415

            buffer = io.BytesIO()
            torch.onnx.export(
                module,
                (example,),
                buffer,
                dynamo=False,
                input_names=[input_name],
                output_names=list(OUTPUT_NAMES),
                dynamic_axes={name: {0: "batch"} for name in (input_name, *OUTPUT_NAMES)},
                opset_version=opset,
            )
            return onnx.load_from_string(buffer.getvalue())
    finally:
        quiet.setLevel(level)


def export_policy(
    policy: LatentPolicy,
    out: str | os.PathLike[str],
    *,
    task: str,
    prior: str,
    decoder_sha256: str | None = None,
    extra_metadata: dict[str, Any] | None = None,
    overwrite: bool = False,
    opset: int = OPSET,
    exporter: str = "dynamo",
    check_batch: int = 64,
    tolerance: float = TOLERANCE,
    seed: int = 0,
) -> dict[str, Any]:
    """Write ``policy`` as an ONNX file at ``out`` (checked, atomic); returns a summary.

    :param task: task name the policy was trained on (metadata ``task``).
    :param prior: prior of the generator (``normal`` | ``uniform``).
    :param decoder_sha256: hash of the generator's weights, if known.
    :param exporter: ``dynamo`` (torch.export, the default) or ``torchscript`` (the older
        tracer, faster to run).
    :raises ValueError: when onnxruntime and torch differ by more than ``tolerance``.
    """
    import onnx  # noqa: PLC0415

    if exporter not in EXPORTERS:
        raise ValueError(f"exporter must be one of {EXPORTERS}, got {exporter!r}")
    out = Path(out)
    if out.exists() and (out.is_dir() or not overwrite):
        raise FileExistsError(
            f"{out} is a directory, expected an .onnx file path" if out.is_dir()
            else f"{out} exists; pass overwrite=True to replace it"
        )
    meta = policy_metadata(
        policy, task=task, prior=prior, decoder_sha256=decoder_sha256, extra=extra_metadata
    )
    module = _Exported(copy.deepcopy(policy).cpu().float().eval()).eval()
    input_name = INPUT_NAMES[policy.observation]
    started = time.perf_counter()
    proto = _export_proto(module, example_observations(policy, 2, seed), input_name, opset, exporter)
    del proto.metadata_props[:]
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "genrl_ros"
    proto.doc_string = (
        f"genrl_ros latent policy ({policy.observation}) of task {task}: {input_name} -> mean, "
        f"std (batch, {policy.latent_dim})"
    )
    onnx.checker.check_model(proto)

    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.tmp-", suffix=".onnx", dir=out.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(proto.SerializeToString())
            handle.flush()
            os.fsync(handle.fileno())
        loaded = OnnxPolicy(
            tmp, expect_task=task, expect_latent_dim=policy.latent_dim,
            expect_observation=policy.observation,
        )
        batches = sorted({1, 7, int(check_batch)})
        max_error = 0.0
        with torch.no_grad():
            for i, batch in enumerate(batches):
                observation = example_observations(policy, batch, seed + 1 + i)
                mean, std = module(observation)
                got_mean, got_std = loaded.distribution(observation.numpy())
                if got_mean.shape != tuple(mean.shape) or got_std.shape != tuple(std.shape):
                    raise ValueError(
                        f"onnxruntime output shapes {got_mean.shape}, {got_std.shape} for batch "
                        f"{batch}, torch {tuple(mean.shape)}"
                    )
                max_error = max(
                    max_error,
                    float(np.max(np.abs(got_mean - mean.numpy()))),
                    float(np.max(np.abs(got_std - std.numpy()))),
                )
        if not max_error <= tolerance:
            raise ValueError(
                f"exported policy differs from torch by {max_error:.3g} (> {tolerance:g}); "
                f"not writing {out}"
            )
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return {
        "out": str(out),
        "task": task,
        "observation": policy.observation,
        "latent_dim": policy.latent_dim,
        "prior": prior,
        "exporter": exporter,
        "opset": opset,
        "max_abs_error": max_error,
        "checked_batches": batches,
        "bytes": out.stat().st_size,
        "seconds": round(time.perf_counter() - started, 2),
    }
