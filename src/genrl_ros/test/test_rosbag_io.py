"""rosbag2 export/import of demonstration datasets (MCAP, Jazzy types) with rosbags."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rosbags")

from genrl_ros.data import rosbag_io  # noqa: E402
from genrl_ros.data.dataset import TrajectoryDataset, synthetic_dataset  # noqa: E402
from genrl_ros.data.interfaces import (  # noqa: E402
    EPISODE_OUTCOME,
    make_typestore,
    msg_definitions,
    packaged_msg_dir,
)
from genrl_ros.data.rosbag_io import (  # noqa: E402
    BAG_START_NS,
    CUSTOM_DATA_KEY,
    TOPIC_TYPES,
    BagError,
    export_bag,
    import_bag,
)
from rosbags.highlevel import AnyReader  # noqa: E402
from rosbags.rosbag2 import Reader, StoragePlugin, Writer  # noqa: E402
from ruamel.yaml import YAML  # noqa: E402

N, T, S = 5, 69, 80
# the ament_cmake package of the source tree (whether or not genrl_ros is installed)
SOURCE_MSG_DIR = Path(__file__).resolve().parents[2] / "genrl_interfaces" / "msg"


@pytest.fixture(scope="module")
def dataset() -> TrajectoryDataset:
    return synthetic_dataset(N, T, S, seed=11)


@pytest.fixture(scope="module")
def bag(dataset, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bags") / "demos"
    export_bag(dataset, path)
    return path


def load_yaml(path: Path) -> dict:
    return YAML(typ="safe").load(path.read_text())


def copy_bag(src: Path, dst: Path, *, drop_topic=None, drop_message=None, custom_data=True):
    """Rewrite a bag with rosbags, optionally without a topic, one message, or custom_data."""
    info = load_yaml(src / "metadata.yaml")["rosbag2_bagfile_information"]
    typestore = make_typestore()
    seen: dict[str, int] = {}
    with Reader(src) as reader:
        writer = Writer(dst, version=9, storage_plugin=StoragePlugin.MCAP)
        if custom_data:
            for key, value in (info.get("custom_data") or {}).items():
                writer.set_custom_data(key, value)
        with writer:
            conns = {
                c.id: writer.add_connection(c.topic, c.msgtype, typestore=typestore)
                for c in reader.connections
                if c.topic != drop_topic
            }
            for conn, timestamp, raw in reader.messages():
                if conn.topic == drop_topic:
                    continue
                k = seen.get(conn.topic, 0)
                seen[conn.topic] = k + 1
                if drop_message == (conn.topic, k):
                    continue
                writer.write(conns[conn.id], timestamp, raw)
    return dst


# --------------------------------------------------------------------------- interfaces


def test_msg_copies_identical_and_built():
    source = sorted(SOURCE_MSG_DIR.glob("*.msg"))
    assert source, SOURCE_MSG_DIR
    for path in source:
        packaged = packaged_msg_dir() / path.name
        assert packaged.is_file(), f"{packaged} missing: copy {path}"
        assert packaged.read_text() == path.read_text(), f"{packaged} differs from {path}"
        cmake = (SOURCE_MSG_DIR.parent / "CMakeLists.txt").read_text()
        assert f'"msg/{path.name}"' in cmake
    assert sorted(packaged_msg_dir().glob("*.msg")) and len(
        list(packaged_msg_dir().glob("*.msg"))
    ) == len(source)
    assert EPISODE_OUTCOME in msg_definitions()


def test_msg_copies_that_differ_are_an_error(tmp_path, monkeypatch):
    from genrl_ros.data import interfaces

    (tmp_path / "EpisodeOutcome.msg").write_text("uint32 episode_index\n")
    monkeypatch.setattr(interfaces, "SOURCE_MSG_DIR", tmp_path)
    with pytest.raises(interfaces.InterfaceDefinitionError, match="differ"):
        interfaces.msg_definitions()


def test_interfaces_package_xml():
    import xml.etree.ElementTree as ET

    root = ET.parse(SOURCE_MSG_DIR.parent / "package.xml").getroot()
    assert root.get("format") == "3"
    assert root.findtext("name") == "genrl_interfaces"
    assert root.findtext("export/build_type") == "ament_cmake"
    assert root.findtext("member_of_group") == "rosidl_interface_packages"
    buildtool = {e.text for e in root.findall("buildtool_depend")}
    assert {"ament_cmake", "rosidl_default_generators"} <= buildtool
    assert {"std_msgs", "builtin_interfaces", "geometry_msgs"} <= {
        e.text for e in root.findall("depend")
    }


def test_episode_outcome_type_round_trip():
    typestore = make_typestore()
    cls = typestore.types[EPISODE_OUTCOME]
    fields = list(cls.__dataclass_fields__)
    assert fields[:14] == [
        "header",
        "episode_index",
        "task",
        "goal",
        "final_object_position",
        "reward",
        "distance_m",
        "contact_classes",
        "contact_steps",
        "unsafe_classes",
        "joint_limit_violation_steps",
        "is_expert",
        "executed",
        "rejection_reason",
    ]
    assert typestore.hash_rihs01(EPISODE_OUTCOME).startswith("RIHS01_")


def test_episode_outcome_fields_are_rclpy_compatible(dataset):
    """Scalars as Python int/float/bool/str and uint32[] via the MessageTypes converter, so the
    same function can build rclpy's genrl_interfaces/EpisodeOutcome."""
    import array
    import dataclasses

    from sim_bridge.ros_conversions import MessageTypes, array_uint32_sequence

    typestore = make_typestore()
    msg_types = dataclasses.replace(
        MessageTypes.from_typestore(typestore), uint32_sequence=array_uint32_sequence
    )
    captured = {}

    def outcome_cls(**kwargs):
        captured.update(kwargs)

    rosbag_io.episode_outcome_to_msg(dataset, 1, 123, outcome_cls, msg_types)
    fields = [f for f in typestore.types[EPISODE_OUTCOME].__dataclass_fields__ if f[0] != "_"]
    assert sorted(captured) == sorted(fields)
    kinds = {
        "episode_index": int,
        "joint_limit_violation_steps": int,
        "reward": float,
        "distance_m": float,
        "task": str,
        "rejection_reason": str,
        "is_expert": bool,
        "executed": bool,
        "contact_classes": list,
        "unsafe_classes": list,
    }
    for name, kind in kinds.items():
        assert type(captured[name]) is kind, name
    assert isinstance(captured["contact_steps"], array.array)
    assert list(captured["contact_steps"]) == dataset.contact_steps[1].tolist()


