"""Offscreen camera images of a task's initial scene, the image input of camera policies.

:class:`SceneCamera` renders the scene at time 0 of an episode (arm at ``start_rad``, objects
at their MJCF positions, as the executor starts every episode) with the goal marker (the
task's ``target_body()`` mocap body) moved to the goal, seen from the task's camera named
``scene``. Shadows, reflections and the skybox are off: they cost time and carry no
information about the goal.

Rendering needs an OpenGL backend chosen *before* mujoco is first imported: on a machine
without a display set ``MUJOCO_GL=osmesa`` (Debian/Ubuntu package ``libosmesa6``; software
rendering) or ``MUJOCO_GL=egl`` (GPU driver). Images are deterministic for a given backend:
the same goal gives the same image.
"""

from __future__ import annotations

import os
import sys

import mujoco
import numpy as np

from sim_bridge.tasks import make_task
from sim_bridge.tasks.base import Task

#: name of the camera every task defines for scene images
SCENE_CAMERA = "scene"

_GL_HINT = (
    "set MUJOCO_GL=osmesa (and install the Debian/Ubuntu package libosmesa6) or MUJOCO_GL=egl "
    "before mujoco is first imported, e.g. `MUJOCO_GL=osmesa python ...`"
)


def _check_gl_backend() -> None:
    """Fail early, with the fix, when mujoco would fall back to GLFW without a display."""
    backend = os.environ.get("MUJOCO_GL", "").lower().strip()
    if sys.platform.startswith("linux") and backend in ("", "glfw", "glx", "enable", "on", "1"):
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise RuntimeError(
                f"no OpenGL backend for offscreen rendering: MUJOCO_GL is "
                f"{backend or 'unset'} and there is no display; {_GL_HINT}"
            )


class SceneCamera:
    """Renders the initial scene of a task with the goal marker at a given goal.

    :param task: a :class:`Task` with a camera named ``scene`` and a ``target_body()``
        mocap body, or its name.
    :param width: image width in pixels (e.g. 64 or 128).
    :param height: image height in pixels.

    Owns its own model, data and renderer (one OpenGL context); use one per thread and
    :meth:`close` it (or use it as a context manager).
    """

    def __init__(self, task: Task | str, width: int = 64, height: int = 64) -> None:
        self.task = make_task(task) if isinstance(task, str) else task
        if width < 1 or height < 1:
            raise ValueError(f"image size must be positive, got {width} x {height}")
        self.width = int(width)
        self.height = int(height)
        self.model = self.task.build_model()
        model = self.model
        model.vis.global_.offwidth = max(int(model.vis.global_.offwidth), self.width)
        model.vis.global_.offheight = max(int(model.vis.global_.offheight), self.height)
        model.vis.quality.shadowsize = 0

        self.camera_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, SCENE_CAMERA)
        if self.camera_id < 0:
            raise ValueError(f"task {self.task.name!r} has no camera named {SCENE_CAMERA!r}")
        target = self.task.target_body()
        body_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, target)
        if body_id < 0 or model.body_mocapid[body_id] < 0:
            raise ValueError(f"task {self.task.name!r}: {target!r} is not a mocap body")
        self._mocap_id = int(model.body_mocapid[body_id])
        self.marker_height_m = float(model.body_pos[body_id, 2])

        self.data = mujoco.MjData(model)
        self.data.qpos[:] = self.task.initial_qpos(model)
        self.data.ctrl[: self.task.n_joints] = self.task.start_rad
        mujoco.mj_forward(model, self.data)

        self._renderer: mujoco.Renderer | None = None
        _check_gl_backend()
        try:
            self._renderer = mujoco.Renderer(model, height=self.height, width=self.width)
        except Exception as error:  # mujoco raises FatalError / RuntimeError / ImportError
            raise RuntimeError(
                f"cannot create an offscreen OpenGL context ({error}); {_GL_HINT}"
            ) from error
        flags = self._renderer.scene.flags
        flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
        flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        flags[mujoco.mjtRndFlag.mjRND_SKYBOX] = 0

    # ------------------------------------------------------------------ rendering
    def _place_goal(self, goal_xy: np.ndarray) -> None:
        goal = np.asarray(goal_xy, dtype=np.float64).reshape(-1)
        if goal.shape != (2,) or not np.isfinite(goal).all():
            raise ValueError(f"goal must be a finite (x, y) pair, got {goal_xy!r}")
        self.data.mocap_pos[self._mocap_id, :2] = goal
        self.data.mocap_pos[self._mocap_id, 2] = self.marker_height_m
        # Only the mocap body moved: poses (and camera / light poses) are all rendering needs.
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_comPos(self.model, self.data)
        mujoco.mj_camlight(self.model, self.data)

    def render(self, goal_xy: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Image of the initial scene with the goal marker at ``goal_xy`` (m, world frame).

        :returns: (height, width, 3) uint8 RGB; ``out`` if given.
        """
        renderer = self._require_open()
        self._place_goal(goal_xy)
        renderer.update_scene(self.data, camera=self.camera_id)
        if out is None:
            out = np.empty((self.height, self.width, 3), dtype=np.uint8)
        return renderer.render(out=out)

    def render_batch(self, goals_xy: np.ndarray) -> np.ndarray:
        """Images for N goals (N, 2), shape (N, height, width, 3) uint8."""
        goals = np.asarray(goals_xy, dtype=np.float64)
        if goals.ndim != 2 or goals.shape[1] != 2:
            raise ValueError(f"goals must have shape (N, 2), got {goals.shape}")
        images = np.empty((goals.shape[0], self.height, self.width, 3), dtype=np.uint8)
        for i, goal in enumerate(goals):
            self.render(goal, out=images[i])
        return images

    def project(self, points_xyz: np.ndarray) -> np.ndarray:
        """Pixel coordinates (column, row) of world points in the scene camera's image,
        shape (N, 2); pixel centres are at integer + 0.5 (pinhole model, ``fovy``)."""
        points = np.asarray(points_xyz, dtype=np.float64).reshape(-1, 3)
        position = self.data.cam_xpos[self.camera_id]
        # Columns of cam_xmat: camera x (image right), y (image up), z (backwards).
        rotation = self.data.cam_xmat[self.camera_id].reshape(3, 3)
        local = (points - position) @ rotation
        depth = -local[:, 2]
        fovy = np.deg2rad(self.model.cam_fovy[self.camera_id])
        focal = 0.5 * self.height / np.tan(0.5 * fovy)
        column = 0.5 * self.width + focal * local[:, 0] / depth
        row = 0.5 * self.height - focal * local[:, 1] / depth
        return np.stack([column, row], axis=1)

    def goal_pixel(self, goal_xy: np.ndarray) -> np.ndarray:
        """Pixel coordinates (column, row) of the goal marker's centre, shape (2,)."""
        goal = np.asarray(goal_xy, dtype=np.float64).reshape(2)
        return self.project(np.array([goal[0], goal[1], self.marker_height_m]))[0]

    # ------------------------------------------------------------------ lifetime
    def _require_open(self) -> mujoco.Renderer:
        if self._renderer is None:
            raise RuntimeError("SceneCamera is closed")
        return self._renderer

    def close(self) -> None:
        """Free the OpenGL context."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def __enter__(self) -> "SceneCamera":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass
