"""``genrl compare``: GenRL vs PPO vs SAC with the same episode budget (GenRL, seed 000,
Figures 6 and 7).

    genrl compare --task hockey --model RUN --data DEMOS --episodes 640 --seeds 3 --out DIR

For each seed 0..S-1 and each method, E training episodes:

- ``genrl``: EM policy training (:func:`genrl_ros.em.trainer.train_em`) on the trained
  generator ``--model`` (E / episodes-per-iteration iterations), run directory
  ``DIR/genrl/seed<k>``;
- ``ppo``: SB3 PPO on the per-step environment, pre-trained by behaviour cloning on the
  demonstrations ``--data`` (:mod:`genrl_ros.baselines`);
- ``sac``: SB3 SAC with the demonstration transitions in its replay buffer.

The demonstrations are replayed once through the per-step environment (cached in
``DIR/demo_transitions.npz``). Every finished (method, seed) is saved in
``DIR/runs/<method>_seed<k>.json`` and reused when the command runs again with the same
task and budget (so an interrupted comparison continues, and methods can be run by separate
processes with ``--methods`` and gathered by a last call).

Outputs: ``compare.json`` (per method and seed the per-episode rewards, distances and
table-contact steps, the final deterministic evaluation; per method the summary),
``reward_vs_episodes.png`` (Figure 6: mean +- std over seeds of the per-bin mean reward),
``table_contacts.png`` (Figure 7: table-contact steps per episode, per bin) and
``compare.md`` (the summary table).

Table-contact steps: hockey ``blade_table`` control steps of each training episode (the
paper's safety measure), basketball the steps with an unsafe contact.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

METHODS = ("genrl", "ppo", "sac")
METHOD_LABELS = {"genrl": "GenRL (EM on the VAE latent)", "ppo": "PPO + BC", "sac": "SAC + demos"}
METHOD_COLORS = {"genrl": "tab:green", "ppo": "tab:blue", "sac": "tab:orange"}
COMPARE_JSON = "compare.json"
COMPARE_MD = "compare.md"
REWARD_PNG = "reward_vs_episodes.png"
CONTACTS_PNG = "table_contacts.png"
DEMOS_FILE = "demo_transitions.npz"
RUNS_DIR = "runs"
FORMAT = "genrl_ros.compare"


def _log(message: str) -> None:
    print(f"[compare] {message}", file=sys.stderr, flush=True)


@dataclass
class CompareConfig:
    """Settings of one comparison."""

    #: task name (hockey, basketball)
    task: str
    #: training episodes per method and seed (the shared budget)
    episodes: int
    #: seeds run for every method
    seeds: tuple[int, ...] = (0, 1, 2)
    #: methods compared
    methods: tuple[str, ...] = METHODS
    #: GenRL episodes per EM iteration (N of Algorithm 1); ``episodes`` must be a multiple
    genrl_episodes_per_iteration: int = 64
    #: demonstration episodes given to PPO / SAC (None = all of the dataset)
    demos: int | None = None
    #: held-out goals of the final deterministic evaluation of each trained policy
    eval_goals: int = 100
    #: bins of the curves (episodes per bin = episodes / bins, rounded up)
    bins: int = 20
    #: run only these of ``seeds`` (None = all); the others are reused when finished and
    #: otherwise left out, so several processes can share the work (``--only-seeds``)
    only_seeds: tuple[int, ...] | None = None
    #: extra settings of the baselines (``ppo``, ``sac``: field -> value)
    baseline_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.seeds = tuple(int(s) for s in self.seeds)
        self.methods = tuple(self.methods)
        for name in ("episodes", "genrl_episodes_per_iteration", "eval_goals", "bins"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct and at least one, got {self.seeds!r}")
        if self.only_seeds is not None:
            self.only_seeds = tuple(int(s) for s in self.only_seeds)
            if not set(self.only_seeds) <= set(self.seeds):
                raise ValueError(f"only_seeds {self.only_seeds} must be among seeds {self.seeds}")
        unknown = [m for m in self.methods if m not in METHODS]
        if not self.methods or unknown:
            raise ValueError(f"methods must be among {METHODS}, got {self.methods!r}")
        if self.demos is not None and (not isinstance(self.demos, int) or self.demos < 1):
            raise ValueError(f"demos must be None or a positive integer, got {self.demos!r}")
        if "genrl" in self.methods and self.episodes % self.genrl_episodes_per_iteration:
            raise ValueError(
                f"episodes ({self.episodes}) must be a multiple of "
                f"genrl_episodes_per_iteration ({self.genrl_episodes_per_iteration}), so "
                "that GenRL gets exactly the same budget"
            )


# --------------------------------------------------------------------------- the runs


def _run_file(out: Path, method: str, seed: int) -> Path:
    return out / RUNS_DIR / f"{method}_seed{seed}.json"


def _finite_or_none(values: Any) -> list[Any]:
    return [None if (v is None or not math.isfinite(float(v))) else float(v) for v in values]


def _load_run(path: Path, config: CompareConfig) -> dict[str, Any] | None:
    """A finished run of the same task and budget, or None."""
    if not path.exists():
        return None
    run = json.loads(path.read_text())
    if run.get("task") != config.task or run.get("episodes") != config.episodes:
        return None
    return run


def _save_run(path: Path, run: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(run, allow_nan=False, sort_keys=True) + "\n")
    tmp.replace(path)


def run_genrl(
    config: CompareConfig, model: str, seed: int, out: Path, threads: int, progress: bool
) -> dict[str, Any]:
    """GenRL's EM training for ``config.episodes`` episodes; the per-episode log."""
    from genrl_ros.em.config import EMConfig  # noqa: PLC0415
    from genrl_ros.em.trainer import EPISODES_FILE, train_em  # noqa: PLC0415
    from genrl_ros.train_policy import load_generator_for  # noqa: PLC0415

    generator, model_info = load_generator_for(config.task, model)
    em_config = EMConfig.for_task(
        config.task, seed=seed, eval_goals=config.eval_goals,
        episodes_per_iteration=config.genrl_episodes_per_iteration,
    )
    started = time.perf_counter()
    run_dir = out / "genrl" / f"seed{seed}"
    summary = train_em(
        generator, config.task, run_dir,
        iterations=config.episodes // config.genrl_episodes_per_iteration,
        config=em_config, model_info=model_info, overwrite=True, nthread=threads,
        progress=progress, export_onnx=None, log=_log,
    )
    with (run_dir / EPISODES_FILE).open(newline="") as handle:
        rows = list(csv.DictReader(handle))[: config.episodes]
    return {
        "rewards": [float(r["reward"]) for r in rows],
        "distance_m": _finite_or_none(float(r["distance_m"]) for r in rows),
        "table_contact_steps": [int(r["table_contact_steps"]) for r in rows],
        "eval": {
            "n_goals": summary["eval_goals"],
            "median_distance_m": summary["median_distance_m"],
            "mean_distance_m": _finite_or_none([summary["mean_distance_m"]])[0],
            "table_contact_steps": summary["eval_table_contact_steps"],
            "rejected": summary["eval_rejected"],
            "deterministic": True,
        },
        "pretraining": {"model": model_info["path"], "latent_dim": model_info["latent_dim"]},
        "invalid_episodes": int(sum(1 for r in rows if int(r["executed"]) == 0)),
        "seconds": round(time.perf_counter() - started, 2),
        "run_dir": str(run_dir),
    }


