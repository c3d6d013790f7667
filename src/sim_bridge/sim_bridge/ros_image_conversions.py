"""Camera images as sensor_msgs/Image and sensor_msgs/CameraInfo, without importing ROS.

Like :mod:`sim_bridge.ros_conversions`, the functions build messages from the classes they
are given (an :class:`ImageTypes`) and read duck-typed messages, so the same code serves
rclpy's generated classes (inside a node) and the dataclasses of a ``rosbags`` typestore
(tests, bag files). Variable-length fields need the container of their class family:
``uint8[]`` (``Image.data``) is a uint8 numpy array for rosbags and ``array.array('B')`` for
rclpy; ``float64[]`` (``CameraInfo.d``) likewise; the fixed-size ``float64[9]`` / ``[12]``
fields (``k``, ``r``, ``p``) take a float64 numpy array in both.

Images are RGB, 8 bits per channel, rows top to bottom (what :class:`sim_bridge.camera.
SceneCamera` renders): encoding ``rgb8``, ``step = 3 * width``, ``is_bigendian = 0``.
:func:`image_from_msg` also reads ``bgr8`` (what OpenCV-based camera drivers often publish)
and honours a row padding (``step > 3 * width``).

The camera model of :func:`camera_info_to_msg` is MuJoCo's: a pinhole camera without
distortion whose vertical field of view is ``fovy`` and whose pixels are square.
"""

from __future__ import annotations

import array
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim_bridge.ros_conversions import (
    MessageConversionError,
    array_float64_sequence,
    ns_to_stamp,
    numpy_float64_sequence,
)

#: encodings of sensor_msgs/image_encodings.hpp that :func:`image_from_msg` reads
RGB8 = "rgb8"
BGR8 = "bgr8"
SUPPORTED_ENCODINGS = (RGB8, BGR8)
#: distortion model name of sensor_msgs/distortion_models.hpp for a pinhole camera
PLUMB_BOB = "plumb_bob"


def numpy_uint8_sequence(values: np.ndarray) -> np.ndarray:
    """A ``uint8[]`` field for rosbags' dataclasses: a contiguous 1-D uint8 numpy array."""
    return np.ascontiguousarray(values, dtype=np.uint8).reshape(-1).copy()


def array_uint8_sequence(values: np.ndarray) -> array.array:
    """A ``uint8[]`` field for rclpy's classes: ``array.array('B')`` (one copy)."""
    return array.array("B", np.ascontiguousarray(values, dtype=np.uint8).tobytes())


@dataclass(frozen=True)
class ImageTypes:
    """The message classes the image conversions build, and their sequence containers.

    Use :meth:`from_typestore` (tests, bag files) or :meth:`from_rclpy` (inside a node).
    """

    Time: type
    Header: type
    Image: type
    CameraInfo: type
    RegionOfInterest: type
    uint8_sequence: Callable[[np.ndarray], Any] = numpy_uint8_sequence
    float64_sequence: Callable[[np.ndarray], Any] = numpy_float64_sequence

    @classmethod
    def from_typestore(cls, typestore: Any) -> ImageTypes:
        """Classes of a ``rosbags`` typestore, e.g. ``get_typestore(Stores.ROS2_JAZZY)``."""
        types = typestore.types
        return cls(
            Time=types["builtin_interfaces/msg/Time"],
            Header=types["std_msgs/msg/Header"],
            Image=types["sensor_msgs/msg/Image"],
            CameraInfo=types["sensor_msgs/msg/CameraInfo"],
            RegionOfInterest=types["sensor_msgs/msg/RegionOfInterest"],
        )

    @classmethod
    def from_rclpy(cls) -> ImageTypes:
        """rclpy's generated classes (imports the ROS message packages; needs a sourced ROS)."""
        from builtin_interfaces.msg import Time  # noqa: PLC0415
        from sensor_msgs.msg import CameraInfo, Image, RegionOfInterest  # noqa: PLC0415
        from std_msgs.msg import Header  # noqa: PLC0415

        return cls(
            Time=Time,
            Header=Header,
            Image=Image,
            CameraInfo=CameraInfo,
            RegionOfInterest=RegionOfInterest,
            uint8_sequence=array_uint8_sequence,
            float64_sequence=array_float64_sequence,
        )


def _header(types: ImageTypes, stamp_ns: int, frame_id: str) -> Any:
    return types.Header(stamp=ns_to_stamp(stamp_ns, types.Time), frame_id=str(frame_id))


# --------------------------------------------------------------------------- images


def _uint8_view(data: Any) -> np.ndarray:
    """The bytes of a ``uint8[]`` field as a 1-D uint8 array: a numpy array (rosbags),
    ``array.array('B')`` or ``bytes`` (rclpy), or a list of ints."""
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8:
            raise MessageConversionError(f"Image.data has dtype {data.dtype}, expected uint8")
        return data.reshape(-1)
    try:
        return np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)
    except TypeError:  # not a buffer: a sequence of ints
        values = np.asarray(list(data), dtype=np.int64)
        if values.size and (values.min() < 0 or values.max() > 255):
            raise MessageConversionError("Image.data holds values outside [0, 255]") from None
        return values.astype(np.uint8)


