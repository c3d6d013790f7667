"""Latent policy networks (torch), their ONNX export and the torch-free onnxruntime policy."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from latent_policy_node.onnx_export import export_policy
from latent_policy_node.onnx_policy import FORMAT_NAME, OnnxPolicy, OnnxPolicyError, images_to_input
from latent_policy_node.policy import (
    LOG_STD_MAX,
    LOG_STD_MIN,
    GoalPolicy,
    ImagePolicy,
    ValueFunction,
    gaussian_entropy,
    gaussian_kl,
    gaussian_log_prob,
    goal_bounds,
    make_policy,
)
from sim_bridge.tasks import make_task

HOCKEY_LOW, HOCKEY_HIGH = goal_bounds("hockey")


def _randomize(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Non-trivial weights of a trained network's scale (the initial mean head is nearly
    zero): N(0, 1/fan_in) weights, N(0, 0.1^2) biases and vectors."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            fan_in = parameter.numel() // parameter.shape[0] if parameter.ndim > 1 else 100
            noise = torch.randn(parameter.shape, generator=generator)
            parameter.copy_(noise / fan_in**0.5)
    return module


# ----------------------------------------------------------------------------- networks


@pytest.mark.parametrize("task", ["hockey", "basketball"])
def test_goal_bounds_contain_the_goal_distribution(task):
    low, high = goal_bounds(task)
    goals = make_task(task).sample_goals(2000, np.random.default_rng(0))
    assert np.all(goals >= low - 1e-9) and np.all(goals <= high + 1e-9)
    # tight: the sampled goals fill most of the box
    assert np.all(goals.max(0) - goals.min(0) > 0.9 * (high - low))


@pytest.mark.parametrize("state_dependent_std", [False, True])
def test_goal_policy_shapes_and_initial_distribution(state_dependent_std):
    torch.manual_seed(0)
    policy = GoalPolicy(3, HOCKEY_LOW, HOCKEY_HIGH, init_std=0.7,
                        state_dependent_std=state_dependent_std)
    goals = torch.tensor([[0.65, -0.4], [1.3, 0.4], [1.0, 0.0], [0.8, 0.1], [1.2, -0.3]])
    mean, std = policy(goals)
    assert mean.shape == std.shape == (5, 3)
    assert torch.all(mean.abs() < 0.05)  # near the prior mean at initialisation
    assert torch.allclose(std, torch.full_like(std, 0.7), atol=0.02)
    alpha, m2, s2 = policy.sample(goals, torch.Generator().manual_seed(1))
    assert alpha.shape == (5, 3) and torch.equal(m2, mean.detach()) and torch.equal(s2, std.detach())
    assert policy.log_prob(goals, alpha).shape == (5,)
    rebuilt = make_policy(policy.config())
    rebuilt.load_state_dict(policy.state_dict())
    assert torch.equal(rebuilt(goals)[0], mean)


def test_goal_normalisation_maps_the_region_to_unit_box():
    policy = GoalPolicy(2, HOCKEY_LOW, HOCKEY_HIGH)
    corners = torch.tensor([[0.65, -0.4], [1.3, 0.4]])
    assert torch.allclose(policy.normalizer(corners), torch.tensor([[-1.0, -1.0], [1.0, 1.0]]))


def test_polar_goal_features():
    low, high = goal_bounds("basketball")
    policy = GoalPolicy(6, low, high, goal_features="polar")
    goals = torch.tensor([[3.0, 0.0], [0.0, 6.0], [-0.0, -1.0]])
    features = policy.features(goals, policy.normalizer)
    assert features.shape == (3, 5)
    radius_max = float(np.hypot(*np.maximum(np.abs(low), np.abs(high))))
    assert torch.allclose(features[:, 2], 2.0 * torch.tensor([3.0, 6.0, 1.0]) / radius_max - 1.0)
    assert torch.allclose(features[:, 3:], torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, -1.0]]))
    assert torch.allclose(features[:, :2], policy.normalizer(goals))
    # no extra state: the state dict keys are those of an "xy" policy (old checkpoints load)
    assert set(policy.state_dict()) - {k for k in GoalPolicy(6, low, high).state_dict()} == set()
    rebuilt = make_policy(policy.config())
    rebuilt.load_state_dict(policy.state_dict())
    assert rebuilt.features.kind == "polar" and torch.equal(rebuilt(goals)[0], policy(goals)[0])
    value = ValueFunction(low, high, goal_features="polar")
    assert value(goals).shape == (3,)
    with pytest.raises(ValueError, match="goal features"):
        GoalPolicy(6, low, high, goal_features="spherical")


def test_polar_goal_policy_onnx_equals_torch(tmp_path):
    low, high = goal_bounds("basketball")
    torch.manual_seed(0)
    policy = _randomize(GoalPolicy(6, low, high, goal_features="polar")).eval()
    summary = export_policy(policy, tmp_path / "polar.onnx", task="basketball", prior="normal")
    assert summary["max_abs_error"] <= 1e-5
    goals = make_task("basketball").sample_goals(50, np.random.default_rng(1)).astype(np.float32)
    got_mean, got_std = OnnxPolicy(tmp_path / "polar.onnx").distribution(goals)
    with torch.no_grad():
        mean, std = policy(torch.from_numpy(goals))
    np.testing.assert_allclose(got_mean, mean.numpy(), atol=1e-5)
    np.testing.assert_allclose(got_std, std.numpy(), atol=1e-5)


def test_std_is_clamped():
    policy = GoalPolicy(2, HOCKEY_LOW, HOCKEY_HIGH)
    with torch.no_grad():
        policy.head.log_std.copy_(torch.tensor([-50.0, 50.0]))
    _, std = policy(torch.tensor([[1.0, 0.0]]))
    assert torch.allclose(std.log(), torch.tensor([[LOG_STD_MIN, LOG_STD_MAX]]))


def test_image_policy_and_value_shapes():
    torch.manual_seed(0)
    policy = ImagePolicy(6, init_std=1.0)
    images = torch.rand(4, 3, 64, 64)
    mean, std = policy(images)
    assert mean.shape == std.shape == (4, 6)
    assert torch.allclose(std, torch.ones_like(std))
    value = ValueFunction(HOCKEY_LOW, HOCKEY_HIGH)
    assert value(torch.rand(7, 2)).shape == (7,)
    rebuilt = make_policy(policy.config())
    assert isinstance(rebuilt, ImagePolicy) and rebuilt.image_size == (64, 64)
    with pytest.raises(ValueError, match="observation"):
        make_policy({"observation": "lidar", "latent_dim": 2})


def test_gaussian_helpers_match_torch_distributions():
    generator = torch.Generator().manual_seed(0)
    mq, mp = torch.randn(5, 3, generator=generator), torch.randn(5, 3, generator=generator)
    sq, sp = torch.rand(5, 3, generator=generator) + 0.2, torch.rand(5, 3, generator=generator) + 0.2
    alpha = torch.randn(5, 3, generator=generator)
    normal_q = torch.distributions.Normal(mq, sq)
    normal_p = torch.distributions.Normal(mp, sp)
    assert torch.allclose(gaussian_log_prob(alpha, mq, sq), normal_q.log_prob(alpha).sum(-1), atol=1e-5)
    kl = torch.distributions.kl_divergence(normal_q, normal_p).sum(-1)
    assert torch.allclose(gaussian_kl(mq, sq, mp, sp), kl, atol=1e-5)
    assert torch.allclose(gaussian_entropy(sq), normal_q.entropy().sum(-1), atol=1e-5)
    assert torch.allclose(gaussian_kl(mq, sq, mq, sq), torch.zeros(5), atol=1e-6)


# ----------------------------------------------------------------------------- ONNX


@pytest.fixture(scope="module")
def goal_onnx(tmp_path_factory):
    torch.manual_seed(0)
    policy = _randomize(GoalPolicy(3, HOCKEY_LOW, HOCKEY_HIGH, state_dependent_std=True)).eval()
    path = tmp_path_factory.mktemp("onnx") / "goal.onnx"
    summary = export_policy(policy, path, task="hockey", prior="normal", decoder_sha256="ab" * 32)
    return policy, path, summary


def test_goal_policy_onnx_equals_torch(goal_onnx):
    policy, path, summary = goal_onnx
    assert summary["max_abs_error"] <= 1e-5 and summary["exporter"] == "dynamo"
    onnx_policy = OnnxPolicy(path, expect_task="hockey", expect_latent_dim=3)
    assert (onnx_policy.task, onnx_policy.observation, onnx_policy.latent_dim, onnx_policy.prior) == (
        "hockey", "goal", 3, "normal")
    assert onnx_policy.decoder_sha256 == "ab" * 32
    assert onnx_policy.metadata["genrl_ros.format"] == FORMAT_NAME
    goals = np.random.default_rng(0).uniform(HOCKEY_LOW, HOCKEY_HIGH, (33, 2)).astype(np.float32)
    with torch.no_grad():
        mean, std = policy(torch.from_numpy(goals))
    got_mean, got_std = onnx_policy.distribution(goals)
    np.testing.assert_allclose(got_mean, mean.numpy(), atol=1e-5)
    np.testing.assert_allclose(got_std, std.numpy(), atol=1e-5)
    assert not np.allclose(got_std, got_std[:1])  # state-dependent std made it through


def test_onnx_policy_act(goal_onnx):
    _, path, _ = goal_onnx
    onnx_policy = OnnxPolicy(path)
    mean, std, sample = onnx_policy.act([1.0, 0.1], deterministic=True, rng=np.random.default_rng(0))
    assert mean.shape == std.shape == sample.shape == (3,)
    np.testing.assert_array_equal(sample, mean)
    mean, std, a = onnx_policy.act(np.array([[1.0, 0.1], [0.7, -0.2]]), False, np.random.default_rng(5))
    _, _, b = onnx_policy.act(np.array([[1.0, 0.1], [0.7, -0.2]]), False, np.random.default_rng(5))
    assert a.shape == (2, 3) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)  # the rng decides the sample
    noise = (a - mean) / std
    assert np.all(np.abs(noise) > 0) and np.all(np.abs(noise) < 6)
    _, _, c = onnx_policy.act([1.0, 0.1], deterministic=False)  # default generator
    assert c.shape == (3,)


def test_onnx_policy_errors(goal_onnx, tmp_path):
    _, path, _ = goal_onnx
    with pytest.raises(FileNotFoundError):
        OnnxPolicy(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not an onnx file")
    with pytest.raises(OnnxPolicyError, match="not a loadable ONNX"):
        OnnxPolicy(junk)
    # an ONNX model without the policy metadata (e.g. some other network)
    plain = tmp_path / "plain.onnx"
    torch.onnx.export(torch.nn.Linear(2, 3), (torch.zeros(1, 2),), str(plain), dynamo=False,
                      input_names=["goal_xy"], output_names=["mean"])
    with pytest.raises(OnnxPolicyError, match="not a genrl_ros latent policy"):
        OnnxPolicy(plain)
    with pytest.raises(OnnxPolicyError, match="task 'hockey', expected 'basketball'"):
        OnnxPolicy(path, expect_task="basketball")
    with pytest.raises(OnnxPolicyError, match="latent_dim 3, expected 6"):
        OnnxPolicy(path, expect_latent_dim=6)
    with pytest.raises(OnnxPolicyError, match="observation 'goal', expected 'image'"):
        OnnxPolicy(path, expect_observation="image")
    onnx_policy = OnnxPolicy(path)
    for bad in ([1.0, 2.0, 3.0], np.zeros((4, 3)), np.zeros((2, 2, 2))):
        with pytest.raises(ValueError, match="goal observation has shape"):
            onnx_policy.act(bad, deterministic=True)
    with pytest.raises(ValueError, match="finite"):
        onnx_policy.act([np.nan, 0.0], deterministic=True)
    with pytest.raises(FileExistsError):
        export_policy(GoalPolicy(3, HOCKEY_LOW, HOCKEY_HIGH), path, task="hockey", prior="normal")


def test_image_policy_onnx(tmp_path):
    torch.manual_seed(0)
    policy = _randomize(ImagePolicy(2, init_std=0.5), seed=3).eval()
    path = tmp_path / "image.onnx"
    summary = export_policy(policy, path, task="basketball", prior="uniform", exporter="torchscript")
    assert summary["max_abs_error"] <= 1e-5
    onnx_policy = OnnxPolicy(path, expect_task="basketball", expect_latent_dim=2,
                             expect_observation="image")
    assert onnx_policy.image_shape == (64, 64) and onnx_policy.decoder_sha256 is None
    images = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    with torch.no_grad():
        mean, std = policy(torch.from_numpy(images_to_input(images)))
    got_mean, got_std, _ = onnx_policy.act(images, deterministic=True)
    np.testing.assert_allclose(got_mean, mean.numpy(), atol=1e-5)
    single = onnx_policy.act(images[0], deterministic=True)[0]
    np.testing.assert_allclose(single, got_mean[0], atol=1e-6)
    # float CHW input in [0, 1] is the same as uint8 HWC
    chw = onnx_policy.act(images_to_input(images), deterministic=True)[0]
    np.testing.assert_allclose(chw, got_mean, atol=1e-6)
    with pytest.raises(ValueError, match="64 x 64"):
        onnx_policy.act(np.zeros((32, 32, 3), np.uint8), deterministic=True)
    with pytest.raises(ValueError, match="RGB"):
        onnx_policy.act(np.zeros((64, 64), np.uint8), deterministic=True)
    with pytest.raises(ValueError, match="uint8"):
        onnx_policy.act(np.zeros((64, 64, 3), np.int32), deterministic=True)


def test_onnx_policy_imports_no_torch(goal_onnx):
    _, path, _ = goal_onnx
    code = (
        "import sys\n"
        "from latent_policy_node.onnx_policy import OnnxPolicy\n"
        f"policy = OnnxPolicy({str(path)!r})\n"
        "policy.act([1.0, 0.0], deterministic=True)\n"
        "print('torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False"
