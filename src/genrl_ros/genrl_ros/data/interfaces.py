"""The genrl_interfaces messages in a ``rosbags`` typestore (no ROS installation needed).

The .msg and .srv files live in the ament_cmake package ``src/genrl_interfaces/msg`` and
``src/genrl_interfaces/srv`` (built by colcon for ROS nodes). A copy ships inside this Python
package (``genrl_ros/data/msg``, ``genrl_ros/data/srv``) so that a pip-installed genrl_ros can
still write and read bags with these types. When both are present (a source checkout) they
must be identical; a difference is an error, since a bag would otherwise record a definition
that the built ROS package does not have.

Services: rosbags has no service types, so each .srv is registered as its two halves, the
messages ``<Name>_Request`` and ``<Name>_Response`` (what rosidl generates for a service).
rosbags files them under its own normalised name (``genrl_interfaces/srv/msg/<Name>_Request``);
use :func:`service_classes` to get the two classes.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rosbags.typesys.store import Typestore

PACKAGE = "genrl_interfaces"
EPISODE_OUTCOME = f"{PACKAGE}/msg/EpisodeOutcome"

SOURCE_MSG_DIR = Path(__file__).resolve().parents[3] / PACKAGE / "msg"
"""``src/genrl_interfaces/msg`` of a source checkout (absent in a pip install)."""
SOURCE_SRV_DIR = Path(__file__).resolve().parents[3] / PACKAGE / "srv"
"""``src/genrl_interfaces/srv`` of a source checkout (absent in a pip install)."""
LATENT_ACTION = f"{PACKAGE}/msg/LatentAction"
SAFETY_STATUS = f"{PACKAGE}/msg/SafetyStatus"
DECODE_LATENT = f"{PACKAGE}/srv/DecodeLatent"
RESET_SCENE = f"{PACKAGE}/srv/ResetScene"


class InterfaceDefinitionError(RuntimeError):
    """The .msg definitions are missing or the two copies disagree."""


def packaged_msg_dir() -> Path:
    """The copy of the .msg files inside the genrl_ros package."""
    return Path(str(resources.files("genrl_ros.data").joinpath("msg")))


def packaged_srv_dir() -> Path:
    """The copy of the .srv files inside the genrl_ros package."""
    return Path(str(resources.files("genrl_ros.data").joinpath("srv")))


def _read_dir(directory: Path, kind: str = "msg") -> dict[str, str]:
    return {
        f"{PACKAGE}/{kind}/{path.stem}": path.read_text(encoding="utf-8")
        for path in sorted(directory.glob(f"*.{kind}"))
    }


def _definitions(kind: str, source: Path, packaged: Path) -> dict[str, str]:
    copies = [(d, _read_dir(d, kind)) for d in (source, packaged) if d.is_dir()]
    copies = [(d, defs) for d, defs in copies if defs]
    if not copies:
        raise InterfaceDefinitionError(f"no .{kind} files found in {source} nor in {packaged}")
    (first_dir, first), *others = copies
    for other_dir, other in others:
        if other != first:
            names = sorted(n for n in set(first) | set(other) if first.get(n) != other.get(n))
            raise InterfaceDefinitionError(
                f"the .{kind} files in {first_dir} and {other_dir} differ ({', '.join(names)}); "
                f"copy src/genrl_interfaces/{kind}/*.{kind} to genrl_ros/data/{kind}/"
            )
    return first


def msg_definitions() -> dict[str, str]:
    """Message type name (``genrl_interfaces/msg/X``) -> .msg text."""
    return _definitions("msg", SOURCE_MSG_DIR, packaged_msg_dir())


def srv_definitions() -> dict[str, str]:
    """Service type name (``genrl_interfaces/srv/X``) -> .srv text."""
    return _definitions("srv", SOURCE_SRV_DIR, packaged_srv_dir())


def split_srv(text: str, name: str = "service") -> tuple[str, str]:
    """The request and response parts of a .srv text (split at the line ``---``)."""
    lines = text.splitlines(keepends=True)
    separators = [i for i, line in enumerate(lines) if line.strip() == "---"]
    if len(separators) != 1:
        raise InterfaceDefinitionError(
            f"{name}: a .srv needs exactly one '---' line, found {len(separators)}"
        )
    i = separators[0]
    return "".join(lines[:i]), "".join(lines[i + 1 :])


def register_interfaces(typestore: Typestore) -> list[str]:
    """Register every genrl_interfaces message into ``typestore``; returns the type names."""
    from rosbags.typesys import get_types_from_msg  # noqa: PLC0415

    types = {}
    for name, text in msg_definitions().items():
        types.update(get_types_from_msg(text, name))
    for name, text in srv_definitions().items():
        request, response = split_srv(text, name)
        types.update(get_types_from_msg(request, f"{name}_Request"))
        types.update(get_types_from_msg(response, f"{name}_Response"))
    typestore.register(types)
    return sorted(types)


def service_classes(typestore: Typestore, srv_name: str) -> tuple[type, type]:
    """(Request, Response) classes of a registered service, e.g. ``DECODE_LATENT``."""
    package, _, short = srv_name.partition("/srv/")
    found = {}
    for part in ("Request", "Response"):
        suffix = f"/{short}_{part}"
        keys = [
            k for k in typestore.types if k.startswith(f"{package}/srv/") and k.endswith(suffix)
        ]
        if len(keys) != 1:
            raise InterfaceDefinitionError(
                f"{srv_name}_{part} is not registered in the typestore (found {keys}); "
                "call register_interfaces() first"
            )
        found[part] = typestore.types[keys[0]]
    return found["Request"], found["Response"]


def make_typestore() -> Typestore:
    """A fresh ROS 2 Jazzy typestore with the genrl_interfaces messages registered."""
    from rosbags.typesys import Stores, get_typestore  # noqa: PLC0415

    typestore = get_typestore(Stores.ROS2_JAZZY)
    register_interfaces(typestore)
    return typestore
