"""genrl_interfaces/SafetyStatus <-> :class:`~genrl_ros.safety.monitor.MonitorStatus`, without
importing ROS: the message class is passed in (rclpy's in the node, a ``rosbags`` typestore
class in tests), the Header / Time classes come from a
:class:`sim_bridge.ros_conversions.MessageTypes`."""

from __future__ import annotations

from typing import Any

from sim_bridge.ros_conversions import MessageTypes, ns_to_stamp, stamp_to_ns

from genrl_ros.safety.monitor import MonitorStatus, SafetyLevel

_COUNTS = (
    "episode_contact_steps",
    "total_contact_steps",
    "max_contact_steps_per_episode",
    "max_total_contact_steps",
    "episodes",
    "episodes_over_limit",
    "trajectories_validated",
    "trajectories_rejected",
    "goals_canceled",
)
UINT32_MAX = 2**32 - 1


def status_to_msg(
    status: MonitorStatus,
    stamp_ns: int,
    status_cls: type,
    msg_types: MessageTypes,
    frame_id: str = "",
) -> Any:
    """genrl_interfaces/SafetyStatus of a monitor snapshot (counts saturate at 2**32 - 1)."""
    counts = {name: min(int(getattr(status, name)), UINT32_MAX) for name in _COUNTS}
    return status_cls(
        header=msg_types.Header(stamp=ns_to_stamp(stamp_ns, msg_types.Time), frame_id=frame_id),
        level=int(status.level),
        accepting_goals=bool(status.accepting_goals),
        reason=str(status.reason),
        counted_contact_classes=list(status.counted_contact_classes),
        episode_active=bool(status.episode_active),
        last_rejection_reason=str(status.last_rejection_reason),
        last_ood_distance=float(status.last_ood_distance),
        ood_threshold=float(status.ood_threshold),
        **counts,
    )


def status_from_msg(msg: Any) -> tuple[int, MonitorStatus]:
    """(stamp_ns, snapshot) of a genrl_interfaces/SafetyStatus."""
    return stamp_to_ns(msg.header.stamp), MonitorStatus(
        level=SafetyLevel(int(msg.level)),
        accepting_goals=bool(msg.accepting_goals),
        reason=str(msg.reason),
        counted_contact_classes=tuple(str(c) for c in msg.counted_contact_classes),
        episode_active=bool(msg.episode_active),
        last_rejection_reason=str(msg.last_rejection_reason),
        last_ood_distance=float(msg.last_ood_distance),
        ood_threshold=float(msg.ood_threshold),
        **{name: int(getattr(msg, name)) for name in _COUNTS},
    )
