"""What the latent-policy node does, without ROS: load a policy (ONNX), reload it at run
time, decide when to act on which observation, and choose latent actions.

- :class:`PolicyRunner` holds the loaded policy. :meth:`PolicyRunner.load` reads a new file;
  when the file is missing or not a policy of the expected task / latent size, the previous
  policy stays in use and the error says why. :meth:`PolicyRunner.reload` reads the same path
  again (the trainer overwrites the file with new weights, then asks for a reload).
- :class:`ObservationGate` decides when to act. With goal observations, on every goal. With
  image observations, the policy must see the scene of the current goal: by default
  (``image_trigger = goal``) a goal message arms the gate and the first camera image stamped
  at or after it is acted on, once per goal; ``every_image`` acts on every image (a camera
  without a goal topic).

The default loader is ``latent_policy_node.onnx_policy.OnnxPolicy`` (onnxruntime, no torch),
imported when the first policy is loaded; any object with
``act(observation, deterministic, rng) -> (mean, std, sample)`` and ``latent_dim`` works.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sim_bridge.node_params import ParamSpec

from latent_policy_node.latent_conversions import LatentAction

GOAL, IMAGE = "goal", "image"


class PolicyLoadError(RuntimeError):
    """A policy file that cannot be used; the previous policy (if any) stays loaded."""


def _default_loader(
    path: Path, expect_task: str | None, expect_latent_dim: int | None, expect_observation: str
) -> Any:
    from latent_policy_node.onnx_policy import OnnxPolicy  # noqa: PLC0415

    return OnnxPolicy(
        path,
        expect_task=expect_task,
        expect_latent_dim=expect_latent_dim,
        expect_observation=expect_observation,
    )


def file_id(path: Path) -> str:
    """``name:sha256[:12]`` of a file: identifies the weights an action was chosen with."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"{path.name}:{digest.hexdigest()[:12]}"


@dataclass(frozen=True)
class Observation:
    """An observation to act on: goal (2,) float64 metres, or image (H, W, 3) uint8."""

    kind: str
    value: np.ndarray
    stamp_ns: int
    frame_id: str = ""


class PolicyRunner:
    """A loaded latent policy and its sampling mode.

    :param observation: ``goal`` or ``image``: what the policy takes.
    :param deterministic: act with the mean (True) or sample from the Gaussian.
    :param seed: seed of the sampling.
    :param expect_task, expect_latent_dim: refuse policies of another task / latent size.
    :param loader: ``loader(path, expect_task, expect_latent_dim, observation) -> policy``
        (default: :class:`latent_policy_node.onnx_policy.OnnxPolicy`).
    """

    def __init__(
        self,
        observation: str = GOAL,
        deterministic: bool = False,
        seed: int = 0,
        expect_task: str | None = None,
        expect_latent_dim: int | None = None,
        loader: Callable[[Path, str | None, int | None, str], Any] | None = None,
    ) -> None:
        if observation not in (GOAL, IMAGE):
            raise ValueError(f"observation must be 'goal' or 'image', got {observation!r}")
        self.observation = observation
        self.deterministic = bool(deterministic)
        self.expect_task = expect_task or None
        self.expect_latent_dim = expect_latent_dim or None
        self._loader = loader or _default_loader
        self._rng = np.random.default_rng(seed)
        self.policy: Any = None
        self.path: Path | None = None
        self.policy_id = ""

    @property
    def loaded(self) -> bool:
        return self.policy is not None

    def load(self, path: str | os.PathLike[str]) -> str:
        """Load the policy at ``path`` (replacing the current one only on success); returns
        its id. Raises :class:`PolicyLoadError` with the reason."""
        path = Path(path)
        if not str(path) or not path.is_file():
            raise PolicyLoadError(f"no policy file at {str(path)!r}")
        try:
            policy = self._loader(path, self.expect_task, self.expect_latent_dim, self.observation)
            policy_id = file_id(path)
        except Exception as err:  # the loader's own errors (bad file, wrong model)
            raise PolicyLoadError(f"cannot load the policy {path}: {err}") from err
        self.policy, self.path, self.policy_id = policy, path, policy_id
        return policy_id

    def reload(self) -> str:
        """Load the current path again (new weights written to the same file)."""
        if self.path is None:
            raise PolicyLoadError("no policy path set; set the parameter policy_path first")
        return self.load(self.path)

    def act(self, observation: Observation) -> LatentAction:
        """The latent action for an observation of this runner's kind."""
        if self.policy is None:
            raise PolicyLoadError("no policy loaded (set policy_path)")
        if observation.kind != self.observation:
            raise ValueError(
                f"the policy takes {self.observation} observations, got a {observation.kind}"
            )
        value = observation.value
        if observation.kind == GOAL:
            value = np.asarray(value, dtype=np.float64).reshape(-1)[:2]
            if value.shape != (2,) or not np.isfinite(value).all():
                raise ValueError(f"goal must be a finite (x, y), got {observation.value!r}")
        else:
            value = np.asarray(value)
            if value.ndim != 3 or value.shape[2] != 3 or value.dtype != np.uint8:
                raise ValueError(f"image must be (H, W, 3) uint8, got {value.shape} {value.dtype}")
        mean, std, sample = self.policy.act(value, self.deterministic, self._rng)
        return LatentAction(
            mean=np.asarray(mean, dtype=np.float64),
            std=np.asarray(std, dtype=np.float64),
            sample=np.asarray(mean if self.deterministic else sample, dtype=np.float64),
            stamp_ns=int(observation.stamp_ns),
            frame_id=observation.frame_id,
            deterministic=self.deterministic,
            observation=observation.kind,
            policy_id=self.policy_id,
        )


