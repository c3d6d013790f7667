"""``genrl eval-model`` and ``genrl zoo`` on a tiny model and a tiny hockey-shaped dataset
(executable trajectories near the task's start configuration: the simulator runs a few
prior samples), plus their bad-input handling."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from genrl_ros import cli
from genrl_ros.data.dataset import synthetic_dataset
from genrl_ros.eval_model import eval_model, markdown_report, safe_fraction
from genrl_ros.models.checkpoint import CheckpointError
from genrl_ros.train_model import TrainConfig, train_model
from genrl_ros.zoo import make_zoo, zoo_models

import sim_bridge.tasks as sim_tasks

HORIZON = 69  # hockey


def hockey_like(n: int = 60, seed: int = 0, horizon: int = HORIZON):
    """Smooth, slow trajectories around the hockey start configuration, all safe."""
    task = sim_tasks.make_task("hockey")
    base = synthetic_dataset(n, horizon, None, task="hockey", seed=seed,
                             control_dt_s=task.control_dt_s, joint_names=task.joint_names)
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, horizon)[None, :, None]
    amplitude = rng.normal(0.0, 0.05, size=(n, 1, 7))
    trajectories = task.start_rad[None, None, :] + amplitude * np.sin(np.pi * t) ** 2
    return dataclasses.replace(
        base,
        trajectories=trajectories.astype(np.float32),
        contact_steps=np.zeros_like(base.contact_steps),
        joint_limit_violation_steps=np.zeros(n, dtype=np.int32),
    )


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    dataset = hockey_like()
    data = dataset.save(root / "data")
    config = TrainConfig(kind="vae", latent_dim=2, epochs=2, beta=0.01, batch_size=32, eval_samples=20)
    train_model(dataset, root / "run", config, progress=False)
    return root, data, root / "run"


KEYS = ("precision", "recall", "delta", "delta_1", "delta_2", "delta_tilde", "safe_fraction",
        "n_samples", "n_safety", "n_rejected_by_limits")


def test_eval_model_writes_all_measures(tiny_run):
    root, data, run = tiny_run
    result = eval_model(run, data, out=root / "eval", n_samples=40, dwpr_n=8, n_safety=4,
                        progress=False)
    for key in KEYS:
        assert key in result, key
    assert 0 <= result["precision"] <= 1 and 0 <= result["recall"] <= 1
    assert len(result["delta"]) == 2
    assert result["delta_1"] == max(result["delta"])
    assert result["delta_tilde"] == pytest.approx((result["delta_1"] + result["delta_2"]) / 2)
    assert result["n_samples"] == 40 and result["n_safety"] == 4
    assert 0 <= result["safe_fraction"] <= 1
    saved = json.loads((root / "eval" / "eval.json").read_text())
    assert saved["precision"] == result["precision"]
    md = (root / "eval" / "eval.md").read_text()
    assert "| precision | recall | delta_1 | delta_2 | delta_tilde | safe fraction |" in md
    # the output is never overwritten silently
    with pytest.raises(FileExistsError, match="not empty"):
        eval_model(run, data, out=root / "eval", n_samples=40, dwpr_n=8, n_safety=0)


def test_eval_model_set_sizes_are_capped_and_equal(tiny_run):
    root, data, run = tiny_run
    result = eval_model(run, data, out=root / "eval_big", n_samples=10_000, dwpr_n=8,
                        n_safety=0, progress=False)
    assert result["n_samples"] == 60  # all safe trajectories, and as many generated ones
    assert result["n_safety"] == 0 and result["safe_fraction"] != result["safe_fraction"]  # NaN


def test_eval_model_diagnostics_ceiling_and_reconstructions(tiny_run):
    root, data, run = tiny_run
    result = eval_model(run, data, out=root / "eval_diag", n_samples=40, dwpr_n=8, n_safety=0,
                        progress=False)
    assert result["real_ceiling_n"] == 30  # two disjoint halves of the 60 safe trajectories
    for key in ("real_ceiling_precision", "real_ceiling_recall", "reconstruction_precision",
                "reconstruction_recall"):
        assert 0.0 <= result[key] <= 1.0, key
    assert result["reconstruction_rmse_rad"] > 0.0
    for key in ("recall_by_real_density_quartile", "precision_by_fake_density_quartile"):
        quarters = result[key]
        assert len(quarters) == 4 and all(0.0 <= q <= 1.0 for q in quarters), key
    assert np.mean(result["recall_by_real_density_quartile"]) == pytest.approx(result["recall"])
    md = (root / "eval_diag" / "eval.md").read_text()
    assert "Ceiling (real vs real" in md and "Reconstructions" in md


def test_eval_model_refuses_a_dataset_of_another_shape(tiny_run, tmp_path):
    _, _, run = tiny_run
    other = hockey_like(horizon=50).save(tmp_path / "short")
    with pytest.raises(CheckpointError, match=r"horizon 69 vs 50 commands"):
        eval_model(run, other, out=tmp_path / "e", n_samples=20, dwpr_n=4, n_safety=0)
    assert not (tmp_path / "e").exists()


def test_cli_eval_model_json(tiny_run, tmp_path, capsys):
    root, data, run = tiny_run
    argv = ["eval-model", "--model", str(run), "--data", str(data), "--n-samples", "30",
            "--dwpr-n", "6", "--n-safety", "2", "--out", str(tmp_path / "e"), "--json"]
    assert cli.main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("precision", "recall", "delta_1", "delta_2", "delta_tilde", "safe_fraction"):
        assert key in summary, key
    assert summary["command"] == "eval-model"
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"PK\x03\x04 truncated")
    assert cli.main(["eval-model", "--model", str(bad), "--data", str(data)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.pt is not a readable checkpoint" in err[0]


def test_safe_fraction_counts_limit_rejections_as_unsafe():
    task = sim_tasks.make_task("hockey")
    good = np.broadcast_to(task.start_rad, (3, task.horizon, 7)).copy()
    fast = good.copy()
    fast[:, 10:, 0] += 0.5  # a 0.5 rad jump in one 40 ms step: far above the velocity limit
    result = safe_fraction(np.concatenate([good[:1], fast]), "hockey", seed=0)
    assert result["n_safety"] == 4 and result["n_rejected_by_limits"] == 3
    assert result["safe_fraction"] == pytest.approx(0.25)
    assert result["rejections"] == {"velocity": 3}


def test_markdown_report_handles_nan():
    result = {"task": "hockey", "kind": "vae", "latent_dim": 1, "prior": "normal",
              "hparams": {"beta": 0.01}, "precision": 0.5, "recall": 0.25, "delta": [0.1],
              "delta_1": 0.1, "delta_2": float("nan"), "delta_tilde": float("nan"),
              "safe_fraction": float("nan"), "n_samples": 10, "k": 3, "dwpr_n": 5,
              "dwpr_interventions": 5}
    text = markdown_report(result, "t")
    assert "| 0.500 | 0.250 | 0.100 | n/a | n/a | n/a |" in text


# ----------------------------------------------------------------------------- zoo


def test_zoo_names_follow_the_paper():
    names = {m.name: (m.kind, m.latent_dim, m.beta, m.lam) for m in zoo_models()}
    assert len(names) == 18
    assert names["VAE1"] == ("vae", 2, 0.01, None)
    assert names["VAE3"] == ("vae", 2, 0.001, None)
    assert names["VAE6"] == ("vae", 3, 0.001, None)
    assert names["VAE7"] == ("vae", 6, 0.01, None)
    assert names["GAN2"] == ("infogan", 2, None, 1.5)
    assert names["GAN9"] == ("infogan", 6, None, 3.5)
    assert [m.name for m in zoo_models(["infogan"], [3])] == ["GAN4", "GAN5", "GAN6"]
    with pytest.raises(ValueError, match=r"latent dims \[4\] are not in the paper's zoo"):
        zoo_models(["vae"], [4])


def test_tiny_zoo_and_resume(tiny_run, tmp_path):
    _, data, _ = tiny_run
    dataset = hockey_like()
    options = dict(task="hockey", data_source=str(data), epochs=1, kinds=["vae"], latent_dims=[2],
                   batch_size=32, n_samples=20, dwpr_n=4, n_safety=2, progress=False)
    summary = make_zoo(dataset, tmp_path / "zoo", **options)
    assert summary["models"] == summary["trained"] == summary["evaluated"] == ["VAE1", "VAE2", "VAE3"]
    for name in ("zoo.md", "zoo.json", "zoo.csv", "precision_recall.png", "dwpr.png",
                 "trajectories/VAE1.png", "models/VAE2/best.pt", "models/VAE3/eval/eval.json"):
        assert (tmp_path / "zoo" / name).is_file(), name
    table = (tmp_path / "zoo" / "zoo.md").read_text()
    assert "| VAE1 | 2 | 0.010 |" in table and "| VAE3 | 2 | 0.001 |" in table
    rows = (tmp_path / "zoo" / "zoo.csv").read_text().splitlines()
    assert rows[0].startswith("name,kind,latent_dim,beta,lambda,precision,recall,delta_1")
    assert len(rows) == 4
    with pytest.raises(FileExistsError, match="pass --resume"):
        make_zoo(dataset, tmp_path / "zoo", **options)
    again = make_zoo(dataset, tmp_path / "zoo", resume=True, **options)
    assert again["trained"] == [] and again["evaluated"] == []
    assert again["table"] == summary["table"]
    with pytest.raises(ValueError, match="cannot resume the zoo .* epochs 1 -> 2"):
        make_zoo(dataset, tmp_path / "zoo", resume=True, **{**options, "epochs": 2})
    with pytest.raises(ValueError, match="is of task 'hockey', not 'basketball'"):
        make_zoo(dataset, tmp_path / "zoo2", **{**options, "task": "basketball"})


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_end_to_end_on_real_demonstrations(tmp_path, capsys):
    """genrl demos -> train-model -> eval-model -> export, on a small real hockey dataset."""
    data, run = tmp_path / "demos", tmp_path / "run"
    assert cli.main(["demos", "--task", "hockey", "--episodes", "120", "--expert-goals", "8",
                     "--demonstrations", "8", "--out", str(data)]) == 0
    assert cli.main(["train-model", "--data", str(data), "--kind", "vae", "--latent-dim", "3",
                     "--beta", "0.001", "--epochs", "5", "--batch-size", "32", "--out", str(run),
                     "--no-progress"]) == 0
    capsys.readouterr()
    assert cli.main(["eval-model", "--model", str(run), "--data", str(data), "--n-samples", "100",
                     "--dwpr-n", "20", "--n-safety", "20", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0 <= summary["safe_fraction"] <= 1 and (run / "eval" / "eval.md").is_file()
    assert cli.main(["export", "--model", str(run), "--out", str(tmp_path / "d.onnx")]) == 0
