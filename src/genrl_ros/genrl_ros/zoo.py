"""``genrl zoo``: the paper's model zoo (Table 1) trained, evaluated and tabulated.

Names follow the paper's Table 1: VAE1-9 = N_alpha (2, 2, 2, 3, 3, 3, 6, 6, 6) x beta
(0.01, 0.005, 0.001) in that order (VAE1 = N_alpha 2, beta 0.01; VAE3 = N_alpha 2,
beta 0.001; VAE6 = N_alpha 3, beta 0.001); GAN1-9 likewise with lambda (0.1, 1.5, 3.5).
A subset of kinds / latent sizes keeps the paper's numbers (``--latent-dims 3`` trains
VAE4-6 and GAN4-6).

Layout of ``--out``:

``zoo_config.json``              the settings (a resumed zoo must use the same);
``models/<NAME>/``               the training run of each model (``genrl train-model``);
``models/<NAME>/eval/``          its evaluation (``genrl eval-model``: eval.json, eval.md);
``zoo.md``, ``zoo.json``, ``zoo.csv``  the table of Tables 4/5 plus recall, precision and the
                                 safe fraction, one row per model;
``precision_recall.png``         precision vs recall scatter (Figures 8/9 of the paper);
``dwpr.png``                     delta_1 vs delta_tilde scatter (Figures 10/11);
``trajectories/<NAME>.png``      a held-out test trajectory and the generated trajectory
                                 nearest to it (of 1000 prior samples), 7 joints over time
                                 (Appendix C, Figures 12/13).

Resumable (``--resume``): a model whose run has its ``summary.json`` is not retrained, an
interrupted run continues from its ``last.pt``, an existing evaluation is kept; the table and
plots are rebuilt from all evaluations at the end.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genrl_ros.data.dataset import TrajectoryDataset
from genrl_ros.eval_model import EVAL_FILE, evaluate_generator, write_eval
from genrl_ros.models.checkpoint import BEST_FILE, load_generator
from genrl_ros.run_dir import atomic_write_text, check_settings_dir
from genrl_ros.train_model import (
    TrainConfig,
    is_run_complete,
    split_dataset,
    train_model,
)

LATENT_DIMS = (2, 3, 6)
VAE_BETAS = (0.01, 0.005, 0.001)
GAN_LAMBDAS = (0.1, 1.5, 3.5)
CONFIG_FILE = "zoo_config.json"
TABLE_COLUMNS = (
    "name", "kind", "latent_dim", "beta", "lambda", "precision", "recall", "delta_1",
    "delta_2", "delta_tilde", "safe_fraction", "best_epoch",
)
_CONFIG_KEYS = ("task", "epochs", "batch_size", "seed", "n_samples", "dwpr_n", "n_safety")


@dataclass(frozen=True)
class ZooModel:
    name: str
    kind: str
    latent_dim: int
    beta: float | None = None
    lam: float | None = None

    @property
    def hyper(self) -> dict[str, float]:
        return {"beta": self.beta} if self.kind == "vae" else {"lambda": self.lam}


def zoo_models(kinds: list[str] | tuple[str, ...] = ("vae", "infogan"),
               latent_dims: list[int] | tuple[int, ...] = LATENT_DIMS) -> list[ZooModel]:
    """The models of the paper's Table 1 for the given kinds and latent sizes, in order."""
    bad = [d for d in latent_dims if d not in LATENT_DIMS]
    if bad:
        raise ValueError(f"latent dims {bad} are not in the paper's zoo {list(LATENT_DIMS)}")
    unknown = [k for k in kinds if k not in ("vae", "infogan")]
    if unknown:
        raise ValueError(f"unknown model kinds {unknown}, expected vae, infogan")
    models = []
    for kind in ("vae", "infogan"):
        if kind not in kinds:
            continue
        values = VAE_BETAS if kind == "vae" else GAN_LAMBDAS
        prefix = "VAE" if kind == "vae" else "GAN"
        for i, dim in enumerate(LATENT_DIMS):
            if dim not in latent_dims:
                continue
            for j, value in enumerate(values):
                name = f"{prefix}{3 * i + j + 1}"
                if kind == "vae":
                    models.append(ZooModel(name, kind, dim, beta=value))
                else:
                    models.append(ZooModel(name, kind, dim, lam=value))
    return models


# --------------------------------------------------------------------------- tables


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "n/a" if not math.isfinite(value) else f"{value:.3f}"
    return str(value)


