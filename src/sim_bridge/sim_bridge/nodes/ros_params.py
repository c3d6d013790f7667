"""Declaring and checking node parameters with rclpy from :mod:`sim_bridge.node_params` specs
(shared by the nodes of every genrl_ros package)."""

from __future__ import annotations

import array
from collections.abc import Callable, Iterable
from typing import Any

from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter

from sim_bridge.node_params import ParameterError, ParamSpec, check_changes, check_params


def plain(value: Any) -> Any:
    """A parameter value as plain Python (array parameters arrive as ``array.array``)."""
    if isinstance(value, (array.array, tuple)):
        return list(value)
    return value


def declare_params(node: Node, specs: Iterable[ParamSpec]) -> dict[str, Any]:
    """Declare every parameter (default, description, read-only) and return the checked
    values (overrides from parameter files / the command line applied). Raises
    :class:`ParameterError` naming a parameter with a wrong value; an override of the wrong
    type (e.g. ``1`` for a double) is refused earlier by rclpy's ``declare_parameter``
    (``InvalidParameterTypeException``, which names the parameter too)."""
    specs = tuple(specs)
    for spec in specs:
        node.declare_parameter(
            spec.name,
            spec.default,
            ParameterDescriptor(description=spec.description, read_only=spec.read_only),
        )
    values = {spec.name: plain(node.get_parameter(spec.name).value) for spec in specs}
    return check_params(specs, values)


def on_set_parameters(
    specs: Iterable[ParamSpec],
    current: Callable[[], dict[str, Any]],
    apply: Callable[[dict[str, Any], dict[str, Any]], str | None],
) -> Callable[[list[Parameter]], SetParametersResult]:
    """A callback for ``Node.add_on_set_parameters_callback``: checks the changes against the
    specs, then calls ``apply(new_values, changes)``, which returns an error text to refuse
    the change (e.g. a model file that does not load) or None."""
    specs = tuple(specs)

    def callback(parameters: list[Parameter]) -> SetParametersResult:
        changes = {p.name: plain(p.value) for p in parameters}
        try:
            values = check_changes(specs, current(), changes)
        except ParameterError as err:
            return SetParametersResult(successful=False, reason=str(err))
        error = apply(values, {k: v for k, v in changes.items() if k in values})
        if error:
            return SetParametersResult(successful=False, reason=error)
        return SetParametersResult(successful=True)

    return callback
