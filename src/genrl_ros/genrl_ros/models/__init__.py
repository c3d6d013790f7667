"""Generative models of joint trajectories: beta-VAE and InfoGAN (paper Tables 7 and 8),
their checkpoints, and an onnxruntime-only decoder loader.

The names below are imported lazily (PEP 562), so ``import genrl_ros.models.onnx_decoder``
(used on the robot side) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "STD_FLOOR_RAD": "genrl_ros.models.base",
    "TrajectoryGenerator": "genrl_ros.models.base",
    "decoder_layers": "genrl_ros.models.base",
    "make_generator": "genrl_ros.models.base",
    "BetaVAE": "genrl_ros.models.vae",
    "InfoGAN": "genrl_ros.models.infogan",
    "CheckpointError": "genrl_ros.models.checkpoint",
    "load_checkpoint": "genrl_ros.models.checkpoint",
    "load_generator": "genrl_ros.models.checkpoint",
    "save_checkpoint": "genrl_ros.models.checkpoint",
    "OnnxDecoder": "genrl_ros.models.onnx_decoder",
    "OnnxDecoderError": "genrl_ros.models.onnx_decoder",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
