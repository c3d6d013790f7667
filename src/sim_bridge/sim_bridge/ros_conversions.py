"""Conversions between numpy arrays and ROS 2 messages, without importing ROS.

Every function takes the message classes it builds (a :class:`MessageTypes`) or reads
duck-typed message objects, so the same code works with rclpy's generated classes and with
the dataclasses of a ``rosbags`` typestore (which have no defaults: every field is passed
by keyword here). Scalars are passed as plain Python ``int`` / ``float`` / ``str`` / ``bool``.
Variable-length numeric fields (``float64[]``, ``uint32[]``) need different containers:
rosbags' dataclasses want numpy arrays, rclpy's generated setters want ``array.array`` (or a
sequence of Python numbers; a numpy array fails their type assertion), so
:class:`MessageTypes` carries the converter for its classes.

Time is exact: stamps and ``time_from_start`` are computed from integer nanoseconds.

Conventions (see :mod:`sim_bridge.trajectory`): point ``t`` of a JointTrajectory is the
set-point at ``time_from_start = (t + 1) * control_dt``; the start configuration (time 0)
is not a point.
"""

from __future__ import annotations

import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

NS_PER_S = 1_000_000_000
INT32_MAX = 2**31 - 1
INT32_MIN = -(2**31)


class MessageConversionError(ValueError):
    """A message or array that cannot be converted; the text names the field and the bound."""


def numpy_float64_sequence(values: np.ndarray) -> np.ndarray:
    """A ``float64[]`` field for rosbags' dataclasses: a contiguous 1-D float64 numpy array."""
    return np.array(values, dtype=np.float64, copy=True).reshape(-1)


def numpy_uint32_sequence(values: np.ndarray) -> np.ndarray:
    """A ``uint32[]`` field for rosbags' dataclasses: a 1-D uint32 numpy array."""
    return np.array(values, dtype=np.uint32, copy=True).reshape(-1)


def array_float64_sequence(values: np.ndarray) -> array.array:
    """A ``float64[]`` field for rclpy's classes: ``array.array('d')`` (exact copy)."""
    return array.array("d", np.asarray(values, dtype=np.float64).reshape(-1).tobytes())


def array_uint32_sequence(values: np.ndarray) -> array.array:
    """A ``uint32[]`` field for rclpy's classes: ``array.array('I')``."""
    return array.array("I", [int(v) for v in np.asarray(values).reshape(-1)])


@dataclass(frozen=True)
class MessageTypes:
    """The message classes the conversions build, and the container their variable-length
    numeric fields take.

    Use :meth:`from_typestore` (tests, bag files) or :meth:`from_rclpy` (inside a node).
    """

    Time: type
    Duration: type
    Header: type
    JointTrajectory: type
    JointTrajectoryPoint: type
    JointState: type
    Point: type
    PointStamped: type
    float64_sequence: Callable[[np.ndarray], Any] = numpy_float64_sequence
    uint32_sequence: Callable[[np.ndarray], Any] = numpy_uint32_sequence

    @classmethod
    def from_typestore(cls, typestore: Any) -> MessageTypes:
        """Classes of a ``rosbags`` typestore, e.g. ``get_typestore(Stores.ROS2_JAZZY)``."""
        types = typestore.types
        return cls(
            Time=types["builtin_interfaces/msg/Time"],
            Duration=types["builtin_interfaces/msg/Duration"],
            Header=types["std_msgs/msg/Header"],
            JointTrajectory=types["trajectory_msgs/msg/JointTrajectory"],
            JointTrajectoryPoint=types["trajectory_msgs/msg/JointTrajectoryPoint"],
            JointState=types["sensor_msgs/msg/JointState"],
            Point=types["geometry_msgs/msg/Point"],
            PointStamped=types["geometry_msgs/msg/PointStamped"],
        )

    @classmethod
    def from_rclpy(cls) -> MessageTypes:
        """rclpy's generated classes (imports the ROS message packages; needs a sourced ROS)."""
        from builtin_interfaces.msg import Duration, Time  # noqa: PLC0415
        from geometry_msgs.msg import Point, PointStamped  # noqa: PLC0415
        from sensor_msgs.msg import JointState  # noqa: PLC0415
        from std_msgs.msg import Header  # noqa: PLC0415
        from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint  # noqa: PLC0415

        return cls(
            Time=Time,
            Duration=Duration,
            Header=Header,
            JointTrajectory=JointTrajectory,
            JointTrajectoryPoint=JointTrajectoryPoint,
            JointState=JointState,
            Point=Point,
            PointStamped=PointStamped,
            float64_sequence=array_float64_sequence,
            uint32_sequence=array_uint32_sequence,
        )


