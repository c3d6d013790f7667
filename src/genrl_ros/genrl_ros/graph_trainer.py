"""What the trainer node does, without ROS: EM policy training (GenRL Algorithm 1) whose
episodes run one at a time through the ROS graph.

The node asks :meth:`GraphTrainer.next_episode` what to run (an :class:`EpisodeRequest`: a
goal and the latent to decode), runs it through the graph (reset the scene to the goal,
decode the latent with the trajectory generator, send the trajectory through the safety
monitor to the executor, read the episode outcome) and hands the outcome back to
:meth:`GraphTrainer.record` (:func:`episode_result_from_report`). After N episodes the
trainer updates the policy (E-step, M-step, value fit: :meth:`EMTrainer.update`) and writes
the run directory exactly as ``genrl train-policy`` does (:class:`RunRecorder`: episodes.csv,
curve.csv, last.pt; at the end eval.json, eval_goals.csv, policy.pt, curve.png, policy.onnx,
summary.json).
When all iterations are done the deterministic policy is evaluated on the held-out goals,
again through the graph.

Who samples the latents: the trainer, from its own copy of pi_theta. The E-step needs
log pi_theta(alpha_i | s_i) of the very policy that drew alpha_i and, for the image policy, the
(goal, image) pairs; the latent policy node serves deployment and gets the trainer's weights
after every update (``latest_policy.onnx``, written atomically, then its ``policy_path``
parameter is set, which makes it load the file). The goals and latents of an iteration are
drawn together at its start from the same random streams as ``genrl train-policy``, so a
graph run and an embedded run with the same seed and generator see the same goals and
latents, and an interrupted graph run resumes from ``last.pt`` exactly (the episodes of the
unfinished iteration are run again).

Episodes the safety monitor refuses (limits, out-of-distribution guard) count as rejected,
like trajectories the embedded executor rejects: ``invalid_reward``, ``executed`` 0.

Parameters: :data:`TRAINER_PARAMS` (checked by :meth:`TrainerSettings.from_params`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sim_bridge.node_params import ParameterError, ParamSpec, check_params
from sim_bridge.ros_conversions import MessageTypes
from sim_bridge.ros_outcome_conversions import EpisodeReport

from genrl_ros.em.config import OBSERVATIONS, EMConfig
from genrl_ros.node_params import SAFE_ACTION, TASKS

TRAINER_NODE = "trainer"
#: the ONNX file the trainer writes after every update for the latent policy node
LATEST_POLICY_FILE = "latest_policy.onnx"
TRAIN, EVALUATE, DONE = "train", "evaluate", "done"
EXPORTERS = ("dynamo", "torchscript")


def _positive_int(name: str, default: int, description: str, minimum: int = 1) -> ParamSpec:
    return ParamSpec(name, default, description, minimum=minimum, read_only=True)


def _positive_float(name: str, default: float, description: str) -> ParamSpec:
    return ParamSpec(
        name, default, description, minimum=0.0, exclusive_minimum=True, read_only=True
    )


TRAINER_PARAMS: tuple[ParamSpec, ...] = (
    # ---- the run
    ParamSpec("task", "hockey", "task of the generator and the scene", choices=TASKS, read_only=True),
    ParamSpec(
        "model_path",
        "",
        "the generator the trajectory generator decodes with: a genrl train-model run "
        "directory or checkpoint (its latent size, prior and hash; required)",
        read_only=True,
    ),
    ParamSpec(
        "out",
        "",
        "run directory, written like genrl train-policy --out (required)",
        read_only=True,
    ),
    ParamSpec(
        "observation", "goal", "what the policy observes", choices=OBSERVATIONS, read_only=True
    ),
    ParamSpec(
        "warm_start_data",
        "",
        "demonstration dataset (genrl demos): before EM, fit the policy to the latents of the "
        "demonstrations that reached their goal, like genrl train-policy --warm-start "
        "(\"\" = no warm start)",
        read_only=True,
    ),
    _positive_int("iterations", 100, "EM iterations (N episodes each)"),
    ParamSpec("resume", False, "continue the run in out from its last.pt", read_only=True),
    ParamSpec("overwrite", False, "replace an existing run in out", read_only=True),
    _positive_int("threads", 1, "torch threads of the EM updates"),
    ParamSpec(
        "onnx_exporter",
        "torchscript",
        "torch ONNX exporter of the pushed and final policies (torchscript: ~0.6 s a goal "
        "policy, dynamo: ~9 s)",
        choices=EXPORTERS,
        read_only=True,
    ),
    # ---- EMConfig (genrl train-policy's options)
    ParamSpec("seed", 0, "seed of goals, latents, minibatches and initial weights", minimum=0,
              read_only=True),
    _positive_int("episodes_per_iteration", 64, "N, episodes per EM iteration", minimum=2),
    _positive_int("estep_epochs", 20, "passes of the E-step over the batch"),
    _positive_int("minibatch_size", 32, "episodes per E-step gradient step"),
    _positive_float("lr", 0.003, "Adam learning rate of the E-step"),
    ParamSpec("kl_weight", 1.0, "weight of the KL(q || pi) penalty of Eq. 5", minimum=0.0,
              read_only=True),
    _positive_float("max_kl", 0.2, "trust region: largest batch mean KL(q || pi) of an E-step"),
    _positive_int("value_epochs", 50, "Adam steps of the value fit per iteration"),
    ParamSpec("init_std", 0.0, "initial policy std (0: the prior's std)", minimum=0.0,
              read_only=True),
    ParamSpec(
        "invalid_reward",
        0.0,
        "reward of a rejected trajectory (0: the task's, -1.5 hockey, -10 basketball)",
        maximum=0.0,
        read_only=True,
    ),
    _positive_int("distill_epochs", 5, "image policy: epochs of the M-step distillation"),
    _positive_int("eval_goals", 500, "held-out goals of the final evaluation (through the graph)"),
    _positive_int("checkpoint_every", 1, "write last.pt every this many iterations"),
    # ---- the graph
    ParamSpec(
        "reset_service",
        "/sim_bridge/reset_scene",
        "genrl_interfaces/srv/ResetScene service of the simulator (sets each episode's goal)",
        nonempty=True,
        read_only=True,
    ),
    ParamSpec(
        "decode_service",
        "/generate_trajectory",
        "genrl_interfaces/srv/DecodeLatent service of the trajectory generator",
        nonempty=True,
        read_only=True,
    ),
    ParamSpec(
        "action_name",
        SAFE_ACTION,
        "FollowJointTrajectory server the trajectories go to (the safety monitor's)",
        nonempty=True,
        read_only=True,
    ),
    ParamSpec(
        "policy_node",
        "/latent_policy",
        "latent policy node that gets the weights after every update (empty: none)",
        read_only=True,
    ),
    ParamSpec(
        "server_timeout_s",
        30.0,
        "how long to wait for a service, the action server or a reply (s)",
        minimum=0.0,
        exclusive_minimum=True,
    ),
    ParamSpec(
        "result_timeout_s",
        600.0,
        "how long to wait for an episode's FollowJointTrajectory result (s)",
        minimum=0.0,
        exclusive_minimum=True,
    ),
    ParamSpec(
        "outcome_timeout_s",
        10.0,
        "how long to wait for an episode's outcome after its result (s)",
        minimum=0.0,
        exclusive_minimum=True,
    ),
    ParamSpec(
        "max_attempts",
        3,
        "attempts of an episode that got no outcome (no reply, no server) before training stops",
        minimum=1,
    ),
    ParamSpec(
        "start_delay_s",
        1.0,
        "wait before the first episode, e.g. for the other nodes to start (s)",
        minimum=0.0,
        exclusive_minimum=True,
        read_only=True,
    ),
)

#: EMConfig fields set from parameters of the same name (0.0 of init_std / invalid_reward: None)
_EM_FIELDS = (
    "seed", "episodes_per_iteration", "estep_epochs", "minibatch_size", "lr", "kl_weight",
    "max_kl", "value_epochs", "init_std", "invalid_reward", "distill_epochs", "eval_goals",
    "checkpoint_every",
)


@dataclass(frozen=True)
class TrainerSettings:
    """The checked parameters of the trainer node: the run and its :class:`EMConfig`, the
    graph's names and timeouts (see :data:`TRAINER_PARAMS` for each)."""

    task: str
    model_path: str
    out: str
    observation: str
    warm_start_data: str
    iterations: int
    resume: bool
    overwrite: bool
    threads: int
    onnx_exporter: str
    config: EMConfig
    reset_service: str
    decode_service: str
    action_name: str
    policy_node: str
    server_timeout_s: float
    result_timeout_s: float
    outcome_timeout_s: float
    max_attempts: int
    start_delay_s: float

    @classmethod
    def from_params(cls, values: Mapping[str, Any]) -> TrainerSettings:
        """Check the parameter values (types, ranges, required ones, the EM settings); raises
        :class:`ParameterError` naming the parameter and its bound."""
        p = check_params(TRAINER_PARAMS, values, allow_unknown=True)
        for name, hint in (("model_path", "a genrl train-model run directory or checkpoint"),
                           ("out", "the run directory to write")):
            if not p[name]:
                raise ParameterError(f"parameter {name} is empty: give {hint}")
        if p["resume"] and p["overwrite"]:
            raise ParameterError("parameters resume and overwrite exclude each other")
        em = {name: p[name] for name in _EM_FIELDS}
        for name in ("init_std", "invalid_reward"):
            em[name] = em[name] or None  # 0.0: the default of the prior / task
        try:
            config = EMConfig(**em)
        except ValueError as err:  # EMConfig names the field and the bound
            raise ParameterError(f"parameter {err}") from None
        fields = {
            name: p[name] for name in cls.__dataclass_fields__ if name != "config"
        }
        return cls(config=config, **fields)


