"""``genrl study`` on a tiny zoo (three 1-epoch beta-VAEs on a tiny hockey-shaped dataset,
one 2-iteration EM policy of 4 episodes each, real MuJoCo): tables, Pearson R / p against
hand values, resume, and bad input."""

from __future__ import annotations

import csv
import dataclasses
import json
import math

import numpy as np
import pytest

from genrl_ros import cli
from genrl_ros.data.dataset import synthetic_dataset
from genrl_ros.study import (
    StudyConfig,
    _RunLock,
    correlation_table,
    load_zoo,
    model_label,
    pearson,
    run_study,
)
from genrl_ros.zoo import make_zoo

import sim_bridge.tasks as sim_tasks

TINY = StudyConfig(iterations=2, episodes_per_iteration=4, seeds=1, eval_goals=2,
                   em_overrides={"estep_epochs": 2, "value_epochs": 2})


def hockey_like(n: int, seed: int = 0):
    """Smooth, slow trajectories around the hockey start configuration, all safe (as in
    test_eval_model)."""
    task = sim_tasks.make_task("hockey")
    base = synthetic_dataset(n, task.horizon, None, task="hockey", seed=seed,
                             control_dt_s=task.control_dt_s, joint_names=task.joint_names)
    t = np.linspace(0.0, 1.0, task.horizon)[None, :, None]
    amplitude = np.random.default_rng(seed).normal(0.0, 0.05, size=(n, 1, 7))
    trajectories = task.start_rad[None, None, :] + amplitude * np.sin(np.pi * t) ** 2
    return dataclasses.replace(
        base, trajectories=trajectories.astype(np.float32),
        contact_steps=np.zeros_like(base.contact_steps),
        joint_limit_violation_steps=np.zeros(n, dtype=np.int32))


