"""Precision/recall with exact k-NN: equality with prdc and with a float64 brute force,
boundaries, ties, duplicates, chunk/projection invariance, errors, and synthetic generators."""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pytest
import torch
from genrl_ros.metrics.precision_recall import (
    knn_manifold,
    precision_recall,
    precision_recall_from_manifolds,
)
from prdc import compute_prdc


def prdc_pr(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the set sizes
        out = compute_prdc(real, fake, k)
    return float(out["precision"]), float(out["recall"])


def brute_force(real: np.ndarray, fake: np.ndarray, k: int, inclusive: bool = False):
    """float64 direct-difference reference: (precision, recall, real radii^2, fake radii^2)."""
    real = real.reshape(len(real), -1).astype(np.float64)
    fake = fake.reshape(len(fake), -1).astype(np.float64)

    def sq(a, b):
        return ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)

    r_rad = np.sort(sq(real, real), axis=1)[:, k]
    f_rad = np.sort(sq(fake, fake), axis=1)[:, k]
    cross = sq(real, fake)  # (N, M)
    inside = np.less_equal if inclusive else np.less
    precision = inside(cross, r_rad[:, None]).any(axis=0).mean()
    recall = inside(cross, f_rad[None, :]).any(axis=1).mean()
    return precision, recall, r_rad, f_rad


def smooth_walks(n: int, rng: np.random.Generator, horizon: int = 69) -> np.ndarray:
    """(n, horizon, 7) float32 twice-integrated random walks with random offsets."""
    acc = rng.normal(size=(n, horizon, 7)) * 0.01
    offset = rng.uniform(-1, 1, size=(n, 1, 7))
    return (np.cumsum(np.cumsum(acc, 1), 1) + offset).astype(np.float32)


# --------------------------------------------------------------------------- equality


@pytest.mark.parametrize(
    "n_real, n_fake, dim, scale, shift",
    [(20, 30, 2, 1.0, 0.0), (200, 150, 10, 1.3, 0.2), (300, 400, 483, 1.0, 0.05),
     (900, 700, 64, 0.8, 0.0), (500, 500, 40, 1.0, 3.0)],
)  # fmt: skip
def test_equals_prdc_and_brute_force_on_random_data(n_real, n_fake, dim, scale, shift):
    rng = np.random.default_rng(n_real + dim)
    # low-rank part + noise: the projection has something to find
    basis = rng.normal(size=(min(dim, 5), dim))
    real = rng.normal(size=(n_real, min(dim, 5))) @ basis + 0.3 * rng.normal(size=(n_real, dim))
    fake = (rng.normal(size=(n_fake, min(dim, 5))) * scale + shift) @ basis + 0.3 * rng.normal(
        size=(n_fake, dim)
    )
    out = precision_recall(real, fake, 3, chunk_size=37)
    assert (out.precision, out.recall) == prdc_pr(real, fake, 3)
    p, r, r_rad, f_rad = brute_force(real, fake, 3)
    assert (out.precision, out.recall) == (p, r)
    assert (out.n_real, out.n_fake, out.k) == (n_real, n_fake, 3)
    radii = knn_manifold(real, 3, chunk_size=64).radii_sq.numpy()
    np.testing.assert_allclose(radii, r_rad, rtol=1e-12)


@pytest.mark.parametrize("k", [1, 2, 5])
def test_equals_prdc_for_other_k_and_float32_walks(k):
    rng = np.random.default_rng(k)
    real, fake = smooth_walks(400, rng), smooth_walks(300, rng)
    out = precision_recall(real, fake, k)
    p, r, _, _ = brute_force(real, fake, k)
    assert (out.precision, out.recall) == (p, r)
    # prdc on the same values in float64, and on the float32 arrays themselves (then it
    # rounds its distances to float32: equal here, could differ at ties within ~1e-7)
    flat_real, flat_fake = real.reshape(400, -1), fake.reshape(300, -1)
    assert (out.precision, out.recall) == prdc_pr(
        flat_real.astype(np.float64), flat_fake.astype(np.float64), k
    )
    assert (out.precision, out.recall) == prdc_pr(flat_real, flat_fake, k)


