"""``genrl study``: do the pre-RL measures of a generator predict its policy's reward?
(GenRL, seed 000, sections 6.3 and 6.6, Tables 1, 2, 3 and 6.)

For every model of a ``genrl zoo`` directory and every seed, one goal-conditioned policy is
trained with EM (:func:`genrl_ros.em.trainer.train_em`). Each model gets a label, its
"maximum reward" (Table 1), and the Pearson correlation coefficient R with its two-sided
p-value is computed between each measure of the zoo (precision, recall, delta_1,
delta_tilde) and the label, per model family (beta-VAE, InfoGAN) and over all models
(Tables 2/3; with ``--pool-with`` other tasks' studies the pooled row of Table 6).

The label. The paper "labeled each generative model with the maximum reward achieved during
the EM policy training across all three random seeds". Here: for each seed, the maximum over
the EM iterations of the iteration's mean training reward (the mean over its N episodes, the
``reward_mean`` column of ``curve.csv``, in the task's reward units: hockey and basketball
rewards are minus a distance in metres, so higher is better, 0 is best); the label is the
mean of these maxima over the seeds. ``study.json`` also holds, per model, the maximum of the
seed-averaged curve (the reading of "the maximum of Figure 4's average curve"), its std over
seeds and the held-out evaluation of the final policies.

Layout of ``--out``:

``study_config.json``            the settings (a resumed study must use the same ones;
                                 ``--seeds`` may grow);
``runs/<MODEL>/seed<S>/``        the EM run of each (model, seed) (``genrl train-policy``
                                 layout: run.json, curve.csv, episodes.csv, last.pt,
                                 eval.json, policy.pt, summary.json);
``study.md``, ``study.json``     Table 1 (model, label) and the correlation table
                                 (measure x family: R, p, n);
``labels.csv``                   Table 1 as CSV;
``correlations.csv``             the correlation table as CSV, one row per (measure, family);
``scatter.png``                  each measure (x) against the label (y), per family;
``curves.png``                   mean training reward vs iteration per model (mean over seeds).

Resumable: a (model, seed) run with its ``summary.json`` is skipped, an interrupted one
continues from its ``last.pt`` (exact resume of :func:`train_em`); the tables are rebuilt
from all runs at the end. Parallel workers: the same ``genrl study --resume`` command started
N times on one ``--out`` shares the runs (one lock file per run; a worker waits at the end for
the runs other workers hold), each worker one thread.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from genrl_ros.run_dir import LAST_FILE, atomic_write_text, check_settings_dir

#: the measures of the zoo correlated with the label (the paper's Tables 2, 3, 6)
MEASURES = ("precision", "recall", "delta_1", "delta_tilde")
#: model families of the correlation table: zoo ``kind`` values per family, in table order
FAMILIES = {"VAE": ("vae",), "GAN": ("infogan",), "ALL": ("vae", "infogan")}
ZOO_FILE = "zoo.json"
CONFIG_FILE = "study_config.json"
SUMMARY_FILE = "summary.json"
CURVE_FILE = "curve.csv"
#: settings that must not change when a study is resumed (``seeds`` may grow)
_FIXED_SETTINGS = ("task", "zoo", "iterations", "episodes_per_iteration", "eval_goals",
                   "base_seed", "em_overrides")


@dataclass
class StudyConfig:
    """Settings of one study (the EM settings not named here keep :class:`EMConfig`'s
    defaults)."""

    #: EM iterations per policy (the paper does not give its number; its Figures 4/5 show
    #: the reward still rising for some models, so a short budget favours fast learners)
    iterations: int = 20
    #: N, episodes per EM iteration
    episodes_per_iteration: int = 32
    #: policies per model, with seeds base_seed, base_seed + 1, ... (the paper: 3)
    seeds: int = 3
    #: seed of the first policy of each model
    base_seed: int = 0
    #: held-out goals of each policy's final evaluation (reported, not used for the label)
    eval_goals: int = 100
    #: further :class:`EMConfig` fields (name -> value), e.g. ``{"estep_epochs": 10}``
    em_overrides: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        for name in ("iterations", "episodes_per_iteration", "seeds", "eval_goals"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.episodes_per_iteration < 2:
            raise ValueError("episodes_per_iteration must be >= 2 (advantages need a spread), "
                             f"got {self.episodes_per_iteration}")
        self.em_overrides = dict(self.em_overrides or {})

    def em_config(self, seed: int):
        """The :class:`EMConfig` of the policy with ``seed``."""
        from genrl_ros.em.config import EMConfig  # noqa: PLC0415

        values: dict[str, Any] = {
            "episodes_per_iteration": self.episodes_per_iteration,
            # a minibatch larger than the batch would be the batch itself
            "minibatch_size": min(EMConfig().minibatch_size, self.episodes_per_iteration),
            "eval_goals": self.eval_goals,
            "seed": seed,
        }
        values.update(self.em_overrides or {})
        values["seed"] = seed
        return EMConfig(**values)


# --------------------------------------------------------------------------- statistics


def pearson(x: list[float] | np.ndarray, y: list[float] | np.ndarray) -> tuple[float, float, int]:
    """Pearson's R of the finite pairs (x_i, y_i) and its two-sided p-value (H0: R = 0,
    t-test with n - 2 degrees of freedom, ``scipy.stats.pearsonr``); returns (R, p, n).
    NaN R and p when n < 3 or either side is constant (R undefined; "constant" up to float
    rounding, 1e-12 relative: equal rewards summed in another order differ in the last bits)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"pearson needs two 1-D arrays of one length, got {x.shape}, {y.shape}")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    n = int(x.size)
    if n < 3 or _constant(x) or _constant(y):
        return math.nan, math.nan, n
    from scipy import stats  # noqa: PLC0415 - scipy is slow to import

    result = stats.pearsonr(x, y)
    return float(result.statistic), float(result.pvalue), n


