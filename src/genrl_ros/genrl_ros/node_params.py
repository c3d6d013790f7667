"""Parameters of genrl_ros's nodes (trajectory generator, safety monitor, demonstration
player), as :class:`sim_bridge.node_params.ParamSpec` tuples: the nodes declare and check
them, the tests check ``config/*.yaml`` against them. No ROS import."""

from __future__ import annotations

from sim_bridge.arm import JOINT_LOWER_RAD, JOINT_UPPER_RAD, JOINT_VELOCITY_LIMIT_RAD_S
from sim_bridge.node_params import ParamSpec

from genrl_ros.safety.monitor import DEFAULT_COUNTED_CLASSES

TASKS = ("hockey", "basketball")
#: the FollowJointTrajectory server of the safety monitor (validates, then forwards)
SAFE_ACTION = "/safety/follow_joint_trajectory"
#: the arm controller's FollowJointTrajectory server (sim_bridge, or ros2_control's JTC)
CONTROLLER_ACTION = "/arm_controller/follow_joint_trajectory"

GENERATOR_NODE = "trajectory_generator"
GENERATOR_PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec(
        "model_path",
        "",
        "decoder: an ONNX file (genrl export) or a torch checkpoint; setting it (re)loads it",
    ),
    ParamSpec("expect_task", "", "refuse decoders of another task (empty: any)"),
    ParamSpec("expect_latent_dim", 0, "refuse decoders of another latent size (0: any)", minimum=0),
    ParamSpec("expect_horizon", 0, "refuse decoders of another horizon (0: any)", minimum=0),
    ParamSpec(
        "execute",
        True,
        "send every trajectory decoded from latent_action as a FollowJointTrajectory goal",
    ),
    ParamSpec(
        "action_name",
        SAFE_ACTION,
        "FollowJointTrajectory server the decoded trajectories go to (the safety monitor's)",
        nonempty=True,
        read_only=True,
    ),
    ParamSpec(
        "server_timeout_s",
        5.0,
        "how long to wait for the action server before giving up on a goal (s)",
        minimum=0.0,
        exclusive_minimum=True,
    ),
)

SAFETY_MONITOR_NODE = "safety_monitor"
SAFETY_MONITOR_PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec("task", "hockey", "task of the trajectories", choices=TASKS, read_only=True),
    ParamSpec(
        "action_name",
        SAFE_ACTION,
        "the monitor's own FollowJointTrajectory server (clients send their goals here)",
        nonempty=True,
        read_only=True,
    ),
    ParamSpec(
        "controller_action",
        CONTROLLER_ACTION,
        "the executor's FollowJointTrajectory server that validated goals are forwarded to "
        "(sim_bridge, or the robot's joint_trajectory_controller)",
        nonempty=True,
        read_only=True,
    ),
    ParamSpec(
        "server_timeout_s",
        5.0,
        "how long to wait for the controller's action server (s)",
        minimum=0.0,
        exclusive_minimum=True,
    ),
    ParamSpec(
        "contact_source",
        "outcome",
        "where contacts come from: the simulator's episode outcomes or a force topic",
        choices=("outcome", "force"),
        read_only=True,
    ),
    ParamSpec(
        "max_contact_steps_per_episode",
        0,
        "contact steps allowed in one episode; more cancels the running goal",
        minimum=0,
    ),
    ParamSpec(
        "max_total_contact_steps",
        100,
        "contact steps allowed in total; more refuses every new goal until reset_counts",
        minimum=0,
    ),
    ParamSpec(
        "counted_classes",
        list(DEFAULT_COUNTED_CLASSES),
        "contact classes of the outcome that count (table, floor and self collisions)",
        nonempty=True,
    ),
    ParamSpec(
        "force_threshold_n",
        30.0,
        "contact_source force: a force magnitude above this (N) is a contact",
        minimum=0.0,
        exclusive_minimum=True,
    ),
    ParamSpec(
        "position_margin_rad",
        0.0,
        "the joint position limits are shrunk by this much on both sides (rad)",
        minimum=0.0,
        maximum=0.5,
    ),
    ParamSpec(
        "velocity_scale",
        1.0,
        "fraction of the joint velocity limits allowed",
        minimum=0.0,
        maximum=1.0,
        exclusive_minimum=True,
    ),
    ParamSpec(
        "joint_lower_rad",
        [float(v) for v in JOINT_LOWER_RAD],
        "lower joint position limits (rad), panda_joint1..7",
        length=7,
    ),
    ParamSpec(
        "joint_upper_rad",
        [float(v) for v in JOINT_UPPER_RAD],
        "upper joint position limits (rad), panda_joint1..7",
        length=7,
    ),
    ParamSpec(
        "joint_velocity_limit_rad_s",
        [float(v) for v in JOINT_VELOCITY_LIMIT_RAD_S],
        "joint velocity limits (rad/s), panda_joint1..7",
        length=7,
        minimum=0.0,
        exclusive_minimum=True,
    ),
    ParamSpec("ood.enabled", False, "refuse trajectories far from the demonstrations"),
    ParamSpec("ood.dataset", "", "demonstration dataset directory (genrl demos --out DIR)"),
    ParamSpec("ood.k", 5, "the score is the distance to the k-th nearest demonstration", minimum=1),
    ParamSpec(
        "ood.quantile",
        0.99,
        "quantile of the demonstrations' own scores that becomes the threshold",
        minimum=0.0,
        maximum=1.0,
        exclusive_minimum=True,
    ),
    ParamSpec(
        "ood.threshold_scale",
        1.0,
        "factor on that quantile (> 1 widens the accepted region)",
        minimum=0.0,
        exclusive_minimum=True,
    ),
    ParamSpec(
        "status_rate_hz",
        2.0,
        "rate of the periodic status message (Hz); changes are published at once",
        minimum=0.0,
        maximum=100.0,
        exclusive_minimum=True,
        read_only=True,
    ),
)

DEMO_PLAYER_NODE = "demo_player"
DEMO_PLAYER_PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec("dataset", "", "demonstration dataset directory (genrl demos --out DIR)"),
    ParamSpec("max_episodes", 0, "episodes to play (0: all)", minimum=0),
    ParamSpec(
        "action_name",
        CONTROLLER_ACTION,
        "FollowJointTrajectory server the demonstrations are sent to",
        nonempty=True,
        read_only=True,
    ),
    ParamSpec(
        "reset_service",
        "/sim_bridge/reset_scene",
        "genrl_interfaces/srv/ResetScene service of the simulator",
        nonempty=True,
        read_only=True,
    ),
    ParamSpec(
        "server_timeout_s",
        30.0,
        "how long to wait for the simulator's services and action server at start (s)",
        minimum=0.0,
        exclusive_minimum=True,
    ),
    ParamSpec(
        "outcome_timeout_s",
        10.0,
        "how long to wait for an episode's outcome after its result (s)",
        minimum=0.0,
        exclusive_minimum=True,
    ),
    ParamSpec(
        "start_delay_s",
        2.0,
        "wait before the first episode, e.g. for the bag recorder to subscribe (s)",
        minimum=0.0,
    ),
)
