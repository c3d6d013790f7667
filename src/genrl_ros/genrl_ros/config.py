"""ROS 2 parameter files, read the same way by launch files and by the ``genrl`` command.

A parameter file has the form ROS 2 uses for ``--params-file``::

    genrl_demos:              # node name (also accepted: "/genrl_demos", "/**" for all nodes)
      ros__parameters:
        episodes: 1000
        seed: 0

:func:`load_ros_params` returns the parameters of one node as a flat dict. Nested mappings
under ``ros__parameters`` become dotted names (``a: {b: 1}`` -> ``{"a.b": 1}``), as ROS does.
Parameters under ``/**`` apply to every node and are overridden by the node's own section.
Values must be ROS parameter types: bool, int, float, str, or a list of one of those.

Every error is a :class:`ConfigError` (a ``ValueError``) whose message names the file and the
key that is wrong.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

PARAMS_KEY = "ros__parameters"
WILDCARD = "/**"

__all__ = ["PARAMS_KEY", "WILDCARD", "ConfigError", "load_ros_params", "node_names"]


class ConfigError(ValueError):
    """A parameter file is missing, unreadable or not in the ROS 2 parameter form."""


def _read_yaml(path: Path) -> Any:
    import yaml  # noqa: PLC0415 - imported lazily: `genrl --help` must not need it

    if not path.is_file():
        if path.exists():
            raise ConfigError(f"{path}: not a file")
        raise FileNotFoundError(f"{path}: parameter file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}: not valid YAML{line}: {problem}") from exc


def _top_level(path: Path, data: Any) -> dict[str, Any]:
    if data is None:
        raise ConfigError(f"{path}: file is empty; expected '<node_name>: {PARAMS_KEY}: {{...}}'")
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: top level must be a mapping of node names, "
            f"'<node_name>: {PARAMS_KEY}: {{...}}', not a {type(data).__name__}"
        )
    for key in data:
        if not isinstance(key, str):
            raise ConfigError(f"{path}: node name {key!r} must be a string")
    return data


def node_names(path: str | Path) -> list[str]:
    """The node sections of a parameter file (as written, e.g. ``genrl_demos`` or ``/**``)."""
    path = Path(path)
    return list(_top_level(path, _read_yaml(path)))


def _check_value(path: Path, key: str, value: Any) -> Any:
    scalar = (bool, int, float, str)
    if isinstance(value, scalar):
        return value
    if isinstance(value, list):
        for i, item in enumerate(value):
            if not isinstance(item, scalar):
                raise ConfigError(
                    f"{path}: {key}[{i}]: {type(item).__name__} is not a ROS parameter value "
                    "(lists hold bool, int, float or str)"
                )
        kinds = {type(item) for item in value}
        if len(kinds) > 1:
            raise ConfigError(
                f"{path}: {key}: a ROS parameter list holds values of one type, got {value!r}"
            )
        return list(value)
    if value is None:
        raise ConfigError(f"{path}: {key}: has no value (ROS parameters cannot be null)")
    raise ConfigError(
        f"{path}: {key}: {type(value).__name__} is not a ROS parameter value "
        "(bool, int, float, str or a list of one of those)"
    )


def _flatten(
    path: Path, where: str, prefix: str, params: dict[Any, Any], out: dict[str, Any]
) -> None:
    for key, value in params.items():
        if not isinstance(key, str) or not key:
            raise ConfigError(
                f"{path}: {where}{prefix}{key!r}: parameter names must be non-empty strings"
            )
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            _flatten(path, where, name + ".", value, out)
        else:
            out[name] = _check_value(path, where + name, value)


def _section(path: Path, data: dict[str, Any], node_key: str) -> dict[str, Any]:
    section = data[node_key]
    if not isinstance(section, dict):
        raise ConfigError(
            f"{path}: {node_key}: expected a mapping with the key '{PARAMS_KEY}', "
            f"got {type(section).__name__}"
        )
    if PARAMS_KEY not in section:
        found = ", ".join(repr(k) for k in section) or "nothing"
        raise ConfigError(f"{path}: {node_key}: missing key '{PARAMS_KEY}' (found {found})")
    extra = [k for k in section if k != PARAMS_KEY]
    if extra:
        raise ConfigError(
            f"{path}: {node_key}.{extra[0]}: unexpected key; the parameters of a node go under "
            f"'{node_key}: {PARAMS_KEY}:'"
        )
    params = section[PARAMS_KEY]
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise ConfigError(
            f"{path}: {node_key}.{PARAMS_KEY}: expected a mapping of parameter names to values, "
            f"got {type(params).__name__}"
        )
    out: dict[str, Any] = {}
    _flatten(path, f"{node_key}.{PARAMS_KEY}.", "", params, out)
    return out


def load_ros_params(path: str | Path, node_name: str) -> dict[str, Any]:
    """The parameters of ``node_name`` in the ROS 2 parameter file ``path``, flattened.

    Raises ``FileNotFoundError`` if the file does not exist and :class:`ConfigError`
    (a ``ValueError``) naming the file and the offending key for any other problem, including
    a file that has no section for ``node_name`` (nor a ``/**`` section).
    """
    path = Path(path)
    data = _top_level(path, _read_yaml(path))
    own_keys = [k for k in (node_name, "/" + node_name.lstrip("/")) if k in data]
    if len(own_keys) > 1:
        raise ConfigError(f"{path}: both '{own_keys[0]}' and '{own_keys[1]}' are given; keep one")
    if not own_keys and WILDCARD not in data:
        found = ", ".join(repr(k) for k in data) or "none"
        raise ConfigError(
            f"{path}: no section for node '{node_name}' (node sections found: {found}); "
            f"expected '{node_name}: {PARAMS_KEY}: {{...}}'"
        )
    params: dict[str, Any] = {}
    if WILDCARD in data:
        params.update(_section(path, data, WILDCARD))
    if own_keys:
        params.update(_section(path, data, own_keys[0]))
    return params
