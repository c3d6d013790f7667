"""Conversions tested with the real ROS 2 Jazzy message definitions of the rosbags typestore."""

from __future__ import annotations

import array
import dataclasses

import numpy as np
import pytest

rosbags_typesys = pytest.importorskip("rosbags.typesys")

from sim_bridge.arm import JOINT_NAMES  # noqa: E402
from sim_bridge.ros_conversions import (  # noqa: E402
    MessageConversionError,
    MessageTypes,
    array_float64_sequence,
    array_uint32_sequence,
    duration_to_ns,
    goal_from_msg,
    goal_to_msg,
    joint_state_from_msg,
    joint_state_to_msg,
    ns_to_duration,
    ns_to_stamp,
    stamp_to_ns,
    trajectory_from_msg,
    trajectory_to_msg,
)
from sim_bridge.trajectory import TrajectorySpec, joint_velocities  # noqa: E402

TS = rosbags_typesys.get_typestore(rosbags_typesys.Stores.ROS2_JAZZY)
MT = MessageTypes.from_typestore(TS)
JT = "trajectory_msgs/msg/JointTrajectory"
JS = "sensor_msgs/msg/JointState"
PS = "geometry_msgs/msg/PointStamped"


def cdr_round_trip(msg, typename):
    return TS.deserialize_cdr(TS.serialize_cdr(msg, typename), typename)


def random_positions(horizon=78, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.0, 1.0, size=(horizon, 7))


# --------------------------------------------------------------------------- time


def test_stamp_exact_round_trip():
    for ns in (0, 1, 999_999_999, 1_000_000_000, 1_735_689_600_123_456_789):
        stamp = ns_to_stamp(ns, MT.Time)
        assert 0 <= stamp.nanosec < 1_000_000_000
        assert stamp_to_ns(stamp) == ns
        assert stamp_to_ns(cdr_round_trip(stamp, "builtin_interfaces/msg/Time")) == ns
    assert duration_to_ns(ns_to_duration(-1, MT.Duration)) == -1


def test_stamp_errors():
    with pytest.raises(MessageConversionError, match="stamp is -5 ns, must be >= 0"):
        ns_to_stamp(-5, MT.Time)
    with pytest.raises(MessageConversionError, match="int32 field sec"):
        ns_to_stamp(2**31 * 1_000_000_000, MT.Time)
    with pytest.raises(MessageConversionError, match="integer number of nanoseconds"):
        ns_to_stamp(1.5, MT.Time)
    with pytest.raises(MessageConversionError, match=r"stamp.nanosec is 1000000000"):
        stamp_to_ns(MT.Time(sec=0, nanosec=1_000_000_000))


# --------------------------------------------------------------------------- trajectories


def test_time_from_start_exact_78_steps():
    msg = trajectory_to_msg(random_positions(78), JOINT_NAMES, 0.02, MT)
    assert len(msg.points) == 78
    for t, point in enumerate(msg.points):
        expected_ns = (t + 1) * 20_000_000
        assert duration_to_ns(point.time_from_start) == expected_ns
        assert point.time_from_start.sec == expected_ns // 1_000_000_000
        assert point.time_from_start.nanosec == expected_ns % 1_000_000_000
    last = msg.points[-1].time_from_start
    assert (last.sec, last.nanosec) == (1, 560_000_000)
    spec = TrajectorySpec(horizon=78, control_dt_s=0.02, start_rad=np.zeros(7))
    times_ns = [duration_to_ns(p.time_from_start) for p in msg.points]
    np.testing.assert_allclose(
        np.array(times_ns) / 1e9, spec.time_from_start_s(), rtol=0, atol=1e-12
    )
    _, dt = trajectory_from_msg(msg, JOINT_NAMES)
    assert dt == 0.02


