"""``genrl train-model``: training reduces the loss, exact resume, run-directory safety,
held-out split of safe episodes, dataset / checkpoint mismatches."""

from __future__ import annotations

import csv
import dataclasses
import json

import numpy as np
import pytest
import torch

from genrl_ros import cli
from genrl_ros.data.dataset import synthetic_dataset
from genrl_ros.models.checkpoint import CheckpointError, load_checkpoint, load_generator
from genrl_ros.train_model import TrainConfig, split_dataset, train_model


def structured_dataset(n: int = 96, horizon: int = 10, seed: int = 0, task: str = "hockey",
                       n_unsafe: int = 0, joints: int = 7):
    """Trajectories from 2 factors (a learnable family); ``n_unsafe`` episodes unsafe."""
    base = synthetic_dataset(n, horizon, None, task=task, seed=seed,
                             joint_names=tuple(f"panda_joint{i}" for i in range(1, joints + 1)))
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, horizon)[None, :, None]
    a, b = rng.normal(size=(n, 1, 1)), rng.normal(size=(n, 1, 1))
    phase = np.arange(joints)[None, None, :] * 0.4
    trajectories = 0.2 * a * np.sin(np.pi * t + phase) + 0.1 * b * t + 0.01 * rng.normal(size=(n, horizon, joints))
    contacts = np.zeros_like(base.contact_steps)
    contacts[:n_unsafe, base.contact_classes.index("robot_table")] = 2
    return dataclasses.replace(
        base,
        trajectories=trajectories.astype(np.float32),
        contact_steps=contacts,
        joint_limit_violation_steps=np.zeros(n, dtype=np.int32),
    )


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def tiny(kind: str, epochs: int, **kw) -> TrainConfig:
    hyper = {"beta": 0.01} if kind == "vae" else {"lam": 1.5}
    return TrainConfig(kind=kind, latent_dim=2, epochs=epochs, batch_size=16, lr=1e-3,
                       eval_samples=20, **{**hyper, **kw})


# ----------------------------------------------------------------------------- training


def test_vae_training_reduces_the_loss(tmp_path):
    dataset = structured_dataset()
    summary = train_model(dataset, tmp_path / "run", tiny("vae", 8), progress=False)
    rows = read_rows(tmp_path / "run" / "losses.csv")
    assert [int(r["epoch"]) for r in rows] == list(range(1, 9))
    losses = [float(r["loss"]) for r in rows]
    assert losses[-1] < 0.6 * losses[0]
    held = [float(r["heldout_recon_rmse_rad"]) for r in rows]
    assert held[-1] < held[0]
    for name in ("run.json", "losses.csv", "last.pt", "best.pt", "summary.json"):
        assert (tmp_path / "run" / name).is_file(), name
    assert any((tmp_path / "run" / "tb").iterdir())
    assert summary["kind"] == "vae" and summary["beta"] == 0.01 and summary["epochs"] == 8
    assert 1 <= summary["best_epoch"] <= 8
    best = [r for r in rows if int(r["epoch"]) == summary["best_epoch"]][0]
    assert float(best["selection_error"]) == min(float(r["selection_error"]) for r in rows)
    assert summary["n_train"] + summary["n_heldout"] == 96
    model = load_generator(tmp_path / "run")
    assert model.sample(2).shape == (2, 10, 7)
    assert load_checkpoint(tmp_path / "run" / "best.pt")["metadata"]["epoch"] == summary["best_epoch"]


def test_cosine_learning_rate_schedule(tmp_path):
    from genrl_ros.train_model import epoch_learning_rate

    config = tiny("vae", 5, lr_final=1e-5)
    rates = [epoch_learning_rate(config, e) for e in range(1, 6)]
    assert rates[0] == pytest.approx(1e-3) and rates[-1] == pytest.approx(1e-5)
    assert all(a > b for a, b in zip(rates, rates[1:]))
    assert epoch_learning_rate(tiny("vae", 5), 3) == 1e-3  # default: the paper's fixed lr
    train_model(structured_dataset(), tmp_path / "run", config, progress=False)
    rows = read_rows(tmp_path / "run" / "losses.csv")
    assert [float(r["lr"]) for r in rows] == pytest.approx(rates)
    state = load_checkpoint(tmp_path / "run" / "last.pt")["optimizers"]["model"]
    assert state["param_groups"][0]["lr"] == pytest.approx(1e-5)
    with pytest.raises(ValueError, match=r"lr_final must be in \(0, lr=0.001\]"):
        tiny("vae", 5, lr_final=2e-3)


