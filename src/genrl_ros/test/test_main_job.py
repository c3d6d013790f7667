"""``genrl run`` end to end at the ``tiny`` preset: real demonstrations (MuJoCo), a real
beta-VAE, real precision/recall/DwPR/safe fraction and real EM iterations, then the report;
re-running (``--resume`` skips the finished stages) and the refusals."""

from __future__ import annotations

import dataclasses
import json
import re
import time
from pathlib import Path

import pytest

from genrl_ros import cli
from genrl_ros.main_job import JOB_FILE, PRESETS, STAGES, MainJobPreset, preset_for_task


def run(argv: list[str]) -> int:
    try:
        return cli.main(argv)
    except SystemExit as exc:
        return 0 if exc.code is None else exc.code


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("main") / "run"
    argv = ["run", "--preset", "tiny", "--task", "hockey", "--out", str(out), "--json"]
    return out, argv


def test_tiny_run_writes_every_stage_and_the_report(tiny_run, capsys):
    out, argv = tiny_run
    assert run(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    hockey = summary["hockey"]
    assert hockey["episodes"] == PRESETS["tiny"].episodes
    assert hockey["expert_median_distance_m"] < 0.05
    for key in ("precision", "recall", "vae_safe_fraction", "policy_success_rate"):
        assert 0.0 <= hockey[key] <= 1.0, key
    assert 0.0 < hockey["policy_median_distance_m"] < 2.0
    assert hockey["vae_heldout_recon_rmse_rad"] > 0
    assert hockey["policy_training_episodes"] == 2 * 8
    assert set(hockey["stage_seconds"]) == set(STAGES)

    report = (out / "report.md").read_text()
    for heading in ("## hockey", "### 1. Demonstrations", "### 2. Generative model (beta-VAE)",
                    "### 3. Model evaluation", "### 4. EM policy", "### Wall time per stage"):
        assert heading in report, heading
    assert f"{hockey['precision']:.3f}" in report
    assert f"{hockey['policy_median_distance_m']:.4f}" in report
    job = json.loads((out / "hockey" / JOB_FILE).read_text())
    warm = job["stages"]["policy"]["numbers"]["warm_start"]
    if warm is None:  # none of the tiny set's demonstrations ended within 5 mm of its goal
        assert "EM started from the prior (no warm start)" in report
    else:
        assert f"fitted to the {warm['pairs']} demonstrations that ended within 0.005 m" in report
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report)
    assert {Path(link).name for link in links} == {
        "coverage.png", "losses.png", "trajectories.png", "curve.png"
    }
    for link in links:  # relative to the report, and real PNGs
        assert not Path(link).is_absolute()
        assert (out / link).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", link
    assert list(job["stages"]) == list(STAGES)
    assert (out / "hockey" / "policy" / "policy.pt").is_file()
    assert (out / "hockey" / "model" / "last.pt").is_file()


def test_rerun_needs_resume_and_resume_skips_finished_stages(tiny_run, capsys):
    out, argv = tiny_run
    if not (out / "report.md").is_file():
        pytest.skip("needs the tiny run of the previous test")
    capsys.readouterr()
    assert run(argv) == 2
    assert "pass --resume" in capsys.readouterr().err

    before = json.loads((out / "summary.json").read_text())
    started = time.perf_counter()
    assert run([*argv, "--resume"]) == 0
    assert time.perf_counter() - started < 10  # nothing is recomputed
    captured = capsys.readouterr()
    assert captured.err.count("skipped") == len(STAGES)
    assert json.loads((out / "summary.json").read_text()) == before

    # other settings: refused, named
    assert run([*argv, "--resume", "--seed", "1"]) == 2
    err = capsys.readouterr().err
    assert "other settings" in err and "seed 0 -> 1" in err
    assert run([*argv, "--resume", "--overwrite"]) == 2


def test_an_interrupted_stage_is_redone_on_resume(tiny_run, capsys):
    out, argv = tiny_run
    if not (out / "report.md").is_file():
        pytest.skip("needs the tiny run of the first test")
    job_path = out / "hockey" / JOB_FILE
    job = json.loads(job_path.read_text())
    policy = job["stages"].pop("policy")
    job_path.write_text(json.dumps(job))  # as if killed during the policy stage
    assert run([*argv, "--resume"]) == 0
    err = capsys.readouterr().err
    assert err.count("skipped") == 3 and "stage 4/4 policy: done" in err
    again = json.loads(job_path.read_text())["stages"]["policy"]["numbers"]
    # the policy run's last.pt is complete: train_em resumes it and only re-evaluates
    assert again["median_distance_m"] == pytest.approx(policy["numbers"]["median_distance_m"])


def test_refuses_a_directory_that_is_not_a_run(tmp_path, capsys):
    (tmp_path / "hockey").mkdir()
    (tmp_path / "hockey" / "notes.txt").write_text("mine")
    for extra in ([], ["--overwrite"], ["--resume"]):
        assert run(["run", "--preset", "tiny", "--out", str(tmp_path), *extra]) == 2
        assert "not a main-job run" in capsys.readouterr().err
    assert (tmp_path / "hockey" / "notes.txt").read_text() == "mine"


def test_presets_match_the_cli_and_validate():
    assert set(PRESETS) == set(cli.PRESET_EPISODES)
    for name, preset in PRESETS.items():
        assert preset.episodes == cli.PRESET_EPISODES[name]
    with pytest.raises(ValueError, match="preset epochs must be a positive integer"):
        dataclasses.replace(PRESETS["tiny"], epochs=0)
    with pytest.raises(ValueError, match="generator_file"):
        MainJobPreset(episodes=10, expert_goals=2, demonstrations=2, generator_file="x.pt")
    with pytest.raises(ValueError, match="preset lr must be > 0"):
        dataclasses.replace(PRESETS["tiny"], lr=0.0)
    # basketball's small run trains its VAE and policy as the README's basketball section does
    small = PRESETS["small"]
    assert preset_for_task("hockey", "small", small) == small
    basketball = preset_for_task("basketball", "small", small)
    assert (basketball.latent_dim, basketball.lr, basketball.epochs) == (6, 1e-3, 400)
    assert basketball.episodes_per_iteration == 256 and basketball.episodes == small.episodes
    assert preset_for_task("basketball", "tiny", PRESETS["tiny"]) == PRESETS["tiny"]
    run_help = cli._subparsers_by_name(cli.build_parser())["run"].format_help()
    assert "{small,paper}" in run_help and "tiny" not in run_help
