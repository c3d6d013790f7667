"""Time and peak memory of the evaluation measures (precision/recall, DwPR).

    python bench/bench_measures.py [--data DIR] [--quick] [--skip-prdc] [--skip-50k]

Rows (each in a fresh subprocess, so that its peak RSS is its own; 1 and 2 threads):

- ``ours pr 15k``: ``genrl_ros.metrics.precision_recall.precision_recall`` (k = 3) on 15,000
  real vs 15,000 fake trajectories of 69 x 7 = 483 values (smooth random walks, two
  independent draws; or ``--data DIR``: the demonstrations of a ``TrajectoryDataset``,
  shuffled and split in two halves);
- ``prdc pr 15k``: ``prdc.compute_prdc`` on the same float32 arrays (it also computes density
  and coverage: its precision and recall cannot be had alone); ratio = prdc time / ours;
- ``ours pr 50k``: 50,000 vs 50,000 (prdc would need ~10 GB per 50k x 50k float32 distance
  matrix and builds several: not run);
- ``ours dwpr``: DwPR with n = 10,000 per intervention, D = 5, latent dimension 3, generator
  = a Table-7-sized MLP decoder with random weights in eval mode (Lin(3,128)+BN+ReLU,
  Lin(128,256)+BN+ReLU, Lin(256,512)+BN+ReLU, Lin(512,483)), standard normal prior.

"threads" = torch / BLAS threads and the CPUs the subprocess may run on
(``os.sched_setaffinity``): prdc runs sklearn with its own ``n_jobs=8`` but only on those CPUs.
Peak RSS includes the interpreter, torch and the input arrays ("inputs" column: RSS before the
measure starts). Ours is timed ``--repeats`` times (median; the first run is included);
prdc once. Prints a table and writes ``bench/results/measures.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "measures.json"
HORIZON, JOINTS = 69, 7
TIME_LIMIT_S = {"ours": 600, "prdc": 900, "dwpr": 2400}  # per subprocess, by kind


# ---------------------------------------------------------------------- worker side
def smooth_walks(n: int, seed: int):
    """(n, HORIZON * JOINTS) float32: twice-integrated Gaussian steps plus a random offset per
    joint (smooth joint-space trajectories), generated in batches."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = np.empty((n, HORIZON * JOINTS), dtype=np.float32)
    for s in range(0, n, 5000):
        m = min(5000, n - s)
        acc = rng.normal(size=(m, HORIZON, JOINTS)) * 0.01
        walk = np.cumsum(np.cumsum(acc, 1), 1) + rng.uniform(-1, 1, size=(m, 1, JOINTS))
        out[s : s + m] = walk.reshape(m, -1)
    return out


def load_sets(n: int, data: str | None):
    """(real, fake, source): two (n, F) float32 sets."""
    import numpy as np

    if data is None:
        return smooth_walks(n, 1), smooth_walks(n, 2), "smooth random walks"
    from genrl_ros.data.dataset import TrajectoryDataset

    dataset = TrajectoryDataset.load(data)
    traj = dataset.trajectories.reshape(dataset.n_episodes, -1).astype(np.float32)
    traj = traj[np.random.default_rng(0).permutation(len(traj))]
    half = min(n, len(traj) // 2)
    return traj[:half], traj[half : 2 * half], f"{data} ({dataset.task}, {len(traj)} episodes)"


class TableSevenDecoder:
    """Random-weight MLP decoder of the paper's Table 7 size, as a DwPR generator."""

    def __init__(self, latent_dim: int = 3, out_dim: int = HORIZON * JOINTS, seed: int = 0):
        import torch
        from torch import nn

        torch.manual_seed(seed)
        self.latent_dim, self.prior = latent_dim, "normal"
        self.net = nn.Sequential(
            nn.Linear(latent_dim, 128), nn.BatchNorm1d(128), nn.ReLU(),
            nn.Linear(128, 256), nn.BatchNorm1d(256), nn.ReLU(),
            nn.Linear(256, 512), nn.BatchNorm1d(512), nn.ReLU(),
            nn.Linear(512, out_dim),
        ).eval()  # fmt: skip

    def sample_prior(self, n, generator):
        import torch

        return torch.randn(n, self.latent_dim, generator=generator)

    def decode(self, alpha):
        return self.net(alpha).reshape(alpha.shape[0], HORIZON, JOINTS)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def worker(spec: dict) -> dict:
    """Run one measurement in this (fresh) process; returns times, results and peak RSS."""
    threads = spec["threads"]
    import torch

    torch.set_num_threads(threads)
    out: dict = {}
    if spec["kind"] == "dwpr":
        from genrl_ros.metrics.dwpr import dwpr

        generator = TableSevenDecoder()
        inputs_mib = peak_rss_mib()
        t0 = time.perf_counter()
        result = dwpr(generator, n=spec["n"], num_threads=threads, seed=0)
        out["times_s"] = [time.perf_counter() - t0]
        out["result"] = {
            "delta": result.delta.tolist(),
            "precision": result.precision.tolist(),
            "recall": result.recall.tolist(),
            "delta_tilde": result.delta_tilde,
        }
    else:
        real, fake, source = load_sets(spec["n"], spec.get("data"))
        out["source"], out["n_real"], out["n_fake"] = source, len(real), len(fake)
        inputs_mib = peak_rss_mib()
        times = []
        for _ in range(spec["repeats"]):
            t0 = time.perf_counter()
            if spec["kind"] == "prdc":
                import contextlib
                import io

                from prdc import compute_prdc

                with contextlib.redirect_stdout(io.StringIO()):
                    res = compute_prdc(real, fake, 3)
                pr = (float(res["precision"]), float(res["recall"]))
            else:
                from genrl_ros.metrics.precision_recall import precision_recall

                res = precision_recall(real, fake, 3, num_threads=threads)
                pr = (res.precision, res.recall)
            times.append(time.perf_counter() - t0)
        out["times_s"] = times
        out["result"] = {"precision": pr[0], "recall": pr[1]}
    out["inputs_rss_mib"] = inputs_mib
    out["peak_rss_mib"] = peak_rss_mib()
    return out


# ---------------------------------------------------------------------- parent side
def run_child(spec: dict) -> dict:
    """Run ``worker(spec)`` in a fresh interpreter limited to ``spec['threads']`` CPUs."""
    threads = spec["threads"]
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[name] = str(threads)
    cpus = sorted(os.sched_getaffinity(0))[:threads]

    def limit() -> None:
        os.sched_setaffinity(0, cpus)

    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, __file__, "--worker", json.dumps(spec)],
            env=env,
            capture_output=True,
            text=True,
            timeout=TIME_LIMIT_S[spec["kind"]],
            preexec_fn=limit,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish within {TIME_LIMIT_S[spec['kind']]} s"}
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-3:]
        return {"error": f"exit {proc.returncode}: {' | '.join(tail)}"}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_wall_s"] = time.perf_counter() - t0
    return result


