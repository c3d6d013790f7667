"""Parameters of the ROS nodes: declared types, ranges and checks, without importing ROS.

Every node of the stack describes its parameters as a tuple of :class:`ParamSpec`. The node
declares them (name, default, description, read-only) in its ``__init__`` and checks every
value through :func:`check_params` at start-up and :func:`check_changes` in its
set-parameters callback; the tests check the ``config/*.yaml`` files with the same specs.
Errors are :class:`ParameterError` messages that name the parameter, the value and the bound.

Types are strict, as ROS 2's are: a parameter declared with a float default (``1.0``) does not
take an integer (``1``) -- rclpy refuses it too -- and a bool is not an integer.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

ParamValue = bool | int | float | str | list


class ParameterError(ValueError):
    """A parameter value of the wrong type or outside its range; the text names it."""


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, (list, tuple)):
        return "list"
    raise TypeError(f"{value!r} is not a ROS parameter value")


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of a node.

    :param name: parameter name (dots for groups: ``camera.width``).
    :param default: default value; its type is the parameter's type (for a list, the type of
        its first element is the element type, so list defaults must not be empty).
    :param description: what it means, with its unit.
    :param minimum, maximum: inclusive bounds of a number (of each element of a list).
    :param choices: allowed values of a string.
    :param read_only: cannot change after start-up (the node would have to be restarted).
    :param nonempty: a string or list must not be empty.
    :param length: exact length of a list.
    :param exclusive_minimum: the minimum itself is not allowed (e.g. a rate > 0).
    """

    name: str
    default: ParamValue
    description: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None
    read_only: bool = False
    nonempty: bool = False
    length: int | None = None
    exclusive_minimum: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.default, tuple):
            object.__setattr__(self, "default", list(self.default))
        if _kind(self.default) == "list" and not self.default:
            raise ValueError(f"{self.name}: a list default must not be empty (its type)")
        self.check(self.default)

    @property
    def kind(self) -> str:
        """``bool``, ``int``, ``float``, ``str`` or ``list``."""
        return _kind(self.default)

    @property
    def element_kind(self) -> str | None:
        return _kind(self.default[0]) if self.kind == "list" else None

    def _check_number(self, value: float, where: str) -> None:
        if isinstance(value, float) and not math.isfinite(value):
            raise ParameterError(f"parameter {where} is {value!r}, must be finite")
        if self.minimum is not None:
            if value < self.minimum or (self.exclusive_minimum and value == self.minimum):
                op = ">" if self.exclusive_minimum else ">="
                raise ParameterError(f"parameter {where} is {value!r}, must be {op} {self.minimum}")
        if self.maximum is not None and value > self.maximum:
            raise ParameterError(f"parameter {where} is {value!r}, must be <= {self.maximum}")

    def check(self, value: Any) -> ParamValue:
        """The value if it has this parameter's type and lies in its range; else raises
        :class:`ParameterError` naming the parameter."""
        kind = self.kind
        try:
            found = _kind(value)
        except TypeError:
            raise ParameterError(
                f"parameter {self.name} has a {type(value).__name__} value {value!r}, "
                f"expected {kind}"
            ) from None
        if found != kind:
            hint = " (write it with a decimal point, e.g. 1.0)" if kind == "float" else ""
            raise ParameterError(
                f"parameter {self.name} is {value!r} of type {found}, expected {kind}{hint}"
            )
        if kind in ("int", "float"):
            self._check_number(value, self.name)
        elif kind == "str":
            if self.nonempty and not value:
                raise ParameterError(f"parameter {self.name} must not be empty")
            if self.choices is not None and value not in self.choices:
                raise ParameterError(
                    f"parameter {self.name} is {value!r}, expected one of {list(self.choices)}"
                )
        elif kind == "list":
            value = list(value)
            if self.nonempty and not value:
                raise ParameterError(f"parameter {self.name} must not be empty")
            if self.length is not None and len(value) != self.length:
                raise ParameterError(
                    f"parameter {self.name} has {len(value)} values, expected {self.length}"
                )
            element = self.element_kind
            for i, item in enumerate(value):
                item_kind = _kind(item) if isinstance(item, (bool, int, float, str)) else "?"
                if item_kind != element:
                    raise ParameterError(
                        f"parameter {self.name}[{i}] is {item!r}, expected {element} "
                        "(a ROS parameter list holds values of one type)"
                    )
                if element in ("int", "float"):
                    self._check_number(item, f"{self.name}[{i}]")
                elif element == "str" and self.choices is not None and item not in self.choices:
                    raise ParameterError(
                        f"parameter {self.name}[{i}] is {item!r}, expected one of "
                        f"{list(self.choices)}"
                    )
        return value


def spec_map(specs: Iterable[ParamSpec]) -> dict[str, ParamSpec]:
    out: dict[str, ParamSpec] = {}
    for spec in specs:
        if spec.name in out:
            raise ValueError(f"parameter {spec.name} is declared twice")
        out[spec.name] = spec
    return out


