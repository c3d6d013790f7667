"""genrl_interfaces/LatentAction <-> numpy, without importing ROS.

The message class is passed in (rclpy's generated class in a node, a ``rosbags`` typestore
class in tests: ``genrl_ros.data.interfaces.make_typestore()`` registers it); the Header and
Time classes and the ``float64[]`` container come from a
:class:`sim_bridge.ros_conversions.MessageTypes`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sim_bridge.ros_conversions import (
    MessageConversionError,
    MessageTypes,
    ns_to_stamp,
    stamp_to_ns,
)

OBSERVATION_KINDS = ("goal", "image")


@dataclass(frozen=True, eq=False)
class LatentAction:
    """A latent action: Gaussian (mean, std) over the latent space and the latent to decode,
    float64 (L,) each.

    :param stamp_ns: stamp of the observation it was chosen for.
    :param frame_id: frame of that observation.
    :param deterministic: True when ``sample`` is the mean.
    :param observation: ``goal`` or ``image``.
    :param policy_id: the policy weights that chose it.
    """

    mean: np.ndarray
    std: np.ndarray
    sample: np.ndarray
    stamp_ns: int = 0
    frame_id: str = ""
    deterministic: bool = False
    observation: str = "goal"
    policy_id: str = ""

    def __post_init__(self) -> None:
        arrays = {}
        for name in ("mean", "std", "sample"):
            array = np.asarray(getattr(self, name), dtype=np.float64).reshape(-1)
            if not np.isfinite(array).all():
                raise MessageConversionError(f"LatentAction.{name} must be finite")
            arrays[name] = array
            object.__setattr__(self, name, array)
        sizes = {name: a.size for name, a in arrays.items()}
        if len(set(sizes.values())) != 1 or arrays["mean"].size == 0:
            raise MessageConversionError(
                f"LatentAction mean, std and sample must have the same non-zero length, got {sizes}"
            )
        if (arrays["std"] < 0).any():
            raise MessageConversionError("LatentAction.std must be >= 0")
        if self.observation not in OBSERVATION_KINDS:
            raise MessageConversionError(
                f"LatentAction.observation is {self.observation!r}, expected one of "
                f"{list(OBSERVATION_KINDS)}"
            )

    @property
    def latent_dim(self) -> int:
        return int(self.mean.size)


def latent_action_to_msg(action: LatentAction, latent_cls: type, msg_types: MessageTypes) -> Any:
    """genrl_interfaces/LatentAction of ``action`` (every field passed by keyword)."""
    seq = msg_types.float64_sequence
    return latent_cls(
        header=msg_types.Header(
            stamp=ns_to_stamp(action.stamp_ns, msg_types.Time), frame_id=action.frame_id
        ),
        mean=seq(action.mean),
        std=seq(action.std),
        sample=seq(action.sample),
        deterministic=bool(action.deterministic),
        observation=action.observation,
        policy_id=action.policy_id,
    )


def latent_action_from_msg(msg: Any) -> LatentAction:
    """:class:`LatentAction` of a genrl_interfaces/LatentAction (checks sizes and values)."""
    return LatentAction(
        mean=np.asarray(msg.mean, dtype=np.float64),
        std=np.asarray(msg.std, dtype=np.float64),
        sample=np.asarray(msg.sample, dtype=np.float64),
        stamp_ns=stamp_to_ns(msg.header.stamp),
        frame_id=str(msg.header.frame_id),
        deterministic=bool(msg.deterministic),
        observation=str(msg.observation),
        policy_id=str(msg.policy_id),
    )