def test_ties_and_duplicates_on_an_integer_grid_equal_prdc_exactly():
    # coordinates 0..3 in 4 dimensions: many exactly equal distances and repeated points,
    # all exact in float64, so prdc's arithmetic is exact too
    rng = np.random.default_rng(7)
    real = rng.integers(0, 4, size=(300, 4)).astype(np.float64)
    fake = rng.integers(0, 4, size=(250, 4)).astype(np.float64)
    fake[:40] += 0.5  # some off-grid points
    for k in (1, 3, 6):
        out = precision_recall(real, fake, k, on_duplicates="ignore", projection="none")
        assert (out.precision, out.recall) == prdc_pr(real, fake, k)
        for inclusive in (False, True):
            p, r, _, _ = brute_force(real, fake, k, inclusive=inclusive)
            got = precision_recall(real, fake, k, inclusive=inclusive, on_duplicates="ignore",
                                   projection=2, chunk_size=13)  # fmt: skip
            assert (got.precision, got.recall) == (p, r)


def test_ball_boundary_strict_like_prdc_and_inclusive_like_the_paper():
    real = np.array([[0.0], [1.0], [2.0], [3.0]])  # k = 1: every radius is 1
    fake = np.array([[4.0], [3.5], [10.0], [11.0]])  # 4.0 is exactly on the ball of 3.0
    strict = precision_recall(real, fake, 1)
    assert strict.precision == 0.25  # only 3.5
    assert (strict.precision, strict.recall) == prdc_pr(real, fake, 1)
    inclusive = precision_recall(real, fake, 1, inclusive=True)
    assert inclusive.precision == 0.5 and inclusive.inclusive
    # fake radii (k=1): 4.0 -> 0.5, 3.5 -> 0.5, 10 -> 1, 11 -> 1; real 3.0 is 0.5 from 3.5
    assert strict.recall == 0.0 and inclusive.recall == 0.25


def test_large_offset_and_tiny_spread_decided_exactly():
    # values 1e4 + j/1024: float64 exact, float32 products of the raw values would be
    # useless (float32 spacing at 1e4 is ~1e-3); integer arithmetic gives the truth
    rng = np.random.default_rng(3)
    grid_real = rng.integers(0, 6, size=(400, 30))
    grid_fake = rng.integers(0, 6, size=(300, 30))
    grid_fake[:100, :3] += 1
    real, fake = 1e4 + grid_real / 1024.0, 1e4 + grid_fake / 1024.0
    for inclusive in (False, True):
        p, r, _, _ = brute_force(grid_real.astype(np.float64), grid_fake.astype(np.float64), 3,
                                 inclusive=inclusive)  # fmt: skip
        for projection in ("none", 8, "auto"):
            out = precision_recall(real, fake, 3, inclusive=inclusive, projection=projection,
                                   on_duplicates="ignore")  # fmt: skip
            assert (out.precision, out.recall) == (p, r)


def test_two_far_clusters_defeat_plain_float32_but_not_the_error_bound():
    # centred norms ~1e6 * D, distances inside a cluster ~1e-6 * D: float32 products are off
    # by far more than the distances; a too small error bound (e.g. 2u) fails this test
    rng = np.random.default_rng(0)
    dim = 60
    grid_real, grid_fake = rng.integers(0, 4, size=(600, dim)), rng.integers(0, 4, size=(500, dim))
    grid_fake[:100, :2] += 1
    side_real = np.where(rng.random(600) < 0.5, 1, -1)[:, None]
    side_fake = np.where(rng.random(500) < 0.5, 1, -1)[:, None]
    real, fake = 1000.0 * side_real + grid_real / 1024.0, 1000.0 * side_fake + grid_fake / 1024.0
    truth = brute_force(grid_real + 1024000 * side_real, grid_fake + 1024000 * side_fake, 3)[:2]
    for projection in ("none", 8):
        out = precision_recall(real, fake, 3, projection=projection, on_duplicates="ignore")
        assert (out.precision, out.recall) == truth


@pytest.mark.parametrize("magnitude", [1e-30, 1e-3, 1e25])
def test_tiny_and_huge_magnitudes_are_exact(magnitude):
    # a power of two times small integers: float64 exact at any magnitude; float32 alone would
    # underflow (1e-30^2) or overflow (1e25^2)
    rng = np.random.default_rng(4)
    grid_real = rng.integers(0, 5, size=(1200, 6)).astype(np.float64)  # > 768 rows: grouped
    grid_fake = rng.integers(0, 5, size=(500, 6)).astype(np.float64)  # search of the k+1
    grid_fake[:60] += 0.5
    unit = 2.0 ** round(np.log2(magnitude))
    for inclusive in (False, True):
        p, r, _, _ = brute_force(grid_real, grid_fake, 3, inclusive=inclusive)
        out = precision_recall(grid_real * unit, grid_fake * unit, 3, inclusive=inclusive,
                               on_duplicates="ignore", projection=3)  # fmt: skip
        assert (out.precision, out.recall) == (p, r)


