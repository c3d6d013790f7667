"""ament_python / pip packaging of latent_policy_node (middle of the genrl_ros stack)."""

from setuptools import find_packages, setup

package_name = "latent_policy_node"

setup(
    name=package_name,
    version="0.1.0",
    description="Latent policy networks, ONNX export and onnxruntime inference for genrl_ros",
    license="Apache-2.0",
    maintainer="genrl_ros maintainers",
    maintainer_email="genrl_ros@example.com",
    python_requires=">=3.10",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
    ],
    # Ranges only; the versions used in the embedded mode are pinned in requirements.txt.
    # torch is needed for training and export only (extra "train"), never for inference.
    install_requires=[
        "setuptools",
        "sim_bridge",
        "numpy>=1.26,<3",
        "onnxruntime>=1.17",
    ],
    extras_require={
        "train": ["torch>=2.4,<3", "onnx>=1.16", "onnxscript>=0.2"],
        "test": ["pytest", "pytest-timeout"],
    },
    zip_safe=False,
    entry_points={
        "console_scripts": [
            "latent_policy_node = latent_policy_node.nodes.latent_policy_node:main",
        ],
    },
)
