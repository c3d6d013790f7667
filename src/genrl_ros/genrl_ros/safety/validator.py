"""Validation of a trajectory before it may reach an executor (simulator or robot).

Every trajectory passes :meth:`TrajectoryValidator.check` first:

1. shape and values: T x 7 commands, all finite;
2. joint position limits, optionally shrunk by a margin, and joint velocity limits (the step
   from the start configuration / the previous command over the control period), optionally
   scaled down -- the limits come from the configuration (by default the arm's published
   limits, :data:`sim_bridge.arm.PANDA_LIMITS`);
3. an out-of-distribution (OOD) guard against the demonstration set
   (:class:`DemonstrationDistanceGuard`): a generative model can decode latents far from the
   prior into trajectories unlike any demonstration; such a trajectory is refused even when
   it respects the limits.

The OOD guard. Distance between two trajectories = root mean square of their joint position
differences over all steps and joints (rad), ``||a - b||_2 / sqrt(T * J)``. The score of a
trajectory is its distance to its ``k``-th nearest demonstration (k > 1 tolerates a single
outlying demonstration next to it). The threshold is calibrated on the demonstrations
themselves: the ``quantile`` (e.g. 0.99) of the leave-one-out scores of the demonstrations
(each demonstration's distance to its k-th nearest *other* demonstration), times
``threshold_scale`` (>= 1 widens it). So, by construction, about ``1 - quantile`` of
demonstration-like trajectories would be refused; a trajectory farther from the data than
99 % of the demonstrations are from each other is refused. For large sets the reference set and
the calibration queries are random subsets of fixed size (seeded): memory and time stay
bounded (N_ref x N_query distances).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from sim_bridge.arm import PANDA_LIMITS, ArmLimits
from sim_bridge.trajectory import TrajectoryError, TrajectorySpec, check_trajectories


class ValidationError(ValueError):
    """A configuration of the validator that cannot work."""


@dataclass(frozen=True)
class Verdict:
    """Whether a trajectory may be executed.

    :param ok: True when it passed every check.
    :param reason: why not (names the check, step, joint and bound); empty when ok.
    :param check: ``shape``, ``finite``, ``limits`` or ``ood`` for a refusal, ``""`` when ok.
    :param ood_distance: distance to the k-th nearest demonstration (rad, RMS), NaN when the
        guard is disabled or the trajectory failed an earlier check.
    :param ood_threshold: the guard's threshold (NaN when disabled).
    """

    ok: bool
    reason: str = ""
    check: str = ""
    ood_distance: float = float("nan")
    ood_threshold: float = float("nan")


class DemonstrationDistanceGuard:
    """Out-of-distribution check against a demonstration set (see the module docstring).

    :param demonstrations: (N, T, J) demonstration trajectories (rad), N >= k + 1.
    :param k: which nearest demonstration the score uses (1 = the nearest).
    :param quantile: quantile of the leave-one-out scores that becomes the threshold.
    :param threshold_scale: factor (>= 1 widens) applied to that quantile.
    :param max_reference: at most this many demonstrations are kept as the reference set.
    :param max_calibration: at most this many leave-one-out scores are computed.
    :param seed: seed of the subsampling.
    """

    def __init__(
        self,
        demonstrations: np.ndarray,
        k: int = 5,
        quantile: float = 0.99,
        threshold_scale: float = 1.0,
        max_reference: int = 5000,
        max_calibration: int = 2000,
        seed: int = 0,
    ) -> None:
        demos = np.asarray(demonstrations, dtype=np.float64)
        if demos.ndim != 3:
            raise ValidationError(f"demonstrations have shape {demos.shape}, expected (N, T, J)")
        if not np.isfinite(demos).all():
            raise ValidationError("demonstrations must be finite")
        if k < 1:
            raise ValidationError(f"ood k must be >= 1, got {k}")
        if not 0.0 < quantile <= 1.0:
            raise ValidationError(f"ood quantile must be in (0, 1], got {quantile}")
        if not threshold_scale > 0:
            raise ValidationError(f"ood threshold_scale must be > 0, got {threshold_scale}")
        if demos.shape[0] < k + 1:
            raise ValidationError(
                f"{demos.shape[0]} demonstrations are too few for k = {k} (need k + 1)"
            )
        rng = np.random.default_rng(seed)
        n = demos.shape[0]
        if n > max_reference:
            demos = demos[np.sort(rng.choice(n, max_reference, replace=False))]
        self.k = int(k)
        self.quantile = float(quantile)
        self.threshold_scale = float(threshold_scale)
        self.horizon, self.n_joints = int(demos.shape[1]), int(demos.shape[2])
        self._scale = 1.0 / np.sqrt(self.horizon * self.n_joints)
        self._reference = demos.reshape(demos.shape[0], -1)
        self._reference_sq = np.einsum("ij,ij->i", self._reference, self._reference)

        m = self._reference.shape[0]
        queries = np.arange(m)
        if m > max_calibration:
            queries = np.sort(rng.choice(m, max_calibration, replace=False))
        self.calibration_scores = self._scores(self._reference[queries], exclude=queries)
        self.threshold = float(
            np.quantile(self.calibration_scores, self.quantile) * self.threshold_scale
        )

    @property
    def n_reference(self) -> int:
        return int(self._reference.shape[0])

    def _scores(self, flat: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
        """k-th nearest reference distance of each row of ``flat`` (Q, T*J); ``exclude[q]``
        is a reference index that row q must not match (leave-one-out)."""
        out = np.empty(flat.shape[0])
        chunk = max(1, int(4_000_000 // max(1, self._reference.shape[0])))
        for begin in range(0, flat.shape[0], chunk):
            rows = flat[begin : begin + chunk]
            sq = np.einsum("ij,ij->i", rows, rows)
            d2 = sq[:, None] + self._reference_sq[None, :] - 2.0 * rows @ self._reference.T
            np.maximum(d2, 0.0, out=d2)
            if exclude is not None:
                d2[np.arange(rows.shape[0]), exclude[begin : begin + chunk]] = np.inf
            kth = np.partition(d2, self.k - 1, axis=1)[:, self.k - 1]
            out[begin : begin + chunk] = np.sqrt(kth) * self._scale
        return out

    def score(self, trajectory: np.ndarray) -> float:
        """Distance (rad, RMS) of a (T, J) trajectory to its k-th nearest demonstration."""
        array = np.asarray(trajectory, dtype=np.float64)
        if array.shape != (self.horizon, self.n_joints):
            raise TrajectoryError(
                f"trajectory has shape {array.shape}, the demonstrations have "
                f"({self.horizon}, {self.n_joints})"
            )
        return float(self._scores(array.reshape(1, -1))[0])

    @classmethod
    def from_dataset(
        cls, directory: str | os.PathLike[str], safe_only: bool = True, **kwargs
    ) -> DemonstrationDistanceGuard:
        """A guard over a demonstration dataset written by ``genrl demos`` (only its safe
        episodes unless ``safe_only`` is False)."""
        from genrl_ros.data.dataset import TrajectoryDataset  # noqa: PLC0415

        dataset = TrajectoryDataset.load(directory)
        trajectories = dataset.trajectories
        if safe_only:
            trajectories = trajectories[~dataset.unsafe]
        return cls(trajectories, **kwargs)


@dataclass(frozen=True)
class ValidatorConfig:
    """Limits the validator enforces.

    :param position_margin_rad: the position limits are shrunk by this much on both sides.
    :param velocity_scale: fraction of the joint velocity limits allowed (0, 1].
    :param lower_rad, upper_rad, velocity_limit_rad_s: per-joint overrides of the arm's limits
        (None = the arm's published limits).
    """

    position_margin_rad: float = 0.0
    velocity_scale: float = 1.0
    lower_rad: tuple[float, ...] | None = None
    upper_rad: tuple[float, ...] | None = None
    velocity_limit_rad_s: tuple[float, ...] | None = None

    def limits(self, base: ArmLimits = PANDA_LIMITS) -> ArmLimits:
        """The arm limits after the overrides and the position margin."""
        if not 0.0 < self.velocity_scale <= 1.0:
            raise ValidationError(f"velocity_scale must be in (0, 1], got {self.velocity_scale}")
        if self.position_margin_rad < 0:
            raise ValidationError(
                f"position_margin_rad must be >= 0, got {self.position_margin_rad}"
            )
        lower = np.asarray(self.lower_rad if self.lower_rad is not None else base.lower_rad, float)
        upper = np.asarray(self.upper_rad if self.upper_rad is not None else base.upper_rad, float)
        velocity = np.asarray(
            self.velocity_limit_rad_s
            if self.velocity_limit_rad_s is not None
            else base.velocity_limit_rad_s,
            float,
        )
        n = len(base.joint_names)
        for name, values in (("lower_rad", lower), ("upper_rad", upper), ("velocity", velocity)):
            if values.shape != (n,):
                raise ValidationError(f"{name} has {values.size} values, expected {n}")
        lower = lower + self.position_margin_rad
        upper = upper - self.position_margin_rad
        try:
            return ArmLimits(
                joint_names=base.joint_names,
                lower_rad=lower,
                upper_rad=upper,
                velocity_limit_rad_s=velocity * self.velocity_scale,
                effort_limit_nm=base.effort_limit_nm,
            )
        except ValueError as err:
            raise ValidationError(f"joint limits after the margin are invalid: {err}") from None


class TrajectoryValidator:
    """Checks trajectories of one task before execution.

    :param spec: the task's trajectory specification (horizon, control period, start
        configuration); its limits are replaced by ``config``'s.
    :param config: the limits to enforce.
    :param guard: the out-of-distribution guard, or None to skip that check.
    """

    def __init__(
        self,
        spec: TrajectorySpec,
        config: ValidatorConfig | None = None,
        guard: DemonstrationDistanceGuard | None = None,
    ) -> None:
        self.config = config or ValidatorConfig()
        limits = self.config.limits(spec.limits)
        self.spec = TrajectorySpec(
            horizon=spec.horizon,
            control_dt_s=spec.control_dt_s,
            start_rad=spec.start_rad,
            limits=limits,
        )
        if guard is not None and (guard.horizon, guard.n_joints) != (
            spec.horizon,
            spec.n_joints,
        ):
            raise ValidationError(
                f"the demonstrations are ({guard.horizon}, {guard.n_joints}) trajectories, the "
                f"task's are ({spec.horizon}, {spec.n_joints})"
            )
        self.guard = guard

    @property
    def ood_threshold(self) -> float:
        return float("nan") if self.guard is None else self.guard.threshold

    def check(self, trajectory: np.ndarray) -> Verdict:
        """The verdict on one (T, J) trajectory of joint position commands (rad)."""
        threshold = self.ood_threshold
        try:
            reason = check_trajectories(np.asarray(trajectory), self.spec)[0]
        except TrajectoryError as err:
            return Verdict(False, str(err), "shape", ood_threshold=threshold)
        if reason is not None:
            reason = reason.removeprefix("episode 0: ")
            check = "finite" if "must be finite" in reason else "limits"
            return Verdict(False, reason, check, ood_threshold=threshold)
        if self.guard is None:
            return Verdict(True)
        distance = self.guard.score(trajectory)
        if distance > threshold:
            return Verdict(
                False,
                f"out of distribution: distance to the {self.guard.k}-th nearest demonstration "
                f"is {distance:.4f} rad (RMS), above the threshold {threshold:.4f} rad (quantile "
                f"{self.guard.quantile} x {self.guard.threshold_scale} of the demonstrations' own)",
                "ood",
                distance,
                threshold,
            )
        return Verdict(True, "", "", distance, threshold)
