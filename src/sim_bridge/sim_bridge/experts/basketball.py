"""Scripted basketball expert: an overhand throw in joint space, solved on the simulator.

A throw has two parameters: its aim (rad, the yaw of joint 1 during the swing) and its
strength (0..1, the fraction of the largest swing). The arm moves in the vertical plane at
the aim angle (joints 3 and 5 stay at 0, joint 7 keeps the holder's palm behind the ball):

1. 0 - 1.58 s: from the start pose (ball above and behind the shoulder) to the wind-up, in
   one minimum-jerk move; joint 1 turns to the aim in its own minimum-jerk move over
   0 - 1.78 s (it ends 0.3 s before the swing's peak, while the hand is still slow, so that
   +-90 deg stay within the velocity margin);
2. 1.58 - 2.58 s: the swing, a minimum-jerk move of the shoulder (joint 2, forward), elbow
   (joint 4, bending) and wrist (joint 6, flicking forward) whose peak joint velocities,
   reached at mid-swing (2.08 s), are ``strength`` x ``VELOCITY_MARGIN`` (85 %) of the
   Panda's velocity limits (head-room for decoded trajectories), in
   the fixed ratio that throws farthest (a random search over planar release poses and the
   velocity ratios of joints 2, 4 and 6 under the joint position and velocity limits; the
   best also let joints 3 and 5 swing, for 12 % more range, at the price of a throw out of
   the aiming plane). The swing is centred on the task's start pose (turned to the aim), so
   the release point and direction hardly depend on the strength; the speed does;
3. the grip opens at 2.16 s (task constant), 80 ms after the peak: the hand is already
   decelerating, so the palm, which keeps rotating, does not catch up with the ball
   (released at the peak, the palm touched the ball again within 30 ms);
4. hold the follow-through pose.

No IK is needed: the commands are computed for a batch of throws at once with numpy.

:meth:`BasketballExpert.solve` finds aim and strength for each basket. The throw is planar
and the world is symmetric about the base's vertical axis, so every crossing of the rim
height lands on the aim's azimuth at a radius that depends on the strength only (checked to
< 1 mm for the direct flight and the first bounce). :meth:`calibrate` therefore tabulates,
straight ahead, the radius of the first three crossings (direct flight, after the first and
the second bounce) against the strength on a fine grid (321 throws, about 10 s). A goal is
first looked up in that table: the direct flight when it reaches the radius (smooth,
monotonic), else the first bounce, else the second. After a bounce the radius is not quite
monotonic in the strength: MuJoCo's penalty contact resolves an impact of ~6 m/s in a few
2 ms steps, and where the first step of contact falls still changes the rebound a little.
Over the 321 calibration throws the radius falls back by 0.94 m in all (at most 0.21 m at
once) on the first-bounce branch and by 1.94 m (at most 0.31 m) on the second; without the
soft start of the ball's contact (basketball.xml) it was 11.5 and 24.8 m, a saw tooth. On a
bounce branch the lookup therefore proposes up to 4 teeth (segments between two grid
strengths without a jump), flattest first; the first
iteration simulates them all and keeps the best. Then aim and strength are refined on the
simulator: the aim by the azimuth error of the chosen crossing, the strength by a
Newton/secant step on its radial error, kept inside the tooth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim_bridge.experts.profiles import MIN_JERK_PEAK, min_jerk
from sim_bridge.arm import JOINT_VELOCITY_LIMIT_RAD_S
from sim_bridge.executor import BatchExecutor, EpisodeOutcomes
from sim_bridge.tasks.basketball import (
    RELEASE_STEP,
    RIM_Z_M,
    Basketball,
    rim_crossings,
)
from sim_bridge.trajectory import check_trajectories

#: expert (and perturbed) joint velocities stay below this fraction of the Panda's limits.
#: Why not 0.95 (the hockey expert's): the policy executes trajectories decoded by a
#: generative model, which deviate from the demonstrations by a few hundredths of a radian
#: per 40 ms step; with throws at 95 % of the limits, 667 of 3840 decoded trajectories of an
#: EM run exceeded a limit (662 joint 1, whose turn to the aim peaked at 94 %). At 85 %,
#: reconstructions of a well-fitted VAE (latent 6, lr 1e-3) peak at p99 85-89 % of the limits
#: and 55 of 3840 EM trajectories were rejected. The margin costs reach (the swing is slower).
VELOCITY_MARGIN = 0.85
#: ``genrl demos --shaping gains``: joint speeds x (1 +- up to 30 %): throws of other
#: strengths and aims; all 5120 perturbed throws of a 5000-episode data set were safe, and
#: 94 % of the balls ended in the goal region.
SHAPING_GAIN_RANGE = 0.3
SWING_S = 1.0
RELEASE_LEAD_S = 0.08  # the swing's velocity peak comes this long before the grip opens
#: joint 1 reaches the aim this long before the swing's velocity peak: it turns during the
#: approach and the slow start of the swing (the ball's velocity at the release depends on
#: joint 1 only through its position then), so that +-90 deg fit within the margin
AIM_SETTLE_S = 0.3
#: joint velocity at the peak of the full-strength swing (rad/s): shoulder forward, elbow
#: bending, wrist flicking forward, each at ``VELOCITY_MARGIN`` of its limit
PEAK_VELOCITY_RAD_S = (
    VELOCITY_MARGIN * JOINT_VELOCITY_LIMIT_RAD_S * np.array([0.0, 1.0, 0.0, -1.0, 0.0, -1.0, 0.0])
)
STRENGTH_RANGE = (0.2, 1.0)
N_CROSSINGS = 3  # direct flight, after the first bounce, after the second bounce
#: two neighbouring grid strengths belong to one saw tooth when their radii differ by less
JUMP_M = 0.12


@dataclass(frozen=True)
class BasketballThrow:
    """Parameters of one throw: yaw of joint 1 (rad), strength (fraction of the full swing)."""

    aim_rad: float
    strength: float


class BasketballExpert:
    """Generates and solves scripted throws.

    :param executor: batched executor of the basketball task used by :meth:`solve`.
    """

    def __init__(self, executor: BatchExecutor | None = None) -> None:
        self.executor = executor if executor is not None else BatchExecutor(Basketball())
        self.task = self.executor.task
        self._calibration: tuple[np.ndarray, np.ndarray] | None = None

    # ------------------------------------------------------------------ trajectories
    @property
    def swing_start_s(self) -> float:
        return RELEASE_STEP * self.task.control_dt_s - RELEASE_LEAD_S - 0.5 * SWING_S

    @property
    def aim_turn_s(self) -> float:
        """Duration of joint 1's minimum-jerk turn from 0 to the aim (s)."""
        return self.swing_start_s + 0.5 * SWING_S - AIM_SETTLE_S

    @property
    def max_aim_rad(self) -> float:
        """Largest |aim| whose turn keeps joint 1 within ``VELOCITY_MARGIN`` of its limit."""
        peak = VELOCITY_MARGIN * JOINT_VELOCITY_LIMIT_RAD_S[0]
        return 0.999 * peak * self.aim_turn_s / MIN_JERK_PEAK

    def release_pose(self, aim_rad: np.ndarray) -> np.ndarray:
        """Joint positions at mid-swing (N, 7): the start pose turned to the aim."""
        aim = np.atleast_1d(np.asarray(aim_rad, dtype=np.float64))
        pose = np.repeat(self.task.start_rad[None], aim.size, axis=0)
        pose[:, 0] = aim
        return pose

    def batch_trajectories(self, aim_rad: np.ndarray, strength: np.ndarray) -> np.ndarray:
        """Joint position commands (N, T, 7) of N throws (no feasibility check)."""
        aim = np.clip(
            np.atleast_1d(np.asarray(aim_rad, dtype=np.float64)), -self.max_aim_rad, self.max_aim_rad
        )
        strength = np.atleast_1d(np.asarray(strength, dtype=np.float64))
        times = self.task.trajectory_spec.time_from_start_s()  # (T,)
        release = self.release_pose(aim)  # (N, 7)
        amplitude = strength[:, None] * PEAK_VELOCITY_RAD_S * SWING_S / MIN_JERK_PEAK
        windup = release - 0.5 * amplitude
        start = self.task.start_rad[None, None, :]
        approach = min_jerk(times / self.swing_start_s)[None, :, None]
        swing = min_jerk((times - self.swing_start_s) / SWING_S)[None, :, None]
        in_approach = (times <= self.swing_start_s)[None, :, None]
        commands = np.where(
            in_approach,
            start + approach * (windup[:, None, :] - start),
            windup[:, None, :] + swing * amplitude[:, None, :],
        )
        turn = min_jerk(times / self.aim_turn_s)  # joint 1 (the swing does not move it)
        commands[:, :, 0] = start[0, 0, 0] + turn[None, :] * (aim[:, None] - start[0, 0, 0])
        return commands

    def trajectory(self, throw: BasketballThrow) -> np.ndarray:
        """Joint position commands (T, 7) of a throw."""
        return self.batch_trajectories([throw.aim_rad], [throw.strength])[0]

    def trajectories(
        self, throws: list[BasketballThrow]
    ) -> tuple[list[BasketballThrow], np.ndarray]:
        """Feasible versions of several throws and their joint commands (N, T, 7).

        A throw is feasible when every joint stays within ``VELOCITY_MARGIN`` of its velocity
        limit and inside its position limits; the aim is clipped to :attr:`max_aim_rad` and an
        infeasible throw is weakened in 4 % steps.
        """
        aim = np.clip([t.aim_rad for t in throws], -self.max_aim_rad, self.max_aim_rad)
        strength = np.clip([t.strength for t in throws], 0.0, STRENGTH_RANGE[1])
        commands = self.batch_trajectories(aim, strength)
        spec = self.task.trajectory_spec
        for _ in range(40):
            bad = [
                i
                for i, r in enumerate(check_trajectories(commands, spec, VELOCITY_MARGIN))
                if r is not None
            ]
            if not bad:
                break
            strength[bad] *= 0.96
            commands[bad] = self.batch_trajectories(aim[bad], strength[bad])
        else:
            raise RuntimeError(f"no feasible basketball throw near {throws[bad[0]]}")
        feasible = [BasketballThrow(float(a), float(s)) for a, s in zip(aim, strength)]
        return feasible, commands

    # ------------------------------------------------------------------ simulation
    def crossings(self, commands: np.ndarray) -> np.ndarray:
        """Where the ball passes the rim height going down, (N, N_CROSSINGS, 2) (NaN: none)."""
        task = self.task
        model = self.executor.model
        ball = task.sensor_slice(model, "ball_pos")
        chunk = self.executor.chunk_episodes
        result = np.empty((commands.shape[0], N_CROSSINGS, 2))
        for begin in range(0, commands.shape[0], chunk):
            sensordata = self.executor.simulate(commands[begin : begin + chunk])
            result[begin : begin + chunk] = rim_crossings(
                sensordata[:, :, ball], RIM_Z_M, task.release_physics_step, N_CROSSINGS
            )
        return result

    # ------------------------------------------------------------------ solving
    def calibrate(self, n_strengths: int = 321) -> tuple[np.ndarray, np.ndarray]:
        """Strengths (S,) and radius of each rim crossing (S, N_CROSSINGS) (m; NaN: none),
        throwing straight ahead (+x)."""
        if self._calibration is None:
            strengths = np.linspace(*STRENGTH_RANGE, n_strengths)
            throws, commands = self.trajectories([BasketballThrow(0.0, s) for s in strengths])
            strengths = np.array([t.strength for t in throws])
            radius = np.linalg.norm(self.crossings(commands), axis=2)
            self._calibration = (strengths, radius)
        return self._calibration

    def reachable_radius_m(self) -> tuple[float, float]:
        """Smallest and largest crossing radius of the calibration throws (m)."""
        _, radius = self.calibrate()
        return float(np.nanmin(radius)), float(np.nanmax(radius))

    def lookup(self, radius_m: np.ndarray, candidates: int = 4) -> dict[str, np.ndarray]:
        """Candidate strengths for each goal radius (N,), from the calibration table.

        The direct flight is used wherever it reaches the radius (one candidate); otherwise
        the first bounce, otherwise the second, with up to ``candidates`` saw teeth each,
        flattest first (least sensitive to a strength error).

        :returns: arrays (N, candidates), NaN / -1 where there is no candidate:
            ``strength``, ``branch`` (crossing index), ``slope`` (d radius / d strength,
            m), ``low`` / ``high`` (the tooth's strength interval).
        """
        strengths, table = self.calibrate()
        radius_m = np.atleast_1d(np.asarray(radius_m, dtype=np.float64))
        n = radius_m.size
        out = {
            key: np.full((n, candidates), np.nan) for key in ("strength", "slope", "low", "high")
        }
        out["branch"] = np.full((n, candidates), -1, dtype=np.int64)
        lo, hi = table[:-1], table[1:]  # (S-1, C)
        spacing = np.diff(strengths)[:, None]
        with np.errstate(invalid="ignore"):
            step = hi - lo
            # a jump: a step far larger than the branch's typical step
            typical = np.nanmedian(np.abs(step), axis=0)
            tooth = np.abs(step) < np.maximum(JUMP_M, 4.0 * typical)
            gradient = step / spacing
        for i, r in enumerate(radius_m):
            with np.errstate(invalid="ignore"):
                inside = tooth & (np.minimum(lo, hi) <= r) & (r <= np.maximum(lo, hi))
            for c in range(N_CROSSINGS):
                rows = np.flatnonzero(inside[:, c])
                if rows.size:
                    keep = 1 if c == 0 else candidates
                    rows = rows[np.argsort(np.abs(gradient[rows, c]))][:keep]
                    with np.errstate(invalid="ignore", divide="ignore"):
                        fraction = np.nan_to_num((r - lo[rows, c]) / step[rows, c])
                    out["strength"][i, : rows.size] = strengths[rows] + fraction * spacing[rows, 0]
                    out["branch"][i, : rows.size] = c
                    out["slope"][i, : rows.size] = gradient[rows, c]
                    out["low"][i, : rows.size] = strengths[rows]
                    out["high"][i, : rows.size] = strengths[rows + 1]
                    break
            else:  # not bracketed: the nearest tabulated crossing
                with np.errstate(invalid="ignore"):
                    error = np.abs(table - r)
                k, c = np.unravel_index(np.nanargmin(error), error.shape)
                g = gradient[min(k, strengths.size - 2), c]
                if not np.isfinite(g) or abs(g) < 0.5:
                    g = np.nanmedian(gradient[tooth[:, c], c])
                out["strength"][i, 0], out["branch"][i, 0], out["slope"][i, 0] = (
                    strengths[k],
                    c,
                    g,
                )
                out["low"][i, 0] = strengths[max(k - 1, 0)]
                out["high"][i, 0] = strengths[min(k + 1, strengths.size - 1)]
        return out

    def _simulate_throws(
        self, aim: np.ndarray, strength: np.ndarray, goals: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Feasible aims and strengths, rim crossings (N, C, 2) and the reward distance (N,)."""
        throws, commands = self.trajectories([BasketballThrow(a, s) for a, s in zip(aim, strength)])
        crossing = self.crossings(commands)
        with np.errstate(invalid="ignore"):
            distance = np.linalg.norm(crossing - goals[:, None], axis=2)
        error = np.where(np.isfinite(distance), distance, np.inf).min(axis=1)
        aim = np.array([t.aim_rad for t in throws])
        strength = np.array([t.strength for t in throws])
        return aim, strength, crossing, error

    def solve(
        self, goals_xy: np.ndarray, iterations: int = 6, tolerance_m: float = 0.01
    ) -> tuple[list[BasketballThrow], np.ndarray, EpisodeOutcomes]:
        """Throws that put the ball through each basket (N, 2).

        Iteration 1 tries every lookup candidate of a goal and keeps the best; the next
        ones refine it (goals within ``tolerance_m`` stop).

        :returns: the best throws, their trajectories (N, T, 7) and their outcomes.
        """
        goals = np.asarray(goals_xy, dtype=np.float64).reshape(-1, 2)
        n = goals.shape[0]
        goal_radius = np.linalg.norm(goals, axis=1)
        goal_angle = np.arctan2(goals[:, 1], goals[:, 0])

        # iteration 1: all candidates
        table = self.lookup(goal_radius)
        goal_index, column = np.nonzero(table["branch"] >= 0)
        aim_c, strength_c, crossing_c, error_c = self._simulate_throws(
            goal_angle[goal_index], table["strength"][goal_index, column], goals[goal_index]
        )
        pick = np.full(n, -1)
        best_error = np.full(n, np.inf)
        for row, (i, e) in enumerate(zip(goal_index, error_c)):
            if e < best_error[i] or pick[i] < 0:
                best_error[i], pick[i] = e, row
        chosen = column[pick]
        rows = np.arange(n)
        branch = table["branch"][rows, chosen]
        slope = table["slope"][rows, chosen]
        low, high = table["low"][rows, chosen], table["high"][rows, chosen]
        aim, strength = aim_c[pick].copy(), strength_c[pick].copy()
        best_aim, best_strength = aim.copy(), strength.copy()
        crossing = crossing_c[pick]
        last_strength = np.full(n, np.nan)  # previous strength and radius, for a secant
        last_radius = np.full(n, np.nan)
        active = np.arange(n)
        for iteration in range(1, iterations + 1):
            if iteration > 1:
                aim[active], strength[active], crossing, error = self._simulate_throws(
                    aim[active], strength[active], goals[active]
                )
                improved = error < best_error[active]
                better = active[improved]
                best_error[better] = error[improved]
                best_aim[better], best_strength[better] = aim[better], strength[better]
            still = best_error[active] >= tolerance_m
            if iteration == iterations or not still.any():
                break
            # corrections from the crossing the lookup aimed at
            own = crossing[np.arange(active.size), branch[active]]  # (A, 2)
            has = np.isfinite(own).all(axis=1)
            reached_radius = np.linalg.norm(own, axis=1)
            reached_angle = np.arctan2(own[:, 1], own[:, 0])
            angle_error = np.angle(np.exp(1j * (goal_angle[active] - reached_angle)))
            local = slope[active]
            with np.errstate(invalid="ignore", divide="ignore"):
                ds = strength[active] - last_strength[active]
                secant = (reached_radius - last_radius[active]) / ds
                usable = (
                    has
                    & np.isfinite(secant)
                    & (np.abs(ds) > 1e-5)
                    & (np.abs(secant - local) < 0.7 * np.abs(local))
                )
            local = np.where(usable, secant, local)
            last_strength[active] = np.where(has, strength[active], np.nan)
            last_radius[active] = np.where(has, reached_radius, np.nan)
            step = np.where(has, (goal_radius[active] - reached_radius) / local, 0.0)
            margin = 0.5 * (high[active] - low[active])
            strength[active] = np.clip(
                strength[active] + step, low[active] - margin, high[active] + margin
            ).clip(0.05, STRENGTH_RANGE[1])
            aim[active] = np.where(has, aim[active] + angle_error, aim[active])
            active = active[still]
            crossing = crossing[still]
        best = [BasketballThrow(float(a), float(s)) for a, s in zip(best_aim, best_strength)]
        best, trajectories = self.trajectories(best)
        outcome = self.executor.execute(trajectories, goals)
        return best, trajectories, outcome


def main(argv: list[str] | None = None) -> None:
    """Measure the expert: reachable radii of the calibration throws, then solve random
    goals and report the final distances per radius bin.

    ``python -m sim_bridge.experts.basketball --goals 500 --seed 0 [--radius-max 6.5]``
    """
    import argparse
    import itertools
    import time

    from sim_bridge.tasks.basketball import GOAL_ANGLE_RANGE_RAD, GOAL_RADIUS_RANGE_M

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--goals", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--radius-min", type=float, default=GOAL_RADIUS_RANGE_M[0])
    parser.add_argument("--radius-max", type=float, default=GOAL_RADIUS_RANGE_M[1])
    parser.add_argument("--iterations", type=int, default=6)
    args = parser.parse_args(argv)

    expert = BasketballExpert()
    begin = time.perf_counter()
    strengths, radius = expert.calibrate()
    calibration_s = time.perf_counter() - begin
    print(f"calibration: {strengths.size} throws in {calibration_s:.1f} s")
    for c, name in enumerate(("direct flight", "after 1st bounce", "after 2nd bounce")):
        print(
            f"  {name:17s}: rim crossings at radius {np.nanmin(radius[:, c]):.2f} - "
            f"{np.nanmax(radius[:, c]):.2f} m"
        )

    rng = np.random.default_rng(args.seed)
    goal_radius = rng.uniform(args.radius_min, args.radius_max, args.goals)
    goal_angle = rng.uniform(*GOAL_ANGLE_RANGE_RAD, args.goals)
    goals = np.stack([goal_radius * np.cos(goal_angle), goal_radius * np.sin(goal_angle)], 1)
    begin = time.perf_counter()
    _, _, outcome = expert.solve(goals, iterations=args.iterations)
    solve_s = time.perf_counter() - begin
    distance = outcome.distance_m
    print(
        f"solve: {args.goals} goals, radius {args.radius_min:.2f} - {args.radius_max:.2f} m, "
        f"in {solve_s:.1f} s"
    )
    print(
        f"  final distance: median {np.median(distance):.3f} m, mean {distance.mean():.3f} m, "
        f"p90 {np.percentile(distance, 90):.3f} m, max {distance.max():.3f} m"
    )
    print(
        f"  unsafe episodes: {outcome.unsafe.mean():.3f} "
        f"(ball touched the robot after release in {np.mean(outcome.contact_steps_of('ball_robot') > 0):.3f})"
    )
    edges = np.arange(np.floor(args.radius_min * 2) / 2, args.radius_max + 0.5, 0.5)
    for lo, hi in itertools.pairwise(edges):
        inside = (goal_radius >= lo) & (goal_radius < hi)
        if inside.any():
            d = distance[inside]
            print(
                f"  radius {lo:.1f}-{hi:.1f} m: n {inside.sum():3d}, median {np.median(d):.3f}, "
                f"p90 {np.percentile(d, 90):.3f}, max {d.max():.3f} m"
            )


if __name__ == "__main__":
    main()
