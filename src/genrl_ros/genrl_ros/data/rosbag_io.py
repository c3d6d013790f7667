"""Demonstration datasets as rosbag2 recordings (MCAP storage, ROS 2 Jazzy message types).

Written and read with the ``rosbags`` library, so no ROS installation is needed; the bags are
rosbag2 format version 9 (what Jazzy's rosbag2 writes) and open with ``ros2 bag info`` /
``ros2 bag play``.

Bag layout. Episodes are laid out back to back in bag time from the fixed start
:data:`BAG_START_NS` (so the same dataset always gives the same bag). With ``S`` steps per
episode (the recorded joint states, else the horizon ``T``), episode ``i`` starts at
``t0 = BAG_START_NS + GAP + i * (S * dt + GAP)`` with ``GAP`` = 1 s; header stamps equal the
bag time:

=============================== =================================== ==========================
topic                            type                                when (per episode)
=============================== =================================== ==========================
``/demo/dataset_info``           std_msgs/msg/String (JSON)          once, at ``BAG_START_NS``
``/goal``                        geometry_msgs/msg/PointStamped      ``t0`` (frame ``world``)
``/demo/commanded_trajectory``   trajectory_msgs/msg/JointTrajectory ``t0`` (header stamp t0)
``/joint_states``                sensor_msgs/msg/JointState          ``t0 + s * dt``, s < S
``/demo/episode_outcome``        genrl_interfaces/msg/EpisodeOutcome ``t0 + S * dt``
=============================== =================================== ==========================

The commanded trajectory is deliberately NOT on a controller's command topic (such as
``/arm_controller/joint_trajectory``): replaying a bag never moves a robot.

The dataset description (task, horizon, joint names, classes, metadata extras and the layout
above) is stored as JSON both in the bag's ``custom_data`` (key :data:`CUSTOM_DATA_KEY`) and
as the single message of ``/demo/dataset_info``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from sim_bridge.ros_conversions import (
    NS_PER_S,
    MessageConversionError,
    MessageTypes,
    goal_from_msg,
    goal_to_msg,
    joint_state_from_msg,
    joint_state_to_msg,
    ns_to_stamp,
    seconds_to_ns,
    trajectory_from_msg,
    trajectory_to_msg,
)

from genrl_ros.data.dataset import (
    FORMAT_NAME,
    FORMAT_VERSION,
    DatasetError,
    TrajectoryDataset,
    check_output_target,
    package_version,
    replace_directory,
)
from genrl_ros.data.interfaces import EPISODE_OUTCOME, make_typestore

BAG_VERSION = 9
"""rosbag2 metadata version written: 9, what Jazzy's rosbag2 (0.26.x) writes itself."""
STORAGE_ID = "mcap"
BAG_START_NS = 1_735_689_600 * NS_PER_S
"""Bag time of the dataset info message: 2025-01-01T00:00:00Z (fixed: deterministic bags)."""
EPISODE_GAP_NS = NS_PER_S
GOAL_FRAME = "world"
CUSTOM_DATA_KEY = "genrl_ros.dataset_info"
PROGRESS_MIN_EPISODES = 50

TOPIC_DATASET_INFO = "/demo/dataset_info"
TOPIC_GOAL = "/goal"
TOPIC_TRAJECTORY = "/demo/commanded_trajectory"
TOPIC_JOINT_STATES = "/joint_states"
TOPIC_OUTCOME = "/demo/episode_outcome"

TOPIC_TYPES: dict[str, str] = {
    TOPIC_DATASET_INFO: "std_msgs/msg/String",
    TOPIC_GOAL: "geometry_msgs/msg/PointStamped",
    TOPIC_TRAJECTORY: "trajectory_msgs/msg/JointTrajectory",
    TOPIC_JOINT_STATES: "sensor_msgs/msg/JointState",
    TOPIC_OUTCOME: EPISODE_OUTCOME,
}


