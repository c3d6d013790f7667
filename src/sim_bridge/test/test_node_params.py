"""Parameter specs of the nodes: strict ROS-like types, ranges, choices, read-only changes,
and errors that name the parameter."""

from __future__ import annotations

import pytest

from sim_bridge.node_params import (
    SIM_BRIDGE_PARAMS,
    ParameterError,
    ParamSpec,
    check_changes,
    check_params,
    defaults,
)

RATE = ParamSpec("rate_hz", 10.0, "rate", minimum=0.0, exclusive_minimum=True, maximum=100.0)
COUNT = ParamSpec("count", 3, "count", minimum=0)
MODE = ParamSpec("mode", "goal", "mode", choices=("goal", "image"), read_only=True)
NAMES = ParamSpec("names", ["a", "b"], "names", nonempty=True)
LIMITS = ParamSpec("limits", [1.0, 2.0], "limits", length=2, minimum=0.0)
FLAG = ParamSpec("flag", False, "flag")
SPECS = (RATE, COUNT, MODE, NAMES, LIMITS, FLAG)


def test_types_are_strict_like_ros():
    assert RATE.check(2.5) == 2.5 and COUNT.check(0) == 0 and FLAG.check(True) is True
    with pytest.raises(ParameterError, match=r"rate_hz is 5 of type int, expected float .*1\.0"):
        RATE.check(5)
    with pytest.raises(ParameterError, match="count is True of type bool, expected int"):
        COUNT.check(True)
    with pytest.raises(ParameterError, match="flag is 'true' of type str, expected bool"):
        FLAG.check("true")
    with pytest.raises(ParameterError, match="names has a dict value"):
        NAMES.check({"a": 1})


def test_ranges_choices_and_lists():
    with pytest.raises(ParameterError, match="rate_hz is 0.0, must be > 0.0"):
        RATE.check(0.0)
    with pytest.raises(ParameterError, match="rate_hz is 101.0, must be <= 100.0"):
        RATE.check(101.0)
    with pytest.raises(ParameterError, match="rate_hz is nan, must be finite"):
        RATE.check(float("nan"))
    with pytest.raises(ParameterError, match="count is -1, must be >= 0"):
        COUNT.check(-1)
    with pytest.raises(
        ParameterError, match=r"mode is 'depth', expected one of \['goal', 'image'\]"
    ):
        MODE.check("depth")
    with pytest.raises(ParameterError, match="names must not be empty"):
        NAMES.check([])
    with pytest.raises(ParameterError, match=r"names\[1\] is 3, expected str"):
        NAMES.check(["a", 3])
    with pytest.raises(ParameterError, match="limits has 3 values, expected 2"):
        LIMITS.check([1.0, 2.0, 3.0])
    with pytest.raises(ParameterError, match=r"limits\[0\] is -1.0, must be >= 0.0"):
        LIMITS.check([-1.0, 2.0])
    assert LIMITS.check((1.0, 4.0)) == [1.0, 4.0]


def test_spec_definitions_are_checked():
    with pytest.raises(ValueError, match="list default must not be empty"):
        ParamSpec("x", [], "x")
    with pytest.raises(ParameterError):
        ParamSpec("x", 5, "x", maximum=1)
    with pytest.raises(ValueError, match="declared twice"):
        check_params((RATE, RATE), {})


def test_check_params_over_defaults_and_unknown_names():
    values = check_params(SPECS, {"rate_hz": 20.0})
    assert values == {**defaults(SPECS), "rate_hz": 20.0}
    with pytest.raises(ParameterError, match=r"unknown parameter\(s\) \['rat_hz'\]"):
        check_params(SPECS, {"rat_hz": 20.0})
    assert check_params(SPECS, {"use_sim_time": True}, allow_unknown=True) == defaults(SPECS)


def test_check_changes_refuses_read_only_and_ignores_ros_names():
    current = defaults(SPECS)
    new = check_changes(SPECS, current, {"count": 7, "use_sim_time": True})
    assert new["count"] == 7 and "use_sim_time" not in new
    assert check_changes(SPECS, current, {"mode": "goal"})["mode"] == "goal"  # unchanged: ok
    with pytest.raises(ParameterError, match="mode is read-only at run time"):
        check_changes(SPECS, current, {"mode": "image"})
    with pytest.raises(ParameterError, match="count is -2"):
        check_changes(SPECS, current, {"count": -2})


def test_sim_bridge_params_defaults_are_valid():
    values = check_params(SIM_BRIDGE_PARAMS, {})
    assert values["task"] == "hockey" and values["real_time_factor"] == 1.0
    assert values["constraints.stopped_velocity_rad_s"] == 0.01
    with pytest.raises(ParameterError, match="real_time_factor is -1.0"):
        check_params(SIM_BRIDGE_PARAMS, {"real_time_factor": -1.0})
    with pytest.raises(ParameterError, match="task is 'golf'"):
        check_params(SIM_BRIDGE_PARAMS, {"task": "golf"})
