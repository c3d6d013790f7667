"""Inverse kinematics of the arm for the scripted experts (damped least squares).

Only the scripted demonstrations use it: they describe a shot or a throw as a path of the
tool in Cartesian space and turn it into joint position commands. The arm's 7 joints are
the first 7 degrees of freedom of every task model (``sim_bridge.model`` mounts the arm
before any other body).
"""

from __future__ import annotations

import mujoco
import numpy as np

from sim_bridge.arm import JOINT_LOWER_RAD, JOINT_UPPER_RAD, N_JOINTS


def rotation_z(angle_rad: float) -> np.ndarray:
    """Rotation matrix about the world z axis, shape (3, 3)."""
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rotation_y(angle_rad: float) -> np.ndarray:
    """Rotation matrix about the world y axis, shape (3, 3)."""
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def orientation_error(target_mat: np.ndarray, current_mat: np.ndarray) -> np.ndarray:
    """Axis-angle vector (3,) rotating ``current_mat`` onto ``target_mat`` (world frame)."""
    error_quat = np.empty(4)
    target_quat = np.empty(4)
    current_quat = np.empty(4)
    mujoco.mju_mat2Quat(target_quat, target_mat.reshape(9))
    mujoco.mju_mat2Quat(current_quat, current_mat.reshape(9))
    # mju_subQuat gives the rotation in the frame of current_mat; express it in world.
    mujoco.mju_subQuat(error_quat[:3], target_quat, current_quat)
    return current_mat @ error_quat[:3]


class ArmIK:
    """Pose a site of a task model with the arm's joints.

    :param model: compiled task model (arm joints = dofs 0..6).
    :param site: name of the site to place (e.g. the blade centre).
    :param damping: Levenberg-Marquardt damping of the least-squares step.
    :param posture_gain: weight of the null-space pull towards the posture passed to
        :meth:`solve` (keeps the elbow where the previous solution had it).
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        site: str,
        damping: float = 1e-3,
        posture_gain: float = 0.05,
    ) -> None:
        self.model = model
        self.data = mujoco.MjData(model)
        self.site_id = model.site(site).id
        self.damping = damping
        self.posture_gain = posture_gain
        self._jacp = np.zeros((3, model.nv))
        self._jacr = np.zeros((3, model.nv))
        self._margin_rad = 0.02

    def forward(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Site position (3,) and rotation matrix (3, 3) for joint positions q (7,)."""
        self.data.qpos[:N_JOINTS] = q
        mujoco.mj_kinematics(self.model, self.data)
        return self.data.site_xpos[self.site_id].copy(), self.data.site_xmat[
            self.site_id
        ].reshape(3, 3).copy()

    def solve(
        self,
        target_pos: np.ndarray,
        target_mat: np.ndarray,
        q_init: np.ndarray,
        posture: np.ndarray | None = None,
        iterations: int = 50,
        tolerance: float = 1e-5,
        orientation_weight: float = 0.3,
    ) -> tuple[np.ndarray, float]:
        """Joint positions (7,) placing the site at the target pose, and the final error.

        The error is the norm of [position error (m), weighted orientation error (rad)].
        """
        q = np.array(q_init, dtype=np.float64)
        posture = q.copy() if posture is None else np.asarray(posture, dtype=np.float64)
        lower = JOINT_LOWER_RAD + self._margin_rad
        upper = JOINT_UPPER_RAD - self._margin_rad
        error_norm = np.inf
        for _ in range(iterations):
            self.data.qpos[:N_JOINTS] = q
            mujoco.mj_kinematics(self.model, self.data)
            mujoco.mj_comPos(self.model, self.data)
            position = self.data.site_xpos[self.site_id]
            current_mat = self.data.site_xmat[self.site_id].reshape(3, 3)
            error = np.concatenate(
                [
                    target_pos - position,
                    orientation_weight * orientation_error(target_mat, current_mat),
                ]
            )
            error_norm = float(np.linalg.norm(error))
            if error_norm < tolerance:
                break
            mujoco.mj_jacSite(self.model, self.data, self._jacp, self._jacr, self.site_id)
            jacobian = np.vstack(
                [self._jacp[:, :N_JOINTS], orientation_weight * self._jacr[:, :N_JOINTS]]
            )
            jjt = jacobian @ jacobian.T + self.damping * np.eye(6)
            step = jacobian.T @ np.linalg.solve(jjt, error)
            pseudo_inverse = jacobian.T @ np.linalg.solve(jjt, np.eye(6))
            null_space = np.eye(N_JOINTS) - pseudo_inverse @ jacobian
            step += null_space @ (self.posture_gain * (posture - q))
            largest = np.max(np.abs(step))
            if largest > 0.2:
                step *= 0.2 / largest
            q = np.clip(q + step, lower, upper)
        return q, error_norm
