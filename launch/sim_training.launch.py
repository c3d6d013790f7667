"""Simulated training graph: sim_bridge -> goal / camera -> latent_policy -> latent_action ->
trajectory_generator -> safety_monitor -> sim_bridge (FollowJointTrajectory) -> outcome.

    ros2 launch genrl_ros sim_training.launch.py task:=hockey model:=/path/decoder.onnx \
        policy:=/path/policy.onnx observation:=goal headless:=true

sim_bridge resets the scene with a new goal after every episode (``auto_reset``), so the loop
runs on its own: every goal gets a latent from the policy, a trajectory from the decoder, the
safety monitor's review, an execution and an outcome. The trainer node (EM updates of the
policy through the graph) is not part of this graph yet; policy weights can be replaced at run
time (``ros2 param set /latent_policy policy_path ...`` or ``ros2 service call
/latent_policy/reload_policy std_srvs/srv/Trigger``).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.conditions import IfCondition, UnlessCondition
from launch.substitutions import EqualsSubstitution, LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare


def _config(name):
    return PathJoinSubstitution([FindPackageShare("genrl_ros"), "config", name])


def generate_launch_description():
    task = LaunchConfiguration("task")
    model = LaunchConfiguration("model")
    policy = LaunchConfiguration("policy")
    observation = LaunchConfiguration("observation")
    headless = LaunchConfiguration("headless")
    use_sim_time = LaunchConfiguration("use_sim_time")
    real_time_factor = LaunchConfiguration("real_time_factor")
    image_observation = EqualsSubstitution(observation, "image")

    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "task",
                default_value="hockey",
                choices=["hockey", "basketball"],
                description="simulated task",
            ),
            DeclareLaunchArgument(
                "model",
                default_value="",
                description="decoder: ONNX file (genrl export) or torch checkpoint",
            ),
            DeclareLaunchArgument(
                "policy", default_value="", description="latent policy ONNX file"
            ),
            DeclareLaunchArgument(
                "observation",
                default_value="goal",
                choices=["goal", "image"],
                description="what the policy observes",
            ),
            DeclareLaunchArgument(
                "headless",
                default_value="true",
                choices=["true", "false"],
                description="true: offscreen rendering (OSMesa), no GUI; false: image viewer",
            ),
            DeclareLaunchArgument(
                "use_sim_time",
                default_value="true",
                choices=["true", "false"],
                description="sim_bridge publishes /clock and every node uses it",
            ),
            DeclareLaunchArgument(
                "real_time_factor",
                default_value="1.0",
                description="simulated seconds per wall-clock second (0: as fast as possible)",
            ),
            SetEnvironmentVariable("MUJOCO_GL", "osmesa", condition=IfCondition(headless)),
            Node(
                package="sim_bridge",
                executable="sim_bridge_node",
                name="sim_bridge",
                output="screen",
                parameters=[
                    _config("sim_bridge.yaml"),
                    {
                        "task": task,
                        "real_time_factor": ParameterValue(real_time_factor, value_type=float),
                        "auto_reset": True,
                        "camera.enabled": ParameterValue(image_observation, value_type=bool),
                        "use_sim_time": ParameterValue(use_sim_time, value_type=bool),
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
                        "use_sim_time": ParameterValue(use_sim_time, value_type=bool),
                    },
                ],
            ),
            Node(
                package="genrl_ros",
                executable="trajectory_generator_node",
                name="trajectory_generator",
                output="screen",
                parameters=[
                    _config("trajectory_generator.yaml"),
                    {
                        "model_path": ParameterValue(model, value_type=str),
                        "expect_task": task,
                        "use_sim_time": ParameterValue(use_sim_time, value_type=bool),
                    },
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
                        "contact_source": "outcome",
                        "use_sim_time": ParameterValue(use_sim_time, value_type=bool),
                    },
                ],
                remappings=[("episode_outcome", "/episode_outcome")],
            ),
            Node(
                package="rqt_image_view",
                executable="rqt_image_view",
                name="image_view",
                arguments=["/camera/image_raw"],
                condition=UnlessCondition(headless),
            ),
        ]
    )
