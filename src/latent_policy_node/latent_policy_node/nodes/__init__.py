"""ROS 2 nodes of latent_policy_node (thin wrappers; the only modules of the package that import
rclpy)."""
