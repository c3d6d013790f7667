"""latent_policy node: chooses latent actions for goals (or camera images) with an ONNX policy.

Thin wrapper around :class:`latent_policy_node.policy_runner.PolicyRunner` (loading, reloading,
acting) and :class:`~latent_policy_node.policy_runner.ObservationGate` (when to act).

Interfaces (relative names, remap them in a launch file):

- subscribes ``goal`` (geometry_msgs/PointStamped) and, with ``observation: image``,
  ``camera/image_raw`` (sensor_msgs/Image, rgb8 or bgr8);
- publishes ``latent_action`` (genrl_interfaces/LatentAction), stamped with the observation's
  stamp;
- service ``~/reload_policy`` (std_srvs/Trigger): read ``policy_path`` again (new weights
  written to the same file); setting the parameter ``policy_path`` loads another file. A file
  that does not load is refused and the previous policy stays in use.

Parameters: :data:`latent_policy_node.policy_runner.POLICY_NODE_PARAMS`.
"""

from __future__ import annotations

import threading

import rclpy
from genrl_interfaces.msg import LatentAction as LatentActionMsg
from geometry_msgs.msg import PointStamped
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import Image
from sim_bridge.nodes.ros_params import declare_params, on_set_parameters
from sim_bridge.ros_conversions import (
    MessageConversionError,
    MessageTypes,
    goal_from_msg,
    stamp_to_ns,
)
from sim_bridge.ros_image_conversions import image_from_msg
from std_srvs.srv import Trigger

from latent_policy_node.latent_conversions import latent_action_to_msg
from latent_policy_node.policy_runner import (
    IMAGE,
    POLICY_NODE,
    POLICY_NODE_PARAMS,
    ObservationGate,
    Observation,
    PolicyLoadError,
    PolicyRunner,
)


class LatentPolicyNode(Node):
    """Goal / image in, latent action out."""

    def __init__(self) -> None:
        super().__init__(POLICY_NODE)
        self._params = declare_params(self, POLICY_NODE_PARAMS)
        p = self._params
        self._msgs = MessageTypes.from_rclpy()
        self._lock = threading.Lock()
        self._runner = PolicyRunner(
            observation=p["observation"],
            deterministic=p["deterministic"],
            seed=p["seed"],
            expect_task=p["expect_task"] or None,
            expect_latent_dim=p["expect_latent_dim"] or None,
        )
        self._gate = ObservationGate(p["observation"], p["image_trigger"])
        if p["policy_path"]:
            try:
                self.get_logger().info(f"policy {self._runner.load(p['policy_path'])} loaded")
            except PolicyLoadError as err:
                self.get_logger().error(str(err))
        self.add_on_set_parameters_callback(
            on_set_parameters(POLICY_NODE_PARAMS, lambda: dict(self._params), self._apply_params)
        )
        self._publisher = self.create_publisher(LatentActionMsg, "latent_action", 10)
        self.create_subscription(PointStamped, "goal", self._on_goal, 10)
        if p["observation"] == IMAGE:
            self.create_subscription(Image, "camera/image_raw", self._on_image, 2)
        self.create_service(Trigger, "~/reload_policy", self._on_reload)

    # ------------------------------------------------------------------ parameters
    def _apply_params(self, values: dict, changes: dict) -> str | None:
        with self._lock:
            runner = self._runner
            runner.deterministic = values["deterministic"]
            runner.expect_task = values["expect_task"] or None
            runner.expect_latent_dim = values["expect_latent_dim"] or None
            self._gate = ObservationGate(values["observation"], values["image_trigger"])
            if "policy_path" in changes and values["policy_path"]:
                try:
                    policy_id = runner.load(values["policy_path"])
                except PolicyLoadError as err:
                    return str(err)
                self.get_logger().info(f"policy {policy_id} loaded")
            self._params = values
        return None

    def _on_reload(self, request, response):
        with self._lock:
            try:
                response.message = f"policy {self._runner.reload()} loaded"
                response.success = True
            except PolicyLoadError as err:
                response.success, response.message = False, str(err)
        return response

    # ------------------------------------------------------------------ observations
    def _on_goal(self, msg: PointStamped) -> None:
        try:
            goal = goal_from_msg(msg)
        except MessageConversionError as err:
            self.get_logger().warning(f"ignoring goal: {err}")
            return
        with self._lock:
            observation = self._gate.on_goal(
                stamp_to_ns(msg.header.stamp), goal[:2], msg.header.frame_id
            )
        self._act(observation)

    def _on_image(self, msg: Image) -> None:
        with self._lock:
            waiting = self._gate.waiting_for_image or self._gate.image_trigger == "every_image"
        if not waiting:
            return
        try:
            image = image_from_msg(msg)
        except MessageConversionError as err:
            self.get_logger().warning(f"ignoring image: {err}")
            return
        with self._lock:
            observation = self._gate.on_image(
                stamp_to_ns(msg.header.stamp), image, msg.header.frame_id
            )
        self._act(observation)

    def _act(self, observation: Observation | None) -> None:
        if observation is None:
            return
        with self._lock:
            try:
                action = self._runner.act(observation)
            except (PolicyLoadError, ValueError) as err:
                self.get_logger().warning(f"no latent action: {err}")
                return
        self._publisher.publish(latent_action_to_msg(action, LatentActionMsg, self._msgs))


def main(args=None) -> None:
    rclpy.init(args=args)
    node = None
    try:
        node = LatentPolicyNode()
        executor = MultiThreadedExecutor(num_threads=2)
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