# --------------------------------------------------------------------------- messages


def reset_request(goal_xy: np.ndarray, request_cls: type, msg_types: MessageTypes) -> Any:
    """genrl_interfaces/srv/ResetScene request: the scene at goal (x, y) m (z = 0)."""
    goal = np.asarray(goal_xy, dtype=np.float64).reshape(-1)
    return request_cls(
        sample_goal=False, goal=msg_types.Point(x=float(goal[0]), y=float(goal[1]), z=0.0)
    )


def decode_request(latent: np.ndarray, request_cls: type, msg_types: MessageTypes) -> Any:
    """genrl_interfaces/srv/DecodeLatent request of a latent (L,)."""
    values = np.asarray(latent, dtype=np.float64).reshape(-1)
    return request_cls(latent=msg_types.float64_sequence(values))


def table_contact_steps_of(report: EpisodeReport) -> int:
    """The run's safety measure of one episode (as :func:`genrl_ros.em.trainer.table_contact_steps`):
    ``blade_table`` steps (hockey), else the steps with an unsafe contact (basketball)."""
    if "blade_table" in report.contact_classes:
        return report.contact_steps_of(("blade_table",))
    return report.unsafe_contact_steps


def episode_result_from_report(report: EpisodeReport) -> Any:
    """One episode's :class:`~genrl_ros.em.trainer.EpisodeResults` from the simulator's (or a
    robot driver's) outcome."""
    from genrl_ros.em.trainer import EpisodeResults  # noqa: PLC0415 - torch

    executed = bool(report.executed)
    return EpisodeResults(
        reward=[report.reward if executed else math.nan],
        distance_m=[report.distance_m if executed else math.nan],
        executed=[executed],
        table_contact_steps=[table_contact_steps_of(report) if executed else 0],
        unsafe_contact_steps=[report.unsafe_contact_steps if executed else 0],
    )