def test_infogan_training_runs(tmp_path):
    summary = train_model(structured_dataset(), tmp_path / "gan", tiny("infogan", 2), progress=False)
    rows = read_rows(tmp_path / "gan" / "losses.csv")
    assert {"d_loss", "g_loss", "info", "selection_error"} <= set(rows[0])
    assert summary["lambda"] == 1.5 and "beta" not in summary
    model = load_generator(tmp_path / "gan")
    assert model.kind == "infogan" and model.prior == "uniform"


@pytest.mark.parametrize("kind", ["vae", "infogan"])
def test_resume_is_bit_exact(tmp_path, kind):
    dataset = structured_dataset()
    train_model(dataset, tmp_path / "full", tiny(kind, 4), progress=False)
    train_model(dataset, tmp_path / "split", tiny(kind, 2), progress=False)
    summary = train_model(dataset, tmp_path / "split", tiny(kind, 4), resume=True, progress=False)
    assert summary["epochs_this_call"] == 2
    full = load_checkpoint(tmp_path / "full" / "last.pt")
    split = load_checkpoint(tmp_path / "split" / "last.pt")
    assert full["metadata"]["model_sha256"] == split["metadata"]["model_sha256"]
    for name, tensor in full["model"].items():
        assert torch.equal(tensor, split["model"][name]), name
    for opt in full["optimizers"]:
        a, b = full["optimizers"][opt]["state"], split["optimizers"][opt]["state"]
        for key in a:
            for item in a[key]:
                assert torch.equal(a[key][item], b[key][item])
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(read_rows(tmp_path / "full" / "losses.csv")) == strip(
        read_rows(tmp_path / "split" / "losses.csv")
    )
    # already complete: nothing more to do
    again = train_model(dataset, tmp_path / "split", tiny(kind, 4), resume=True, progress=False)
    assert again["epochs_this_call"] == 0


def test_resume_refuses_other_settings_and_other_data(tmp_path):
    dataset = structured_dataset()
    train_model(dataset, tmp_path / "run", tiny("vae", 1), progress=False)
    with pytest.raises(ValueError, match=r"latent_dim 2 -> 3 .*only --epochs may change"):
        train_model(dataset, tmp_path / "run", dataclasses.replace(tiny("vae", 2), latent_dim=3),
                    resume=True, progress=False)
    with pytest.raises(CheckpointError, match=r"horizon 10 vs 12 commands"):
        train_model(structured_dataset(horizon=12), tmp_path / "run", tiny("vae", 2),
                    resume=True, progress=False)
    with pytest.raises(CheckpointError, match=r"7 joints .* vs 6 joints"):
        train_model(structured_dataset(joints=6), tmp_path / "run", tiny("vae", 2),
                    resume=True, progress=False)
    with pytest.raises(ValueError, match="differs from the one the run was trained on"):
        train_model(structured_dataset(seed=3), tmp_path / "run", tiny("vae", 2),
                    resume=True, progress=False)


def test_resume_from_a_corrupted_checkpoint(tmp_path):
    dataset = structured_dataset()
    train_model(dataset, tmp_path / "run", tiny("vae", 1), progress=False)
    last = tmp_path / "run" / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="last.pt is not a readable checkpoint"):
        train_model(dataset, tmp_path / "run", tiny("vae", 2), resume=True, progress=False)


def test_output_directory_is_never_overwritten_silently(tmp_path):
    dataset = structured_dataset()
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty; pass --resume .* or --overwrite"):
        train_model(dataset, out, tiny("vae", 1), progress=False)
    with pytest.raises(FileExistsError, match="has no run.json: it is not a training run"):
        train_model(dataset, out, tiny("vae", 1), overwrite=True, progress=False)
    with pytest.raises(FileExistsError, match="cannot resume"):
        train_model(dataset, out, tiny("vae", 1), resume=True, progress=False)
    assert (out / "notes.txt").read_text() == "mine"
    train_model(dataset, tmp_path / "run2", tiny("vae", 1), progress=False)
    train_model(dataset, tmp_path / "run2", tiny("vae", 1, seed=4), overwrite=True, progress=False)
    assert json.loads((tmp_path / "run2" / "run.json").read_text())["train_config"]["seed"] == 4


def test_only_safe_episodes_are_used(tmp_path):
    dataset = structured_dataset(n=50, n_unsafe=10)
    split = split_dataset(dataset, holdout=0.1, seed=0)
    assert split.info["n_excluded_unsafe"] == 10
    assert (split.info["n_train"], split.info["n_heldout"]) == (36, 4)
    unsafe_rows = dataset.trajectories[:10]
    used = np.concatenate([split.train, split.heldout])
    assert not any((used == row).all(axis=(1, 2)).any() for row in unsafe_rows)
    everything = split_dataset(dataset, holdout=0.1, seed=0, include_unsafe=True)
    assert everything.info["n_used"] == 50
    again = split_dataset(dataset, holdout=0.1, seed=0)
    assert np.array_equal(again.heldout, split.heldout)
    with pytest.raises(ValueError, match="too few to train"):
        split_dataset(structured_dataset(n=4, n_unsafe=3), holdout=0.1, seed=0)


