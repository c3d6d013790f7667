"""demo_player node: plays a demonstration dataset through the simulator (for recording).

Thin wrapper around :class:`genrl_ros.demo_playback.DemoPlayback`; see that module for the
topics. The episodes are played one after the other on a worker thread (reset the scene,
publish the commanded trajectory, send the FollowJointTrajectory goal, wait for the result and
the outcome); when all are played the node shuts down, which ends
``record_demos.launch.py`` (and with it the bag recording).

Parameters: :data:`genrl_ros.node_params.DEMO_PLAYER_PARAMS`.
"""

from __future__ import annotations

import queue
import threading

import rclpy
from control_msgs.action import FollowJointTrajectory
from genrl_interfaces.msg import EpisodeOutcome
from genrl_interfaces.srv import ResetScene
from rclpy.action import ActionClient
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sim_bridge.arm import JOINT_NAMES
from sim_bridge.nodes.ros_params import declare_params
from sim_bridge.ros_conversions import MessageConversionError, trajectory_to_msg
from sim_bridge.ros_outcome_conversions import episode_outcome_from_msg, episode_outcome_to_msg
from sim_bridge.trajectory_action import FollowJointTrajectoryTypes, goal_to_msg, result_code_name
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory

from genrl_ros.demo_playback import DemoPlayback
from genrl_ros.node_params import DEMO_PLAYER_NODE, DEMO_PLAYER_PARAMS


class DemoPlayerNode(Node):
    """Plays the episodes of a dataset through reset service + FollowJointTrajectory."""

    def __init__(self) -> None:
        super().__init__(DEMO_PLAYER_NODE)
        self._params = declare_params(self, DEMO_PLAYER_PARAMS)
        p = self._params
        if not p["dataset"]:
            raise ValueError("parameter dataset is empty: give the directory of `genrl demos`")
        self._playback = DemoPlayback.load(p["dataset"], p["max_episodes"])
        self._fjt = FollowJointTrajectoryTypes.from_rclpy()
        self._msgs = self._fjt.msg
        self._outcomes: queue.Queue = queue.Queue()
        group = ReentrantCallbackGroup()
        latched = QoSProfile(
            depth=1,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        self._info_pub = self.create_publisher(String, "/demo/dataset_info", latched)
        self._trajectory_pub = self.create_publisher(
            JointTrajectory, "/demo/commanded_trajectory", 10
        )
        self._outcome_pub = self.create_publisher(EpisodeOutcome, "/demo/episode_outcome", 10)
        self.create_subscription(
            EpisodeOutcome, "episode_outcome", self._outcomes.put, 10, callback_group=group
        )
        self._reset = self.create_client(ResetScene, p["reset_service"], callback_group=group)
        self._action = ActionClient(
            self, FollowJointTrajectory, p["action_name"], callback_group=group
        )
        self._done = threading.Event()
        self._start_timer = self.create_timer(p["start_delay_s"], self._start, callback_group=group)

    def _start(self) -> None:
        self._start_timer.cancel()
        threading.Thread(target=self._play, name="demo_player", daemon=True).start()

    def _wait(self, future, timeout_s: float):
        done = threading.Event()
        future.add_done_callback(lambda _: done.set())
        if not done.wait(timeout_s):
            raise TimeoutError("no answer")
        return future.result()

    def _play(self) -> None:
        p, log, playback = self._params, self.get_logger(), self._playback
        try:
            if not self._reset.wait_for_service(timeout_sec=p["server_timeout_s"]):
                raise TimeoutError(f"no reset service '{p['reset_service']}'")
            if not self._action.wait_for_server(timeout_sec=p["server_timeout_s"]):
                raise TimeoutError(f"no FollowJointTrajectory server '{p['action_name']}'")
            self._info_pub.publish(String(data=playback.info_json()))
            log.info(f"playing {playback.n_episodes} {playback.task} episodes")
            for i in range(playback.n_episodes):
                self._play_episode(i)
            log.info(f"done: {playback.summary()}")
        except Exception as err:  # report and end the launch either way
            log.error(f"demonstration playback failed: {err}")
        finally:
            self._done.set()
            rclpy.try_shutdown()

    def _play_episode(self, i: int) -> None:
        p, playback = self._params, self._playback
        episode = playback.episode(i)
        goal = self._msgs.Point(x=float(episode.goal_xy[0]), y=float(episode.goal_xy[1]), z=0.0)
        request = ResetScene.Request(sample_goal=False, goal=goal)
        reply = self._wait(self._reset.call_async(request), p["server_timeout_s"])
        if not reply.success:
            raise RuntimeError(f"episode {i}: reset refused: {reply.message}")
        while not self._outcomes.empty():  # outcomes of goals not sent by this player
            self._outcomes.get_nowait()
        trajectory = trajectory_to_msg(
            episode.trajectory,
            JOINT_NAMES,
            playback.dataset.control_dt_s,
            self._msgs,
            stamp_ns=self.get_clock().now().nanoseconds,
        )
        self._trajectory_pub.publish(trajectory)
        trajectory.header.stamp.sec, trajectory.header.stamp.nanosec = 0, 0  # start when received
        handle = self._wait(
            self._action.send_goal_async(goal_to_msg(trajectory, self._fjt)), p["server_timeout_s"]
        )
        if handle.accepted:
            response = self._wait(handle.get_result_async(), 3600.0)
            result = response.result
            if result.error_code != 0:
                playback.record_failure(
                    i, f"{result_code_name(result.error_code)}: {result.error_string}"
                )
        try:
            outcome = self._outcomes.get(timeout=p["outcome_timeout_s"])
            _, report = episode_outcome_from_msg(outcome)
        except (queue.Empty, MessageConversionError) as err:
            raise RuntimeError(
                f"episode {i}: no episode outcome from the simulator ({err!r})"
            ) from None
        report = playback.relabel(report, i)
        self._outcome_pub.publish(
            episode_outcome_to_msg(
                report, self.get_clock().now().nanoseconds, EpisodeOutcome, self._msgs
            )
        )

    def destroy_node(self) -> None:
        # Node.destroy_node does not destroy action clients
        self._action.destroy()
        super().destroy_node()


def main(args=None) -> None:
    rclpy.init(args=args)
    node = None
    try:
        node = DemoPlayerNode()
        executor = MultiThreadedExecutor(num_threads=3)
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
