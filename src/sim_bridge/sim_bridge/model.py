"""Composition of a task's MJCF with the arm's MJCF into one MuJoCo model.

A task file (``tasks/<task>.xml``) is a complete MJCF world without the arm. It marks where
the arm stands with an empty body named ``arm_mount`` and may define a body named ``tool``
directly under ``<worldbody>``; the tool is moved onto the arm's ``flange`` body, its
``pos``/``quat`` then being relative to the flange. The arm's ``<default>``, ``<contact>``,
``<actuator>`` and ``<sensor>`` blocks are merged in front of the task's own, so arm sensors come first in
``sensordata``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import mujoco

from sim_bridge.arm import ARM_XML


def compose_xml(task_xml: Path, arm_xml: Path = ARM_XML) -> str:
    """Return the MJCF text of the task world with the arm mounted and the tool attached."""
    task = ET.parse(task_xml).getroot()
    arm = ET.parse(arm_xml).getroot()

    task_world = task.find("worldbody")
    mount = task_world.find(".//body[@name='arm_mount']") if task_world is not None else None
    if mount is None:
        raise ValueError(f"{task_xml}: no <body name='arm_mount'> in <worldbody>")
    for arm_body in arm.find("worldbody"):
        mount.append(arm_body)

    tool = task_world.find("body[@name='tool']")
    if tool is not None:
        flange = mount.find(".//body[@name='flange']")
        task_world.remove(tool)
        flange.append(tool)

    for block in ("default", "contact", "actuator", "sensor"):
        arm_block = arm.find(block)
        if arm_block is None:
            continue
        task_block = task.find(block)
        if task_block is None:
            task_block = ET.SubElement(task, block)
        for index, child in enumerate(list(arm_block)):
            task_block.insert(index, child)
    return ET.tostring(task, encoding="unicode")


def load_model(task_xml: Path) -> mujoco.MjModel:
    """Compile the composed model of a task."""
    return mujoco.MjModel.from_xml_string(compose_xml(task_xml))
