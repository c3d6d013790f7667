"""Hockey (seed 000, section 6.1): shoot a puck with a stick to a target on the table.

- Goal: target (x, y) uniform in x in [0.65, 1.3] m, y in [-0.4, 0.4] m from the robot base.
- Trajectory: 69 joint position commands, one every 40 ms (2.76 s), then the last command is
  held for 1.2 s so that the puck comes to rest (sliding friction 0.15 stops a 1.7 m/s puck
  in about 1.2 s); the outcome is measured 3.96 s after the start. (The paper gives no
  control period; 40 ms leaves the Panda's joint velocity limits room for a wind-up and a
  shot.)
- Reward: minus the distance between the puck's final (x, y) and the target, in metres.
- Contacts, counted per control step (40 ms) in which they occur:
  ``blade_table`` stick or blade touching the table top (unsafe: the safety measure of the
  paper), ``stick_puck`` (allowed: that is the shot), ``robot_table`` an arm link touching
  the table (unsafe), ``robot_self`` two arm links, or the stick and an arm link (unsafe).
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import mujoco
import numpy as np

from sim_bridge.tasks.base import ContactClass, Task, TaskEvaluation

PUCK_START_XY = np.array([0.45, 0.0])
PUCK_RADIUS_M = 0.038
PUCK_HALF_HEIGHT_M = 0.0125
BLADE_HALF_THICKNESS_M = 0.005
BLADE_HALF_WIDTH_M = 0.06
BLADE_HALF_HEIGHT_M = 0.02
#: blade box half sizes along the blade site's x (face normal), y (width), z (stick) axes
BLADE_HALF_SIZE_M = (BLADE_HALF_THICKNESS_M, BLADE_HALF_WIDTH_M, BLADE_HALF_HEIGHT_M)
GOAL_X_RANGE_M = (0.65, 1.3)
GOAL_Y_RANGE_M = (-0.4, 0.4)
AT_REST_SPEED_M_S = 0.01
#: demonstrations keep the blade at least this far above the table top (m): trajectories
#: decoded from a model of the demonstrations deviate from them by millimetres, and must
#: not touch the table for that
DEMO_MIN_BLADE_CLEARANCE_M = 0.005
#: the workspace check (:meth:`Hockey.workspace_violations`, used by EM training and the
#: sim_bridge node): a trajectory whose commanded joint positions put the blade's lowest
#: corner closer than this to the table top is refused before execution (m). At the commanded
#: positions the demonstrations keep about 5 mm; decoded trajectories that touched the table
#: in EM training were commanded 11 mm below to 0.2 mm above it.
COMMAND_MIN_BLADE_CLEARANCE_M = 0.004

# Blade centre at (0.30, 0, 0.15) m, face normal +x, stick vertical (solved with ArmIK and
# rounded; test_tasks checks the pose).
START_RAD = np.array([0.0, -0.7828, 0.0, -2.2774, 0.0, 1.4946, 0.0])


def lowest_blade_corner_z(centre_z: np.ndarray, axes_z: np.ndarray) -> np.ndarray:
    """Height (m) of the blade box's lowest corner: its centre height (...) minus the half
    sizes times the |z components| of the blade's x, y, z axes (..., 3)."""
    return centre_z - np.abs(axes_z) @ np.asarray(BLADE_HALF_SIZE_M)


