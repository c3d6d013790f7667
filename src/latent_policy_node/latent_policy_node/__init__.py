"""latent_policy_node: latent policies of genrl_ros, middle of the package stack.

Will own the latent policy networks (goal MLP, camera CNN, value function) written in torch for
training, their ONNX export, and onnxruntime inference that needs no torch, so the policy can
run on the robot side without the training stack; plus goal / image / latent message
conversions and the ROS node that chooses latent actions from the goal and camera topics.
Depends on sim_bridge only; never imports genrl_ros.

Importing this module imports neither torch nor onnxruntime.
"""

__version__ = "0.1.0"