# --------------------------------------------------------------------------- export


def test_bag_layout_on_disk(bag, dataset):
    assert sorted(p.name for p in bag.iterdir()) == ["demos.mcap", "metadata.yaml"]
    assert not [p for p in bag.parent.iterdir() if p.name.startswith(".")]
    assert (bag / "demos.mcap").read_bytes()[:8] == b"\x89MCAP0\r\n"

    text = (bag / "metadata.yaml").read_text()
    document = load_yaml(bag / "metadata.yaml")
    meta = document["rosbag2_bagfile_information"]
    assert meta["version"] == 9
    assert meta["storage_identifier"] == "mcap"
    assert meta["relative_file_paths"] == ["demos.mcap"]
    assert meta["starting_time"]["nanoseconds_since_epoch"] == BAG_START_NS
    assert meta["message_count"] == 1 + 3 * N + N * S
    topics = {
        t["topic_metadata"]["name"]: (t["topic_metadata"]["type"], t["message_count"])
        for t in meta["topics_with_message_count"]
    }
    assert topics == {
        "/demo/dataset_info": ("std_msgs/msg/String", 1),
        "/goal": ("geometry_msgs/msg/PointStamped", N),
        "/demo/commanded_trajectory": ("trajectory_msgs/msg/JointTrajectory", N),
        "/joint_states": ("sensor_msgs/msg/JointState", N * S),
        "/demo/episode_outcome": ("genrl_interfaces/msg/EpisodeOutcome", N),
    }
    for t in meta["topics_with_message_count"]:
        assert t["topic_metadata"]["serialization_format"] == "cdr"
        assert t["topic_metadata"]["type_description_hash"].startswith("RIHS01_")
        assert isinstance(t["topic_metadata"]["offered_qos_profiles"], list)
    info = json.loads(meta["custom_data"][CUSTOM_DATA_KEY])
    assert info["task"] == dataset.task and info["n_episodes"] == N
    assert info["metadata"] == dataset.metadata
    # the JSON stays on one YAML line
    assert re.search(r"genrl_ros\.dataset_info: '\{.*\}'\n", text)

    # an independent YAML parser agrees
    pyyaml = pytest.importorskip("yaml")
    assert pyyaml.safe_load(text)["rosbag2_bagfile_information"]["version"] == 9