def test_chunk_size_and_projection_do_not_change_anything():
    rng = np.random.default_rng(11)
    real, fake = smooth_walks(300, rng), smooth_walks(250, rng)
    reference = None
    for chunk_size in (1, 7, 64, None):
        for projection in ("none", 4, 16, 64, "auto"):
            if chunk_size == 1 and projection != "auto":
                continue  # slow-ish; one-row blocks once
            out = precision_recall(real, fake, 3, chunk_size=chunk_size, projection=projection)
            radii = knn_manifold(real, 3, chunk_size=chunk_size, projection=projection).radii_sq
            if reference is None:
                reference = (out, radii)
            assert out == reference[0], (chunk_size, projection)
            assert torch.equal(radii, reference[1]), (chunk_size, projection)
    # a small memory budget gives smaller blocks, same numbers
    assert precision_recall(real, fake, 3, memory_budget_mib=0.5) == reference[0]


def test_three_dimensional_input_is_flattened_and_manifolds_can_be_reused():
    rng = np.random.default_rng(5)
    real, fake = smooth_walks(200, rng, 20), smooth_walks(150, rng, 20)
    out = precision_recall(real, fake)
    assert out == precision_recall(real.reshape(200, -1), torch.from_numpy(fake.reshape(150, -1)))
    reused = precision_recall_from_manifolds(
        knn_manifold(real, 3, name="real"), knn_manifold(fake, 3, name="fake")
    )
    assert reused == out


def test_inputs_are_not_modified():
    rng = np.random.default_rng(13)
    for dtype in (np.float64, np.float32):
        real = rng.normal(size=(300, 40)).astype(dtype)
        fake = rng.normal(size=(200, 40)).astype(dtype)
        copies = real.copy(), fake.copy()
        precision_recall(real, fake)
        knn_manifold(torch.from_numpy(real))
        assert np.array_equal(real, copies[0]) and np.array_equal(fake, copies[1])


def test_threads_are_restored_and_results_do_not_depend_on_them():
    rng = np.random.default_rng(6)
    real, fake = smooth_walks(900, rng), smooth_walks(800, rng)
    before = torch.get_num_threads()
    first = precision_recall(real, fake, num_threads=1, chunk_size=50)
    assert torch.get_num_threads() == before
    # two workers take blocks in any order: same numbers
    assert precision_recall(real, fake, num_threads=2, chunk_size=50) == first
    assert precision_recall(real, fake, num_threads=None, chunk_size=50) == first
    one = knn_manifold(real, 3, num_threads=1, chunk_size=50).radii_sq
    assert torch.equal(knn_manifold(real, 3, num_threads=2, chunk_size=50).radii_sq, one)
    with pytest.raises(ValueError, match="num_threads must be a positive integer or None"):
        precision_recall(real, fake, num_threads=0)


# --------------------------------------------------------------------------- duplicates


def test_duplicates_give_radius_zero_like_prdc_with_warning_error_or_silence():
    rng = np.random.default_rng(8)
    real = rng.normal(size=(60, 5))
    real[10:14] = real[10]  # 4 copies: each has 3 exact duplicates -> radius 0 for k = 3
    real[20:23] = real[20]  # 3 copies: only 2 duplicates -> radius > 0
    fake = rng.normal(size=(50, 5))
    fake[0] = real[10]  # a fake sample exactly on the zero-radius points
    with pytest.warns(RuntimeWarning, match=r"4 of 60 real samples have k=3 or more exact"):
        out = precision_recall(real, fake, 3)
    assert out.n_real_zero_radius == 4 and out.n_fake_zero_radius == 0
    assert (out.precision, out.recall) == prdc_pr(real, fake, 3)
    with pytest.raises(ValueError, match=r"4 of 60 real samples .* radius is 0"):
        precision_recall(real, fake, 3, on_duplicates="error")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert precision_recall(real, fake, 3, on_duplicates="ignore") == out
    manifold = knn_manifold(real, 3, on_duplicates="ignore")
    assert manifold.n_zero_radius == 4 and np.all(manifold.radii[10:14] == 0)
    assert np.all(manifold.radii[20:23] > 0)
    # strict: a zero ball holds nothing (fake[0] is counted only through other balls);
    # inclusive: it holds its copies
    strict = precision_recall(real[10:14], real[10:11].repeat(4, 0), 3, on_duplicates="ignore")
    assert (strict.precision, strict.recall) == (0.0, 0.0)
    inclusive = precision_recall(real[10:14], real[10:11].repeat(4, 0), 3, inclusive=True,
                                 on_duplicates="ignore")  # fmt: skip
    assert (inclusive.precision, inclusive.recall) == (1.0, 1.0)


