"""DwPR: disentangled vs mixed latent spaces, ignored dimensions, intervention values,
determinism, decoder output shapes, and errors."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from genrl_ros.metrics.dwpr import DwPRResult, LatentGenerator, dwpr, intervention_values
from genrl_ros.metrics.precision_recall import precision_recall

HORIZON = 30
# orthogonal 4x4 mixing (a rotation/reflection of the latent space): every output factor
# depends on every latent dimension
HADAMARD = torch.tensor(
    [[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]], dtype=torch.float32
) / 2


class FactorGenerator:
    """Trajectories (n, HORIZON, 7) driven by two factors, the first two components of
    ``mix @ alpha``; the other latent components are ignored."""

    def __init__(self, mix: torch.Tensor | None = None, prior: str = "normal", flat: bool = False):
        self.latent_dim = 4
        self.prior = prior
        self.mix = mix
        self.flat = flat
        t = torch.linspace(0.0, 1.0, HORIZON)
        self.shapes = torch.stack([torch.sin(math.pi * t), 1 - torch.cos(math.pi * t), t])

    def sample_prior(self, n: int, generator: torch.Generator) -> torch.Tensor:
        if self.prior == "normal":
            return torch.randn(n, self.latent_dim, generator=generator)
        return torch.rand(n, self.latent_dim, generator=generator) * 2 - 1

    def decode(self, alpha: torch.Tensor) -> torch.Tensor:
        z = alpha if self.mix is None else alpha @ self.mix.T
        f = torch.tanh(z[:, :2])
        out = torch.zeros(alpha.shape[0], HORIZON, 7)
        out[:, :, 0] = f[:, :1] * self.shapes[0]
        out[:, :, 1] = f[:, 1:2] * self.shapes[1]
        out[:, :, 2] = f[:, :1] * f[:, 1:2] * self.shapes[2]
        return out.reshape(alpha.shape[0], -1) if self.flat else out


def test_intervention_values_are_prior_quantiles():
    np.testing.assert_allclose(
        intervention_values("normal"), [-1.2816, -0.5244, 0.0, 0.5244, 1.2816], atol=1e-4
    )
    np.testing.assert_allclose(intervention_values("uniform"), [-0.8, -0.4, 0.0, 0.4, 0.8])
    np.testing.assert_allclose(intervention_values("uniform", 2), [-0.5, 0.5])
    with pytest.raises(ValueError, match="prior must be 'normal' or 'uniform', got 'laplace'"):
        intervention_values("laplace")


def test_one_factor_per_dimension_scores_far_higher_than_mixed_dimensions():
    assert isinstance(FactorGenerator(), LatentGenerator)
    disentangled = dwpr(FactorGenerator(), n=300)
    mixed = dwpr(FactorGenerator(HADAMARD), n=300)
    # fixing alpha_1 or alpha_2 pins a factor: realistic (precision) but narrow (recall)
    assert disentangled.precision[:2].min() > 0.8 and disentangled.recall[:2].max() < 0.2
    # the ignored dimensions change nothing: T_l is drawn like the reference
    assert np.all(np.abs(disentangled.delta[2:]) < 0.1)
    assert disentangled.delta_1 == disentangled.delta.max()
    assert disentangled.delta_2 == np.sort(disentangled.delta)[-2]
    assert disentangled.delta_tilde == pytest.approx(
        (disentangled.delta_1 + disentangled.delta_2) / 2
    )
    assert disentangled.delta_tilde > 0.6
    # fixing one mixed dimension leaves every factor free: T_l looks like the reference
    assert mixed.delta_tilde < 0.2
    assert disentangled.delta_tilde - mixed.delta_tilde > 0.5
    assert disentangled.n == 300 and disentangled.k == 3 and disentangled.interventions.size == 5


def test_uniform_prior_flat_output_determinism_and_seed():
    first = dwpr(FactorGenerator(prior="uniform"), n=200, seed=3)
    np.testing.assert_allclose(first.interventions, [-0.8, -0.4, 0.0, 0.4, 0.8])
    again = dwpr(FactorGenerator(prior="uniform", flat=True), n=200, seed=3, decode_batch_size=77)
    for name in ("delta", "precision", "recall"):
        assert np.array_equal(getattr(first, name), getattr(again, name))
    other = dwpr(FactorGenerator(prior="uniform"), n=200, seed=4)
    assert not np.array_equal(first.precision, other.precision)
    assert first.delta_tilde > 0.5


def test_paper_argument_order_reference_is_the_real_set():
    # delta(l) = precision(reference, T_l) - recall(reference, T_l): recompute one dimension
    gen = FactorGenerator()
    n, values = 150, intervention_values("normal")
    result = dwpr(gen, n=n, seed=1)
    rng = torch.Generator().manual_seed(1)
    reference = gen.decode(gen.sample_prior(n * 5, rng))
    alpha = torch.cat([gen.sample_prior(n, rng) for _ in values])  # dimension l = 1
    alpha[:, 0] = torch.as_tensor(values, dtype=torch.float32).repeat_interleave(n)
    direct = precision_recall(reference, gen.decode(alpha))
    assert (result.precision[0], result.recall[0]) == (direct.precision, direct.recall)


def test_custom_interventions_and_single_latent_dimension():
    class OneDim(FactorGenerator):
        def __init__(self) -> None:
            super().__init__()
            self.latent_dim = 1

        def decode(self, alpha: torch.Tensor) -> torch.Tensor:
            return super().decode(torch.cat([alpha, alpha.flip(0), alpha, alpha], dim=1))

    # fixing the only dimension fixes the trajectory: T_1 = 2 trajectories x 100 copies
    with pytest.warns(RuntimeWarning, match="200 of 200 T_1 samples have k=3 or more exact"):
        result = dwpr(OneDim(), n=100, interventions=[-1.0, 1.0])
    assert result.recall[0] == 0.0
    assert isinstance(result, DwPRResult)
    assert result.delta.shape == (1,) and result.interventions.tolist() == [-1.0, 1.0]
    assert math.isnan(result.delta_2) and math.isnan(result.delta_tilde)


def test_bad_generators_and_arguments():
    class NoDecode:
        latent_dim, prior = 2, "normal"

        def sample_prior(self, n, generator):
            return torch.randn(n, 2, generator=generator)

    with pytest.raises(TypeError, match="NoDecode has no 'decode'"):
        dwpr(NoDecode(), n=10)

    class WrongShape(FactorGenerator):
        def sample_prior(self, n, generator):
            return torch.randn(n, 3, generator=generator)

    shape_message = r"sample_prior\(50\) returned shape \(50, 3\), expected \(50, 4\)"
    with pytest.raises(ValueError, match=shape_message):
        dwpr(WrongShape(), n=10)
    with pytest.raises(ValueError, match="prior must be 'normal' or 'uniform'"):
        dwpr(FactorGenerator(prior="beta"), n=10)
    with pytest.raises(ValueError, match="n must be a positive integer"):
        dwpr(FactorGenerator(), n=0)
    with pytest.raises(ValueError, match=r"k=10 must be smaller than n \* D = 10"):
        dwpr(FactorGenerator(), n=2, k=10)


def test_collapsed_generator_warns_about_duplicates_but_still_scores():
    class Constant(FactorGenerator):
        def decode(self, alpha: torch.Tensor) -> torch.Tensor:
            return torch.zeros(alpha.shape[0], HORIZON, 7)

    with pytest.warns(RuntimeWarning, match="exact duplicates"):
        result = dwpr(Constant(), n=20)
    assert np.all(result.precision == 0.0) and np.all(result.recall == 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dwpr(Constant(), n=20, on_duplicates="ignore")