def test_readable_by_rosbags_reader(bag, dataset):
    typestore = make_typestore()
    with Reader(bag) as reader:
        assert {c.topic: c.msgtype for c in reader.connections} == TOPIC_TYPES
        assert reader.message_count == 1 + 3 * N + N * S
        assert reader.topics["/joint_states"].msgcount == N * S
        stamps: dict[str, list[int]] = {}
        for conn, timestamp, raw in reader.messages():
            msg = typestore.deserialize_cdr(raw, conn.msgtype)
            stamps.setdefault(conn.topic, []).append(timestamp)
            if hasattr(msg, "header"):
                stamp = msg.header.stamp
                assert stamp.sec * 1_000_000_000 + stamp.nanosec == timestamp
    period = S * 20_000_000 + 1_000_000_000
    starts = [BAG_START_NS + 1_000_000_000 + i * period for i in range(N)]
    assert stamps["/demo/dataset_info"] == [BAG_START_NS]
    assert stamps["/goal"] == starts
    assert stamps["/demo/commanded_trajectory"] == starts
    assert stamps["/demo/episode_outcome"] == [t + S * 20_000_000 for t in starts]
    assert stamps["/joint_states"][:S] == [starts[0] + s * 20_000_000 for s in range(S)]


def test_readable_by_anyreader(bag, dataset):
    with AnyReader([bag]) as reader:
        outcomes = [
            reader.deserialize(raw, conn.msgtype)
            for conn, _, raw in reader.messages()
            if conn.topic == "/demo/episode_outcome"
        ]
        goals = [
            reader.deserialize(raw, conn.msgtype)
            for conn, _, raw in reader.messages()
            if conn.topic == "/goal"
        ]
    assert [o.episode_index for o in outcomes] == list(range(N))
    first = outcomes[0]
    assert first.task == dataset.task and first.executed and first.rejection_reason == ""
    assert list(first.contact_classes) == list(dataset.contact_classes)
    assert np.array_equal(first.contact_steps, dataset.contact_steps[0])
    assert first.contact_steps.dtype == np.uint32
    assert first.reward == float(dataset.rewards[0])
    assert goals[0].header.frame_id == "world" and goals[0].point.z == 0.0


def test_import_round_trip_exact(bag, dataset):
    back = import_bag(bag)
    assert back == dataset
    for name, array in dataset.arrays().items():
        got = getattr(back, name)
        assert got.dtype == array.dtype, name
        assert np.array_equal(got, array), name
    assert back.seed == dataset.seed and back.metadata == dataset.metadata


@pytest.mark.parametrize("steps, velocities", [(None, False), (T, False), (T + 3, True)])
def test_round_trip_variants(tmp_path, steps, velocities):
    data = synthetic_dataset(3, T, steps, seed=2, task="hockey")
    if steps is not None and not velocities:
        data.joint_velocities = None
    summary = export_bag(data, tmp_path / "b", progress=False)
    assert ("/joint_states" in summary["topics"]) == (steps is not None)
    assert import_bag(tmp_path / "b") == data


def test_empty_dataset(tmp_path):
    data = synthetic_dataset(2, 4, 5).subset(np.zeros(2, bool))
    export_bag(data, tmp_path / "b")
    assert import_bag(tmp_path / "b") == data


