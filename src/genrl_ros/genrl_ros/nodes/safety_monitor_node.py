"""safety_monitor node: validates every trajectory before it reaches the executor, counts
collisions, publishes its status, cancels the running goal / refuses new ones.

It sits in front of the executor as a FollowJointTrajectory server (``action_name``,
``/safety/follow_joint_trajectory``): a goal that passes the review
(:class:`genrl_ros.safety.gate.GoalGate`: admission, goal checks, limits, out-of-distribution
guard) is forwarded unchanged to the executor's server (``controller_action``: sim_bridge, or
the robot's joint_trajectory_controller), its feedback relayed back, and its result passed on
(:func:`genrl_ros.safety.gate.relay_result`). A goal that fails the review is rejected (like a
controller rejects an invalid goal; the reason is logged and published in the status).

Contacts come from ``episode_outcome`` (genrl_interfaces/EpisodeOutcome of the simulator) or,
with ``contact_source: force``, from ``contact_wrench`` (geometry_msgs/WrenchStamped of the
robot, e.g. its external wrench estimate); the decisions are
:class:`genrl_ros.safety.monitor.SafetyMonitor`'s.

Also: ``safety/status`` (genrl_interfaces/SafetyStatus, periodically and on every change) and
``~/reset_counts`` (std_srvs/Trigger: operator acknowledgment after the total limit).

Parameters: :data:`genrl_ros.node_params.SAFETY_MONITOR_PARAMS`.
"""

from __future__ import annotations

import math
import threading

import rclpy
from control_msgs.action import FollowJointTrajectory
from genrl_interfaces.msg import EpisodeOutcome, SafetyStatus
from geometry_msgs.msg import WrenchStamped
from rclpy.action import ActionClient, ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from sim_bridge.nodes.ros_params import declare_params, on_set_parameters
from sim_bridge.ros_conversions import MessageConversionError, MessageTypes, stamp_to_ns
from sim_bridge.ros_outcome_conversions import episode_outcome_from_msg
from sim_bridge.tasks import make_task
from std_srvs.srv import Trigger

from genrl_ros.node_params import SAFETY_MONITOR_NODE, SAFETY_MONITOR_PARAMS
from genrl_ros.safety.gate import GoalGate, relay_result
from genrl_ros.safety.messages import status_to_msg
from genrl_ros.safety.monitor import MonitorConfig, SafetyMonitor
from genrl_ros.safety.validator import (
    DemonstrationDistanceGuard,
    TrajectoryValidator,
    ValidatorConfig,
)

#: how often the forwarding loop looks at cancel requests and the monitor (s)
POLL_S = 0.01


def _validator(p: dict, spec) -> TrajectoryValidator:
    guard = None
    if p["ood.enabled"]:
        guard = DemonstrationDistanceGuard.from_dataset(
            p["ood.dataset"],
            k=p["ood.k"],
            quantile=p["ood.quantile"],
            threshold_scale=p["ood.threshold_scale"],
        )
    config = ValidatorConfig(
        position_margin_rad=p["position_margin_rad"],
        velocity_scale=p["velocity_scale"],
        lower_rad=tuple(p["joint_lower_rad"]),
        upper_rad=tuple(p["joint_upper_rad"]),
        velocity_limit_rad_s=tuple(p["joint_velocity_limit_rad_s"]),
    )
    return TrajectoryValidator(spec, config, guard)


def _monitor_config(p: dict, control_dt_s: float) -> MonitorConfig:
    return MonitorConfig(
        max_contact_steps_per_episode=p["max_contact_steps_per_episode"],
        max_total_contact_steps=p["max_total_contact_steps"],
        counted_classes=tuple(p["counted_classes"]),
        force_threshold_n=p["force_threshold_n"],
        control_dt_s=control_dt_s,
    )


