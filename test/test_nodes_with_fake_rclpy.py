"""The node modules run for real against a stand-in for rclpy (no ROS here).

The stand-in implements the small part of the rclpy API the nodes use, with the signatures of
rclpy (Jazzy): ``Node.declare_parameter / get_parameter / add_on_set_parameters_callback /
create_publisher / create_subscription / create_service / create_client / create_timer /
get_clock / get_logger``, ``rclpy.action.ActionServer / ActionClient / GoalResponse /
CancelResponse``, futures with ``add_done_callback``. Message classes are the real ROS 2
definitions from the rosbags typestore (genrl_interfaces and control_msgs registered). The
callbacks are called directly, as an executor would call them, so every line of the nodes'
callbacks runs: parameter handling, goal checks, episode playback, cancel, relays, outcomes.
What this cannot show is the behaviour of the real middleware (QoS, threads, timing).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import sys
import time
import types
from enum import Enum
from pathlib import Path

import numpy as np
import pytest
from sim_bridge.arm import JOINT_NAMES
from sim_bridge.ros_conversions import MessageTypes, goal_to_msg, trajectory_to_msg
from sim_bridge.trajectory_action import (
    FollowJointTrajectoryTypes,
    goal_to_msg as fjt_goal,
    register_follow_joint_trajectory,
)

from genrl_ros.data.interfaces import make_typestore, service_classes

ROOT = Path(__file__).resolve().parents[1]
TS = make_typestore()
register_follow_joint_trajectory(TS)
MT = MessageTypes.from_typestore(TS)
FJT = FollowJointTrajectoryTypes.from_typestore(TS)


# --------------------------------------------------------------------------- the stand-in


class Logger:
    def __init__(self):
        self.lines = []

    def _log(self, level):
        return lambda text: self.lines.append((level, str(text)))

    def __getattr__(self, level):
        return self._log(level)


class Param:
    def __init__(self, name, value):
        self.name, self.value = name, value


#: (topic, message) of every publication, in order (what a recorder would see)
PUBLISHED: list = []


class Publisher:
    def __init__(self, msg_type, topic):
        self.msg_type, self.topic, self.messages = msg_type, topic, []

    def publish(self, msg):
        self.messages.append(msg)
        PUBLISHED.append((self.topic, msg))


class Future:
    def __init__(self, value=None):
        self._value = value

    def result(self):
        return self._value

    def done(self):
        return True

    def add_done_callback(self, callback):
        callback(self)


class PendingFuture(Future):
    """A future that completes when the test (or a cancel) sets its result."""

    def __init__(self):
        super().__init__()
        self._done, self._callbacks = False, []

    def done(self):
        return self._done

    def set_result(self, value):
        self._value, self._done = value, True
        for callback in self._callbacks:
            callback(self)

    def add_done_callback(self, callback):
        if self._done:
            callback(self)
        else:
            self._callbacks.append(callback)


class Node:
    overrides: dict = {}

    def __init__(self, node_name, **kwargs):
        self.name = node_name
        self.params = {"use_sim_time": False}
        self.publishers, self.subscriptions, self.services = {}, {}, {}
        self.clients, self.timers, self.on_set = {}, [], []
        self.logger = Logger()

    def declare_parameter(self, name, value=None, descriptor=None, ignore_override=False):
        assert descriptor is not None and descriptor.description
        self.params[name] = self.overrides.get(name, value)
        return Param(name, self.params[name])

    def get_parameter(self, name):
        return Param(name, self.params[name])

    def add_on_set_parameters_callback(self, callback):
        self.on_set.insert(0, callback)

    def set_parameters_from_test(self, values):
        result = self.on_set[0]([Param(k, v) for k, v in values.items()])
        if result.successful:
            self.params.update(values)
        return result

    def create_publisher(self, msg_type, topic, qos_profile, *, callback_group=None):
        self.publishers[topic] = Publisher(msg_type, topic)
        return self.publishers[topic]

    def create_subscription(self, msg_type, topic, callback, qos_profile, *, callback_group=None):
        self.subscriptions[topic] = callback

    def create_service(
        self, srv_type, srv_name, callback, *, qos_profile=None, callback_group=None
    ):
        self.services[srv_name] = (srv_type, callback)

    def create_client(self, srv_type, srv_name, *, qos_profile=None, callback_group=None):
        self.clients[srv_name] = ServiceClient(srv_type, srv_name)
        return self.clients[srv_name]

    def create_timer(self, timer_period_sec, callback, callback_group=None, clock=None):
        assert timer_period_sec > 0
        self.timers.append(callback)
        return types.SimpleNamespace(cancel=lambda: None)

    def get_clock(self):
        now = types.SimpleNamespace(nanoseconds=time.time_ns())
        return types.SimpleNamespace(now=lambda: now)

    def get_logger(self):
        return self.logger

    def destroy_node(self):
        pass


class ServiceClient:
    """rclpy.client.Client: ``handler(request) -> response`` is set by the test."""

    def __init__(self, srv_type, srv_name=""):
        self.srv_type, self.srv_name, self.handler = srv_type, srv_name, None

    def wait_for_service(self, timeout_sec=None):
        return self.handler is not None

    def call_async(self, request):
        return Future(self.handler(request))


class GoalResponse(Enum):
    REJECT = 1
    ACCEPT = 2


class CancelResponse(Enum):
    REJECT = 1
    ACCEPT = 2


class ActionServer:
    def __init__(
        self,
        node,
        action_type,
        action_name,
        execute_callback,
        *,
        callback_group=None,
        goal_callback=None,
        handle_accepted_callback=None,
        cancel_callback=None,
        **kw,
    ):
        node.action_server = self
        self.name, self.execute = action_name, execute_callback
        self.goal_callback, self.cancel_callback = goal_callback, cancel_callback
        self.handle_accepted_callback = handle_accepted_callback

    def destroy(self):
        pass


class ActionClient:
    """Sends goals to a fake controller: ``controller(goal, feedback_callback) ->
    (accepted, status, result)``; ``controllers`` (action name -> controller) overrides it
    for a name (a graph of several nodes)."""

    controller = None
    controllers: dict = {}

    def __init__(self, node, action_type, action_name, *, callback_group=None, **kwargs):
        node.action_client = self
        self.name, self.sent, self.canceled = action_name, [], 0

    def wait_for_server(self, timeout_sec=None):
        return True

    def send_goal_async(self, goal, feedback_callback=None, goal_uuid=None):
        self.sent.append(goal)
        controller = type(self).controllers.get(self.name) or type(self).controller
        accepted, status, result = controller(goal, feedback_callback)
        if status is None:  # runs until canceled
            pending = PendingFuture()
            handle = types.SimpleNamespace(
                accepted=accepted,
                get_result_async=lambda: pending,
                cancel_goal_async=lambda: self._cancel(pending, result),
            )
        else:
            response = types.SimpleNamespace(status=status, result=result)
            handle = types.SimpleNamespace(
                accepted=accepted,
                get_result_async=lambda: Future(response),
                cancel_goal_async=lambda: self._cancel(None, None),
            )
        return Future(handle)

    def _cancel(self, pending, result):
        self.canceled += 1
        if pending is not None:
            pending.set_result(types.SimpleNamespace(status=5, result=result))
        return Future()

    def destroy(self):
        pass


class GoalHandle:
    """rclpy.action.server.ServerGoalHandle as the execute callback sees it."""

    def __init__(self, request, cancel_after_feedback=None):
        self.request, self.feedback, self.state = request, [], "executing"
        self.cancel_after_feedback = cancel_after_feedback

    @property
    def is_cancel_requested(self):
        return (
            self.cancel_after_feedback is not None
            and len(self.feedback) >= self.cancel_after_feedback
        )

    @property
    def is_active(self):
        return self.state == "executing"

    def publish_feedback(self, feedback):
        self.feedback.append(feedback)

    def succeed(self):
        self.state = "succeeded"

    def abort(self):
        self.state = "aborted"

    def canceled(self):
        self.state = "canceled"


class RclpyParameter:
    """rclpy.parameter.Parameter (name, type_, value) with ``to_parameter_msg``."""

    class Type(Enum):
        NOT_SET = 0
        BOOL = 1
        INTEGER = 2
        DOUBLE = 3
        STRING = 4

    def __init__(self, name, type_=None, value=None):
        self.name, self.type_, self.value = name, type_, value

    def to_parameter_msg(self):
        t = TS.types
        empty = np.zeros(0)
        value = t["rcl_interfaces/msg/ParameterValue"](
            type=self.type_.value,
            bool_value=self.value if self.type_ == self.Type.BOOL else False,
            integer_value=self.value if self.type_ == self.Type.INTEGER else 0,
            double_value=self.value if self.type_ == self.Type.DOUBLE else 0.0,
            string_value=self.value if self.type_ == self.Type.STRING else "",
            byte_array_value=empty.astype(np.uint8),
            bool_array_value=empty.astype(bool),
            integer_array_value=empty.astype(np.int64),
            double_array_value=empty,
            string_array_value=[],
        )
        return t["rcl_interfaces/msg/Parameter"](name=self.name, value=value)


@dataclasses.dataclass
class SetParametersRequest:
    parameters: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class SetParametersResponse:
    results: list = dataclasses.field(default_factory=list)


def message_module(name, classes):
    module = types.ModuleType(name)
    for key, value in classes.items():
        setattr(module, key, value)
    return module


def service(request, response):
    return types.SimpleNamespace(Request=request, Response=response)


@dataclasses.dataclass
class TriggerRequest:
    pass


@dataclasses.dataclass
class TriggerResponse:
    success: bool = False
    message: str = ""


def fake_modules():
    t = TS.types
    action = types.SimpleNamespace(Goal=FJT.Goal, Result=FJT.Result, Feedback=FJT.Feedback)
    rclpy = message_module("rclpy", {"init": lambda args=None: None, "try_shutdown": lambda: None})
    modules = {
        "rclpy": rclpy,
        "rclpy.node": message_module("rclpy.node", {"Node": Node}),
        "rclpy.action": message_module(
            "rclpy.action",
            {
                "ActionServer": ActionServer,
                "ActionClient": ActionClient,
                "GoalResponse": GoalResponse,
                "CancelResponse": CancelResponse,
            },
        ),
        "rclpy.callback_groups": message_module(
            "rclpy.callback_groups",
            {"ReentrantCallbackGroup": object, "MutuallyExclusiveCallbackGroup": object},
        ),
        "rclpy.clock": message_module(
            "rclpy.clock",
            {
                "Clock": lambda clock_type=None: types.SimpleNamespace(clock_type=clock_type),
                "ClockType": types.SimpleNamespace(STEADY_TIME=2, ROS_TIME=1),
            },
        ),
        "rclpy.executors": message_module(
            "rclpy.executors",
            {"MultiThreadedExecutor": object, "ExternalShutdownException": RuntimeError},
        ),
        "rclpy.qos": message_module(
            "rclpy.qos",
            {
                "QoSProfile": lambda **kw: kw,
                "DurabilityPolicy": types.SimpleNamespace(TRANSIENT_LOCAL=1, VOLATILE=2),
                "ReliabilityPolicy": types.SimpleNamespace(RELIABLE=1, BEST_EFFORT=2),
            },
        ),
        "rclpy.parameter": message_module("rclpy.parameter", {"Parameter": RclpyParameter}),
        "rcl_interfaces": types.ModuleType("rcl_interfaces"),
        "rcl_interfaces.srv": message_module(
            "rcl_interfaces.srv",
            {"SetParameters": service(SetParametersRequest, SetParametersResponse)},
        ),
        "rcl_interfaces.msg": message_module(
            "rcl_interfaces.msg",
            {
                "ParameterDescriptor": lambda description="", read_only=False: (
                    types.SimpleNamespace(description=description, read_only=read_only)
                ),
                "SetParametersResult": lambda successful, reason="": types.SimpleNamespace(
                    successful=successful, reason=reason
                ),
            },
        ),
        "builtin_interfaces.msg": message_module(
            "builtin_interfaces.msg",
            {
                "Time": t["builtin_interfaces/msg/Time"],
                "Duration": t["builtin_interfaces/msg/Duration"],
            },
        ),
        "std_msgs.msg": message_module(
            "std_msgs.msg", {"Header": t["std_msgs/msg/Header"], "String": t["std_msgs/msg/String"]}
        ),
        "geometry_msgs.msg": message_module(
            "geometry_msgs.msg",
            {n: t[f"geometry_msgs/msg/{n}"] for n in ("Point", "PointStamped", "WrenchStamped")},
        ),
        "sensor_msgs.msg": message_module(
            "sensor_msgs.msg",
            {
                n: t[f"sensor_msgs/msg/{n}"]
                for n in ("JointState", "Image", "CameraInfo", "RegionOfInterest")
            },
        ),
        "trajectory_msgs.msg": message_module(
            "trajectory_msgs.msg",
            {
                n: t[f"trajectory_msgs/msg/{n}"]
                for n in (
                    "JointTrajectory",
                    "JointTrajectoryPoint",
                    "MultiDOFJointTrajectory",
                    "MultiDOFJointTrajectoryPoint",
                )
            },
        ),
        "rosgraph_msgs.msg": message_module(
            "rosgraph_msgs.msg", {"Clock": t["rosgraph_msgs/msg/Clock"]}
        ),
        "control_msgs.action": message_module(
            "control_msgs.action", {"FollowJointTrajectory": action}
        ),
        "control_msgs.msg": message_module(
            "control_msgs.msg", {"JointTolerance": FJT.JointTolerance}
        ),
        "genrl_interfaces.msg": message_module(
            "genrl_interfaces.msg",
            {
                n: t[f"genrl_interfaces/msg/{n}"]
                for n in ("EpisodeOutcome", "LatentAction", "SafetyStatus")
            },
        ),
        "genrl_interfaces.srv": message_module(
            "genrl_interfaces.srv",
            {
                n: service(*service_classes(TS, f"genrl_interfaces/srv/{n}"))
                for n in ("DecodeLatent", "ResetScene")
            },
        ),
        "std_srvs.srv": message_module(
            "std_srvs.srv", {"Trigger": service(TriggerRequest, TriggerResponse)}
        ),
    }
    for name in list(modules):
        parent = name.rsplit(".", 1)[0]
        if parent != name and parent not in modules:
            modules[parent] = types.ModuleType(parent)
    return modules


@pytest.fixture
def ros(monkeypatch):
    """Install the stand-in; yields a loader of node modules (fresh imports)."""
    for name, module in fake_modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    loaded = []
    monkeypatch.setattr(ActionClient, "controllers", {})

    def load(module_name, **overrides):
        monkeypatch.setattr(Node, "overrides", overrides)
        sys.modules.pop(module_name, None)
        module = importlib.import_module(module_name)
        loaded.append(module_name)
        return module

    PUBLISHED.clear()
    yield load
    for name in loaded:
        sys.modules.pop(name, None)
    sys.modules.pop("sim_bridge.nodes.ros_params", None)


def smooth(spec, amplitude=0.3):
    alpha = (1 - np.cos(np.linspace(0, np.pi, spec.horizon))) / 2
    target = spec.start_rad + amplitude * np.array([1.0, 0.5, 0.0, -0.5, 0.0, 0.5, 0.0])
    return spec.start_rad + alpha[:, None] * (target - spec.start_rad)


def goal_for(positions, names=JOINT_NAMES, dt=0.04):
    return fjt_goal(trajectory_to_msg(positions, names, dt, MT), FJT)


# --------------------------------------------------------------------------- sim_bridge


@pytest.fixture
def sim_node(ros):
    module = ros("sim_bridge.nodes.sim_bridge_node", real_time_factor=0.0)
    node = module.SimBridgeNode()
    yield node
    node.destroy_node()


def test_sim_bridge_interfaces_and_reset(sim_node):
    node = sim_node
    assert set(node.publishers) == {"joint_states", "goal", "episode_outcome"}
    assert node.action_server.name == "arm_controller/follow_joint_trajectory"
    srv_type, reset = node.services["~/reset_scene"]
    response = reset(
        srv_type.Request(sample_goal=False, goal=MT.Point(x=0.95, y=-0.15, z=0.0)),
        srv_type.Response(success=False, message="", goal=MT.Point(x=0.0, y=0.0, z=0.0)),
    )
    assert response.success and (response.goal.x, response.goal.y) == (0.95, -0.15)
    goal_msg = node.publishers["goal"].messages[-1]
    assert (goal_msg.point.x, goal_msg.header.frame_id) == (0.95, "world")
    for tick in node.timers:
        tick()
    (state,) = node.publishers["joint_states"].messages
    assert list(state.name) == list(JOINT_NAMES)
    np.testing.assert_allclose(list(state.position), node._session.task.start_rad)


def test_sim_bridge_refuses_a_goal_that_commands_the_blade_into_the_table(ros):
    # smooth(0.4) bends the shoulder until the blade is commanded 5 mm into the table
    module = ros("sim_bridge.nodes.sim_bridge_node", real_time_factor=0.0)
    node = module.SimBridgeNode()
    goal = goal_for(smooth(node._session.spec, amplitude=0.4))
    assert node.action_server.goal_callback(goal) == GoalResponse.REJECT
    (outcome,) = node.publishers["episode_outcome"].messages
    assert not outcome.executed and "leaves the workspace" in outcome.rejection_reason
    node.destroy_node()
    unchecked = ros(
        "sim_bridge.nodes.sim_bridge_node", real_time_factor=0.0, workspace_check=False
    ).SimBridgeNode()
    assert unchecked.action_server.goal_callback(goal) == GoalResponse.ACCEPT
    unchecked.destroy_node()


def test_sim_bridge_executes_a_goal(sim_node):
    from sim_bridge.executor import BatchExecutor

    node = sim_node
    session = node._session
    session.reset(np.array([0.9, 0.1]))
    positions = smooth(session.spec)
    goal = goal_for(positions)
    assert node.action_server.goal_callback(goal) == GoalResponse.ACCEPT
    handle = GoalHandle(goal)
    result = node.action_server.execute(handle)
    assert handle.state == "succeeded" and result.error_code == 0, result.error_string
    assert len(handle.feedback) == session.n_steps == 99
    assert len(node.publishers["joint_states"].messages) == 99
    (outcome,) = node.publishers["episode_outcome"].messages
    with BatchExecutor("hockey") as executor:
        expected = executor.execute(positions, np.array([0.9, 0.1]))
    assert outcome.executed and outcome.reward == pytest.approx(float(expected.reward[0]))
    feedback = handle.feedback[10]
    np.testing.assert_allclose(list(feedback.desired.positions), positions[10])
    assert list(feedback.joint_names) == list(JOINT_NAMES)


def test_sim_bridge_cancel_holds_and_reports(sim_node):
    node = sim_node
    positions = smooth(node._session.spec)
    handle = GoalHandle(goal_for(positions), cancel_after_feedback=10)
    result = node.action_server.execute(handle)
    assert handle.state == "canceled" and result.error_code == 0
    assert "holding" in result.error_string
    states = node.publishers["joint_states"].messages
    assert len(states) == node._session.n_steps
    np.testing.assert_allclose(list(states[-1].position), positions[9], atol=0.02)
    assert len(node.publishers["episode_outcome"].messages) == 1


def test_sim_bridge_invalid_goals(sim_node, ros):
    node = sim_node
    positions = smooth(node._session.spec)
    partial = goal_for(positions[:, :6], names=JOINT_NAMES[:6])
    assert node.action_server.goal_callback(partial) == GoalResponse.REJECT
    (outcome,) = node.publishers["episode_outcome"].messages
    assert not outcome.executed and "missing joints" in outcome.rejection_reason
    assert any("INVALID_JOINTS" in text for _, text in node.logger.lines)
    # accept-and-abort mode reports the code in the result
    assert node.set_parameters_from_test({"reject_invalid_goals": False}).successful
    assert node.action_server.goal_callback(partial) == GoalResponse.ACCEPT
    handle = GoalHandle(partial)
    result = node.action_server.execute(handle)
    assert handle.state == "aborted" and result.error_code == FJT.Result.INVALID_JOINTS


def test_sim_bridge_parameter_changes(sim_node):
    node = sim_node
    refused = node.set_parameters_from_test({"real_time_factor": -1.0})
    assert not refused.successful and "real_time_factor is -1.0" in refused.reason
    refused = node.set_parameters_from_test({"task": "basketball"})
    assert not refused.successful and "read-only" in refused.reason
    assert node.set_parameters_from_test({"real_time_factor": 2.0}).successful
    assert node._params["real_time_factor"] == 2.0


def test_sim_bridge_publishes_the_clock_with_sim_time(ros, monkeypatch):
    module = ros("sim_bridge.nodes.sim_bridge_node", real_time_factor=0.0)
    monkeypatch.setattr(Node, "overrides", {"real_time_factor": 0.0, "use_sim_time": True})
    original = Node.__init__

    def with_sim_time(self, name, **kwargs):
        original(self, name, **kwargs)
        self.params["use_sim_time"] = True

    monkeypatch.setattr(Node, "__init__", with_sim_time)
    node = module.SimBridgeNode()
    assert "/clock" in node.publishers
    node.timers[0]()
    node.timers[0]()
    clocks = node.publishers["/clock"].messages
    assert [c.clock.nanosec for c in clocks] == [40_000_000, 80_000_000]
    assert node.publishers["joint_states"].messages[-1].header.stamp.nanosec == 80_000_000
    node.destroy_node()


def test_sim_bridge_auto_reset_watchdog(ros):
    module = ros(
        "sim_bridge.nodes.sim_bridge_node",
        real_time_factor=0.0,
        auto_reset=True,
        auto_reset_timeout_s=0.05,
    )
    node = module.SimBridgeNode()
    assert node.publishers["goal"].messages == []  # the first reset comes with the first tick
    idle_tick = node.timers[0]
    idle_tick()
    idle_tick()
    assert len(node.publishers["goal"].messages) == 1
    time.sleep(0.06)  # no goal came: a new one
    idle_tick()
    assert len(node.publishers["goal"].messages) == 2
    handle = GoalHandle(goal_for(smooth(node._session.spec)))
    node.action_server.execute(handle)  # an episode resets the scene when it ends
    assert handle.state == "succeeded" and len(node.publishers["goal"].messages) == 3
    node.destroy_node()


def test_sim_bridge_camera(ros):
    from sim_bridge.camera import SceneCamera
    from sim_bridge.ros_image_conversions import camera_info_from_msg, image_from_msg

    module = ros(
        "sim_bridge.nodes.sim_bridge_node",
        real_time_factor=0.0,
        **{"camera.enabled": True, "camera.width": 32, "camera.height": 24},
    )
    node = module.SimBridgeNode()
    try:
        srv_type, reset = node.services["~/reset_scene"]
        reset(
            srv_type.Request(sample_goal=False, goal=MT.Point(x=1.0, y=0.2, z=0.0)),
            srv_type.Response(success=False, message="", goal=MT.Point(x=0.0, y=0.0, z=0.0)),
        )
        for tick in node.timers:  # the camera timer republishes the image of the goal
            tick()
        images = node.publishers["camera/image_raw"].messages
        assert len(images) == 2 and images[0].encoding == "rgb8"
        with SceneCamera("hockey", width=32, height=24) as camera:
            expected = camera.render(np.array([1.0, 0.2]))
        np.testing.assert_array_equal(image_from_msg(images[-1]), expected)
        info = node.publishers["camera/camera_info"].messages[-1]
        assert camera_info_from_msg(info)[:2] == (32, 24)
        assert info.header.frame_id == images[-1].header.frame_id == "scene_camera_optical_frame"
    finally:
        node.destroy_node()


# --------------------------------------------------------------------------- latent policy


def test_latent_policy_node(ros, tmp_path):
    sys.path.insert(0, str(ROOT / "src/latent_policy_node/test"))
    try:
        spec = importlib.util.spec_from_file_location(
            "policy_fixture", ROOT / "src/latent_policy_node/test/test_policy_runner.py"
        )
        fixture = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(fixture)
    finally:
        sys.path.pop(0)
    path = fixture.write_goal_policy(tmp_path / "policy.onnx")
    module = ros(
        "latent_policy_node.nodes.latent_policy_node",
        policy_path=str(path),
        deterministic=True,
        expect_task="hockey",
    )
    node = module.LatentPolicyNode()
    assert set(node.subscriptions) == {"goal"} and "~/reload_policy" in node.services
    node.subscriptions["goal"](goal_to_msg(np.array([0.9, -0.2]), 77, MT))
    (action,) = node.publishers["latent_action"].messages
    np.testing.assert_allclose(
        list(action.mean), np.array([0.9, -0.2]) @ fixture.W + fixture.B, rtol=1e-6
    )
    assert action.deterministic and action.header.stamp.nanosec == 77
    srv_type, reload_policy = node.services["~/reload_policy"]
    assert reload_policy(srv_type.Request(), srv_type.Response()).success
    refused = node.set_parameters_from_test({"policy_path": str(tmp_path / "missing.onnx")})
    assert not refused.successful and "no policy file" in refused.reason


# --------------------------------------------------------------------------- generator


def test_trajectory_generator_node(ros, tmp_path):
    spec = importlib.util.spec_from_file_location(
        "decoder_fixture", ROOT / "src/genrl_ros/test/test_ros_interfaces.py"
    )
    fixture = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fixture)
    path, _, _ = fixture.write_decoder(tmp_path / "decoder.onnx")
    ActionClient.controller = staticmethod(
        lambda goal, feedback: (True, 4, FJT.Result(error_code=0, error_string="goal reached"))
    )
    module = ros("genrl_ros.nodes.trajectory_generator_node", model_path=str(path))
    node = module.TrajectoryGeneratorNode()
    srv_type, decode = node.services["generate_trajectory"]
    empty = MT.JointTrajectory(
        header=MT.Header(stamp=MT.Time(sec=0, nanosec=0), frame_id=""), joint_names=[], points=[]
    )
    response = decode(
        srv_type.Request(latent=np.array([0.5, -1.0, 2.0])),
        srv_type.Response(success=False, message="", trajectory=empty),
    )
    assert response.success and len(response.trajectory.points) == fixture.HORIZON
    response = decode(
        srv_type.Request(latent=np.zeros(2)),
        srv_type.Response(success=False, message="", trajectory=empty),
    )
    assert not response.success and "latent has 2 values" in response.message

    latent_cls = TS.types["genrl_interfaces/msg/LatentAction"]
    from latent_policy_node.latent_conversions import LatentAction, latent_action_to_msg

    action = LatentAction(mean=np.zeros(3), std=np.ones(3), sample=np.array([0.1, 0.2, 0.3]))
    node.subscriptions["latent_action"](latent_action_to_msg(action, latent_cls, MT))
    (published,) = node.publishers["decoded_trajectory"].messages
    (sent,) = node.action_client.sent
    assert (
        sent.trajectory is published
        and node.action_client.name == "/safety/follow_joint_trajectory"
    )
    assert any("SUCCESSFUL goal reached" in text for _, text in node.logger.lines)


# --------------------------------------------------------------------------- safety monitor


def test_safety_monitor_node_reviews_forwards_and_counts(ros):
    sent_to_controller = []

    def controller(goal, feedback_callback):
        sent_to_controller.append(goal)
        feedback_callback(types.SimpleNamespace(feedback="fb"))
        return True, 4, FJT.Result(error_code=0, error_string="goal reached at step 70")

    ActionClient.controller = staticmethod(controller)
    module = ros("genrl_ros.nodes.safety_monitor_node", max_total_contact_steps=2)
    node = module.SafetyMonitorNode()
    assert node.action_server.name == "/safety/follow_joint_trajectory"
    assert node.action_client.name == "/arm_controller/follow_joint_trajectory"
    from sim_bridge.tasks import make_task

    spec = make_task("hockey").trajectory_spec
    goal = goal_for(smooth(spec))
    assert node.action_server.goal_callback(goal) == GoalResponse.ACCEPT
    handle = GoalHandle(goal)
    result = node.action_server.execute(handle)
    assert handle.state == "succeeded" and result.error_code == 0
    assert sent_to_controller == [goal] and handle.feedback == ["fb"]

    # contacts from the simulator's outcomes; above the total limit goals are refused
    from sim_bridge.ros_outcome_conversions import EpisodeReport, episode_outcome_to_msg

    report = EpisodeReport(
        0,
        "hockey",
        np.zeros(2),
        np.zeros(3),
        -0.1,
        0.1,
        ("blade_table", "stick_puck"),
        (3, 9),
        ("blade_table",),
    )
    outcome_cls = TS.types["genrl_interfaces/msg/EpisodeOutcome"]
    node.subscriptions["episode_outcome"](episode_outcome_to_msg(report, 0, outcome_cls, MT))
    status = node.publishers["safety/status"].messages[-1]
    assert status.total_contact_steps == 3 and not status.accepting_goals
    assert node.action_server.goal_callback(goal) == GoalResponse.REJECT
    srv_type, reset_counts = node.services["~/reset_counts"]
    assert reset_counts(srv_type.Request(), srv_type.Response()).success
    assert node.action_server.goal_callback(goal) == GoalResponse.ACCEPT
    fast = smooth(spec, amplitude=0.0)
    fast[5, 0] += 0.5
    assert node.action_server.goal_callback(goal_for(fast)) == GoalResponse.REJECT
    status = node.publishers["safety/status"].messages[-1]
    assert "above the limit 2.175 rad/s" in status.last_rejection_reason
    assert json.dumps(status.trajectories_rejected) == "2"


def test_safety_monitor_node_cancels_on_contact_force(ros):
    """Hardware mode: contacts from a wrench topic; crossing the per-episode limit cancels
    the controller's goal and aborts the client's with PATH_TOLERANCE_VIOLATED."""
    node_box = {}

    def controller(goal, feedback_callback):
        node = node_box["node"]
        wrench_cls = TS.types["geometry_msgs/msg/WrenchStamped"]
        wrench = wrench_cls(
            header=MT.Header(stamp=MT.Time(sec=0, nanosec=0), frame_id="base"),
            wrench=TS.types["geometry_msgs/msg/Wrench"](
                force=TS.types["geometry_msgs/msg/Vector3"](x=40.0, y=0.0, z=0.0),
                torque=TS.types["geometry_msgs/msg/Vector3"](x=0.0, y=0.0, z=0.0),
            ),
        )
        node.subscriptions["contact_wrench"](wrench)  # one contact step > limit 0
        return True, None, FJT.Result(error_code=0, error_string="canceled: holding")

    ActionClient.controller = staticmethod(controller)
    module = ros("genrl_ros.nodes.safety_monitor_node", contact_source="force")
    node = node_box["node"] = module.SafetyMonitorNode()
    assert set(node.subscriptions) == {"contact_wrench"}
    from sim_bridge.tasks import make_task

    goal = goal_for(smooth(make_task("hockey").trajectory_spec))
    handle = GoalHandle(goal)
    result = node.action_server.execute(handle)
    assert node.action_client.canceled == 1
    assert handle.state == "aborted"
    assert result.error_code == FJT.Result.PATH_TOLERANCE_VIOLATED
    assert result.error_string.startswith("safety monitor: 1 contact steps in this episode")
    status = node.publishers["safety/status"].messages[-1]
    assert status.goals_canceled == 1 and status.episodes_over_limit == 1
    assert not status.episode_active and status.total_contact_steps == 1


# --------------------------------------------------------------------------- record_demos


def numpy_fields(msg):
    """rclpy-style containers (array.array) -> numpy, so rosbags can serialize the message."""
    import array

    if isinstance(msg, array.array):
        return np.frombuffer(
            msg.tobytes(), dtype={"d": np.float64, "I": np.uint32, "B": np.uint8}[msg.typecode]
        ).copy()
    if isinstance(msg, list):
        return [numpy_fields(item) for item in msg]
    if dataclasses.is_dataclass(msg):
        return dataclasses.replace(
            msg, **{f.name: numpy_fields(getattr(msg, f.name)) for f in dataclasses.fields(msg)}
        )
    return msg


def hockey_dataset(n=3):
    from sim_bridge.executor import BatchExecutor
    from sim_bridge.tasks import make_task

    from genrl_ros.data.dataset import TrajectoryDataset

    task = make_task("hockey")
    trajectories = np.stack([smooth(task.trajectory_spec, a) for a in (0.1, 0.2, 0.3)[:n]])
    trajectories = trajectories.astype(np.float32).astype(np.float64)
    goals = np.array([[0.9, 0.1], [1.0, -0.2], [0.8, 0.3]][:n], np.float32).astype(np.float64)
    with BatchExecutor(task) as executor:
        out = executor.execute(trajectories, goals)
    return TrajectoryDataset(
        task="hockey",
        horizon=task.horizon,
        control_dt_s=task.control_dt_s,
        joint_names=JOINT_NAMES,
        trajectories=trajectories,
        goals_xy=goals,
        final_object_pos=out.final_object_pos,
        rewards=out.reward,
        distance_m=out.distance_m,
        contact_steps=out.contact_steps,
        contact_classes=out.contact_classes,
        unsafe_classes=out.unsafe_classes,
        joint_limit_violation_steps=out.joint_limit_violation_steps,
        is_expert=np.arange(n) % 2 == 0,
        seed=0,
    )


def test_record_demos_pipeline_in_process(ros, tmp_path):
    """demo_player -> sim_bridge (reset service, FollowJointTrajectory, outcome) -> player's
    topics, written to a bag the way `ros2 bag record` would, read back by import_bag."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    from genrl_ros.data.rosbag_io import TOPIC_TYPES, import_bag

    dataset = hockey_dataset()
    dataset.save(tmp_path / "demos")
    sim = ros("sim_bridge.nodes.sim_bridge_node", real_time_factor=0.0).SimBridgeNode()
    player = ros(
        "genrl_ros.nodes.demo_player_node", dataset=str(tmp_path / "demos")
    ).DemoPlayerNode()

    srv_type, reset = sim.services["~/reset_scene"]
    player.clients["/sim_bridge/reset_scene"].handler = lambda request: reset(
        request, srv_type.Response(success=False, message="", goal=MT.Point(x=0.0, y=0.0, z=0.0))
    )

    def controller(goal, feedback_callback):
        handle = GoalHandle(goal)
        assert sim.action_server.goal_callback(goal) == GoalResponse.ACCEPT
        result = sim.action_server.execute(handle)
        player.subscriptions["episode_outcome"](sim.publishers["episode_outcome"].messages[-1])
        return True, {"succeeded": 4, "canceled": 5}.get(handle.state, 6), result

    ActionClient.controller = staticmethod(controller)
    player._play()
    assert any("done:" in text for _, text in player.logger.lines), player.logger.lines
    assert player._playback.summary()["max_reward_difference"] < 1e-6  # float32 storage

    names = {"goal": "/goal", "joint_states": "/joint_states"}
    bag = tmp_path / "bag"
    with Writer(bag, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conns = {t: writer.add_connection(t, m, typestore=TS) for t, m in TOPIC_TYPES.items()}
        for i, (topic, msg) in enumerate(PUBLISHED):
            topic = names.get(topic, topic)
            if topic in conns:
                raw = TS.serialize_cdr(numpy_fields(msg), TOPIC_TYPES[topic])
                writer.write(conns[topic], 1_000_000_000 + i, raw)
    imported = import_bag(bag)
    np.testing.assert_array_equal(imported.trajectories, dataset.trajectories)
    np.testing.assert_array_equal(imported.goals_xy, dataset.goals_xy)
    np.testing.assert_array_equal(imported.rewards, dataset.rewards)
    np.testing.assert_array_equal(imported.contact_steps, dataset.contact_steps)
    np.testing.assert_array_equal(imported.is_expert, dataset.is_expert)


# --------------------------------------------------------------------------- trainer


def hockey_shots():
    from sim_bridge.experts.hockey import HockeyExpert, HockeyShot

    expert = HockeyExpert()
    grid = [
        HockeyShot(float(d), float(v))
        for d in np.linspace(-0.6, 0.6, 5)
        for v in np.linspace(0.4, 1.3, 5)
    ]
    _, trajectories = expert.trajectories(grid)
    expert.executor.close()
    return trajectories


@pytest.mark.filterwarnings("ignore:invalid value encountered in subtract")  # all refused
@pytest.mark.parametrize("refuse", [False, True], ids=["executed", "refused_by_monitor"])
def test_trainer_node_trains_through_the_graph(ros, tmp_path, refuse):
    """trainer -> sim_bridge reset service, trajectory generator DecodeLatent, safety monitor
    FollowJointTrajectory (forwarding to sim_bridge), episode outcomes -> one EM iteration,
    weights pushed to the latent policy node through its set_parameters service, the
    evaluation through the graph, the run directory of genrl train-policy."""
    spec = importlib.util.spec_from_file_location(
        "em_fixture", ROOT / "src/genrl_ros/test/test_em.py"
    )
    em = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(em)
    checkpoint = em._tiny_vae_checkpoint(tmp_path / "vae" / "best.pt", hockey_shots())

    sim = ros("sim_bridge.nodes.sim_bridge_node", real_time_factor=0.0).SimBridgeNode()
    generator = ros(
        "genrl_ros.nodes.trajectory_generator_node", model_path=str(checkpoint), execute=False
    ).TrajectoryGeneratorNode()
    monitor = ros(
        "genrl_ros.nodes.safety_monitor_node", **({"velocity_scale": 1e-3} if refuse else {})
    ).SafetyMonitorNode()
    policy = ros(
        "latent_policy_node.nodes.latent_policy_node", expect_task="hockey"
    ).LatentPolicyNode()
    out = tmp_path / "run"
    trainer = ros(
        "genrl_ros.nodes.trainer_node",
        model_path=str(checkpoint),
        out=str(out),
        iterations=1,
        episodes_per_iteration=3,
        estep_epochs=2,
        value_epochs=2,
        eval_goals=2,
    ).TrainerNode()
    assert set(trainer.subscriptions) == {"episode_outcome", "safety/status"}
    assert trainer.action_client.name == "/safety/follow_joint_trajectory"

    empty = MT.JointTrajectory(
        header=MT.Header(stamp=MT.Time(sec=0, nanosec=0), frame_id=""), joint_names=[], points=[]
    )
    reset_type, reset = sim.services["~/reset_scene"]
    trainer.clients["/sim_bridge/reset_scene"].handler = lambda request: reset(
        request, reset_type.Response(success=False, message="", goal=MT.Point(x=0.0, y=0.0, z=0.0))
    )
    decode_type, decode = generator.services["generate_trajectory"]
    trainer.clients["/generate_trajectory"].handler = lambda request: decode(
        request, decode_type.Response(success=False, message="", trajectory=empty)
    )
    pushed = []

    def set_parameters(request):
        values = {p.name: p.value.string_value for p in request.parameters}
        pushed.append(values)
        return SetParametersResponse(results=[policy.set_parameters_from_test(values)])

    trainer.clients["/latent_policy/set_parameters"].handler = set_parameters
    status = {"succeeded": 4, "canceled": 5, "aborted": 6}

    def through(server, deliver_outcome=False):
        def controller(goal, feedback_callback):
            if server.action_server.goal_callback(goal) != GoalResponse.ACCEPT:
                return False, 6, FJT.Result(error_code=-1, error_string="rejected")
            handle = GoalHandle(goal)
            result = server.action_server.execute(handle)
            if deliver_outcome:  # sim_bridge published it (before the result)
                outcome = sim.publishers["episode_outcome"].messages[-1]
                monitor.subscriptions["episode_outcome"](outcome)
                trainer.subscriptions["episode_outcome"](outcome)
            return True, status[handle.state], result

        return controller

    ActionClient.controllers["/safety/follow_joint_trajectory"] = through(monitor)
    ActionClient.controllers["/arm_controller/follow_joint_trajectory"] = through(sim, True)

    trainer._train()  # what the start timer's worker thread runs
    lines = [text for _, text in trainer.logger.lines]
    assert any(text.startswith("training complete") for text in lines), lines
    summary = json.loads((out / "summary.json").read_text())
    assert summary["episodes"] == 3 and summary["eval_goals"] == 2
    episodes = (out / "episodes.csv").read_text().splitlines()
    assert len(episodes) == 1 + 3
    executed = [row.split(",")[6] for row in episodes[1:]]
    if refuse:  # the monitor's review refused every trajectory: rejected, invalid reward
        assert executed == ["0", "0", "0"] and summary["eval_rejected"] == 2
        assert len(sim.publishers["episode_outcome"].messages) == 0
    else:
        assert executed == ["1", "1", "1"]
        assert len(sim.publishers["episode_outcome"].messages) == 3 + 2
    for name in ("run.json", "last.pt", "curve.csv", "curve.png", "eval.json", "policy.pt",
                 "policy.onnx", "latest_policy.onnx"):
        assert (out / name).is_file(), name
    # the initial weights and those after the update went to the policy node, which loaded them
    assert pushed == [{"policy_path": str(out / "latest_policy.onnx")}] * 2
    assert policy._runner.policy_id.startswith("latest_policy.onnx:")
    trainer.destroy_node()
    for node in (sim, generator, monitor, policy):
        node.destroy_node()