def test_deterministic(tmp_path, dataset):
    export_bag(dataset, tmp_path / "one" / "demos")
    export_bag(dataset, tmp_path / "two" / "demos")
    for name in ("demos.mcap", "metadata.yaml"):
        assert (tmp_path / "one" / "demos" / name).read_bytes() == (
            tmp_path / "two" / "demos" / name
        ).read_bytes()


def test_summary(tmp_path, dataset):
    summary = export_bag(dataset, tmp_path / "b")
    assert summary["storage"] == "mcap" and summary["bag_version"] == 9
    assert summary["message_count"] == 1 + 3 * N + N * S
    assert summary["topics"]["/joint_states"]["message_count"] == N * S
    assert summary["size_bytes"] > 0


def test_progress_bar_on_stderr(tmp_path, capsys):
    pytest.importorskip("tqdm")
    data = synthetic_dataset(rosbag_io.PROGRESS_MIN_EPISODES, 3, None)
    export_bag(data, tmp_path / "b", progress=True)
    assert "export" in capsys.readouterr().err
    assert import_bag(tmp_path / "b", progress=True) == data
    assert "import" in capsys.readouterr().err
    export_bag(data, tmp_path / "c", progress=False)
    assert capsys.readouterr().err == ""


# --------------------------------------------------------------------------- refusals and errors


def test_refuses_to_overwrite(tmp_path, dataset):
    target = tmp_path / "demos"
    small = synthetic_dataset(2, 4, None)
    export_bag(small, target)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_bag(dataset, target)
    assert import_bag(target) == small
    export_bag(dataset, target, overwrite=True)
    assert import_bag(target) == dataset
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]

    unrelated = tmp_path / "photos"
    unrelated.mkdir()
    (unrelated / "a.jpg").write_bytes(b"x")
    with pytest.raises(FileExistsError, match="not a bag"):
        export_bag(small, unrelated, overwrite=True)
    assert (unrelated / "a.jpg").exists()


def test_failed_export_leaves_nothing(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("executor crashed")

    monkeypatch.setattr(rosbag_io, "episode_outcome_to_msg", broken)
    with pytest.raises(RuntimeError, match="executor crashed"):
        export_bag(synthetic_dataset(2, 4, 5), tmp_path / "demos")
    assert list(tmp_path.iterdir()) == []


def test_missing_bag(tmp_path):
    with pytest.raises(BagError, match="no bag at"):
        import_bag(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BagError, match="metadata.yaml is missing"):
        import_bag(tmp_path / "empty")


def test_missing_topic(tmp_path, bag):
    broken = copy_bag(bag, tmp_path / "broken", drop_topic="/demo/episode_outcome")
    with pytest.raises(BagError, match=r"lacks the topic\(s\) \['/demo/episode_outcome'\]"):
        import_bag(broken)


def test_count_mismatch(tmp_path, bag):
    broken = copy_bag(bag, tmp_path / "broken", drop_message=("/goal", 2))
    with pytest.raises(BagError) as err:
        import_bag(broken)
    assert "/goal: 4 messages, expected 5" in str(err.value)
    broken = copy_bag(bag, tmp_path / "broken2", drop_message=("/joint_states", 7))
    with pytest.raises(BagError, match=f"/joint_states: {N * S - 1} messages, expected {N * S}"):
        import_bag(broken)


def test_dataset_info_sources(tmp_path, bag, dataset):
    # without custom_data: the /demo/dataset_info message suffices
    no_custom = copy_bag(bag, tmp_path / "no_custom", custom_data=False)
    assert (
        load_yaml(no_custom / "metadata.yaml")["rosbag2_bagfile_information"]["custom_data"] is None
    )
    assert import_bag(no_custom) == dataset
    # without the topic: custom_data suffices
    no_topic = copy_bag(bag, tmp_path / "no_topic", drop_topic="/demo/dataset_info")
    assert import_bag(no_topic) == dataset
    # with neither: a clear error
    neither = copy_bag(
        bag, tmp_path / "neither", drop_topic="/demo/dataset_info", custom_data=False
    )
    with pytest.raises(BagError, match="no dataset description"):
        import_bag(neither)
