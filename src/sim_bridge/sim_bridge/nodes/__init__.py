"""ROS 2 nodes of sim_bridge (thin wrappers; the only modules of the package that import rclpy)."""
