"""trajectory_generator node: decodes latent actions into joint trajectories.

Thin wrapper around :class:`genrl_ros.trajectory_generator.TrajectoryGenerator`.

Interfaces (relative names, remap them in a launch file):

- service ``generate_trajectory`` (genrl_interfaces/srv/DecodeLatent): latent ->
  trajectory_msgs/JointTrajectory;
- subscribes ``latent_action`` (genrl_interfaces/LatentAction): decodes its ``sample``,
  publishes the trajectory on ``decoded_trajectory`` (trajectory_msgs/JointTrajectory, not a
  controller's command topic) and, with ``execute`` true, sends it as a
  control_msgs/FollowJointTrajectory goal to ``action_name`` (the safety monitor by default);
- parameter ``model_path``: setting it loads the decoder (a file that does not load is
  refused and the previous decoder stays in use).

Parameters: :data:`genrl_ros.node_params.GENERATOR_PARAMS`.
"""

from __future__ import annotations

import threading

import rclpy
from control_msgs.action import FollowJointTrajectory
from genrl_interfaces.msg import LatentAction
from genrl_interfaces.srv import DecodeLatent
from latent_policy_node.latent_conversions import latent_action_from_msg
from rclpy.action import ActionClient
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from sim_bridge.nodes.ros_params import declare_params, on_set_parameters
from sim_bridge.ros_conversions import MessageConversionError
from sim_bridge.trajectory_action import (
    FollowJointTrajectoryTypes,
    goal_to_msg,
    result_code_name,
)
from trajectory_msgs.msg import JointTrajectory

from genrl_ros.node_params import GENERATOR_NODE, GENERATOR_PARAMS
from genrl_ros.trajectory_generator import DecoderLoadError, TrajectoryGenerator


class TrajectoryGeneratorNode(Node):
    """Latent in, JointTrajectory (and FollowJointTrajectory goal) out."""

    def __init__(self) -> None:
        super().__init__(GENERATOR_NODE)
        self._params = declare_params(self, GENERATOR_PARAMS)
        p = self._params
        self._fjt = FollowJointTrajectoryTypes.from_rclpy()
        self._msgs = self._fjt.msg
        self._lock = threading.Lock()
        self._generator = TrajectoryGenerator(
            expect_task=p["expect_task"] or None,
            expect_latent_dim=p["expect_latent_dim"] or None,
            expect_horizon=p["expect_horizon"] or None,
        )
        if p["model_path"]:
            try:
                self.get_logger().info(f"decoder {self._generator.load(p['model_path'])}")
            except DecoderLoadError as err:
                self.get_logger().error(str(err))
        self.add_on_set_parameters_callback(
            on_set_parameters(GENERATOR_PARAMS, lambda: dict(self._params), self._apply_params)
        )
        group = ReentrantCallbackGroup()
        self._publisher = self.create_publisher(JointTrajectory, "decoded_trajectory", 10)
        self.create_subscription(
            LatentAction, "latent_action", self._on_latent, 10, callback_group=group
        )
        self.create_service(
            DecodeLatent, "generate_trajectory", self._on_decode, callback_group=group
        )
        self._client = ActionClient(
            self, FollowJointTrajectory, p["action_name"], callback_group=group
        )

    # ------------------------------------------------------------------ parameters
    def _apply_params(self, values: dict, changes: dict) -> str | None:
        with self._lock:
            generator = self._generator
            generator.expect_task = values["expect_task"] or None
            generator.expect_latent_dim = values["expect_latent_dim"] or None
            generator.expect_horizon = values["expect_horizon"] or None
            if "model_path" in changes and values["model_path"]:
                try:
                    self.get_logger().info(f"decoder {generator.load(values['model_path'])}")
                except DecoderLoadError as err:
                    return str(err)
            self._params = values
        return None

    # ------------------------------------------------------------------ decoding
    def _decode(self, latent):
        with self._lock:
            decoded = self._generator.decode(latent)
        return decoded.to_msg(self._msgs)

    def _on_decode(self, request, response):
        try:
            response.trajectory = self._decode(request.latent)
        except (DecoderLoadError, ValueError, MessageConversionError) as err:
            response.success, response.message = False, str(err)
            return response
        response.success, response.message = True, "decoded"
        return response

    def _on_latent(self, msg: LatentAction) -> None:
        try:
            action = latent_action_from_msg(msg)
            trajectory = self._decode(action.sample)
        except (DecoderLoadError, ValueError, MessageConversionError) as err:
            self.get_logger().warning(f"latent action not decoded: {err}")
            return
        self._publisher.publish(trajectory)
        if self._params["execute"]:
            self._send(trajectory)

    # ------------------------------------------------------------------ execution
    def _send(self, trajectory) -> None:
        if not self._client.wait_for_server(timeout_sec=self._params["server_timeout_s"]):
            self.get_logger().error(
                f"no FollowJointTrajectory server on '{self._params['action_name']}'"
            )
            return
        future = self._client.send_goal_async(goal_to_msg(trajectory, self._fjt))
        future.add_done_callback(self._on_goal_response)

    def _on_goal_response(self, future) -> None:
        handle = future.result()
        if not handle.accepted:
            self.get_logger().warning("trajectory rejected by the action server (see its log)")
            return
        handle.get_result_async().add_done_callback(self._on_result)

    def _on_result(self, future) -> None:
        result = future.result().result
        log = self.get_logger().info if result.error_code == 0 else self.get_logger().warning
        log(f"trajectory finished: {result_code_name(result.error_code)} {result.error_string}")

    def destroy_node(self) -> None:
        self._client.destroy()
        super().destroy_node()


def main(args=None) -> None:
    rclpy.init(args=args)
    node = None
    try:
        node = TrajectoryGeneratorNode()
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
