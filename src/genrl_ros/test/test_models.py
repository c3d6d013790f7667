"""Generative models: exact layer shapes (paper Tables 7 and 8), normalisation, the generator
interface, losses, and checkpoint saving / validated loading."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from torch import nn

from genrl_ros.models import (
    STD_FLOOR_RAD,
    BetaVAE,
    CheckpointError,
    InfoGAN,
    load_checkpoint,
    load_generator,
    make_generator,
    save_checkpoint,
)
from genrl_ros.models.checkpoint import check_compatible, state_sha256

JOINTS = tuple(f"panda_joint{i}" for i in range(1, 8))
T = 12


def layer_spec(module: nn.Module) -> list[tuple]:
    """(type, in, out) of the leaf layers, in order."""
    spec = []
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            spec.append(("Linear", layer.in_features, layer.out_features))
        elif isinstance(layer, nn.BatchNorm1d):
            spec.append(("BN", layer.num_features))
        elif isinstance(layer, (nn.ReLU, nn.Sigmoid)):
            spec.append((type(layer).__name__,))
    return spec


def table7(k: int, out: int) -> list[tuple]:
    return [
        ("Linear", k, 128), ("BN", 128), ("ReLU",),
        ("Linear", 128, 256), ("BN", 256), ("ReLU",),
        ("Linear", 256, 512), ("BN", 512), ("ReLU",),
        ("Linear", 512, out),
    ]


def vae(k: int = 3, horizon: int = T, **kw) -> BetaVAE:
    torch.manual_seed(0)
    return BetaVAE(k, horizon, JOINTS, 0.04, "hockey", **kw)


def gan(k: int = 2, horizon: int = T, lam: float = 1.5) -> InfoGAN:
    torch.manual_seed(0)
    return InfoGAN(k, horizon, JOINTS, 0.04, "hockey", **{"lambda": lam})


def data(n: int = 64, horizon: int = T, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, horizon)[None, :, None]
    a = rng.normal(size=(n, 1, 1))
    b = rng.normal(size=(n, 1, 7))
    return (1.5 + 0.3 * a * np.sin(np.pi * t) + 0.1 * b * t).astype(np.float32)


# ----------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("k", [2, 3, 6])
def test_decoder_is_table7(k):
    for model in (vae(k), gan(k)):
        assert layer_spec(model.decoder) == table7(k, T * 7)
        assert model.output_dim == T * 7


def test_hockey_decoder_output_size():
    model = BetaVAE(3, 69, JOINTS, 0.04, "hockey")
    assert layer_spec(model.decoder)[-1] == ("Linear", 512, 69 * 7)


def test_vae_encoder_is_symmetric_with_two_heads():
    model = vae(3)
    assert layer_spec(model.encoder) == [
        ("Linear", T * 7, 512), ("BN", 512), ("ReLU",),
        ("Linear", 512, 256), ("BN", 256), ("ReLU",),
        ("Linear", 256, 128), ("BN", 128), ("ReLU",),
    ]
    assert layer_spec(model.enc_mean) == [("Linear", 128, 3)]
    assert layer_spec(model.enc_log_std) == [("Linear", 128, 3)]


def test_infogan_discriminator_and_q_are_table8():
    model = gan(6)
    d = model.discriminator
    # the input: the trajectory and its joint velocities (Table 8 leaves "in" open)
    width = T * 7 + (T - 1) * 7
    assert layer_spec(d.shared) == [("Linear", width, 256), ("ReLU",), ("Linear", 256, 128), ("ReLU",)]
    assert layer_spec(d.d_head) == [("Linear", 128, 1), ("Sigmoid",)]
    assert layer_spec(d.q_head) == [("Linear", 128, 64), ("Linear", 64, 6)]
    x = torch.randn(5, width)
    p = d.probability(x)
    assert p.shape == (5, 1) and bool(((p > 0) & (p < 1)).all())
    logits, q = d(x)
    assert logits.shape == (5,) and q.shape == (5, 6)
    torch.testing.assert_close(torch.sigmoid(logits)[:, None], p)



def test_infogan_discriminator_sees_joint_velocities():
    model = gan(2)
    trajectories = data(64)
    model.set_normalization(trajectories)
    velocity = np.diff(trajectories.astype(np.float64), axis=1) / 0.04
    np.testing.assert_allclose(model.velocity_scale.numpy(), velocity.std(axis=(0, 1)), rtol=1e-5)
    radians = torch.as_tensor(trajectories[:3], dtype=torch.float32)
    flat = model.normalize(radians)
    features = model.discriminator_input(flat)
    assert features.shape == (3, T * 7 + (T - 1) * 7)
    torch.testing.assert_close(features[:, : T * 7], flat)
    expected = (radians[:, 1:] - radians[:, :-1]) / 0.04 / model.velocity_scale
    torch.testing.assert_close(features[:, T * 7 :], expected.reshape(3, -1), rtol=1e-4, atol=1e-4)
    # a 1 mrad zig-zag adds +-0.025 rad/s to every velocity the discriminator sees
    jitter = radians.clone()
    jitter[:, ::2] += 1e-3
    jittery = model.discriminator_input(model.normalize(jitter))[:, T * 7 :]
    added = (jittery - features[:, T * 7 :]).reshape(3, T - 1, 7) * model.velocity_scale
    sign = torch.tensor([(-1.0) ** (k + 1) for k in range(T - 1)])[None, :, None]
    torch.testing.assert_close(added, 0.025 * sign.expand_as(added), rtol=0, atol=1e-3)
    # the velocity scale is saved with the model
    assert "velocity_scale" in model.state_dict()


# ----------------------------------------------------------------------------- interface


def test_priors_and_sample_shapes():
    v, g = vae(3).eval(), gan(2).eval()
    assert (v.prior, g.prior) == ("normal", "uniform")
    gen = torch.Generator().manual_seed(0)
    u = g.sample_prior(4000, gen)
    assert u.shape == (4000, 2) and float(u.min()) >= -1 and float(u.max()) <= 1
    assert abs(float(u.mean())) < 0.05 and float(u.std()) == pytest.approx(1 / 3**0.5, abs=0.02)
    z = v.sample_prior(4000, torch.Generator().manual_seed(0))
    assert abs(float(z.std()) - 1.0) < 0.05
    assert v.sample(5).shape == (5, T, 7) and g.sample(1).shape == (1, T, 7)
    assert v.decode(torch.zeros(1, 3)).dtype == torch.float32
    a = v.sample(3, torch.Generator().manual_seed(5))
    b = v.sample(3, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match=r"alpha has shape \(4, 2\), expected \(n, 3\)"):
        v.decode(torch.zeros(4, 2))
    for name in ("latent_dim", "prior", "horizon", "joint_names", "control_dt_s", "task"):
        assert hasattr(v, name)
    assert v.joint_names == JOINTS and v.task == "hockey" and v.horizon == T


def test_normalisation_round_trip_and_radians():
    model = vae(2).eval()
    trajectories = data(200)
    trajectories[:, 0, 3] = 0.25  # a joint that does not move at step 0: std floored
    model.set_normalization(trajectories)
    mean = trajectories.astype(np.float64).mean(0)
    std = trajectories.astype(np.float64).std(0)
    np.testing.assert_allclose(model.norm_mean.numpy(), mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.norm_std.numpy(), np.maximum(std, STD_FLOOR_RAD), rtol=1e-5)
    assert float(model.norm_std[0, 3]) == pytest.approx(STD_FLOOR_RAD)
    x = torch.from_numpy(trajectories)
    flat = model.normalize(x)
    assert flat.shape == (200, T * 7)
    assert abs(float(flat.mean())) < 1e-4
    torch.testing.assert_close(model.denormalize(flat), x, atol=1e-5, rtol=0)
    # a network output of 0 is the mean trajectory, in radians
    with torch.no_grad():
        model.decoder[-1].weight.zero_()
        model.decoder[-1].bias.zero_()
    out = model.decode(torch.randn(4, 2))
    torch.testing.assert_close(out, model.norm_mean.expand(4, T, 7))
    assert float(out.detach().mean()) == pytest.approx(float(mean.mean()), abs=1e-4)


def test_normalisation_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"expected \(N, 12, 7\)"):
        vae().set_normalization(np.zeros((5, 11, 7)))


def test_vae_loss_terms():
    model = vae(3)
    model.set_normalization(data())
    x = model.normalize(torch.from_numpy(data(16, seed=1)))
    losses = model.loss(x, torch.Generator().manual_seed(0))
    assert set(losses) == {"loss", "recon", "kl"}
    torch.testing.assert_close(losses["loss"], losses["recon"] + 0.001 * losses["kl"])
    assert model.recon == "mse"  # the default
    mean, log_std = torch.zeros(2, 3), torch.zeros(2, 3)
    assert torch.equal(BetaVAE.kl_divergence(mean, log_std), torch.zeros(2))
    kl = BetaVAE.kl_divergence(torch.ones(1, 3), torch.full((1, 3), np.log(2.0)))
    expected = 3 * 0.5 * (1 + 4 - 1 - 2 * np.log(2.0))
    assert float(kl) == pytest.approx(expected, rel=1e-6)
    sse, mse = vae(3, recon="sse"), vae(3, recon="mse")
    a, b = torch.zeros(2, T * 7), torch.ones(2, T * 7)
    assert sse.reconstruction_error(a, b).tolist() == [T * 7.0, T * 7.0]
    assert mse.reconstruction_error(a, b).tolist() == [1.0, 1.0]


def test_infogan_losses():
    model = gan(2, lam=3.5)
    alpha = model.sample_prior(8, torch.Generator().manual_seed(0))
    fake = model.decode_normalized(alpha)
    real = torch.randn(8, T * 7)
    d = model.discriminator_loss(real, alpha, fake)
    g = model.generator_loss(alpha, fake)
    torch.testing.assert_close(d["loss"], d["adversarial"] + 3.5 * d["info"])
    torch.testing.assert_close(g["loss"], g["adversarial"] + 3.5 * g["info"])
    assert float(InfoGAN.info_loss(torch.ones(2, 2), torch.zeros(2, 2))) == pytest.approx(1.0)


def test_bad_hyperparameters():
    with pytest.raises(ValueError, match="beta must be >= 0"):
        vae(beta=-1)
    with pytest.raises(ValueError, match="recon must be one of"):
        vae(recon="l1")
    with pytest.raises(ValueError, match="unknown InfoGAN hyperparameters"):
        InfoGAN(2, T, JOINTS, 0.04, "hockey", beta=1.0)
    with pytest.raises(ValueError, match="unknown model kind"):
        make_generator({"kind": "flow"})


# ----------------------------------------------------------------------------- checkpoints


@pytest.fixture
def trained_vae():
    model = vae(3)
    model.set_normalization(data())
    model.train()
    model.decode(torch.randn(16, 3))  # moves the BatchNorm running statistics
    return model.eval()


def test_checkpoint_round_trip(tmp_path, trained_vae):
    path = save_checkpoint(tmp_path / "m.pt", trained_vae, metadata={"epoch": 3})
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temporary file left
    loaded = load_generator(path)
    assert not loaded.training
    assert isinstance(loaded, BetaVAE) and loaded.hparams == trained_vae.hparams
    for (name, a), (_, b) in zip(trained_vae.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    alpha = torch.randn(3, 3)
    assert torch.equal(loaded.decode(alpha), trained_vae.decode(alpha))
    payload = load_checkpoint(path)
    assert payload["metadata"]["epoch"] == 3
    assert payload["metadata"]["model_sha256"] == state_sha256(trained_vae.state_dict())
    # a run directory resolves to its best.pt
    save_checkpoint(tmp_path / "best.pt", gan(2))
    assert isinstance(load_generator(tmp_path), InfoGAN)


def test_checkpoint_is_weights_only(tmp_path, trained_vae):
    path = save_checkpoint(tmp_path / "m.pt", trained_vae)
    payload = torch.load(path, weights_only=True)
    assert set(payload) == {"format", "format_version", "content", "metadata_json", "model"}
    json.loads(payload["metadata_json"])


def test_truncated_checkpoint(tmp_path, trained_vae):
    path = save_checkpoint(tmp_path / "m.pt", trained_vae)
    data_bytes = path.read_bytes()
    path.write_bytes(data_bytes[: len(data_bytes) // 2])
    with pytest.raises(CheckpointError, match=r"m\.pt is not a readable checkpoint \(corrupted or truncated"):
        load_generator(path)


def test_corrupted_checkpoint(tmp_path, trained_vae):
    path = save_checkpoint(tmp_path / "m.pt", trained_vae)
    raw = bytearray(path.read_bytes())
    # flip bytes inside the largest tensor record (the last decoder layer's weights)
    middle = len(raw) // 2
    for i in range(middle, middle + 64):
        raw[i] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match=r"m\.pt (is corrupted|is not a readable checkpoint)"):
        load_generator(path)


def test_not_a_checkpoint(tmp_path, trained_vae):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(os.urandom(1000))
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_generator(garbage)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(CheckpointError, match="format is None, expected 'genrl_ros.generator_checkpoint'"):
        load_generator(other)
    with pytest.raises(FileNotFoundError, match="no model checkpoint"):
        load_generator(tmp_path / "missing.pt")
    with pytest.raises(FileNotFoundError, match="not a training run"):
        load_generator(tmp_path)


def test_wrong_content_and_expectations(tmp_path, trained_vae):
    path = save_checkpoint(tmp_path / "m.pt", trained_vae)
    with pytest.raises(CheckpointError, match="holds a 'generator' checkpoint, expected 'training'"):
        load_checkpoint(path, content="training")
    with pytest.raises(CheckpointError, match="horizon 12 vs 69 commands"):
        load_generator(path, expect_horizon=69)
    with pytest.raises(CheckpointError, match="7 joints .* vs 6 joints"):
        load_generator(path, expect_joint_names=JOINTS[:6])
    with pytest.raises(CheckpointError, match="model kind is 'vae', expected 'infogan'"):
        load_generator(path, expect_kind="infogan")
    config = trained_vae.model_config()
    with pytest.raises(CheckpointError, match="task 'hockey' vs 'basketball'"):
        check_compatible(config, source="x", task="basketball")


def test_weights_that_do_not_fit_the_architecture(tmp_path, trained_vae):
    path = save_checkpoint(tmp_path / "m.pt", trained_vae)
    payload = torch.load(path, weights_only=True)
    meta = json.loads(payload["metadata_json"])
    meta["model_config"]["latent_dim"] = 4  # claims another latent size
    payload["metadata_json"] = json.dumps(meta)
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=r"decoder\.0\.weight has shape \(128, 3\).*needs \(128, 4\)"):
        load_generator(path)


def test_save_refuses_non_json_metadata(tmp_path, trained_vae):
    with pytest.raises(ValueError, match="JSON-serializable"):
        save_checkpoint(tmp_path / "m.pt", trained_vae, metadata={"x": float("nan")})
    assert not any(tmp_path.iterdir())
