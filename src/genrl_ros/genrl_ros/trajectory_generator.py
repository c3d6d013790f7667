"""What the trajectory-generator node does, without ROS: hold a decoder, reload it when its
path changes, and decode latent actions into joint trajectories.

A decoder is an exported ONNX file (``genrl export``; run with onnxruntime by
:class:`genrl_ros.models.onnx_decoder.OnnxDecoder`, no torch) or a torch checkpoint (a
``.pt`` file or a run directory of ``genrl train-model``; needs torch). Loading a new file
replaces the decoder only when it loads and matches the expectations (task, latent size,
horizon, the arm's joint names); otherwise the previous decoder stays in use and the error
says why.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sim_bridge.arm import JOINT_NAMES
from sim_bridge.ros_conversions import MessageTypes, trajectory_to_msg


class DecoderLoadError(RuntimeError):
    """A decoder that cannot be used; the previous decoder (if any) stays loaded."""


class _TorchDecoder:
    """A torch generator (checkpoint) behind the OnnxDecoder interface (numpy in and out)."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.latent_dim = int(model.latent_dim)
        self.horizon = int(model.horizon)
        self.joint_names = tuple(model.joint_names)
        self.control_dt_s = float(model.control_dt_s)
        self.task = str(model.task)

    def decode(self, alpha: np.ndarray) -> np.ndarray:
        import torch  # noqa: PLC0415

        with torch.no_grad():
            batch = torch.as_tensor(np.asarray(alpha, np.float32)).reshape(-1, self.latent_dim)
            out = self.model.decode(batch).cpu().numpy()
        return out[0] if np.ndim(alpha) == 1 else out


def load_decoder(
    path: Path,
    expect_task: str | None = None,
    expect_latent_dim: int | None = None,
    expect_horizon: int | None = None,
    expect_joint_names: Sequence[str] | None = None,
) -> Any:
    """An ONNX decoder (``*.onnx``) or a torch checkpoint (anything else), checked."""
    if path.suffix == ".onnx":
        from genrl_ros.models.onnx_decoder import OnnxDecoder  # noqa: PLC0415

        return OnnxDecoder(
            path,
            expect_task=expect_task,
            expect_latent_dim=expect_latent_dim,
            expect_horizon=expect_horizon,
            expect_joint_names=expect_joint_names,
        )
    from genrl_ros.models.checkpoint import load_generator  # noqa: PLC0415 (imports torch)

    decoder = _TorchDecoder(
        load_generator(
            path,
            expect_task=expect_task,
            expect_horizon=expect_horizon,
            expect_joint_names=expect_joint_names,
        ).eval()
    )
    if expect_latent_dim is not None and decoder.latent_dim != int(expect_latent_dim):
        raise DecoderLoadError(
            f"{path}: latent_dim {decoder.latent_dim}, expected {expect_latent_dim}"
        )
    return decoder


@dataclass(frozen=True, eq=False)
class DecodedTrajectory:
    """Joint position commands (T, J) rad, their joint names and control period."""

    positions: np.ndarray
    joint_names: tuple[str, ...]
    control_dt_s: float

    def to_msg(self, msg_types: MessageTypes, stamp_ns: int = 0, frame_id: str = "") -> Any:
        """trajectory_msgs/JointTrajectory (point t at ``(t + 1) * control_dt_s``; stamp 0 =
        start when received)."""
        return trajectory_to_msg(
            self.positions, self.joint_names, self.control_dt_s, msg_types, stamp_ns, frame_id
        )


class TrajectoryGenerator:
    """The decoder of the trajectory-generator node.

    :param expect_task, expect_latent_dim, expect_horizon: refuse other models (None: any).
    :param expect_joint_names: refuse another joint order (default: the arm's).
    :param loader: ``loader(path, task, latent_dim, horizon, joint_names) -> decoder`` with
        ``decode``, ``latent_dim``, ``horizon``, ``joint_names``, ``control_dt_s``.
    """

    def __init__(
        self,
        expect_task: str | None = None,
        expect_latent_dim: int | None = None,
        expect_horizon: int | None = None,
        expect_joint_names: Sequence[str] | None = JOINT_NAMES,
        loader: Callable[..., Any] | None = None,
    ) -> None:
        self.expect_task = expect_task or None
        self.expect_latent_dim = expect_latent_dim or None
        self.expect_horizon = expect_horizon or None
        self.expect_joint_names = tuple(expect_joint_names) if expect_joint_names else None
        self._loader = loader or load_decoder
        self.decoder: Any = None
        self.path: Path | None = None

    @property
    def loaded(self) -> bool:
        return self.decoder is not None

    @property
    def latent_dim(self) -> int | None:
        return None if self.decoder is None else int(self.decoder.latent_dim)

    def load(self, path: str | os.PathLike[str]) -> str:
        """Load the decoder at ``path`` (replacing the current one only on success); returns
        a description. Raises :class:`DecoderLoadError` with the reason."""
        path = Path(path)
        if not str(path) or not path.exists():
            raise DecoderLoadError(f"no decoder at {str(path)!r}")
        try:
            decoder = self._loader(
                path,
                self.expect_task,
                self.expect_latent_dim,
                self.expect_horizon,
                self.expect_joint_names,
            )
        except DecoderLoadError:
            raise
        except Exception as err:  # the loaders' own errors (bad file, another model)
            raise DecoderLoadError(f"cannot load the decoder {path}: {err}") from err
        self.decoder, self.path = decoder, path
        return (
            f"{path.name}: latent_dim {decoder.latent_dim}, {decoder.horizon} x "
            f"{len(decoder.joint_names)} commands every {decoder.control_dt_s} s"
        )

    def decode(self, latent: Any) -> DecodedTrajectory:
        """Decode one latent (latent_dim,) into a trajectory. Raises ``ValueError`` for a
        latent of the wrong size or with non-finite values, :class:`DecoderLoadError` when no
        decoder is loaded."""
        if self.decoder is None:
            raise DecoderLoadError("no decoder loaded (set the parameter model_path)")
        alpha = np.asarray(latent, dtype=np.float64).reshape(-1)
        if alpha.shape != (self.decoder.latent_dim,):
            raise ValueError(
                f"latent has {alpha.size} values, the decoder takes {self.decoder.latent_dim}"
            )
        if not np.isfinite(alpha).all():
            raise ValueError("latent must be finite")
        positions = np.asarray(self.decoder.decode(alpha.astype(np.float32)), dtype=np.float64)
        return DecodedTrajectory(
            positions=positions,
            joint_names=tuple(self.decoder.joint_names),
            control_dt_s=float(self.decoder.control_dt_s),
        )