def test_config_validation():
    with pytest.raises(ValueError, match="--lambda is an InfoGAN setting"):
        TrainConfig(kind="vae", latent_dim=2, epochs=1, lam=1.0)
    with pytest.raises(ValueError, match="--beta is a VAE setting"):
        TrainConfig(kind="infogan", latent_dim=2, epochs=1, beta=1.0)
    with pytest.raises(ValueError, match="kind must be one of"):
        TrainConfig(kind="flow", latent_dim=2, epochs=1)
    assert TrainConfig(kind="vae", latent_dim=3, epochs=1).beta == 0.001
    assert (TrainConfig(kind="vae", latent_dim=3, epochs=1).lr,
            TrainConfig(kind="vae", latent_dim=3, epochs=1).batch_size) == (2e-4, 256)


# ----------------------------------------------------------------------------- CLI


def test_cli_train_model_json(tmp_path, capsys):
    data = tmp_path / "data"
    structured_dataset().save(data)
    argv = ["train-model", "--data", str(data), "--kind", "infogan", "--latent-dim", "2",
            "--lambda", "0.1", "--epochs", "1", "--batch-size", "32", "--out", str(tmp_path / "run"),
            "--no-progress", "--json"]
    assert cli.main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("kind", "latent_dim", "lambda", "epochs", "best_epoch", "best_selection_error",
                "best_sample_error", "best_coverage_error", "seconds", "run"):
        assert key in summary, key
    assert summary["command"] == "train-model" and summary["kind"] == "infogan"
    # a second call without --resume/--overwrite is a one-line usage error
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("genrl train-model: error: ")
    assert "--resume" in err[0]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--kind", "vae", "--lambda", "1"], "--lambda is an InfoGAN setting"),
        (["--kind", "vae", "--data", "/nonexistent"], "no dataset at /nonexistent"),
    ],
)
def test_cli_train_model_errors(tmp_path, capsys, extra, message):
    argv = ["train-model", "--latent-dim", "2", "--epochs", "1", "--out", str(tmp_path / "r")]
    if "--data" not in extra:
        argv += ["--data", str(tmp_path)]
    assert cli.main(argv + extra) == 2
    assert message in capsys.readouterr().err


def test_cli_requires_data_or_bag(tmp_path, capsys):
    argv = ["train-model", "--kind", "vae", "--latent-dim", "2", "--epochs", "1", "--out",
            str(tmp_path / "r")]
    assert cli.main(argv) == 2
    assert "exactly one of --data DIR or --bag PATH" in capsys.readouterr().err


def test_cli_train_model_from_a_bag(tmp_path, capsys):
    from genrl_ros.data.rosbag_io import export_bag

    dataset = structured_dataset(n=40)
    export_bag(dataset, tmp_path / "bag", progress=False)
    argv = ["train-model", "--bag", str(tmp_path / "bag"), "--kind", "vae", "--latent-dim", "2",
            "--epochs", "1", "--batch-size", "16", "--out", str(tmp_path / "run"), "--no-progress",
            "--json"]
    assert cli.main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["n_train"] + summary["n_heldout"] == 40
    run_info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run_info["data"]["source"] == str(tmp_path / "bag")


def test_infogan_uses_ttur_learning_rates(tmp_path):
    """TTUR (models/infogan.py): G at GENERATOR_LR_FACTOR * lr, D at DISCRIMINATOR_LR_FACTOR *
    lr, also under the lr_final schedule (the factors ride in the Adam param groups)."""
    from genrl_ros.models.infogan import DISCRIMINATOR_LR_FACTOR, GENERATOR_LR_FACTOR

    config = tiny("infogan", 2, lr_final=1e-4)
    train_model(structured_dataset(), tmp_path / "gan", config, progress=False, tensorboard=False)
    groups = load_checkpoint(tmp_path / "gan" / "last.pt", content="training")["optimizers"]
    g_group = groups["generator"]["param_groups"][0]
    d_group = groups["discriminator"]["param_groups"][0]
    assert GENERATOR_LR_FACTOR < 1.0 < DISCRIMINATOR_LR_FACTOR
    assert g_group["lr"] == pytest.approx(1e-4 * GENERATOR_LR_FACTOR)  # last epoch: lr_final
    assert d_group["lr"] == pytest.approx(1e-4 * DISCRIMINATOR_LR_FACTOR)