def rejected_result() -> Any:
    """One episode's results when the trajectory was refused before execution (by the
    safety monitor's review): not executed, no contacts."""
    from genrl_ros.em.trainer import EpisodeResults  # noqa: PLC0415 - torch

    return EpisodeResults(
        reward=[math.nan], distance_m=[math.nan], executed=[False],
        table_contact_steps=[0], unsafe_contact_steps=[0],
    )


# --------------------------------------------------------------------------- episodes


class EpisodeError(RuntimeError):
    """An episode that could not be run (no reply, no server, no outcome); the node tries it
    again (``max_attempts``)."""


class SafetyHold(RuntimeError):
    """The safety monitor refuses every goal (total contact limit); the episode waits for the
    operator's reset and is run again (not counted as rejected)."""



@dataclass(frozen=True, eq=False)
class EpisodeRequest:
    """One episode to run through the graph.

    :param phase: ``train`` (an episode of an iteration) or ``evaluate`` (final evaluation).
    :param iteration: the iteration it belongs to (1-based; 0 in the evaluation).
    :param index: its index in the iteration's batch, or among the evaluation goals.
    :param goal_xy: goal (2,) m, the scene is reset to it.
    :param latent: the latent to decode (L,) float64, clipped to the generator's bound.
    """

    phase: str
    iteration: int
    index: int
    goal_xy: np.ndarray
    latent: np.ndarray

    def describe(self) -> str:
        where = f"iteration {self.iteration}" if self.phase == TRAIN else "evaluation"
        return f"{where}, episode {self.index}"


