"""Playing a demonstration dataset through the ROS graph (the demo_player node), without ROS.

``ros2 launch genrl_ros record_demos.launch.py`` runs the simulator, this player and
``ros2 bag record``. For every episode of a dataset written by ``genrl demos``, the player
resets the simulated scene to the episode's goal (sim_bridge publishes ``/goal``), publishes
the commanded trajectory on ``/demo/commanded_trajectory``, sends it to the simulator as a
FollowJointTrajectory goal, waits for the simulator's outcome and republishes it on
``/demo/episode_outcome`` labelled with the dataset's episode index and expert flag. The
dataset description goes to ``/demo/dataset_info`` (once, transient local).

The recorded bag has the topics and types of :mod:`genrl_ros.data.rosbag_io`, so
``genrl import-bag`` reads it back (goals, trajectories, re-simulated outcomes); its
``/joint_states`` hold the whole recording at the control rate (also between episodes), so
the description says ``joint_state_steps: null`` and per-episode joint states are not
imported.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sim_bridge.ros_outcome_conversions import EpisodeReport

from genrl_ros.data.dataset import TrajectoryDataset
from genrl_ros.data.rosbag_io import dataset_info


@dataclass(frozen=True, eq=False)
class DemoEpisode:
    """One episode to play: dataset index, goal (2,) m, commands (T, J) rad, expert flag."""

    index: int
    goal_xy: np.ndarray
    trajectory: np.ndarray
    is_expert: bool


@dataclass
class DemoPlayback:
    """The episodes of a dataset to play (the first ``max_episodes``, 0 = all) and the
    bookkeeping of their re-simulated outcomes."""

    dataset: TrajectoryDataset
    max_episodes: int = 0
    reward_differences: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.max_episodes < 0:
            raise ValueError(f"max_episodes must be >= 0, got {self.max_episodes}")
        n = self.dataset.n_episodes
        if self.max_episodes and self.max_episodes < n:
            self.dataset = self.dataset.subset(np.arange(self.max_episodes))

    @classmethod
    def load(cls, directory: str | os.PathLike[str], max_episodes: int = 0) -> DemoPlayback:
        return cls(TrajectoryDataset.load(directory), max_episodes)

    @property
    def n_episodes(self) -> int:
        return int(self.dataset.n_episodes)

    @property
    def task(self) -> str:
        return self.dataset.task

    def info_json(self) -> str:
        """The dataset description published on /demo/dataset_info (see the module
        docstring for ``joint_state_steps``)."""
        info = dataset_info(self.dataset)
        info["joint_state_steps"] = None
        info["has_joint_velocities"] = False
        info.pop("bag_layout", None)
        info["recorded_through"] = "ros_graph"
        return json.dumps(info, sort_keys=True)

    def episode(self, i: int) -> DemoEpisode:
        if not 0 <= i < self.n_episodes:
            raise IndexError(f"episode {i} out of range [0, {self.n_episodes})")
        data = self.dataset
        return DemoEpisode(
            index=int(i),
            goal_xy=np.asarray(data.goals_xy[i], dtype=np.float64),
            trajectory=np.asarray(data.trajectories[i], dtype=np.float64),
            is_expert=bool(data.is_expert[i]),
        )

    def relabel(self, report: EpisodeReport, i: int) -> EpisodeReport:
        """The simulator's report as episode ``i`` of the dataset (index and expert flag);
        records how far its reward is from the dataset's."""
        if report.executed:
            self.reward_differences.append(abs(report.reward - float(self.dataset.rewards[i])))
        else:
            self.failures.append(f"episode {i}: {report.rejection_reason}")
        return dataclasses.replace(
            report, episode_index=int(i), is_expert=self.episode(i).is_expert
        )

    def record_failure(self, i: int, reason: str) -> None:
        self.failures.append(f"episode {i}: {reason}")

    def summary(self) -> dict[str, Any]:
        diffs = self.reward_differences
        return {
            "task": self.task,
            "episodes": self.n_episodes,
            "executed": len(diffs),
            "failures": list(self.failures),
            "max_reward_difference": float(max(diffs)) if diffs else None,
        }
