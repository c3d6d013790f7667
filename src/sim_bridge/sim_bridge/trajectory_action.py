"""FollowJointTrajectory goals on the simulated arm, handled the way ros2_controllers'
joint_trajectory_controller (JTC, ROS 2 Jazzy) handles them, so that a client moves from the
simulator to a real arm without changes. No ROS import: the node converts messages and calls
this module.

**Checks** (:func:`check_goal`, in JTC's order). A goal that fails one is rejected; the
sim_bridge node, like JTC, REJECTs it in its goal callback (a rejected goal has no result, so
the reason is logged and published in the episode outcome), or, with its parameter
``reject_invalid_goals`` false, accepts it and aborts it with the code and text below.

============================================================== =========================
the goal must have                                             otherwise
============================================================== =========================
all 7 arm joints, each once, in any order (JTC: no partial     ``INVALID_JOINTS``
goals by default)
at least one point                                             ``INVALID_GOAL``
zero (or no) velocities at the last point (JTC default)        ``INVALID_GOAL``
header stamp 0 (start now) or ``stamp + last time_from_start`` ``OLD_HEADER_TIMESTAMP``
not in the past
``time_from_start`` >= 0 and strictly increasing               ``INVALID_GOAL``
per point: one position per joint, velocities/accelerations    ``INVALID_GOAL``
empty or one per joint, no effort (position control)
no multi-DOF trajectory (JTC ignores it; refused here, so that ``INVALID_GOAL``
nothing is silently not executed)
finite positions                                               ``INVALID_GOAL``
a duration of at most the task's episode (horizon x control    ``INVALID_GOAL``
period)
commands within the joint position and velocity limits         ``INVALID_GOAL``, the text
(:func:`sim_bridge.trajectory.check_trajectories`)             names step, joint, bound
============================================================== =========================

**Timing** (a decision of this module). The simulator runs the task's episode: ``horizon``
commands, one every ``control_dt_s``. A goal whose points lie at ``(t + 1) * control_dt_s``
for ``t < horizon`` (what the trajectory generator sends) is executed unchanged. Any other
timing is resampled at the control period by linear interpolation of the positions (JTC's
interpolation of position-only points), starting from the task's start configuration at time
0 (JTC interpolates from the current state to the first point; a point at time 0 replaces
the start) and holding the last point after its time (JTC holds the last point).
Velocities and accelerations of the points are checked for size but not used.

**Execution** (:class:`GoalExecution`), per control step: feedback with the desired, actual
and error (desired - actual) positions and velocities. Before the last point the path
tolerances are checked: a violation aborts with ``PATH_TOLERANCE_VIOLATED``. From the last
point on the goal tolerances are checked: inside them the goal succeeds; still outside
``goal_time`` after the last point it aborts with ``GOAL_TOLERANCE_VIOLATED``. With
``goal_time`` 0 JTC waits forever; the simulated episode ends, so the check gives up at the
end of the episode. A cancel, an abort or a preemption by a new goal (``INVALID_GOAL``, as
JTC) makes the arm hold from the next control step on. JTC holds the measured position; here
the last command is held, which keeps the set-point continuous (the difference is the
tracking error at that moment).

**Tolerances** follow control_msgs/JointTolerance: 0 keeps the default of
:class:`ControllerConstraints`, -1 erases it (not checked), a positive value replaces it.
Like JTC, a tolerance for an unknown joint or with another negative value makes the whole goal
use the defaults (with a warning).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import numpy as np

from sim_bridge.ros_conversions import (
    NS_PER_S,
    MessageConversionError,
    MessageTypes,
    duration_to_ns,
    ns_to_duration,
    ns_to_stamp,
    seconds_to_ns,
    stamp_to_ns,
)
from sim_bridge.trajectory import TrajectorySpec, check_trajectories

#: tolerance (ns) within which a point's time counts as lying on the control grid
GRID_TOLERANCE_NS = 1000
#: JointTolerance value that erases a default tolerance
ERASE_TOLERANCE = -1.0
#: velocity magnitude (rad/s) below which a last point counts as at rest (float epsilon, JTC)
ZERO_VELOCITY = float(np.finfo(np.float32).eps)


class ResultCode(IntEnum):
    """``error_code`` of control_msgs/FollowJointTrajectory results."""

    SUCCESSFUL = 0
    INVALID_GOAL = -1
    INVALID_JOINTS = -2
    OLD_HEADER_TIMESTAMP = -3
    PATH_TOLERANCE_VIOLATED = -4
    GOAL_TOLERANCE_VIOLATED = -5


def result_code_name(code: int) -> str:
    """``SUCCESSFUL``, ``INVALID_GOAL``, ... for a result's ``error_code`` (the number if
    unknown)."""
    try:
        return ResultCode(int(code)).name
    except ValueError:
        return str(int(code))


@dataclass(frozen=True)
class ControllerConstraints:
    """Default tolerances of the simulated controller (JTC's ``constraints`` parameters).

    :param path_position_rad: allowed |desired - actual| position while moving (0 = not
        checked), one value for all joints or one per joint.
    :param goal_position_rad: allowed position error at the goal (0 = not checked).
    :param stopped_velocity_rad_s: allowed velocity error at the goal (0 = not checked).
    :param goal_time_s: time after the last point to get inside the goal tolerances (0 = until
        the end of the episode).
    """

    path_position_rad: float | Sequence[float] = 0.0
    goal_position_rad: float | Sequence[float] = 0.0
    stopped_velocity_rad_s: float = 0.01
    goal_time_s: float = 0.0


@dataclass(frozen=True)
class Tolerances:
    """Active tolerances of one goal, arrays (J,) in the arm's joint order; 0 = not checked."""

    path_position: np.ndarray
    path_velocity: np.ndarray
    path_acceleration: np.ndarray
    goal_position: np.ndarray
    goal_velocity: np.ndarray
    goal_acceleration: np.ndarray
    goal_time_s: float

    @classmethod
    def defaults(cls, constraints: ControllerConstraints, n_joints: int) -> Tolerances:
        def per_joint(value: Any, name: str) -> np.ndarray:
            array = np.broadcast_to(np.asarray(value, dtype=np.float64), (n_joints,)).copy()
            if not np.isfinite(array).all() or (array < 0).any():
                raise ValueError(f"ControllerConstraints.{name} must be finite and >= 0")
            return array

        zeros = np.zeros(n_joints)
        if not math.isfinite(constraints.goal_time_s) or constraints.goal_time_s < 0:
            raise ValueError("ControllerConstraints.goal_time_s must be finite and >= 0")
        return cls(
            path_position=per_joint(constraints.path_position_rad, "path_position_rad"),
            path_velocity=zeros.copy(),
            path_acceleration=zeros.copy(),
            goal_position=per_joint(constraints.goal_position_rad, "goal_position_rad"),
            goal_velocity=per_joint(constraints.stopped_velocity_rad_s, "stopped_velocity_rad_s"),
            goal_acceleration=zeros.copy(),
            goal_time_s=float(constraints.goal_time_s),
        )


def _resolve(default: float, requested: float) -> float:
    """JointTolerance semantics: > 0 replaces, -1 erases (0 = unchecked), 0 keeps the default."""
    if requested > 0.0:
        return float(requested)
    if abs(requested - ERASE_TOLERANCE) < ZERO_VELOCITY:
        return 0.0
    if requested < 0.0 or not math.isfinite(requested):
        raise ValueError(f"illegal tolerance {requested}")
    return float(default)


def resolve_tolerances(
    goal: Any, joint_names: Sequence[str], defaults: Tolerances
) -> tuple[Tolerances, list[str]]:
    """The tolerances of a FollowJointTrajectory goal over ``defaults`` and the warnings.

    Like JTC, an unknown joint or an illegal value in ``path_tolerance`` / ``goal_tolerance``
    or ``goal_time_tolerance`` makes the goal use ``defaults`` entirely (one warning).
    """
    names = list(joint_names)
    try:
        goal_time = _resolve(defaults.goal_time_s, duration_to_ns(goal.goal_time_tolerance) / 1e9)
    except (ValueError, MessageConversionError) as err:
        return defaults, [f"goal_time_tolerance: {err}; using the default tolerances"]
    arrays = {
        key: getattr(defaults, key).copy()
        for key in (
            "path_position",
            "path_velocity",
            "path_acceleration",
            "goal_position",
            "goal_velocity",
            "goal_acceleration",
        )
    }
    for field_name, prefix in (("path_tolerance", "path"), ("goal_tolerance", "goal")):
        for tolerance in getattr(goal, field_name, None) or []:
            name = str(tolerance.name)
            if name not in names:
                return defaults, [
                    f"{field_name} names the unknown joint {name!r}; using the default tolerances"
                ]
            j = names.index(name)
            for quantity in ("position", "velocity", "acceleration"):
                key = f"{prefix}_{quantity}"
                try:
                    arrays[key][j] = _resolve(arrays[key][j], float(getattr(tolerance, quantity)))
                except ValueError as err:
                    return defaults, [
                        f"{field_name} of {name}: {quantity}: {err}; using the default tolerances"
                    ]
    return Tolerances(goal_time_s=goal_time, **arrays), []


# --------------------------------------------------------------------------- goal checks


@dataclass(frozen=True)
class GoalRejection:
    """Why a goal is not executed: a FollowJointTrajectory result code and text."""

    code: ResultCode
    error_string: str


@dataclass(frozen=True)
class AcceptedGoal:
    """A goal ready to execute.

    :param commands: (T, J) joint position commands (rad) in the arm's joint order, one per
        control step of the task (resampled if the goal was not on the control grid).
    :param last_point_step: control step at whose end the goal's last point is due; goal
        tolerances are checked from there on.
    :param start_stamp_ns: the goal's header stamp (0 = start when received).
    :param resampled: whether the goal's points were resampled to the control grid.
    :param warnings: things the node should log (tolerance fallbacks).
    """

    commands: np.ndarray
    tolerances: Tolerances
    last_point_step: int
    start_stamp_ns: int
    resampled: bool
    warnings: tuple[str, ...] = ()

    def start_delay_ns(self, now_ns: int) -> int:
        """How long to wait before starting (a header stamp in the future), >= 0."""
        return max(0, int(self.start_stamp_ns) - int(now_ns)) if self.start_stamp_ns else 0


def _sizes(values: Any) -> int:
    return 0 if values is None else len(values)


def _points_times(points: Sequence[Any]) -> list[int]:
    return [duration_to_ns(p.time_from_start) for p in points]


def check_goal(
    goal: Any,
    spec: TrajectorySpec,
    now_ns: int,
    constraints: ControllerConstraints | None = None,
    velocity_margin: float = 1.0,
) -> AcceptedGoal | GoalRejection:
    """Check a control_msgs/FollowJointTrajectory goal (duck-typed) against the arm and the
    task's episode; see the module docstring for the rules.

    :param spec: the task's trajectory specification (horizon, control period, start
        configuration, joint limits).
    :param now_ns: the node's current time (for the header stamp check).
    :param velocity_margin: fraction of the joint velocity limits allowed.
    """
    constraints = constraints or ControllerConstraints()
    trajectory = goal.trajectory
    arm = tuple(spec.joint_names)
    n_joints = len(arm)
    names = [str(n) for n in trajectory.joint_names]

    # Joints: every arm joint exactly once.
    if not names:
        return GoalRejection(ResultCode.INVALID_JOINTS, "trajectory.joint_names is empty")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    unknown = [n for n in names if n not in arm]
    missing = [n for n in arm if n not in names]
    if duplicates or unknown or missing:
        parts = []
        if duplicates:
            parts.append(f"duplicate joints {duplicates}")
        if unknown:
            parts.append(f"unknown joints {unknown}")
        if missing:
            parts.append(f"missing joints {missing}")
        return GoalRejection(
            ResultCode.INVALID_JOINTS,
            f"trajectory.joint_names has {' and '.join(parts)}; expected all of {list(arm)} "
            "in any order (partial goals are not supported)",
        )
    order = np.array([names.index(n) for n in arm], dtype=np.intp)

    points = list(trajectory.points)
    if not points:
        return GoalRejection(ResultCode.INVALID_GOAL, "trajectory has no points")

    last_velocities = np.asarray(
        points[-1].velocities if points[-1].velocities is not None else [], np.float64
    )
    moving = np.flatnonzero(np.abs(last_velocities) > ZERO_VELOCITY)
    if last_velocities.size == n_joints and moving.size:
        j = int(moving[0])
        return GoalRejection(
            ResultCode.INVALID_GOAL,
            f"the last point has velocity {last_velocities[j]:.6g} rad/s for {names[j]}; a "
            "trajectory must end at rest",
        )

    try:
        times = _points_times(points)
        start_ns = stamp_to_ns(trajectory.header.stamp)
    except MessageConversionError as err:
        return GoalRejection(ResultCode.INVALID_GOAL, str(err))
    if start_ns != 0 and start_ns + times[-1] < int(now_ns):
        return GoalRejection(
            ResultCode.OLD_HEADER_TIMESTAMP,
            f"the trajectory starts at {start_ns / NS_PER_S:.9f} s and ends at "
            f"{(start_ns + times[-1]) / NS_PER_S:.9f} s, before now ({now_ns / NS_PER_S:.9f} s)",
        )
    if times[0] < 0:
        return GoalRejection(
            ResultCode.INVALID_GOAL,
            f"points[0].time_from_start is {times[0] / NS_PER_S:.9f} s, must be >= 0",
        )
    for i in range(1, len(times)):
        if times[i] <= times[i - 1]:
            return GoalRejection(
                ResultCode.INVALID_GOAL,
                f"time_from_start is not strictly increasing: points[{i - 1}] at "
                f"{times[i - 1] / NS_PER_S:.9f} s, points[{i}] at {times[i] / NS_PER_S:.9f} s",
            )

    positions = np.empty((len(points), n_joints), dtype=np.float64)
    for i, point in enumerate(points):
        values = np.asarray(point.positions if point.positions is not None else [], np.float64)
        if values.shape != (n_joints,):
            return GoalRejection(
                ResultCode.INVALID_GOAL,
                f"points[{i}].positions has {values.size} values, expected {n_joints} "
                "(one per joint name)",
            )
        for field_name in ("velocities", "accelerations"):
            size = _sizes(getattr(point, field_name))
            if size not in (0, n_joints):
                return GoalRejection(
                    ResultCode.INVALID_GOAL,
                    f"points[{i}].{field_name} has {size} values, expected 0 or {n_joints}",
                )
        if _sizes(point.effort):
            return GoalRejection(
                ResultCode.INVALID_GOAL,
                f"points[{i}].effort is set; the arm is position-controlled (leave effort empty)",
            )
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            j = int(bad[0])
            return GoalRejection(
                ResultCode.INVALID_GOAL,
                f"points[{i}].positions[{j}] ({names[j]}) is {values[j]}, must be finite",
            )
        positions[i] = values[order]

    multi = getattr(goal, "multi_dof_trajectory", None)
    if multi is not None and (list(multi.joint_names) or list(multi.points)):
        return GoalRejection(
            ResultCode.INVALID_GOAL,
            "multi_dof_trajectory is not supported by this arm (leave it empty)",
        )

    dt_ns = seconds_to_ns(spec.control_dt_s)
    episode_ns = spec.horizon * dt_ns
    if times[-1] > episode_ns + GRID_TOLERANCE_NS:
        return GoalRejection(
            ResultCode.INVALID_GOAL,
            f"the trajectory lasts {times[-1] / NS_PER_S:.6f} s, longer than the task's episode "
            f"of {spec.horizon} commands x {spec.control_dt_s} s = {episode_ns / NS_PER_S:.6f} s",
        )
    on_grid = len(times) == spec.horizon and all(
        abs(t - (i + 1) * dt_ns) <= GRID_TOLERANCE_NS for i, t in enumerate(times)
    )
    if on_grid:
        commands = positions
        last_point_step = spec.horizon - 1
    else:
        commands = resample_commands(positions, np.asarray(times), spec)
        last_point_step = min(spec.horizon - 1, max(0, math.ceil(times[-1] / dt_ns - 1e-9) - 1))

    reason = check_trajectories(commands, spec, velocity_margin)[0]
    if reason is not None:
        reason = reason.removeprefix("episode 0: ")
        where = " (after resampling to the control period)" if not on_grid else ""
        return GoalRejection(
            ResultCode.INVALID_GOAL, f"the trajectory violates the arm's limits{where}: {reason}"
        )

    defaults = Tolerances.defaults(constraints, n_joints)
    tolerances, warnings = resolve_tolerances(goal, arm, defaults)
    return AcceptedGoal(
        commands=commands,
        tolerances=tolerances,
        last_point_step=int(last_point_step),
        start_stamp_ns=int(start_ns),
        resampled=not on_grid,
        warnings=tuple(warnings),
    )


def check_workspace(
    checked: AcceptedGoal | GoalRejection, task: Any
) -> AcceptedGoal | GoalRejection:
    """A goal :func:`check_goal` accepted, refused (INVALID_GOAL) when its commands would
    drive the arm into the task's scene (:meth:`~sim_bridge.tasks.base.Task.workspace_violations`:
    e.g. the hockey blade commanded into the table); a rejection is passed on unchanged."""
    if isinstance(checked, GoalRejection):
        return checked
    why = task.workspace_violations(checked.commands[None])[0]
    if why is None:
        return checked
    return GoalRejection(ResultCode.INVALID_GOAL, f"the trajectory leaves the workspace: {why}")


def resample_commands(
    positions: np.ndarray, times_ns: np.ndarray, spec: TrajectorySpec
) -> np.ndarray:
    """Commands (T, J) at ``(t + 1) * control_dt_s`` by linear interpolation of the points
    ``positions`` (P, J) at ``times_ns`` (P,), from the start configuration at time 0 (unless a
    point is at time 0), holding the last point after its time."""
    dt_ns = seconds_to_ns(spec.control_dt_s)
    knots_t = np.asarray(times_ns, dtype=np.float64)
    knots_q = np.asarray(positions, dtype=np.float64)
    if knots_t[0] > 0:
        knots_t = np.concatenate([[0.0], knots_t])
        knots_q = np.concatenate([spec.start_rad[None], knots_q])
    samples = (np.arange(spec.horizon) + 1.0) * dt_ns
    return np.stack(
        [np.interp(samples, knots_t, knots_q[:, j]) for j in range(knots_q.shape[1])], axis=1
    )


# --------------------------------------------------------------------------- execution


class GoalState(IntEnum):
    RUNNING = 0
    SUCCEEDED = 1
    ABORTED = 2
    CANCELED = 3


@dataclass(frozen=True)
class StepFeedback:
    """State of one control step: desired, actual and error (desired - actual), (J,) each.

    ``time_from_start_ns`` is the end of the step, ``(step + 1) * control_dt``.
    """

    step: int
    time_from_start_ns: int
    desired_positions: np.ndarray
    desired_velocities: np.ndarray
    actual_positions: np.ndarray
    actual_velocities: np.ndarray

    @property
    def error_positions(self) -> np.ndarray:
        return self.desired_positions - self.actual_positions

    @property
    def error_velocities(self) -> np.ndarray:
        return self.desired_velocities - self.actual_velocities


@dataclass
class GoalExecution:
    """Bookkeeping of one accepted goal over a simulated episode of ``n_steps`` control steps
    (the trajectory, then the task's settling time).

    Call :meth:`observe` with the measured state of every step; it checks the tolerances and
    may end the goal. :meth:`stop` (cancel, preemption, safety stop) ends it and makes the
    arm hold the last command from the next step on; :attr:`commands` then holds the
    commands to simulate.
    """

    goal: AcceptedGoal
    spec: TrajectorySpec
    n_steps: int
    state: GoalState = GoalState.RUNNING
    code: ResultCode = ResultCode.SUCCESSFUL
    error_string: str = ""
    #: control step after which the arm holds (None: the whole trajectory runs)
    hold_after_step: int | None = None
    #: incremented whenever :attr:`commands` change (the episode must be simulated again)
    revision: int = 0
    commands: np.ndarray = field(init=False)
    _dt_ns: int = field(init=False)

    def __post_init__(self) -> None:
        self.commands = np.array(self.goal.commands, dtype=np.float64, copy=True)
        self._dt_ns = seconds_to_ns(self.spec.control_dt_s)
        if self.n_steps < self.spec.horizon:
            raise ValueError(f"n_steps {self.n_steps} is below the horizon {self.spec.horizon}")

    @property
    def running(self) -> bool:
        return self.state == GoalState.RUNNING

    def desired(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """Desired position and velocity at the end of control step ``step``."""
        horizon = self.spec.horizon
        if step < horizon:
            previous = self.spec.start_rad if step == 0 else self.commands[step - 1]
            velocity = (self.commands[step] - previous) / self.spec.control_dt_s
            return self.commands[step].copy(), velocity
        return self.commands[-1].copy(), np.zeros(self.commands.shape[1])

    def observe(
        self, step: int, actual_positions: np.ndarray, actual_velocities: np.ndarray
    ) -> StepFeedback:
        """Feedback of ``step`` from the measured state; checks the tolerances while running."""
        desired_q, desired_v = self.desired(step)
        feedback = StepFeedback(
            step=int(step),
            time_from_start_ns=(int(step) + 1) * self._dt_ns,
            desired_positions=desired_q,
            desired_velocities=desired_v,
            actual_positions=np.asarray(actual_positions, dtype=np.float64).copy(),
            actual_velocities=np.asarray(actual_velocities, dtype=np.float64).copy(),
        )
        if self.running:
            self._check(feedback)
        return feedback

    def _violations(self, feedback: StepFeedback, kind: str) -> list[str]:
        tol = self.goal.tolerances
        names = self.spec.joint_names
        out = []
        for quantity, error in (
            ("position", feedback.error_positions),
            ("velocity", feedback.error_velocities),
        ):
            limit = getattr(tol, f"{kind}_{quantity}")
            over = np.flatnonzero((limit > 0) & (np.abs(error) > limit))
            out += [
                f"{names[j]} {quantity} error {error[j]:+.4f} beyond {limit[j]:.4f}" for j in over
            ]
        return out

    def _check(self, feedback: StepFeedback) -> None:
        step = feedback.step
        last = self.goal.last_point_step
        if step < last or step == 0:
            violations = self._violations(feedback, "path")
            if violations:
                self.stop(
                    step,
                    GoalState.ABORTED,
                    ResultCode.PATH_TOLERANCE_VIOLATED,
                    f"path tolerance violated at step {step} "
                    f"({feedback.time_from_start_ns / NS_PER_S:.3f} s): " + "; ".join(violations),
                )
                return
        if step < last:
            return
        violations = self._violations(feedback, "goal")
        if not violations:
            self.state = GoalState.SUCCEEDED
            self.code = ResultCode.SUCCESSFUL
            self.error_string = f"goal reached at step {step}"
            return
        late_s = (step - last) * self._dt_ns / NS_PER_S
        goal_time = self.goal.tolerances.goal_time_s
        if (goal_time > 0 and late_s > goal_time) or step == self.n_steps - 1:
            within = f"within {goal_time} s" if goal_time > 0 else "by the end of the episode"
            self.stop(
                step,
                GoalState.ABORTED,
                ResultCode.GOAL_TOLERANCE_VIOLATED,
                f"goal tolerance not reached {within} ({late_s:.3f} s after the last point): "
                + "; ".join(violations),
            )

    def stop(
        self,
        step: int,
        state: GoalState = GoalState.CANCELED,
        code: ResultCode = ResultCode.SUCCESSFUL,
        error_string: str = "canceled: holding the last command",
    ) -> bool:
        """End the goal after control step ``step`` (the last step whose state was
        observed; -1 before the first): the arm holds the command of ``step`` (the start
        configuration for -1) from then on.

        Returns True when the commands changed (the rest of the episode must be simulated
        again with :attr:`commands`).
        """
        if not self.running:
            return False
        self.state, self.code, self.error_string = state, ResultCode(code), error_string
        horizon = self.spec.horizon
        if step >= horizon - 1:
            return False  # the trajectory is over: the last command is held anyway
        if step < 0:
            self.hold_after_step = -1
            self.commands[:] = self.spec.start_rad
        else:
            self.hold_after_step = int(step)
            self.commands[step + 1 :] = self.commands[step]
        self.revision += 1
        return True

    def preempt(self, step: int) -> bool:
        """A new goal replaces this one (JTC: ``INVALID_GOAL``)."""
        return self.stop(
            step, GoalState.ABORTED, ResultCode.INVALID_GOAL, "preempted by a new goal"
        )

    def finish(self) -> None:
        """End of the episode: a goal still running has reached no verdict (cannot happen
        after observing the last step, kept for robustness)."""
        if self.running:
            self.state = GoalState.ABORTED
            self.code = ResultCode.GOAL_TOLERANCE_VIOLATED
            self.error_string = "the episode ended before the goal was reached"


# --------------------------------------------------------------------------- messages


@dataclass(frozen=True)
class FollowJointTrajectoryTypes:
    """The classes of control_msgs/action/FollowJointTrajectory and what they contain.

    Use :meth:`from_rclpy` in a node; tests build it from a typestore in which
    :func:`register_follow_joint_trajectory` registered the action's messages.
    """

    Goal: type
    Result: type
    Feedback: type
    JointTolerance: type
    MultiDOFJointTrajectory: type
    MultiDOFJointTrajectoryPoint: type
    msg: MessageTypes

    @classmethod
    def from_typestore(cls, typestore: Any) -> FollowJointTrajectoryTypes:
        types = typestore.types
        return cls(
            Goal=types[f"{ACTION}_Goal"],
            Result=types[f"{ACTION}_Result"],
            Feedback=types[f"{ACTION}_Feedback"],
            JointTolerance=types["control_msgs/msg/JointTolerance"],
            MultiDOFJointTrajectory=types["trajectory_msgs/msg/MultiDOFJointTrajectory"],
            MultiDOFJointTrajectoryPoint=types["trajectory_msgs/msg/MultiDOFJointTrajectoryPoint"],
            msg=MessageTypes.from_typestore(typestore),
        )

    @classmethod
    def from_rclpy(cls) -> FollowJointTrajectoryTypes:
        """rclpy's generated classes (needs a sourced ROS with control_msgs)."""
        from control_msgs.action import FollowJointTrajectory  # noqa: PLC0415
        from control_msgs.msg import JointTolerance  # noqa: PLC0415
        from trajectory_msgs.msg import (  # noqa: PLC0415
            MultiDOFJointTrajectory,
            MultiDOFJointTrajectoryPoint,
        )

        return cls(
            Goal=FollowJointTrajectory.Goal,
            Result=FollowJointTrajectory.Result,
            Feedback=FollowJointTrajectory.Feedback,
            JointTolerance=JointTolerance,
            MultiDOFJointTrajectory=MultiDOFJointTrajectory,
            MultiDOFJointTrajectoryPoint=MultiDOFJointTrajectoryPoint,
            msg=MessageTypes.from_rclpy(),
        )


ACTION = "control_msgs/action/FollowJointTrajectory"


def _point(
    types: FollowJointTrajectoryTypes, positions: np.ndarray, velocities: np.ndarray, time_ns: int
) -> Any:
    seq = types.msg.float64_sequence
    empty = np.zeros(0)
    return types.msg.JointTrajectoryPoint(
        positions=seq(positions),
        velocities=seq(velocities),
        accelerations=seq(empty),
        effort=seq(empty),
        time_from_start=ns_to_duration(int(time_ns), types.msg.Duration),
    )


def _empty_multi_dof_point(types: FollowJointTrajectoryTypes) -> Any:
    return types.MultiDOFJointTrajectoryPoint(
        transforms=[],
        velocities=[],
        accelerations=[],
        time_from_start=ns_to_duration(0, types.msg.Duration),
    )


def feedback_to_msg(
    feedback: StepFeedback,
    joint_names: Sequence[str],
    stamp_ns: int,
    types: FollowJointTrajectoryTypes,
) -> Any:
    """FollowJointTrajectory feedback of one control step (multi-DOF fields empty)."""
    time_ns = feedback.time_from_start_ns
    return types.Feedback(
        header=types.msg.Header(stamp=ns_to_stamp(stamp_ns, types.msg.Time), frame_id=""),
        joint_names=list(joint_names),
        desired=_point(types, feedback.desired_positions, feedback.desired_velocities, time_ns),
        actual=_point(types, feedback.actual_positions, feedback.actual_velocities, time_ns),
        error=_point(types, feedback.error_positions, feedback.error_velocities, time_ns),
        multi_dof_joint_names=[],
        multi_dof_desired=_empty_multi_dof_point(types),
        multi_dof_actual=_empty_multi_dof_point(types),
        multi_dof_error=_empty_multi_dof_point(types),
    )


def result_to_msg(code: int, error_string: str, types: FollowJointTrajectoryTypes) -> Any:
    """FollowJointTrajectory result."""
    return types.Result(error_code=int(code), error_string=str(error_string))


def goal_to_msg(
    trajectory_msg: Any,
    types: FollowJointTrajectoryTypes,
    goal_time_tolerance_s: float = 0.0,
) -> Any:
    """A FollowJointTrajectory goal carrying ``trajectory_msg`` (a JointTrajectory), with no
    multi-DOF part and the controller's default tolerances."""
    multi = types.MultiDOFJointTrajectory(
        header=types.msg.Header(stamp=ns_to_stamp(0, types.msg.Time), frame_id=""),
        joint_names=[],
        points=[],
    )
    goal_time_ns = round(float(goal_time_tolerance_s) * NS_PER_S)
    return types.Goal(
        trajectory=trajectory_msg,
        multi_dof_trajectory=multi,
        path_tolerance=[],
        component_path_tolerance=[],
        goal_tolerance=[],
        component_goal_tolerance=[],
        goal_time_tolerance=ns_to_duration(goal_time_ns, types.msg.Duration),
    )


# Field lists of control_msgs (Jazzy) FollowJointTrajectory and the messages it uses, for
# rosbags typestores, which do not carry control_msgs (tests, bags with these types).
_CONTROL_MSGS_DEFINITIONS = {
    "control_msgs/msg/JointTolerance": (
        "string name\nfloat64 position\nfloat64 velocity\nfloat64 acceleration\n"
    ),
    "control_msgs/msg/JointComponentTolerance": (
        "uint16 X_AXIS=1\nuint16 Y_AXIS=2\nuint16 Z_AXIS=3\nuint16 TRANSLATION=4\n"
        "uint16 ROTATION=5\nstring joint_name\nuint16 component\nfloat64 position\n"
        "float64 velocity\nfloat64 acceleration\n"
    ),
    f"{ACTION}_Goal": (
        "trajectory_msgs/JointTrajectory trajectory\n"
        "trajectory_msgs/MultiDOFJointTrajectory multi_dof_trajectory\n"
        "control_msgs/JointTolerance[] path_tolerance\n"
        "control_msgs/JointComponentTolerance[] component_path_tolerance\n"
        "control_msgs/JointTolerance[] goal_tolerance\n"
        "control_msgs/JointComponentTolerance[] component_goal_tolerance\n"
        "builtin_interfaces/Duration goal_time_tolerance\n"
    ),
    f"{ACTION}_Result": (
        "int32 SUCCESSFUL=0\nint32 INVALID_GOAL=-1\nint32 INVALID_JOINTS=-2\n"
        "int32 OLD_HEADER_TIMESTAMP=-3\nint32 PATH_TOLERANCE_VIOLATED=-4\n"
        "int32 GOAL_TOLERANCE_VIOLATED=-5\nint32 error_code\nstring error_string\n"
    ),
    f"{ACTION}_Feedback": (
        "std_msgs/Header header\nstring[] joint_names\n"
        "trajectory_msgs/JointTrajectoryPoint desired\n"
        "trajectory_msgs/JointTrajectoryPoint actual\n"
        "trajectory_msgs/JointTrajectoryPoint error\n"
        "string[] multi_dof_joint_names\n"
        "trajectory_msgs/MultiDOFJointTrajectoryPoint multi_dof_desired\n"
        "trajectory_msgs/MultiDOFJointTrajectoryPoint multi_dof_actual\n"
        "trajectory_msgs/MultiDOFJointTrajectoryPoint multi_dof_error\n"
    ),
}


def register_follow_joint_trajectory(typestore: Any) -> list[str]:
    """Register control_msgs' FollowJointTrajectory goal / result / feedback (and
    JointTolerance, JointComponentTolerance) into a ``rosbags`` typestore."""
    from rosbags.typesys import get_types_from_msg  # noqa: PLC0415

    types: dict = {}
    for name, text in _CONTROL_MSGS_DEFINITIONS.items():
        types.update(get_types_from_msg(text, name))
    typestore.register(types)
    return sorted(types)
