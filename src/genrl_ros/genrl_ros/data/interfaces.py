"""The genrl_interfaces messages in a ``rosbags`` typestore (no ROS installation needed).

The .msg files live in the ament_cmake package ``src/genrl_interfaces/msg`` (built by colcon
for ROS nodes). A copy ships inside this Python package (``genrl_ros/data/msg``) so that a
pip-installed genrl_ros can still write and read bags with these types. When both are
present (a source checkout) they must be identical; a difference is an error, since a bag
would otherwise record a definition that the built ROS package does not have.
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


class InterfaceDefinitionError(RuntimeError):
    """The .msg definitions are missing or the two copies disagree."""


def packaged_msg_dir() -> Path:
    """The copy of the .msg files inside the genrl_ros package."""
    return Path(str(resources.files("genrl_ros.data").joinpath("msg")))


def _read_dir(directory: Path) -> dict[str, str]:
    return {
        f"{PACKAGE}/msg/{path.stem}": path.read_text(encoding="utf-8")
        for path in sorted(directory.glob("*.msg"))
    }


def msg_definitions() -> dict[str, str]:
    """Message type name (``genrl_interfaces/msg/X``) -> .msg text."""
    copies = [(d, _read_dir(d)) for d in (SOURCE_MSG_DIR, packaged_msg_dir()) if d.is_dir()]
    copies = [(d, defs) for d, defs in copies if defs]
    if not copies:
        raise InterfaceDefinitionError(
            f"no .msg files found in {SOURCE_MSG_DIR} nor in {packaged_msg_dir()}"
        )
    (first_dir, first), *others = copies
    for other_dir, other in others:
        if other != first:
            names = sorted(n for n in set(first) | set(other) if first.get(n) != other.get(n))
            raise InterfaceDefinitionError(
                f"the .msg files in {first_dir} and {other_dir} differ ({', '.join(names)}); "
                "copy src/genrl_interfaces/msg/*.msg to genrl_ros/data/msg/"
            )
    return first


def register_interfaces(typestore: Typestore) -> list[str]:
    """Register every genrl_interfaces message into ``typestore``; returns the type names."""
    from rosbags.typesys import get_types_from_msg  # noqa: PLC0415

    types = {}
    for name, text in msg_definitions().items():
        types.update(get_types_from_msg(text, name))
    typestore.register(types)
    return sorted(types)


def make_typestore() -> Typestore:
    """A fresh ROS 2 Jazzy typestore with the genrl_interfaces messages registered."""
    from rosbags.typesys import Stores, get_typestore  # noqa: PLC0415

    typestore = get_typestore(Stores.ROS2_JAZZY)
    register_interfaces(typestore)
    return typestore
