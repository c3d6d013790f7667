"""The versioned demonstration dataset: one episode per row, saved as a numpy archive.

On disk a dataset is a directory with two files:

* ``episodes.npz``: the arrays (``np.savez``, no pickled objects; optional arrays absent);
* ``metadata.json``: format name/version, task, horizon, control step, joint names, seed,
  contact classes, creation time, genrl_ros version, the sha256 of ``episodes.npz`` and the
  free-form ``metadata`` extras.

Saving is atomic (written into a temporary directory next to the target, then renamed);
loading validates the format version, the checksum, every array's dtype and shape, and
optional expectations of the caller (task, horizon, joint names).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_NAME = "genrl_ros.trajectory_dataset"
FORMAT_VERSION = 1
EPISODES_FILE = "episodes.npz"
METADATA_FILE = "metadata.json"


class DatasetError(ValueError):
    """A dataset that is malformed, corrupt or not what the caller expects."""


# name -> (dtype, shape in symbols: N episodes, T horizon, J joints, C contact classes,
# S joint-state steps), required
_SCHEMA: dict[str, tuple[type, tuple[str | int, ...], bool]] = {
    "trajectories": (np.float32, ("N", "T", "J"), True),
    "goals_xy": (np.float32, ("N", 2), True),
    "final_object_pos": (np.float32, ("N", 3), True),
    "rewards": (np.float32, ("N",), True),
    "distance_m": (np.float32, ("N",), True),
    "contact_steps": (np.int32, ("N", "C"), True),
    "joint_limit_violation_steps": (np.int32, ("N",), True),
    "is_expert": (np.bool_, ("N",), True),
    "joint_positions": (np.float32, ("N", "S", "J"), False),
    "joint_velocities": (np.float32, ("N", "S", "J"), False),
}
ARRAY_NAMES: tuple[str, ...] = tuple(_SCHEMA)

_INT32_MAX = np.iinfo(np.int32).max


def package_version() -> str:
    """Installed genrl_ros version (``genrl_ros.__version__`` or "0+unknown" from a source tree)."""
    try:
        from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

        return version("genrl_ros")
    except PackageNotFoundError:
        import genrl_ros  # noqa: PLC0415

        return str(getattr(genrl_ros, "__version__", "0+unknown"))


def _json_normalized(value: Any, what: str) -> Any:
    """``value`` after a strict JSON round trip (tuples become lists); rejects NaN/inf."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as err:
        raise DatasetError(f"{what} must be JSON-serializable (no NaN/inf): {err}") from None


def _first_bad(array: np.ndarray) -> str:
    index = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
    return f"[{', '.join(map(str, index))}] is {array[index]}"


def _coerce(name: str, value: Any) -> np.ndarray:
    """Cast an array to the schema dtype, refusing lossy kinds (float -> int, etc.)."""
    dtype = _SCHEMA[name][0]
    array = np.asarray(value)
    kind = array.dtype.kind
    if dtype is np.float32:
        if kind not in "fiu":
            raise DatasetError(f"{name} has dtype {array.dtype}, expected a float array")
        with np.errstate(over="ignore"):
            array = array.astype(np.float32, copy=False)
        if not np.isfinite(array).all():
            raise DatasetError(f"{name}{_first_bad(array)}, must be finite (float32)")
        return array
    if dtype is np.int32:
        if kind not in "iu":
            raise DatasetError(f"{name} has dtype {array.dtype}, expected an integer array")
        if array.size and (array.min() < 0 or array.max() > _INT32_MAX):
            raise DatasetError(
                f"{name} has values in [{array.min()}, {array.max()}], expected counts in "
                f"[0, {_INT32_MAX}]"
            )
        return array.astype(np.int32, copy=False)
    # bool
    if kind == "b":
        return array
    if kind in "iu" and np.isin(array, (0, 1)).all():
        return array.astype(np.bool_)
    raise DatasetError(f"{name} has dtype {array.dtype}, expected a bool array")