def run_baseline(
    config: CompareConfig, method: str, demos: Any, seed: int, progress: bool
) -> dict[str, Any]:
    """PPO (+BC) or SAC (+demonstrations) for ``config.episodes`` episodes."""
    from genrl_ros.baselines import (  # noqa: PLC0415 - imports torch, SB3
        PPOBaselineConfig,
        SACBaselineConfig,
        train_baseline,
    )
    from genrl_ros.em.trainer import evaluation_goals  # noqa: PLC0415
    from sim_bridge.tasks import make_task  # noqa: PLC0415

    task = make_task(config.task)
    ppo_config = PPOBaselineConfig(**config.baseline_overrides.get("ppo", {}))
    sac_config = SACBaselineConfig(**config.baseline_overrides.get("sac", {}))
    result = train_baseline(
        method, task, demos, config.episodes, seed, ppo_config=ppo_config,
        sac_config=sac_config, eval_goals=evaluation_goals(task, config.eval_goals),
        progress=progress, log=_log,
    )
    log = result["log"]
    return {
        "rewards": [float(r) for r in log.rewards],
        "distance_m": _finite_or_none(log.distance_m),
        "table_contact_steps": [int(c) for c in log.table_contact_steps],
        "eval": result["eval"],
        "pretraining": {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                        for k, v in result["pretraining"].items()},
        "config": result["config"],
        "pretrain_seconds": result["pretrain_seconds"],
        "seconds": result["seconds"],
    }


