"""genrl_ros: robot skill learning with latent-action generative models, top of the stack.

Owns trajectory datasets (numpy archives and rosbag2), the generative models, precision/recall
metrics, EM policy training, RL baselines, safety checks, reports and plots, the ``genrl``
command line (``genrl_ros.cli``), the ROS nodes and the launch files. Builds on sim_bridge and
latent_policy_node.

Importing this module is cheap: it imports neither torch nor mujoco.
"""

__version__ = "0.1.0"
