"""Collision accounting and the stop / refuse decisions of the safety monitor.

The monitor counts *contact steps*: control steps with at least one contact of a counted
class (by default the unsafe classes of the tasks: the blade or the robot touching the table,
the robot touching the floor or itself). Two sources feed it:

- the simulator: the per-class contact steps of each episode's outcome
  (genrl_interfaces/EpisodeOutcome, counted exactly as the executor counts them), given to
  :meth:`SafetyMonitor.end_episode` when the episode ends;
- a robot: a contact / force signal (e.g. the external wrench estimate of the arm) given to
  :meth:`SafetyMonitor.observe_force` as it arrives; a sample whose force magnitude exceeds
  ``force_threshold_n`` counts one contact step, at most one per control period (samples
  usually arrive faster than the control rate).

Limits (a count *above* the maximum crosses it):

- ``max_contact_steps_per_episode``: the running goal must be canceled (:attr:`should_cancel`,
  live with the force source; with the simulator's outcome the episode is already over and
  the crossing is only counted);
- ``max_total_contact_steps``: every new goal is refused (:meth:`admit`) until an operator
  resets the counts (:meth:`reset_counts`); a running goal is canceled too.

The totals are what training reports as its collision count.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum

#: the unsafe contact classes of hockey and basketball: table, floor and self collisions
DEFAULT_COUNTED_CLASSES = ("blade_table", "robot_table", "robot_floor", "robot_self")
NS_PER_S = 1_000_000_000


class SafetyLevel(IntEnum):
    """Values of genrl_interfaces/SafetyStatus ``level``."""

    OK = 0
    EPISODE_LIMIT = 1
    TOTAL_LIMIT = 2


@dataclass(frozen=True)
class MonitorConfig:
    """Limits and contact counting of the safety monitor.

    :param max_contact_steps_per_episode: contact steps allowed in one episode (0: none).
    :param max_total_contact_steps: contact steps allowed in total until a reset.
    :param counted_classes: contact classes (of the outcome) that count.
    :param force_threshold_n: force magnitude (N) above which a force sample is a contact.
    :param control_dt_s: control period; force samples count at most once per period.
    """

    max_contact_steps_per_episode: int = 0
    max_total_contact_steps: int = 100
    counted_classes: tuple[str, ...] = DEFAULT_COUNTED_CLASSES
    force_threshold_n: float = 30.0
    control_dt_s: float = 0.04

    def __post_init__(self) -> None:
        object.__setattr__(self, "counted_classes", tuple(self.counted_classes))
        if self.max_contact_steps_per_episode < 0 or self.max_total_contact_steps < 0:
            raise ValueError("contact step limits must be >= 0")
        if not self.counted_classes:
            raise ValueError("counted_classes must not be empty")
        if not (math.isfinite(self.force_threshold_n) and self.force_threshold_n > 0):
            raise ValueError(f"force_threshold_n must be > 0, got {self.force_threshold_n}")
        if not (math.isfinite(self.control_dt_s) and self.control_dt_s > 0):
            raise ValueError(f"control_dt_s must be > 0, got {self.control_dt_s}")


@dataclass(frozen=True)
class Decision:
    """Whether a new goal may start, and why not."""

    allowed: bool
    reason: str = ""


@dataclass(frozen=True)
class MonitorStatus:
    """Snapshot of the monitor (the content of genrl_interfaces/SafetyStatus)."""

    level: SafetyLevel
    accepting_goals: bool
    reason: str
    counted_contact_classes: tuple[str, ...]
    episode_contact_steps: int
    total_contact_steps: int
    max_contact_steps_per_episode: int
    max_total_contact_steps: int
    episodes: int
    episodes_over_limit: int
    episode_active: bool
    trajectories_validated: int
    trajectories_rejected: int
    goals_canceled: int
    last_rejection_reason: str
    last_ood_distance: float
    ood_threshold: float


@dataclass
class SafetyMonitor:
    """Counts contacts per episode and in total and decides to cancel / refuse goals."""

    config: MonitorConfig = field(default_factory=MonitorConfig)
    ood_threshold: float = float("nan")
    episode_active: bool = False
    episode_contact_steps: int = 0
    total_contact_steps: int = 0
    episodes: int = 0
    episodes_over_limit: int = 0
    trajectories_validated: int = 0
    trajectories_rejected: int = 0
    goals_canceled: int = 0
    last_rejection_reason: str = ""
    last_ood_distance: float = float("nan")
    _episode_over_limit: bool = False
    _last_force_step: int | None = None

    # ------------------------------------------------------------------ limits
    @property
    def total_limit_crossed(self) -> bool:
        return self.total_contact_steps > self.config.max_total_contact_steps

    @property
    def episode_limit_crossed(self) -> bool:
        return self.episode_contact_steps > self.config.max_contact_steps_per_episode

    @property
    def level(self) -> SafetyLevel:
        if self.total_limit_crossed:
            return SafetyLevel.TOTAL_LIMIT
        if self.episode_limit_crossed:
            return SafetyLevel.EPISODE_LIMIT
        return SafetyLevel.OK

    @property
    def reason(self) -> str:
        cfg = self.config
        if self.total_limit_crossed:
            return (
                f"{self.total_contact_steps} contact steps in total, above the limit of "
                f"{cfg.max_total_contact_steps}; new goals are refused until the counts are reset"
            )
        if self.episode_limit_crossed:
            return (
                f"{self.episode_contact_steps} contact steps in this episode, above the limit of "
                f"{cfg.max_contact_steps_per_episode}"
            )
        return ""

    @property
    def should_cancel(self) -> bool:
        """True while an episode runs that must be stopped."""
        return self.episode_active and self.level != SafetyLevel.OK

    def admit(self) -> Decision:
        """May a new goal start?"""
        if self.total_limit_crossed:
            return Decision(False, f"safety monitor: {self.reason}")
        return Decision(True)

    # ------------------------------------------------------------------ validation
    def record_validation(self, ok: bool, reason: str = "", ood_distance: float = math.nan) -> None:
        """Count one validated trajectory (``ok``) or one refused trajectory."""
        if ok:
            self.trajectories_validated += 1
        else:
            self.trajectories_rejected += 1
            self.last_rejection_reason = str(reason)
        self.last_ood_distance = float(ood_distance)

    def record_cancel(self) -> None:
        self.goals_canceled += 1

    # ------------------------------------------------------------------ episodes
    def begin_episode(self) -> None:
        """A goal was accepted and sent to the executor."""
        self.episode_active = True
        self.episode_contact_steps = 0
        self._episode_over_limit = False
        self._last_force_step = None

    def _add(self, steps: int) -> None:
        if steps < 0:
            raise ValueError(f"contact steps must be >= 0, got {steps}")
        self.episode_contact_steps += int(steps)
        self.total_contact_steps += int(steps)
        if self.episode_limit_crossed:
            self._episode_over_limit = True

    def observe_force(self, stamp_ns: int, force_n: float) -> bool:
        """One force sample of the robot (magnitude in N, stamp in ns); returns
        :attr:`should_cancel` afterwards. Samples outside an episode are ignored."""
        if not self.episode_active:
            return False
        if math.isfinite(force_n) and force_n > self.config.force_threshold_n:
            step = int(stamp_ns // round(self.config.control_dt_s * NS_PER_S))
            if step != self._last_force_step:
                self._last_force_step = step
                self._add(1)
        return self.should_cancel

    def counted_steps(self, contacts: Mapping[str, int]) -> int:
        """Contact steps of the counted classes in a per-class count."""
        return int(sum(int(contacts.get(name, 0)) for name in self.config.counted_classes))

    def end_episode(self, contacts: Mapping[str, int] | None = None) -> None:
        """The episode ended. ``contacts``: its per-class contact steps (the simulator's
        outcome); None when the live force count is used. An outcome without a begun episode
        (a goal that bypassed the monitor) is counted all the same."""
        if contacts is not None:
            if not self.episode_active:
                self.episode_contact_steps = 0
                self._episode_over_limit = False
            # the outcome's count replaces a live count of the same episode
            self.total_contact_steps -= self.episode_contact_steps
            self.episode_contact_steps = 0
            self._add(self.counted_steps(contacts))
        self.episodes += 1
        if self._episode_over_limit:
            self.episodes_over_limit += 1
        self.episode_active = False
        self._last_force_step = None

    def reset_counts(self) -> None:
        """Operator acknowledgment: counts back to zero, goals accepted again."""
        self.episode_contact_steps = 0
        self.total_contact_steps = 0
        self.episodes = 0
        self.episodes_over_limit = 0
        self.goals_canceled = 0
        self._episode_over_limit = False

    # ------------------------------------------------------------------ status
    def status(self) -> MonitorStatus:
        cfg = self.config
        return MonitorStatus(
            level=self.level,
            accepting_goals=not self.total_limit_crossed,
            reason=self.reason,
            counted_contact_classes=cfg.counted_classes,
            episode_contact_steps=self.episode_contact_steps,
            total_contact_steps=self.total_contact_steps,
            max_contact_steps_per_episode=cfg.max_contact_steps_per_episode,
            max_total_contact_steps=cfg.max_total_contact_steps,
            episodes=self.episodes,
            episodes_over_limit=self.episodes_over_limit,
            episode_active=self.episode_active,
            trajectories_validated=self.trajectories_validated,
            trajectories_rejected=self.trajectories_rejected,
            goals_canceled=self.goals_canceled,
            last_rejection_reason=self.last_rejection_reason,
            last_ood_distance=self.last_ood_distance,
            ood_threshold=self.ood_threshold,
        )