def table_rows(results: dict[str, dict[str, Any]], models: list[ZooModel]) -> list[dict[str, Any]]:
    rows = []
    for m in models:
        if m.name not in results:
            continue
        r = results[m.name]
        rows.append(
            {
                "name": m.name,
                "kind": m.kind,
                "latent_dim": m.latent_dim,
                "beta": m.beta,
                "lambda": m.lam,
                "precision": r["precision"],
                "recall": r["recall"],
                "delta_1": r["delta_1"],
                "delta_2": r["delta_2"],
                "delta_tilde": r["delta_tilde"],
                "safe_fraction": r.get("safe_fraction"),
                "best_epoch": r.get("epoch"),
                "delta": r["delta"],
            }
        )
    return rows


def markdown_table(rows: list[dict[str, Any]], title: str, notes: str) -> str:
    head = ["model", "N_alpha", "beta / lambda", "precision", "recall", "delta_1", "delta_2",
            "delta_tilde", "safe fraction", "best epoch"]
    lines = [f"# {title}", "", "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        hyper = r["beta"] if r["kind"] == "vae" else r["lambda"]
        cells = [r["name"], r["latent_dim"], hyper, r["precision"], r["recall"], r["delta_1"],
                 r["delta_2"], r["delta_tilde"], r["safe_fraction"], r["best_epoch"]]
        lines.append("| " + " | ".join(_fmt(c) for c in cells) + " |")
    lines += ["", notes, ""]
    return "\n".join(lines)


def csv_table(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(TABLE_COLUMNS), extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in TABLE_COLUMNS})
    return buffer.getvalue()


# --------------------------------------------------------------------------- plots


