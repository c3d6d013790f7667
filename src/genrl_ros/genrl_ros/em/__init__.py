"""EM policy training of GenRL (seed 000, Algorithm 1): :class:`EMConfig` (hyperparameters)
and :class:`EMTrainer` / :func:`train_em` (the loop, logs, checkpoints, evaluation);
:class:`EpisodeSource` / :class:`SimulatedEpisodes` (who executes the episodes) and
:class:`RunRecorder` (the run directory), shared with the trainer node.

The trainer is imported lazily (it imports torch and mujoco); ``genrl_ros.em.config`` is
plain Python.
"""

from __future__ import annotations

import importlib
from typing import Any

from genrl_ros.em.config import EMConfig

_LAZY = {
    "EMTrainer": "genrl_ros.em.trainer",
    "EpisodeBatch": "genrl_ros.em.trainer",
    "EpisodeResults": "genrl_ros.em.trainer",
    "EpisodeSource": "genrl_ros.em.trainer",
    "PlannedEpisodes": "genrl_ros.em.trainer",
    "RunRecorder": "genrl_ros.em.trainer",
    "SimulatedEpisodes": "genrl_ros.em.trainer",
    "train_em": "genrl_ros.em.trainer",
    "evaluation_goals": "genrl_ros.em.trainer",
    "load_policy": "genrl_ros.em.trainer",
    "table_contact_steps": "genrl_ros.em.trainer",
}

__all__ = ["EMConfig", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
