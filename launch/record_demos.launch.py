"""Record demonstrations played through the ROS graph into a rosbag2 (MCAP).

    genrl demos --task hockey --episodes 200 --out runs/demos/hockey
    ros2 launch genrl_ros record_demos.launch.py dataset:=runs/demos/hockey \
        bag:=runs/demos/hockey_bag

sim_bridge simulates the task; demo_player resets the scene to each episode's goal, sends the
episode's trajectory as a FollowJointTrajectory goal and republishes the outcome;
``ros2 bag record`` writes ``/demo/dataset_info``, ``/goal``, ``/demo/commanded_trajectory``,
``/joint_states`` and ``/demo/episode_outcome``. When every episode is played the player exits
and the launch shuts down (closing the bag). ``genrl import-bag --bag <bag>`` reads it back;
``ros2 bag play <bag>`` replays it (the trajectories are on a topic no controller listens to,
so a replay moves no arm).
"""

from launch import LaunchDescription
from launch.actions import (
    DeclareLaunchArgument,
    ExecuteProcess,
    RegisterEventHandler,
    SetEnvironmentVariable,
    Shutdown,
)
from launch.event_handlers import OnProcessExit
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

RECORDED_TOPICS = [
    "/demo/dataset_info",
    "/goal",
    "/demo/commanded_trajectory",
    "/joint_states",
    "/demo/episode_outcome",
]


def _config(name):
    return PathJoinSubstitution([FindPackageShare("genrl_ros"), "config", name])


def generate_launch_description():
    dataset = LaunchConfiguration("dataset")
    bag = LaunchConfiguration("bag")
    task = LaunchConfiguration("task")
    max_episodes = LaunchConfiguration("max_episodes")
    real_time_factor = LaunchConfiguration("real_time_factor")

    player = Node(
        package="genrl_ros",
        executable="demo_player_node",
        name="demo_player",
        output="screen",
        parameters=[
            _config("demo_player.yaml"),
            {
                "dataset": ParameterValue(dataset, value_type=str),
                "max_episodes": ParameterValue(max_episodes, value_type=int),
            },
        ],
        remappings=[("episode_outcome", "/episode_outcome")],
    )
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "dataset", description="demonstration dataset directory (genrl demos --out)"
            ),
            DeclareLaunchArgument(
                "bag",
                default_value="demos_bag",
                description="output bag directory (must not exist)",
            ),
            DeclareLaunchArgument(
                "task",
                default_value="hockey",
                choices=["hockey", "basketball"],
                description="task of the dataset",
            ),
            DeclareLaunchArgument(
                "max_episodes", default_value="0", description="episodes to play (0: all)"
            ),
            DeclareLaunchArgument(
                "real_time_factor",
                default_value="1.0",
                description="playback speed of the simulator (0: as fast as possible)",
            ),
            SetEnvironmentVariable("MUJOCO_GL", "osmesa"),
            Node(
                package="sim_bridge",
                executable="sim_bridge_node",
                name="sim_bridge",
                output="screen",
                parameters=[
                    _config("sim_bridge.yaml"),
                    {
                        "task": task,
                        "auto_reset": False,
                        "real_time_factor": ParameterValue(real_time_factor, value_type=float),
                    },
                ],
                remappings=[("episode_outcome", "/episode_outcome")],
            ),
            player,
            ExecuteProcess(
                cmd=[
                    "ros2",
                    "bag",
                    "record",
                    "--storage",
                    "mcap",
                    "--output",
                    bag,
                    "--topics",
                    *RECORDED_TOPICS,
                ],
                name="bag_record",
                output="screen",
            ),
            RegisterEventHandler(
                OnProcessExit(
                    target_action=player,
                    on_exit=[Shutdown(reason="demonstrations played")],
                )
            ),
        ]
    )