def _pyplot():
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def scatter_plot(rows: list[dict[str, Any]], x: str, y: str, path: Path, title: str) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 5))
    for kind, color in (("vae", "tab:blue"), ("infogan", "tab:red")):
        pts = [r for r in rows if r["kind"] == kind and r[x] is not None and r[y] is not None]
        if not pts:
            continue
        ax.scatter([r[x] for r in pts], [r[y] for r in pts], c=color,
                   label="beta-VAE" if kind == "vae" else "InfoGAN")
        for r in pts:
            ax.annotate(r["name"], (r[x], r[y]), textcoords="offset points", xytext=(4, 3),
                        fontsize=8)
    ax.set_xlabel(x.replace("_", " "))
    ax.set_ylabel(y.replace("_", " "))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if rows:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def trajectory_plot(model, test: np.ndarray, path: Path, name: str, seed: int = 0) -> None:
    """Held-out test trajectory (left) and the nearest of 1000 generated ones (right)."""
    plt = _pyplot()
    with torch.no_grad():
        generated = model.sample(1000, torch.Generator().manual_seed(seed)).numpy()
    distances = ((generated - test[None]) ** 2).sum(axis=(1, 2))
    nearest = generated[int(np.argmin(distances))]
    time_s = (np.arange(test.shape[0]) + 1) * model.control_dt_s
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, traj, label in ((axes[0], test, "test trajectory (held out)"),
                            (axes[1], nearest, f"{name}: nearest of 1000 generated")):
        for j, joint in enumerate(model.joint_names):
            ax.plot(time_s, traj[:, j], label=joint)
        ax.set_title(label)
        ax.set_xlabel("time (s)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("joint position command (rad)")
    axes[1].legend(fontsize=7, loc="best")
    rms = math.sqrt(float(distances.min()) / test.size)
    fig.suptitle(f"{model.task}: {name} (RMS difference {rms:.3f} rad)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# --------------------------------------------------------------------------- the zoo


def make_zoo(
    dataset: TrajectoryDataset,
    out: str | Path,
    *,
    task: str,
    data_source: str,
    epochs: int = 300,
    kinds: list[str] | tuple[str, ...] = ("vae", "infogan"),
    latent_dims: list[int] | tuple[int, ...] = LATENT_DIMS,
    batch_size: int = 256,
    seed: int = 0,
    n_samples: int = 5000,
    dwpr_n: int = 1000,
    n_safety: int = 500,
    threads: int = 1,
    resume: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Train and evaluate the zoo; returns the summary (table rows, files, timings)."""
    out = Path(out)
    if dataset.task != task:
        raise ValueError(f"dataset {data_source} is of task {dataset.task!r}, not {task!r}")
    models = zoo_models(kinds, latent_dims)
    settings = {
        "task": task, "epochs": epochs, "batch_size": batch_size, "seed": seed,
        "n_samples": n_samples, "dwpr_n": dwpr_n, "n_safety": n_safety,
    }
    check_settings_dir(out, settings, _CONFIG_KEYS, config_file=CONFIG_FILE, resume=resume,
                       what="zoo")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / CONFIG_FILE, json.dumps({**settings, "data": data_source}, indent=2))
    (out / "trajectories").mkdir(exist_ok=True)
    split = split_dataset(dataset, holdout=0.1, seed=seed)
    test = split.heldout[0] if len(split.heldout) else split.train[0]
    started = time.perf_counter()
    results: dict[str, dict[str, Any]] = {}
    trained, evaluated = [], []
    for index, spec in enumerate(models, start=1):
        run = out / "models" / spec.name
        if progress:
            print(f"[zoo {index}/{len(models)}] {spec.name}: {spec.kind} N_alpha={spec.latent_dim} "
                  f"{spec.hyper}", flush=True)
        if not is_run_complete(run):
            config = TrainConfig(kind=spec.kind, latent_dim=spec.latent_dim, epochs=epochs,
                                 beta=spec.beta, lam=spec.lam, batch_size=batch_size, seed=seed)
            train_model(dataset, run, config, resume=True, progress=progress,
                        data_source=data_source)
            trained.append(spec.name)
        eval_dir = run / "eval"
        if (eval_dir / EVAL_FILE).is_file():
            results[spec.name] = json.loads((eval_dir / EVAL_FILE).read_text(encoding="utf-8"))
        else:
            model = load_generator(run / BEST_FILE, expect_horizon=dataset.horizon,
                                   expect_joint_names=dataset.joint_names)
            result = evaluate_generator(model, dataset, n_samples=n_samples, dwpr_n=dwpr_n,
                                        n_safety=n_safety, seed=seed, threads=threads)
            summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
            result.update({"name": spec.name, "model": str(run / BEST_FILE),
                           "epoch": summary["best_epoch"], "data": data_source})
            write_eval(result, eval_dir, f"{spec.name} ({task})")
            results[spec.name] = result
            evaluated.append(spec.name)
            trajectory_plot(model, test, out / "trajectories" / f"{spec.name}.png", spec.name, seed)

    rows = table_rows(results, models)
    notes = (
        f"Task {task}, dataset {data_source} ({split.info['n_used']} safe episodes, "
        f"{split.info['n_train']} for training); {epochs} epochs per model, best epoch by the "
        f"held-out selection error (train-model). Precision/recall: {min(n_samples, split.info['n_used'])} vs "
        f"{min(n_samples, split.info['n_used'])} trajectories, k = 3. DwPR: n = {dwpr_n}, "
        f"D = 5. Safe fraction: {n_safety} prior samples executed in the simulator."
    )
    atomic_write_text(out / "zoo.md", markdown_table(rows, f"Model zoo: {task}", notes))
    atomic_write_text(out / "zoo.csv", csv_table(rows))
    atomic_write_text(out / "zoo.json", json.dumps({"settings": settings, "models": rows,
                                                "notes": notes}, indent=2, allow_nan=True))
    scatter_plot(rows, "recall", "precision", out / "precision_recall.png",
                 f"{task}: precision vs recall")
    scatter_plot(rows, "delta_tilde", "delta_1", out / "dwpr.png",
                 f"{task}: delta_1 vs delta_tilde (DwPR)")
    return {
        "task": task,
        "out": str(out),
        "models": [r["name"] for r in rows],
        "trained": trained,
        "evaluated": evaluated,
        "table": {r["name"]: {k: r[k] for k in ("precision", "recall", "delta_1", "delta_2",
                                                  "delta_tilde", "safe_fraction")} for r in rows},
        "files": [str(out / n) for n in ("zoo.md", "zoo.json", "zoo.csv",
                                         "precision_recall.png", "dwpr.png")],
        "seconds": round(time.perf_counter() - started, 2),
    }


def run_zoo(args: Any) -> dict[str, Any]:
    """Entry point of ``genrl zoo``."""
    if not Path(args.data).exists():
        raise FileNotFoundError(f"no dataset at {args.data}")
    zoo_models(args.kinds, args.latent_dims)  # fail early on bad lists
    dataset = TrajectoryDataset.load(args.data, task=args.task)
    return make_zoo(
        dataset,
        args.out,
        task=args.task,
        data_source=str(args.data),
        epochs=args.epochs,
        kinds=args.kinds,
        latent_dims=args.latent_dims,
        batch_size=args.batch_size,
        seed=args.seed,
        n_samples=args.n_samples,
        dwpr_n=args.dwpr_n,
        n_safety=args.n_safety,
        threads=args.threads,
        resume=args.resume,
        progress=not args.no_progress,
    )
