"""``genrl run``: the main job, the whole embedded pipeline of one task (or both) in one call.

Per task, four stages, each the function its own subcommand uses:

1. ``demos``  — :func:`genrl_ros.demos_cmd.make_demos` (``genrl demos``): scripted expert,
   perturbed demonstrations, coverage plot;
2. ``model``  — :func:`genrl_ros.train_model.train_model` (``genrl train-model``): beta-VAE of
   the demonstration trajectories, losses per epoch;
3. ``eval``   — :func:`genrl_ros.eval_model.evaluate_generator` (``genrl eval-model``):
   precision, recall, DwPR, safe fraction of prior samples;
4. ``policy`` — :func:`genrl_ros.em.trainer.train_em` (``genrl train-policy``): EM policy
   search (Algorithm 1) over the VAE's latent space, evaluation on held-out goals.

Layout of ``--out`` (``OUT``)::

    OUT/report.md              numbers and figures of every stage, wall time per stage
    OUT/summary.json           the numbers of the report (per task)
    OUT/<task>/job.json        what the run is (preset sizes, seed) and the finished stages
    OUT/<task>/demos/          dataset, coverage.png, summary.json
    OUT/<task>/model/          run.json, losses.csv, losses.png, last.pt, best.pt, summary.json
    OUT/<task>/eval/           eval.json, eval.md, trajectories.png
    OUT/<task>/policy/         episodes.csv, curve.csv, curve.png, policy.pt, policy.onnx, ...

Re-running: ``--resume`` skips the finished stages of a run with the same settings and
continues an interrupted model or policy training from its ``last.pt``; a run directory with
other settings is refused unless ``--overwrite`` (which replaces only directories that hold a
``job.json``).

Sizes come from a :class:`MainJobPreset` (``small``: the default, minutes on 2 cores;
``paper``: the paper's sizes, many hours; ``tiny``: seconds, for the tests), with a task's
changes (:data:`TASK_PRESET_CHANGES`: basketball's small run trains a larger VAE faster).
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import sys
import time
from argparse import Namespace
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from genrl_ros.run_dir import atomic_write_text

JOB_FILE = "job.json"
REPORT_FILE = "report.md"
SUMMARY_FILE = "summary.json"
STAGES = ("demos", "model", "eval", "policy")
TASKS = ("hockey", "basketball")
#: torch threads of every stage, whatever ``--threads`` says (which goes to the simulator):
#: the networks are small, and a second torch thread on a shared 2-core machine made the VAE
#: epochs 7x slower in wall time and 10x in CPU time (OpenMP threads waiting for each other;
#: 5 hockey epochs on 1800 trajectories: 15 s / 2.2 s CPU with 1 thread, 114 s / 22 s CPU
#: with 2, load average 14)
TORCH_THREADS = 1


@dataclass(frozen=True)
class MainJobPreset:
    """Sizes of one main-job run (every stage's hyperparameters that the job sets)."""

    #: demonstration episodes in the dataset (``--episodes`` overrides)
    episodes: int
    #: goals on which the unperturbed expert is scored (its accuracy in the report)
    expert_goals: int
    #: solved expert demonstrations that get perturbed into the dataset
    demonstrations: int
    #: beta-VAE latent size N_alpha
    latent_dim: int = 3
    #: weight of the VAE's KL term (on the mean squared error; VAE3 of the paper's zoo)
    beta: float = 0.001
    #: VAE training epochs
    epochs: int = 200
    #: VAE minibatch size (paper: 256)
    batch_size: int = 256
    #: VAE learning rate (paper: 2e-4)
    lr: float = 2e-4
    #: generated and real trajectories for precision/recall (capped at the safe episodes)
    pr_samples: int = 2000
    #: prior samples per intervention of DwPR (paper: 10000)
    dwpr_n: int = 1000
    #: prior samples executed in the simulator for the VAE's safe fraction
    safety_samples: int = 500
    #: EM iterations
    iterations: int = 40
    #: EM episodes per iteration (N of Algorithm 1)
    episodes_per_iteration: int = 64
    #: E-step passes over the batch (EMConfig default 20)
    estep_epochs: int = 20
    #: held-out goals of the policy's final evaluation
    eval_goals: int = 500
    #: checkpoint of the VAE run that the evaluation and the policy use: ``last.pt`` (final
    #: weights) rather than ``best.pt``: on hockey the paper's best-epoch criterion plateaus
    #: early and picks an epoch whose prior samples break velocity limits more often
    #: (safe fraction 0.90 vs 0.985, see genrl_ros.train_model)
    generator_file: str = "last.pt"
    #: export the policy to ONNX (the ROS latent-policy node's input)
    export_onnx: bool = True
    #: start EM from the policy fitted to the demonstrations that reached their goal
    #: (``genrl train-policy --warm-start``, em/warm_start.py); skipped if none did
    warm_start: bool = True

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if item.type == "int" and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"preset {item.name} must be a positive integer, got {value!r}")
        if not (math.isfinite(self.beta) and self.beta >= 0):
            raise ValueError(f"preset beta must be >= 0, got {self.beta!r}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"preset lr must be > 0, got {self.lr!r}")
        if self.generator_file not in ("last.pt", "best.pt"):
            raise ValueError(f"preset generator_file must be last.pt or best.pt, got {self.generator_file!r}")


PRESETS: dict[str, MainJobPreset] = {
    # <= ~10 min on 2 cores for hockey (measured: see README)
    # (the expert is solved on max(expert_goals, demonstrations) goals, the slowest part of
    # the demonstrations: 200 goals, not 500)
    "small": MainJobPreset(episodes=2000, expert_goals=200, demonstrations=200, iterations=60),
    # the paper's sizes: 40k demonstrations, 5000 epochs, PR 15000 vs 15000, DwPR n = 10000
    "paper": MainJobPreset(
        episodes=40000, expert_goals=500, demonstrations=500, epochs=5000, pr_samples=15000,
        dwpr_n=10000, safety_samples=1000, iterations=100,
    ),
    # seconds: the end-to-end test (not shown in --help)
    "tiny": MainJobPreset(
        episodes=60, expert_goals=6, demonstrations=6, latent_dim=2, epochs=3, batch_size=32,
        pr_samples=40, dwpr_n=20, safety_samples=16, iterations=2, episodes_per_iteration=8,
        estep_epochs=2, eval_goals=16, export_onnx=False,
    ),
}


#: what a task changes in a preset. Basketball's small run with the hockey sizes (N_alpha 3,
#: lr 2e-4, 200 epochs) left a VAE whose prior samples were 99 % beyond the velocity limits
#: and a policy whose evaluation throws were 94 % refused; its VAE needs the larger latent and
#: learning rate of the README's basketball section, and EM the 256 episodes per iteration of
#: EMConfig.for_task
TASK_PRESET_CHANGES: dict[tuple[str, str], dict[str, Any]] = {
    ("basketball", "small"): {"latent_dim": 6, "lr": 1e-3, "epochs": 400,
                              "episodes_per_iteration": 256},
}


def preset_for_task(task: str, preset_name: str, preset: MainJobPreset) -> MainJobPreset:
    """``preset`` with the task's changes (:data:`TASK_PRESET_CHANGES`) applied."""
    changes = TASK_PRESET_CHANGES.get((task, preset_name))
    return replace(preset, **changes) if changes else preset


def _say(message: str) -> None:
    print(f"[run] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- run directory


def job_settings(task: str, preset_name: str, preset: MainJobPreset, seed: int) -> dict[str, Any]:
    """What identifies a run (compared on ``--resume``); threads are not part of it."""
    return {"task": task, "preset": preset_name, "sizes": asdict(preset), "seed": int(seed)}


def prepare_task_dir(
    task_dir: Path, settings: dict[str, Any], *, resume: bool, overwrite: bool
) -> dict[str, Any]:
    """Check ``OUT/<task>`` and return its job record (``stages``: finished stages' numbers).

    Raises :class:`FileExistsError` for a non-empty directory without ``--resume`` /
    ``--overwrite``, a directory that is not a main-job run, or (on ``--resume``) a run with
    other settings; :class:`ValueError` for both flags at once.
    """
    if resume and overwrite:
        raise ValueError("--resume and --overwrite exclude each other")
    if task_dir.exists() and not task_dir.is_dir():
        raise FileExistsError(f"{task_dir} exists and is not a directory")
    job_path = task_dir / JOB_FILE
    nonempty = task_dir.is_dir() and any(task_dir.iterdir())
    if nonempty and not job_path.is_file():
        raise FileExistsError(
            f"{task_dir} is not empty and has no {JOB_FILE}: it is not a main-job run, "
            "refusing to write into it"
        )
    if nonempty and not (resume or overwrite):
        raise FileExistsError(
            f"{task_dir} holds a run; pass --resume to continue it (finished stages are "
            "skipped) or --overwrite to replace it"
        )
    if nonempty and resume:
        record = json.loads(job_path.read_text())
        saved = {k: record.get(k) for k in settings}
        if saved != settings:
            changed = [
                f"{key} {saved.get(key)!r} -> {settings[key]!r}"
                for key in settings if saved.get(key) != settings[key]
            ]
            raise FileExistsError(
                f"{task_dir} holds a run with other settings ({'; '.join(changed)}); "
                "pass --overwrite to replace it or use another --out"
            )
        record.setdefault("stages", {})
        return record
    if nonempty:  # overwrite a main-job run
        shutil.rmtree(task_dir)
    task_dir.mkdir(parents=True, exist_ok=True)
    record = {**settings, "stages": {}}
    atomic_write_text(job_path, json.dumps(record, indent=2) + "\n")
    return record


def _finish_stage(task_dir: Path, record: dict[str, Any], stage: str, numbers: dict[str, Any],
                  seconds: float) -> None:
    record["stages"][stage] = {"seconds": round(seconds, 2), "numbers": _plain(numbers)}
    atomic_write_text(task_dir / JOB_FILE, json.dumps(record, indent=2, allow_nan=True) + "\n")


def _plain(value: Any) -> Any:
    """JSON-ready copy (numpy scalars -> floats, NaN kept)."""
    return json.loads(json.dumps(value, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v)))


def _clear(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)


# --------------------------------------------------------------------------- stages


def stage_demos(task: str, out: Path, preset: MainJobPreset, *, seed: int, threads: int) -> dict[str, Any]:
    """Demonstrations (``genrl demos``) into ``out``; returns their summary."""
    from genrl_ros.demos_cmd import make_demos  # noqa: PLC0415 - imports mujoco

    _clear(out)  # an unfinished dataset of this run (the stage is redone from the start)
    return make_demos(
        task, preset.episodes, out, seed=seed, expert_goals=preset.expert_goals,
        demonstrations=preset.demonstrations, threads=threads,
    )


def stage_model(data: Path, out: Path, preset: MainJobPreset, *, seed: int) -> dict[str, Any]:
    """beta-VAE training (``genrl train-model``) into ``out``; continues from ``last.pt`` if
    an earlier call was interrupted. Also writes ``losses.png``."""
    from genrl_ros.data.dataset import TrajectoryDataset  # noqa: PLC0415
    from genrl_ros.train_model import TrainConfig, train_model  # noqa: PLC0415 - torch

    config = TrainConfig(
        kind="vae", latent_dim=preset.latent_dim, epochs=preset.epochs, beta=preset.beta,
        batch_size=preset.batch_size, lr=preset.lr, seed=seed,
    )
    resume = (out / "last.pt").is_file()
    if not resume:
        _clear(out)
    summary = train_model(
        TrajectoryDataset.load(data), out, config, resume=resume, data_source=str(data),
        tensorboard=False,
    )
    plot_losses(out / "losses.csv", out / "losses.png", f"beta-VAE N_alpha={preset.latent_dim}, beta={preset.beta}")
    summary["losses_png"] = str(out / "losses.png")
    return summary


def _load_generator(task: str, model_dir: Path, preset: MainJobPreset):
    from genrl_ros.train_policy import load_generator_for  # noqa: PLC0415 - torch, mujoco

    return load_generator_for(task, str(model_dir / preset.generator_file))


def stage_eval(task: str, data: Path, model_dir: Path, out: Path, preset: MainJobPreset, *,
               seed: int, threads: int) -> dict[str, Any]:
    """Precision, recall, DwPR and safe fraction (``genrl eval-model``) into ``out``, and a
    held-out vs generated trajectory plot."""
    from genrl_ros.data.dataset import TrajectoryDataset  # noqa: PLC0415
    from genrl_ros.eval_model import evaluate_generator, write_eval  # noqa: PLC0415
    from genrl_ros.train_model import TrainConfig, split_dataset  # noqa: PLC0415
    from genrl_ros.zoo import trajectory_plot  # noqa: PLC0415

    _clear(out)
    generator, info = _load_generator(task, model_dir, preset)
    dataset = TrajectoryDataset.load(data)
    started = time.perf_counter()
    result = evaluate_generator(
        generator, dataset, n_samples=preset.pr_samples, dwpr_n=preset.dwpr_n,
        n_safety=preset.safety_samples, seed=seed, threads=threads, progress=True,
    )
    result.update({"model": info["path"], "model_sha256": info["model_sha256"], "data": str(data),
                   "out": str(out), "total_seconds": round(time.perf_counter() - started, 2)})
    write_eval(result, out, f"Evaluation of {info['path']}")
    # a trajectory the model never trained on: the first of its held-out split
    heldout = split_dataset(dataset, holdout=TrainConfig.holdout, seed=seed).heldout
    example = heldout[0] if len(heldout) else dataset.trajectories[0]
    trajectory_plot(generator, example, out / "trajectories.png",
                    f"VAE N_alpha={generator.latent_dim}", seed)
    result["trajectories_png"] = str(out / "trajectories.png")
    return result


def stage_policy(task: str, data: Path, model_dir: Path, out: Path, preset: MainJobPreset, *,
                 seed: int, threads: int) -> dict[str, Any]:
    """EM policy training (``genrl train-policy``, with ``--warm-start`` from the
    demonstrations if the preset says so) into ``out``; continues from ``last.pt`` if an
    earlier call was interrupted."""
    from genrl_ros.em.config import EMConfig  # noqa: PLC0415
    from genrl_ros.em.trainer import train_em  # noqa: PLC0415 - torch, mujoco
    from genrl_ros.em.warm_start import pairs_from_data  # noqa: PLC0415

    generator, info = _load_generator(task, model_dir, preset)
    config = EMConfig.for_task(
        task,
        episodes_per_iteration=preset.episodes_per_iteration, estep_epochs=preset.estep_epochs,
        minibatch_size=min(EMConfig().minibatch_size, preset.episodes_per_iteration),
        eval_goals=preset.eval_goals, seed=seed,
    )
    pairs = None
    if preset.warm_start:
        try:
            pairs = pairs_from_data(generator, data, config)
        except ValueError as err:  # no demonstration reached its goal closely enough
            _say(f"{task} policy: no warm start ({err})")
    resume = (out / "last.pt").is_file()
    if not resume:
        _clear(out)
    return train_em(
        generator, task, out, iterations=preset.iterations, config=config, model_info=info,
        resume=resume, nthread=threads, progress=True,
        export_onnx="dynamo" if preset.export_onnx else None,
        log=lambda message: _say(f"{task} policy: {message}"), warm_start_pairs=pairs,
    )


def plot_losses(losses_csv: Path, path: Path, title: str) -> Path:
    """VAE losses per epoch (training loss, reconstruction, KL; held-out reconstruction RMSE
    in rad) as a PNG."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    with open(losses_csv, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    epoch = [int(r["epoch"]) for r in rows]

    def column(name: str) -> list[float]:
        return [float(r[name]) if r.get(name) not in (None, "") else math.nan for r in rows]

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for name in ("loss", "recon", "heldout_recon"):
        left.plot(epoch, column(name), label=name)
    left.plot(epoch, column("kl"), label="kl (unweighted)", ls="--")
    left.set_yscale("log")
    left.set_xlabel("epoch")
    left.set_ylabel("per trajectory, normalised units")
    left.set_title(title)
    left.legend(fontsize=8)
    left.grid(alpha=0.3)
    right.plot(epoch, column("heldout_recon_rmse_rad"), label="held-out reconstruction RMSE")
    right.plot(epoch, column("sample_rmse_rad"), label="prior sample -> nearest held-out RMSE")
    right.set_xlabel("epoch")
    right.set_ylabel("rad")
    right.set_title("held-out errors")
    right.legend(fontsize=8)
    right.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- one task


def _stage_numbers(stage: str, result: dict[str, Any]) -> dict[str, Any]:
    """The numbers of a stage that the report and the JSON summary show."""
    keys = {
        "demos": ("episodes", "expert_goals", "expert_median_distance_m", "expert_p90_distance_m",
                  "expert_unsafe_episodes", "safe_fraction", "usable_fraction",
                  "final_in_goal_region", "coverage_png"),
        "model": ("epochs", "n_train", "n_heldout", "best_epoch", "best_heldout_recon",
                  "best_heldout_recon_rmse_rad", "final_heldout_recon_rmse_rad",
                  "best_sample_rmse_rad", "final_loss", "losses_png"),
        "eval": ("precision", "recall", "n_samples", "delta", "delta_1", "delta_2",
                 "delta_tilde", "dwpr_n", "safe_fraction", "n_safety", "n_rejected_by_limits",
                 "n_unsafe_contact", "trajectories_png"),
        "policy": ("iterations", "episodes", "median_distance_m", "mean_distance_m",
                   "success_rate", "success_radius_m", "eval_goals", "eval_rejected",
                   "eval_table_contact_steps", "table_contact_steps", "unsafe_contact_steps",
                   "invalid_episodes", "final_reward_mean", "curve_png", "onnx", "warm_start"),
    }[stage]
    numbers = {k: result.get(k) for k in keys}
    if stage == "demos":
        numbers["reward_median"] = result["reward"]["median"]
    if stage == "model":
        numbers["reconstruction_rmse_rad"] = result.get("final_heldout_recon_rmse_rad")
    return numbers


def run_task(task: str, out: Path, preset_name: str, preset: MainJobPreset, *, seed: int,
             threads: int, resume: bool, overwrite: bool) -> dict[str, Any]:
    """All stages of one task in ``out/<task>``; returns the job record (stages' numbers and
    wall times)."""
    task_dir = out / task
    record = prepare_task_dir(task_dir, job_settings(task, preset_name, preset, seed),
                              resume=resume, overwrite=overwrite)
    dirs = {stage: task_dir / stage for stage in STAGES}
    for number, stage in enumerate(STAGES, start=1):
        header = f"{task} stage {number}/{len(STAGES)} {stage}"
        if stage in record["stages"]:
            _say(f"{header}: finished in an earlier call ({record['stages'][stage]['seconds']:.0f} s), skipped")
            continue
        _say(f"{header}: {_stage_description(stage, preset)}")
        started = time.perf_counter()
        if stage == "demos":
            result = stage_demos(task, dirs["demos"], preset, seed=seed, threads=threads)
        elif stage == "model":
            result = stage_model(dirs["demos"], dirs["model"], preset, seed=seed)
        elif stage == "eval":
            result = stage_eval(task, dirs["demos"], dirs["model"], dirs["eval"], preset,
                                seed=seed, threads=threads)
        else:
            result = stage_policy(task, dirs["demos"], dirs["model"], dirs["policy"], preset,
                                  seed=seed, threads=threads)
        seconds = time.perf_counter() - started
        numbers = _stage_numbers(stage, result)
        _finish_stage(task_dir, record, stage, numbers, seconds)
        _say(f"{header}: done in {seconds:.0f} s; {_headline(stage, numbers)}")
    return record


def _stage_description(stage: str, p: MainJobPreset) -> str:
    return {
        "demos": f"{p.episodes} demonstration episodes ({p.demonstrations} expert demonstrations "
                 f"perturbed, expert scored on {p.expert_goals} goals)",
        "model": f"beta-VAE N_alpha={p.latent_dim}, beta={p.beta}, lr {p.lr:g}, {p.epochs} epochs",
        "eval": f"precision/recall n={p.pr_samples}, DwPR n={p.dwpr_n}, "
                f"{p.safety_samples} prior samples simulated",
        "policy": f"EM {p.iterations} iterations x {p.episodes_per_iteration} episodes"
                  f"{' after a warm start from the demonstrations' if p.warm_start else ''}, "
                  f"evaluation on {p.eval_goals} goals",
    }[stage]


def _headline(stage: str, n: dict[str, Any]) -> str:
    if stage == "demos":
        return f"{n['episodes']} episodes, expert median distance {n['expert_median_distance_m']:.4f} m"
    if stage == "model":
        return f"held-out reconstruction RMSE {n['reconstruction_rmse_rad']:.4f} rad"
    if stage == "eval":
        return (f"precision {n['precision']:.3f}, recall {n['recall']:.3f}, delta_tilde "
                f"{n['delta_tilde']:.3f}, safe fraction {_f(n['safe_fraction'], 3)}")
    return (f"median distance {n['median_distance_m']:.4f} m, success rate "
            f"{n['success_rate']:.3f}, table-contact steps {n['table_contact_steps']}")


# --------------------------------------------------------------------------- report


def _warm_start_sentence(warm: dict[str, Any] | None) -> str:
    if not warm:
        return " EM started from the prior (no warm start)."
    return (
        f" EM started from the policy fitted to the {warm['pairs']} demonstrations that ended "
        f"within {_f(warm['max_distance_m'], 3)} m of their goal (held-out median "
        f"{_f(warm['eval_median_distance_m'], 4)} m, success rate "
        f"{_f(warm['eval_success_rate'])} before EM)."
    )


def _f(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _link(path: Any, out: Path) -> str | None:
    if not path or not Path(path).is_file():
        return None
    try:
        return Path(path).resolve().relative_to(out.resolve()).as_posix()
    except ValueError:
        return Path(path).as_posix()


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def task_report(task: str, record: dict[str, Any], out: Path) -> list[str]:
    """The Markdown section of one task."""
    stages = record["stages"]
    s = record["sizes"]
    d, m, e, p = (stages[k]["numbers"] for k in STAGES)
    lines = [f"## {task}", ""]

    lines += [
        "### 1. Demonstrations", "",
        f"Scripted expert scored on {d['expert_goals']} random goals, then "
        f"{s['demonstrations']} solved demonstrations perturbed (expert trajectory shaping); only "
        "usable episodes are kept (safe; for hockey with the blade at least 5 mm above the table).",
        "",
        "| episodes in the dataset | expert median distance (m) | expert p90 (m) | expert unsafe "
        "episodes | safe fraction of perturbed | kept fraction | median reward (m) | final in goal region |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        f"| {d['episodes']} | {_f(d['expert_median_distance_m'], 4)} | "
        f"{_f(d['expert_p90_distance_m'], 4)} | {d['expert_unsafe_episodes']} | "
        f"{_f(d['safe_fraction'])} | {_f(d['usable_fraction'])} | {_f(d['reward_median'])} | "
        f"{_f(d['final_in_goal_region'])} |",
        "",
    ]
    if (link := _link(d.get("coverage_png"), out)):
        lines += [f"![{task} demonstrations: final object positions and rewards]({link})", ""]

    lines += [
        "### 2. Generative model (beta-VAE)", "",
        f"N_alpha = {s['latent_dim']}, beta = {s['beta']}, {m['epochs']} epochs, batch "
        f"{s['batch_size']}, learning rate {s['lr']:g}; {m['n_train']} trajectories for "
        f"training, {m['n_heldout']} held out. "
        f"The evaluation and the policy use `{s['generator_file']}`.",
        "",
        "| held-out reconstruction RMSE, last epoch (rad) | best epoch (selection) | its held-out "
        "reconstruction RMSE (rad) | its held-out reconstruction error (normalised, per trajectory) "
        "| prior sample -> nearest held-out RMSE (rad) |",
        "| --- | --- | --- | --- | --- |",
        f"| {_f(m['final_heldout_recon_rmse_rad'], 4)} | {m['best_epoch']} | "
        f"{_f(m['best_heldout_recon_rmse_rad'], 4)} | {_f(m['best_heldout_recon'], 4)} | "
        f"{_f(m['best_sample_rmse_rad'], 4)} |",
        "",
    ]
    if (link := _link(m.get("losses_png"), out)):
        lines += [f"![{task} VAE losses]({link})", ""]

    delta = " / ".join(_f(x) for x in (e.get("delta") or []))
    lines += [
        "### 3. Model evaluation", "",
        f"Precision and recall (k = 3): {e['n_samples']} prior samples vs {e['n_samples']} safe "
        f"dataset trajectories. DwPR: n = {e['dwpr_n']} per intervention, D = 5. Safe fraction: "
        f"{e['n_safety']} prior samples executed in the simulator ({e['n_rejected_by_limits']} "
        f"rejected by joint limits, {e['n_unsafe_contact']} with unsafe contacts).",
        "",
        "| precision | recall | delta_1 | delta_2 | delta_tilde | delta(l) per latent dimension "
        "| safe fraction |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        f"| {_f(e['precision'])} | {_f(e['recall'])} | {_f(e['delta_1'])} | {_f(e['delta_2'])} | "
        f"{_f(e['delta_tilde'])} | {delta} | {_f(e['safe_fraction'])} |",
        "",
    ]
    if (link := _link(e.get("trajectories_png"), out)):
        lines += [f"![{task}: a held-out trajectory and the nearest generated one]({link})", ""]

    lines += [
        "### 4. EM policy (GenRL, goal policy)", "",
        f"{p['iterations']} iterations x {s['episodes_per_iteration']} episodes = "
        f"{p['episodes']} training episodes; the deterministic policy (latent = policy mean) "
        f"evaluated on {p['eval_goals']} held-out goals, success within "
        f"{_f(p['success_radius_m'], 2)} m." + _warm_start_sentence(p.get("warm_start")),
        "",
        "| median distance (m) | mean distance (m) | success rate | rejected (limits, workspace) "
        "| table-contact steps over training | in the evaluation | invalid training episodes "
        "| training episodes |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        f"| {_f(p['median_distance_m'], 4)} | {_f(p['mean_distance_m'], 4)} | "
        f"{_f(p['success_rate'])} | {p['eval_rejected']} | {p['table_contact_steps']} | "
        f"{p['eval_table_contact_steps']} | {p['invalid_episodes']} | {p['episodes']} |",
        "",
        "Table-contact steps: hockey blade-table control steps; basketball steps with an unsafe "
        "contact.",
        "",
    ]
    if (link := _link(p.get("curve_png"), out)):
        lines += [f"![{task} learning curve and table-contact steps]({link})", ""]

    total = sum(stages[k]["seconds"] for k in STAGES)
    lines += [
        "### Wall time per stage", "",
        "| " + " | ".join(STAGES) + " | total |",
        "| --- " * (len(STAGES) + 1) + "|",
        "| " + " | ".join(_minutes(stages[k]["seconds"]) for k in STAGES) + f" | {_minutes(total)} |",
        "",
    ]
    return lines


def write_report(records: dict[str, dict[str, Any]], out: Path, preset_name: str,
                 threads: int, seconds: float) -> Path:
    """``OUT/report.md`` (all tasks of this call) and ``OUT/summary.json``."""
    lines = [
        "# genrl_ros main job",
        "",
        f"Preset `{preset_name}`, seed {next(iter(records.values()))['seed']}, {threads} "
        f"simulator thread(s), {TORCH_THREADS} torch thread; wall time of this call {_minutes(seconds)} (stages finished by an earlier "
        "call show their own time). Pipeline per task: demonstrations -> beta-VAE -> "
        "precision / recall / DwPR / safe fraction -> EM policy search over the latent space "
        "-> evaluation on held-out goals.",
        "",
    ]
    for task, record in records.items():
        lines += task_report(task, record, out)
    report = out / REPORT_FILE
    atomic_write_text(report, "\n".join(lines))
    summary = {task: {stage: r["stages"][stage] for stage in STAGES} for task, r in records.items()}
    atomic_write_text(out / SUMMARY_FILE, json.dumps(summary, indent=2, allow_nan=True) + "\n")
    return report


def key_numbers(record: dict[str, Any]) -> dict[str, Any]:
    """The ``--json`` numbers of one task."""
    st = record["stages"]
    d, m, e, p = (st[k]["numbers"] for k in STAGES)
    return {
        "episodes": d["episodes"],
        "expert_median_distance_m": d["expert_median_distance_m"],
        "vae_heldout_recon_rmse_rad": m["final_heldout_recon_rmse_rad"],
        "precision": e["precision"],
        "recall": e["recall"],
        "delta_1": e["delta_1"],
        "delta_2": e["delta_2"],
        "delta_tilde": e["delta_tilde"],
        "vae_safe_fraction": e["safe_fraction"],
        "policy_median_distance_m": p["median_distance_m"],
        "policy_mean_distance_m": p["mean_distance_m"],
        "policy_success_rate": p["success_rate"],
        "policy_table_contact_steps": p["table_contact_steps"],
        "policy_training_episodes": p["episodes"],
        "stage_seconds": {k: st[k]["seconds"] for k in STAGES},
    }


# --------------------------------------------------------------------------- entry point


def preset_from_args(args: Namespace) -> MainJobPreset:
    """The preset of ``--preset``, with ``--episodes`` applied."""
    if args.preset not in PRESETS:
        raise ValueError(f"--preset must be one of {', '.join(PRESETS)}, got {args.preset!r}")
    preset = PRESETS[args.preset]
    episodes = getattr(args, "episodes", None)
    if episodes is not None and episodes != preset.episodes:
        preset = replace(preset, episodes=int(episodes))
    return preset


def run_main_job(args: Namespace) -> dict[str, Any]:
    """``genrl run``: every stage of each task, then the report; returns the key numbers."""
    out = Path(args.out)
    tasks = TASKS if args.task == "both" else (args.task,)
    preset = preset_from_args(args)
    resume, overwrite = bool(getattr(args, "resume", False)), bool(getattr(args, "overwrite", False))
    if resume and overwrite:
        raise ValueError("--resume and --overwrite exclude each other")
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out {out} exists and is not a directory")
    import torch  # noqa: PLC0415

    torch.set_num_threads(TORCH_THREADS)
    started = time.perf_counter()
    records: dict[str, dict[str, Any]] = {}
    for task in tasks:
        records[task] = run_task(task, out, args.preset, preset_for_task(task, args.preset, preset),
                                 seed=args.seed, threads=args.threads, resume=resume,
                                 overwrite=overwrite)
    seconds = time.perf_counter() - started
    report = write_report(records, out, args.preset, args.threads, seconds)
    _say(f"report: {report}")
    result: dict[str, Any] = {"report": str(report), "preset": args.preset,
                              "seconds": round(seconds, 2)}
    for task, record in records.items():
        result[task] = key_numbers(record)
    return result