def test_trajectory_round_trip_through_cdr():
    positions = random_positions(69, seed=1)
    msg = trajectory_to_msg(
        positions, JOINT_NAMES, 0.02, MT, stamp_ns=1_700_000_000_000_000_123, frame_id="base"
    )
    back = cdr_round_trip(msg, JT)
    assert back.header.frame_id == "base"
    assert stamp_to_ns(back.header.stamp) == 1_700_000_000_000_000_123
    assert list(back.joint_names) == list(JOINT_NAMES)
    for point in back.points:
        assert len(point.velocities) == 0
        assert len(point.accelerations) == 0
        assert len(point.effort) == 0
    decoded, dt = trajectory_from_msg(back, JOINT_NAMES)
    assert decoded.dtype == np.float64
    assert np.array_equal(decoded, positions)
    assert dt == 0.02
    # float32 data survives exactly
    positions32 = positions.astype(np.float32)
    decoded32, _ = trajectory_from_msg(
        cdr_round_trip(trajectory_to_msg(positions32, JOINT_NAMES, 0.02, MT), JT), JOINT_NAMES
    )
    assert np.array_equal(decoded32.astype(np.float32), positions32)


def test_trajectory_velocities_optional():
    positions = random_positions(10) * 0.01
    spec = TrajectorySpec(horizon=10, control_dt_s=0.02, start_rad=np.zeros(7))
    velocities = joint_velocities(positions, spec)
    msg = cdr_round_trip(
        trajectory_to_msg(positions, JOINT_NAMES, 0.02, MT, velocities=velocities), JT
    )
    assert np.array_equal(np.stack([p.velocities for p in msg.points]), velocities)
    with pytest.raises(MessageConversionError, match=r"velocities has shape \(9, 7\)"):
        trajectory_to_msg(positions, JOINT_NAMES, 0.02, MT, velocities=velocities[:9])


def test_trajectory_joint_reordering():
    positions = random_positions(5)
    perm = [3, 0, 6, 1, 5, 2, 4]
    names = [JOINT_NAMES[i] for i in perm]
    msg = trajectory_to_msg(positions[:, perm], names, 0.05, MT)
    decoded, dt = trajectory_from_msg(cdr_round_trip(msg, JT), JOINT_NAMES)
    assert np.array_equal(decoded, positions)
    assert dt == 0.05


def test_trajectory_to_msg_errors():
    with pytest.raises(MessageConversionError, match=r"positions_rad has shape \(5, 6\)"):
        trajectory_to_msg(np.zeros((5, 6)), JOINT_NAMES, 0.02, MT)
    with pytest.raises(MessageConversionError, match=r"positions_rad\[2, 4\] is nan"):
        bad = np.zeros((5, 7))
        bad[2, 4] = np.nan
        trajectory_to_msg(bad, JOINT_NAMES, 0.02, MT)
    with pytest.raises(MessageConversionError, match="control_dt_s is 0.0 s"):
        trajectory_to_msg(np.zeros((5, 7)), JOINT_NAMES, 0.0, MT)
    with pytest.raises(MessageConversionError, match="duplicate names"):
        trajectory_to_msg(np.zeros((5, 7)), ["a"] * 7, 0.02, MT)
    with pytest.raises(MessageConversionError, match=r"expected \(T, 7\) with T >= 1"):
        trajectory_to_msg(np.zeros((0, 7)), JOINT_NAMES, 0.02, MT)


def _msg(positions, names=JOINT_NAMES, times_ns=None):
    msg = trajectory_to_msg(positions, JOINT_NAMES, 0.02, MT)
    msg.joint_names = list(names)
    if times_ns is not None:
        for point, ns in zip(msg.points, times_ns, strict=True):
            point.time_from_start = ns_to_duration(ns, MT.Duration)
    return msg


