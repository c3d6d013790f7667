"""The trainer node's component (genrl_ros.graph_trainer) run for real: episodes one at a time
through the graph's message path (ResetScene / DecodeLatent requests, JointTrajectory ->
FollowJointTrajectory goal, the controller's goal check, the simulated scene, EpisodeOutcome
and back), with the real ROS 2 message classes of the rosbags typestore and the real
simulator; the run directory compared with ``genrl train-policy``'s (train_em) on the same
generator and seed; resume; parameter validation.
"""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from sim_bridge.node_params import ParameterError, defaults
from sim_bridge.ros_conversions import MessageTypes, trajectory_to_msg
from sim_bridge.ros_outcome_conversions import (
    EpisodeReport,
    episode_outcome_from_msg,
    episode_outcome_to_msg,
)
from sim_bridge.sim_session import SimSession
from sim_bridge.trajectory_action import (
    AcceptedGoal,
    FollowJointTrajectoryTypes,
    check_goal,
    check_workspace,
    goal_to_msg,
    register_follow_joint_trajectory,
)

from genrl_ros.data.interfaces import make_typestore, service_classes
from genrl_ros.em.config import EMConfig
from genrl_ros.em.trainer import EpisodeResults, train_em
from genrl_ros.graph_trainer import (
    EVALUATE,
    TRAIN,
    TRAINER_PARAMS,
    GraphEpisodes,
    GraphTrainer,
    TrainerSettings,
    decode_request,
    episode_result_from_report,
    outcome_matches,
    rejected_result,
    reset_request,
)

HERE = Path(__file__).resolve().parent
TS = make_typestore()
register_follow_joint_trajectory(TS)
MT = MessageTypes.from_typestore(TS)
FJT = FollowJointTrajectoryTypes.from_typestore(TS)
RESET = service_classes(TS, "genrl_interfaces/srv/ResetScene")
DECODE = service_classes(TS, "genrl_interfaces/srv/DecodeLatent")
OUTCOME = TS.types["genrl_interfaces/msg/EpisodeOutcome"]


