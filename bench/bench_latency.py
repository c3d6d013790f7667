"""Decision latency (batch 1): observation -> policy mean -> decoder -> trajectory (69 x 7),
torch eager vs onnxruntime, for the goal policy and the image policy.

    python bench/bench_latency.py [--policy POLICY_PT] [--image-policy POLICY_PT]
                                  [--model RUN_OR_PT] [--calls 2000]

A *decision* is what the robot side does once per episode: take the observation (goal x, y in
metres, or the 64 x 64 RGB camera image as uint8 (H, W, 3), as ``SceneCamera`` renders it),
run the latent policy, take its mean (deterministic deployment) and decode it into the joint
trajectory (T x 7 radians). Timed paths, one thread each (``torch.set_num_threads(1)``,
onnxruntime ``intra_op_num_threads = 1``):

- ``torch eager``: image -> ``images_to_input`` -> tensor, ``policy(obs)`` and
  ``model.decode(mean)`` under ``torch.inference_mode()``;
- ``onnxruntime``: the project's loaders, what the ROS nodes call: ``OnnxPolicy.act(obs,
  deterministic=True)`` then ``OnnxDecoder.decode(mean)`` (input checks included);
- ``onnxruntime session.run``: the two raw ``InferenceSession.run`` calls only (the floor).

Policies and decoder are trained ones when given (``--policy`` / ``--image-policy``:
``policy.pt`` of ``genrl train-policy``; ``--model``: the VAE checkpoint / run directory they
were trained on), else freshly initialised networks of the same shapes (hockey, N_alpha 3,
goal MLP 64-64, camera CNN 16-32-32 + soft-argmax + 128-128): the latency does not depend on
the weights. Both are exported to ONNX with the project's exporters (policy: torch.export /
dynamo, as ``genrl train-policy``; decoder: ``genrl export``) into a temporary directory. Each
call is timed on its own (``time.perf_counter_ns``) after a warm-up; torch and onnxruntime
calls alternate in blocks of 100 so both see the same background load. Reports median and
p90 per path and the ratio torch / onnxruntime, and checks that the two paths give the same
trajectory (max |difference| in rad). Prints a table and writes ``bench/results/latency.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import onnxruntime as ort
import torch

from genrl_ros.export_cmd import export_decoder
from genrl_ros.models import BetaVAE, load_generator, save_checkpoint
from genrl_ros.models.onnx_decoder import OnnxDecoder
from latent_policy_node.onnx_export import export_policy
from latent_policy_node.onnx_policy import OUTPUT_NAMES, OnnxPolicy, images_to_input
from latent_policy_node.policy import GoalPolicy, ImagePolicy, goal_bounds

RESULTS = Path(__file__).resolve().parent / "results" / "latency.json"
JOINTS = tuple(f"panda_joint{i}" for i in range(1, 8))
TASK = "hockey"
IMAGE_SIZE = 64
BLOCK = 100  # calls per block; the paths alternate block by block


def load_policy_file(path: str) -> torch.nn.Module:
    """A ``policy.pt`` of ``genrl train-policy`` (eval mode)."""
    from genrl_ros.em.trainer import load_policy  # noqa: PLC0415 - imports mujoco

    policy, _ = load_policy(path)
    return policy.eval()


def summarise(samples_ns: list[int]) -> dict[str, float]:
    ms = np.asarray(samples_ns, dtype=np.float64) / 1e6
    return {
        "median_ms": float(np.median(ms)),
        "p90_ms": float(np.quantile(ms, 0.9)),
        "p10_ms": float(np.quantile(ms, 0.1)),
        "mean_ms": float(ms.mean()),
        "calls": int(ms.size),
    }


def time_interleaved(paths: dict[str, Callable[[Any], Any]], inputs: list[Any],
                     warmup: int) -> dict[str, dict[str, float]]:
    """Each path called once per input, timed per call; paths alternate in blocks."""
    for fn in paths.values():
        for x in inputs[:warmup]:
            fn(x)
    samples: dict[str, list[int]] = {name: [] for name in paths}
    for begin in range(0, len(inputs), BLOCK):
        block = inputs[begin:begin + BLOCK]
        for name, fn in paths.items():
            out = samples[name]
            for x in block:
                start = time.perf_counter_ns()
                fn(x)
                out.append(time.perf_counter_ns() - start)
    return {name: summarise(values) for name, values in samples.items()}


def machine() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
    }


def decision_paths(policy: torch.nn.Module, model: torch.nn.Module, policy_onnx: OnnxPolicy,
                   decoder: OnnxDecoder) -> dict[str, Callable[[Any], Any]]:
    """The three timed paths of one policy: observation -> (T, J) trajectory."""
    image = policy.observation == "image"
    session_p, input_p = policy_onnx._session, policy_onnx._input  # noqa: SLF001 - raw floor
    session_d, input_d, output_d = decoder._session, decoder._input, decoder._output  # noqa: SLF001

    def torch_eager(observation: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch.from_numpy(images_to_input(observation) if image else observation[None])
            mean, _ = policy(x)
            return model.decode(mean)[0].numpy()

    def onnxruntime_loaders(observation: np.ndarray) -> np.ndarray:
        mean, _, _ = policy_onnx.act(observation, deterministic=True)
        return decoder.decode(mean)

    def onnxruntime_raw(observation: np.ndarray) -> np.ndarray:
        x = images_to_input(observation) if image else observation[None]
        mean = session_p.run([OUTPUT_NAMES[0]], {input_p: x})[0]
        return session_d.run([output_d], {input_d: mean})[0][0]

    return {
        "torch eager": torch_eager,
        "onnxruntime (OnnxPolicy + OnnxDecoder)": onnxruntime_loaders,
        "onnxruntime session.run": onnxruntime_raw,
    }


def observations(kind: str, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Goals (2,) float32 in the hockey goal box, or uint8 (64, 64, 3) images."""
    if kind == "goal":
        low, high = goal_bounds(TASK)
        return [rng.uniform(low, high).astype(np.float32) for _ in range(n)]
    # random pixels: the CNN's cost does not depend on the image content
    return [rng.integers(0, 256, (IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8) for _ in range(n)]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policy", help="goal policy.pt of genrl train-policy (default: fresh)")
    parser.add_argument("--image-policy", help="image policy.pt (default: fresh)")
    parser.add_argument("--model", help="VAE run directory or checkpoint (default: fresh hockey VAE)")
    parser.add_argument("--calls", type=int, default=2000, help="timed calls per path (>= 1000)")
    parser.add_argument("--warmup", type=int, default=200, help="untimed calls per path first")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.calls < 1000:
        parser.error(f"--calls must be >= 1000, got {args.calls}")
    torch.set_num_threads(1)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None

    torch.manual_seed(0)
    if args.model:
        model = load_generator(args.model)
        model_source = str(args.model)
    else:
        model = BetaVAE(3, 69, JOINTS, 0.04, TASK).eval()
        model_source = "fresh hockey-sized beta-VAE (N_alpha 3, T 69, 7 joints)"
    latent_dim = model.latent_dim
    policies: dict[str, tuple[torch.nn.Module, str]] = {}
    for kind, path in (("goal", args.policy), ("image", args.image_policy)):
        if path:
            policy = load_policy_file(path)
            if policy.observation != kind or policy.latent_dim != latent_dim:
                parser.error(f"{path}: a {policy.observation} policy with latent_dim "
                             f"{policy.latent_dim}; expected {kind} with {latent_dim}")
            policies[kind] = (policy, str(path))
        elif kind == "goal":
            low, high = goal_bounds(TASK)
            policies[kind] = (GoalPolicy(latent_dim, low, high).eval(), "fresh GoalPolicy (64, 64)")
        else:
            policies[kind] = (ImagePolicy(latent_dim, (IMAGE_SIZE, IMAGE_SIZE)).eval(),
                              "fresh ImagePolicy (64 x 64, channels 16/32/32, MLP 128/128)")

    rng = np.random.default_rng(0)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = save_checkpoint(Path(tmp) / "model.pt", model)
        export_decoder(ckpt, Path(tmp) / "decoder.onnx")
        decoder = OnnxDecoder(Path(tmp) / "decoder.onnx", threads=1)
        for kind, (policy, source) in policies.items():
            onnx_path = Path(tmp) / f"{kind}_policy.onnx"
            export_policy(policy, onnx_path, task=TASK, prior=model.prior)
            policy_onnx = OnnxPolicy(onnx_path, threads=1)
            paths = decision_paths(policy, model, policy_onnx, decoder)
            inputs = observations(kind, args.calls, rng)
            agreement = max(
                float(np.max(np.abs(paths["torch eager"](x) - paths["onnxruntime (OnnxPolicy + OnnxDecoder)"](x))))
                for x in inputs[:50]
            )
            rows = time_interleaved(paths, inputs, args.warmup)
            torch_ms = rows["torch eager"]["median_ms"]
            results[kind] = {
                "policy": source,
                "rows": rows,
                "torch_over_onnxruntime": torch_ms / rows["onnxruntime (OnnxPolicy + OnnxDecoder)"]["median_ms"],
                "torch_over_session_run": torch_ms / rows["onnxruntime session.run"]["median_ms"],
                "max_abs_difference_rad": agreement,
                "trajectory_shape": list(paths["torch eager"](inputs[0]).shape),
            }

    report = {
        "machine": {**machine(), "load_average_1min_at_start": load},
        "decoder": model_source,
        "threads": 1,
        "batch": 1,
        "statistic": "per-call times after warm-up; median and p90",
        "decision": "observation -> policy mean -> decoder -> trajectory (T x 7 rad)",
        "results": results,
    }
    print(f"decision latency (batch 1, 1 thread), decoder: {model_source}; load average {load}",
          file=sys.stderr)
    width = max(len(k) for r in results.values() for k in r["rows"])
    print(f"| policy | {'path'.ljust(width)} | median ms | p90 ms | torch / this |")
    print(f"| --- | {'-' * width} | --- | --- | --- |")
    for kind, result in results.items():
        torch_ms = result["rows"]["torch eager"]["median_ms"]
        for name, row in result["rows"].items():
            print(f"| {kind} | {name.ljust(width)} | {row['median_ms']:.4f} | {row['p90_ms']:.4f} | "
                  f"{torch_ms / row['median_ms']:.2f} |")
    for kind, result in results.items():
        print(f"{kind} policy ({result['policy']}): trajectory {tuple(result['trajectory_shape'])}, "
              f"torch vs onnxruntime max |difference| {result['max_abs_difference_rad']:.2e} rad")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written {args.output}")
    return report


if __name__ == "__main__":
    main()
