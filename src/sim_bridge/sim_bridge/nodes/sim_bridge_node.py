"""sim_bridge node: the simulated arm and task behind a FollowJointTrajectory action server.

Thin wrapper: the goal checks, feedback, tolerances and cancel semantics are
:mod:`sim_bridge.trajectory_action`; the scene, episodes, clock and pacing are
:mod:`sim_bridge.sim_session`; message conversions are :mod:`sim_bridge.ros_conversions`,
:mod:`sim_bridge.ros_image_conversions` and :mod:`sim_bridge.ros_outcome_conversions`.

Interfaces (names relative to the node's namespace unless absolute):

- action ``arm_controller/follow_joint_trajectory`` (control_msgs/FollowJointTrajectory,
  parameter ``action_name``): one goal at a time; a new goal preempts the running one;
- ``joint_states`` (sensor_msgs/JointState) at the control rate, also when idle;
- ``/clock`` (rosgraph_msgs/Clock) when ``use_sim_time`` is true: simulated time, one control
  period per played (or idle) control step;
- ``goal`` (geometry_msgs/PointStamped, transient local) after every reset; with
  ``auto_reset`` the node resets with a sampled goal at start, after every episode, and when
  no goal arrived within ``auto_reset_timeout_s`` of a reset (so that a lost message or a
  goal refused upstream does not stall a training loop);
- ``camera/image_raw`` (sensor_msgs/Image, rgb8) and ``camera/camera_info`` at
  ``camera.rate_hz`` when ``camera.enabled``: the scene of the current goal at the start of an
  episode (the image camera policies see), rendered once per reset;
- ``episode_outcome`` (genrl_interfaces/EpisodeOutcome) after every goal, executed or
  rejected; it is published before the goal's result is sent;
- service ``~/reset_scene`` (genrl_interfaces/srv/ResetScene).

Parameters: :data:`sim_bridge.node_params.SIM_BRIDGE_PARAMS`.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import rclpy
from control_msgs.action import FollowJointTrajectory
from genrl_interfaces.msg import EpisodeOutcome
from genrl_interfaces.srv import ResetScene
from geometry_msgs.msg import PointStamped
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock as ClockMsg
from sensor_msgs.msg import CameraInfo, Image, JointState

from sim_bridge.node_params import SIM_BRIDGE_NODE, SIM_BRIDGE_PARAMS
from sim_bridge.nodes.ros_params import declare_params, on_set_parameters
from sim_bridge.ros_conversions import goal_to_msg, joint_state_to_msg, ns_to_stamp
from sim_bridge.ros_image_conversions import ImageTypes, camera_info_to_msg, image_to_msg
from sim_bridge.ros_outcome_conversions import episode_outcome_to_msg
from sim_bridge.sim_session import SimClock, SimSession, StepPacer
from sim_bridge.trajectory_action import (
    ControllerConstraints,
    FollowJointTrajectoryTypes,
    GoalExecution,
    GoalRejection,
    GoalState,
    check_goal,
    check_workspace,
    feedback_to_msg,
    result_to_msg,
)

#: longest wait for a goal whose header stamp lies in the future (s)
MAX_START_DELAY_S = 60.0


class SimBridgeNode(Node):
    """The simulated arm: FollowJointTrajectory server, joint states, clock, camera, outcomes."""

    def __init__(self) -> None:
        super().__init__(SIM_BRIDGE_NODE)
        self._params = declare_params(self, SIM_BRIDGE_PARAMS)
        self.add_on_set_parameters_callback(
            on_set_parameters(SIM_BRIDGE_PARAMS, lambda: dict(self._params), self._apply_params)
        )
        p = self._params
        self._session = SimSession(p["task"], seed=p["seed"])
        self._fjt = FollowJointTrajectoryTypes.from_rclpy()
        self._msgs = self._fjt.msg
        self._use_sim_time = bool(self.get_parameter("use_sim_time").value)
        self._sim_clock = SimClock()
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._state_lock = threading.Lock()  # scene, goal bookkeeping
        self._episode_lock = threading.Lock()  # one episode at a time
        self._executing = False
        self._preempt_requested = False
        self._active_goal = None

        latched = QoSProfile(
            depth=1,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        self._joint_pub = self.create_publisher(JointState, "joint_states", 10)
        self._goal_pub = self.create_publisher(PointStamped, "goal", latched)
        self._outcome_pub = self.create_publisher(EpisodeOutcome, "episode_outcome", 10)
        self._clock_pub = (
            self.create_publisher(ClockMsg, "/clock", 10) if self._use_sim_time else None
        )

        self._camera = None
        self._camera_lock = threading.Lock()
        self._image = None
        if p["camera.enabled"]:
            from sim_bridge.camera import SceneCamera  # noqa: PLC0415 (needs OpenGL)

            self._camera = SceneCamera(
                self._session.task, width=p["camera.width"], height=p["camera.height"]
            )
            self._image_types = ImageTypes.from_rclpy()
            self._image_pub = self.create_publisher(Image, "camera/image_raw", 2)
            self._info_pub = self.create_publisher(CameraInfo, "camera/camera_info", 2)
            self._fovy_deg = float(self._camera.model.cam_fovy[self._camera.camera_id])
            self._image = self._camera.render(self._session.goal_xy)
            self.create_timer(
                1.0 / p["camera.rate_hz"],
                self._publish_camera,
                callback_group=MutuallyExclusiveCallbackGroup(),
                clock=self._steady,
            )

        actions = ReentrantCallbackGroup()
        self._reset_service = self.create_service(
            ResetScene, "~/reset_scene", self._on_reset, callback_group=actions
        )
        self._action_server = ActionServer(
            self,
            FollowJointTrajectory,
            p["action_name"],
            execute_callback=self._execute,
            goal_callback=self._on_goal,
            handle_accepted_callback=self._on_accepted,
            cancel_callback=self._on_cancel,
            callback_group=actions,
        )
        # Idle ticks on the steady clock: with use_sim_time this node drives /clock itself.
        self._idle_timer = self.create_timer(
            self._session.control_dt_s,
            self._on_idle_tick,
            callback_group=MutuallyExclusiveCallbackGroup(),
            clock=self._steady,
        )
        self._last_reset_s: float | None = None  # monotonic time of the last reset
        self.get_logger().info(
            f"task {p['task']}: {self._session.spec.horizon} commands every "
            f"{self._session.control_dt_s} s on '{p['action_name']}', real-time factor "
            f"{p['real_time_factor']}"
        )

    # ------------------------------------------------------------------ parameters
    def _apply_params(self, values: dict, changes: dict) -> str | None:
        self._params = values
        return None

    def _constraints(self) -> ControllerConstraints:
        p = self._params
        return ControllerConstraints(
            path_position_rad=p["constraints.path_position_rad"],
            goal_position_rad=p["constraints.goal_position_rad"],
            stopped_velocity_rad_s=p["constraints.stopped_velocity_rad_s"],
            goal_time_s=p["constraints.goal_time_s"],
        )

    # ------------------------------------------------------------------ time
    def _now_ns(self) -> int:
        if self._use_sim_time:
            return self._sim_clock.now_ns
        return self.get_clock().now().nanoseconds

    def _tick(self, positions: np.ndarray, velocities: np.ndarray) -> int:
        """One control step of simulated time: advance the clock, publish the state."""
        if self._use_sim_time:
            self._sim_clock.advance(round(self._session.control_dt_s * 1e9))
            self._clock_pub.publish(
                ClockMsg(clock=ns_to_stamp(self._sim_clock.now_ns, self._msgs.Time))
            )
        stamp = self._now_ns()
        self._joint_pub.publish(
            joint_state_to_msg(positions, velocities, self._session.joint_names, stamp, self._msgs)
        )
        return stamp

    def _on_idle_tick(self) -> None:
        with self._state_lock:
            if self._executing:
                return
            positions = self._session.joint_positions.copy()
            velocities = self._session.joint_velocities.copy()
        self._tick(positions, velocities)
        p = self._params
        if p["auto_reset"] and (
            self._last_reset_s is None
            or time.monotonic() - self._last_reset_s > p["auto_reset_timeout_s"]
        ):
            self._reset(sample=True)  # first goal, or no goal came for the last one

    # ------------------------------------------------------------------ scene
    def _reset(self, goal_xy=None, sample: bool = False) -> np.ndarray:
        with self._state_lock:
            goal = self._session.reset(goal_xy, sample=sample)
            in_region = self._session.goal_in_region(goal)
            self._last_reset_s = time.monotonic()
        if not in_region:
            self.get_logger().warning(f"goal {goal.tolist()} lies outside the task's goal region")
        if self._camera is not None:
            with self._camera_lock:
                self._image = self._camera.render(goal)
        self._goal_pub.publish(
            goal_to_msg(goal, self._now_ns(), self._msgs, frame_id=self._params["frame_id"])
        )
        if self._camera is not None:
            self._publish_camera()
        return goal

    def _on_reset(self, request, response):
        if self._executing:
            response.success = False
            response.message = "an episode is running; cancel it or wait for its result"
            return response
        try:
            goal = self._reset(
                np.array([request.goal.x, request.goal.y]), sample=bool(request.sample_goal)
            )
        except ValueError as err:
            response.success = False
            response.message = str(err)
            return response
        response.success = True
        response.message = "scene reset"
        response.goal.x, response.goal.y, response.goal.z = float(goal[0]), float(goal[1]), 0.0
        return response

    def _publish_camera(self) -> None:
        with self._camera_lock:
            image = self._image
        if image is None:
            return
        stamp = self._now_ns()
        frame = self._params["camera.frame_id"]
        self._image_pub.publish(image_to_msg(image, stamp, frame, self._image_types))
        self._info_pub.publish(
            camera_info_to_msg(
                image.shape[1], image.shape[0], self._fovy_deg, stamp, frame, self._image_types
            )
        )

    def _publish_outcome(self, report) -> None:
        self._outcome_pub.publish(
            episode_outcome_to_msg(
                report, self._now_ns(), EpisodeOutcome, self._msgs, self._params["frame_id"]
            )
        )

    # ------------------------------------------------------------------ action server
    def _check(self, goal):
        checked = check_goal(
            goal,
            self._session.spec,
            self._now_ns(),
            self._constraints(),
            self._params["velocity_margin"],
        )
        if self._params["workspace_check"]:
            checked = check_workspace(checked, self._session.task)
        return checked

    def _on_goal(self, goal_request) -> GoalResponse:
        checked = self._check(goal_request)
        if isinstance(checked, GoalRejection):
            self.get_logger().warning(f"invalid goal ({checked.code.name}): {checked.error_string}")
            if self._params["reject_invalid_goals"]:
                with self._state_lock:
                    report = self._session.reject(checked.error_string)
                self._publish_outcome(report)
                return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    def _on_accepted(self, goal_handle) -> None:
        with self._state_lock:
            if self._active_goal is not None and self._active_goal.is_active:
                self._preempt_requested = True  # the running episode aborts at its next step
        goal_handle.execute()

    def _on_cancel(self, goal_handle) -> CancelResponse:
        return CancelResponse.ACCEPT

    def _execute(self, goal_handle):
        with self._episode_lock:
            with self._state_lock:
                self._active_goal = goal_handle
                self._preempt_requested = False
            try:
                return self._run_episode(goal_handle)
            finally:
                with self._state_lock:
                    self._executing = False
                    self._active_goal = None
                if self._params["auto_reset"]:
                    self._reset(sample=True)

    def _run_episode(self, goal_handle):
        session = self._session
        checked = self._check(goal_handle.request)
        if isinstance(checked, GoalRejection):
            with self._state_lock:
                report = session.reject(checked.error_string)
            self._publish_outcome(report)
            goal_handle.abort()
            return result_to_msg(checked.code, checked.error_string, self._fjt)
        for warning in checked.warnings:
            self.get_logger().warning(warning)

        deadline = time.monotonic() + MAX_START_DELAY_S
        while checked.start_delay_ns(self._now_ns()) > 0 and time.monotonic() < deadline:
            if goal_handle.is_cancel_requested:
                goal_handle.canceled()
                return result_to_msg(0, "canceled before the start time", self._fjt)
            time.sleep(0.005)

        execution = GoalExecution(checked, session.spec, session.n_steps)
        with self._state_lock:
            self._executing = True
        run = session.simulate(execution.commands)
        revision = execution.revision
        pacer = StepPacer(self._params["real_time_factor"], session.control_dt_s)
        last_step = -1
        for step in range(session.n_steps):
            if execution.running:
                if goal_handle.is_cancel_requested:
                    execution.stop(last_step)
                elif self._preempt_requested:
                    execution.preempt(last_step)
            if execution.revision != revision:
                run = session.simulate(execution.commands)
                revision = execution.revision
            if execution.running:
                delay = pacer.delay_s(step)
                if delay > 0:
                    time.sleep(delay)
            feedback = execution.observe(
                step, run.joint_positions[step], run.joint_velocities[step]
            )
            if execution.revision != revision:  # path tolerance abort: hold from step + 1
                run = session.simulate(execution.commands)
                revision = execution.revision
            stamp = self._tick(run.joint_positions[step], run.joint_velocities[step])
            if execution.state in (GoalState.RUNNING, GoalState.SUCCEEDED):
                goal_handle.publish_feedback(
                    feedback_to_msg(feedback, session.joint_names, stamp, self._fjt)
                )
            last_step = step
        execution.finish()
        with self._state_lock:
            report = session.finish(run)
        self._publish_outcome(report)

        if execution.state == GoalState.SUCCEEDED:
            goal_handle.succeed()
        elif execution.state == GoalState.CANCELED:
            goal_handle.canceled()
        else:
            goal_handle.abort()
        level = (
            self.get_logger().info
            if execution.state == GoalState.SUCCEEDED
            else self.get_logger().warning
        )
        level(
            f"episode {report.episode_index}: {execution.state.name.lower()} "
            f"({execution.error_string}); reward {report.reward:.4f}"
        )
        return result_to_msg(execution.code, execution.error_string, self._fjt)

    def destroy_node(self) -> None:
        self._action_server.destroy()
        if self._camera is not None:
            self._camera.close()
        self._session.close()
        super().destroy_node()


def main(args=None) -> None:
    rclpy.init(args=args)
    node = None
    try:
        node = SimBridgeNode()
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
