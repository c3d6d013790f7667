"""sim_bridge: the simulated side of genrl_ros, bottom of the package stack.

Owns the MuJoCo model of the 7-DoF arm and the task scenes (MJCF assets next to the modules),
task definitions, the joint trajectory type and its ROS message conversions, batched episode
execution, the offscreen camera, scripted demonstrations, gymnasium environments, the hardware
driver interface and the simulator node. It imports nothing from latent_policy_node or
genrl_ros.

This module stays import-light on purpose: importing ``sim_bridge`` does not import mujoco;
import the submodules (``sim_bridge.arm``, ``sim_bridge.trajectory``, ...) for the functionality.
"""

__version__ = "0.1.0"