class Hockey(Task):
    name = "hockey"
    horizon = 69
    control_dt_s = 0.04
    substeps = 20
    settle_steps = 30
    xml_path = Path(__file__).with_name("hockey.xml")
    contact_classes = (
        ContactClass("blade_table", True, "stick or blade against the table top"),
        ContactClass("stick_puck", False, "stick or blade against the puck (the shot)"),
        ContactClass("robot_table", True, "an arm link against the table top"),
        ContactClass("robot_self", True, "two arm links, or the stick and an arm link"),
    )

    @property
    def start_rad(self) -> np.ndarray:
        return START_RAD.copy()

    def sample_goals(self, n: int, rng: np.random.Generator) -> np.ndarray:
        x = rng.uniform(*GOAL_X_RANGE_M, size=n)
        y = rng.uniform(*GOAL_Y_RANGE_M, size=n)
        return np.stack([x, y], axis=1)

    def goal_in_region(self, goals_xy: np.ndarray) -> np.ndarray:
        goals_xy = np.asarray(goals_xy, dtype=np.float64).reshape(-1, 2)
        return (
            (goals_xy[:, 0] >= GOAL_X_RANGE_M[0])
            & (goals_xy[:, 0] <= GOAL_X_RANGE_M[1])
            & (goals_xy[:, 1] >= GOAL_Y_RANGE_M[0])
            & (goals_xy[:, 1] <= GOAL_Y_RANGE_M[1])
        )

    def contact_counts(self, model: mujoco.MjModel, sensordata: np.ndarray) -> np.ndarray:
        def column(name: str) -> np.ndarray:
            return sensordata[..., self.sensor_slice(model, name).start]

        blade_table = column("blade_table")
        robot_table = np.maximum(column("arm_and_tool_table") - blade_table, 0.0)
        counts = np.stack(
            [blade_table, column("stick_puck"), robot_table, column("robot_self")], axis=-1
        )
        return np.rint(counts).astype(np.int32)

    def evaluate(
        self, model: mujoco.MjModel, sensordata: np.ndarray, goals_xy: np.ndarray
    ) -> TaskEvaluation:
        final_pos = sensordata[:, -1, self.sensor_slice(model, "puck_pos")]
        final_speed = np.linalg.norm(sensordata[:, -1, self.sensor_slice(model, "puck_vel")], axis=1)
        distance = np.linalg.norm(final_pos[:, :2] - goals_xy, axis=1)
        clearance = self.blade_clearance(model, sensordata)
        return TaskEvaluation(
            reward=-distance,
            distance_m=distance,
            final_object_pos=final_pos.copy(),
            object_at_rest=final_speed < AT_REST_SPEED_M_S,
            extras={"min_blade_clearance_m": clearance.min(axis=1)},
        )

    def blade_clearance(self, model: mujoco.MjModel, sensordata: np.ndarray) -> np.ndarray:
        """Height (m) of the blade's lowest corner above the table top at every physics step,
        (N, nstep); negative when it presses into the table."""
        centre_z = sensordata[..., self.sensor_slice(model, "blade_pos").start + 2]
        axes_z = np.stack(
            [sensordata[..., self.sensor_slice(model, axis).start + 2]
             for axis in ("blade_xaxis", "blade_yaxis", "blade_zaxis")],
            axis=-1,
        )
        return lowest_blade_corner_z(centre_z, axes_z)

    @cached_property
    def _kinematics_model(self) -> mujoco.MjModel:
        return self.build_model()

    def commanded_blade_clearance(self, positions: np.ndarray) -> np.ndarray:
        """Height (m) of the blade's lowest corner above the table top at every command, by
        forward kinematics at the commanded joint positions (no dynamics), (N, T)."""
        commands = np.asarray(positions, dtype=np.float64).reshape(-1, self.horizon, self.n_joints)
        model = self._kinematics_model
        data = mujoco.MjData(model)
        data.qpos[:] = self.initial_qpos(model)
        site = model.site("blade_center").id
        clearance = np.empty(commands.shape[:2])
        for i, trajectory in enumerate(commands):
            for k, q in enumerate(trajectory):
                data.qpos[: self.n_joints] = q
                mujoco.mj_kinematics(model, data)
                # row 2 of the site frame: z components of the blade's x, y, z axes
                axes_z = data.site_xmat[site].reshape(3, 3)[2]
                clearance[i, k] = lowest_blade_corner_z(data.site_xpos[site, 2], axes_z)
        return clearance

    def workspace_violations(self, positions: np.ndarray) -> list[str | None]:
        """A trajectory is refused when a command puts the blade's lowest corner less than
        ``COMMAND_MIN_BLADE_CLEARANCE_M`` above the table top (the puck is hit by the blade's
        face, never by pressing it onto the table)."""
        reasons: list[str | None] = []
        for row in self.commanded_blade_clearance(positions):
            step = int(np.argmin(row))
            if row[step] < COMMAND_MIN_BLADE_CLEARANCE_M:
                reasons.append(
                    f"commanded blade clearance {row[step] * 1e3:.1f} mm at step {step} "
                    f"(t = {(step + 1) * self.control_dt_s:.2f} s) is below the workspace margin "
                    f"of {COMMAND_MIN_BLADE_CLEARANCE_M * 1e3:.0f} mm above the table top"
                )
            else:
                reasons.append(None)
        return reasons

    def demonstration_ok(self, outcomes) -> np.ndarray:
        """Demonstrations keep ``DEMO_MIN_BLADE_CLEARANCE_M`` between blade and table."""
        clearance = outcomes.extras.get("min_blade_clearance_m")
        if clearance is None:
            return np.ones(len(outcomes), dtype=bool)
        return np.nan_to_num(clearance, nan=-1.0) >= DEMO_MIN_BLADE_CLEARANCE_M

    def target_body(self) -> str:
        """Mocap body that shows the goal in camera images."""
        return "target"
