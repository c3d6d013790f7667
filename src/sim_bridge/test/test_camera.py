"""SceneCamera: image shape / dtype, the goal marker is visible where the goal is, determinism."""

import os

os.environ.setdefault("MUJOCO_GL", "osmesa")  # before mujoco is imported

import importlib.util  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from sim_bridge.camera import SceneCamera  # noqa: E402
from sim_bridge.tasks import TASK_NAMES, make_task  # noqa: E402

FAR_AWAY = np.array([1000.0, 1000.0])  # moves the goal marker out of the image


def _task(name):
    if importlib.util.find_spec(f"sim_bridge.tasks.{name}") is None:
        pytest.skip(f"task module sim_bridge.tasks.{name} does not exist yet")
    return make_task(name)


@pytest.fixture(scope="module", params=TASK_NAMES)
def camera64(request):
    with SceneCamera(_task(request.param), 64, 64) as camera:
        yield camera


@pytest.fixture(
    scope="module",
    params=[(name, size) for name in TASK_NAMES for size in (64, 128)],
    ids=lambda p: f"{p[0]}-{p[1]}",
)
def camera(request):
    """A camera of each task at 64 x 64 and 128 x 128."""
    name, size = request.param
    with SceneCamera(_task(name), size, size) as camera:
        yield camera


def _visible_goals(camera, n=2, margin_px=6):
    """Goals from the task's distribution whose marker lies well inside the image, the
    farthest apart (in pixels) first."""
    goals = camera.task.sample_goals(64, np.random.default_rng(3))
    pixels = np.array([camera.goal_pixel(g) for g in goals])
    inside = (
        (pixels[:, 0] > margin_px)
        & (pixels[:, 0] < camera.width - margin_px)
        & (pixels[:, 1] > margin_px)
        & (pixels[:, 1] < camera.height - margin_px)
    )
    goals, pixels = goals[inside], pixels[inside]
    assert len(goals) >= 2, "too few goals of the distribution are visible in the image"
    i, j = np.unravel_index(
        np.argmax(np.linalg.norm(pixels[:, None] - pixels[None], axis=2)), (len(goals),) * 2
    )
    return goals[i], goals[j]


def _marker_mask(camera, goal):
    """Pixels that change when the marker moves from out of view to ``goal``."""
    with_marker = camera.render(goal).astype(np.int16)
    without = camera.render(FAR_AWAY).astype(np.int16)
    return np.abs(with_marker - without).max(axis=2) > 20, with_marker


def _centroid(mask):
    rows, cols = np.nonzero(mask)
    return np.array([cols.mean() + 0.5, rows.mean() + 0.5])


def test_shape_and_dtype(camera):
    size = camera.width
    goal = camera.task.sample_goals(1, np.random.default_rng(0))[0]
    image = camera.render(goal)
    assert image.shape == (size, size, 3)
    assert image.dtype == np.uint8
    assert image.std() > 1.0  # not a blank frame
    batch = camera.render_batch(camera.task.sample_goals(3, np.random.default_rng(1)))
    assert batch.shape == (3, size, size, 3) and batch.dtype == np.uint8


def test_non_square_size():
    with SceneCamera(make_task("hockey"), width=96, height=48) as camera:
        assert camera.render(np.array([1.0, 0.0])).shape == (48, 96, 3)


def test_deterministic(camera64):
    goal = camera64.task.sample_goals(1, np.random.default_rng(5))[0]
    first = camera64.render(goal)
    camera64.render(camera64.task.sample_goals(1, np.random.default_rng(6))[0])
    assert np.array_equal(first, camera64.render(goal))
    batch = camera64.render_batch(np.stack([goal, goal]))
    assert np.array_equal(batch[0], first) and np.array_equal(batch[1], first)


def test_different_goals_give_different_images(camera64):
    a, b = _visible_goals(camera64)
    assert not np.array_equal(camera64.render(a), camera64.render(b))


def test_marker_at_goal_pixel(camera):
    """The marker's pixels are centred on the goal's projection and move with the goal."""
    size = camera.width
    a, b = _visible_goals(camera)
    centroids = []
    for goal in (a, b):
        mask, _ = _marker_mask(camera, goal)
        assert mask.sum() >= 4, "goal marker not visible"
        centroid = _centroid(mask)
        np.testing.assert_allclose(centroid, camera.goal_pixel(goal), atol=0.05 * size)
        centroids.append(centroid)
    moved = centroids[1] - centroids[0]
    expected = camera.goal_pixel(b) - camera.goal_pixel(a)
    assert np.dot(moved, expected) > 0.8 * np.linalg.norm(moved) * np.linalg.norm(expected)


def test_hockey_red_marker_moves_in_image_direction():
    """Hockey's camera looks down with image up = world +x and image right = world -y:
    a farther goal moves the red marker up, a goal further left (+y) moves it left."""
    with SceneCamera(make_task("hockey"), 64, 64) as camera:

        def red_centroid(goal):
            image = camera.render(np.asarray(goal, dtype=float)).astype(int)
            red = (image[..., 0] > 120) & (image[..., 0] > 2 * image[..., 1]) & (
                image[..., 0] > 2 * image[..., 2]
            )
            assert red.sum() >= 4
            return _centroid(red)

        near, far = red_centroid([0.7, 0.0]), red_centroid([1.25, 0.0])
        assert far[1] < near[1] - 10 and abs(far[0] - near[0]) < 1.0
        right, left = red_centroid([1.0, -0.35]), red_centroid([1.0, 0.35])
        assert left[0] < right[0] - 10 and abs(left[1] - right[1]) < 1.0


def test_closed_camera_raises():
    camera = SceneCamera(make_task("hockey"), 64, 64)
    camera.close()
    camera.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        camera.render(np.array([1.0, 0.0]))


def test_bad_goal_raises(camera64):
    with pytest.raises(ValueError):
        camera64.render(np.array([1.0, np.nan]))
    with pytest.raises(ValueError):
        camera64.render_batch(np.zeros((2, 3)))


def test_missing_gl_backend_error_says_what_to_do():
    """Without MUJOCO_GL and without a display, the error names the fix."""
    import subprocess
    import sys

    unset = ("MUJOCO_GL", "DISPLAY", "WAYLAND_DISPLAY")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    code = (
        "from sim_bridge.camera import SceneCamera\n"
        "try:\n"
        "    SceneCamera('hockey')\n"
        "except RuntimeError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert "MUJOCO_GL=osmesa" in result.stdout and "libosmesa6" in result.stdout