# --------------------------------------------------------------------------- time


def _split_ns(ns: int, field: str, *, allow_negative: bool) -> tuple[int, int]:
    if isinstance(ns, (bool, np.bool_)) or not isinstance(ns, (int, np.integer)):
        raise MessageConversionError(
            f"{field} must be an integer number of nanoseconds, got {ns!r}"
        )
    ns = int(ns)
    if ns < 0 and not allow_negative:
        raise MessageConversionError(f"{field} is {ns} ns, must be >= 0")
    sec, nanosec = divmod(ns, NS_PER_S)
    if not INT32_MIN <= sec <= INT32_MAX:
        raise MessageConversionError(
            f"{field} is {ns} ns: seconds {sec} do not fit the int32 field sec "
            f"[{INT32_MIN}, {INT32_MAX}]"
        )
    return sec, nanosec


def _join_ns(msg: Any, field: str) -> int:
    sec, nanosec = int(msg.sec), int(msg.nanosec)
    if not 0 <= nanosec < NS_PER_S:
        raise MessageConversionError(f"{field}.nanosec is {nanosec}, must be in [0, 1e9)")
    return sec * NS_PER_S + nanosec


def ns_to_stamp(ns: int, time_cls: type) -> Any:
    """builtin_interfaces/Time for ``ns`` >= 0 nanoseconds since the epoch (exact)."""
    sec, nanosec = _split_ns(ns, "stamp", allow_negative=False)
    return time_cls(sec=sec, nanosec=nanosec)


def stamp_to_ns(stamp: Any) -> int:
    """Integer nanoseconds of a builtin_interfaces/Time (exact)."""
    return _join_ns(stamp, "stamp")


def ns_to_duration(ns: int, duration_cls: type) -> Any:
    """builtin_interfaces/Duration of ``ns`` nanoseconds (exact; nanosec in [0, 1e9))."""
    sec, nanosec = _split_ns(ns, "duration", allow_negative=True)
    return duration_cls(sec=sec, nanosec=nanosec)


def duration_to_ns(duration: Any) -> int:
    """Integer nanoseconds of a builtin_interfaces/Duration (exact)."""
    return _join_ns(duration, "duration")


def seconds_to_ns(seconds: float, field: str = "control_dt_s") -> int:
    """Seconds -> nearest integer nanoseconds; rejects non-finite or non-positive values."""
    value = float(seconds)
    if not np.isfinite(value) or value <= 0:
        raise MessageConversionError(f"{field} is {seconds!r} s, must be finite and > 0")
    ns = round(value * NS_PER_S)
    if ns <= 0:
        raise MessageConversionError(f"{field} is {seconds!r} s, below 1 ns")
    return ns


def _header(msg_types: MessageTypes, stamp_ns: int, frame_id: str) -> Any:
    return msg_types.Header(stamp=ns_to_stamp(stamp_ns, msg_types.Time), frame_id=str(frame_id))


# --------------------------------------------------------------------------- arrays


def _float_array(value: Any, shape: tuple[int, ...], field: str) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind not in "fiu":
        raise MessageConversionError(f"{field} has dtype {array.dtype}, expected a numeric array")
    array = array.astype(np.float64)
    if array.shape != shape:
        raise MessageConversionError(f"{field} has shape {array.shape}, expected {shape}")
    if not np.isfinite(array).all():
        index = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
        raise MessageConversionError(f"{field}{list(index)} is {array[index]}, must be finite")
    return array


def _check_names(joint_names: Sequence[str], field: str) -> tuple[str, ...]:
    names = tuple(str(n) for n in joint_names)
    if not names:
        raise MessageConversionError(f"{field} is empty")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise MessageConversionError(f"{field} has duplicate names {duplicates}")
    return names


def _reorder(found: Sequence[str], expected: Sequence[str], field: str) -> np.ndarray:
    """Index array ``idx`` with ``found[idx[j]] == expected[j]``."""
    found = tuple(str(n) for n in found)
    expected = tuple(expected)
    duplicates = sorted({n for n in found if found.count(n) > 1})
    if duplicates:
        raise MessageConversionError(f"{field} has duplicate names {duplicates}")
    unknown = [n for n in found if n not in expected]
    missing = [n for n in expected if n not in found]
    if unknown or missing:
        parts = []
        if unknown:
            parts.append(f"unknown joint names {unknown}")
        if missing:
            parts.append(f"missing joint names {missing}")
        raise MessageConversionError(
            f"{field} has {' and '.join(parts)}; expected a permutation of {list(expected)}"
        )
    return np.array([found.index(n) for n in expected], dtype=np.intp)