def test_trajectory_from_msg_unknown_and_missing_names():
    names = list(JOINT_NAMES[:6]) + ["gripper"]
    with pytest.raises(MessageConversionError) as err:
        trajectory_from_msg(_msg(np.zeros((3, 7)), names), JOINT_NAMES)
    text = str(err.value)
    assert "JointTrajectory.joint_names" in text
    assert "unknown joint names ['gripper']" in text
    assert "missing joint names ['panda_joint7']" in text

    msg = _msg(np.zeros((3, 7)))
    msg.joint_names = list(JOINT_NAMES[:6])
    with pytest.raises(MessageConversionError, match=r"missing joint names \['panda_joint7'\]"):
        trajectory_from_msg(msg, JOINT_NAMES)

    with pytest.raises(MessageConversionError, match="duplicate names"):
        trajectory_from_msg(
            _msg(np.zeros((3, 7)), list(JOINT_NAMES[:6]) + ["panda_joint1"]), JOINT_NAMES
        )


def test_trajectory_from_msg_wrong_point_length():
    msg = _msg(np.zeros((4, 7)))
    msg.points[2].positions = np.zeros(6)
    with pytest.raises(
        MessageConversionError,
        match=r"JointTrajectory.points\[2\].positions has length 6, expected 7",
    ):
        trajectory_from_msg(msg, JOINT_NAMES)


def test_trajectory_from_msg_non_uniform_time():
    times = [20_000_000, 40_000_000, 70_000_000, 80_000_000]
    with pytest.raises(MessageConversionError) as err:
        trajectory_from_msg(_msg(np.zeros((4, 7)), times_ns=times), JOINT_NAMES)
    text = str(err.value)
    assert "points[2].time_from_start is 0.070000000 s" in text
    assert "expected 0.060000000 s" in text
    assert "non-uniform" in text


def test_trajectory_from_msg_non_increasing_time():
    times = [20_000_000, 40_000_000, 40_000_000]
    with pytest.raises(MessageConversionError) as err:
        trajectory_from_msg(_msg(np.zeros((3, 7)), times_ns=times), JOINT_NAMES)
    text = str(err.value)
    assert "points[2].time_from_start (0.040000000 s) is not after" in text
    assert "points[1].time_from_start (0.040000000 s)" in text
    with pytest.raises(
        MessageConversionError, match=r"points\[0\].time_from_start is 0.000000000 s"
    ):
        trajectory_from_msg(_msg(np.zeros((2, 7)), times_ns=[0, 20_000_000]), JOINT_NAMES)


def test_trajectory_from_msg_empty_and_nan():
    msg = _msg(np.zeros((2, 7)))
    msg.points = []
    with pytest.raises(MessageConversionError, match="JointTrajectory.points is empty"):
        trajectory_from_msg(msg, JOINT_NAMES)
    msg = _msg(np.zeros((3, 7)))
    msg.points[1].positions = np.array([0, 0, 0, np.nan, 0, 0, 0], dtype=np.float64)
    with pytest.raises(
        MessageConversionError,
        match=r"JointTrajectory.points\[1\].positions\[3\] \(panda_joint4\) is nan",
    ):
        trajectory_from_msg(msg, JOINT_NAMES)


# --------------------------------------------------------------------------- joint states


def test_joint_state_round_trip_and_reordering():
    rng = np.random.default_rng(3)
    q, dq, tau = rng.normal(size=(3, 7))
    msg = joint_state_to_msg(q, dq, JOINT_NAMES, 1_234_567_890_123, MT, effort=tau, frame_id="f")
    back = cdr_round_trip(msg, JS)
    stamp, q2, dq2 = joint_state_from_msg(back, JOINT_NAMES)
    assert stamp == 1_234_567_890_123
    assert np.array_equal(q2, q) and np.array_equal(dq2, dq)
    assert np.array_equal(back.effort, tau)
    assert back.header.frame_id == "f"

    perm = [6, 5, 4, 3, 2, 1, 0]
    msg = joint_state_to_msg(q[perm], None, [JOINT_NAMES[i] for i in perm], 7, MT)
    stamp, q3, dq3 = joint_state_from_msg(cdr_round_trip(msg, JS), JOINT_NAMES)
    assert stamp == 7 and dq3 is None
    assert np.array_equal(q3, q)


