"""Throughput of episode execution and scene rendering.

    python bench/bench_executor.py [--episodes N] [--repeats R] [--quick]

For each task with an expert (realistic, valid trajectories: hockey shots and basketball
throws with random parameters), episodes per second of

- ``executor``: ``BatchExecutor.execute`` (validation, set-points, rollout, summaries), with 1
  and 2 threads;
- ``raw``: ``mujoco.rollout`` alone on the same model, initial state, number of physics steps
  and the same set-point arrays computed beforehand (``skip_checks=True``, no state output,
  no validation, no summaries): the ceiling the executor is measured against;
- ``step env``: a plain Python gymnasium loop over ``StepEnv`` (one action per control step,
  one thread);

and frames per second of ``SceneCamera`` at 64 x 64 and 128 x 128. Every number is the
median of ``repeats`` timings. Prints a table and writes ``bench/results/executor.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "osmesa")  # before mujoco is imported

import mujoco  # noqa: E402
import numpy as np  # noqa: E402
from mujoco import rollout  # noqa: E402

from sim_bridge.envs import StepEnv, initial_state  # noqa: E402
from sim_bridge.executor import BatchExecutor  # noqa: E402
from sim_bridge.tasks import TASK_NAMES, make_task  # noqa: E402
from sim_bridge.trajectory import check_trajectories  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "executor.json"
THREADS = (1, 2)
UNIQUE_TRAJECTORIES = 16


# ---------------------------------------------------------------------- workloads
def hockey_trajectories(executor: BatchExecutor, n: int, rng: np.random.Generator) -> np.ndarray:
    """Expert shots with random directions and speeds (IK for a few, tiled to n)."""
    from sim_bridge.experts.hockey import HockeyExpert, HockeyShot

    expert = HockeyExpert(executor)
    shots = [
        HockeyShot(float(rng.uniform(-0.5, 0.5)), float(rng.uniform(0.4, 1.4)))
        for _ in range(min(n, UNIQUE_TRAJECTORIES))
    ]
    _, unique = expert.trajectories(shots)
    return unique[np.arange(n) % len(unique)]


def basketball_trajectories(
    executor: BatchExecutor, n: int, rng: np.random.Generator
) -> np.ndarray:
    """Expert throws with random aims and strengths (tiled to n)."""
    from sim_bridge.experts.basketball import STRENGTH_RANGE, BasketballExpert, BasketballThrow

    expert = BasketballExpert(executor)
    count = min(n, UNIQUE_TRAJECTORIES)
    aims = rng.uniform(-np.pi / 2, np.pi / 2, count)
    strengths = rng.uniform(*STRENGTH_RANGE, count)
    throws = [BasketballThrow(float(a), float(s)) for a, s in zip(aims, strengths)]
    _, unique = expert.trajectories(throws)
    return unique[np.arange(n) % len(unique)]


WORKLOADS = {"hockey": hockey_trajectories, "basketball": basketball_trajectories}


def task_available(name: str) -> str | None:
    """Why the task cannot be benchmarked, or None."""
    if importlib.util.find_spec(f"sim_bridge.tasks.{name}") is None:
        return f"sim_bridge.tasks.{name} does not exist yet"
    if importlib.util.find_spec(f"sim_bridge.experts.{name}") is None:
        return f"no expert for {name} (sim_bridge.experts.{name}) to generate valid trajectories"
    return None


# ---------------------------------------------------------------------- timing helpers
def median_time(run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def raw_rollout(task, trajectories, nthread):
    """A function running mujoco.rollout alone on precomputed set-points (the executor's
    formula and initial state), and the runner to close."""
    with BatchExecutor(task, nthread=1) as helper:
        controls = helper.setpoints(trajectories)
        model = helper.model
    n, nstep = controls.shape[:2]
    extra_spec, extra = task.extra_controls(n)
    if extra is not None:
        extra = np.broadcast_to(extra, (n, nstep) + extra.shape[2:])
        controls = np.concatenate([controls, extra], axis=2)
    controls = np.ascontiguousarray(controls)
    control_spec = int(mujoco.mjtState.mjSTATE_CTRL) | int(extra_spec)
    state0 = np.ascontiguousarray(np.tile(initial_state(task, model), (n, 1)))
    sensordata = np.empty((n, nstep, model.nsensordata))
    datas = [mujoco.MjData(model) for _ in range(nthread)]
    models = [model] * n
    runner = rollout.Rollout(nthread=nthread if nthread > 1 else 0)

    def run():
        runner.rollout(
            models,
            datas,
            initial_state=state0,
            control=controls,
            control_spec=control_spec,
            nstep=nstep,
            sensordata=sensordata,
            skip_checks=True,
        )

    return run, runner


def bench_executor_and_raw(task, trajectories, goals, nthread, repeats) -> tuple[float, float]:
    """Episodes/s of the executor and of the raw rollout, timed alternately (so that both
    see the same background load on a shared machine)."""
    n = len(trajectories)
    raw, runner = raw_rollout(task, trajectories, nthread)
    with BatchExecutor(task, nthread=nthread) as executor, runner:
        executor.execute(trajectories[:2], goals[:2])  # warm-up
        raw()
        executor_times, raw_times = [], []
        for _ in range(repeats):
            executor_times.append(median_time(lambda: executor.execute(trajectories, goals), 1))
            raw_times.append(median_time(raw, 1))
    return n / statistics.median(executor_times), n / statistics.median(raw_times)


def bench_step_env_and_raw(task, trajectories, goals, repeats) -> tuple[float, float]:
    """Episodes/s of a Python loop over StepEnv (actions = successive differences of the
    commands) and of the raw rollout (1 thread) on the same episodes, timed alternately."""
    env = StepEnv(task)
    start = np.broadcast_to(task.start_rad, (len(trajectories), 1, task.n_joints))
    actions = np.diff(np.concatenate([start, trajectories], axis=1), axis=1)
    actions = actions.astype(np.float32)

    def run():
        for episode_actions, goal in zip(actions, goals):
            env.reset(options={"goal": goal})
            for action in episode_actions:
                env.step(action)

    raw, runner = raw_rollout(task, trajectories, 1)
    with runner:
        run()  # warm-up
        raw()
        env_times, raw_times = [], []
        for _ in range(repeats):
            env_times.append(median_time(run, 1))
            raw_times.append(median_time(raw, 1))
    env.close()
    n = len(trajectories)
    return n / statistics.median(env_times), n / statistics.median(raw_times)


def bench_camera(task, size, frames, repeats) -> float | str:
    from sim_bridge.camera import SceneCamera

    goals = task.sample_goals(frames, np.random.default_rng(0))
    try:
        camera = SceneCamera(task, size, size)
    except RuntimeError as error:
        return f"not measured: {error}"
    with camera:
        camera.render_batch(goals[:2])  # warm-up
        seconds = median_time(lambda: camera.render_batch(goals), repeats)
    return frames / seconds


# ---------------------------------------------------------------------- main
def machine() -> dict:
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu_count": os.cpu_count(),
        "cpus_available": affinity,
        "load_average_1min_at_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "processor": platform.processor() or platform.machine(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "mujoco": mujoco.__version__,
        "numpy": np.__version__,
        "mujoco_gl": os.environ.get("MUJOCO_GL"),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=64, help="episodes per timing")
    parser.add_argument("--repeats", type=int, default=5, help="timings per number (median)")
    parser.add_argument("--quick", action="store_true", help="16 episodes, 3 repeats")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    episodes, repeats = (16, 3) if args.quick else (args.episodes, args.repeats)
    step_env_episodes = max(2, episodes // 4)
    frames = 50 if args.quick else 200

    report = {
        "machine": machine(),
        "config": {
            "episodes": episodes,
            "step_env_episodes": step_env_episodes,
            "repeats": repeats,
            "render_frames": frames,
            "statistic": "median",
        },
        "tasks": {},
        "notes": [],
    }
    rows = []
    for name in TASK_NAMES:
        missing = task_available(name)
        if missing:
            report["notes"].append(f"{name}: skipped, {missing}")
            continue
        task = make_task(name)
        with BatchExecutor(task) as executor:
            trajectories = WORKLOADS[name](executor, episodes, np.random.default_rng(0))
        reasons = [r for r in check_trajectories(trajectories, task.trajectory_spec) if r]
        assert not reasons, reasons[0]
        goals = task.sample_goals(episodes, np.random.default_rng(1))
        result = {
            "physics_steps_per_episode": task.episode_physics_steps,
            "control_steps_per_episode": task.episode_control_steps,
            "episodes_per_s": {},
        }
        rates = result["episodes_per_s"]
        for nthread in THREADS:
            (
                rates[f"executor_{nthread}t"],
                rates[f"raw_rollout_{nthread}t"],
            ) = bench_executor_and_raw(task, trajectories, goals, nthread, repeats)
            print(f"{name} {nthread} thread(s): done", file=sys.stderr, flush=True)
        rates["step_env_1t"], rates["raw_rollout_1t_step_env_episodes"] = (
            bench_step_env_and_raw(
                task, trajectories[:step_env_episodes], goals[:step_env_episodes], repeats
            )
        )
        result["ratios"] = {
            **{
                f"executor_over_raw_{n}t": rates[f"executor_{n}t"] / rates[f"raw_rollout_{n}t"]
                for n in THREADS
            },
            "step_env_over_raw_1t": (
                rates["step_env_1t"] / rates["raw_rollout_1t_step_env_episodes"]
            ),
        }
        result["physics_steps_per_s_raw_1t"] = (
            rates["raw_rollout_1t"] * task.episode_physics_steps
        )
        result["render_frames_per_s"] = {
            f"{size}x{size}": bench_camera(task, size, frames, repeats) for size in (64, 128)
        }
        report["tasks"][name] = result
        rows.append((name, result))

    print_table(report, rows)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten {args.output}")
    return report


def print_table(report: dict, rows: list) -> None:
    m = report["machine"]
    print(
        f"\nmachine: {m['cpu_count']} CPUs ({m['cpus_available']} available, load "
        f"{m['load_average_1min_at_start']:.2f}), mujoco {m['mujoco']}, MUJOCO_GL={m['mujoco_gl']}"
    )
    c = report["config"]
    print(f"episodes {c['episodes']} (step env {c['step_env_episodes']}), median of "
          f"{c['repeats']} repeats\n")
    header = f"{'task':<11}{'measure':<30}{'1 thread':>12}{'2 threads':>12}"
    print(header)
    print("-" * len(header))
    for name, result in rows:
        r, q = result["episodes_per_s"], result["ratios"]
        print(f"{name:<11}{'executor episodes/s':<30}"
              f"{r['executor_1t']:>12.1f}{r['executor_2t']:>12.1f}")
        print(f"{'':<11}{'raw rollout episodes/s':<30}"
              f"{r['raw_rollout_1t']:>12.1f}{r['raw_rollout_2t']:>12.1f}")
        print(f"{'':<11}{'executor / raw':<30}"
              f"{q['executor_over_raw_1t']:>12.3f}{q['executor_over_raw_2t']:>12.3f}")
        print(f"{'':<11}{'step env episodes/s':<30}{r['step_env_1t']:>12.1f}{'-':>12}")
        print(f"{'':<11}{'step env / raw':<30}{q['step_env_over_raw_1t']:>12.3f}{'-':>12}")
        for size, fps in result["render_frames_per_s"].items():
            value = f"{fps:>12.1f}" if isinstance(fps, float) else f"  {fps}"
            print(f"{'':<11}{'camera frames/s ' + size:<30}{value}")
    for note in report["notes"]:
        print(f"note: {note}")


if __name__ == "__main__":
    main()
