"""Deployment graph: the learned policy and decoder drive an arm through the safety monitor.

    # simulated arm (sim_bridge)
    ros2 launch genrl_ros deploy.launch.py driver:=sim task:=hockey \
        model:=/path/decoder.onnx policy:=/path/policy.onnx
    # real arm: its ros2_control joint_trajectory_controller serves FollowJointTrajectory
    ros2 launch genrl_ros deploy.launch.py driver:=hardware \
        controller_action:=/arm_controller/follow_joint_trajectory \
        contact_wrench:=/franka_robot_state_broadcaster/external_wrench_in_base_frame ...

Goals come from ``/goal`` (geometry_msgs/PointStamped; e.g. ``ros2 topic pub --once /goal
...``, or sim_bridge's ``/sim_bridge/reset_scene`` service in simulation). The policy acts
deterministically (its mean). Trajectories go from the generator to the safety monitor
(``/safety/follow_joint_trajectory``), which validates them and forwards them to
``controller_action``. With ``driver:=hardware`` no simulator runs, the robot's driver
publishes ``/joint_states``, contacts are counted from the force topic ``contact_wrench``
(geometry_msgs/WrenchStamped) and a camera driver provides ``image_topic``.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import (
    EqualsSubstitution,
    IfElseSubstitution,
    LaunchConfiguration,
    PathJoinSubstitution,
)
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare


def _config(name):
    return PathJoinSubstitution([FindPackageShare("genrl_ros"), "config", name])


def generate_launch_description():
    driver = LaunchConfiguration("driver")
    task = LaunchConfiguration("task")
    model = LaunchConfiguration("model")
    policy = LaunchConfiguration("policy")
    observation = LaunchConfiguration("observation")
    controller_action = LaunchConfiguration("controller_action")
    contact_wrench = LaunchConfiguration("contact_wrench")
    image_topic = LaunchConfiguration("image_topic")
    simulated = EqualsSubstitution(driver, "sim")

    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "driver",
                default_value="sim",
                choices=["sim", "hardware"],
                description="sim: sim_bridge executes; hardware: the robot's own controller",
            ),
            DeclareLaunchArgument(
                "task",
                default_value="hockey",
                choices=["hockey", "basketball"],
                description="task of the policy and decoder",
            ),
            DeclareLaunchArgument("model", default_value="", description="decoder file"),
            DeclareLaunchArgument("policy", default_value="", description="policy ONNX file"),
            DeclareLaunchArgument(
                "observation",
                default_value="goal",
                choices=["goal", "image"],
                description="what the policy observes",
            ),
            DeclareLaunchArgument(
                "controller_action",
                default_value="/arm_controller/follow_joint_trajectory",
                description="FollowJointTrajectory server of the arm (sim_bridge's or the robot's)",
            ),
            DeclareLaunchArgument(
                "contact_wrench",
                default_value="/contact_wrench",
                description="hardware: geometry_msgs/WrenchStamped topic of the contact force",
            ),
            DeclareLaunchArgument(
                "image_topic",
                default_value="/camera/image_raw",
                description="sensor_msgs/Image topic of the camera (observation:=image)",
            ),
            SetEnvironmentVariable("MUJOCO_GL", "osmesa", condition=IfCondition(simulated)),
            Node(
                package="sim_bridge",
                executable="sim_bridge_node",
                name="sim_bridge",
                output="screen",
                condition=IfCondition(simulated),
                parameters=[
                    _config("sim_bridge.yaml"),
                    {
                        "task": task,
                        "auto_reset": False,
                        "camera.enabled": ParameterValue(
                            EqualsSubstitution(observation, "image"), value_type=bool
                        ),
                    },
                ],
                remappings=[("episode_outcome", "/episode_outcome")],
            ),
            Node(
                package="latent_policy_node",
                executable="latent_policy_node",
                name="latent_policy",
                output="screen",
                parameters=[
                    _config("latent_policy.yaml"),
                    {
                        "policy_path": ParameterValue(policy, value_type=str),
                        "observation": observation,
                        "expect_task": task,
                        "deterministic": True,
                    },
                ],
                remappings=[("camera/image_raw", image_topic)],
            ),
            Node(
                package="genrl_ros",
                executable="trajectory_generator_node",
                name="trajectory_generator",
                output="screen",
                parameters=[
                    _config("trajectory_generator.yaml"),
                    {"model_path": ParameterValue(model, value_type=str), "expect_task": task},
                ],
            ),
            Node(
                package="genrl_ros",
                executable="safety_monitor_node",
                name="safety_monitor",
                output="screen",
                parameters=[
                    _config("safety_monitor.yaml"),
                    {
                        "task": task,
                        "controller_action": controller_action,
                        "contact_source": IfElseSubstitution(simulated, "outcome", "force"),
                    },
                ],
                remappings=[
                    ("episode_outcome", "/episode_outcome"),
                    ("contact_wrench", contact_wrench),
                ],
            ),
        ]
    )