def test_joint_state_errors():
    q = np.zeros(7)
    with pytest.raises(
        MessageConversionError, match=r"positions has shape \(6,\), expected \(7,\)"
    ):
        joint_state_to_msg(np.zeros(6), None, JOINT_NAMES, 0, MT)
    with pytest.raises(MessageConversionError, match=r"velocities\[1\] is inf"):
        joint_state_to_msg(q, np.array([0, np.inf, 0, 0, 0, 0, 0]), JOINT_NAMES, 0, MT)

    msg = joint_state_to_msg(q, q, JOINT_NAMES, 0, MT)
    msg.name = list(JOINT_NAMES[:6]) + ["finger"]
    with pytest.raises(MessageConversionError) as err:
        joint_state_from_msg(msg, JOINT_NAMES)
    assert "JointState.name" in str(err.value) and "['finger']" in str(err.value)

    msg = joint_state_to_msg(q, q, JOINT_NAMES, 0, MT)
    msg.position = np.zeros(8)
    with pytest.raises(
        MessageConversionError, match="JointState.position has length 8, expected 7"
    ):
        joint_state_from_msg(msg, JOINT_NAMES)

    msg = joint_state_to_msg(q, q, JOINT_NAMES, 0, MT)
    msg.velocity = np.zeros(3)
    with pytest.raises(
        MessageConversionError, match="JointState.velocity has length 3, expected 0 or 7"
    ):
        joint_state_from_msg(msg, JOINT_NAMES)

    msg = joint_state_to_msg(q, q, JOINT_NAMES, 0, MT)
    msg.position = np.array([0, 0, 0, 0, np.nan, 0, 0], dtype=np.float64)
    with pytest.raises(
        MessageConversionError, match=r"JointState.position\[4\] \(panda_joint5\) is nan"
    ):
        joint_state_from_msg(msg, JOINT_NAMES)


# --------------------------------------------------------------------------- goals


def test_goal_round_trip():
    msg = cdr_round_trip(goal_to_msg(np.array([0.5, -0.25], np.float32), 42, MT), PS)
    assert msg.header.frame_id == "world"
    assert stamp_to_ns(msg.header.stamp) == 42
    assert np.array_equal(goal_from_msg(msg), [0.5, -0.25, 0.0])
    msg = cdr_round_trip(goal_to_msg([0.1, 0.2, 0.3], 0, MT, frame_id="table"), PS)
    assert msg.header.frame_id == "table"
    assert np.array_equal(goal_from_msg(msg), [0.1, 0.2, 0.3])


def test_goal_errors():
    with pytest.raises(MessageConversionError, match=r"goal has shape \(4,\)"):
        goal_to_msg(np.zeros(4), 0, MT)
    with pytest.raises(MessageConversionError, match=r"goal\[1\] is nan"):
        goal_to_msg([0.0, np.nan], 0, MT)
    msg = goal_to_msg([0.0, 0.0], 0, MT)
    msg.point.y = float("inf")
    with pytest.raises(MessageConversionError, match="PointStamped.point.y is inf"):
        goal_from_msg(msg)


def test_message_types_cover_typestore():
    for name in (
        "Time",
        "Duration",
        "Header",
        "JointTrajectory",
        "JointTrajectoryPoint",
        "JointState",
        "Point",
        "PointStamped",
    ):
        assert getattr(MT, name).__msgtype__.endswith("/" + name)


# --------------------------------------------------------------------------- rclpy-like classes


