"""Simulated training graph: sim_bridge -> goal / camera -> latent_policy -> latent_action ->
trajectory_generator -> safety_monitor -> sim_bridge (FollowJointTrajectory) -> outcome.

    ros2 launch genrl_ros sim_training.launch.py task:=hockey model:=/path/decoder.onnx \
        policy:=/path/policy.onnx observation:=goal headless:=true

sim_bridge resets the scene with a new goal after every episode (``auto_reset``), so the loop
runs on its own: every goal gets a latent from the policy, a trajectory from the decoder, the
safety monitor's review, an execution and an outcome. Policy weights can be replaced at run
time (``ros2 param set /latent_policy policy_path ...`` or ``ros2 service call
/latent_policy/reload_policy std_srvs/srv/Trigger``).

With ``train:=true`` the trainer node runs EM training through the same graph:

    ros2 launch genrl_ros sim_training.launch.py train:=true task:=hockey \
        model:=/path/vae_run out:=/path/policy_run iterations:=100 real_time_factor:=0.0

The trainer then drives the episodes (it resets the scene to each goal, decodes its own latent
samples with the generator's DecodeLatent service and sends the trajectory through the safety
monitor), so sim_bridge does not auto-reset and the generator does not execute the latents
the policy node publishes; after every update the policy node gets the new weights
(``<out>/latest_policy.onnx``). ``model`` must then be the torch checkpoint or run directory
(the trainer needs its latent size, prior and hash; the generator decodes with it too). The
launch ends when the trainer has finished (or stopped; ``resume:=true`` continues the run).
"""

from launch import LaunchDescription
from launch.actions import (
    DeclareLaunchArgument,
    RegisterEventHandler,
    SetEnvironmentVariable,
    Shutdown,
)
from launch.conditions import IfCondition, UnlessCondition
from launch.event_handlers import OnProcessExit
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
    task = LaunchConfiguration("task")
    model = LaunchConfiguration("model")
    policy = LaunchConfiguration("policy")
    observation = LaunchConfiguration("observation")
    headless = LaunchConfiguration("headless")
    use_sim_time = LaunchConfiguration("use_sim_time")
    real_time_factor = LaunchConfiguration("real_time_factor")
    image_observation = EqualsSubstitution(observation, "image")
    train = LaunchConfiguration("train")
    # the trainer drives the episodes: no auto-reset, no execution of the policy's latents
    not_training = IfElseSubstitution(train, if_value="false", else_value="true")
    trainer = Node(
        package="genrl_ros",
        executable="trainer_node",
        name="trainer",
        output="screen",
        condition=IfCondition(train),
        parameters=[
            _config("trainer.yaml"),
            {
                "task": task,
                "model_path": ParameterValue(model, value_type=str),
                "out": ParameterValue(LaunchConfiguration("out"), value_type=str),
                "observation": observation,
                "iterations": ParameterValue(LaunchConfiguration("iterations"), value_type=int),
                "resume": ParameterValue(LaunchConfiguration("resume"), value_type=bool),
                "use_sim_time": ParameterValue(use_sim_time, value_type=bool),
            },
        ],
        remappings=[("episode_outcome", "/episode_outcome")],
    )

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
            DeclareLaunchArgument(
                "train",
                default_value="false",
                choices=["true", "false"],
                description="run the trainer node: EM training of the policy through the graph",
            ),
            DeclareLaunchArgument(
                "out", default_value="", description="train: the run directory of the trainer"
            ),
            DeclareLaunchArgument(
                "iterations", default_value="100", description="train: EM iterations"
            ),
            DeclareLaunchArgument(
                "resume",
                default_value="false",
                choices=["true", "false"],
                description="train: continue the run in out from its last checkpoint",
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
                        "auto_reset": ParameterValue(not_training, value_type=bool),
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
                        "execute": ParameterValue(not_training, value_type=bool),
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
            trainer,
            RegisterEventHandler(
                OnProcessExit(
                    target_action=trainer,
                    on_exit=[Shutdown(reason="the trainer has finished")],
                ),
                condition=IfCondition(train),
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
