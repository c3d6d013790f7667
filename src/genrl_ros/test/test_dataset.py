"""TrajectoryDataset: validation, selection, and the atomic, checksummed numpy format."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from genrl_ros.data import dataset as dataset_module
from genrl_ros.data.dataset import (
    EPISODES_FILE,
    FORMAT_NAME,
    METADATA_FILE,
    DatasetError,
    TrajectoryDataset,
    read_dataset_info,
    synthetic_dataset,
)


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


# --------------------------------------------------------------------------- in memory


def test_dtypes_shapes_and_properties():
    data = synthetic_dataset(6, 10, 12, seed=3)
    assert data.n_episodes == 6 and data.n_joints == 7 and data.joint_state_steps == 12
    assert data.trajectories.dtype == np.float32
    assert data.contact_steps.dtype == np.int32
    assert data.is_expert.dtype == np.bool_
    unsafe_cols = [data.contact_classes.index(c) for c in data.unsafe_classes]
    expected = (data.contact_steps[:, unsafe_cols] > 0).any(axis=1)
    assert np.array_equal(data.unsafe, expected)
    assert data.safe_fraction == pytest.approx(1.0 - expected.mean())
    assert "N=6" in repr(data)


def test_validation_errors_name_field_and_bound():
    good = synthetic_dataset(3, 5, None)
    kwargs = dict(
        task=good.task,
        horizon=5,
        control_dt_s=0.02,
        joint_names=good.joint_names,
        trajectories=good.trajectories,
        goals_xy=good.goals_xy,
        final_object_pos=good.final_object_pos,
        rewards=good.rewards,
        distance_m=good.distance_m,
        contact_steps=good.contact_steps,
        contact_classes=good.contact_classes,
        unsafe_classes=good.unsafe_classes,
        joint_limit_violation_steps=good.joint_limit_violation_steps,
        is_expert=good.is_expert,
    )
    TrajectoryDataset(**kwargs)
    cases = [
        ({"horizon": 6}, r"trajectories has shape \(3, 5, 7\), expected \(3, 6, 7\)"),
        ({"goals_xy": np.zeros((2, 2))}, r"goals_xy has shape \(2, 2\), expected \(3, 2\)"),
        ({"rewards": np.array([0.0, np.nan, 1.0])}, r"rewards\[1\] is nan"),
        ({"contact_steps": -np.ones((3, 4), int)}, r"contact_steps has values in \[-1, -1\]"),
        ({"contact_steps": np.zeros((3, 4))}, "contact_steps has dtype float64"),
        ({"unsafe_classes": ("lava",)}, r"unsafe_classes \['lava'\] are not in contact_classes"),
        ({"control_dt_s": 0.0}, "control_dt_s is 0.0"),
        (
            {"joint_velocities": np.zeros((3, 5, 7))},
            "joint_velocities given without joint_positions",
        ),
        ({"joint_positions": np.zeros((3, 4, 7))}, r"S=4 steps, expected S >= horizon 5"),
        ({"metadata": {"x": float("nan")}}, "metadata must be JSON-serializable"),
        ({"is_expert": np.array([0.5, 1, 0])}, "is_expert has dtype float64"),
    ]
    for change, pattern in cases:
        with pytest.raises(DatasetError, match=pattern):
            TrajectoryDataset(**{**kwargs, **change})
    bad = good.trajectories.copy()
    bad[1, 2, 3] = np.inf
    with pytest.raises(DatasetError, match=r"trajectories\[1, 2, 3\] is inf"):
        TrajectoryDataset(**{**kwargs, "trajectories": bad})


def test_subset_and_concatenate():
    data = synthetic_dataset(5, 8, 9)
    part = data.subset(np.array([True, False, True, False, False]))
    assert part.n_episodes == 2
    assert np.array_equal(part.trajectories, data.trajectories[[0, 2]])
    assert np.array_equal(part.joint_velocities, data.joint_velocities[[0, 2]])
    assert data.subset(3).n_episodes == 1
    assert data.subset(slice(1, 4)).n_episodes == 3
    with pytest.raises(DatasetError, match=r"mask has shape \(3,\), expected \(5,\)"):
        data.subset(np.ones(3, bool))
    with pytest.raises(DatasetError, match="out of range"):
        data.subset(7)

    whole = TrajectoryDataset.concatenate([data.subset([0, 1]), data.subset([2, 3, 4])])
    assert whole == data
    other = synthetic_dataset(2, 8, 9, seed=1)
    merged = TrajectoryDataset.concatenate([data, other])
    assert merged.n_episodes == 7 and merged.seed is None
    assert merged.metadata == {"concatenated_from": [data.metadata, other.metadata]}
    with pytest.raises(DatasetError, match=r"datasets\[1\].horizon is 9, expected 8"):
        TrajectoryDataset.concatenate([data, synthetic_dataset(2, 9, 9)])
    with pytest.raises(DatasetError, match=r"datasets\[1\].joint_state_steps is None, expected 9"):
        TrajectoryDataset.concatenate([data, synthetic_dataset(2, 8, None)])


# --------------------------------------------------------------------------- files


def test_save_load_round_trip(tmp_path):
    data = synthetic_dataset(5, 69, 80, seed=7)
    out = data.save(tmp_path / "demos")
    assert sorted(p.name for p in out.iterdir()) == [EPISODES_FILE, METADATA_FILE]
    loaded = TrajectoryDataset.load(out, task="synthetic", horizon=69, joint_names=data.joint_names)
    assert loaded == data
    for name, array in data.arrays().items():
        assert getattr(loaded, name).dtype == array.dtype
        assert np.array_equal(getattr(loaded, name), array)
    info = read_dataset_info(out)
    assert info["format"] == FORMAT_NAME and info["format_version"] == 1
    assert info["n_episodes"] == 5 and info["horizon"] == 69
    assert info["created"].endswith("+00:00")
    assert "genrl_ros_version" in info and len(info["episodes_sha256"]) == 64
    with np.load(out / EPISODES_FILE, allow_pickle=False) as archive:
        assert sorted(archive.files) == sorted(data.arrays())
    assert leftovers(tmp_path) == []


def test_round_trip_without_joint_states_and_empty(tmp_path):
    data = synthetic_dataset(3, 4, None)
    assert TrajectoryDataset.load(data.save(tmp_path / "a")) == data
    empty = data.subset(np.zeros(3, bool))
    assert empty.n_episodes == 0
    assert TrajectoryDataset.load(empty.save(tmp_path / "b")) == empty


def test_refuses_to_overwrite(tmp_path):
    first = synthetic_dataset(2, 4, None, seed=1)
    second = synthetic_dataset(3, 4, None, seed=2)
    target = tmp_path / "demos"
    first.save(target)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        second.save(target)
    assert TrajectoryDataset.load(target) == first
    second.save(target, overwrite=True)
    assert TrajectoryDataset.load(target) == second
    assert leftovers(tmp_path) == []

    unrelated = tmp_path / "home"
    unrelated.mkdir()
    (unrelated / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a dataset"):
        first.save(unrelated, overwrite=True)
    assert (unrelated / "notes.txt").read_text() == "keep me"

    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(FileExistsError, match="not a directory"):
        first.save(a_file, overwrite=True)

    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    first.save(empty_dir)
    assert TrajectoryDataset.load(empty_dir) == first


def test_failed_save_leaves_nothing(tmp_path, monkeypatch):
    data = synthetic_dataset(2, 4, None)

    def broken_savez(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(dataset_module.np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        data.save(tmp_path / "demos")
    assert list(tmp_path.iterdir()) == []

    # a failing overwrite keeps the old dataset intact
    monkeypatch.undo()
    data.save(tmp_path / "demos")
    monkeypatch.setattr(dataset_module.np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        synthetic_dataset(3, 4, None, seed=9).save(tmp_path / "demos", overwrite=True)
    monkeypatch.undo()
    assert TrajectoryDataset.load(tmp_path / "demos") == data
    assert leftovers(tmp_path) == []


def test_corrupt_and_truncated_npz(tmp_path):
    target = synthetic_dataset(3, 6, 7).save(tmp_path / "demos")
    npz = target / EPISODES_FILE
    raw = npz.read_bytes()

    corrupted = bytearray(raw)
    corrupted[len(raw) // 2] ^= 0xFF
    npz.write_bytes(bytes(corrupted))
    with pytest.raises(DatasetError, match=r"episodes.npz is corrupt or truncated: sha256"):
        TrajectoryDataset.load(target)

    npz.write_bytes(raw[: len(raw) // 3])
    with pytest.raises(DatasetError, match="episodes.npz is corrupt or truncated"):
        TrajectoryDataset.load(target)

    # truncated file whose checksum was (wrongly) updated: the reader still names the file
    info = json.loads((target / METADATA_FILE).read_text())
    info["episodes_sha256"] = dataset_module._sha256(npz)
    (target / METADATA_FILE).write_text(json.dumps(info))
    with pytest.raises(DatasetError, match=r"episodes.npz cannot be read"):
        TrajectoryDataset.load(target)

    npz.unlink()
    with pytest.raises(DatasetError, match="episodes.npz is missing"):
        TrajectoryDataset.load(target)


def _rewrite(target: Path, arrays: dict | None = None, **info_changes) -> None:
    """Rewrite a saved dataset with changed arrays / metadata.json (checksum kept valid)."""
    npz = target / EPISODES_FILE
    if arrays is not None:
        with open(npz, "wb") as handle:
            np.savez(handle, **arrays)
    info = json.loads((target / METADATA_FILE).read_text())
    info.update(info_changes)
    info["episodes_sha256"] = dataset_module._sha256(npz)
    (target / METADATA_FILE).write_text(json.dumps(info))


def test_wrong_dtype_shape_nan_on_disk(tmp_path):
    data = synthetic_dataset(3, 6, 7)
    target = data.save(tmp_path / "demos")
    arrays = dict(data.arrays())

    _rewrite(target, {**arrays, "rewards": arrays["rewards"].astype(np.float64)})
    with pytest.raises(DatasetError, match="rewards has dtype float64, expected float32"):
        TrajectoryDataset.load(target)

    _rewrite(target, {**arrays, "goals_xy": arrays["goals_xy"][:2]})
    with pytest.raises(DatasetError, match=r"goals_xy has shape \(2, 2\), expected \(3, 2\)"):
        TrajectoryDataset.load(target)

    _rewrite(target, {k: v for k, v in arrays.items() if k != "is_expert"})
    with pytest.raises(DatasetError, match="array 'is_expert' is missing"):
        TrajectoryDataset.load(target)

    bad = arrays["trajectories"].copy()
    bad[2, 1, 0] = np.nan
    _rewrite(target, {**arrays, "trajectories": bad})
    with pytest.raises(DatasetError, match=r"trajectories\[2, 1, 0\] is nan"):
        TrajectoryDataset.load(target)

    _rewrite(target, {**arrays, "extra": np.zeros(3)})
    with pytest.raises(DatasetError, match=r"unknown arrays \['extra'\]"):
        TrajectoryDataset.load(target)

    _rewrite(target, {**arrays, "trajectories": np.array([None] * 3, dtype=object)})
    with pytest.raises(DatasetError, match="cannot be read"):
        TrajectoryDataset.load(target)


def test_expectations(tmp_path):
    data = synthetic_dataset(2, 69, None, task="hockey")
    target = data.save(tmp_path / "demos")
    with pytest.raises(DatasetError, match="dataset horizon is 69 commands, expected 78"):
        TrajectoryDataset.load(target, horizon=78)
    with pytest.raises(DatasetError, match="dataset task is 'hockey', expected 'basket'"):
        TrajectoryDataset.load(target, task="basket")
    with pytest.raises(DatasetError, match="dataset has 7 joints .* expected 6 joints"):
        TrajectoryDataset.load(target, joint_names=data.joint_names[:6])
    assert TrajectoryDataset.load(target, task="hockey", horizon=69) == data


def test_unknown_versions_and_formats(tmp_path):
    target = synthetic_dataset(2, 4, None).save(tmp_path / "demos")
    _rewrite(target, format_version=2)
    with pytest.raises(
        DatasetError, match="format_version 2 is newer than the supported version 1"
    ):
        TrajectoryDataset.load(target)
    _rewrite(target, format_version="1")
    with pytest.raises(DatasetError, match="unknown format_version '1'"):
        TrajectoryDataset.load(target)
    _rewrite(target, format_version=1, format="something.else")
    with pytest.raises(DatasetError, match="format is 'something.else'"):
        TrajectoryDataset.load(target)
    (target / METADATA_FILE).write_text("{not json")
    with pytest.raises(DatasetError, match="metadata.json is not valid JSON"):
        TrajectoryDataset.load(target)
    with pytest.raises(DatasetError, match="not a directory"):
        TrajectoryDataset.load(tmp_path / "nowhere")