class ObservationGate:
    """When to act (see the module docstring).

    :param observation: ``goal`` or ``image``.
    :param image_trigger: ``goal`` (the first image at or after each goal) or
        ``every_image``.
    """

    def __init__(self, observation: str = GOAL, image_trigger: str = GOAL) -> None:
        if observation not in (GOAL, IMAGE):
            raise ValueError(f"observation must be 'goal' or 'image', got {observation!r}")
        if image_trigger not in (GOAL, "every_image"):
            raise ValueError(
                f"image_trigger must be 'goal' or 'every_image', got {image_trigger!r}"
            )
        self.observation = observation
        self.image_trigger = image_trigger
        self._armed_since_ns: int | None = None

    @property
    def waiting_for_image(self) -> bool:
        return self._armed_since_ns is not None

    def on_goal(self, stamp_ns: int, goal_xy: np.ndarray, frame_id: str = "") -> Observation | None:
        """A goal arrived: act on it (goal observations) or wait for its image."""
        if self.observation == GOAL:
            return Observation(GOAL, np.asarray(goal_xy, dtype=np.float64)[:2], stamp_ns, frame_id)
        if self.image_trigger == GOAL:
            self._armed_since_ns = int(stamp_ns)
        return None

    def on_image(self, stamp_ns: int, image: np.ndarray, frame_id: str = "") -> Observation | None:
        """An image arrived: act on it if the gate is waiting for it."""
        if self.observation != IMAGE:
            return None
        if self.image_trigger == "every_image":
            return Observation(IMAGE, image, stamp_ns, frame_id)
        if self._armed_since_ns is None or stamp_ns < self._armed_since_ns:
            return None
        self._armed_since_ns = None
        return Observation(IMAGE, image, stamp_ns, frame_id)


POLICY_NODE = "latent_policy"
POLICY_NODE_PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec(
        "policy_path",
        "",
        "ONNX policy file (empty: none yet); setting it loads the file",
    ),
    ParamSpec(
        "observation",
        GOAL,
        "what the policy observes: the goal topic or the camera image",
        choices=(GOAL, IMAGE),
        read_only=True,
    ),
    ParamSpec(
        "image_trigger",
        GOAL,
        "image observations: act on the first image after each goal, or on every image",
        choices=(GOAL, "every_image"),
    ),
    ParamSpec("deterministic", False, "publish the mean as the sample (no exploration)"),
    ParamSpec("seed", 0, "seed of the latent sampling", minimum=0, read_only=True),
    ParamSpec("expect_task", "", "refuse policies of another task (empty: any)"),
    ParamSpec("expect_latent_dim", 0, "refuse policies of another latent size (0: any)", minimum=0),
)
