"""trainer node: EM policy training (GenRL Algorithm 1) through the ROS graph.

Thin wrapper around :class:`genrl_ros.graph_trainer.GraphTrainer` (the episode bookkeeping,
the EM updates, the run directory). For every episode it asks the trainer for a goal and a
latent (drawn by the trainer from its own copy of pi_theta, see :mod:`genrl_ros.graph_trainer`)
and, on a worker thread that waits on rclpy's futures while the executor's threads deliver
the replies:

1. resets the scene to the goal: ``reset_service`` (genrl_interfaces/srv/ResetScene of
   sim_bridge, which also publishes the goal on ``/goal``);
2. decodes the latent: ``decode_service`` (genrl_interfaces/srv/DecodeLatent of the
   trajectory generator);
3. sends the trajectory as a control_msgs/FollowJointTrajectory goal to ``action_name`` (the
   safety monitor, which reviews it and forwards it to the executor); a goal the monitor
   refuses counts as a rejected trajectory (``invalid_reward``), except while the monitor
   refuses every goal (total contact limit, see ``safety/status``): then the trainer waits
   for ``/safety_monitor/reset_counts`` and runs the episode again;
4. reads the outcome from ``episode_outcome`` (genrl_interfaces/EpisodeOutcome; the one whose
   goal is the episode's goal).

After every N episodes the trainer updates the policy, writes the run directory (like
``genrl train-policy``) and pushes the new weights to the latent policy node: it writes
``<out>/latest_policy.onnx`` atomically and sets the node's ``policy_path`` parameter
(rcl_interfaces/srv/SetParameters on ``<policy_node>/set_parameters``), which makes it load
the file. After the last iteration the deterministic policy is evaluated on the held-out
goals through the graph, the final files are written and the node shuts down. An episode
that gets no reply or no outcome is tried again (``max_attempts``); then training stops and
the run resumes from its last checkpoint with ``resume: true``.

Parameters: :data:`genrl_ros.graph_trainer.TRAINER_PARAMS`.
"""

from __future__ import annotations

import json
import queue
import threading
import time

import rclpy
from control_msgs.action import FollowJointTrajectory
from genrl_interfaces.msg import EpisodeOutcome, SafetyStatus
from genrl_interfaces.srv import DecodeLatent, ResetScene
from rcl_interfaces.srv import SetParameters
from rclpy.action import ActionClient
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sim_bridge.nodes.ros_params import declare_params, on_set_parameters
from sim_bridge.ros_conversions import MessageConversionError
from sim_bridge.ros_outcome_conversions import episode_outcome_from_msg
from sim_bridge.trajectory_action import FollowJointTrajectoryTypes, goal_to_msg

from genrl_ros.graph_trainer import (
    TRAINER_NODE,
    TRAINER_PARAMS,
    EpisodeError,
    EpisodeRequest,
    GraphTrainer,
    SafetyHold,
    TrainerSettings,
    decode_request,
    episode_result_from_report,
    outcome_matches,
    rejected_result,
    reset_request,
)

#: how often a trainer held by the safety monitor looks at its status again (s)
HOLD_POLL_S = 0.5