def _msg_array(values: Any) -> np.ndarray:
    """A message's float sequence (numpy array, array.array or list) as float64."""
    return np.asarray(values if values is not None else [], dtype=np.float64).reshape(-1)


# --------------------------------------------------------------------------- trajectories


def trajectory_to_msg(
    positions_rad: np.ndarray,
    joint_names: Sequence[str],
    control_dt_s: float,
    msg_types: MessageTypes,
    stamp_ns: int = 0,
    frame_id: str = "",
    velocities: np.ndarray | None = None,
) -> Any:
    """trajectory_msgs/JointTrajectory of T set-points.

    :param positions_rad: (T, J) joint position commands (rad), J = len(joint_names).
    :param control_dt_s: time between commands (s); point t gets
        ``time_from_start = (t + 1) * control_dt_s``, computed in integer nanoseconds
        (``control_dt_s`` rounded to the nearest ns), so there is no float drift.
    :param stamp_ns: header stamp (ns since epoch): when the trajectory starts; 0 = "now"
        for a JointTrajectoryController.
    :param velocities: optional (T, J) velocities (rad/s) per point. By default the points
        carry positions only (velocities, accelerations and effort empty), so a controller
        interpolates between set-points itself. Pass ``trajectory.joint_velocities(...)``
        to send the backward differences (velocity from the previous command to this one).
    """
    names = _check_names(joint_names, "joint_names")
    positions = np.asarray(positions_rad)
    if positions.ndim != 2 or positions.shape[0] == 0:
        raise MessageConversionError(
            f"positions_rad has shape {positions.shape}, expected (T, {len(names)}) with T >= 1"
        )
    positions = _float_array(positions, (positions.shape[0], len(names)), "positions_rad")
    horizon = positions.shape[0]
    if velocities is not None:
        velocities = _float_array(velocities, positions.shape, "velocities")
    dt_ns = seconds_to_ns(control_dt_s)
    seq = msg_types.float64_sequence
    empty = np.zeros(0, dtype=np.float64)
    points = []
    for t in range(horizon):
        points.append(
            msg_types.JointTrajectoryPoint(
                positions=seq(positions[t]),
                velocities=seq(velocities[t] if velocities is not None else empty),
                accelerations=seq(empty),
                effort=seq(empty),
                time_from_start=ns_to_duration((t + 1) * dt_ns, msg_types.Duration),
            )
        )
    return msg_types.JointTrajectory(
        header=_header(msg_types, stamp_ns, frame_id),
        joint_names=list(names),
        points=points,
    )


def trajectory_from_msg(
    msg: Any, joint_names_expected: Sequence[str], time_tolerance_ns: int = 1000
) -> tuple[np.ndarray, float]:
    """Positions (T, J) float64 rad ordered as ``joint_names_expected`` and control_dt_s.

    The joint order of the message may be any permutation of the expected names. The points
    must be uniformly spaced at ``(t + 1) * dt`` (within ``time_tolerance_ns``), with
    ``dt = points[0].time_from_start > 0``. Raises :class:`MessageConversionError`.
    """
    expected = _check_names(joint_names_expected, "joint_names_expected")
    order = _reorder(msg.joint_names, expected, "JointTrajectory.joint_names")
    n_joints = len(expected)
    points = list(msg.points)
    if not points:
        raise MessageConversionError("JointTrajectory.points is empty, expected at least 1 point")
    times = [duration_to_ns(p.time_from_start) for p in points]
    if times[0] <= 0:
        raise MessageConversionError(
            f"JointTrajectory.points[0].time_from_start is {times[0] / NS_PER_S:.9f} s, "
            "must be > 0 (point t is the set-point at (t + 1) * control_dt)"
        )
    dt_ns = times[0]
    for t in range(1, len(times)):
        if times[t] <= times[t - 1]:
            raise MessageConversionError(
                f"JointTrajectory.points[{t}].time_from_start ({times[t] / NS_PER_S:.9f} s) is not "
                f"after points[{t - 1}].time_from_start ({times[t - 1] / NS_PER_S:.9f} s)"
            )
        expected_ns = (t + 1) * dt_ns
        if abs(times[t] - expected_ns) > time_tolerance_ns:
            raise MessageConversionError(
                f"JointTrajectory.points[{t}].time_from_start is {times[t] / NS_PER_S:.9f} s, "
                f"expected {expected_ns / NS_PER_S:.9f} s for uniform steps of "
                f"{dt_ns / NS_PER_S:.9f} s (non-uniform time_from_start)"
            )
    positions = np.empty((len(points), n_joints), dtype=np.float64)
    for t, point in enumerate(points):
        values = _msg_array(point.positions)
        if values.shape[0] != n_joints:
            raise MessageConversionError(
                f"JointTrajectory.points[{t}].positions has length {values.shape[0]}, "
                f"expected {n_joints} (one per joint name)"
            )
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            j = int(bad[0])
            raise MessageConversionError(
                f"JointTrajectory.points[{t}].positions[{j}] ({msg.joint_names[j]}) is "
                f"{values[j]}, must be finite"
            )
        positions[t] = values[order]
    return positions, dt_ns / NS_PER_S


