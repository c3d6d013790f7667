"""``genrl export``: a trained decoder as an ONNX file that onnxruntime runs without torch.

The exported graph is the Table-7 decoder in eval mode (BatchNorm running statistics) with
the normalisation folded into its last linear layer (weights scaled by the per-joint, per-step
std, bias ``b * std + mean``), followed by a reshape, so the output ``trajectory`` is
(batch, T, J) radians for an input ``alpha`` of (batch, latent_dim); the batch axis is
dynamic. It is written with the torch.export-based exporter at opset :data:`OPSET`
(onnxruntime 1.23 runs opsets up to 23), into a temporary file that is checked before it is
renamed to ``--out``:

* onnxruntime's outputs on random prior latents (batch sizes 1, 7 and ``check_batch``) must
  equal torch's within ``tolerance`` (1e-4 rad); the maximum absolute error is reported;
* the file loads through :class:`genrl_ros.models.onnx_decoder.OnnxDecoder` (metadata and
  shapes consistent).
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

from genrl_ros.data.dataset import package_version
from genrl_ros.models.base import TrajectoryGenerator
from genrl_ros.models.checkpoint import load_checkpoint, build_from_payload, resolve_model_path
from genrl_ros.models.onnx_decoder import (
    FORMAT_NAME,
    FORMAT_VERSION,
    INPUT_NAME,
    META_FORMAT,
    OUTPUT_NAME,
    OnnxDecoder,
)

OPSET = 18
TOLERANCE = 1e-4


class FoldedDecoder(nn.Module):
    """The decoder of a generator with the normalisation folded in: alpha -> radians."""

    def __init__(self, model: TrajectoryGenerator) -> None:
        super().__init__()
        layers = copy.deepcopy(model.decoder).eval()
        last = layers[-1]
        std = model.norm_std.reshape(-1).double()
        mean = model.norm_mean.reshape(-1).double()
        with torch.no_grad():
            last.weight.copy_((last.weight.double() * std[:, None]).float())
            last.bias.copy_((last.bias.double() * std + mean).float())
        self.layers = layers
        self.horizon = model.horizon
        self.n_joints = model.n_joints

    def forward(self, alpha: torch.Tensor) -> torch.Tensor:
        return self.layers(alpha).reshape(-1, self.horizon, self.n_joints)


def onnx_metadata(model: TrajectoryGenerator, model_sha256: str) -> dict[str, str]:
    return {
        META_FORMAT: FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "task": model.task,
        "horizon": str(model.horizon),
        "joint_names": json.dumps(list(model.joint_names)),
        "control_dt_s": repr(float(model.control_dt_s)),
        "latent_dim": str(model.latent_dim),
        "prior": model.prior,
        "kind": model.kind,
        "hparams": json.dumps(model.hparams, sort_keys=True),
        "model_sha256": model_sha256,
        "genrl_ros_version": package_version(),
    }


def export_decoder(
    model_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    opset: int = OPSET,
    check_batch: int = 64,
    seed: int = 0,
    tolerance: float = TOLERANCE,
) -> dict[str, Any]:
    """Export the decoder of a checkpoint (or run directory) to ``out``; returns a summary."""
    import onnx  # noqa: PLC0415

    out = Path(out)
    if out.exists() and (out.is_dir() or not overwrite):
        raise FileExistsError(
            f"{out} exists; pass --overwrite to replace it" if not out.is_dir()
            else f"{out} is a directory, expected an .onnx file path"
        )
    source = resolve_model_path(model_path)
    payload = load_checkpoint(source)
    model = build_from_payload(payload, source)
    digest = payload["metadata"]["model_sha256"]
    folded = FoldedDecoder(model).eval()
    example = torch.zeros(2, model.latent_dim)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.tmp-", suffix=".onnx", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    started = time.perf_counter()
    try:
        quiet = logging.getLogger("torch.onnx")
        level = quiet.level
        quiet.setLevel(logging.ERROR)  # e.g. "torchvision is not installed" notices
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                folded,
                (example,),
                dynamo=True,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes={"alpha": {0: torch.export.Dim("batch", min=1)}},
                opset_version=opset,
                optimize=True,
                verbose=False,
            )
        quiet.setLevel(level)
        proto = program.model_proto
        del proto.metadata_props[:]
        for key, value in onnx_metadata(model, digest).items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        proto.producer_name = "genrl_ros"
        proto.doc_string = (
            f"genrl_ros {model.kind} decoder of task {model.task}: alpha (batch, "
            f"{model.latent_dim}) -> trajectory (batch, {model.horizon}, {model.n_joints}) rad"
        )
        onnx.checker.check_model(proto)
        with open(tmp, "wb") as handle:
            handle.write(proto.SerializeToString())
            handle.flush()
            os.fsync(handle.fileno())

        decoder = OnnxDecoder(
            tmp, expect_task=model.task, expect_latent_dim=model.latent_dim,
            expect_horizon=model.horizon, expect_joint_names=model.joint_names,
        )
        generator = torch.Generator().manual_seed(seed)
        max_error = 0.0
        batches = sorted({1, 7, int(check_batch)})
        with torch.no_grad():
            for batch in batches:
                alpha = model.sample_prior(batch, generator)
                expected = model.decode(alpha).numpy()
                got = decoder.decode(alpha.numpy())
                if got.shape != expected.shape:
                    raise ValueError(
                        f"onnxruntime output has shape {got.shape} for batch {batch}, torch "
                        f"{expected.shape}"
                    )
                max_error = max(max_error, float(np.max(np.abs(got - expected))))
        if not max_error <= tolerance:
            raise ValueError(
                f"exported decoder differs from torch by {max_error:.3g} rad (> {tolerance:g}); "
                f"not writing {out}"
            )
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return {
        "model": str(source),
        "out": str(out),
        "task": model.task,
        "kind": model.kind,
        "latent_dim": model.latent_dim,
        "horizon": model.horizon,
        "opset": opset,
        "max_abs_error_rad": max_error,
        "checked_batches": batches,
        "model_sha256": digest,
        "bytes": out.stat().st_size,
        "seconds": round(time.perf_counter() - started, 2),
    }


def run_export(args: Any) -> dict[str, Any]:
    """Entry point of ``genrl export``."""
    return export_decoder(
        args.model, args.out, overwrite=args.overwrite, opset=args.opset, seed=args.seed
    )
