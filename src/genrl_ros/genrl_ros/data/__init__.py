"""Demonstration datasets: numpy archives (:mod:`.dataset`) and rosbag2 files (:mod:`.rosbag_io`).

``export_bag`` / ``import_bag`` are imported lazily so that using the numpy format does not
need ``rosbags``.
"""

from __future__ import annotations

from typing import Any

from genrl_ros.data.dataset import (
    ARRAY_NAMES,
    FORMAT_NAME,
    FORMAT_VERSION,
    DatasetError,
    TrajectoryDataset,
    read_dataset_info,
)

__all__ = [
    "ARRAY_NAMES",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "DatasetError",
    "TrajectoryDataset",
    "export_bag",
    "import_bag",
    "read_dataset_info",
]


def __getattr__(name: str) -> Any:
    if name in ("export_bag", "import_bag", "BagError"):
        from genrl_ros.data import rosbag_io  # noqa: PLC0415

        return getattr(rosbag_io, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
