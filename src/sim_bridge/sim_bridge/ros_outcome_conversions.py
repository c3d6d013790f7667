"""The outcome of one executed (or rejected) episode and its genrl_interfaces/EpisodeOutcome
message, without importing ROS.

:class:`EpisodeReport` is what the sim_bridge node publishes after every goal: built from one
row of :class:`sim_bridge.executor.EpisodeOutcomes`, or, for a trajectory rejected before
execution, from the rejection reason (reward, distance and final object position are then
NaN, the contact counts zero). The message class (``genrl_interfaces/msg/EpisodeOutcome``) is
passed in: rclpy's generated class in a node, a ``rosbags`` typestore class in tests
(registered by ``genrl_ros.data.interfaces``); the other classes come from a
:class:`sim_bridge.ros_conversions.MessageTypes`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim_bridge.ros_conversions import (
    MessageConversionError,
    MessageTypes,
    ns_to_stamp,
    stamp_to_ns,
)

#: frame of goals and object positions (the robot base / world frame of the tasks)
WORLD_FRAME = "world"


@dataclass(frozen=True, eq=False)
class EpisodeReport:
    """Outcome of one episode as the simulator (or a robot driver) reports it.

    :param episode_index: running number of the episode at the reporting node.
    :param goal_xy: goal (m), shape (2,).
    :param final_object_position: puck / ball position the reward was measured at (m), (3,);
        NaN when not executed.
    :param reward: terminal reward (NaN when not executed).
    :param distance_m: distance between object and goal (m) (NaN when not executed).
    :param contact_classes: names of ``contact_steps``.
    :param contact_steps: control steps with a contact of each class.
    :param unsafe_classes: the classes that make an episode unsafe.
    :param joint_limit_violation_steps: control steps with a joint beyond its limits.
    :param executed: False when the trajectory was rejected before execution.
    :param rejection_reason: why it was rejected (empty when executed).
    :param is_expert: True for an unperturbed expert demonstration.
    """

    episode_index: int
    task: str
    goal_xy: np.ndarray
    final_object_position: np.ndarray
    reward: float
    distance_m: float
    contact_classes: tuple[str, ...]
    contact_steps: tuple[int, ...]
    unsafe_classes: tuple[str, ...]
    joint_limit_violation_steps: int = 0
    executed: bool = True
    rejection_reason: str = ""
    is_expert: bool = False

    def __post_init__(self) -> None:
        goal = np.asarray(self.goal_xy, dtype=np.float64).reshape(-1)
        final = np.asarray(self.final_object_position, dtype=np.float64).reshape(-1)
        if goal.shape != (2,):
            raise ValueError(f"goal_xy has shape {goal.shape}, expected (2,)")
        if final.shape != (3,):
            raise ValueError(f"final_object_position has shape {final.shape}, expected (3,)")
        object.__setattr__(self, "goal_xy", goal)
        object.__setattr__(self, "final_object_position", final)
        object.__setattr__(self, "contact_classes", tuple(str(c) for c in self.contact_classes))
        object.__setattr__(self, "unsafe_classes", tuple(str(c) for c in self.unsafe_classes))
        steps = tuple(int(s) for s in self.contact_steps)
        if len(steps) != len(self.contact_classes):
            raise ValueError(
                f"contact_steps has {len(steps)} values for {len(self.contact_classes)} classes"
            )
        if any(s < 0 for s in steps):
            raise ValueError(f"contact_steps must be >= 0, got {steps}")
        unknown = [c for c in self.unsafe_classes if c not in self.contact_classes]
        if unknown:
            raise ValueError(f"unsafe_classes {unknown} are not among the contact classes")
        object.__setattr__(self, "contact_steps", steps)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_outcomes(cls, outcomes: Any, row: int, episode_index: int) -> EpisodeReport:
        """Row ``row`` of a :class:`sim_bridge.executor.EpisodeOutcomes`."""
        executed = bool(outcomes.executed[row])
        return cls(
            episode_index=int(episode_index),
            task=str(outcomes.task),
            goal_xy=outcomes.goals_xy[row],
            final_object_position=outcomes.final_object_pos[row],
            reward=float(outcomes.reward[row]),
            distance_m=float(outcomes.distance_m[row]),
            contact_classes=tuple(outcomes.contact_classes),
            contact_steps=tuple(int(v) for v in outcomes.contact_steps[row]),
            unsafe_classes=tuple(outcomes.unsafe_classes),
            joint_limit_violation_steps=int(outcomes.joint_limit_violation_steps[row]),
            executed=executed,
            rejection_reason="" if executed else str(outcomes.rejection[row] or ""),
        )

    @classmethod
    def rejected(
        cls,
        episode_index: int,
        task: str,
        goal_xy: Sequence[float],
        reason: str,
        contact_classes: Sequence[str],
        unsafe_classes: Sequence[str],
    ) -> EpisodeReport:
        """A goal that was not executed: NaN reward / distance / position, zero contacts."""
        return cls(
            episode_index=int(episode_index),
            task=task,
            goal_xy=np.asarray(goal_xy, dtype=np.float64),
            final_object_position=np.full(3, np.nan),
            reward=float("nan"),
            distance_m=float("nan"),
            contact_classes=tuple(contact_classes),
            contact_steps=(0,) * len(tuple(contact_classes)),
            unsafe_classes=tuple(unsafe_classes),
            joint_limit_violation_steps=0,
            executed=False,
            rejection_reason=str(reason) or "rejected",
        )

    # ------------------------------------------------------------------ views
    @property
    def contacts(self) -> dict[str, int]:
        """Contact steps per class name."""
        return dict(zip(self.contact_classes, self.contact_steps, strict=True))

    def contact_steps_of(self, classes: Sequence[str]) -> int:
        """Sum of the contact steps of ``classes`` (names absent from this report count 0)."""
        counts = self.contacts
        return int(sum(counts.get(name, 0) for name in classes))

    @property
    def unsafe_contact_steps(self) -> int:
        return self.contact_steps_of(self.unsafe_classes)

    @property
    def unsafe(self) -> bool:
        """Executed with an unsafe contact or a joint-limit violation."""
        return self.executed and (
            self.unsafe_contact_steps > 0 or self.joint_limit_violation_steps > 0
        )


def _point(msg_types: MessageTypes, values: np.ndarray) -> Any:
    return msg_types.Point(x=float(values[0]), y=float(values[1]), z=float(values[2]))


def episode_outcome_to_msg(
    report: EpisodeReport,
    stamp_ns: int,
    outcome_cls: type,
    msg_types: MessageTypes,
    frame_id: str = WORLD_FRAME,
) -> Any:
    """genrl_interfaces/EpisodeOutcome of ``report`` (every field passed by keyword).

    :param stamp_ns: end of the episode (or time of the rejection), ns.
    """
    goal = np.array([report.goal_xy[0], report.goal_xy[1], 0.0])
    return outcome_cls(
        header=msg_types.Header(stamp=ns_to_stamp(stamp_ns, msg_types.Time), frame_id=frame_id),
        episode_index=int(report.episode_index),
        task=report.task,
        goal=_point(msg_types, goal),
        final_object_position=_point(msg_types, report.final_object_position),
        reward=float(report.reward),
        distance_m=float(report.distance_m),
        contact_classes=list(report.contact_classes),
        contact_steps=msg_types.uint32_sequence(np.asarray(report.contact_steps, np.uint32)),
        unsafe_classes=list(report.unsafe_classes),
        joint_limit_violation_steps=int(report.joint_limit_violation_steps),
        is_expert=bool(report.is_expert),
        executed=bool(report.executed),
        rejection_reason=str(report.rejection_reason),
    )


def episode_outcome_from_msg(msg: Any) -> tuple[int, EpisodeReport]:
    """(stamp_ns, report) of a genrl_interfaces/EpisodeOutcome."""
    classes = [str(c) for c in msg.contact_classes]
    steps = np.asarray(msg.contact_steps if msg.contact_steps is not None else [], np.int64)
    if steps.reshape(-1).shape[0] != len(classes):
        raise MessageConversionError(
            f"EpisodeOutcome.contact_steps has {steps.size} values for {len(classes)} "
            "contact_classes"
        )
    try:
        report = EpisodeReport(
            episode_index=int(msg.episode_index),
            task=str(msg.task),
            goal_xy=np.array([msg.goal.x, msg.goal.y]),
            final_object_position=np.array(
                [
                    msg.final_object_position.x,
                    msg.final_object_position.y,
                    msg.final_object_position.z,
                ]
            ),
            reward=float(msg.reward),
            distance_m=float(msg.distance_m),
            contact_classes=tuple(classes),
            contact_steps=tuple(int(v) for v in steps.reshape(-1)),
            unsafe_classes=tuple(str(c) for c in msg.unsafe_classes),
            joint_limit_violation_steps=int(msg.joint_limit_violation_steps),
            executed=bool(msg.executed),
            rejection_reason=str(msg.rejection_reason),
            is_expert=bool(msg.is_expert),
        )
    except ValueError as err:
        raise MessageConversionError(f"EpisodeOutcome: {err}") from None
    return stamp_to_ns(msg.header.stamp), report
