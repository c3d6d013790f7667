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


def _progress(items: Iterable[Any], total: int, enabled: bool, desc: str) -> Iterable[Any]:
    if not enabled or total < PROGRESS_MIN_EPISODES:
        return items
    try:
        from tqdm import tqdm  # noqa: PLC0415
    except ImportError:  # progress is a convenience, never a requirement
        return items
    return tqdm(items, total=total, desc=desc, unit="episode", file=sys.stderr)


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
            episodes = _progress(range(dataset.n_episodes), dataset.n_episodes, progress, "export")
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

    Messages are deserialized with the definitions embedded in the bag (``AnyReader``).
    Raises :class:`BagError` for a missing bag, missing topics or topics whose message
    counts do not match the dataset description.
    """
    from rosbags.highlevel import AnyReader, AnyReaderError  # noqa: PLC0415
    from rosbags.rosbag2 import ReaderError  # noqa: PLC0415

    bag = Path(bag_path)
    if not bag.exists():
        raise BagError(f"no bag at {bag}")
    custom = read_bag_metadata(bag).get("custom_data")

    by_topic: dict[str, list[tuple[int, Any]]] = {}
    try:
        with AnyReader([bag], default_typestore=make_typestore()) as reader:
            found = {c.topic: c.msgtype for c in reader.connections}
            for topic, msgtype in found.items():
                if topic in TOPIC_TYPES and msgtype != TOPIC_TYPES[topic]:
                    raise BagError(
                        f"{bag}: topic {topic} has type {msgtype}, expected {TOPIC_TYPES[topic]}"
                    )
            wanted = [c for c in reader.connections if c.topic in TOPIC_TYPES]
            if wanted:
                for connection, timestamp, raw in reader.messages(connections=wanted):
                    by_topic.setdefault(connection.topic, []).append(
                        (timestamp, reader.deserialize(raw, connection.msgtype))
                    )
    except (AnyReaderError, ReaderError) as err:
        raise BagError(f"{bag} cannot be read: {err}") from None
    messages = {
        topic: [m for _, m in sorted(items, key=lambda x: x[0])]
        for topic, items in by_topic.items()
    }

    info = _info_from(bag, custom, messages.get(TOPIC_DATASET_INFO, []))
    n = int(info["n_episodes"])
    steps = info.get("joint_state_steps")
    required = [TOPIC_GOAL, TOPIC_TRAJECTORY, TOPIC_OUTCOME]
    if steps is not None:
        required.append(TOPIC_JOINT_STATES)
    missing = [t for t in required if t not in found]
    if missing:
        raise BagError(
            f"{bag} lacks the topic(s) {missing} (has {sorted(found)}); a demonstration bag "
            f"needs {required}"
        )
    expected_counts = {t: n for t in required}
    if steps is not None:
        expected_counts[TOPIC_JOINT_STATES] = n * int(steps)
    actual = {t: len(messages.get(t, [])) for t in required}
    wrong = [t for t in required if actual[t] != expected_counts[t]]
    if wrong:
        details = "; ".join(
            f"{t}: {actual[t]} messages, expected {expected_counts[t]}" for t in wrong
        )
        raise BagError(
            f"{bag}: message counts do not match the {n} episodes of the dataset description "
            f"({details})"
        )
    return _rebuild(info, messages, n, steps, progress)


def _rebuild(
    info: dict[str, Any], messages: dict[str, list[Any]], n: int, steps: int | None, progress: bool
) -> TrajectoryDataset:
    names = tuple(info["joint_names"])
    horizon, n_joints = int(info["horizon"]), len(names)
    classes = list(info["contact_classes"])
    dt_s = float(info["control_dt_s"])
    trajectories = np.empty((n, horizon, n_joints), np.float32)
    goals = np.empty((n, 2), np.float32)
    final = np.empty((n, 3), np.float32)
    rewards = np.empty(n, np.float32)
    distance = np.empty(n, np.float32)
    contact_steps = np.empty((n, len(classes)), np.int64)
    violations = np.empty(n, np.int64)
    expert = np.empty(n, bool)
    positions = velocities = None
    if steps is not None:
        positions = np.empty((n, steps, n_joints), np.float32)
        if info.get("has_joint_velocities", True):
            velocities = np.empty((n, steps, n_joints), np.float32)

    def context(topic: str, k: int) -> str:
        return f"{topic} message {k}"

    for i in _progress(range(n), n, progress, "import"):
        try:
            traj, dt = trajectory_from_msg(messages[TOPIC_TRAJECTORY][i], names)
        except MessageConversionError as err:
            raise BagError(f"{context(TOPIC_TRAJECTORY, i)}: {err}") from None
        if traj.shape[0] != horizon:
            raise BagError(
                f"{context(TOPIC_TRAJECTORY, i)} has {traj.shape[0]} points, expected the "
                f"horizon {horizon}"
            )
        if abs(dt - dt_s) > 1e-9:
            raise BagError(
                f"{context(TOPIC_TRAJECTORY, i)} has a step of {dt} s, expected control_dt_s {dt_s}"
            )
        trajectories[i] = traj
        goals[i] = goal_from_msg(messages[TOPIC_GOAL][i])[:2]
        outcome = messages[TOPIC_OUTCOME][i]
        if int(outcome.episode_index) != i:
            raise BagError(
                f"{context(TOPIC_OUTCOME, i)} has episode_index {outcome.episode_index}, "
                f"expected {i}"
            )
        if list(outcome.contact_classes) != classes:
            raise BagError(
                f"{context(TOPIC_OUTCOME, i)} has contact_classes {list(outcome.contact_classes)}, "
                f"expected {classes}"
            )
        if len(outcome.contact_steps) != len(classes):
            raise BagError(
                f"{context(TOPIC_OUTCOME, i)}.contact_steps has length "
                f"{len(outcome.contact_steps)}, expected {len(classes)}"
            )
        point = outcome.final_object_position
        final[i] = (point.x, point.y, point.z)
        rewards[i] = outcome.reward
        distance[i] = outcome.distance_m
        contact_steps[i] = np.asarray(outcome.contact_steps, dtype=np.int64)
        violations[i] = outcome.joint_limit_violation_steps
        expert[i] = bool(outcome.is_expert)
        if positions is not None:
            for s in range(steps):
                k = i * steps + s
                try:
                    _, q, dq = joint_state_from_msg(messages[TOPIC_JOINT_STATES][k], names)
                except MessageConversionError as err:
                    raise BagError(f"{context(TOPIC_JOINT_STATES, k)}: {err}") from None
                positions[i, s] = q
                if velocities is not None:
                    if dq is None:
                        raise BagError(
                            f"{context(TOPIC_JOINT_STATES, k)} has no velocity, expected {n_joints}"
                        )
                    velocities[i, s] = dq
    try:
        return TrajectoryDataset(
            task=info["task"],
            horizon=horizon,
            control_dt_s=dt_s,
            joint_names=names,
            trajectories=trajectories,
            goals_xy=goals,
            final_object_pos=final,
            rewards=rewards,
            distance_m=distance,
            contact_steps=contact_steps,
            contact_classes=tuple(classes),
            unsafe_classes=tuple(info["unsafe_classes"]),
            joint_limit_violation_steps=violations,
            is_expert=expert,
            seed=info["seed"],
            joint_positions=positions,
            joint_velocities=velocities,
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