def load_demonstrations(
    config: CompareConfig, data: str, out: Path, progress: bool
) -> Any:
    """The demonstrations of ``data`` as per-step transitions (replayed once, cached)."""
    from genrl_ros.baselines import DemonstrationTransitions, replay_demonstrations  # noqa: PLC0415
    from genrl_ros.data.dataset import TrajectoryDataset, read_dataset_info  # noqa: PLC0415

    info = read_dataset_info(data)
    n = int(info["n_episodes"]) if config.demos is None else min(config.demos,
                                                                 int(info["n_episodes"]))
    key = {"data_sha256": info.get("episodes_sha256"), "episodes": n, "task": config.task}
    cache, cache_key = out / DEMOS_FILE, out / (DEMOS_FILE + ".json")
    if cache.exists() and cache_key.exists() and json.loads(cache_key.read_text()) == key:
        _log(f"demonstration transitions from {cache}")
        return DemonstrationTransitions.load(cache)
    dataset = TrajectoryDataset.load(data, task=config.task)
    _log(f"replaying {n} demonstrations of {data} through the per-step environment")
    demos = replay_demonstrations(
        config.task, dataset.trajectories[:n], dataset.goals_xy[:n], progress=progress
    )
    demos.save(cache)
    cache_key.write_text(json.dumps(key) + "\n")
    return demos


# --------------------------------------------------------------------------- summary, plots


def bin_means(values: list[float | None], bin_episodes: int) -> np.ndarray:
    """Per-bin mean of a per-episode series (None / NaN ignored), shape (ceil(E / bin),)."""
    array = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    bins = [array[i:i + bin_episodes] for i in range(0, array.size, bin_episodes)]
    return np.array([np.nanmean(b) if np.isfinite(b).any() else np.nan for b in bins])


def summarize_method(runs: dict[int, dict[str, Any]], bin_episodes: int) -> dict[str, Any]:
    """Numbers of one method over its seeds."""
    final_rewards, final_distances, eval_medians, contacts, seconds = [], [], [], [], []
    episodes_with_contact = n_episodes = 0
    for run in runs.values():
        final_rewards.append(float(np.mean(run["rewards"][-bin_episodes:])))
        final_distances.extend(d for d in run["distance_m"][-bin_episodes:] if d is not None)
        eval_medians.append(run["eval"]["median_distance_m"])
        contacts.append(int(sum(run["table_contact_steps"])))
        episodes_with_contact += sum(1 for c in run["table_contact_steps"] if c > 0)
        n_episodes += len(run["table_contact_steps"])
        seconds.append(run["seconds"])
    return {
        "seeds": sorted(runs),
        "episodes_per_seed": len(next(iter(runs.values()))["rewards"]),
        "final_reward_mean": float(np.mean(final_rewards)),
        "final_reward_std": float(np.std(final_rewards)),
        "final_reward_per_seed": final_rewards,
        "final_bin_episodes": bin_episodes,
        "final_median_distance_m": float(np.median(final_distances)) if final_distances else None,
        "eval_median_distance_m": float(np.mean(eval_medians)),
        "eval_median_distance_per_seed_m": eval_medians,
        "table_contact_steps_total": int(sum(contacts)),
        "table_contact_steps_per_seed": contacts,
        "table_contact_steps_per_episode": float(sum(contacts) / max(n_episodes, 1)),
        "episodes_with_table_contact": int(episodes_with_contact),
        "seconds_per_seed": seconds,
    }


