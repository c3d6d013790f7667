"""Run an exported decoder (``genrl export``) with onnxruntime only: no torch import.

The ONNX graph maps ``alpha`` (batch, latent_dim) float32 to ``trajectory`` (batch, T, J)
float32 joint positions in radians (the normalisation is folded into the last layer). The
file's ``metadata_props`` describe the model: :data:`META_FORMAT` = :data:`FORMAT_NAME`,
``format_version``, ``task``, ``horizon``, ``joint_names`` (JSON list), ``control_dt_s``,
``latent_dim``, ``prior``, ``kind``, ``hparams`` (JSON), ``model_sha256`` (hash of the
weights of the checkpoint it came from) and ``genrl_ros_version``.

:class:`OnnxDecoder` refuses, with an :class:`OnnxDecoderError` naming what does not match,
a file that is not ONNX, an ONNX file without this metadata (another model), metadata that
disagrees with the graph's input / output shapes, and a model of another task, latent size or
horizon than the caller expects.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from latent_policy_node.onnx_file import META_FORMAT, int_metadata, open_onnx

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "META_FORMAT", "OnnxDecoder", "OnnxDecoderError"]

FORMAT_NAME = "genrl_ros.decoder_onnx"
FORMAT_VERSION = 1
REQUIRED_KEYS = (
    "format_version",
    "task",
    "horizon",
    "joint_names",
    "control_dt_s",
    "latent_dim",
    "prior",
    "kind",
    "model_sha256",
)
INPUT_NAME = "alpha"
OUTPUT_NAME = "trajectory"


class OnnxDecoderError(ValueError):
    """An ONNX file that is not a genrl_ros decoder, or not the one the caller expects."""


def _int_meta(meta: dict[str, str], key: str, path: Path) -> int:
    return int_metadata(meta, key, path, OnnxDecoderError)


class OnnxDecoder:
    """A decoder ONNX file ready to run.

    :param path: the ``.onnx`` file written by ``genrl export``.
    :param expect_task, expect_latent_dim, expect_horizon: refuse another model.
    :param expect_joint_names: refuse another joint order.
    :param threads: onnxruntime intra-op threads (1: lowest latency for one latent).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        expect_task: str | None = None,
        expect_latent_dim: int | None = None,
        expect_horizon: int | None = None,
        expect_joint_names: Sequence[str] | None = None,
        threads: int = 1,
    ) -> None:
        self.path = Path(path)
        session, meta = open_onnx(
            self.path,
            format_name=FORMAT_NAME,
            format_version=FORMAT_VERSION,
            required_keys=REQUIRED_KEYS,
            what="genrl_ros decoder",
            export_hint="export one with 'genrl export'",
            error=OnnxDecoderError,
            threads=threads,
        )
        self.metadata = meta
        self.task = meta["task"]
        self.kind = meta["kind"]
        self.prior = meta["prior"]
        if self.prior not in ("normal", "uniform"):
            raise OnnxDecoderError(f"{self.path}: unknown prior {self.prior!r}")
        self.latent_dim = _int_meta(meta, "latent_dim", self.path)
        self.horizon = _int_meta(meta, "horizon", self.path)
        try:
            self.joint_names = tuple(json.loads(meta["joint_names"]))
            self.hparams = json.loads(meta.get("hparams", "{}"))
            self.control_dt_s = float(meta["control_dt_s"])
        except (TypeError, ValueError) as err:
            raise OnnxDecoderError(f"{self.path}: malformed metadata: {err}") from None
        self.model_sha256 = meta["model_sha256"]

        inputs, outputs = session.get_inputs(), session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise OnnxDecoderError(
                f"{self.path}: expected 1 input and 1 output, found {len(inputs)} and "
                f"{len(outputs)}"
            )
        in_shape, out_shape = list(inputs[0].shape), list(outputs[0].shape)
        if len(in_shape) != 2 or in_shape[1] != self.latent_dim:
            raise OnnxDecoderError(
                f"{self.path}: input {inputs[0].name!r} has shape {in_shape}, expected "
                f"[batch, {self.latent_dim}] (latent_dim of its metadata)"
            )
        if len(out_shape) != 3 or out_shape[1:] != [self.horizon, len(self.joint_names)]:
            raise OnnxDecoderError(
                f"{self.path}: output {outputs[0].name!r} has shape {out_shape}, expected "
                f"[batch, {self.horizon}, {len(self.joint_names)}] (horizon and joints of its "
                "metadata)"
            )
        if isinstance(in_shape[0], int) and in_shape[0] != 1:
            raise OnnxDecoderError(
                f"{self.path}: the batch axis is fixed to {in_shape[0]}, expected a dynamic one"
            )
        self._session = session
        self._input = inputs[0].name
        self._output = outputs[0].name

        problems = []
        if expect_task is not None and self.task != expect_task:
            problems.append(f"task {self.task!r}, expected {expect_task!r}")
        if expect_latent_dim is not None and self.latent_dim != int(expect_latent_dim):
            problems.append(f"latent_dim {self.latent_dim}, expected {expect_latent_dim}")
        if expect_horizon is not None and self.horizon != int(expect_horizon):
            problems.append(f"horizon {self.horizon}, expected {expect_horizon}")
        if expect_joint_names is not None and self.joint_names != tuple(expect_joint_names):
            problems.append(
                f"joints {list(self.joint_names)}, expected {list(expect_joint_names)}"
            )
        if problems:
            raise OnnxDecoderError(f"{self.path} is another model: " + "; ".join(problems))

    @property
    def n_joints(self) -> int:
        return len(self.joint_names)

    def decode(self, alpha: Any) -> np.ndarray:
        """(n, latent_dim) latents -> (n, T, J) float32 radians; a (latent_dim,) vector gives
        one (T, J) trajectory."""
        array = np.asarray(alpha, dtype=np.float32)
        single = array.ndim == 1
        if single:
            array = array[None]
        if array.ndim != 2 or array.shape[1] != self.latent_dim:
            raise ValueError(
                f"alpha has shape {np.shape(alpha)}, expected (n, {self.latent_dim}) or "
                f"({self.latent_dim},)"
            )
        if not np.isfinite(array).all():
            raise ValueError("alpha must be finite")
        out = self._session.run([self._output], {self._input: np.ascontiguousarray(array)})[0]
        return out[0] if single else out

    def sample_prior(self, n: int, rng: np.random.Generator | None = None) -> np.ndarray:
        """n latents (n, latent_dim) float32 from the model's prior."""
        rng = np.random.default_rng() if rng is None else rng
        if self.prior == "normal":
            return rng.standard_normal((int(n), self.latent_dim)).astype(np.float32)
        return rng.uniform(-1.0, 1.0, (int(n), self.latent_dim)).astype(np.float32)

    def sample(self, n: int, rng: np.random.Generator | None = None) -> np.ndarray:
        return self.decode(self.sample_prior(n, rng))

    def __repr__(self) -> str:
        return (
            f"OnnxDecoder({str(self.path)!r}, task={self.task!r}, kind={self.kind!r}, "
            f"latent_dim={self.latent_dim}, T={self.horizon}, J={self.n_joints})"
        )