def rclpy_like_types() -> MessageTypes:
    """Classes that check their keyword arguments the way rclpy's generated setters do
    (int fields want ``int``, float fields ``float``, ``float64[]`` fields ``array.array('d')``:
    a numpy array fails rclpy's assertion), with the Jazzy field lists of the typestore."""
    registry: dict[str, type] = {}

    def check(where: str, kind: str, value) -> None:
        if kind == "int":
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif kind == "float":
            ok = isinstance(value, float)
        elif kind in ("str", "bool"):
            ok = type(value).__name__ == kind
        elif kind == "list[str]":
            ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        elif kind.startswith("np.ndarray"):
            code = "d" if "float64" in kind else "I"
            ok = isinstance(value, array.array) and value.typecode == code
        elif kind.startswith("list["):
            ok = isinstance(value, list) and all(isinstance(v, registry[kind[5:-1]]) for v in value)
        else:
            ok = isinstance(value, registry[kind])
        assert ok, f"{where}: rclpy would reject {type(value).__name__} (field type {kind})"

    def make(typename: str) -> type:
        fields = {
            f.name: f.type
            for f in dataclasses.fields(TS.types[typename])
            if f.name != "__msgtype__"
        }

        class Msg:
            def __init__(self, **kwargs):
                assert set(kwargs) == set(fields), (typename, set(fields) ^ set(kwargs))
                for name, value in kwargs.items():
                    check(f"{typename}.{name}", fields[name], value)
                    setattr(self, name, value)

        registry[typename.replace("/", "__")] = Msg
        return Msg

    names = {
        "Time": "builtin_interfaces/msg/Time",
        "Duration": "builtin_interfaces/msg/Duration",
        "Header": "std_msgs/msg/Header",
        "Point": "geometry_msgs/msg/Point",
        "PointStamped": "geometry_msgs/msg/PointStamped",
        "JointTrajectoryPoint": "trajectory_msgs/msg/JointTrajectoryPoint",
        "JointTrajectory": "trajectory_msgs/msg/JointTrajectory",
        "JointState": "sensor_msgs/msg/JointState",
    }
    classes = {key: make(typename) for key, typename in names.items()}
    return MessageTypes(
        **classes,
        float64_sequence=array_float64_sequence,
        uint32_sequence=array_uint32_sequence,
    )


def test_rclpy_like_classes_accept_the_conversions():
    rclpy_types = rclpy_like_types()
    positions = random_positions(12, seed=5)
    msg = trajectory_to_msg(
        positions, JOINT_NAMES, 0.02, rclpy_types, stamp_ns=np.int64(5), velocities=positions
    )
    assert isinstance(msg.points[0].positions, array.array)
    decoded, dt = trajectory_from_msg(msg, JOINT_NAMES)
    assert np.array_equal(decoded, positions) and dt == 0.02

    q = np.arange(7, dtype=np.float32) / 10
    msg = joint_state_to_msg(q, q, JOINT_NAMES, 17, rclpy_types, effort=q)
    stamp, q2, dq2 = joint_state_from_msg(msg, JOINT_NAMES)
    assert stamp == 17 and np.array_equal(q2, q) and np.array_equal(dq2, q)

    msg = goal_to_msg(np.array([0.25, 0.5], np.float32), 3, rclpy_types)
    assert np.array_equal(goal_from_msg(msg), [0.25, 0.5, 0.0])


def test_rclpy_like_classes_reject_numpy_sequences():
    """The check above is meaningful: numpy arrays (what rosbags wants) are refused."""
    strict = dataclasses.replace(rclpy_like_types(), float64_sequence=lambda v: np.asarray(v))
    with pytest.raises(AssertionError, match="rclpy would reject ndarray"):
        joint_state_to_msg(np.zeros(7), None, JOINT_NAMES, 0, strict)


def test_sequence_converters_exact():
    values = np.random.default_rng(0).normal(size=9)
    assert np.array_equal(np.asarray(array_float64_sequence(values)), values)
    assert list(array_uint32_sequence(np.array([0, 3, 2**32 - 1]))) == [0, 3, 2**32 - 1]