def _plot_bands(
    runs_by_method: dict[str, dict[int, dict[str, Any]]], key: str, bin_episodes: int,
    ylabel: str, title: str, path: Path,
) -> Path:
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for method, runs in runs_by_method.items():
        curves = np.array([bin_means(run[key], bin_episodes) for run in runs.values()])
        mean, std = np.nanmean(curves, axis=0), np.nanstd(curves, axis=0)
        episodes = np.minimum((np.arange(mean.size) + 1) * bin_episodes,
                              len(next(iter(runs.values()))[key]))
        ax.plot(episodes, mean, color=METHOD_COLORS[method], marker=".",
                label=f"{METHOD_LABELS[method]} ({len(runs)} seeds)")
        ax.fill_between(episodes, mean - std, mean + std, color=METHOD_COLORS[method], alpha=0.2)
    ax.set_xlabel("training episodes")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


#: what the per-episode safety count (``table_contact_steps``) is, per task: the hockey
#: blade on the table; in basketball, the arm or holder against the floor, the pedestal or
#: itself (there is no table)
CONTACT_LABELS = {"hockey": "table-contact steps", "basketball": "unsafe-contact steps"}
#: ... and what it counts where the label does not say it
CONTACT_COUNTED = {
    "basketball": " (the arm or the holder against the floor, the pedestal or itself)",
}


def _contact_label(task: str) -> str:
    return CONTACT_LABELS.get(task, "table-contact steps")