def _constant(values: np.ndarray) -> bool:
    return bool(np.ptp(values) <= 1e-12 * max(1.0, float(np.abs(values).max())))


def correlation_table(rows: list[dict[str, Any]], label: str = "label",
                      families: dict[str, tuple[str, ...]] = FAMILIES) -> list[dict[str, Any]]:
    """Pearson R, p and n of every measure against ``label`` per family; one dict per
    (measure, family) with keys measure, family, r, p, n."""
    table = []
    for measure in MEASURES:
        for family, kinds in families.items():
            members = [r for r in rows if r["kind"] in kinds]
            r, p, n = pearson([_num(m.get(measure)) for m in members],
                              [_num(m.get(label)) for m in members])
            table.append({"measure": measure, "family": family, "r": r, "p": p, "n": n})
    return table


def _num(value: Any) -> float:
    return math.nan if value is None else float(value)


# --------------------------------------------------------------------------- the zoo


def load_zoo(zoo: str | Path, task: str) -> list[dict[str, Any]]:
    """The model rows of a ``genrl zoo`` directory (``zoo.json``), each with ``run`` (its
    training run directory); checked against ``task``."""
    zoo = Path(zoo)
    path = zoo / ZOO_FILE
    if not zoo.is_dir():
        raise FileNotFoundError(f"no zoo directory at {zoo} (make one with 'genrl zoo')")
    if not path.is_file():
        raise FileNotFoundError(
            f"{zoo} has no {ZOO_FILE}: not a finished zoo (run 'genrl zoo --out {zoo}', "
            "with --resume to finish an interrupted one)")
    data = json.loads(path.read_text(encoding="utf-8"))
    zoo_task = data.get("settings", {}).get("task")
    if zoo_task != task:
        raise ValueError(f"the zoo in {zoo} is of task {zoo_task!r}, not {task!r}")
    rows = []
    for row in data.get("models", []):
        run = zoo / "models" / row["name"]
        if not run.is_dir():
            raise FileNotFoundError(f"zoo model {row['name']} has no run directory {run}")
        rows.append({**row, "run": str(run)})
    if not rows:
        raise ValueError(f"the zoo in {zoo} has no models in its {ZOO_FILE}")
    return rows


