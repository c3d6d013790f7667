"""`genrl demos` end to end with real MuJoCo: dataset, coverage plot, rosbag2 round trip."""

import json

import numpy as np
import pytest
import yaml

from genrl_ros.cli import main
from genrl_ros.data.dataset import TrajectoryDataset
from genrl_ros.data.rosbag_io import import_bag
from sim_bridge.executor import BatchExecutor
from sim_bridge.trajectory import check_trajectories


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    root = tmp_path_factory.mktemp("demos")
    out, bag = root / "hockey", root / "hockey_bag"
    argv = [
        "demos", "--task", "hockey", "--episodes", "60", "--expert-goals", "6",
        "--demonstrations", "6", "--seed", "3", "--out", str(out), "--bag", str(bag), "--json",
    ]
    assert main(argv) == 0
    return out, bag


def test_dataset_holds_valid_safe_episodes_and_the_summary(demos, capsys):
    out, _ = demos
    dataset = TrajectoryDataset.load(out, task="hockey", horizon=69)
    assert dataset.n_episodes == 60
    assert dataset.is_expert.sum() == 6
    assert not dataset.unsafe.any()  # only safe episodes are kept by default
    spec = BatchExecutor("hockey").task.trajectory_spec
    assert all(r is None for r in check_trajectories(dataset.trajectories, spec))
    summary = json.loads((out / "summary.json").read_text())
    for key in ("episodes", "expert_median_distance_m", "safe_fraction", "seconds"):
        assert key in summary
    assert summary["expert_median_distance_m"] < 0.05
    assert 0.0 < summary["safe_fraction"] <= 1.0
    assert (out / "coverage.png").stat().st_size > 10_000


def test_recorded_episodes_replay_to_the_same_outcome(demos):
    out, _ = demos
    dataset = TrajectoryDataset.load(out)
    executor = BatchExecutor("hockey")
    outcome = executor.execute(dataset.trajectories[:8].astype(np.float64), dataset.goals_xy[:8])
    # the episodes were executed with the commands as stored (float32): the same outcome
    np.testing.assert_allclose(outcome.final_object_pos, dataset.final_object_pos[:8], atol=1e-9)
    np.testing.assert_array_equal(outcome.contact_steps, dataset.contact_steps[:8])


def test_bag_reads_back_identically(demos):
    out, bag = demos
    dataset = TrajectoryDataset.load(out)
    metadata = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert metadata["storage_identifier"] == "mcap"
    topics = {t["topic_metadata"]["name"]: t for t in metadata["topics_with_message_count"]}
    assert topics["/joint_states"]["message_count"] == 60 * (69 + 30)
    assert topics["/goal"]["message_count"] == 60
    back = import_bag(bag)
    assert back == dataset
    assert back.joint_positions.shape == (60, 99, 7)
