"""genrl_interfaces services and messages in the rosbags typestore, and the conversions of the
nodes that use them: EpisodeOutcome of the simulator, DecodeLatent / ResetScene, the trajectory
generator (a real ONNX decoder run by OnnxDecoder), and the demonstration player's recording,
which must read back with ``genrl import-bag``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sim_bridge.arm import JOINT_NAMES
from sim_bridge.ros_conversions import (
    MessageTypes,
    goal_to_msg,
    joint_state_to_msg,
    trajectory_from_msg,
    trajectory_to_msg,
)
from sim_bridge.ros_outcome_conversions import (
    EpisodeReport,
    episode_outcome_from_msg,
    episode_outcome_to_msg,
)

from genrl_ros.data.dataset import synthetic_dataset
from genrl_ros.data.interfaces import (
    DECODE_LATENT,
    EPISODE_OUTCOME,
    LATENT_ACTION,
    RESET_SCENE,
    SAFETY_STATUS,
    InterfaceDefinitionError,
    make_typestore,
    packaged_srv_dir,
    service_classes,
    split_srv,
    srv_definitions,
)
from genrl_ros.data.rosbag_io import TOPIC_TYPES, import_bag
from genrl_ros.demo_playback import DemoPlayback
from genrl_ros.node_params import GENERATOR_PARAMS
from genrl_ros.trajectory_generator import DecoderLoadError, TrajectoryGenerator

SOURCE = Path(__file__).resolve().parents[2] / "genrl_interfaces"
TS = make_typestore()
MT = MessageTypes.from_typestore(TS)


def cdr(msg, typename):
    return TS.deserialize_cdr(TS.serialize_cdr(msg, typename), typename)


# --------------------------------------------------------------------------- definitions


def test_srv_copies_identical_and_built():
    source = sorted((SOURCE / "srv").glob("*.srv"))
    assert [p.name for p in source] == ["DecodeLatent.srv", "ResetScene.srv"]
    cmake = (SOURCE / "CMakeLists.txt").read_text()
    for path in source:
        assert (packaged_srv_dir() / path.name).read_text() == path.read_text()
        assert f'"srv/{path.name}"' in cmake
    assert sorted(srv_definitions()) == [DECODE_LATENT, RESET_SCENE]
    assert "trajectory_msgs" in cmake
    assert "<depend>trajectory_msgs</depend>" in (SOURCE / "package.xml").read_text()
    for name in (LATENT_ACTION, SAFETY_STATUS, EPISODE_OUTCOME):
        assert name in TS.types


def test_srv_copies_that_differ_are_an_error(tmp_path, monkeypatch):
    from genrl_ros.data import interfaces

    (tmp_path / "DecodeLatent.srv").write_text("float64[] latent\n---\nbool success\n")
    monkeypatch.setattr(interfaces, "SOURCE_SRV_DIR", tmp_path)
    with pytest.raises(InterfaceDefinitionError, match="differ"):
        interfaces.srv_definitions()


def test_split_srv():
    request, response = split_srv("int32 a\n# c\n---\nbool ok\n")
    assert request == "int32 a\n# c\n" and response == "bool ok\n"
    with pytest.raises(InterfaceDefinitionError, match="exactly one '---'"):
        split_srv("int32 a\n")


def test_decode_latent_and_reset_scene_round_trip():
    request_cls, response_cls = service_classes(TS, DECODE_LATENT)
    request = cdr(request_cls(latent=np.array([0.5, -1.0])), request_cls.__msgtype__)
    np.testing.assert_array_equal(request.latent, [0.5, -1.0])
    positions = np.random.default_rng(0).uniform(-1, 1, (5, 7))
    trajectory = trajectory_to_msg(positions, JOINT_NAMES, 0.04, MT)
    response = cdr(
        response_cls(success=True, message="decoded", trajectory=trajectory),
        response_cls.__msgtype__,
    )
    decoded, dt = trajectory_from_msg(response.trajectory, JOINT_NAMES)
    np.testing.assert_array_equal(decoded, positions)
    assert dt == 0.04 and response.success

    reset_request, reset_response = service_classes(TS, RESET_SCENE)
    msg = cdr(
        reset_request(sample_goal=False, goal=MT.Point(x=0.9, y=-0.1, z=0.0)),
        reset_request.__msgtype__,
    )
    assert (msg.sample_goal, msg.goal.x, msg.goal.y) == (False, 0.9, -0.1)
    assert reset_response.__msgtype__.endswith("ResetScene_Response")
    with pytest.raises(InterfaceDefinitionError, match="not registered"):
        service_classes(TS, "genrl_interfaces/srv/Missing")


# --------------------------------------------------------------------------- outcomes


def test_episode_outcome_of_the_simulator_round_trip():
    cls = TS.types[EPISODE_OUTCOME]
    report = EpisodeReport(
        episode_index=3,
        task="hockey",
        goal_xy=np.array([0.9, 0.2]),
        final_object_position=np.array([0.88, 0.21, 0.02]),
        reward=-0.022,
        distance_m=0.022,
        contact_classes=("blade_table", "stick_puck", "robot_table", "robot_self"),
        contact_steps=(2, 5, 0, 1),
        unsafe_classes=("blade_table", "robot_table", "robot_self"),
        joint_limit_violation_steps=0,
    )
    assert report.unsafe and report.unsafe_contact_steps == 3
    assert report.contact_steps_of(("stick_puck", "robot_floor")) == 5
    msg = cdr(episode_outcome_to_msg(report, 1_000_000_007, cls, MT), EPISODE_OUTCOME)
    assert msg.header.frame_id == "world" and msg.goal.z == 0.0
    stamp, back = episode_outcome_from_msg(msg)
    assert stamp == 1_000_000_007
    for name in (
        "episode_index",
        "task",
        "reward",
        "distance_m",
        "contact_classes",
        "contact_steps",
        "unsafe_classes",
        "executed",
        "rejection_reason",
    ):
        assert getattr(back, name) == getattr(report, name), name
    np.testing.assert_array_equal(back.final_object_position, report.final_object_position)

    rejected = EpisodeReport.rejected(4, "hockey", [1.0, 0.0], "too fast", ("a", "b"), ("a",))
    stamp, back = episode_outcome_from_msg(
        cdr(episode_outcome_to_msg(rejected, 0, cls, MT), EPISODE_OUTCOME)
    )
    assert not back.executed and back.rejection_reason == "too fast"
    assert np.isnan(back.reward) and back.contact_steps == (0, 0) and not back.unsafe


def test_episode_report_checks():
    with pytest.raises(ValueError, match="2 values for 1 classes"):
        EpisodeReport(0, "t", np.zeros(2), np.zeros(3), 0.0, 0.0, ("a",), (1, 2), ())
    with pytest.raises(ValueError, match="not among the contact classes"):
        EpisodeReport(0, "t", np.zeros(2), np.zeros(3), 0.0, 0.0, ("a",), (1,), ("b",))


# --------------------------------------------------------------------------- generator

LATENT, HORIZON = 3, 6


def write_decoder(path: Path, task="hockey", scale=1.0) -> tuple[Path, np.ndarray, np.ndarray]:
    """A tiny genrl_ros decoder ONNX: trajectory = reshape(alpha @ W + b, (T, 7))."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    weights = (rng.normal(0, 0.1, (LATENT, HORIZON * 7)) * scale).astype(np.float32)
    bias = rng.normal(0, 0.5, HORIZON * 7).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["alpha", "W"], ["aw"]),
            helper.make_node("Add", ["aw", "b"], ["flat"]),
            helper.make_node("Reshape", ["flat", "shape"], ["trajectory"]),
        ],
        "decoder",
        [helper.make_tensor_value_info("alpha", TensorProto.FLOAT, ["batch", LATENT])],
        [helper.make_tensor_value_info("trajectory", TensorProto.FLOAT, ["batch", HORIZON, 7])],
        [
            numpy_helper.from_array(weights, "W"),
            numpy_helper.from_array(bias, "b"),
            numpy_helper.from_array(np.array([-1, HORIZON, 7], np.int64), "shape"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(
        model,
        {
            "genrl_ros.format": "genrl_ros.decoder_onnx",
            "format_version": "1",
            "task": task,
            "horizon": str(HORIZON),
            "joint_names": json.dumps(list(JOINT_NAMES)),
            "control_dt_s": "0.04",
            "latent_dim": str(LATENT),
            "prior": "normal",
            "kind": "vae",
            "model_sha256": "0" * 64,
        },
    )
    onnx.save(model, str(path))
    return path, weights, bias


def test_generator_decodes_with_a_real_onnx_decoder(tmp_path):
    path, weights, bias = write_decoder(tmp_path / "decoder.onnx")
    generator = TrajectoryGenerator(expect_task="hockey")
    with pytest.raises(DecoderLoadError, match="no decoder loaded"):
        generator.decode(np.zeros(LATENT))
    assert "latent_dim 3, 6 x 7 commands every 0.04 s" in generator.load(path)
    alpha = np.array([0.5, -1.0, 2.0])
    decoded = generator.decode(alpha)
    expected = (alpha.astype(np.float32) @ weights + bias).reshape(HORIZON, 7)
    np.testing.assert_allclose(decoded.positions, expected, rtol=1e-5, atol=1e-6)
    msg = cdr(decoded.to_msg(MT), "trajectory_msgs/msg/JointTrajectory")
    positions, dt = trajectory_from_msg(msg, JOINT_NAMES)
    np.testing.assert_array_equal(positions, decoded.positions)
    assert dt == 0.04 and msg.header.stamp.sec == 0 and msg.header.stamp.nanosec == 0

    with pytest.raises(ValueError, match="latent has 2 values, the decoder takes 3"):
        generator.decode(np.zeros(2))
    with pytest.raises(ValueError, match="finite"):
        generator.decode(np.array([0.0, np.nan, 0.0]))
    other, _, _ = write_decoder(tmp_path / "basketball.onnx", task="basketball")
    with pytest.raises(DecoderLoadError, match="another model: task 'basketball'"):
        generator.load(other)
    with pytest.raises(DecoderLoadError, match="no decoder at"):
        generator.load(tmp_path / "missing.onnx")
    assert generator.path == path  # the previous decoder stays in use
    write_decoder(path, scale=3.0)  # new weights in the same file: reload on parameter set
    generator.load(path)
    assert not np.allclose(generator.decode(alpha).positions, decoded.positions)


def test_generator_params():
    from sim_bridge.node_params import check_params

    values = check_params(GENERATOR_PARAMS, {"model_path": "/tmp/decoder.onnx"})
    assert values["action_name"] == "/safety/follow_joint_trajectory" and values["execute"]


# --------------------------------------------------------------------------- demo recording


def test_demo_recording_reads_back_with_import_bag(tmp_path):
    """Write what the graph records (the player's topics, sim_bridge's /goal and
    /joint_states, idle states included) and import it like `genrl import-bag`."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    dataset = synthetic_dataset(6, horizon=8, joint_state_steps=None, seed=5)
    playback = DemoPlayback(dataset, max_episodes=4)
    assert playback.n_episodes == 4
    info = json.loads(playback.info_json())
    assert info["n_episodes"] == 4 and info["joint_state_steps"] is None
    assert info["recorded_through"] == "ros_graph"

    outcome_cls = TS.types[EPISODE_OUTCOME]
    string_cls = TS.types["std_msgs/msg/String"]
    stamp = 1_800_000_000 * 1_000_000_000
    bag = tmp_path / "graph_bag"
    with Writer(bag, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conns = {
            topic: writer.add_connection(topic, msgtype, typestore=TS)
            for topic, msgtype in TOPIC_TYPES.items()
        }

        def write(topic, msg):
            nonlocal stamp
            stamp += 10_000_000
            writer.write(conns[topic], stamp, TS.serialize_cdr(msg, TOPIC_TYPES[topic]))

        write("/demo/dataset_info", string_cls(data=playback.info_json()))
        idle = joint_state_to_msg(np.zeros(7), np.zeros(7), JOINT_NAMES, stamp, MT)
        for i in range(playback.n_episodes):
            episode = playback.episode(i)
            write("/joint_states", idle)
            write("/goal", goal_to_msg(episode.goal_xy, stamp, MT))
            write(
                "/demo/commanded_trajectory",
                trajectory_to_msg(episode.trajectory, JOINT_NAMES, dataset.control_dt_s, MT),
            )
            for _ in range(3):
                write("/joint_states", idle)
            # the simulator's report (its own running index, not an expert flag)
            report = EpisodeReport(
                episode_index=100 + i,
                task=dataset.task,
                goal_xy=episode.goal_xy,
                final_object_position=dataset.final_object_pos[i],
                reward=float(dataset.rewards[i]) + 1e-7,
                distance_m=float(dataset.distance_m[i]),
                contact_classes=dataset.contact_classes,
                contact_steps=tuple(int(v) for v in dataset.contact_steps[i]),
                unsafe_classes=dataset.unsafe_classes,
                joint_limit_violation_steps=int(dataset.joint_limit_violation_steps[i]),
            )
            relabeled = playback.relabel(report, i)
            assert relabeled.episode_index == i
            assert relabeled.is_expert == bool(dataset.is_expert[i])
            write(
                "/demo/episode_outcome", episode_outcome_to_msg(relabeled, stamp, outcome_cls, MT)
            )

    imported = import_bag(bag)
    assert imported.n_episodes == 4 and imported.task == dataset.task
    np.testing.assert_array_equal(imported.trajectories, dataset.trajectories[:4])
    np.testing.assert_array_equal(imported.goals_xy, dataset.goals_xy[:4])
    np.testing.assert_array_equal(imported.is_expert, dataset.is_expert[:4])
    np.testing.assert_allclose(imported.rewards, dataset.rewards[:4], atol=1e-6)
    assert imported.joint_positions is None
    summary = playback.summary()
    assert summary["executed"] == 4 and summary["failures"] == []
    assert summary["max_reward_difference"] == pytest.approx(1e-7, abs=1e-6)
    with pytest.raises(IndexError):
        playback.episode(4)