class BagError(ValueError):
    """A bag that is missing, incomplete or inconsistent with a dataset."""


# --------------------------------------------------------------------------- helpers


def _progress(
    items: Iterable[Any], total: int, enabled: bool, desc: str, unit: str = "episode"
) -> Iterable[Any]:
    """``items`` wrapped in a tqdm bar on stderr when ``enabled`` (and tqdm is installed)."""
    if not enabled:
        return items
    try:
        from tqdm import tqdm  # noqa: PLC0415
    except ImportError:  # progress is a convenience, never a requirement
        return items
    return tqdm(items, total=total, desc=desc, unit=unit, file=sys.stderr)


def _qos(depth: int, transient_local: bool = False) -> Any:
    from rosbags.interfaces import (  # noqa: PLC0415
        Qos,
        QosDurability,
        QosHistory,
        QosLiveliness,
        QosReliability,
        QosTime,
    )

    durability = QosDurability.TRANSIENT_LOCAL if transient_local else QosDurability.VOLATILE
    zero = QosTime(0, 0)  # 0 = the middleware default (infinite)
    return Qos(
        QosHistory.KEEP_LAST,
        depth,
        QosReliability.RELIABLE,
        durability,
        zero,
        zero,
        QosLiveliness.AUTOMATIC,
        zero,
        False,
    )


def _layout(dataset: TrajectoryDataset) -> dict[str, int]:
    dt_ns = seconds_to_ns(dataset.control_dt_s)
    steps = dataset.joint_state_steps or dataset.horizon
    return {
        "bag_start_ns": BAG_START_NS,
        "first_episode_start_ns": BAG_START_NS + EPISODE_GAP_NS,
        "episode_period_ns": steps * dt_ns + EPISODE_GAP_NS,
        "control_dt_ns": dt_ns,
        "episode_steps": steps,
    }


def dataset_info(dataset: TrajectoryDataset) -> dict[str, Any]:
    """The JSON description of a dataset stored in a bag (everything except the arrays)."""
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "task": dataset.task,
        "horizon": dataset.horizon,
        "control_dt_s": dataset.control_dt_s,
        "joint_names": list(dataset.joint_names),
        "seed": dataset.seed,
        "n_episodes": dataset.n_episodes,
        "contact_classes": list(dataset.contact_classes),
        "unsafe_classes": list(dataset.unsafe_classes),
        "joint_state_steps": dataset.joint_state_steps,
        "has_joint_velocities": dataset.joint_velocities is not None,
        "genrl_ros_version": package_version(),
        "bag_layout": _layout(dataset),
        "metadata": dataset.metadata,
    }


def episode_outcome_to_msg(
    dataset: TrajectoryDataset,
    index: int,
    stamp_ns: int,
    outcome_cls: type,
    msg_types: MessageTypes,
) -> Any:
    """genrl_interfaces/EpisodeOutcome of episode ``index`` (every field passed by keyword)."""
    goal = dataset.goals_xy[index]
    final = dataset.final_object_pos[index]
    return outcome_cls(
        header=msg_types.Header(stamp=ns_to_stamp(stamp_ns, msg_types.Time), frame_id=GOAL_FRAME),
        episode_index=int(index),
        task=dataset.task,
        goal=msg_types.Point(x=float(goal[0]), y=float(goal[1]), z=0.0),
        final_object_position=msg_types.Point(
            x=float(final[0]), y=float(final[1]), z=float(final[2])
        ),
        reward=float(dataset.rewards[index]),
        distance_m=float(dataset.distance_m[index]),
        contact_classes=list(dataset.contact_classes),
        contact_steps=msg_types.uint32_sequence(dataset.contact_steps[index]),
        unsafe_classes=list(dataset.unsafe_classes),
        joint_limit_violation_steps=int(dataset.joint_limit_violation_steps[index]),
        is_expert=bool(dataset.is_expert[index]),
        executed=True,
        rejection_reason="",
    )


