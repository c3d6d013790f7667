"""Time profiles shared by the scripted experts."""

from __future__ import annotations

import numpy as np

#: peak speed of a minimum-jerk move = MIN_JERK_PEAK * length / duration (at mid-time)
MIN_JERK_PEAK = 1.875


def min_jerk(tau: np.ndarray) -> np.ndarray:
    """Minimum-jerk progress 0 -> 1 for tau in [0, 1] (clipped outside)."""
    tau = np.clip(tau, 0.0, 1.0)
    return tau**3 * (10.0 - 15.0 * tau + 6.0 * tau**2)