@dataclass(eq=False, repr=False)
class TrajectoryDataset:
    """Demonstration episodes of one task, one row per episode (N episodes).

    :param task: task name, e.g. ``"hockey"``.
    :param horizon: number of commands T per trajectory.
    :param control_dt_s: time between commands (s).
    :param joint_names: the J joint names, order of the last axis of the trajectories.
    :param trajectories: float32 (N, T, J) commanded joint positions (rad).
    :param goals_xy: float32 (N, 2) goal positions (m).
    :param final_object_pos: float32 (N, 3) final object position (m): puck final position
        or ball position at its best crossing.
    :param rewards: float32 (N,) terminal rewards.
    :param distance_m: float32 (N,) distance between object and goal (m).
    :param contact_steps: int32 (N, C) number of control steps with a contact of each class.
    :param contact_classes: the C class names of ``contact_steps`` columns.
    :param unsafe_classes: the subset of ``contact_classes`` that makes an episode unsafe.
    :param joint_limit_violation_steps: int32 (N,) steps with a joint beyond its limits.
    :param is_expert: bool (N,) unperturbed demonstration.
    :param seed: generator seed, or None.
    :param joint_positions: float32 (N, S, J) measured joint positions (rad) at the control
        rate (S >= T), or None when not recorded.
    :param joint_velocities: float32 (N, S, J) measured joint velocities (rad/s), or None.
    :param metadata: JSON-serializable extras (generator settings, statistics).

    Arrays are cast to the dtypes above; all float arrays must be finite and counts >= 0.
    """

    task: str
    horizon: int
    control_dt_s: float
    joint_names: tuple[str, ...]
    trajectories: np.ndarray
    goals_xy: np.ndarray
    final_object_pos: np.ndarray
    rewards: np.ndarray
    distance_m: np.ndarray
    contact_steps: np.ndarray
    contact_classes: tuple[str, ...]
    unsafe_classes: tuple[str, ...]
    joint_limit_violation_steps: np.ndarray
    is_expert: np.ndarray
    seed: int | None = None
    joint_positions: np.ndarray | None = None
    joint_velocities: np.ndarray | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.task, str) or not self.task:
            raise DatasetError(f"task must be a non-empty string, got {self.task!r}")
        if isinstance(self.horizon, bool) or not isinstance(self.horizon, (int, np.integer)):
            raise DatasetError(f"horizon must be an integer, got {self.horizon!r}")
        self.horizon = int(self.horizon)
        if self.horizon < 1:
            raise DatasetError(f"horizon is {self.horizon}, must be >= 1")
        self.control_dt_s = float(self.control_dt_s)
        if not np.isfinite(self.control_dt_s) or self.control_dt_s <= 0:
            raise DatasetError(f"control_dt_s is {self.control_dt_s}, must be finite and > 0")
        self.joint_names = self._names(self.joint_names, "joint_names")
        if not self.joint_names:
            raise DatasetError("joint_names is empty")
        self.contact_classes = self._names(self.contact_classes, "contact_classes")
        self.unsafe_classes = self._names(self.unsafe_classes, "unsafe_classes")
        extra = [c for c in self.unsafe_classes if c not in self.contact_classes]
        if extra:
            raise DatasetError(
                f"unsafe_classes {extra} are not in contact_classes {list(self.contact_classes)}"
            )
        if self.seed is not None:
            if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)):
                raise DatasetError(f"seed must be an integer or None, got {self.seed!r}")
            self.seed = int(self.seed)
        if not isinstance(self.metadata, dict):
            raise DatasetError(f"metadata must be a dict, got {type(self.metadata).__name__}")
        self.metadata = _json_normalized(self.metadata, "metadata")

        if self.joint_velocities is not None and self.joint_positions is None:
            raise DatasetError("joint_velocities given without joint_positions")
        for name in ARRAY_NAMES:
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, _coerce(name, value))

        trajectories = self.trajectories
        if trajectories.ndim != 3:
            raise DatasetError(
                f"trajectories has shape {trajectories.shape}, expected (N, T, J) = "
                f"(N, {self.horizon}, {len(self.joint_names)})"
            )
        sizes: dict[str, int] = {
            "N": trajectories.shape[0],
            "T": self.horizon,
            "J": len(self.joint_names),
            "C": len(self.contact_classes),
        }
        if self.joint_positions is not None:
            if self.joint_positions.ndim != 3:
                raise DatasetError(
                    f"joint_positions has shape {self.joint_positions.shape}, expected (N, S, J)"
                )
            sizes["S"] = self.joint_positions.shape[1]
            if sizes["S"] < self.horizon:
                raise DatasetError(
                    f"joint_positions has S={sizes['S']} steps, expected S >= horizon "
                    f"{self.horizon}"
                )
        for name, (_, symbols, _) in _SCHEMA.items():
            value = getattr(self, name)
            if value is None:
                continue
            expected = tuple(sizes[s] if isinstance(s, str) else s for s in symbols)
            if value.shape != expected:
                legend = ", ".join(str(s) for s in symbols)
                raise DatasetError(
                    f"{name} has shape {value.shape}, expected {expected} ({legend}; "
                    f"N={sizes['N']} episodes)"
                )

    @staticmethod
    def _names(names: Sequence[str], what: str) -> tuple[str, ...]:
        if isinstance(names, str):
            raise DatasetError(f"{what} must be a sequence of names, got the string {names!r}")
        result = tuple(names)
        if not all(isinstance(n, str) and n for n in result):
            raise DatasetError(f"{what} must contain non-empty strings, got {list(result)}")
        duplicates = sorted({n for n in result if result.count(n) > 1})
        if duplicates:
            raise DatasetError(f"{what} has duplicates {duplicates}")
        return result

    # ------------------------------------------------------------------ views

    @property
    def n_episodes(self) -> int:
        return int(self.trajectories.shape[0])

    @property
    def n_joints(self) -> int:
        return len(self.joint_names)

    @property
    def joint_state_steps(self) -> int | None:
        """S, the number of recorded joint states per episode, or None."""
        return None if self.joint_positions is None else int(self.joint_positions.shape[1])

    @property
    def unsafe(self) -> np.ndarray:
        """(N,) bool: the episode had a contact of an unsafe class."""
        columns = [self.contact_classes.index(c) for c in self.unsafe_classes]
        return (self.contact_steps[:, columns] > 0).any(axis=1)

    @property
    def safe_fraction(self) -> float:
        """Fraction of episodes without unsafe contact (nan for an empty dataset)."""
        return float(np.mean(~self.unsafe)) if self.n_episodes else float("nan")

    def arrays(self) -> dict[str, np.ndarray]:
        """The per-episode arrays that are present, by name."""
        return {n: getattr(self, n) for n in ARRAY_NAMES if getattr(self, n) is not None}

    def _replace_arrays(self, arrays: dict[str, np.ndarray], **changes: Any) -> TrajectoryDataset:
        kwargs = {
            "task": self.task,
            "horizon": self.horizon,
            "control_dt_s": self.control_dt_s,
            "joint_names": self.joint_names,
            "contact_classes": self.contact_classes,
            "unsafe_classes": self.unsafe_classes,
            "seed": self.seed,
            "metadata": copy.deepcopy(self.metadata),
        }
        kwargs.update(arrays)
        kwargs.update(changes)
        return TrajectoryDataset(**kwargs)

    def subset(self, index_or_mask: Any) -> TrajectoryDataset:
        """Episodes selected by an int, slice, integer index array or (N,) bool mask (copies)."""
        mask = np.asarray(index_or_mask) if not isinstance(index_or_mask, slice) else None
        if mask is not None and mask.dtype == np.bool_ and mask.shape != (self.n_episodes,):
            raise DatasetError(f"subset mask has shape {mask.shape}, expected ({self.n_episodes},)")
        try:
            rows = np.arange(self.n_episodes)[index_or_mask]
        except IndexError as err:
            raise DatasetError(
                f"subset index out of range for {self.n_episodes} episodes: {err}"
            ) from None
        rows = np.atleast_1d(rows)
        return self._replace_arrays({n: a[rows].copy() for n, a in self.arrays().items()})

    @classmethod
    def concatenate(cls, datasets: Sequence[TrajectoryDataset]) -> TrajectoryDataset:
        """Episodes of several datasets of the same task, horizon, step, joints, classes and
        joint-state layout. The seed is kept when all agree (else None); the metadata too
        (else ``{"concatenated_from": [metadata, ...]}``)."""
        datasets = list(datasets)
        if not datasets:
            raise DatasetError("concatenate needs at least one dataset")
        first = datasets[0]
        for i, other in enumerate(datasets[1:], start=1):
            for attr in (
                "task",
                "horizon",
                "control_dt_s",
                "joint_names",
                "contact_classes",
                "unsafe_classes",
                "joint_state_steps",
            ):
                mine, theirs = getattr(first, attr), getattr(other, attr)
                if mine != theirs:
                    raise DatasetError(
                        f"datasets[{i}].{attr} is {theirs!r}, expected {mine!r} (datasets[0])"
                    )
            if (first.joint_velocities is None) != (other.joint_velocities is None):
                raise DatasetError(
                    f"datasets[{i}] {'has' if other.joint_velocities is not None else 'lacks'} "
                    "joint_velocities, unlike datasets[0]"
                )
        arrays = {
            name: np.concatenate([getattr(d, name) for d in datasets], axis=0)
            for name in first.arrays()
        }
        seeds = {d.seed for d in datasets}
        metadatas = [d.metadata for d in datasets]
        metadata = (
            copy.deepcopy(first.metadata)
            if all(m == first.metadata for m in metadatas)
            else {"concatenated_from": copy.deepcopy(metadatas)}
        )
        return first._replace_arrays(
            arrays, seed=seeds.pop() if len(seeds) == 1 else None, metadata=metadata
        )

    def __eq__(self, other: object) -> bool:
        """Exact equality of every field and array (dtype, shape and values)."""
        if not isinstance(other, TrajectoryDataset):
            return NotImplemented
        scalars = (
            "task",
            "horizon",
            "control_dt_s",
            "joint_names",
            "contact_classes",
            "unsafe_classes",
            "seed",
            "metadata",
        )
        if any(getattr(self, s) != getattr(other, s) for s in scalars):
            return False
        for name in ARRAY_NAMES:
            a, b = getattr(self, name), getattr(other, name)
            if (a is None) != (b is None):
                return False
            if a is not None and (a.dtype != b.dtype or not np.array_equal(a, b)):
                return False
        return True

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        states = "" if self.joint_positions is None else f", S={self.joint_state_steps}"
        return (
            f"TrajectoryDataset(task={self.task!r}, N={self.n_episodes}, T={self.horizon}, "
            f"J={self.n_joints}, control_dt_s={self.control_dt_s}{states}, seed={self.seed})"
        )

    # ------------------------------------------------------------------ files

    def save(self, directory: str | os.PathLike[str], overwrite: bool = False) -> Path:
        """Write ``episodes.npz`` + ``metadata.json`` into ``directory`` atomically.

        Refuses an existing non-empty directory unless ``overwrite=True``, and even then only
        replaces a directory that holds a dataset (never an unrelated folder).
        """
        target = Path(directory)
        check_output_target(target, overwrite, what="dataset", marker=METADATA_FILE)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        try:
            os.chmod(tmp, 0o755)
            npz_path = tmp / EPISODES_FILE
            with open(npz_path, "wb") as handle:
                np.savez(handle, **self.arrays())
                handle.flush()
                os.fsync(handle.fileno())
            info = {
                "format": FORMAT_NAME,
                "format_version": FORMAT_VERSION,
                "task": self.task,
                "horizon": self.horizon,
                "control_dt_s": self.control_dt_s,
                "joint_names": list(self.joint_names),
                "seed": self.seed,
                "n_episodes": self.n_episodes,
                "contact_classes": list(self.contact_classes),
                "unsafe_classes": list(self.unsafe_classes),
                "joint_state_steps": self.joint_state_steps,
                "arrays": {
                    n: {"dtype": str(a.dtype), "shape": list(a.shape)}
                    for n, a in self.arrays().items()
                },
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "genrl_ros_version": package_version(),
                "episodes_sha256": _sha256(npz_path),
                "metadata": self.metadata,
            }
            write_text_durable(tmp / METADATA_FILE, json.dumps(info, indent=2, allow_nan=False))
            replace_directory(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return target

    @classmethod
    def load(
        cls,
        directory: str | os.PathLike[str],
        *,
        task: str | None = None,
        horizon: int | None = None,
        joint_names: Sequence[str] | None = None,
    ) -> TrajectoryDataset:
        """Read and validate a dataset written by :meth:`save`.

        :param task, horizon, joint_names: expectations; a mismatch raises
            :class:`DatasetError` naming the expected and the found value.
        """
        directory = Path(directory)
        info = read_dataset_info(directory)
        npz_path = directory / EPISODES_FILE
        if not npz_path.is_file():
            raise DatasetError(f"{npz_path} is missing")
        digest = _sha256(npz_path)
        if digest != info["episodes_sha256"]:
            raise DatasetError(
                f"{npz_path} is corrupt or truncated: sha256 {digest} differs from "
                f"{info['episodes_sha256']} recorded in {METADATA_FILE}"
            )
        arrays = _read_npz(npz_path)

        sizes = {
            "N": info["n_episodes"],
            "T": info["horizon"],
            "J": len(info["joint_names"]),
            "C": len(info["contact_classes"]),
            "S": info.get("joint_state_steps"),
        }
        for name, (dtype, symbols, required) in _SCHEMA.items():
            if name not in arrays:
                if required or (name == "joint_positions" and sizes["S"] is not None):
                    raise DatasetError(f"{npz_path}: array {name!r} is missing")
                continue
            array = arrays[name]
            if "S" in symbols and sizes["S"] is None:
                raise DatasetError(
                    f"{npz_path}: {name} is present but {METADATA_FILE} has no joint_state_steps"
                )
            if array.dtype != np.dtype(dtype):
                raise DatasetError(
                    f"{npz_path}: {name} has dtype {array.dtype}, expected {np.dtype(dtype)}"
                )
            expected = tuple(sizes[s] if isinstance(s, str) else s for s in symbols)
            if array.shape != expected:
                legend = ", ".join(str(s) for s in symbols)
                raise DatasetError(
                    f"{npz_path}: {name} has shape {array.shape}, expected {expected} ({legend})"
                )
        unknown = sorted(set(arrays) - set(_SCHEMA))
        if unknown:
            raise DatasetError(f"{npz_path}: unknown arrays {unknown}")
        try:
            dataset = cls(
                task=info["task"],
                horizon=info["horizon"],
                control_dt_s=info["control_dt_s"],
                joint_names=tuple(info["joint_names"]),
                contact_classes=tuple(info["contact_classes"]),
                unsafe_classes=tuple(info["unsafe_classes"]),
                seed=info["seed"],
                metadata=info.get("metadata", {}),
                **arrays,
            )
        except DatasetError as err:
            raise DatasetError(f"{directory}: {err}") from None
        dataset.check_expectations(task=task, horizon=horizon, joint_names=joint_names)
        return dataset

    def check_expectations(
        self,
        *,
        task: str | None = None,
        horizon: int | None = None,
        joint_names: Sequence[str] | None = None,
    ) -> None:
        """Raise :class:`DatasetError` when the dataset is not of this task/horizon/joints."""
        if task is not None and task != self.task:
            raise DatasetError(f"dataset task is {self.task!r}, expected {task!r}")
        if horizon is not None and int(horizon) != self.horizon:
            raise DatasetError(f"dataset horizon is {self.horizon} commands, expected {horizon}")
        if joint_names is not None and tuple(joint_names) != self.joint_names:
            raise DatasetError(
                f"dataset has {self.n_joints} joints {list(self.joint_names)}, expected "
                f"{len(joint_names)} joints {list(joint_names)}"
            )


# --------------------------------------------------------------------------- helpers

_REQUIRED_INFO = (
    "task",
    "horizon",
    "control_dt_s",
    "joint_names",
    "seed",
    "n_episodes",
    "contact_classes",
    "unsafe_classes",
    "episodes_sha256",
)


def read_dataset_info(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The parsed ``metadata.json`` of a dataset directory, format name/version checked."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DatasetError(f"no dataset at {directory}: not a directory")
    path = directory / METADATA_FILE
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"{path} is missing: {directory} is not a dataset") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DatasetError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT_NAME:
        found = info.get("format") if isinstance(info, dict) else type(info).__name__
        raise DatasetError(f"{path}: format is {found!r}, expected {FORMAT_NAME!r}")
    version = info.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise DatasetError(f"{path}: unknown format_version {version!r}, expected {FORMAT_VERSION}")
    if version > FORMAT_VERSION:
        raise DatasetError(
            f"{path}: format_version {version} is newer than the supported version "
            f"{FORMAT_VERSION}; upgrade genrl_ros to read it"
        )
    missing = [k for k in _REQUIRED_INFO if k not in info]
    if missing:
        raise DatasetError(f"{path}: missing keys {missing}")
    return info


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except Exception as err:  # zipfile.BadZipFile, zlib.error, EOFError, ValueError (pickle)
        raise DatasetError(f"{path} cannot be read: {type(err).__name__}: {err}") from None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_text_durable(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) and fsync it."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _is_nonempty_dir(path: Path) -> bool:
    return path.is_dir() and any(path.iterdir())


def check_output_target(target: Path, overwrite: bool, *, what: str, marker: str) -> None:
    """Refuse a target that exists (unless it is an empty directory) when not overwriting,
    and refuse to replace anything that is not an output of the same kind."""
    if target.exists() or target.is_symlink():
        if not target.is_dir() or target.is_symlink():
            raise FileExistsError(f"{target} exists and is not a directory; not writing the {what}")
        if _is_nonempty_dir(target):
            if not overwrite:
                raise FileExistsError(
                    f"{target} exists and is not empty; pass --overwrite (overwrite=True) to replace the {what}"
                )
            if not (target / marker).exists():
                raise FileExistsError(
                    f"{target} is not empty and has no {marker}: it is not a {what}, "
                    "refusing to replace it"
                )


def replace_directory(source: Path, target: Path) -> None:
    """Rename ``source`` to ``target``; an existing non-empty ``target`` is first moved aside
    (and restored if the rename fails), then deleted. Both must be on the same file system."""
    if not _is_nonempty_dir(target):
        os.replace(source, target)  # also replaces an empty directory
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.rmdir(aside)
    os.rename(target, aside)
    try:
        os.rename(source, target)
    except BaseException:
        os.rename(aside, target)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def synthetic_dataset(
    n_episodes: int = 5,
    horizon: int = 69,
    joint_state_steps: int | None = 80,
    *,
    task: str = "synthetic",
    control_dt_s: float = 0.02,
    seed: int = 0,
    joint_names: Sequence[str] = tuple(f"panda_joint{i}" for i in range(1, 8)),
) -> TrajectoryDataset:
    """Random but valid dataset for tests and examples (no simulator involved).

    ``joint_state_steps=None`` leaves out the measured joint states.
    """
    rng = np.random.default_rng(seed)
    n_joints = len(joint_names)
    classes = ("blade_table", "stick_puck", "robot_table", "robot_self")
    positions = velocities = None
    if joint_state_steps is not None:
        positions = rng.uniform(-2.0, 2.0, (n_episodes, joint_state_steps, n_joints))
        velocities = rng.normal(0.0, 0.5, (n_episodes, joint_state_steps, n_joints))
    return TrajectoryDataset(
        task=task,
        horizon=horizon,
        control_dt_s=control_dt_s,
        joint_names=tuple(joint_names),
        trajectories=rng.uniform(-2.0, 2.0, (n_episodes, horizon, n_joints)),
        goals_xy=rng.uniform(-0.5, 0.5, (n_episodes, 2)),
        final_object_pos=rng.uniform(-1.0, 1.0, (n_episodes, 3)),
        rewards=rng.normal(size=n_episodes),
        distance_m=rng.uniform(0.0, 1.0, n_episodes),
        contact_steps=rng.integers(0, 3, (n_episodes, len(classes))),
        contact_classes=classes,
        unsafe_classes=("robot_table", "robot_self"),
        joint_limit_violation_steps=rng.integers(0, 2, n_episodes),
        is_expert=rng.random(n_episodes) < 0.5,
        seed=seed,
        joint_positions=positions,
        joint_velocities=velocities,
        metadata={
            "generator": "synthetic_dataset",
            "settings": {"seed": seed, "noise": [0.1, 0.2]},
        },
    )