def defaults(specs: Iterable[ParamSpec]) -> dict[str, ParamValue]:
    return {spec.name: spec.default for spec in specs}


def check_params(
    specs: Iterable[ParamSpec], values: Mapping[str, Any], *, allow_unknown: bool = False
) -> dict[str, ParamValue]:
    """All parameters: ``values`` over the defaults, each checked.

    :param allow_unknown: ignore names that are not parameters of the node (e.g. ROS's own
        ``use_sim_time``); otherwise they are an error (a typo in a parameter file).
    """
    by_name = spec_map(specs)
    unknown = sorted(set(values) - set(by_name))
    if unknown and not allow_unknown:
        raise ParameterError(f"unknown parameter(s) {unknown}; this node has {sorted(by_name)}")
    out = {name: spec.default for name, spec in by_name.items()}
    for name, value in values.items():
        if name in by_name:
            out[name] = by_name[name].check(value)
    return out


def check_changes(
    specs: Iterable[ParamSpec], current: Mapping[str, Any], changes: Mapping[str, Any]
) -> dict[str, ParamValue]:
    """The parameters after ``changes`` (a set-parameters request), each change checked;
    read-only parameters refuse any change. Names that are not the node's are ignored (they
    belong to ROS itself, e.g. ``use_sim_time``)."""
    by_name = spec_map(specs)
    out = dict(current)
    for name, value in changes.items():
        spec = by_name.get(name)
        if spec is None:
            continue
        if spec.read_only and value != current.get(name):
            raise ParameterError(
                f"parameter {name} is read-only at run time (restart the node to change it)"
            )
        out[name] = spec.check(value)
    return out


# --------------------------------------------------------------------------- sim_bridge node

SIM_BRIDGE_NODE = "sim_bridge"
SIM_BRIDGE_PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec("task", "hockey", "simulated task", choices=("hockey", "basketball"), read_only=True),
    ParamSpec("seed", 0, "seed of the goal sampler", minimum=0, read_only=True),
    ParamSpec(
        "real_time_factor",
        1.0,
        "simulated seconds per wall-clock second when playing an episode (1.0 = real time, "
        "0 = as fast as possible)",
        minimum=0.0,
        maximum=100.0,
    ),
    ParamSpec(
        "action_name",
        "arm_controller/follow_joint_trajectory",
        "name of the control_msgs/FollowJointTrajectory action server",
        nonempty=True,
        read_only=True,
    ),
    ParamSpec(
        "reject_invalid_goals",
        True,
        "true: reject invalid goals in the goal callback (like joint_trajectory_controller); "
        "false: accept and abort them with the error code and text",
    ),
    ParamSpec(
        "velocity_margin",
        1.0,
        "fraction of the joint velocity limits a goal may use",
        minimum=0.0,
        maximum=1.0,
        exclusive_minimum=True,
    ),
    ParamSpec(
        "workspace_check",
        True,
        "refuse goals whose commands would drive the arm into the scene (the task's workspace "
        "check: e.g. the hockey blade commanded into the table), like goals beyond the limits",
    ),
    ParamSpec(
        "constraints.path_position_rad",
        0.0,
        "default path tolerance of every joint (rad); 0 = not checked",
        minimum=0.0,
    ),
    ParamSpec(
        "constraints.goal_position_rad",
        0.0,
        "default goal position tolerance of every joint (rad); 0 = not checked",
        minimum=0.0,
    ),
    ParamSpec(
        "constraints.stopped_velocity_rad_s",
        0.01,
        "default goal velocity tolerance of every joint (rad/s); 0 = not checked",
        minimum=0.0,
    ),
    ParamSpec(
        "constraints.goal_time_s",
        0.0,
        "time after the last point to reach the goal tolerances (s); 0 = until the episode ends",
        minimum=0.0,
    ),
    ParamSpec(
        "auto_reset",
        False,
        "after every episode, reset the scene with a goal drawn from the task's distribution",
    ),
    ParamSpec(
        "auto_reset_timeout_s",
        5.0,
        "with auto_reset: reset again when no goal arrived this long after a reset (a lost "
        "message or a goal refused upstream must not stall the loop) (s)",
        minimum=0.0,
        exclusive_minimum=True,
    ),
    ParamSpec("frame_id", "world", "frame of goals and outcomes", nonempty=True),
    ParamSpec("camera.enabled", False, "render and publish camera images", read_only=True),
    ParamSpec("camera.width", 64, "image width (pixels)", minimum=1, maximum=4096, read_only=True),
    ParamSpec(
        "camera.height", 64, "image height (pixels)", minimum=1, maximum=4096, read_only=True
    ),
    ParamSpec(
        "camera.rate_hz",
        10.0,
        "image publishing rate (Hz)",
        minimum=0.0,
        maximum=1000.0,
        exclusive_minimum=True,
        read_only=True,
    ),
    ParamSpec(
        "camera.frame_id", "scene_camera_optical_frame", "frame of the images", nonempty=True
    ),
)