# --------------------------------------------------------------------------- runs


def read_curve(run: Path) -> list[dict[str, float]]:
    """``curve.csv`` of an EM run as rows of floats."""
    with open(run / CURVE_FILE, newline="", encoding="utf-8") as handle:
        return [{k: float(v) if v not in ("", None) else math.nan for k, v in row.items()}
                for row in csv.DictReader(handle)]


def _run_policy(model: dict[str, Any], seed: int, run: Path, task: str, config: StudyConfig,
                threads: int) -> float:
    """Train (or resume) the EM policy of ``model`` with ``seed`` in ``run``; seconds."""
    from genrl_ros.em.trainer import train_em  # noqa: PLC0415 - torch, mujoco
    from genrl_ros.train_policy import load_generator_for  # noqa: PLC0415

    started = time.perf_counter()
    generator, model_info = load_generator_for(task, model["run"])
    resume = (run / LAST_FILE).is_file()
    # a run killed before its first checkpoint holds only run.json / logs: start it again
    overwrite = not resume and run.is_dir() and any(run.iterdir())
    train_em(generator, task, run, iterations=config.iterations,
             config=config.em_config(seed), observation="goal", model_info=model_info,
             resume=resume, overwrite=overwrite, nthread=threads, progress=False,
             export_onnx=None)
    return time.perf_counter() - started


class _RunLock:
    """Exclusive ``flock`` on ``runs/<MODEL>/.seed<S>.lock`` (next to the run directory, not
    in it); entered as True when held, False when another process holds it (``wait=False``)."""

    def __init__(self, run: Path, wait: bool) -> None:
        self.path = run.parent / f".{run.name}.lock"
        self.wait = wait
        self.handle = None

    def __enter__(self) -> bool:
        import fcntl  # noqa: PLC0415 - POSIX only

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(self.path, "a")  # noqa: SIM115 - closed in __exit__
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | (0 if self.wait else fcntl.LOCK_NB))
        except BlockingIOError:
            self.handle.close()
            self.handle = None
            return False
        return True

    def __exit__(self, *exc: Any) -> None:
        if self.handle is not None:
            self.handle.close()  # releases the lock


def model_label(curves: list[list[dict[str, float]]], summaries: list[dict[str, Any]]
                ) -> dict[str, Any]:
    """The label and its companions from the seeds' curves and summaries (see the module
    docstring): ``label`` = mean over seeds of max_iteration reward_mean."""
    maxima = [max(r["reward_mean"] for r in c) for c in curves]
    length = min(len(c) for c in curves)
    mean_curve = np.mean([[r["reward_mean"] for r in c[:length]] for c in curves], axis=0)
    return {
        "label": float(np.mean(maxima)),
        "label_std": float(np.std(maxima)),
        "seed_maxima": [float(m) for m in maxima],
        "max_of_mean_curve": float(mean_curve.max()),
        "final_reward_mean": float(np.mean([c[-1]["reward_mean"] for c in curves])),
        # NaN when every evaluation trajectory was rejected (summary.json holds null)
        "eval_median_distance_m": float(np.mean([_num(s.get("median_distance_m"))
                                                 for s in summaries])),
        "eval_success_rate": float(np.mean([_num(s.get("success_rate")) for s in summaries])),
        "invalid_episodes": int(sum(s["invalid_episodes"] for s in summaries)),
        "table_contact_steps": int(sum(s["table_contact_steps"] for s in summaries)),
        "mean_curve": [float(v) for v in mean_curve],
    }