def image_to_msg(rgb: np.ndarray, stamp_ns: int, frame_id: str, msg_types: ImageTypes) -> Any:
    """sensor_msgs/Image (encoding rgb8) of an (H, W, 3) uint8 RGB image.

    :param stamp_ns: header stamp (ns since the epoch, or sim time).
    :param frame_id: the camera's optical frame.
    """
    image = np.asarray(rgb)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise MessageConversionError(f"image has shape {image.shape}, expected (H, W, 3)")
    if image.dtype != np.uint8:
        raise MessageConversionError(f"image has dtype {image.dtype}, expected uint8 (rgb8)")
    height, width = int(image.shape[0]), int(image.shape[1])
    return msg_types.Image(
        header=_header(msg_types, stamp_ns, frame_id),
        height=height,
        width=width,
        encoding=RGB8,
        is_bigendian=0,
        step=3 * width,
        data=msg_types.uint8_sequence(image),
    )


def image_from_msg(msg: Any) -> np.ndarray:
    """(H, W, 3) uint8 RGB image of a sensor_msgs/Image with encoding rgb8 or bgr8.

    Rows may be padded (``step >= 3 * width``). Raises :class:`MessageConversionError` for
    another encoding or a ``data`` field whose length does not match ``height * step``.
    """
    encoding = str(msg.encoding)
    if encoding not in SUPPORTED_ENCODINGS:
        raise MessageConversionError(
            f"Image.encoding is {encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)} "
            "(8-bit, 3 channels)"
        )
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height < 1 or width < 1:
        raise MessageConversionError(f"Image is {width} x {height} pixels, expected >= 1 x 1")
    if step < 3 * width:
        raise MessageConversionError(
            f"Image.step is {step} bytes, below 3 * width = {3 * width} for {encoding}"
        )
    data = _uint8_view(msg.data)
    if data.size != height * step:
        raise MessageConversionError(
            f"Image.data has {data.size} bytes, expected height * step = {height} * {step} = "
            f"{height * step}"
        )
    rows = data.reshape(height, step)[:, : 3 * width].reshape(height, width, 3)
    if encoding == BGR8:
        rows = rows[:, :, ::-1]
    return np.ascontiguousarray(rows)


# --------------------------------------------------------------------------- camera info


def pinhole_intrinsics(width: int, height: int, fovy_deg: float) -> np.ndarray:
    """3 x 3 intrinsic matrix K of a pinhole camera with vertical field of view ``fovy_deg``
    and square pixels, principal point at the image centre (MuJoCo's camera model)."""
    if width < 1 or height < 1:
        raise MessageConversionError(f"image size {width} x {height} must be positive")
    fovy = float(fovy_deg)
    if not 0.0 < fovy < 180.0:
        raise MessageConversionError(f"fovy is {fovy_deg!r} degrees, must be in (0, 180)")
    focal = 0.5 * height / math.tan(math.radians(fovy) / 2.0)
    return np.array(
        [[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]], np.float64
    )


def camera_info_to_msg(
    width: int,
    height: int,
    fovy_deg: float,
    stamp_ns: int,
    frame_id: str,
    msg_types: ImageTypes,
) -> Any:
    """sensor_msgs/CameraInfo of an undistorted pinhole camera (MuJoCo camera model).

    ``d`` holds the five zero coefficients of ``plumb_bob``, ``r`` is the identity, ``p`` is
    ``[K | 0]`` (a monocular camera), no binning, an empty region of interest (full image).
    """
    k = pinhole_intrinsics(int(width), int(height), fovy_deg)
    p = np.zeros((3, 4), np.float64)
    p[:, :3] = k
    roi = msg_types.RegionOfInterest(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    return msg_types.CameraInfo(
        header=_header(msg_types, stamp_ns, frame_id),
        height=int(height),
        width=int(width),
        distortion_model=PLUMB_BOB,
        d=msg_types.float64_sequence(np.zeros(5)),
        k=k.reshape(-1).copy(),
        r=np.eye(3).reshape(-1),
        p=p.reshape(-1),
        binning_x=0,
        binning_y=0,
        roi=roi,
    )


def camera_info_from_msg(msg: Any) -> tuple[int, int, np.ndarray]:
    """(width, height, K (3, 3) float64) of a sensor_msgs/CameraInfo; checks K is finite
    and has positive focal lengths."""
    width, height = int(msg.width), int(msg.height)
    k = np.asarray(msg.k, dtype=np.float64).reshape(-1)
    if k.shape != (9,):
        raise MessageConversionError(f"CameraInfo.k has {k.size} values, expected 9")
    if not np.isfinite(k).all() or k[0] <= 0 or k[4] <= 0:
        raise MessageConversionError(
            f"CameraInfo.k = {k.tolist()} needs finite values and positive focal lengths"
        )
    return width, height, k.reshape(3, 3)