class TrainerNode(Node):
    """Runs the EM trainer's episodes through the graph and pushes its weights."""

    def __init__(self) -> None:
        super().__init__(TRAINER_NODE)
        self._params = declare_params(self, TRAINER_PARAMS)
        settings = TrainerSettings.from_params(self._params)
        self.add_on_set_parameters_callback(
            on_set_parameters(TRAINER_PARAMS, lambda: dict(self._params), self._apply_params)
        )
        self._trainer = GraphTrainer.from_settings(settings, self.get_logger().info)
        self._task = settings.task
        self._fjt = FollowJointTrajectoryTypes.from_rclpy()
        self._msgs = self._fjt.msg
        self._outcomes: queue.Queue = queue.Queue()
        self._status_lock = threading.Lock()
        self._accepting_goals, self._hold_reason, self._last_rejection = True, "", ""
        self._stopping = threading.Event()

        group = ReentrantCallbackGroup()
        self.create_subscription(
            EpisodeOutcome, "episode_outcome", self._outcomes.put, 10, callback_group=group
        )
        self.create_subscription(
            SafetyStatus, "safety/status", self._on_status, 10, callback_group=group
        )
        self._reset = self.create_client(
            ResetScene, settings.reset_service, callback_group=group
        )
        self._decode = self.create_client(
            DecodeLatent, settings.decode_service, callback_group=group
        )
        self._action = ActionClient(
            self, FollowJointTrajectory, settings.action_name, callback_group=group
        )
        self._set_policy = (
            self.create_client(
                SetParameters, f"{settings.policy_node}/set_parameters", callback_group=group
            )
            if settings.policy_node
            else None
        )
        self._start_timer = self.create_timer(
            settings.start_delay_s, self._start, callback_group=group
        )
        self.get_logger().info(
            f"EM training of a {settings.observation} policy on {settings.task} into "
            f"{settings.out}: {self._trainer.progress()}"
        )

    # ------------------------------------------------------------------ parameters
    def _apply_params(self, values: dict, changes: dict) -> str | None:
        self._params = values  # the timeouts and attempts are read where they are used
        return None

    def _on_status(self, msg: SafetyStatus) -> None:
        with self._status_lock:
            self._accepting_goals = bool(msg.accepting_goals)
            self._hold_reason = str(msg.reason)
            self._last_rejection = str(msg.last_rejection_reason)

    # ------------------------------------------------------------------ waiting
    def _wait(self, future, timeout_s: float, what: str):
        done = threading.Event()
        future.add_done_callback(lambda _: done.set())
        if not done.wait(timeout_s):
            raise EpisodeError(f"no {what} within {timeout_s} s")
        return future.result()

    def _call(self, client, request, what: str):
        timeout_s = self._params["server_timeout_s"]
        if not client.wait_for_service(timeout_sec=timeout_s):
            raise EpisodeError(f"no {what} service '{client.srv_name}'")
        return self._wait(client.call_async(request), timeout_s, f"{what} reply")

    def _wait_until_admitted(self) -> None:
        logged = False
        while not self._stopping.is_set():
            with self._status_lock:
                accepting, reason = self._accepting_goals, self._hold_reason
            if accepting:
                return
            if not logged:
                self.get_logger().warning(
                    f"the safety monitor refuses goals ({reason}); training waits for "
                    "ros2 service call /safety_monitor/reset_counts std_srvs/srv/Trigger"
                )
                logged = True
            self._stopping.wait(HOLD_POLL_S)

    # ------------------------------------------------------------------ training
    def _start(self) -> None:
        self._start_timer.cancel()
        threading.Thread(target=self._train, name="trainer", daemon=True).start()

    def _train(self) -> None:
        log = self.get_logger()
        try:
            self._push_policy()
            while not self._stopping.is_set():
                request = self._trainer.next_episode()
                if request is None:
                    break
                progress = self._trainer.record(request, self._run_with_attempts(request))
                if progress is None:
                    continue
                if progress.kind == "iteration":
                    row = progress.row
                    log.info(
                        f"iteration {row['iteration']}: reward {row['reward_mean']:.4f} "
                        f"(median distance {row['distance_median_m']:.4f} m), invalid "
                        f"{row['invalid']}, table contact steps {row['table_contact_steps']}, "
                        f"policy std {row['policy_std_mean']:.3f}, {row['seconds']} s"
                    )
                    self._push_policy()
                else:
                    log.info(f"training complete: {json.dumps(progress.summary, sort_keys=True)}")
        except Exception as err:  # report and end the node either way
            log.error(
                f"training stopped ({self._trainer.progress()}): {err}; the run resumes from "
                "its last checkpoint with the parameter resume: true"
            )
        finally:
            rclpy.try_shutdown()

    def _run_with_attempts(self, request: EpisodeRequest):
        attempt = 0
        while True:
            try:
                return self._run_episode(request)
            except SafetyHold:
                continue  # not the episode's fault: wait for the monitor, run it again
            except EpisodeError as err:
                attempt += 1
                if attempt >= self._params["max_attempts"]:
                    raise EpisodeError(f"{request.describe()}: {err}") from None
                self.get_logger().warning(f"{request.describe()} again: {err}")

    def _run_episode(self, request: EpisodeRequest):
        p = self._params
        self._wait_until_admitted()
        reply = self._call(
            self._reset, reset_request(request.goal_xy, ResetScene.Request, self._msgs), "reset"
        )
        if not reply.success:
            raise EpisodeError(f"reset refused: {reply.message}")
        reply = self._call(
            self._decode, decode_request(request.latent, DecodeLatent.Request, self._msgs),
            "decode",
        )
        if not reply.success:
            raise EpisodeError(f"latent not decoded: {reply.message}")
        while not self._outcomes.empty():  # outcomes of earlier goals
            self._outcomes.get_nowait()
        if not self._action.wait_for_server(timeout_sec=p["server_timeout_s"]):
            raise EpisodeError(f"no FollowJointTrajectory server '{p['action_name']}'")
        handle = self._wait(
            self._action.send_goal_async(goal_to_msg(reply.trajectory, self._fjt)),
            p["server_timeout_s"],
            "goal response",
        )
        if not handle.accepted:
            with self._status_lock:
                accepting, reason = self._accepting_goals, self._last_rejection
            if not accepting:
                raise SafetyHold(reason)
            self.get_logger().info(f"{request.describe()}: trajectory refused ({reason})")
            return rejected_result()
        self._wait(handle.get_result_async(), p["result_timeout_s"], "FollowJointTrajectory result")
        return episode_result_from_report(self._outcome_for(request, p["outcome_timeout_s"]))

    def _outcome_for(self, request: EpisodeRequest, timeout_s: float):
        deadline = time.monotonic() + timeout_s
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                msg = self._outcomes.get(timeout=remaining)
                _, report = episode_outcome_from_msg(msg)
            except queue.Empty:
                break
            except MessageConversionError as err:
                self.get_logger().warning(f"ignoring episode outcome: {err}")
                continue
            if outcome_matches(report, request, self._task):
                return report
        raise EpisodeError(f"no episode outcome for goal {request.goal_xy.tolist()}")

    # ------------------------------------------------------------------ weights
    def _push_policy(self) -> None:
        """Write latest_policy.onnx and set the policy node's policy_path to it."""
        if self._set_policy is None:
            return
        path = self._trainer.export_latest_policy()
        timeout_s = self._params["server_timeout_s"]
        if not self._set_policy.wait_for_service(timeout_sec=timeout_s):
            self.get_logger().warning(f"no parameter service '{self._set_policy.srv_name}'")
            return
        request = SetParameters.Request(
            parameters=[Parameter("policy_path", Parameter.Type.STRING, str(path)).to_parameter_msg()]
        )
        try:
            response = self._wait(self._set_policy.call_async(request), timeout_s, "reply")
        except EpisodeError as err:
            self.get_logger().warning(f"policy weights not pushed: {err}")
            return
        result = response.results[0]
        if not result.successful:
            self.get_logger().warning(f"the policy node refused {path}: {result.reason}")

    def destroy_node(self) -> None:
        self._stopping.set()
        self._action.destroy()
        self._trainer.close()
        super().destroy_node()


def main(args=None) -> None:
    rclpy.init(args=args)
    node = None
    try:
        node = TrainerNode()
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