def fmt_row(name: str, threads: int, r: dict, ratio: str = "") -> str:
    if "n_real" in r:  # actual sizes (a --data set may be smaller than asked)
        name = f"{name.split(' pr ')[0]} pr {r['n_real']}x{r['n_fake']}"
    if "error" in r:
        return f"{name:<19} {threads:>2}  {r['error']}"
    med = statistics.median(r["times_s"])
    res = r["result"]
    if "delta" in res:
        what = "delta " + ", ".join(f"{d:+.3f}" for d in res["delta"])
    else:
        what = f"P {res['precision']:.4f}  R {res['recall']:.4f}"
    return (
        f"{name:<19} {threads:>2} {med:>9.2f} {r['inputs_rss_mib']:>8.0f} "
        f"{r['peak_rss_mib']:>8.0f} {ratio:>7}  {what}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data", help="TrajectoryDataset directory instead of random walks")
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--repeats", type=int, default=3, help="timings of ours (median)")
    parser.add_argument("--skip-prdc", action="store_true")
    parser.add_argument("--skip-50k", action="store_true")
    parser.add_argument("--skip-dwpr", action="store_true")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return

    n_pr, n_big, n_dwpr = (3000, 10000, 1000) if args.quick else (15000, 50000, 10000)
    load_before = os.getloadavg()
    rows: list[dict] = []
    print(
        f"{'measure':<19} {'th':>2} {'time s':>9} {'inputs':>8} {'peak MiB':>8} {'ratio':>7}"
        "  result"
    )
    for threads in (1, 2):
        common = {"threads": threads, "data": args.data}
        ours = run_child({**common, "kind": "ours", "n": n_pr, "repeats": args.repeats})
        ratio = ""
        if not args.skip_prdc:
            prdc = run_child({**common, "kind": "prdc", "n": n_pr, "repeats": 1})
            if "error" not in prdc and "error" not in ours:
                ratio = f"{prdc['times_s'][0] / statistics.median(ours['times_s']):.1f}x"
            print(fmt_row(f"prdc pr {n_pr // 1000}k", threads, prdc), flush=True)
            rows.append({"measure": "prdc_pr", "n": n_pr, "threads": threads, **prdc})
        print(fmt_row(f"ours pr {n_pr // 1000}k", threads, ours, ratio), flush=True)
        rows.append({"measure": "ours_pr", "n": n_pr, "threads": threads, "ratio": ratio, **ours})
        if not args.skip_50k:
            big = run_child({**common, "kind": "ours", "n": n_big, "repeats": 1})
            print(fmt_row(f"ours pr {n_big // 1000}k", threads, big), flush=True)
            rows.append({"measure": "ours_pr", "n": n_big, "threads": threads, **big})
        if not args.skip_dwpr:
            dw = run_child({"threads": threads, "kind": "dwpr", "n": n_dwpr})
            print(fmt_row(f"ours dwpr n={n_dwpr // 1000}k", threads, dw), flush=True)
            rows.append({"measure": "ours_dwpr", "n": n_dwpr, "latent_dim": 3, **dw,
                         "threads": threads})  # fmt: skip
    import torch

    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "k": 3,
        "dim": HORIZON * JOINTS,
        "rows": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))
    print(f"load average before {load_before}, after {os.getloadavg()} (CPUs: {os.cpu_count()})")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
