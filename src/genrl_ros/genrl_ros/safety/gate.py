"""The safety monitor's review of a FollowJointTrajectory goal before it is forwarded to the
executor (simulator or robot controller). No ROS import.

A goal passes when (in this order):

1. the monitor admits new goals (the total contact limit is not crossed);
2. it is a well-formed goal for the arm and the task, checked like the simulated controller
   checks it (:func:`sim_bridge.trajectory_action.check_goal`: joint names, time stamps,
   timing resampled to the task's control period, joint limits of the validator's config);
3. the validator accepts its commands (:class:`~genrl_ros.safety.validator.TrajectoryValidator`:
   limits with margins, out-of-distribution guard).

A refused goal gets a FollowJointTrajectory result code (``INVALID_JOINTS`` /
``OLD_HEADER_TIMESTAMP`` from step 2, ``INVALID_GOAL`` otherwise) and a text naming the check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sim_bridge.trajectory_action import AcceptedGoal, GoalRejection, ResultCode, check_goal

from genrl_ros.safety.monitor import SafetyMonitor
from genrl_ros.safety.validator import TrajectoryValidator


@dataclass(frozen=True)
class Review:
    """Outcome of :meth:`GoalGate.review`: ``commands`` (T, 7) when accepted."""

    accepted: bool
    code: ResultCode = ResultCode.SUCCESSFUL
    reason: str = ""
    commands: np.ndarray | None = None


class GoalGate:
    """Admission + goal check + trajectory validation, with the monitor's bookkeeping."""

    def __init__(self, validator: TrajectoryValidator, monitor: SafetyMonitor) -> None:
        self.validator = validator
        self.monitor = monitor
        self.monitor.ood_threshold = validator.ood_threshold

    def review(self, goal: Any, now_ns: int) -> Review:
        decision = self.monitor.admit()
        if not decision.allowed:
            self.monitor.record_validation(False, decision.reason)
            return Review(False, ResultCode.INVALID_GOAL, decision.reason)
        checked: AcceptedGoal | GoalRejection = check_goal(goal, self.validator.spec, now_ns)
        if isinstance(checked, GoalRejection):
            reason = f"safety monitor: {checked.error_string}"
            self.monitor.record_validation(False, reason)
            return Review(False, checked.code, reason)
        verdict = self.validator.check(checked.commands)
        if not verdict.ok:
            reason = f"safety monitor: {verdict.reason}"
            self.monitor.record_validation(False, reason, verdict.ood_distance)
            return Review(False, ResultCode.INVALID_GOAL, reason)
        self.monitor.record_validation(True, "", verdict.ood_distance)
        return Review(True, ResultCode.SUCCESSFUL, "", checked.commands)


# action_msgs/msg/GoalStatus values of a finished goal
STATUS_SUCCEEDED = 4
STATUS_CANCELED = 5
STATUS_ABORTED = 6


@dataclass(frozen=True)
class Relay:
    """How the monitor ends its own goal after the controller's goal ended.

    :param terminal: ``succeed``, ``canceled`` or ``abort`` (the ServerGoalHandle call).
    :param code, error_string: the result to return.
    """

    terminal: str
    code: int
    error_string: str


def relay_result(
    goal_status: int,
    error_code: int,
    error_string: str,
    safety_stop: str | None = None,
    cancel_requested: bool = True,
) -> Relay:
    """The monitor's result for the controller's final ``goal_status`` and result.

    A goal the monitor stopped for safety (``safety_stop``: the reason) is aborted with
    ``PATH_TOLERANCE_VIOLATED`` (the code a controller uses for a goal stopped during motion)
    and a text naming the monitor; otherwise the controller's verdict is passed on unchanged
    (an unknown status counts as aborted). A controller goal that ended CANCELED although the
    monitor's client asked for no cancel (``cancel_requested`` False: another client or the
    controller canceled it) is aborted: the action state machine allows "canceled" only after
    a cancel request, and rclpy would otherwise abort with an empty result.
    """
    if safety_stop:
        return Relay(
            "abort", int(ResultCode.PATH_TOLERANCE_VIOLATED), f"safety monitor: {safety_stop}"
        )
    if goal_status == STATUS_SUCCEEDED:
        return Relay("succeed", int(error_code), str(error_string))
    if goal_status == STATUS_CANCELED:
        if cancel_requested:
            return Relay("canceled", int(error_code), str(error_string))
        text = str(error_string) or "the controller's goal was canceled by someone else"
        return Relay("abort", int(error_code), text)
    text = str(error_string) or f"the controller ended the goal with status {goal_status}"
    return Relay("abort", int(error_code), text)
