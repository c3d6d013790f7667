"""Safety of trajectory execution: validation before execution (limits, out-of-distribution
guard), collision accounting, and the decisions to cancel a running goal or refuse new ones.

- :mod:`genrl_ros.safety.validator`: where a trajectory is validated before execution;
- :mod:`genrl_ros.safety.monitor`: contact counting per episode and in total, limits;
- :mod:`genrl_ros.safety.gate`: the review of a FollowJointTrajectory goal by the monitor node;
- :mod:`genrl_ros.safety.messages`: genrl_interfaces/SafetyStatus conversions.

No ROS import; the safety-monitor node (``genrl_ros.nodes.safety_monitor_node``) wraps them.
"""

from genrl_ros.safety.monitor import (
    DEFAULT_COUNTED_CLASSES,
    Decision,
    MonitorConfig,
    MonitorStatus,
    SafetyLevel,
    SafetyMonitor,
)
from genrl_ros.safety.validator import (
    DemonstrationDistanceGuard,
    TrajectoryValidator,
    ValidationError,
    ValidatorConfig,
    Verdict,
)

__all__ = [
    "DEFAULT_COUNTED_CLASSES",
    "Decision",
    "DemonstrationDistanceGuard",
    "MonitorConfig",
    "MonitorStatus",
    "SafetyLevel",
    "SafetyMonitor",
    "TrajectoryValidator",
    "ValidationError",
    "ValidatorConfig",
    "Verdict",
]