class SafetyMonitorNode(Node):
    """Validating FollowJointTrajectory proxy with collision accounting."""

    def __init__(self) -> None:
        super().__init__(SAFETY_MONITOR_NODE)
        self._params = declare_params(self, SAFETY_MONITOR_PARAMS)
        p = self._params
        self._msgs = MessageTypes.from_rclpy()
        task = make_task(p["task"])
        self._control_dt_s = float(task.control_dt_s)
        self._lock = threading.RLock()
        self._monitor = SafetyMonitor(_monitor_config(p, self._control_dt_s))
        self._gate = GoalGate(_validator(p, task.trajectory_spec), self._monitor)
        self.add_on_set_parameters_callback(
            on_set_parameters(SAFETY_MONITOR_PARAMS, lambda: dict(self._params), self._apply_params)
        )

        group = ReentrantCallbackGroup()
        self._status_pub = self.create_publisher(SafetyStatus, "safety/status", 10)
        self._server = ActionServer(
            self,
            FollowJointTrajectory,
            p["action_name"],
            execute_callback=self._execute,
            goal_callback=self._on_goal,
            cancel_callback=self._on_cancel,
            callback_group=group,
        )
        self._client = ActionClient(
            self, FollowJointTrajectory, p["controller_action"], callback_group=group
        )
        if p["contact_source"] == "outcome":
            self.create_subscription(
                EpisodeOutcome, "episode_outcome", self._on_outcome, 10, callback_group=group
            )
        else:
            self.create_subscription(
                WrenchStamped, "contact_wrench", self._on_wrench, 100, callback_group=group
            )
        self.create_service(Trigger, "~/reset_counts", self._on_reset_counts)
        self.create_timer(
            1.0 / p["status_rate_hz"],
            self._publish_status,
            callback_group=MutuallyExclusiveCallbackGroup(),
        )
        threshold = self._gate.validator.ood_threshold
        self.get_logger().info(
            f"forwarding '{p['action_name']}' -> '{p['controller_action']}'; OOD guard "
            + (f"threshold {threshold:.4f} rad" if not math.isnan(threshold) else "off")
        )

    # ------------------------------------------------------------------ parameters
    def _apply_params(self, values: dict, changes: dict) -> str | None:
        with self._lock:
            try:
                validator = _validator(values, self._gate.validator.spec)
                config = _monitor_config(values, self._control_dt_s)
            except (ValueError, OSError) as err:
                return str(err)
            self._monitor.config = config
            self._gate = GoalGate(validator, self._monitor)
            self._params = values
        self._publish_status()
        return None

    # ------------------------------------------------------------------ status
    def _publish_status(self) -> None:
        with self._lock:
            status = self._monitor.status()
        self._status_pub.publish(
            status_to_msg(status, self.get_clock().now().nanoseconds, SafetyStatus, self._msgs)
        )

    def _on_reset_counts(self, request, response):
        with self._lock:
            self._monitor.reset_counts()
        self._publish_status()
        response.success, response.message = True, "contact counts reset"
        return response

    # ------------------------------------------------------------------ contacts
    def _on_outcome(self, msg: EpisodeOutcome) -> None:
        try:
            _, report = episode_outcome_from_msg(msg)
        except MessageConversionError as err:
            self.get_logger().warning(f"ignoring episode outcome: {err}")
            return
        with self._lock:
            self._monitor.end_episode(report.contacts)
            reason = self._monitor.reason
        if reason:
            self.get_logger().warning(reason)
        self._publish_status()

    def _on_wrench(self, msg: WrenchStamped) -> None:
        force = msg.wrench.force
        magnitude = math.sqrt(force.x**2 + force.y**2 + force.z**2)
        with self._lock:
            before = self._monitor.episode_contact_steps
            self._monitor.observe_force(stamp_to_ns(msg.header.stamp), magnitude)
            changed = self._monitor.episode_contact_steps != before
        if changed:
            self._publish_status()

    # ------------------------------------------------------------------ action proxy
    def _on_goal(self, goal_request) -> GoalResponse:
        with self._lock:
            review = self._gate.review(goal_request, self.get_clock().now().nanoseconds)
        self._publish_status()
        if not review.accepted:
            self.get_logger().warning(f"goal refused ({review.code.name}): {review.reason}")
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    def _on_cancel(self, goal_handle) -> CancelResponse:
        return CancelResponse.ACCEPT

    def _wait(self, future, goal_handle=None, downstream=None) -> bool:
        """Wait for ``future``; meanwhile pass on cancel requests and safety stops to the
        downstream goal. Returns True when the monitor stopped the goal."""
        done = threading.Event()
        future.add_done_callback(lambda _: done.set())
        canceled = stopped = False
        while not done.wait(POLL_S):
            if downstream is None or canceled:
                continue
            with self._lock:
                stop = self._monitor.should_cancel
            if stop:
                stopped = True
            if stop or goal_handle.is_cancel_requested:
                downstream.cancel_goal_async()
                canceled = True
                if stop:
                    with self._lock:
                        self._monitor.record_cancel()
                    self._publish_status()
        return stopped

    def _execute(self, goal_handle):
        Result = FollowJointTrajectory.Result
        p = self._params
        with self._lock:
            self._monitor.begin_episode()
        self._publish_status()
        force_source = p["contact_source"] == "force"
        try:
            if not self._client.wait_for_server(timeout_sec=p["server_timeout_s"]):
                goal_handle.abort()
                return Result(
                    error_code=Result.INVALID_GOAL,
                    error_string=f"safety monitor: no controller on '{p['controller_action']}'",
                )
            sent = self._client.send_goal_async(
                goal_handle.request,
                feedback_callback=lambda msg: goal_handle.publish_feedback(msg.feedback),
            )
            self._wait(sent)
            downstream = sent.result()
            if not downstream.accepted:
                goal_handle.abort()
                return Result(
                    error_code=Result.INVALID_GOAL,
                    error_string="the controller rejected the goal (see its log)",
                )
            result_future = downstream.get_result_async()
            stopped = self._wait(result_future, goal_handle, downstream)
            response = result_future.result()
            with self._lock:
                reason = self._monitor.reason if stopped else None
            relay = relay_result(
                response.status,
                response.result.error_code,
                response.result.error_string,
                reason,
                cancel_requested=goal_handle.is_cancel_requested,
            )
        finally:
            if force_source:
                with self._lock:
                    self._monitor.end_episode(None)
                self._publish_status()
        getattr(goal_handle, relay.terminal)()
        return Result(error_code=relay.code, error_string=relay.error_string)

    def destroy_node(self) -> None:
        self._server.destroy()
        self._client.destroy()
        super().destroy_node()


def main(args=None) -> None:
    rclpy.init(args=args)
    node = None
    try:
        node = SafetyMonitorNode()
        executor = MultiThreadedExecutor(num_threads=4)
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
