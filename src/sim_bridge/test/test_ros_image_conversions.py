"""sensor_msgs/Image and CameraInfo conversions with the real ROS 2 Jazzy definitions of the
rosbags typestore, and with the containers rclpy's classes use (array.array, bytes)."""

from __future__ import annotations

import array
import dataclasses
import math

import numpy as np
import pytest

rosbags_typesys = pytest.importorskip("rosbags.typesys")

from sim_bridge.ros_conversions import MessageConversionError  # noqa: E402
from sim_bridge.ros_image_conversions import (  # noqa: E402
    ImageTypes,
    array_uint8_sequence,
    camera_info_from_msg,
    camera_info_to_msg,
    image_from_msg,
    image_to_msg,
    pinhole_intrinsics,
)

TS = rosbags_typesys.get_typestore(rosbags_typesys.Stores.ROS2_JAZZY)
IT = ImageTypes.from_typestore(TS)
IMAGE = "sensor_msgs/msg/Image"
INFO = "sensor_msgs/msg/CameraInfo"


def cdr_round_trip(msg, typename):
    return TS.deserialize_cdr(TS.serialize_cdr(msg, typename), typename)


def rgb(height=5, width=7, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_image_round_trip_exact_through_cdr():
    image = rgb()
    msg = image_to_msg(image, 1_735_689_600_000_000_123, "cam", IT)
    assert (msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian) == (
        "rgb8",
        5,
        7,
        21,
        0,
    )
    assert msg.header.frame_id == "cam"
    back = cdr_round_trip(msg, IMAGE)
    assert back.header.stamp.sec == 1_735_689_600 and back.header.stamp.nanosec == 123
    out = image_from_msg(back)
    assert out.dtype == np.uint8 and out.shape == (5, 7, 3)
    np.testing.assert_array_equal(out, image)
    # the message owns a copy: changing the source image does not change it
    image[0, 0, 0] ^= 0xFF
    np.testing.assert_array_equal(image_from_msg(msg)[0, 0, 0], out[0, 0, 0])


def test_image_from_bgr8_and_padded_rows():
    image = rgb(3, 4, seed=1)
    step = 4 * 3 + 5  # padded rows
    padded = np.zeros((3, step), np.uint8)
    padded[:, :12] = image[:, :, ::-1].reshape(3, 12)
    msg = IT.Image(
        header=image_to_msg(image, 0, "", IT).header,
        height=3,
        width=4,
        encoding="bgr8",
        is_bigendian=0,
        step=step,
        data=padded.reshape(-1),
    )
    np.testing.assert_array_equal(image_from_msg(cdr_round_trip(msg, IMAGE)), image)


@pytest.mark.parametrize("container", ["array", "bytes", "list"])
def test_image_from_rclpy_containers(container):
    """rclpy's Image.data is array.array('B'); bytes and int lists work too."""
    image = rgb(2, 3, seed=2)
    msg = image_to_msg(image, 0, "", IT)
    data = {
        "array": array_uint8_sequence(image),
        "bytes": image.tobytes(),
        "list": [int(v) for v in image.reshape(-1)],
    }[container]
    assert isinstance(array_uint8_sequence(image), array.array)
    msg = dataclasses.replace(msg, data=data)
    np.testing.assert_array_equal(image_from_msg(msg), image)


def test_rclpy_image_types_use_array_containers():
    types = dataclasses.replace(IT, uint8_sequence=array_uint8_sequence)
    msg = image_to_msg(rgb(2, 2), 0, "", types)
    assert isinstance(msg.data, array.array) and msg.data.typecode == "B"


def test_image_errors_name_the_field():
    image = rgb(2, 2)
    with pytest.raises(MessageConversionError, match=r"shape \(2, 2\)"):
        image_to_msg(image[:, :, 0], 0, "", IT)
    with pytest.raises(MessageConversionError, match="dtype float64"):
        image_to_msg(image.astype(np.float64), 0, "", IT)
    msg = image_to_msg(image, 0, "", IT)
    with pytest.raises(MessageConversionError, match="encoding is 'mono8'"):
        image_from_msg(dataclasses.replace(msg, encoding="mono8"))
    with pytest.raises(MessageConversionError, match="11 bytes, expected height \\* step"):
        image_from_msg(dataclasses.replace(msg, data=msg.data[:11]))
    with pytest.raises(MessageConversionError, match="step is 5 bytes"):
        image_from_msg(dataclasses.replace(msg, step=5))
    with pytest.raises(MessageConversionError, match="0 x 2"):
        image_from_msg(dataclasses.replace(msg, width=0))


def test_camera_info_round_trip_and_pinhole_model():
    msg = camera_info_to_msg(64, 48, 45.0, 17, "cam", IT)
    back = cdr_round_trip(msg, INFO)
    width, height, k = camera_info_from_msg(back)
    assert (width, height) == (64, 48)
    focal = 24.0 / math.tan(math.radians(22.5))
    np.testing.assert_allclose(k, [[focal, 0, 32], [0, focal, 24], [0, 0, 1]])
    assert back.distortion_model == "plumb_bob" and list(back.d) == [0.0] * 5
    np.testing.assert_array_equal(np.asarray(back.r).reshape(3, 3), np.eye(3))
    p = np.asarray(back.p).reshape(3, 4)
    np.testing.assert_allclose(p[:, :3], k)
    np.testing.assert_array_equal(p[:, 3], 0.0)
    assert back.header.frame_id == "cam" and back.header.stamp.nanosec == 17


def test_camera_projection_matches_scene_camera_formula():
    """K maps a camera-frame point like SceneCamera.project does (square pixels, fovy)."""
    k = pinhole_intrinsics(128, 96, 60.0)
    point = np.array([0.1, -0.05, 1.0])  # optical frame: x right, y down, z forward
    pixel = k @ point
    focal = 0.5 * 96 / math.tan(math.radians(30.0))
    np.testing.assert_allclose(pixel[:2] / pixel[2], [64 + focal * 0.1, 48 - focal * 0.05])


def test_camera_info_errors():
    with pytest.raises(MessageConversionError, match="fovy"):
        pinhole_intrinsics(64, 64, 180.0)
    with pytest.raises(MessageConversionError, match="positive"):
        pinhole_intrinsics(0, 64, 45.0)
    msg = camera_info_to_msg(64, 64, 45.0, 0, "", IT)
    with pytest.raises(MessageConversionError, match="focal"):
        camera_info_from_msg(dataclasses.replace(msg, k=np.zeros(9)))