def run_study(
    zoo: str | Path,
    out: str | Path,
    *,
    task: str,
    config: StudyConfig | None = None,
    models: list[str] | None = None,
    pool_with: list[str | Path] | None = None,
    threads: int = 1,
    resume: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Train the policies of the study, label the models and write the tables and plots.

    :param models: names of the zoo models to study (default: all, zoo order).
    :param pool_with: directories of finished studies of other tasks whose labelled models
        are pooled with this one's for the "all tasks" correlation (Table 6).
    :returns: the summary (labels, correlations, files, seconds).
    """
    config = config if config is not None else StudyConfig()
    out = Path(out)
    zoo_rows = load_zoo(zoo, task)
    if models:
        names = [r["name"] for r in zoo_rows]
        unknown = [m for m in models if m not in names]
        if unknown:
            raise ValueError(f"models {unknown} are not in the zoo {zoo} (it has {names})")
        zoo_rows = [r for r in zoo_rows if r["name"] in models]
    pooled = [load_study(p) for p in (pool_with or [])]
    settings = {"task": task, "zoo": str(Path(zoo).resolve()), **asdict(config)}
    check_settings_dir(out, settings, _FIXED_SETTINGS, config_file=CONFIG_FILE, resume=resume,
                       what="study")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / CONFIG_FILE, json.dumps(settings, indent=2, sort_keys=True) + "\n")

    started = time.perf_counter()
    seeds = [config.base_seed + k for k in range(config.seeds)]
    jobs = [(m, s) for m in zoo_rows for s in seeds]
    bar = None
    if progress:
        from tqdm.auto import tqdm  # noqa: PLC0415

        bar = tqdm(total=len(jobs), unit="policy", desc=f"study {task}")
    trained, run_seconds = [], {}

    def train(model: dict[str, Any], seed: int, run: Path) -> None:
        seconds = _run_policy(model, seed, run, task, config, threads)
        trained.append(f"{model['name']}/seed{seed}")
        run_seconds[f"{model['name']}/seed{seed}"] = round(seconds, 1)
        if bar is not None:
            best = max(r["reward_mean"] for r in read_curve(run))
            bar.write(f"[study] {model['name']} seed {seed}: max mean reward {best:.4f} "
                      f"({seconds:.0f} s)")

    # Several workers (``genrl study --resume`` started more than once on one --out) share
    # the runs: each run is trained under an exclusive lock, a locked run is left to its
    # worker and waited for at the end (the lock dies with its process: a killed worker's
    # run is taken over and resumed from its last.pt).
    busy = []
    for model, seed in jobs:
        run = out / "runs" / model["name"] / f"seed{seed}"
        if bar is not None:
            bar.set_postfix_str(f"{model['name']} seed {seed}")
        if not (run / SUMMARY_FILE).is_file():
            with _RunLock(run, wait=False) as locked:
                if not locked:
                    busy.append((model, seed, run))
                    continue
                if not (run / SUMMARY_FILE).is_file():  # finished while we looked
                    train(model, seed, run)
        if bar is not None:
            bar.update(1)
    for model, seed, run in busy:
        if bar is not None:
            bar.set_postfix_str(f"waiting for {model['name']} seed {seed} (another worker)")
        with _RunLock(run, wait=True):
            if not (run / SUMMARY_FILE).is_file():
                train(model, seed, run)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()

    rows = []
    for model in zoo_rows:
        runs = [out / "runs" / model["name"] / f"seed{s}" for s in seeds]
        summaries = [json.loads((r / SUMMARY_FILE).read_text(encoding="utf-8")) for r in runs]
        labels = model_label([read_curve(r) for r in runs], summaries)
        rows.append({"task": task, "name": model["name"], "kind": model["kind"],
                     "latent_dim": model["latent_dim"], "beta": model.get("beta"),
                     "lambda": model.get("lambda"),
                     **{m: model.get(m) for m in MEASURES}, **labels})
    correlations = correlation_table(rows)
    pooled_rows = rows + [r for study in pooled for r in study["models"]]
    pooled_table = correlation_table(pooled_rows) if pooled else []
    return _write_outputs(out, task, config, rows, correlations, pooled_rows, pooled_table,
                          [str(p) for p in (pool_with or [])], trained, run_seconds,
                          time.perf_counter() - started)


def load_study(study: str | Path) -> dict[str, Any]:
    """``study.json`` of a finished study directory."""
    path = Path(study) / "study.json"
    if not path.is_file():
        raise FileNotFoundError(f"{study} has no study.json: not a finished study")
    return json.loads(path.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- outputs


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "n/a" if not math.isfinite(value) else f"{value:.{digits}f}"
    return str(value)


def correlation_markdown(table: list[dict[str, Any]], families: list[str]) -> list[str]:
    """The paper's layout: one row per measure, (R, p, n) per family."""
    head = ["measure"] + [f"{f} {c}" for f in families for c in ("R", "p", "n")]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for measure in MEASURES:
        cells = [measure]
        for family in families:
            row = next(r for r in table if r["measure"] == measure and r["family"] == family)
            cells += [_fmt(row["r"]), _fmt(row["p"]), str(row["n"])]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _labels_markdown(rows: list[dict[str, Any]]) -> list[str]:
    head = ["model", "N_alpha", "beta / lambda", "label (max reward)", "std over seeds",
            "per seed", "max of mean curve", "final reward", "eval median dist (m)",
            "eval success"] + list(MEASURES)
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        hyper = r["beta"] if r["kind"] == "vae" else r["lambda"]
        cells = [r["name"], r["latent_dim"], hyper, _fmt(r["label"], 4), _fmt(r["label_std"], 4),
                 " / ".join(_fmt(v, 4) for v in r["seed_maxima"]),
                 _fmt(r["max_of_mean_curve"], 4), _fmt(r["final_reward_mean"], 4),
                 _fmt(r["eval_median_distance_m"], 4), _fmt(r["eval_success_rate"], 2)]
        cells += [_fmt(r.get(m)) for m in MEASURES]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return lines


def _csv(rows: list[dict[str, Any]], columns: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    return buffer.getvalue()


def _finite(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _write_outputs(out: Path, task: str, config: StudyConfig, rows: list[dict[str, Any]],
                   correlations: list[dict[str, Any]], pooled_rows: list[dict[str, Any]],
                   pooled_table: list[dict[str, Any]], pooled_from: list[str],
                   trained: list[str], run_seconds: dict[str, float], seconds: float
                   ) -> dict[str, Any]:
    families = [f for f in FAMILIES if any(c["family"] == f and c["n"] for c in correlations)]
    notes = (
        f"Task {task}; {len(rows)} models x {config.seeds} seeds (from {config.base_seed}); "
        f"EM: {config.iterations} iterations x {config.episodes_per_iteration} episodes per "
        f"policy ({config.iterations * config.episodes_per_iteration} episodes), other EM "
        f"settings {config.em_overrides or 'default'}. Label = mean over seeds of the maximum "
        "over iterations of the iteration's mean training reward (higher is better). Pearson "
        "R with two-sided p (scipy.stats.pearsonr, t-test, n - 2 degrees of freedom); n = "
        "models with finite values; the paper calls p < 0.005 significant."
    )
    lines = [f"# Study: {task}", "", "## Table 1: models labelled with their maximum reward", ""]
    lines += _labels_markdown(rows)
    lines += ["", "## Correlation of each measure with the label (Tables 2/3)", ""]
    lines += correlation_markdown(correlations, families)
    if pooled_table:
        lines += ["", f"## Pooled over tasks (Table 6): {task} + {', '.join(pooled_from)}", ""]
        lines += correlation_markdown(pooled_table, ["ALL"])
    lines += ["", notes, "", "![measures vs label](scatter.png)", "",
              "![training curves](curves.png)", ""]
    atomic_write_text(out / "study.md", "\n".join(lines))
    label_columns = ["task", "name", "kind", "latent_dim", "beta", "lambda", "label",
                     "label_std", "max_of_mean_curve", "final_reward_mean",
                     "eval_median_distance_m", "eval_success_rate", *MEASURES]
    atomic_write_text(out / "labels.csv", _csv(rows, label_columns))
    atomic_write_text(out / "correlations.csv",
                      _csv(correlations + [{**c, "family": f"ALL_TASKS_{c['family']}"}
                                           for c in pooled_table],
                           ["measure", "family", "r", "p", "n"]))
    study = {"task": task, "settings": asdict(config), "models": rows,
             "correlations": correlations, "pooled_with": pooled_from,
             "pooled_correlations": pooled_table, "notes": notes}
    atomic_write_text(out / "study.json", json.dumps(_finite(study), indent=2) + "\n")
    scatter_plot(rows, out / "scatter.png", task, correlations)
    curves_plot(rows, out / "curves.png", task, config.episodes_per_iteration)
    return {
        "task": task,
        "out": str(out),
        "models": len(rows),
        "seeds": config.seeds,
        "trained": trained,
        "run_seconds": run_seconds,
        "labels": {r["name"]: r["label"] for r in rows},
        "correlations": {f"{c['measure']}/{c['family']}": {"r": c["r"], "p": c["p"], "n": c["n"]}
                         for c in correlations},
        "pooled_correlations": {f"{c['measure']}/{c['family']}": {"r": c["r"], "p": c["p"],
                                                                  "n": c["n"]}
                                for c in pooled_table},
        "files": [str(out / n) for n in ("study.md", "study.json", "labels.csv",
                                         "correlations.csv", "scatter.png", "curves.png")],
        "seconds": round(seconds, 1),
    }


def _pyplot():
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


_FAMILY_STYLE = {"vae": ("tab:blue", "beta-VAE"), "infogan": ("tab:red", "InfoGAN")}


def scatter_plot(rows: list[dict[str, Any]], path: Path, task: str,
                 correlations: list[dict[str, Any]]) -> None:
    """One panel per measure: measure (x) against the label (y), a colour per family, the
    models' names, R and p per family in the panel's title."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(MEASURES), figsize=(4.2 * len(MEASURES), 4.2), sharey=True)
    for ax, measure in zip(axes, MEASURES):
        for kind, (color, name) in _FAMILY_STYLE.items():
            pts = [r for r in rows if r["kind"] == kind and r.get(measure) is not None]
            if not pts:
                continue
            ax.errorbar([r[measure] for r in pts], [r["label"] for r in pts],
                        yerr=[r["label_std"] for r in pts], fmt="o", color=color, label=name,
                        capsize=2)
            for r in pts:
                ax.annotate(r["name"], (r[measure], r["label"]), textcoords="offset points",
                            xytext=(3, 3), fontsize=7)
        stats = [c for c in correlations if c["measure"] == measure and c["n"]]
        ax.set_title("\n".join(f"{c['family']}: R {_fmt(c['r'], 2)}, p {_fmt(c['p'], 3)}"
                               for c in stats), fontsize=8)
        ax.set_xlabel(measure.replace("_", " "))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("label: max mean training reward (mean of seeds)")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{task}: pre-RL measures vs policy reward")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def curves_plot(rows: list[dict[str, Any]], path: Path, task: str,
                episodes_per_iteration: int) -> None:
    """Mean training reward (mean over seeds) against episodes, one line per model
    (the paper's Figures 4/5)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for ax, kind in zip(axes, _FAMILY_STYLE):
        members = [r for r in rows if r["kind"] == kind]
        for r in members:
            episodes = (np.arange(len(r["mean_curve"])) + 1) * episodes_per_iteration
            ax.plot(episodes, r["mean_curve"], label=r["name"])
        ax.set_title(f"{task}: {_FAMILY_STYLE[kind][1]}")
        ax.set_xlabel("training episodes")
        ax.grid(alpha=0.3)
        if members:
            ax.legend(fontsize=7, ncol=3)
    axes[0].set_ylabel("mean training reward per iteration (mean of seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run_study_cli(args: Any) -> dict[str, Any]:
    """Entry point of ``genrl study``."""
    import torch  # noqa: PLC0415

    torch.set_num_threads(int(args.threads))
    overrides = {k: getattr(args, k) for k in ("estep_epochs", "max_kl", "lr")
                 if getattr(args, k, None) is not None}
    config = StudyConfig(iterations=args.iterations,
                         episodes_per_iteration=args.episodes_per_iteration,
                         seeds=args.seeds, base_seed=args.seed, eval_goals=args.eval_goals,
                         em_overrides=overrides)
    return run_study(args.zoo, args.out, task=args.task, config=config, models=args.models,
                     pool_with=args.pool_with, threads=args.threads, resume=args.resume,
                     progress=not args.no_progress)
