"""The latent-policy node's logic without ROS: loading / reloading policies (a real ONNX file
run by OnnxPolicy), when to act (goal or image trigger), the chosen latent action, and the
genrl_interfaces/LatentAction conversion with the real message definition."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from latent_policy_node.latent_conversions import (
    LatentAction,
    latent_action_from_msg,
    latent_action_to_msg,
)
from latent_policy_node.policy_runner import (
    POLICY_NODE_PARAMS,
    ObservationGate,
    Observation,
    PolicyLoadError,
    PolicyRunner,
    file_id,
)
from sim_bridge.node_params import ParameterError, check_params
from sim_bridge.ros_conversions import MessageConversionError

LATENT_MSG = Path(__file__).resolve().parents[2] / "genrl_interfaces" / "msg" / "LatentAction.msg"
W = np.array([[0.5, -1.0, 0.25], [2.0, 0.0, -0.5]], np.float32)
B = np.array([0.1, 0.2, 0.3], np.float32)
LOG_STD = np.array([-1.0, 0.0, -2.0], np.float32)


def write_goal_policy(path: Path, task="hockey", scale=1.0) -> Path:
    """A tiny genrl_ros goal policy ONNX: mean = goal @ W * scale + b, std = exp(log_std)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    latent = W.shape[1]
    inits = [
        numpy_helper.from_array(W * np.float32(scale), "W"),
        numpy_helper.from_array(B, "b"),
        numpy_helper.from_array(np.zeros_like(W), "Z"),
        numpy_helper.from_array(LOG_STD, "log_std"),
    ]
    nodes = [
        helper.make_node("MatMul", ["goal_xy", "W"], ["gw"]),
        helper.make_node("Add", ["gw", "b"], ["mean"]),
        helper.make_node("MatMul", ["goal_xy", "Z"], ["zero"]),
        helper.make_node("Add", ["zero", "log_std"], ["ls"]),
        helper.make_node("Exp", ["ls"], ["std"]),
    ]
    graph = helper.make_graph(
        nodes,
        "policy",
        [helper.make_tensor_value_info("goal_xy", TensorProto.FLOAT, ["batch", 2])],
        [
            helper.make_tensor_value_info("mean", TensorProto.FLOAT, ["batch", latent]),
            helper.make_tensor_value_info("std", TensorProto.FLOAT, ["batch", latent]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(
        model,
        {
            "genrl_ros.format": "genrl_ros.latent_policy_onnx",
            "format_version": "1",
            "task": task,
            "observation": "goal",
            "latent_dim": str(latent),
            "prior": "normal",
            "input_name": "goal_xy",
        },
    )
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def typestore():
    typesys = pytest.importorskip("rosbags.typesys")
    store = typesys.get_typestore(typesys.Stores.ROS2_JAZZY)
    name = "genrl_interfaces/msg/LatentAction"
    store.register(typesys.get_types_from_msg(LATENT_MSG.read_text(), name))
    return store


def test_runner_with_a_real_onnx_policy(tmp_path):
    path = write_goal_policy(tmp_path / "policy.onnx")
    runner = PolicyRunner(observation="goal", deterministic=True, expect_task="hockey")
    policy_id = runner.load(path)
    assert policy_id == file_id(path) and policy_id.startswith("policy.onnx:")
    goal = np.array([0.9, -0.2])
    action = runner.act(Observation("goal", goal, 42, "world"))
    np.testing.assert_allclose(action.mean, goal @ W + B, rtol=1e-6)
    np.testing.assert_allclose(action.std, np.exp(LOG_STD), rtol=1e-6)
    np.testing.assert_array_equal(action.sample, action.mean)
    assert action.deterministic and action.stamp_ns == 42 and action.frame_id == "world"
    assert action.policy_id == policy_id and action.latent_dim == 3

    runner.deterministic = False
    samples = np.stack([runner.act(Observation("goal", goal, 0)).sample for _ in range(400)])
    assert not np.allclose(samples[0], samples[1])
    np.testing.assert_allclose(samples.std(axis=0), np.exp(LOG_STD), rtol=0.15)


def test_reload_keeps_the_previous_policy_on_failure(tmp_path):
    path = write_goal_policy(tmp_path / "policy.onnx")
    runner = PolicyRunner(deterministic=True, expect_task="hockey")
    with pytest.raises(PolicyLoadError, match="no policy path set"):
        runner.reload()
    first = runner.load(path)
    before = runner.act(Observation("goal", np.ones(2), 0)).mean
    write_goal_policy(path, scale=2.0)  # new weights in the same file
    assert runner.reload() != first
    after = runner.act(Observation("goal", np.ones(2), 0)).mean
    np.testing.assert_allclose(after - B, 2 * (before - B), rtol=1e-6)
    other = write_goal_policy(tmp_path / "basketball.onnx", task="basketball")
    with pytest.raises(PolicyLoadError, match="another policy: task 'basketball'"):
        runner.load(other)
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    with pytest.raises(PolicyLoadError, match="cannot load the policy"):
        runner.load(tmp_path / "junk.onnx")
    with pytest.raises(PolicyLoadError, match="no policy file"):
        runner.load(tmp_path / "missing.onnx")
    assert runner.path == path and runner.act(Observation("goal", np.ones(2), 0)) is not None


class FakeImagePolicy:
    latent_dim = 2

    def act(self, observation, deterministic, rng):
        value = float(observation.mean())
        mean = np.array([value, -value])
        return mean, np.ones(2), mean + rng.standard_normal(2)


def test_runner_checks_observations():
    runner = PolicyRunner(observation="image", loader=lambda *args: FakeImagePolicy())
    with pytest.raises(PolicyLoadError, match="no policy loaded"):
        runner.act(Observation("image", np.zeros((4, 4, 3), np.uint8), 0))
    runner.policy = FakeImagePolicy()
    action = runner.act(Observation("image", np.full((4, 4, 3), 10, np.uint8), 5))
    np.testing.assert_allclose(action.mean, [10.0, -10.0])
    assert action.observation == "image" and not action.deterministic
    with pytest.raises(ValueError, match="takes image observations, got a goal"):
        runner.act(Observation("goal", np.zeros(2), 0))
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        runner.act(Observation("image", np.zeros((4, 4)), 0))
    with pytest.raises(ValueError, match="observation must be"):
        PolicyRunner(observation="depth")


def test_gate_goal_mode_acts_on_every_goal():
    gate = ObservationGate("goal")
    observation = gate.on_goal(7, np.array([1.0, 2.0, 0.0]), "world")
    assert observation.kind == "goal" and observation.stamp_ns == 7
    np.testing.assert_array_equal(observation.value, [1.0, 2.0])
    assert gate.on_image(8, np.zeros((2, 2, 3), np.uint8)) is None


def test_gate_image_mode_acts_once_on_the_first_image_after_each_goal():
    gate = ObservationGate("image")
    image = np.zeros((2, 2, 3), np.uint8)
    assert gate.on_image(5, image) is None  # no goal yet
    assert gate.on_goal(10, np.zeros(2)) is None and gate.waiting_for_image
    assert gate.on_image(9, image) is None  # older than the goal: the previous scene
    observation = gate.on_image(10, image, "cam")
    assert observation.kind == "image" and observation.stamp_ns == 10
    assert gate.on_image(11, image) is None and not gate.waiting_for_image
    every = ObservationGate("image", "every_image")
    assert every.on_image(1, image) is not None and every.on_image(2, image) is not None
    with pytest.raises(ValueError, match="image_trigger"):
        ObservationGate("image", "never")


def test_latent_action_round_trip_with_the_real_message(typestore):
    from sim_bridge.ros_conversions import MessageTypes

    msg_types = MessageTypes.from_typestore(typestore)
    cls = typestore.types["genrl_interfaces/msg/LatentAction"]
    action = LatentAction(
        mean=np.array([0.1, -0.2, 0.3], np.float32),
        std=np.array([1.0, 0.5, 0.25]),
        sample=np.array([0.2, -0.1, 0.35]),
        stamp_ns=1_735_689_600_000_000_001,
        frame_id="world",
        deterministic=False,
        observation="goal",
        policy_id="policy.onnx:0123456789ab",
    )
    msg = latent_action_to_msg(action, cls, msg_types)
    raw = typestore.serialize_cdr(msg, cls.__msgtype__)
    back = latent_action_from_msg(typestore.deserialize_cdr(raw, cls.__msgtype__))
    for name in ("mean", "std", "sample"):
        np.testing.assert_array_equal(getattr(back, name), getattr(action, name))
    assert (back.stamp_ns, back.frame_id, back.policy_id, back.observation) == (
        action.stamp_ns,
        "world",
        action.policy_id,
        "goal",
    )
    with pytest.raises(MessageConversionError, match="same non-zero length"):
        latent_action_from_msg(dataclasses.replace(msg, std=np.ones(2)))
    with pytest.raises(MessageConversionError, match="std must be >= 0"):
        LatentAction(mean=np.zeros(1), std=-np.ones(1), sample=np.zeros(1))
    with pytest.raises(MessageConversionError, match="must be finite"):
        LatentAction(mean=np.array([np.nan]), std=np.ones(1), sample=np.zeros(1))
    with pytest.raises(MessageConversionError, match="observation is 'depth'"):
        LatentAction(mean=np.zeros(1), std=np.ones(1), sample=np.zeros(1), observation="depth")


def test_policy_node_params():
    values = check_params(POLICY_NODE_PARAMS, {"observation": "image", "deterministic": True})
    assert values["image_trigger"] == "goal" and values["policy_path"] == ""
    with pytest.raises(ParameterError, match="observation is 'depth'"):
        check_params(POLICY_NODE_PARAMS, {"observation": "depth"})