def _markdown(config: CompareConfig, summaries: dict[str, dict[str, Any]], bin_episodes: int) -> str:
    contacts = _contact_label(config.task)
    lines = [
        f"# GenRL vs PPO vs SAC, {config.task}: {config.episodes} training episodes per seed, "
        f"seeds {list(config.seeds)}",
        "",
        f"Final reward = mean training reward of the last {bin_episodes} episodes (mean +- std "
        f"over seeds); final median distance = over those episodes of all seeds; eval median "
        f"distance = deterministic policy on {config.eval_goals} held-out goals (mean over "
        f"seeds); {contacts} = summed over all training episodes of all seeds"
        f"{CONTACT_COUNTED.get(config.task, '')}.",
        "",
        "| method | final reward | final median distance (m) | eval median distance (m) | "
        f"{contacts} (total) | per episode | episodes with contact | seconds per seed |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for method, s in summaries.items():
        distance = s["final_median_distance_m"]
        lines.append(
            f"| {METHOD_LABELS[method]} | {s['final_reward_mean']:.3f} +- "
            f"{s['final_reward_std']:.3f} | "
            f"{'n/a' if distance is None else f'{distance:.3f}'} | "
            f"{s['eval_median_distance_m']:.3f} | {s['table_contact_steps_total']} | "
            f"{s['table_contact_steps_per_episode']:.2f} | {s['episodes_with_table_contact']} | "
            f"{', '.join(f'{x:.0f}' for x in s['seconds_per_seed'])} |"
        )
    lines += ["", f"![reward]({REWARD_PNG})", "", f"![{contacts}]({CONTACTS_PNG})", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- entry point


def compare(
    config: CompareConfig,
    out: str | Path,
    *,
    model: str | None = None,
    data: str | None = None,
    threads: int = 1,
    progress: bool = True,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Run (or reuse) every (method, seed), then write the JSON, figures and Markdown."""
    out = Path(out)
    if "genrl" in config.methods and not model:
        raise ValueError("model: GenRL needs a trained generator (--model RUN or .pt)")
    if "genrl" in config.methods and not Path(model).exists():
        raise FileNotFoundError(f"no model run or checkpoint at {model}")
    baselines = [m for m in config.methods if m != "genrl"]
    if baselines and not data:
        raise ValueError("data: PPO and SAC need the demonstrations (--data DIR)")
    if baselines and not Path(data).exists():
        raise FileNotFoundError(f"no demonstration dataset at {data}")
    if overwrite and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    import torch  # noqa: PLC0415

    torch.set_num_threads(int(threads))
    started = time.perf_counter()
    demos = load_demonstrations(config, data, out, progress) if baselines else None
    runs_by_method: dict[str, dict[int, dict[str, Any]]] = {m: {} for m in config.methods}
    for seed in config.seeds:
        for method in config.methods:
            path = _run_file(out, method, seed)
            run = _load_run(path, config)
            if run is None and config.only_seeds is not None and seed not in config.only_seeds:
                continue  # another process's seed, not finished yet
            if run is None:
                _log(f"{method} seed {seed}: {config.episodes} episodes")
                if method == "genrl":
                    result = run_genrl(config, model, seed, out, threads, progress)
                else:
                    result = run_baseline(config, method, demos, seed, progress)
                run = {"method": method, "seed": seed, "task": config.task,
                       "episodes": config.episodes, **result}
                _save_run(path, run)
            else:
                _log(f"{method} seed {seed}: reusing {path}")
            runs_by_method[method][seed] = run

    runs_by_method = {m: runs for m, runs in runs_by_method.items() if runs}
    bin_episodes = math.ceil(config.episodes / config.bins)
    summaries = {m: summarize_method(runs, bin_episodes) for m, runs in runs_by_method.items()}
    reward_png = _plot_bands(
        runs_by_method, "rewards", bin_episodes, "training reward (-distance, m)",
        f"{config.task}: reward vs episodes (mean +- std over seeds, {bin_episodes}-episode bins)",
        out / REWARD_PNG,
    )
    contacts = _contact_label(config.task)
    contacts_png = _plot_bands(
        runs_by_method, "table_contact_steps", bin_episodes, f"{contacts} per episode",
        f"{config.task}: {contacts} per training episode", out / CONTACTS_PNG,
    )
    report = {
        "format": FORMAT,
        "config": asdict(config),
        "model": model,
        "data": data,
        "demonstration_transitions": None if demos is None else int(demos.rewards.shape[0]),
        "summary": summaries,
        "runs": {m: {str(s): run for s, run in runs.items()} for m, runs in runs_by_method.items()},
    }
    from genrl_ros.run_dir import atomic_write_text  # noqa: PLC0415

    # atomic: several processes (--only-seeds) may finish at the same time
    atomic_write_text(out / COMPARE_JSON,
                      json.dumps(report, allow_nan=False, sort_keys=True) + "\n")
    atomic_write_text(out / COMPARE_MD, _markdown(config, summaries, bin_episodes))
    result: dict[str, Any] = {
        "task": config.task,
        "episodes": config.episodes,
        "seeds": list(config.seeds),
        "out": str(out),
        "compare_json": str(out / COMPARE_JSON),
        "reward_png": str(reward_png),
        "contacts_png": str(contacts_png),
        "seconds": round(time.perf_counter() - started, 2),
    }
    for method, s in summaries.items():
        result[f"{method}_final_reward"] = round(s["final_reward_mean"], 4)
        result[f"{method}_eval_median_distance_m"] = round(s["eval_median_distance_m"], 4)
        result[f"{method}_table_contact_steps"] = s["table_contact_steps_total"]
    return result


def run_compare(args: Any) -> dict[str, Any]:
    """Entry point of ``genrl compare``."""
    overrides: dict[str, dict[str, Any]] = {"ppo": {}, "sac": {}}
    if getattr(args, "bc_epochs", None) is not None:
        overrides["ppo"]["bc_epochs"] = args.bc_epochs
    if getattr(args, "ppo_init_std", None) is not None:
        overrides["ppo"]["init_std"] = args.ppo_init_std
    config = CompareConfig(
        task=args.task,
        episodes=args.episodes,
        seeds=tuple(range(args.seeds)),
        only_seeds=None if args.only_seeds is None else tuple(args.only_seeds),
        methods=tuple(args.methods),
        genrl_episodes_per_iteration=args.genrl_episodes_per_iteration,
        demos=args.demos,
        eval_goals=args.eval_goals,
        bins=args.bins,
        baseline_overrides=overrides,
    )
    return compare(
        config, args.out, model=args.model, data=args.data, threads=args.threads,
        progress=not args.no_progress, overwrite=args.overwrite,
    )