# --------------------------------------------------------------------------- errors


def test_k_must_be_smaller_than_each_set():
    rng = np.random.default_rng(9)
    real, fake = rng.normal(size=(5, 3)), rng.normal(size=(8, 3))
    small_real = r"k=5 must be smaller than the number of real samples \(5\)"
    with pytest.raises(ValueError, match=small_real):
        precision_recall(real, fake, 5)
    with pytest.raises(ValueError, match=r"k=9 must be smaller than the number of real"):
        precision_recall(real, fake, 9)
    small_fake = r"k=8 must be smaller than the number of fake samples \(8\)"
    with pytest.raises(ValueError, match=small_fake):
        precision_recall(rng.normal(size=(20, 3)), fake, 8)
    out = precision_recall(real, fake, 4)  # k = N - 1: radius = farthest other member
    p, r, _, _ = brute_force(real, fake, 4)
    assert (out.precision, out.recall) == (p, r)
    for bad_k in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="k must be a positive integer"):
            precision_recall(real, fake, bad_k)


def test_bad_inputs_raise_clear_errors():
    rng = np.random.default_rng(10)
    real, fake = rng.normal(size=(20, 4)), rng.normal(size=(20, 4))
    bad = real.copy()
    bad[3, 1], bad[7, 0] = np.nan, np.inf
    message = r"real has 2 NaN/inf values in 2 of 20 samples \(first bad sample: index 3\)"
    with pytest.raises(ValueError, match=message):
        precision_recall(bad, fake)
    with pytest.raises(ValueError, match=r"fake has 2 NaN/inf"):
        precision_recall(real, bad)
    with pytest.raises(ValueError, match="real samples have dimension 4 but fake samples have 5"):
        precision_recall(real, rng.normal(size=(20, 5)))
    with pytest.raises(ValueError, match=r"real must have shape \(N, D\)"):
        precision_recall(real[:, 0], fake)
    with pytest.raises(ValueError, match="fake is empty"):
        precision_recall(real, np.zeros((0, 4)))
    with pytest.raises(ValueError, match="on_duplicates"):
        precision_recall(real, fake, on_duplicates="drop")
    with pytest.raises(ValueError, match="projection"):
        precision_recall(real, fake, projection="pca")
    with pytest.raises(ValueError, match="chunk_size"):
        precision_recall(real, fake, chunk_size=0)
    with pytest.raises(ValueError, match="different k"):
        precision_recall_from_manifolds(knn_manifold(real, 3), knn_manifold(fake, 2))


# --------------------------------------------------------------------------- generators


def decode_factors(factors: np.ndarray, horizon: int = 40) -> np.ndarray:
    """(n, 2) factors -> (n, horizon, 7) smooth trajectories (two joints move per factor)."""
    t = np.linspace(0.0, 1.0, horizon)
    out = np.zeros((len(factors), horizon, 7))
    out[:, :, 0] = factors[:, :1] * np.sin(np.pi * t)
    out[:, :, 1] = factors[:, 1:2] * (1 - np.cos(np.pi * t))
    out[:, :, 2] = np.tanh(factors[:, :1] * factors[:, 1:2]) * t
    return out


def test_mode_collapse_has_low_recall_and_off_data_noise_low_precision():
    rng = np.random.default_rng(12)
    real = decode_factors(rng.normal(size=(1000, 2)))
    good = precision_recall(real, decode_factors(rng.normal(size=(1000, 2))))
    assert good.precision > 0.8 and good.recall > 0.8
    modes = rng.normal(size=(5, 2))  # a generator that produces 5 trajectories (+ tiny noise)
    collapsed = decode_factors(modes[rng.integers(0, 5, 1000)] + 1e-3 * rng.normal(size=(1000, 2)))
    low_recall = precision_recall(real, collapsed)
    assert low_recall.recall < 0.05 and low_recall.precision > 0.8
    exact_copies = decode_factors(modes[rng.integers(0, 5, 1000)])  # radius 0 everywhere
    with pytest.warns(RuntimeWarning, match="1000 of 1000 fake samples"):
        assert precision_recall(real, exact_copies).recall == 0.0
    noisy = decode_factors(rng.normal(size=(1000, 2))) + 0.2 * rng.normal(size=(1000, 40, 7))
    low_precision = precision_recall(real, noisy)
    assert low_precision.precision < 0.05


