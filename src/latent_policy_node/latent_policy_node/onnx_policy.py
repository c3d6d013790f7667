"""Run an exported latent policy with onnxruntime only: no torch import (robot side).

An exported policy (:func:`latent_policy_node.onnx_export.export_policy`, written at the end
of ``genrl train-policy`` as ``policy.onnx``) has one input and two outputs, batch axis dynamic:

* input ``goal_xy`` (B, 2) float32, metres in the robot base frame (observation ``goal``), or
  ``image`` (B, 3, H, W) float32 in [0, 1], RGB (observation ``image``);
* outputs ``mean`` (B, L) and ``std`` (B, L) float32 of the Gaussian pi(alpha | s0) over the
  latent space of the trajectory generator it was trained with.

``metadata_props``: :data:`META_FORMAT` = :data:`FORMAT_NAME`, ``format_version``, ``task``,
``observation`` (``goal`` | ``image``), ``latent_dim``, ``prior`` (of the generator:
``normal`` | ``uniform``), ``input_name``, ``image_height`` / ``image_width`` (image policies),
``decoder_sha256`` (hash of the generator's weights, when known), ``policy_config`` (JSON),
``latent_policy_node_version``.

:class:`OnnxPolicy` refuses, with an :class:`OnnxPolicyError` that names what does not match,
a file that is not ONNX, an ONNX file without this metadata (e.g. a decoder), metadata that
disagrees with the graph, and a policy of another task / latent size / observation than the
caller expects. Wrong observation shapes raise ``ValueError``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from latent_policy_node.onnx_file import META_FORMAT, int_metadata, open_onnx

FORMAT_NAME = "genrl_ros.latent_policy_onnx"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("format_version", "task", "observation", "latent_dim", "prior", "input_name")
INPUT_NAMES = {"goal": "goal_xy", "image": "image"}
OUTPUT_NAMES = ("mean", "std")


class OnnxPolicyError(ValueError):
    """An ONNX file that is not a genrl_ros latent policy, or not the one the caller expects."""


def images_to_input(images: Any) -> np.ndarray:
    """Camera images -> the ``image`` input of an image policy, (B, 3, H, W) float32 in [0, 1].

    :param images: uint8 RGB, (H, W, 3) or (B, H, W, 3) (``SceneCamera.render`` /
        ``render_batch``, a ``sensor_msgs/Image`` with encoding rgb8), or float already in
        the input layout, (3, H, W) or (B, 3, H, W) with values in [0, 1].
    """
    array = np.asarray(images)
    if array.dtype == np.uint8:
        if array.ndim == 3:
            array = array[None]
        if array.ndim != 4 or array.shape[-1] != 3:
            raise ValueError(
                f"uint8 images must have shape (H, W, 3) or (B, H, W, 3) (RGB), got {array.shape}"
            )
        return np.ascontiguousarray(array.transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(255.0)
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"images must be uint8 (H, W, 3) or float (3, H, W), got dtype {array.dtype}")
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[1] != 3:
        raise ValueError(
            f"float images must have shape (3, H, W) or (B, 3, H, W) in [0, 1], got {array.shape}"
        )
    if not np.isfinite(array).all():
        raise ValueError("images must be finite")
    return np.ascontiguousarray(array, dtype=np.float32)


def _int_meta(meta: dict[str, str], key: str, path: Path) -> int:
    return int_metadata(meta, key, path, OnnxPolicyError)


class OnnxPolicy:
    """A latent policy ONNX file ready to run.

    :param path: the ``.onnx`` file.
    :param expect_task: refuse a policy of another task.
    :param expect_latent_dim: refuse a policy of another latent size (e.g. the decoder's).
    :param expect_observation: refuse a policy of another observation (``goal`` | ``image``).
    :param threads: onnxruntime intra-op threads.

    Attributes: ``task``, ``observation``, ``latent_dim``, ``prior``, ``decoder_sha256``
    (``None`` when unknown), ``image_shape`` ((H, W) or ``None``), ``metadata`` (all of it).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        expect_task: str | None = None,
        expect_latent_dim: int | None = None,
        expect_observation: str | None = None,
        threads: int = 1,
    ) -> None:
        self.path = Path(path)
        session, meta = open_onnx(
            self.path,
            format_name=FORMAT_NAME,
            format_version=FORMAT_VERSION,
            required_keys=REQUIRED_KEYS,
            what="genrl_ros latent policy",
            export_hint="export one with latent_policy_node.onnx_export or 'genrl train-policy'",
            error=OnnxPolicyError,
            threads=threads,
        )
        self.metadata = meta
        self.task = meta["task"]
        self.observation = meta["observation"]
        if self.observation not in INPUT_NAMES:
            raise OnnxPolicyError(f"{self.path}: unknown observation {self.observation!r}")
        self.prior = meta["prior"]
        if self.prior not in ("normal", "uniform"):
            raise OnnxPolicyError(f"{self.path}: unknown prior {self.prior!r}")
        self.latent_dim = _int_meta(meta, "latent_dim", self.path)
        self.decoder_sha256 = meta.get("decoder_sha256") or None
        self.image_shape: tuple[int, int] | None = None
        if self.observation == "image":
            self.image_shape = (
                _int_meta(meta, "image_height", self.path),
                _int_meta(meta, "image_width", self.path),
            )
        try:
            self.policy_config = json.loads(meta.get("policy_config", "{}"))
        except ValueError as err:
            raise OnnxPolicyError(f"{self.path}: malformed policy_config metadata: {err}") from None

        inputs, outputs = session.get_inputs(), session.get_outputs()
        expected_input = INPUT_NAMES[self.observation]
        if len(inputs) != 1 or inputs[0].name != expected_input or meta["input_name"] != expected_input:
            raise OnnxPolicyError(
                f"{self.path}: expected one input {expected_input!r} for a {self.observation} "
                f"policy, found {[i.name for i in inputs]}"
            )
        if [o.name for o in outputs] != list(OUTPUT_NAMES):
            raise OnnxPolicyError(
                f"{self.path}: expected outputs {list(OUTPUT_NAMES)}, found {[o.name for o in outputs]}"
            )
        in_shape = list(inputs[0].shape)
        want = [2] if self.observation == "goal" else [3, *self.image_shape]
        if len(in_shape) != 1 + len(want) or in_shape[1:] != want:
            raise OnnxPolicyError(
                f"{self.path}: input {expected_input!r} has shape {in_shape}, expected "
                f"[batch, {', '.join(map(str, want))}]"
            )
        if isinstance(in_shape[0], int):
            raise OnnxPolicyError(
                f"{self.path}: the batch axis is fixed to {in_shape[0]}, expected a dynamic one"
            )
        for output in outputs:
            shape = list(output.shape)
            if len(shape) != 2 or shape[1] != self.latent_dim:
                raise OnnxPolicyError(
                    f"{self.path}: output {output.name!r} has shape {shape}, expected "
                    f"[batch, {self.latent_dim}] (latent_dim of its metadata)"
                )
        self._session = session
        self._input = expected_input
        self._rng: np.random.Generator | None = None

        problems = []
        if expect_task is not None and self.task != expect_task:
            problems.append(f"task {self.task!r}, expected {expect_task!r}")
        if expect_latent_dim is not None and self.latent_dim != int(expect_latent_dim):
            problems.append(f"latent_dim {self.latent_dim}, expected {expect_latent_dim}")
        if expect_observation is not None and self.observation != expect_observation:
            problems.append(f"observation {self.observation!r}, expected {expect_observation!r}")
        if problems:
            raise OnnxPolicyError(f"{self.path} is another policy: " + "; ".join(problems))

    # ------------------------------------------------------------------ inputs
    def prepare(self, observation: Any) -> tuple[np.ndarray, bool]:
        """The network input for an observation and whether it was a single one.

        Goal policy: (2,) or (B, 2) metres. Image policy: see :func:`images_to_input`
        (uint8 (H, W, 3) / (B, H, W, 3), or float (3, H, W) / (B, 3, H, W) in [0, 1]).
        """
        if self.observation == "goal":
            array = np.asarray(observation, dtype=np.float32)
            single = array.ndim == 1
            if single:
                array = array[None]
            if array.ndim != 2 or array.shape[1] != 2:
                raise ValueError(
                    f"goal observation has shape {np.shape(observation)}, expected (2,) or (B, 2) "
                    "(x, y in metres)"
                )
            if not np.isfinite(array).all():
                raise ValueError("goal observation must be finite")
            return np.ascontiguousarray(array), single
        raw = np.asarray(observation)
        single = raw.ndim == 3
        array = images_to_input(raw)
        if tuple(array.shape[2:]) != self.image_shape:
            raise ValueError(
                f"image of {array.shape[2]} x {array.shape[3]} pixels, the policy expects "
                f"{self.image_shape[0]} x {self.image_shape[1]} (height x width)"
            )
        return array, single

    # ------------------------------------------------------------------ inference
    def distribution(self, observation: Any) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) float32: (L,) each for one observation, (B, L) for a batch."""
        array, single = self.prepare(observation)
        mean, std = self._session.run(list(OUTPUT_NAMES), {self._input: array})
        return (mean[0], std[0]) if single else (mean, std)

    def act(
        self,
        observation: Any,
        deterministic: bool = False,
        rng: np.random.Generator | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Choose latent actions: returns (mean, std, sample), float32, (L,) each for one
        observation or (B, L) for a batch.

        :param deterministic: ``sample`` = ``mean`` (deployment); else
            ``sample = mean + std * N(0, I)`` drawn from ``rng``.
        :param rng: the random generator for the sample (a per-instance default generator
            when ``None``).
        """
        mean, std = self.distribution(observation)
        if deterministic:
            return mean, std, mean.copy()
        if rng is None:
            if self._rng is None:
                self._rng = np.random.default_rng()
            rng = self._rng
        noise = rng.standard_normal(mean.shape).astype(np.float32)
        return mean, std, (mean + std * noise).astype(np.float32)

    def __repr__(self) -> str:
        return (
            f"OnnxPolicy({str(self.path)!r}, task={self.task!r}, observation="
            f"{self.observation!r}, latent_dim={self.latent_dim}, prior={self.prior!r})"
        )
