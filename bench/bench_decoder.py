"""Latency of one decoder call (batch 1): torch eager vs onnxruntime.

    python bench/bench_decoder.py [--model RUN_OR_PT] [--calls 2000] [--latent-dim 3]

Without ``--model`` a hockey-sized beta-VAE decoder (Table 7, N_alpha 3, T = 69, 7 joints,
random weights: the latency does not depend on their values) is used. It is exported with
``genrl export``'s code to a temporary ONNX file, then, on one thread each, every call is
timed on its own (``time.perf_counter_ns``) and the median over ``--calls`` calls reported for

- ``torch eager``: ``model.decode(alpha)`` under ``torch.inference_mode()`` (eval mode,
  normalisation as separate ops);
- ``onnxruntime session.run``: the raw ``InferenceSession.run`` on a float32 (1, N_alpha) array;
- ``OnnxDecoder.decode``: the project's loader (input checks + ``run``), what the policy node
  calls;

and the same at batch 64 (per call). Target: median <= 0.1 ms per batch-1 call with
onnxruntime. Prints a table and writes ``bench/results/decoder.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from genrl_ros.export_cmd import export_decoder
from genrl_ros.models import BetaVAE, load_generator, save_checkpoint
from genrl_ros.models.onnx_decoder import OnnxDecoder

RESULTS = Path(__file__).resolve().parent / "results" / "decoder.json"
TARGET_MS = 0.1
JOINTS = tuple(f"panda_joint{i}" for i in range(1, 8))


def time_calls(fn, inputs: list, warmup: int = 200) -> dict:
    for x in inputs[:warmup]:
        fn(x)
    samples = np.empty(len(inputs))
    for i, x in enumerate(inputs):
        start = time.perf_counter_ns()
        fn(x)
        samples[i] = time.perf_counter_ns() - start
    ms = samples / 1e6
    return {
        "median_ms": float(statistics.median(ms)),
        "p10_ms": float(np.quantile(ms, 0.1)),
        "p90_ms": float(np.quantile(ms, 0.9)),
        "mean_ms": float(ms.mean()),
        "calls": len(inputs),
    }


def machine() -> dict:
    return {
        "cpu_count": os.cpu_count(),
        "load_average_1min_at_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "processor": platform.processor() or platform.machine(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="run directory or checkpoint (default: random hockey VAE)")
    parser.add_argument("--calls", type=int, default=2000, help="timed calls per row")
    parser.add_argument("--latent-dim", type=int, default=3)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None

    with tempfile.TemporaryDirectory() as tmp:
        if args.model:
            model = load_generator(args.model)
            source = str(args.model)
        else:
            torch.manual_seed(0)
            model = BetaVAE(args.latent_dim, 69, JOINTS, 0.04, "hockey").eval()
            source = f"random hockey-sized VAE (N_alpha {args.latent_dim}, T 69)"
        ckpt = save_checkpoint(Path(tmp) / "model.pt", model)
        summary = export_decoder(ckpt, Path(tmp) / "decoder.onnx")
        decoder = OnnxDecoder(Path(tmp) / "decoder.onnx", threads=1)
        session = decoder._session  # noqa: SLF001 - the raw session for the bare timing
        name_in, name_out = decoder._input, decoder._output  # noqa: SLF001

        rng = np.random.default_rng(0)
        rows = {}
        for batch in (1, 64):
            calls = args.calls if batch == 1 else max(200, args.calls // 4)
            arrays = [rng.standard_normal((batch, model.latent_dim)).astype(np.float32)
                      for _ in range(calls)]
            tensors = [torch.from_numpy(a) for a in arrays]

            def eager(x):
                with torch.inference_mode():
                    return model.decode(x)

            rows[f"torch eager, batch {batch}"] = time_calls(eager, tensors)
            rows[f"onnxruntime session.run, batch {batch}"] = time_calls(
                lambda x: session.run([name_out], {name_in: x}), arrays
            )
            rows[f"OnnxDecoder.decode, batch {batch}"] = time_calls(decoder.decode, arrays)

    ort_ms = rows["OnnxDecoder.decode, batch 1"]["median_ms"]
    report = {
        "machine": {**machine(), "load_average_1min_at_start": load},
        "model": source,
        "onnx": {k: summary[k] for k in ("opset", "max_abs_error_rad", "bytes")},
        "threads": 1,
        "statistic": "median of individually timed calls",
        "rows": rows,
        "target_ms": TARGET_MS,
        "onnxruntime_batch1_meets_target": ort_ms <= TARGET_MS,
        "speedup_onnxruntime_over_torch_batch1": rows["torch eager, batch 1"]["median_ms"] / ort_ms,
    }
    width = max(len(k) for k in rows)
    print(f"decoder latency, {source}; 1 thread; load average {load}", file=sys.stderr)
    print(f"{'call'.ljust(width)} | median ms | p10 ms | p90 ms | calls")
    print(f"{'-' * width} | --------- | ------ | ------ | -----")
    for key, row in rows.items():
        print(f"{key.ljust(width)} | {row['median_ms']:9.4f} | {row['p10_ms']:6.4f} | "
              f"{row['p90_ms']:6.4f} | {row['calls']}")
    print(f"\nonnxruntime batch 1: {ort_ms:.4f} ms (target <= {TARGET_MS} ms: "
          f"{'met' if ort_ms <= TARGET_MS else 'NOT met'}); torch eager / onnxruntime = "
          f"{report['speedup_onnxruntime_over_torch_batch1']:.1f}x")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written {args.output}")
    return report


if __name__ == "__main__":
    main()
