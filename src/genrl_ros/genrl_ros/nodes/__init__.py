"""ROS 2 nodes of genrl_ros (thin wrappers; with the launch files the only modules of the
package that import rclpy / launch)."""