# --------------------------------------------------------------------------- export


def export_bag(
    dataset: TrajectoryDataset,
    bag_path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Write ``dataset`` as a rosbag2 directory (MCAP, version 9) at ``bag_path``.

    The bag is written into a temporary directory next to ``bag_path`` and renamed into
    place; an existing non-empty ``bag_path`` is refused unless ``overwrite=True`` (and even
    then only a directory holding a bag, i.e. a ``metadata.yaml``, is replaced). Replaying the
    bag publishes the demonstration on ``/demo/commanded_trajectory``, not on a controller's
    command topic, so it never moves a robot.

    :param progress: show a tqdm bar on stderr for datasets of at least
        :data:`PROGRESS_MIN_EPISODES` episodes.
    :returns: summary: path, storage, bag version, episodes, per-topic type and message
        count, start and end bag time (ns), size in bytes.
    """
    from rosbags.rosbag2 import StoragePlugin, Writer  # noqa: PLC0415

    bag_path = Path(bag_path)
    check_output_target(bag_path, overwrite, what="bag", marker="metadata.yaml")
    typestore = make_typestore()
    msg_types = MessageTypes.from_typestore(typestore)
    string_cls = typestore.types[TOPIC_TYPES[TOPIC_DATASET_INFO]]
    outcome_cls = typestore.types[EPISODE_OUTCOME]
    info = dataset_info(dataset)
    # compact JSON: no spaces outside strings, so YAML writers keep it on one line
    info_json = json.dumps(info, allow_nan=False, sort_keys=True, separators=(",", ":"))
    layout = info["bag_layout"]
    dt_ns, steps = layout["control_dt_ns"], layout["episode_steps"]

    topics = [TOPIC_DATASET_INFO, TOPIC_GOAL, TOPIC_TRAJECTORY]
    if dataset.joint_positions is not None:
        topics.append(TOPIC_JOINT_STATES)
    topics.append(TOPIC_OUTCOME)
    counts = dict.fromkeys(topics, 0)

    bag_path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{bag_path.name}.tmp-", dir=bag_path.parent))
    staged = staging / bag_path.name  # the MCAP file is named after the bag directory
    try:
        writer = Writer(staged, version=BAG_VERSION, storage_plugin=StoragePlugin.MCAP)
        writer.set_custom_data(CUSTOM_DATA_KEY, info_json)
        with writer:
            connections = {
                topic: writer.add_connection(
                    topic,
                    TOPIC_TYPES[topic],
                    typestore=typestore,
                    offered_qos_profiles=[
                        _qos(1, transient_local=True) if topic == TOPIC_DATASET_INFO else _qos(10)
                    ],
                )
                for topic in topics
            }

            def write(topic: str, stamp_ns: int, msg: Any) -> None:
                data = typestore.serialize_cdr(msg, TOPIC_TYPES[topic])
                writer.write(connections[topic], stamp_ns, data)
                counts[topic] += 1

            write(TOPIC_DATASET_INFO, BAG_START_NS, string_cls(data=info_json))
            episodes = _progress(
                range(dataset.n_episodes),
                dataset.n_episodes,
                progress and dataset.n_episodes >= PROGRESS_MIN_EPISODES,
                "export",
            )
            for i in episodes:
                t0 = layout["first_episode_start_ns"] + i * layout["episode_period_ns"]
                write(TOPIC_GOAL, t0, goal_to_msg(dataset.goals_xy[i], t0, msg_types, GOAL_FRAME))
                write(
                    TOPIC_TRAJECTORY,
                    t0,
                    trajectory_to_msg(
                        dataset.trajectories[i],
                        dataset.joint_names,
                        dataset.control_dt_s,
                        msg_types,
                        stamp_ns=t0,
                    ),
                )
                if dataset.joint_positions is not None:
                    velocities = dataset.joint_velocities
                    for s in range(steps):
                        stamp = t0 + s * dt_ns
                        write(
                            TOPIC_JOINT_STATES,
                            stamp,
                            joint_state_to_msg(
                                dataset.joint_positions[i, s],
                                None if velocities is None else velocities[i, s],
                                dataset.joint_names,
                                stamp,
                                msg_types,
                            ),
                        )
                end = t0 + steps * dt_ns
                write(
                    TOPIC_OUTCOME,
                    end,
                    episode_outcome_to_msg(dataset, i, end, outcome_cls, msg_types),
                )
        replace_directory(staged, bag_path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)

    end_ns = (
        layout["first_episode_start_ns"]
        + (dataset.n_episodes - 1) * layout["episode_period_ns"]
        + steps * dt_ns
        if dataset.n_episodes
        else BAG_START_NS
    )
    return {
        "path": str(bag_path),
        "storage": STORAGE_ID,
        "bag_version": BAG_VERSION,
        "n_episodes": dataset.n_episodes,
        "topics": {t: {"type": TOPIC_TYPES[t], "message_count": c} for t, c in counts.items()},
        "message_count": sum(counts.values()),
        "start_ns": BAG_START_NS,
        "end_ns": end_ns,
        "size_bytes": sum(p.stat().st_size for p in bag_path.iterdir() if p.is_file()),
    }


# --------------------------------------------------------------------------- import


def read_bag_metadata(bag_path: str | os.PathLike[str]) -> dict[str, Any]:
    """``rosbag2_bagfile_information`` of a bag's metadata.yaml."""
    from ruamel.yaml import YAML  # noqa: PLC0415 (a rosbags dependency)

    path = Path(bag_path) / "metadata.yaml"
    try:
        document = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
        return dict(document["rosbag2_bagfile_information"])
    except FileNotFoundError:
        raise BagError(f"{path} is missing: {bag_path} is not a rosbag2 directory") from None
    except Exception as err:  # YAML errors, wrong structure
        raise BagError(f"{path} cannot be read: {type(err).__name__}: {err}") from None


def _info_from(bag: Path, custom: dict | None, messages: list[Any]) -> dict[str, Any]:
    text = (custom or {}).get(CUSTOM_DATA_KEY)
    source = f"custom_data[{CUSTOM_DATA_KEY!r}] of {bag / 'metadata.yaml'}"
    if text is None:
        if not messages:
            raise BagError(
                f"{bag} has no dataset description: neither {source} nor a message on "
                f"{TOPIC_DATASET_INFO}"
            )
        text, source = messages[0].data, f"the first message of {TOPIC_DATASET_INFO}"
    try:
        info = json.loads(text)
    except json.JSONDecodeError as err:
        raise BagError(f"{bag}: {source} is not valid JSON: {err}") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT_NAME:
        raise BagError(f"{bag}: {source} is not a {FORMAT_NAME} description")
    version = info.get("format_version")
    if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
        raise BagError(
            f"{bag}: {source} has format_version {version!r}, this genrl_ros reads "
            f"1..{FORMAT_VERSION}"
        )
    return info


def import_bag(bag_path: str | os.PathLike[str], *, progress: bool = False) -> TrajectoryDataset:
    """Rebuild the dataset of a bag written by :func:`export_bag` (exactly: float32 values
    survive the float64 message fields unchanged).

    Messages are deserialized with the definitions embedded in the bag (``AnyReader``) and
    streamed into preallocated arrays (memory ~ the dataset, not the bag). Raises
    :class:`BagError` for a missing bag, missing topics, or topics whose message counts do
    not match the dataset description.
    """
    from rosbags.highlevel import AnyReader, AnyReaderError  # noqa: PLC0415
    from rosbags.rosbag2 import ReaderError  # noqa: PLC0415

    bag = Path(bag_path)
    if not bag.exists():
        raise BagError(f"no bag at {bag}")
    custom = read_bag_metadata(bag).get("custom_data")
    try:
        with AnyReader([bag], default_typestore=make_typestore()) as reader:
            found: dict[str, int] = {}
            for connection in reader.connections:
                expected_type = TOPIC_TYPES.get(connection.topic)
                if expected_type is not None and connection.msgtype != expected_type:
                    raise BagError(
                        f"{bag}: topic {connection.topic} has type {connection.msgtype}, "
                        f"expected {expected_type}"
                    )
                found[connection.topic] = found.get(connection.topic, 0) + connection.msgcount

            info_messages = []
            info_conns = [c for c in reader.connections if c.topic == TOPIC_DATASET_INFO]
            if info_conns and CUSTOM_DATA_KEY not in (custom or {}):
                for connection, _, raw in reader.messages(connections=info_conns):
                    info_messages.append(reader.deserialize(raw, connection.msgtype))
                    break
            info = _info_from(bag, custom, info_messages)
            assembler = _Assembler(info)
            _check_counts(bag, assembler.expected_counts, found, "in metadata.yaml")

            wanted = [c for c in reader.connections if c.topic in assembler.expected_counts]
            total = sum(assembler.expected_counts.values())
            stream = _progress(
                reader.messages(connections=wanted),
                total,
                progress and assembler.n >= PROGRESS_MIN_EPISODES,
                "import",
                unit="msg",
            )
            for connection, _, raw in stream:
                assembler.add(connection.topic, reader.deserialize(raw, connection.msgtype))
    except (AnyReaderError, ReaderError) as err:
        raise BagError(f"{bag} cannot be read: {err}") from None
    _check_counts(bag, assembler.expected_counts, assembler.counts, "read")
    return assembler.finish()


def _check_counts(bag: Path, expected: dict[str, int], found: dict[str, int], how: str) -> None:
    missing = [t for t in expected if t not in found]
    if missing:
        raise BagError(
            f"{bag} lacks the topic(s) {missing} (has {sorted(found)}); a demonstration bag "
            f"of this dataset needs {sorted(expected)}"
        )
    wrong = [t for t in expected if found[t] != expected[t]]
    if wrong:
        n = expected[TOPIC_GOAL]
        details = "; ".join(f"{t}: {found[t]} messages, expected {expected[t]}" for t in wrong)
        raise BagError(
            f"{bag}: message counts ({how}) do not match the {n} episodes of the dataset "
            f"description ({details})"
        )


class _Assembler:
    """Fills the dataset arrays from the messages of each topic, in bag-time order."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info
        self.n = n = int(info["n_episodes"])
        self.names = tuple(info["joint_names"])
        self.horizon = horizon = int(info["horizon"])
        self.dt_s = float(info["control_dt_s"])
        self.classes = list(info["contact_classes"])
        steps = info.get("joint_state_steps")
        self.steps = None if steps is None else int(steps)
        n_joints = len(self.names)
        self.expected_counts = {TOPIC_GOAL: n, TOPIC_TRAJECTORY: n, TOPIC_OUTCOME: n}
        if self.steps is not None:
            self.expected_counts[TOPIC_JOINT_STATES] = n * self.steps
        self.counts = dict.fromkeys(self.expected_counts, 0)
        self.trajectories = np.empty((n, horizon, n_joints), np.float32)
        self.goals = np.empty((n, 2), np.float32)
        self.final = np.empty((n, 3), np.float32)
        self.rewards = np.empty(n, np.float32)
        self.distance = np.empty(n, np.float32)
        self.contact_steps = np.empty((n, len(self.classes)), np.int64)
        self.violations = np.empty(n, np.int64)
        self.expert = np.empty(n, bool)
        self.positions = self.velocities = None
        if self.steps is not None:
            self.positions = np.empty((n, self.steps, n_joints), np.float32)
            if info.get("has_joint_velocities", True):
                self.velocities = np.empty((n, self.steps, n_joints), np.float32)
        self.handlers = {
            TOPIC_GOAL: self._goal,
            TOPIC_TRAJECTORY: self._trajectory,
            TOPIC_OUTCOME: self._outcome,
            TOPIC_JOINT_STATES: self._joint_state,
        }

    def add(self, topic: str, msg: Any) -> None:
        k = self.counts[topic]
        self.counts[topic] = k + 1
        if k >= self.expected_counts[topic]:
            return  # too many: reported by the final count check
        try:
            self.handlers[topic](k, msg)
        except MessageConversionError as err:
            raise BagError(f"{topic} message {k}: {err}") from None

    def _goal(self, i: int, msg: Any) -> None:
        self.goals[i] = goal_from_msg(msg)[:2]

    def _trajectory(self, i: int, msg: Any) -> None:
        trajectory, dt = trajectory_from_msg(msg, self.names)
        if trajectory.shape[0] != self.horizon:
            raise BagError(
                f"{TOPIC_TRAJECTORY} message {i} has {trajectory.shape[0]} points, expected "
                f"the horizon {self.horizon}"
            )
        if abs(dt - self.dt_s) > 1e-9:
            raise BagError(
                f"{TOPIC_TRAJECTORY} message {i} has a step of {dt} s, expected control_dt_s "
                f"{self.dt_s}"
            )
        self.trajectories[i] = trajectory

    def _outcome(self, i: int, msg: Any) -> None:
        where = f"{TOPIC_OUTCOME} message {i}"
        if int(msg.episode_index) != i:
            raise BagError(f"{where} has episode_index {msg.episode_index}, expected {i}")
        if list(msg.contact_classes) != self.classes:
            raise BagError(
                f"{where} has contact_classes {list(msg.contact_classes)}, expected {self.classes}"
            )
        if len(msg.contact_steps) != len(self.classes):
            raise BagError(
                f"{where}: contact_steps has length {len(msg.contact_steps)}, expected "
                f"{len(self.classes)}"
            )
        point = msg.final_object_position
        self.final[i] = (point.x, point.y, point.z)
        self.rewards[i] = msg.reward
        self.distance[i] = msg.distance_m
        self.contact_steps[i] = np.asarray(msg.contact_steps, dtype=np.int64)
        self.violations[i] = msg.joint_limit_violation_steps
        self.expert[i] = bool(msg.is_expert)

    def _joint_state(self, k: int, msg: Any) -> None:
        assert self.positions is not None and self.steps is not None
        i, s = divmod(k, self.steps)
        _, position, velocity = joint_state_from_msg(msg, self.names)
        self.positions[i, s] = position
        if self.velocities is not None:
            if velocity is None:
                raise BagError(
                    f"{TOPIC_JOINT_STATES} message {k} has no velocity, expected {len(self.names)}"
                )
            self.velocities[i, s] = velocity

    def finish(self) -> TrajectoryDataset:
        info = self.info
        try:
            return TrajectoryDataset(
                task=info["task"],
                horizon=self.horizon,
                control_dt_s=self.dt_s,
                joint_names=self.names,
                trajectories=self.trajectories,
                goals_xy=self.goals,
                final_object_pos=self.final,
                rewards=self.rewards,
                distance_m=self.distance,
                contact_steps=self.contact_steps,
                contact_classes=tuple(self.classes),
                unsafe_classes=tuple(info["unsafe_classes"]),
                joint_limit_violation_steps=self.violations,
                is_expert=self.expert,
                seed=info["seed"],
                joint_positions=self.positions,
                joint_velocities=self.velocities,
                metadata=info.get("metadata", {}),
            )
        except DatasetError as err:
            raise BagError(f"dataset rebuilt from the bag is invalid: {err}") from None


__all__ = [
    "BAG_START_NS",
    "BAG_VERSION",
    "CUSTOM_DATA_KEY",
    "STORAGE_ID",
    "TOPIC_TYPES",
    "BagError",
    "dataset_info",
    "episode_outcome_to_msg",
    "export_bag",
    "import_bag",
    "read_bag_metadata",
]