@pytest.fixture(scope="module")
def tiny_zoo(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    dataset = hockey_like(n=40)
    make_zoo(dataset, root / "zoo", task="hockey", data_source="hockey_like", epochs=1,
             kinds=["vae"], latent_dims=[2], batch_size=32, n_samples=20, dwpr_n=4,
             n_safety=2, progress=False)
    return root / "zoo"


def test_pearson_matches_a_hand_case():
    # x = 1..4, y = (1, 3, 2, 4): R = 4 / 5 = 0.8; t = R sqrt(2) / sqrt(1 - R^2) with 2
    # degrees of freedom, whose two-sided p is 1 - t / sqrt(2 + t^2) = 0.2 exactly
    r, p, n = pearson([1, 2, 3, 4], [1, 3, 2, 4])
    assert (r, n) == (pytest.approx(0.8), 4) and p == pytest.approx(0.2)
    r, p, n = pearson([1, 2, math.nan, 4, 5], [2, 4, 7, 8, 10])  # the NaN pair is left out
    assert n == 4 and r == pytest.approx(1.0)
    assert all(math.isnan(v) for v in pearson([1, 2], [3, 4])[:2])  # n < 3
    assert all(math.isnan(v) for v in pearson([1, 1, 1], [3, 4, 5])[:2])  # constant side
    # equal up to rounding (0.1 + 0.2 != 0.3) is constant too, not a spurious R
    assert all(math.isnan(v) for v in pearson([1, 2, 3], [0.1 + 0.2, 0.3, 0.3])[:2])


def test_correlation_table_per_family():
    rows = [{"kind": k, "label": y, "precision": x, "recall": -x, "delta_1": x * x,
             "delta_tilde": None}
            for k, x, y in (("vae", 1, 1), ("vae", 2, 3), ("vae", 3, 2), ("vae", 4, 4),
                            ("infogan", 0, 0), ("infogan", 1, 2), ("infogan", 2, 1))]
    table = {(c["measure"], c["family"]): c for c in correlation_table(rows)}
    assert table["precision", "VAE"]["r"] == pytest.approx(0.8)
    assert table["recall", "VAE"]["r"] == pytest.approx(-0.8)
    assert table["precision", "VAE"]["p"] == pytest.approx(0.2)
    assert table["precision", "GAN"]["n"] == 3 and table["precision", "ALL"]["n"] == 7
    assert table["delta_tilde", "ALL"]["n"] == 0 and math.isnan(table["delta_tilde", "ALL"]["r"])


def test_study_writes_tables_and_resumes(tiny_zoo, tmp_path):
    out = tmp_path / "study"
    summary = run_study(tiny_zoo, out, task="hockey", config=TINY, progress=False)
    assert summary["trained"] == ["VAE1/seed0", "VAE2/seed0", "VAE3/seed0"]
    for name in ("study.md", "study.json", "labels.csv", "correlations.csv", "scatter.png",
                 "curves.png", "study_config.json", "runs/VAE2/seed0/curve.csv"):
        assert (out / name).is_file(), name
    study = json.loads((out / "study.json").read_text())
    for row in study["models"]:  # label = max over iterations of the batch mean reward
        with open(out / "runs" / row["name"] / "seed0" / "curve.csv") as handle:
            means = [float(r["reward_mean"]) for r in csv.DictReader(handle)]
        assert len(means) == 2 and row["label"] == pytest.approx(max(means))
        assert row["seed_maxima"] == [pytest.approx(max(means))]
    vae = [c for c in study["correlations"] if c["family"] == "VAE"]
    assert [c["measure"] for c in vae] == ["precision", "recall", "delta_1", "delta_tilde"]
    rows = [r for r in study["models"]]
    for c in vae:
        r, p, n = pearson([m[c["measure"]] for m in rows], [m["label"] for m in rows])
        assert c["n"] == n == 3 or (c["n"] == n and n < 3)
        assert c["r"] == (None if math.isnan(r) else pytest.approx(r))
    table = (out / "study.md").read_text()
    assert "| measure | VAE R | VAE p | VAE n | ALL R | ALL p | ALL n |" in table
    assert "| VAE3 | 2 | 0.001 |" in table

    with pytest.raises(FileExistsError, match="pass --resume"):
        run_study(tiny_zoo, out, task="hockey", config=TINY, progress=False)
    again = run_study(tiny_zoo, out, task="hockey", config=TINY, resume=True, progress=False)
    assert again["trained"] == [] and again["labels"] == summary["labels"]
    # an interrupted run (checkpoint, no summary) is resumed, the others are skipped
    (out / "runs" / "VAE2" / "seed0" / "summary.json").unlink()
    resumed = run_study(tiny_zoo, out, task="hockey", config=TINY, resume=True, progress=False)
    assert resumed["trained"] == ["VAE2/seed0"] and resumed["labels"] == summary["labels"]
    # Table 6 pools finished studies (of other tasks; here the study itself, for the wiring)
    pooled = run_study(tiny_zoo, out, task="hockey", config=TINY, resume=True, progress=False,
                       pool_with=[out])
    assert pooled["trained"] == [] and pooled["pooled_correlations"]["recall/ALL"]["n"] == 6
    assert "## Pooled over tasks (Table 6)" in (out / "study.md").read_text()
    with pytest.raises(ValueError, match="cannot resume the study .* iterations 2 -> 3"):
        run_study(tiny_zoo, out, task="hockey", config=StudyConfig(
            **{**TINY.__dict__, "iterations": 3}), resume=True, progress=False)


def test_zoo_without_zoo_json_is_refused(tiny_zoo, tmp_path, capsys):
    (tmp_path / "not_a_zoo").mkdir()
    with pytest.raises(FileNotFoundError, match="has no zoo.json: not a finished zoo"):
        load_zoo(tmp_path / "not_a_zoo", "hockey")
    with pytest.raises(ValueError, match="is of task 'hockey', not 'basketball'"):
        load_zoo(tiny_zoo, "basketball")
    with pytest.raises(ValueError, match=r"models \['VAE7'\] are not in the zoo"):
        run_study(tiny_zoo, tmp_path / "s", task="hockey", config=TINY, models=["VAE7"],
                  progress=False)
    code = cli.main(["study", "--task", "hockey", "--zoo", str(tmp_path / "not_a_zoo"),
                     "--out", str(tmp_path / "s")])
    assert code == 2
    assert "has no zoo.json: not a finished zoo" in capsys.readouterr().err
    with pytest.raises(ValueError, match="episodes_per_iteration must be >= 2"):
        StudyConfig(episodes_per_iteration=1)


def test_run_lock_is_exclusive_and_released(tmp_path):
    run = tmp_path / "runs" / "VAE1" / "seed0"
    with _RunLock(run, wait=False) as held:
        assert held
        with _RunLock(run, wait=False) as other:  # another worker would skip this run
            assert not other
    with _RunLock(run, wait=False) as again:
        assert again
    assert not run.exists()  # the lock file lives next to the run directory


def test_label_of_a_model_whose_trajectories_are_all_rejected():
    # every episode rejected: reward = invalid reward, the evaluation has no distance (null)
    curve = [{"reward_mean": -1.5}, {"reward_mean": -1.5}]
    summary = {"median_distance_m": None, "success_rate": 0.0, "invalid_episodes": 8,
               "table_contact_steps": 0}
    label = model_label([curve, curve], [summary, summary])
    assert label["label"] == -1.5 and label["label_std"] == 0.0
    assert math.isnan(label["eval_median_distance_m"]) and label["eval_success_rate"] == 0.0