def _test_em():
    spec = importlib.util.spec_from_file_location("em_fixture", HERE / "test_em.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


EM = _test_em()


@pytest.fixture(scope="module")
def shots() -> np.ndarray:
    from sim_bridge.experts.hockey import HockeyExpert, HockeyShot

    expert = HockeyExpert()
    grid = [HockeyShot(float(d), float(v)) for d in np.linspace(-0.6, 0.6, 5)
            for v in np.linspace(0.4, 1.3, 5)]
    _, trajectories = expert.trajectories(grid)
    expert.executor.close()
    return trajectories


@pytest.fixture(scope="module")
def generator(shots):
    return EM.PCAGenerator(shots, 2)


def settings(out: Path, **overrides) -> TrainerSettings:
    values = {**defaults(TRAINER_PARAMS), "model_path": "unused", "out": str(out),
              "iterations": 2, "episodes_per_iteration": 6, "estep_epochs": 3,
              "value_epochs": 5, "eval_goals": 4, **overrides}
    return TrainerSettings.from_params(values)


class MessageGraph:
    """The graph's message path without ROS: what sim_bridge's reset service, the trajectory
    generator's decode service, the controller's goal check and the simulated episode do with
    the trainer's requests, with real message classes in between."""

    def __init__(self, generator) -> None:
        self.generator = generator
        self.session = SimSession("hockey")
        self.episodes = 0

    def run(self, request) -> EpisodeResults:
        reset = reset_request(request.goal_xy, RESET[0], MT)
        self.session.reset(np.array([reset.goal.x, reset.goal.y]))
        decode = decode_request(request.latent, DECODE[0], MT)
        import torch

        with torch.no_grad():  # the generator node decodes one latent (float32 in)
            positions = self.generator.decode(
                torch.as_tensor(np.asarray(decode.latent, np.float32)[None]))[0].numpy()
        trajectory = trajectory_to_msg(
            positions.astype(np.float64), self.generator.joint_names, 0.04, MT)
        # sim_bridge's goal check with its default workspace_check: true
        checked = check_workspace(
            check_goal(goal_to_msg(trajectory, FJT), self.session.spec, 0), self.session.task)
        if not isinstance(checked, AcceptedGoal):  # refused before execution
            report = self.session.reject(checked.error_string)
        else:
            report = self.session.finish(self.session.simulate(checked.commands))
        self.episodes += 1
        _, received = episode_outcome_from_msg(episode_outcome_to_msg(report, 0, OUTCOME, MT))
        assert outcome_matches(received, request, "hockey")
        return episode_result_from_report(received)

    def close(self) -> None:
        self.session.close()


def drive(trainer: GraphTrainer, graph: MessageGraph, stop_after_episodes: int | None = None):
    progress = []
    while (request := trainer.next_episode()) is not None:
        if stop_after_episodes is not None and graph.episodes >= stop_after_episodes:
            break
        step = trainer.record(request, graph.run(request))
        if step is not None:
            progress.append(step)
    return progress


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_graph_run_writes_the_run_of_train_policy(generator, tmp_path):
    """Episodes one at a time through the message path give the run directory of
    genrl train-policy (same goals, latents, rewards, curve, evaluation)."""
    s = settings(tmp_path / "graph")
    config = s.config
    embedded = train_em(generator, "hockey", tmp_path / "embedded", iterations=2, config=config,
                        model_info={"model_sha256": "x"}, export_onnx=None)
    graph = MessageGraph(generator)
    trainer = GraphTrainer(s, generator, {"model_sha256": "x"})
    try:
        assert trainer.phase == TRAIN and trainer.progress() == "iteration 1/2, 0/6 episodes"
        assert trainer.next_episode().index == trainer.next_episode().index == 0
        progress = drive(trainer, graph)
    finally:
        trainer.close()
        graph.close()
    assert [p.kind for p in progress] == ["iteration", "iteration", "complete"]
    assert graph.episodes == 2 * 6 + 4
    assert trainer.phase == "done" and trainer.next_episode() is None
    summary = progress[-1].summary
    for key in ("episodes", "iterations", "median_distance_m", "success_rate",
                "table_contact_steps", "invalid_episodes", "eval_rejected"):
        assert summary[key] == embedded[key], key
    out, ref = tmp_path / "graph", tmp_path / "embedded"
    assert (out / "episodes.csv").read_text() == (ref / "episodes.csv").read_text()
    for a, b in zip(rows(out / "curve.csv"), rows(ref / "curve.csv"), strict=True):
        assert {k: v for k, v in a.items() if k != "seconds"} == {
            k: v for k, v in b.items() if k != "seconds"}
    assert json.loads((out / "eval.json").read_text()) == json.loads((ref / "eval.json").read_text())
    assert (out / "eval_goals.csv").read_text() == (ref / "eval_goals.csv").read_text()
    for name in ("run.json", "last.pt", "policy.pt", "curve.png", "policy.onnx", "summary.json"):
        assert (out / name).is_file(), name
    assert json.loads((out / "run.json").read_text()) == json.loads((ref / "run.json").read_text())


def test_graph_run_with_a_warm_start_matches_train_policy(generator, shots, tmp_path):
    """warm_start_data: the same fit as genrl train-policy --warm-start, then the same run."""
    from genrl_ros.data.dataset import TrajectoryDataset
    from genrl_ros.em.warm_start import demonstration_pairs

    EM.make_shot_dataset(shots).save(tmp_path / "demos")
    s = settings(tmp_path / "graph", iterations=1, warm_start_data=str(tmp_path / "demos"))
    pairs = demonstration_pairs(generator, TrajectoryDataset.load(tmp_path / "demos"), 0.005)
    train_em(generator, "hockey", tmp_path / "embedded", iterations=1, config=s.config,
             model_info={"model_sha256": "x"}, export_onnx=None, warm_start_pairs=pairs)
    graph = MessageGraph(generator)
    trainer = GraphTrainer(s, generator, {"model_sha256": "x"})
    try:
        drive(trainer, graph)
    finally:
        trainer.close()
        graph.close()
    out, ref = tmp_path / "graph", tmp_path / "embedded"
    assert (out / "episodes.csv").read_text() == (ref / "episodes.csv").read_text()
    assert json.loads((out / "run.json").read_text()) == json.loads((ref / "run.json").read_text())
    assert json.loads((out / "run.json").read_text())["warm_start"]["pairs"] == 19
    graph_fit = json.loads((out / "warm_start.json").read_text())
    embedded_fit = json.loads((ref / "warm_start.json").read_text())
    assert "eval_median_distance_m" not in graph_fit  # the embedded run also evaluates it
    assert graph_fit == {k: v for k, v in embedded_fit.items() if not k.startswith("eval_")}


def test_graph_run_resumes_after_an_interruption(generator, tmp_path):
    """Killed in the middle of iteration 2: the new trainer resumes from last.pt, runs the
    unfinished iteration's episodes again and ends like an uninterrupted run."""
    run = tmp_path / "run"
    graph = MessageGraph(generator)
    trainer = GraphTrainer(settings(run, eval_goals=2), generator, {"model_sha256": "x"})
    drive(trainer, graph, stop_after_episodes=9)  # iteration 1 done, 3 of iteration 2
    trainer.close()
    with pytest.raises(FileExistsError, match="--resume"):
        GraphTrainer(settings(run, eval_goals=2), generator, {"model_sha256": "x"})
    resumed = GraphTrainer(settings(run, eval_goals=2, resume=True), generator,
                           {"model_sha256": "x"})
    assert resumed.progress() == "iteration 2/2, 0/6 episodes"
    drive(resumed, graph)
    resumed.close()

    full = GraphTrainer(settings(tmp_path / "full", eval_goals=2), generator, {"model_sha256": "x"})
    drive(full, graph)
    full.close()
    graph.close()
    assert (run / "episodes.csv").read_text() == (tmp_path / "full" / "episodes.csv").read_text()
    assert [int(r["iteration"]) for r in rows(run / "curve.csv")] == [1, 2]
    assert json.loads((run / "eval.json").read_text()) == json.loads(
        (tmp_path / "full" / "eval.json").read_text())


@pytest.mark.filterwarnings("ignore:invalid value encountered in subtract")  # all rejected
def test_bookkeeping_refuses_results_out_of_order_and_counts_rejections(generator, tmp_path):
    trainer = GraphTrainer(settings(tmp_path / "run", iterations=1, episodes_per_iteration=2,
                                    eval_goals=1), generator, {"model_sha256": "x"})
    try:
        first = trainer.next_episode()
        assert first.phase == TRAIN and first.iteration == 1 and first.index == 0
        assert first.goal_xy.shape == (2,) and first.latent.shape == (2,)
        assert trainer.next_episode().index == 0  # the same episode until it is recorded
        with pytest.raises(ValueError, match="one episode"):
            trainer.record(first, EpisodeResults.concatenate([rejected_result()] * 2))
        assert trainer.record(first, rejected_result()) is None
        with pytest.raises(ValueError, match="iteration 1, episode 1 is running"):
            trainer.record(first, rejected_result())
        second = trainer.next_episode()
        step = trainer.record(second, rejected_result())
        assert step.kind == "iteration" and step.row["invalid"] == 2
        assert step.row["reward_mean"] == EMConfig().invalid_reward_for("hockey")
        assert trainer.phase == EVALUATE
        request = trainer.next_episode()
        assert request.phase == EVALUATE and request.describe() == "evaluation, episode 0"
        step = trainer.record(request, rejected_result())
        assert step.kind == "complete" and step.summary["eval_rejected"] == 1
        with pytest.raises(RuntimeError, match="complete"):
            trainer.record(request, rejected_result())
        with pytest.raises(RuntimeError, match="ROS graph"):
            GraphEpisodes().run(np.zeros((1, 2)), np.zeros((1, 2)))
        exported = trainer.export_latest_policy()
        assert exported.name == "latest_policy.onnx" and exported.stat().st_size > 100
    finally:
        trainer.close()


def test_results_from_outcome_messages():
    classes = ("blade_table", "stick_puck", "robot_table")
    report = EpisodeReport(3, "hockey", np.array([1.0, 0.1]), np.array([0.9, 0.1, 0.0]),
                           -0.1, 0.1, classes, (2, 40, 1), ("blade_table", "robot_table"))
    _, received = episode_outcome_from_msg(episode_outcome_to_msg(report, 5, OUTCOME, MT))
    result = episode_result_from_report(received)
    assert result.reward.tolist() == [-0.1] and result.executed.tolist() == [True]
    assert result.table_contact_steps.tolist() == [2]  # blade_table only, as train-policy
    assert result.unsafe_contact_steps.tolist() == [3]
    rejected = EpisodeReport.rejected(4, "hockey", [1.0, 0.1], "velocity", classes, classes[:1])
    result = episode_result_from_report(rejected)
    assert not result.executed[0] and np.isnan(result.reward[0])
    ball = EpisodeReport(0, "basketball", np.zeros(2), np.zeros(3), -1.0, 1.0,
                         ("robot_floor", "ball_rim"), (4, 9), ("robot_floor",))
    assert episode_result_from_report(ball).table_contact_steps.tolist() == [4]

    request = reset_request(np.array([1.0, -0.2]), RESET[0], MT)
    assert (request.sample_goal, request.goal.x, request.goal.y) == (False, 1.0, -0.2)
    latent = decode_request(np.array([0.5, -1.0]), DECODE[0], MT).latent
    assert np.asarray(latent).dtype == np.float64 and list(latent) == [0.5, -1.0]

    from genrl_ros.graph_trainer import EpisodeRequest

    mine = EpisodeRequest(TRAIN, 1, 0, np.array([1.0, 0.1]), np.zeros(2))
    assert outcome_matches(received, mine, "hockey")
    assert not outcome_matches(received, mine, "basketball")
    other = EpisodeRequest(TRAIN, 1, 0, np.array([1.0, 0.2]), np.zeros(2))
    assert not outcome_matches(received, other, "hockey")


def test_parameters_are_checked_with_names_and_bounds(tmp_path):
    base = {**defaults(TRAINER_PARAMS), "model_path": "m", "out": str(tmp_path)}
    s = TrainerSettings.from_params(base)
    assert s.config == EMConfig(init_std=None, invalid_reward=None)  # the defaults agree
    assert s.config.episodes_per_iteration == 64 and s.action_name == "/safety/follow_joint_trajectory"
    for change, message in (
        ({"model_path": ""}, "parameter model_path is empty"),
        ({"out": ""}, "parameter out is empty"),
        ({"episodes_per_iteration": 1}, "episodes_per_iteration is 1, must be >= 2"),
        ({"lr": 0.0}, "parameter lr is 0.0, must be > 0.0"),
        ({"lr": 1}, "expected float"),
        ({"invalid_reward": 1.0}, "invalid_reward is 1.0, must be <= 0.0"),
        ({"observation": "lidar"}, "expected one of ['goal', 'image']"),
        ({"resume": True, "overwrite": True}, "resume and overwrite exclude each other"),
        ({"task": "golf"}, "parameter task"),
    ):
        with pytest.raises(ParameterError, match=__import__("re").escape(message)):
            TrainerSettings.from_params({**base, **change})
    s = TrainerSettings.from_params({**base, "init_std": 0.5, "invalid_reward": -2.0})
    assert s.config.init_std == 0.5 and s.config.invalid_reward == -2.0
