"""ament_python / pip packaging of genrl_ros (top of the stack, with the ``genrl`` command)."""

import os
from glob import glob
from pathlib import Path

from setuptools import find_packages, setup

package_name = "genrl_ros"

# Launch files and ROS parameter files live at the top of the repository (launch/, config/)
# and are installed into this package's share directory, so that
# ``ros2 launch genrl_ros <file>`` and ``get_package_share_directory('genrl_ros')/config``
# work after ``colcon build``. setuptools wants data_files relative to the working directory,
# which is this directory for pip and a build directory for colcon --symlink-install, hence
# relpath from the (symlink-resolved) location of this file.
_REPO = Path(__file__).resolve().parent.parent.parent


def _shared(subdir: str, pattern: str) -> list[tuple[str, list[str]]]:
    files = sorted(os.path.relpath(p, os.getcwd()) for p in glob(str(_REPO / subdir / pattern)))
    return [(f"share/{package_name}/{subdir}", files)] if files else []


setup(
    name=package_name,
    version="0.1.0",
    description="Robot skill learning with latent-action generative models (ROS 2 and embedded)",
    license="Apache-2.0",
    maintainer="genrl_ros maintainers",
    maintainer_email="genrl_ros@example.com",
    python_requires=">=3.10",
    packages=find_packages(exclude=["test", "test.*"]),
    # Copies of the genrl_interfaces .msg/.srv files, read by rosbags without a ROS installation.
    package_data={package_name: ["data/msg/*.msg", "data/srv/*.srv"]},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        *_shared("launch", "*.launch.py"),
        *_shared("config", "*.yaml"),
    ],
    # Ranges only; the versions used in the embedded mode are pinned in requirements.txt.
    install_requires=[
        "setuptools",
        "sim_bridge",
        "latent_policy_node",
        "numpy>=1.26,<3",
        "torch>=2.4,<3",
        "matplotlib>=3.6",
        "tqdm>=4.60",
        "pyyaml>=6.0",
        "rosbags>=0.10,<0.12",
    ],
    extras_require={
        "baselines": ["stable-baselines3>=2.3"],
        "export": ["onnx>=1.16", "onnxscript>=0.2"],
        "test": ["pytest", "pytest-timeout", "prdc>=0.2", "scipy"],
    },
    zip_safe=False,
    entry_points={
        "console_scripts": [
            "genrl = genrl_ros.cli:main",
            "trajectory_generator_node = genrl_ros.nodes.trajectory_generator_node:main",
            "safety_monitor_node = genrl_ros.nodes.safety_monitor_node:main",
            "demo_player_node = genrl_ros.nodes.demo_player_node:main",
            "trainer_node = genrl_ros.nodes.trainer_node:main",
        ],
    },
)
