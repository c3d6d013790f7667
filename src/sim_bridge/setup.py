"""ament_python / pip packaging of sim_bridge (bottom of the genrl_ros stack)."""

from setuptools import find_packages, setup

package_name = "sim_bridge"

setup(
    name=package_name,
    version="0.1.0",
    description="MuJoCo simulation of a 7-DoF arm, tasks and trajectories for genrl_ros",
    license="Apache-2.0",
    maintainer="genrl_ros maintainers",
    maintainer_email="genrl_ros@example.com",
    python_requires=">=3.10",
    packages=find_packages(exclude=["test", "test.*"]),
    # MJCF assets: the arm (sim_bridge/arm.xml and friends) and the task scenes.
    package_data={package_name: ["*.xml", "tasks/*.xml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
    ],
    # Ranges only; the versions used in the embedded mode are pinned in requirements.txt.
    install_requires=[
        "setuptools",
        "numpy>=1.26,<3",
        "mujoco>=3.2,<4",
        "gymnasium>=1.0,<2",
        "opencv-python-headless>=4.10,<6",
    ],
    extras_require={"test": ["pytest", "pytest-timeout", "rosbags>=0.10"]},
    zip_safe=False,
    entry_points={
        "console_scripts": [
            "sim_bridge_node = sim_bridge.nodes.sim_bridge_node:main",
        ],
    },
)