def outcome_matches(report: EpisodeReport, request: EpisodeRequest, task: str) -> bool:
    """Whether an episode outcome belongs to the request: same task and the goal the scene was
    reset to (outcomes of goals sent by someone else are ignored)."""
    return report.task == task and bool(
        np.array_equal(np.asarray(report.goal_xy, dtype=np.float64), request.goal_xy)
    )


class GraphEpisodes:
    """The :class:`~genrl_ros.em.trainer.EpisodeSource` of a trainer whose episodes run in
    the ROS graph: the node runs them one at a time and feeds :meth:`GraphTrainer.record`;
    batch execution is not available."""

    def run(self, goals: np.ndarray, latents: np.ndarray) -> Any:
        raise RuntimeError(
            "the trainer node's episodes run in the ROS graph, one at a time "
            "(GraphTrainer.next_episode / record), not as a batch"
        )

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class Progress:
    """What :meth:`GraphTrainer.record` finished: an iteration (its curve row: the policy
    has new weights) or the whole run (its summary)."""

    kind: str  #: ``iteration`` or ``complete``
    row: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None


class GraphTrainer:
    """EM training driven episode by episode (see the module docstring).

    :param settings: the node's checked parameters.
    :param generator: the trajectory generator (its metadata; decoding happens in the graph).
    :param model_info: description of the generator (path, model_sha256, ...).
    :param log: where progress messages go.
    """

    def __init__(
        self,
        settings: TrainerSettings,
        generator: Any,
        model_info: dict[str, Any],
        log: Callable[[str], None] | None = None,
    ) -> None:
        from genrl_ros.em.trainer import (  # noqa: PLC0415 - torch, mujoco
            EMTrainer,
            RunRecorder,
            open_run_dir,
            run_info_of,
            write_warm_start,
        )
        from genrl_ros.em.warm_start import pairs_from_data, warm_start  # noqa: PLC0415

        self.settings = settings
        self.model_info = dict(model_info)
        self.out = Path(settings.out)
        self.iterations = settings.iterations
        run_info = run_info_of(
            generator, settings.task, settings.observation, settings.config, self.model_info
        )
        pairs = (pairs_from_data(generator, settings.warm_start_data, settings.config)
                 if settings.warm_start_data else None)
        run_info["warm_start"] = pairs.describe() if pairs is not None else None
        checkpoint = open_run_dir(
            self.out, run_info, settings.iterations,
            resume=settings.resume, overwrite=settings.overwrite,
        )
        self.trainer = EMTrainer(
            generator, settings.task, settings.config, observation=settings.observation,
            episode_source=GraphEpisodes(),
        )
        try:
            self.recorder = RunRecorder(self.out, self.trainer, run_info, checkpoint, log)
            if checkpoint is None and pairs is not None:
                # no held-out evaluation here: the simulator is behind the graph
                write_warm_start(self.out, warm_start(self.trainer, pairs))
        except BaseException:
            self.trainer.close()
            raise
        self._planned: Any = None  # PlannedEpisodes of the running iteration
        self._started = 0.0
        self._results: list[Any] = []
        self._eval_goals: np.ndarray | None = None
        self._eval_latents: np.ndarray | None = None
        self.summary: dict[str, Any] | None = None

    @classmethod
    def from_settings(
        cls, settings: TrainerSettings, log: Callable[[str], None] | None = None
    ) -> GraphTrainer:
        """Load the generator of ``settings.model_path`` (checked against the task) and open
        the run."""
        import torch  # noqa: PLC0415

        from genrl_ros.train_policy import load_generator_for  # noqa: PLC0415

        torch.set_num_threads(settings.threads)
        generator, model_info = load_generator_for(settings.task, settings.model_path)
        return cls(settings, generator, model_info, log)

    # ------------------------------------------------------------------ state
    @property
    def phase(self) -> str:
        """``train``, ``evaluate`` (after the last iteration) or ``done``."""
        if self.trainer.iteration < self.iterations:
            return TRAIN
        return EVALUATE if self.summary is None else DONE

    def progress(self) -> str:
        """A line for the log: where the run is."""
        phase = self.phase
        if phase == TRAIN:
            n = self.settings.config.episodes_per_iteration
            return (f"iteration {self.trainer.iteration + 1}/{self.iterations}, "
                    f"{len(self._results)}/{n} episodes")
        if phase == EVALUATE:
            return f"evaluation, {len(self._results)}/{self.settings.config.eval_goals} episodes"
        return "done"

    def next_episode(self) -> EpisodeRequest | None:
        """The episode to run next (the same one until it is recorded); None when done."""
        phase, trainer = self.phase, self.trainer
        if phase == TRAIN:
            if self._planned is None:  # steps 1-2 for the whole iteration
                self._planned = trainer.sample_episodes()
                self._started = time.perf_counter()
                self._results = []
            i = len(self._results)
            latent = trainer.clip_latents(self._planned.alpha[i : i + 1])[0]
            return EpisodeRequest(
                TRAIN, trainer.iteration + 1, i, self._planned.goals[i].copy(),
                latent.astype(np.float64),
            )
        if phase == EVALUATE:
            if self._eval_goals is None:
                from genrl_ros.em.trainer import evaluation_goals  # noqa: PLC0415

                self._eval_goals = evaluation_goals(trainer.task, trainer.config.eval_goals)
                self._eval_latents = trainer.clip_latents(
                    trainer.evaluation_latents(self._eval_goals)
                )
                self._results = []
            i = len(self._results)
            return EpisodeRequest(
                EVALUATE, 0, i, self._eval_goals[i].copy(),
                self._eval_latents[i].astype(np.float64),
            )
        return None

    def record(self, request: EpisodeRequest, result: Any) -> Progress | None:
        """The result (one-episode EpisodeResults) of the current request. Completes the
        iteration (E-step, M-step, value fit, logs, checkpoint) after its N-th episode, the
        run (evaluation, final files) after the last evaluation episode."""
        from genrl_ros.em.trainer import EpisodeResults, evaluation_rows  # noqa: PLC0415

        expected = self.next_episode()
        if expected is None:
            raise RuntimeError("the run is complete; no episode is expected")
        if (request.phase, request.iteration, request.index) != (
            expected.phase, expected.iteration, expected.index
        ):
            raise ValueError(
                f"result for {request.describe()}, but {expected.describe()} is running"
            )
        if len(result) != 1:
            raise ValueError(f"one episode's result expected, got {len(result)}")
        self._results.append(result)
        if request.phase == TRAIN:
            if len(self._results) < len(self._planned):
                return None
            batch = self.trainer.complete_batch(
                self._planned, EpisodeResults.concatenate(self._results)
            )
            row, episode_rows = self.trainer.update(batch, self._started)
            self.recorder.record(row, episode_rows, self.iterations)
            self._planned, self._results = None, []
            return Progress("iteration", row=row)
        if len(self._results) < len(self._eval_goals):
            return None
        results = EpisodeResults.concatenate(self._results)
        self.summary = self.recorder.finish(
            self.trainer.evaluation_summary(self._eval_goals, results),
            self.model_info,
            self.settings.onnx_exporter,
            evaluation_rows(self._eval_goals, results),
        )
        return Progress("complete", summary=self.summary)

    def export_latest_policy(self) -> Path:
        """The current policy as ``out/latest_policy.onnx`` (atomic), for the policy node."""
        from genrl_ros.em.trainer import export_policy_onnx  # noqa: PLC0415

        return export_policy_onnx(
            self.trainer, self.out / LATEST_POLICY_FILE, self.model_info,
            self.settings.onnx_exporter,
        )

    def close(self) -> None:
        self.trainer.close()