# --------------------------------------------------------------------------- joint states


def joint_state_to_msg(
    positions: np.ndarray,
    velocities: np.ndarray | None,
    joint_names: Sequence[str],
    stamp_ns: int,
    msg_types: MessageTypes,
    effort: np.ndarray | None = None,
    frame_id: str = "",
) -> Any:
    """sensor_msgs/JointState; positions (J,) rad, velocities (J,) rad/s or None (empty),
    effort (J,) N m or None (empty)."""
    names = _check_names(joint_names, "joint_names")
    shape = (len(names),)
    position = _float_array(positions, shape, "positions")
    velocity = (
        _float_array(velocities, shape, "velocities")
        if velocities is not None
        else np.zeros(0, dtype=np.float64)
    )
    effort_arr = (
        _float_array(effort, shape, "effort") if effort is not None else np.zeros(0, np.float64)
    )
    return msg_types.JointState(
        header=_header(msg_types, stamp_ns, frame_id),
        name=list(names),
        position=msg_types.float64_sequence(position),
        velocity=msg_types.float64_sequence(velocity),
        effort=msg_types.float64_sequence(effort_arr),
    )


def joint_state_from_msg(
    msg: Any, joint_names_expected: Sequence[str]
) -> tuple[int, np.ndarray, np.ndarray | None]:
    """(stamp_ns, positions (J,) float64, velocities (J,) float64 or None when the message
    has no velocities), ordered as ``joint_names_expected``."""
    expected = _check_names(joint_names_expected, "joint_names_expected")
    order = _reorder(msg.name, expected, "JointState.name")
    n_joints = len(expected)
    stamp_ns = stamp_to_ns(msg.header.stamp)
    position = _msg_array(msg.position)
    if position.shape[0] != n_joints:
        raise MessageConversionError(
            f"JointState.position has length {position.shape[0]}, expected {n_joints} "
            "(one per name)"
        )
    velocity = _msg_array(msg.velocity)
    if velocity.shape[0] not in (0, n_joints):
        raise MessageConversionError(
            f"JointState.velocity has length {velocity.shape[0]}, expected 0 or {n_joints}"
        )
    for field, values in (("position", position), ("velocity", velocity)):
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            j = int(bad[0])
            raise MessageConversionError(
                f"JointState.{field}[{j}] ({msg.name[j]}) is {values[j]}, must be finite"
            )
    return stamp_ns, position[order], (velocity[order] if velocity.size else None)


# --------------------------------------------------------------------------- goals


def goal_to_msg(
    goal: np.ndarray, stamp_ns: int, msg_types: MessageTypes, frame_id: str = "world"
) -> Any:
    """geometry_msgs/PointStamped of a goal (2,) xy or (3,) xyz in metres (z = 0 for xy)."""
    array = np.asarray(goal)
    if array.shape not in ((2,), (3,)):
        raise MessageConversionError(f"goal has shape {array.shape}, expected (2,) or (3,)")
    array = _float_array(array, array.shape, "goal")
    x, y = float(array[0]), float(array[1])
    z = float(array[2]) if array.shape[0] == 3 else 0.0
    return msg_types.PointStamped(
        header=_header(msg_types, stamp_ns, frame_id),
        point=msg_types.Point(x=x, y=y, z=z),
    )


def goal_from_msg(msg: Any) -> np.ndarray:
    """Goal (3,) float64 xyz in metres from a geometry_msgs/PointStamped."""
    point = msg.point
    values = np.array([point.x, point.y, point.z], dtype=np.float64)
    for axis, value in zip("xyz", values, strict=True):
        if not np.isfinite(value):
            raise MessageConversionError(f"PointStamped.point.{axis} is {value}, must be finite")
    return values