def test_membership_masks_match_brute_force_and_the_fractions():
    rng = np.random.default_rng(7)
    real, fake = rng.normal(size=(120, 12)), rng.normal(size=(90, 12)) * 1.2
    pr = precision_recall(real, fake, k=3, return_membership=True)
    plain = precision_recall(real, fake, k=3)
    assert plain.fake_inside is None and plain.real_inside is None
    assert pr == plain  # the masks do not take part in the comparison
    r_rad = np.sort(((real[:, None] - real[None]) ** 2).sum(-1), axis=1)[:, 3]
    f_rad = np.sort(((fake[:, None] - fake[None]) ** 2).sum(-1), axis=1)[:, 3]
    cross = ((real[:, None] - fake[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(pr.fake_inside, (cross < r_rad[:, None]).any(axis=0))
    np.testing.assert_array_equal(pr.real_inside, (cross < f_rad[None, :]).any(axis=1))
    assert pr.precision == pr.fake_inside.mean() and pr.recall == pr.real_inside.mean()


def test_real_vs_real_ceiling_rows_and_size_check():
    from genrl_ros.metrics.pr_ceiling import real_vs_real

    data = smooth_walks(200, np.random.default_rng(3), horizon=10)
    rows = real_vs_real(data, [20, 100], repeats=2, seed=1)
    assert [(r["n"], r["repeat"]) for r in rows] == [(20, 0), (20, 1), (100, 0), (100, 1)]
    assert all(0.0 <= r["precision"] <= 1.0 and 0.0 <= r["recall"] <= 1.0 for r in rows)
    with pytest.raises(ValueError, match="size 101"):
        real_vs_real(data, [101])


def test_ceiling_falls_with_intrinsic_dimension_and_mle_recovers_it():
    from genrl_ros.metrics.pr_ceiling import intrinsic_dimension_ceiling, mle_intrinsic_dimension

    rows = intrinsic_dimension_ceiling([1, 16], 400, ambient_dim=50, seed=0)
    by = {(r["dim"], r["distribution"]): r for r in rows}
    for distribution in ("uniform", "normal"):
        low, high = by[(1, distribution)], by[(16, distribution)]
        assert low["precision"] > 0.95 and low["recall"] > 0.95
        assert high["precision"] < low["precision"] - 0.05
        assert high["recall"] < low["recall"] - 0.05
    rng = np.random.default_rng(0)
    for dim in (2, 6):
        points = rng.uniform(size=(2000, dim)) @ rng.standard_normal((dim, 40))
        assert abs(mle_intrinsic_dimension(points) - dim) < 0.25 * dim
    with pytest.raises(ValueError, match="duplicate"):
        mle_intrinsic_dimension(np.zeros((20, 3)))
    with pytest.raises(ValueError, match="intrinsic dimensions must be >= 1"):
        intrinsic_dimension_ceiling([0], 50)


def test_shaping_ceiling_many_families_lower_the_ceiling():
    """Perturbations of one demonstration along one joint at a time (7 lines through one
    point) score near 1 real vs real; the same lines around 60 demonstrations score clearly
    lower, because each line then holds only a few points. The gains design scores higher
    than the random windows on the same demonstrations."""
    from genrl_ros.metrics.pr_ceiling import shaping_ceiling
    from sim_bridge.tasks import make_task

    spec = make_task("hockey").trajectory_spec
    rng = np.random.default_rng(0)
    # smooth demonstrations well inside the limits: slow sines from the start pose
    time_s = np.arange(spec.horizon) * spec.control_dt_s
    rate, phase = rng.uniform(0.5, 1.5, (2, 60, 1, 7))
    demos = spec.start_rad + 0.2 * (np.sin(rate * time_s[:, None] + phase) - np.sin(phase))
    lines = {"max_joints": 1, "min_window_fraction": 1.0}
    rows = shaping_ceiling(demos, "hockey", 600, seed=0, variants={
        "one": (1, lines), "many": (None, lines), "windows": (None, {}),
        "gains": (None, {"design": "gains"})})
    one, many, windows, gains = rows
    assert (one["demonstrations"], many["demonstrations"]) == (1, 60)
    assert one["precision"] > 0.95 and one["recall"] > 0.95
    assert many["precision"] < one["precision"] - 0.05
    assert many["recall"] < one["recall"] - 0.05
    # the same 60 demonstrations: one 4-D family each (gains) against hundreds of small
    # ones (1-3 random joints, random windows)
    assert gains["precision"] > windows["precision"] + 0.05
    assert gains["recall"] > windows["recall"] + 0.05
    with pytest.raises(ValueError, match="n must be > k"):
        shaping_ceiling(demos, "hockey", 3)
