"""The 7-DoF arm: joint names and the limits of the real robot it is modelled on.

Kinematics, joint position limits, joint velocity limits and joint torque limits are the
published values of the Franka Emika Panda (Franka Control Interface documentation,
"Robot and interface specifications"). The MJCF in ``arm.xml`` carries the same numbers;
``test_arm.py`` checks that the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ARM_XML = Path(__file__).with_name("arm.xml")

JOINT_NAMES: tuple[str, ...] = tuple(f"panda_joint{i}" for i in range(1, 8))
N_JOINTS = 7

# Published Panda limits (rad, rad/s, N m).
JOINT_LOWER_RAD = np.array([-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973])
JOINT_UPPER_RAD = np.array([2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973])
JOINT_VELOCITY_LIMIT_RAD_S = np.array([2.1750, 2.1750, 2.1750, 2.1750, 2.6100, 2.6100, 2.6100])
JOINT_EFFORT_LIMIT_NM = np.array([87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0])


@dataclass(frozen=True)
class ArmLimits:
    """Joint limits a trajectory must respect before it may reach an executor.

    All arrays have shape (7,), ordered as ``joint_names``.
    """

    joint_names: tuple[str, ...] = JOINT_NAMES
    lower_rad: np.ndarray = field(default_factory=lambda: JOINT_LOWER_RAD.copy())
    upper_rad: np.ndarray = field(default_factory=lambda: JOINT_UPPER_RAD.copy())
    velocity_limit_rad_s: np.ndarray = field(
        default_factory=lambda: JOINT_VELOCITY_LIMIT_RAD_S.copy()
    )
    effort_limit_nm: np.ndarray = field(default_factory=lambda: JOINT_EFFORT_LIMIT_NM.copy())

    def __post_init__(self) -> None:
        for name in ("lower_rad", "upper_rad", "velocity_limit_rad_s", "effort_limit_nm"):
            value = np.asarray(getattr(self, name), dtype=np.float64)
            if value.shape != (len(self.joint_names),):
                raise ValueError(
                    f"ArmLimits.{name} has shape {value.shape}, expected ({len(self.joint_names)},)"
                )
            object.__setattr__(self, name, value)
        if np.any(self.lower_rad >= self.upper_rad):
            raise ValueError("ArmLimits.lower_rad must be below upper_rad for every joint")
        if np.any(self.velocity_limit_rad_s <= 0):
            raise ValueError("ArmLimits.velocity_limit_rad_s must be positive")

    @property
    def n_joints(self) -> int:
        return len(self.joint_names)


PANDA_LIMITS = ArmLimits()
