"""The ``genrl`` command: the embedded mode of genrl_ros (no ROS installation needed).

Every subcommand shares these options:

``--json``
    print a one-line JSON summary as the last line of stdout (human output and progress go
    to stderr or come before it); without it a human summary is printed instead.
``--threads N``
    CPU threads for torch (``torch.set_num_threads``), the OpenMP/MKL libraries
    (``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``) and the simulator's executor (passed on as
    ``args.threads``). Default 1. numpy's OpenBLAS always gets one thread
    (``OPENBLAS_NUM_THREADS=1``), so that a command's results do not depend on ``--threads``
    through it.
``--config FILE``
    a ROS 2 parameter file (``node_name: ros__parameters: {...}``, the same files the launch
    files read); the parameters of the subcommand's node become the defaults of its options
    (``expert_goals: 500`` sets ``--expert-goals``), and options given on the command line win.
``--config-node NAME``
    read another node section of the ``--config`` file than the subcommand's own.
``--debug``
    show the full traceback of an error instead of a one-line message.

Errors of the implementations (``ValueError``, ``FileNotFoundError``, ``FileExistsError``) are
reported as ``genrl <cmd>: error: <message>`` on stderr with exit code 2.

Each subcommand is registered by one ``_add_<name>`` function and imports its implementation
only when it runs, so ``genrl --help`` imports neither torch nor mujoco.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from genrl_ros import __version__

PROG = "genrl"

THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
#: numpy's OpenBLAS always runs on one thread: with two, the hockey expert's batched IK
#: differed in the last digits, which the contacts amplified (demonstrations of `genrl demos
#: --threads 1` and `2` up to 4 mrad apart); its matrices are small, so nothing is lost
NUMPY_BLAS_ENV_VARS = ("OPENBLAS_NUM_THREADS",)

TASKS = ("hockey", "basketball")
#: demonstration episodes of each `genrl run` preset (the same as genrl_ros.main_job.PRESETS;
#: "tiny" is for the tests and not shown in --help)
PRESET_EPISODES = {"small": 2000, "paper": 40000, "tiny": 60}
#: subcommands whose implementation uses torch (its thread count is set before they run)
TORCH_COMMANDS = ("run", "train-model", "export", "eval-model", "zoo", "train-policy",
                  "study", "compare")

# Exceptions of the implementations that are the user's to fix: reported in one line, exit 2.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, FileExistsError)
EXIT_USAGE = 2

Handler = Callable[[argparse.Namespace], dict]


class CliError(Exception):
    """An error in the command line or its config file, reported as a usage error (exit 2)."""


# --------------------------------------------------------------------------- option types


def positive_int(value: Any) -> int:
    """argparse type (also applied to values from a config file): an integer >= 1."""
    number = _integer(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value!r}")
    return number


def non_negative_int(value: Any) -> int:
    """argparse type (also applied to values from a config file): an integer >= 0."""
    number = _integer(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {value!r}")
    return number


def integer(value: Any) -> int:
    """argparse type (also applied to values from a config file): any integer."""
    return _integer(value)


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        raise argparse.ArgumentTypeError(f"must be an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    try:
        return int(str(value).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {value!r}") from None


def path_str(value: Any) -> str:
    """argparse type: a non-empty path, kept as a string."""
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        raise argparse.ArgumentTypeError(f"must be a path, got {value!r}")
    return str(value)


# --------------------------------------------------------------------------- JSON output


def _jsonable(value: Any) -> Any:
    """Plain JSON values: numpy scalars/arrays, paths and sets converted; NaN/inf -> null."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "tolist"):  # numpy arrays and scalars, torch tensors
        return _jsonable(value.tolist())
    if hasattr(value, "item"):
        return _jsonable(value.item())
    return str(value)


def emit_json(summary: dict, file: Any = None) -> None:
    """Print ``summary`` as one line of JSON (the ``--json`` contract), flushed."""
    stream = sys.stdout if file is None else file
    line = json.dumps(_jsonable(summary), sort_keys=True, allow_nan=False, separators=(",", ":"))
    stream.write(line + "\n")
    stream.flush()


def _emit_human(summary: dict, file: Any) -> None:
    for key, value in summary.items():
        shown = json.dumps(_jsonable(value)) if isinstance(value, (dict, list, tuple)) else value
        print(f"{key}: {shown}", file=file)
    file.flush()


# --------------------------------------------------------------------------- threads


def apply_threads(threads: int, import_torch: bool = False) -> None:
    """Limit CPU threads: OpenMP/MKL env vars and torch if loaded (or ``import_torch``) to
    ``threads``; numpy's OpenBLAS to one (:data:`NUMPY_BLAS_ENV_VARS`). Must run before
    numpy is imported to take effect."""
    for name in THREAD_ENV_VARS:
        os.environ[name] = str(threads)
    for name in NUMPY_BLAS_ENV_VARS:
        os.environ[name] = "1"
    torch = sys.modules.get("torch")
    if torch is None and import_torch:
        import importlib.util  # noqa: PLC0415

        if importlib.util.find_spec("torch") is not None:
            import torch  # noqa: PLC0415
    if torch is not None:
        torch.set_num_threads(threads)


# --------------------------------------------------------------------------- subcommands


def _common_options(parser: argparse.ArgumentParser, node: str) -> None:
    group = parser.add_argument_group("common options")
    group.add_argument(
        "--json",
        action="store_true",
        help="print a one-line JSON summary as the last line of stdout",
    )
    group.add_argument(
        "--threads",
        type=positive_int,
        default=1,
        metavar="N",
        help="CPU threads for torch, OpenMP/MKL and the simulator (numpy's OpenBLAS: always "
        "1) (default: %(default)s)",
    )
    group.add_argument(
        "--config",
        type=path_str,
        metavar="FILE",
        help=f"ROS 2 parameter file whose '{node}: ros__parameters:' values become the "
        "defaults of this command's options (the command line wins)",
    )
    group.add_argument(
        "--config-node",
        default=node,
        metavar="NAME",
        help="node section of --config to read (default: %(default)s)",
    )
    group.add_argument(
        "--debug", action="store_true", help="show the full traceback of an error"
    )


def _subparser(
    subparsers: Any, name: str, handler: Handler, help_text: str, description: str
) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        name,
        help=help_text,
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(handler=handler, command=name, _required=[])
    return parser


def _require(parser: argparse.ArgumentParser, *dests: str) -> None:
    """Options required unless a --config file provides them (checked after merging)."""
    parser.set_defaults(_required=list(dests))


# genrl demos ---------------------------------------------------------------------------


def _run_demos(args: argparse.Namespace) -> dict:
    from genrl_ros.demos_cmd import run_demos  # noqa: PLC0415 - lazy: imports mujoco

    return run_demos(args)


def _add_demos(subparsers: Any) -> None:
    parser = _subparser(
        subparsers,
        "demos",
        _run_demos,
        "generate scripted demonstrations of a task",
        "Generate scripted expert demonstrations of a task in simulation, perturb them, and\n"
        "write the trajectory dataset (and optionally a rosbag2 copy).",
    )
    parser.add_argument("--task", choices=TASKS, help="task to demonstrate (required)")
    parser.add_argument(
        "--episodes",
        type=positive_int,
        default=1000,
        metavar="N",
        help="number of demonstration episodes in the dataset (default: %(default)s)",
    )
    parser.add_argument(
        "--out", type=path_str, metavar="DIR", help="output dataset directory (required)"
    )
    parser.add_argument(
        "--seed", type=integer, default=0, metavar="S", help="random seed (default: %(default)s)"
    )
    parser.add_argument(
        "--bag", type=path_str, metavar="PATH", help="also write the dataset as a rosbag2 here"
    )
    parser.add_argument(
        "--expert-goals",
        type=positive_int,
        default=500,
        metavar="N",
        help="goals on which the unperturbed expert is evaluated (default: %(default)s)",
    )
    parser.add_argument(
        "--demonstrations",
        type=positive_int,
        default=200,
        metavar="N",
        help="solved expert demonstrations that get perturbed (default: %(default)s)",
    )
    parser.add_argument(
        "--keep-unsafe",
        action="store_true",
        help="also keep perturbed episodes with unsafe contacts or outside the task's "
        "demonstration margin (flagged in the dataset; default: keep only usable ones)",
    )
    parser.add_argument(
        "--shaping",
        choices=("windows", "gains"),
        default="windows",
        help="expert trajectory shaping: 'windows' adds bumps over random windows to 1-3 "
        "random joints; 'gains' scales the velocities of joints 1, 2, 4, 6 by random "
        "factors (a higher precision/recall ceiling; default: %(default)s)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing dataset / bag"
    )
    _require(parser, "task", "out")
    _common_options(parser, "genrl_demos")


# genrl run -----------------------------------------------------------------------------


def _run_main_job(args: argparse.Namespace) -> dict:
    from genrl_ros.main_job import run_main_job  # noqa: PLC0415 - lazy: torch, mujoco

    return run_main_job(args)


def _add_run(subparsers: Any) -> None:
    parser = _subparser(
        subparsers,
        "run",
        _run_main_job,
        "run the main job (demonstrations, VAE, its evaluation, EM policy, report)",
        "Run the whole embedded pipeline of a task: demonstrations -> beta-VAE ->\n"
        "precision/recall/DwPR/safe fraction -> EM policy search -> evaluation on held-out\n"
        "goals, and write OUT/report.md (numbers, figures, wall time per stage) and\n"
        "OUT/summary.json; each stage in OUT/<task>/{demos,model,eval,policy}. The 'small'\n"
        "preset takes minutes on 2 cores; 'paper' uses the paper's sizes (40000\n"
        "demonstrations, 5000 VAE epochs, precision/recall n 15000, DwPR n 10000, 100 EM\n"
        "iterations: many hours). The sizes are genrl_ros.main_job.PRESETS, with a task's\n"
        "changes (TASK_PRESET_CHANGES: basketball's small run uses N_alpha 6, lr 1e-3, 400\n"
        "epochs and 256 EM episodes per iteration). --threads goes to the simulator; torch\n"
        "runs on one thread (small networks). --resume skips the finished stages of a run\n"
        "with the same settings.",
    )
    parser.add_argument(
        "--task",
        choices=(*TASKS, "both"),
        default="hockey",
        help="task(s) to run (default: %(default)s)",
    )
    parser.add_argument(
        "--out",
        type=path_str,
        default="runs/main",
        metavar="DIR",
        help="output directory (default: %(default)s)",
    )
    parser.add_argument(
        "--episodes",
        type=positive_int,
        default=None,
        metavar="N",
        help="demonstration episodes (default: 2000 with --preset small, 40000 with --preset paper)",
    )
    parser.add_argument(
        "--preset",
        choices=tuple(PRESET_EPISODES),
        default="small",
        metavar="{small,paper}",
        help="size of the experiment (default: %(default)s)",
    )
    parser.add_argument(
        "--resume", action="store_true",
        help="continue a run in --out with the same settings: finished stages are skipped, "
        "an interrupted model or policy training continues from its last.pt",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing run in --out",
    )
    parser.add_argument(
        "--seed", type=integer, default=0, metavar="S", help="random seed (default: %(default)s)"
    )
    _common_options(parser, "genrl_run")


# genrl import-bag / export-bag ---------------------------------------------------------


def _dataset_summary(dataset: Any) -> dict:
    summary: dict[str, Any] = {}
    for name in ("task", "n_episodes", "horizon"):
        value = getattr(dataset, name, None)
        if value is not None:
            summary[name] = value
    return summary


def _run_import_bag(args: argparse.Namespace) -> dict:
    bag = Path(args.bag)
    if not bag.exists():
        raise FileNotFoundError(f"no rosbag2 at {bag}")
    from genrl_ros.data.rosbag_io import import_bag  # noqa: PLC0415 - lazy: imports rosbags

    dataset = import_bag(bag)
    saved = dataset.save(args.out, overwrite=args.overwrite)
    return {"bag": str(bag), "out": str(saved or args.out), **_dataset_summary(dataset)}


def _add_import_bag(subparsers: Any) -> None:
    parser = _subparser(
        subparsers,
        "import-bag",
        _run_import_bag,
        "convert a rosbag2 of demonstrations into a trajectory dataset",
        "Read a rosbag2 recorded by 'genrl demos --bag' or the record_demos launch file and\n"
        "save it as a trajectory dataset directory.",
    )
    parser.add_argument("--bag", type=path_str, metavar="PATH", help="rosbag2 directory (required)")
    parser.add_argument(
        "--out", type=path_str, metavar="DIR", help="output dataset directory (required)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing dataset at --out"
    )
    _require(parser, "bag", "out")
    _common_options(parser, "genrl_import_bag")


def _run_export_bag(args: argparse.Namespace) -> dict:
    data = Path(args.data)
    if not data.exists():
        raise FileNotFoundError(f"no dataset at {data}")
    from genrl_ros.data.dataset import TrajectoryDataset  # noqa: PLC0415
    from genrl_ros.data.rosbag_io import export_bag  # noqa: PLC0415 - lazy: imports rosbags

    dataset = TrajectoryDataset.load(data)
    result = export_bag(dataset, args.bag, overwrite=args.overwrite)
    summary = {"data": str(data), "bag": str(args.bag), **_dataset_summary(dataset)}
    if isinstance(result, dict):
        summary.update({k: v for k, v in result.items() if k not in summary})
    return summary


def _add_export_bag(subparsers: Any) -> None:
    parser = _subparser(
        subparsers,
        "export-bag",
        _run_export_bag,
        "write a trajectory dataset as a rosbag2",
        "Write a trajectory dataset directory as a rosbag2 (MCAP) that 'ros2 bag play' can\n"
        "replay; demonstrations go to /demo/commanded_trajectory, never to a controller.",
    )
    parser.add_argument(
        "--data", type=path_str, metavar="DIR", help="trajectory dataset directory (required)"
    )
    parser.add_argument("--bag", type=path_str, metavar="PATH", help="output rosbag2 (required)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing bag")
    _require(parser, "data", "bag")
    _common_options(parser, "genrl_export_bag")


# genrl train-model / export / eval-model / zoo ----------------------------------------


def non_negative_float(value: Any) -> float:
    """argparse type (also applied to values from a config file): a finite number >= 0."""
    number = _float(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {value!r}")
    return number


def positive_float(value: Any) -> float:
    """argparse type (also applied to values from a config file): a finite number > 0."""
    number = _float(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {value!r}")
    return number


def fraction(value: Any) -> float:
    """argparse type: a number in [0, 1)."""
    number = _float(value)
    if not 0.0 <= number < 1.0:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1), got {value!r}")
    return number


def _float(value: Any) -> float:
    if isinstance(value, bool):
        raise argparse.ArgumentTypeError(f"must be a number, got {value!r}")
    try:
        number = float(str(value).strip()) if not isinstance(value, (int, float)) else float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {value!r}")
    return number


def _run_train_model(args: argparse.Namespace) -> dict:
    from genrl_ros.train_model import run_train_model  # noqa: PLC0415 - lazy: imports torch

    return run_train_model(args)


def _add_train_model(subparsers: Any) -> None:
    parser = _subparser(
        subparsers,
        "train-model",
        _run_train_model,
        "train a beta-VAE or InfoGAN trajectory generator on a dataset",
        "Train a generative model of joint trajectories (beta-VAE or InfoGAN, the\n"
        "architectures of the paper's Tables 7 and 8) on the safe episodes of a dataset.\n"
        "Writes RUN/losses.csv, RUN/tb/ (TensorBoard), RUN/last.pt (every epoch, atomic),\n"
        "RUN/best.pt (epoch with the smallest squared error between 100 generated and the\n"
        "held-out trajectories, nearest neighbours both ways, Appendix B) and\n"
        "RUN/summary.json.",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", type=path_str, metavar="DIR", help="trajectory dataset directory")
    source.add_argument("--bag", type=path_str, metavar="PATH", help="rosbag2 of demonstrations (instead of --data)")
    parser.add_argument("--kind", choices=("vae", "infogan"), help="model kind (required)")
    parser.add_argument(
        "--latent-dim", type=positive_int, metavar="K", help="latent size N_alpha (required)"
    )
    hyper = parser.add_mutually_exclusive_group()
    hyper.add_argument(
        "--beta", type=non_negative_float, metavar="B",
        help="VAE: weight of the KL term (default 0.001)",
    )
    hyper.add_argument(
        "--lambda", dest="lam", type=non_negative_float, metavar="L",
        help="InfoGAN: weight of the information term (default 1.0)",
    )
    parser.add_argument(
        "--recon", choices=("mse", "sse"), default="mse",
        help="VAE reconstruction term: mean (mse) or sum (sse) of the squared errors of the "
        "normalised trajectory; the paper's beta values fit the mean (default: %(default)s)",
    )
    parser.add_argument("--epochs", type=positive_int, metavar="E", help="epochs (required)")
    parser.add_argument("--out", type=path_str, metavar="RUN", help="run directory (required)")
    parser.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its last.pt"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing run directory at --out"
    )
    parser.add_argument(
        "--batch-size", type=positive_int, default=256, metavar="N",
        help="batch size (default: %(default)s)",
    )
    parser.add_argument(
        "--lr", type=positive_float, default=2e-4, metavar="LR",
        help="Adam learning rate (default: %(default)s)",
    )
    parser.add_argument(
        "--lr-final", type=positive_float, default=None, metavar="LR",
        help="cosine decay of the learning rate from --lr to LR over the epochs "
        "(ours; default: the paper's fixed learning rate)",
    )
    parser.add_argument(
        "--seed", type=integer, default=0, metavar="S", help="random seed (default: %(default)s)"
    )
    parser.add_argument(
        "--holdout", type=fraction, default=0.1, metavar="F",
        help="held-out fraction of the safe episodes (default: %(default)s)",
    )
    parser.add_argument(
        "--include-unsafe", action="store_true",
        help="also train on unsafe episodes (default: safe episodes only)",
    )
    parser.add_argument(
        "--selection-samples", type=positive_int, default=100, metavar="N",
        help="generated trajectories compared with the held-out ones after every epoch to "
        "select best.pt (default: %(default)s, Appendix B)",
    )
    parser.add_argument(
        "--checkpoint-every", type=positive_int, default=1, metavar="N",
        help="write last.pt every N epochs (default: %(default)s)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    _require(parser, "kind", "latent_dim", "epochs", "out")
    _common_options(parser, "genrl_train_model")


def _run_export(args: argparse.Namespace) -> dict:
    from genrl_ros.export_cmd import run_export  # noqa: PLC0415 - lazy: imports torch, onnx

    return run_export(args)


def _add_export(subparsers: Any) -> None:
    parser = _subparser(
        subparsers,
        "export",
        _run_export,
        "export a trained decoder to ONNX",
        "Export the decoder of a trained model (run directory or checkpoint) to ONNX:\n"
        "input alpha (batch, latent_dim), output trajectory (batch, T, 7) in radians (the\n"
        "normalisation folded in), dynamic batch axis, metadata (task, horizon, joints,\n"
        "latent_dim, prior, model hash). Checks onnxruntime against torch (max error\n"
        "<= 1e-4 rad) before writing --out.",
    )
    parser.add_argument(
        "--model", type=path_str, metavar="RUN", help="run directory or .pt checkpoint (required)"
    )
    parser.add_argument("--out", type=path_str, metavar="FILE", help="output .onnx file (required)")
    parser.add_argument(
        "--opset", type=positive_int, default=18, metavar="N",
        help="ONNX opset (default: %(default)s)",
    )
    parser.add_argument(
        "--seed", type=integer, default=0, metavar="S",
        help="seed of the latents of the torch/onnxruntime check (default: %(default)s)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    _require(parser, "model", "out")
    _common_options(parser, "genrl_export")


def _run_eval_model(args: argparse.Namespace) -> dict:
    from genrl_ros.eval_model import run_eval_model  # noqa: PLC0415 - lazy: torch, mujoco

    return run_eval_model(args)


def _add_eval_model(subparsers: Any) -> None:
    parser = _subparser(
        subparsers,
        "eval-model",
        _run_eval_model,
        "precision, recall, DwPR and safe fraction of a trained model",
        "Evaluate a trained generator against a dataset: precision and recall (k=3) of\n"
        "prior samples vs the dataset's safe trajectories (equal set sizes), DwPR\n"
        "(delta per latent dimension, delta_1, delta_2, delta_tilde) and the fraction of\n"
        "prior samples that execute safely in the simulator. Writes eval.json and eval.md.",
    )
    parser.add_argument(
        "--model", type=path_str, metavar="RUN", help="run directory or .pt checkpoint (required)"
    )
    parser.add_argument("--data", type=path_str, metavar="DIR", help="trajectory dataset (required)")
    parser.add_argument(
        "--n-samples", type=positive_int, default=15000, metavar="N",
        help="generated and real trajectories for precision/recall (capped at the number of "
        "safe trajectories; default: %(default)s, the paper's protocol)",
    )
    parser.add_argument(
        "--dwpr-n", type=positive_int, default=1000, metavar="n",
        help="prior samples per intervention for DwPR (default: %(default)s; paper: 10000)",
    )
    parser.add_argument(
        "--n-safety", type=non_negative_int, default=1000, metavar="N",
        help="prior samples executed in the simulator for the safe fraction (0: skip; "
        "default: %(default)s)",
    )
    parser.add_argument(
        "--seed", type=integer, default=0, metavar="S", help="random seed (default: %(default)s)"
    )
    parser.add_argument(
        "--out", type=path_str, metavar="DIR", help="output directory (default: RUN/eval)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    _require(parser, "model", "data")
    _common_options(parser, "genrl_eval_model")


def _run_zoo(args: argparse.Namespace) -> dict:
    from genrl_ros.zoo import run_zoo  # noqa: PLC0415 - lazy: imports torch, mujoco

    return run_zoo(args)


def _csv_list(kind: Callable[[Any], Any]) -> Callable[[Any], list]:
    def parse(value: Any) -> list:
        items = value if isinstance(value, list) else str(value).split(",")
        items = [item for item in (str(i).strip() for i in items) if item]
        if not items:
            raise argparse.ArgumentTypeError(f"must be a comma-separated list, got {value!r}")
        return [kind(item) for item in items]

    return parse


def _model_kind(value: Any) -> str:
    if value not in ("vae", "infogan"):
        raise argparse.ArgumentTypeError(f"must be vae or infogan, got {value!r}")
    return str(value)


def _add_zoo(subparsers: Any) -> None:
    parser = _subparser(
        subparsers,
        "zoo",
        _run_zoo,
        "train and evaluate the paper's model zoo (VAE1-9, GAN1-9)",
        "Train VAE1-9 (N_alpha 2/3/6 x beta 0.01/0.005/0.001) and GAN1-9 (N_alpha 2/3/6 x\n"
        "lambda 0.1/1.5/3.5), named as in the paper's Table 1, evaluate each like\n"
        "'genrl eval-model', and write the table of Tables 4/5 (zoo.md/json/csv), the\n"
        "precision-recall and delta_1-delta_tilde scatter plots and test-vs-generated\n"
        "trajectory plots. Resumable: complete models are skipped.",
    )
    parser.add_argument("--task", choices=TASKS, help="task of the dataset (required)")
    parser.add_argument("--data", type=path_str, metavar="DIR", help="trajectory dataset (required)")
    parser.add_argument("--out", type=path_str, metavar="DIR", help="zoo directory (required)")
    parser.add_argument(
        "--epochs", type=positive_int, default=300, metavar="E",
        help="epochs per model (default: %(default)s; paper: 5000)",
    )
    parser.add_argument(
        "--kinds", type=_csv_list(_model_kind), default=["vae", "infogan"], metavar="K,..",
        help="model kinds (default: vae,infogan)",
    )
    parser.add_argument(
        "--latent-dims", type=_csv_list(positive_int), default=[2, 3, 6], metavar="N,..",
        help="latent sizes among 2,3,6 (default: 2,3,6)",
    )
    parser.add_argument(
        "--n-samples", type=positive_int, default=5000, metavar="N",
        help="precision/recall set size (default: %(default)s)",
    )
    parser.add_argument(
        "--dwpr-n", type=positive_int, default=1000, metavar="n",
        help="DwPR samples per intervention (default: %(default)s)",
    )
    parser.add_argument(
        "--n-safety", type=non_negative_int, default=500, metavar="N",
        help="simulated prior samples per model for the safe fraction (default: %(default)s)",
    )
    parser.add_argument(
        "--batch-size", type=positive_int, default=256, metavar="N",
        help="batch size (default: %(default)s)",
    )
    parser.add_argument(
        "--seed", type=integer, default=0, metavar="S", help="random seed (default: %(default)s)"
    )
    parser.add_argument(
        "--resume", action="store_true",
        help="continue a zoo in a non-empty --out (complete models are skipped)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    _require(parser, "task", "data", "out")
    _common_options(parser, "genrl_zoo")


# genrl train-policy --------------------------------------------------------------------


def _run_train_policy(args: argparse.Namespace) -> dict:
    from genrl_ros.train_policy import run_train_policy  # noqa: PLC0415 - lazy: torch, mujoco

    return run_train_policy(args)


def _task_default(task: str, field: str) -> Any:
    """The EM default of ``field`` for ``task`` (EMConfig.for_task)."""
    from genrl_ros.em.config import EMConfig  # noqa: PLC0415 - plain dataclass, no torch

    return getattr(EMConfig.for_task(task), field)


def _add_train_policy(subparsers: Any) -> None:
    from genrl_ros.em.config import EMConfig  # noqa: PLC0415 - plain dataclass, no torch

    defaults = EMConfig()
    parser = _subparser(
        subparsers,
        "train-policy",
        _run_train_policy,
        "train a latent policy with EM (GenRL Algorithm 1) on a trained generator",
        "Train a Gaussian latent policy pi(alpha | goal or camera image) on a trained\n"
        "generator with GenRL's EM algorithm in the batched simulator: per iteration N goals,\n"
        "alpha ~ pi, tau = g(alpha), execute, reward; E-step (ratio x advantage - KL, trust\n"
        "region), M-step (copy, or distillation into the camera policy), value fit. Writes\n"
        "OUT/episodes.csv (every episode, with table-contact steps), curve.csv/png (reward vs\n"
        "episodes), last.pt (atomic checkpoint, --resume), and at the end eval.json (held-out\n"
        "goals; eval_goals.csv, one row per goal), policy.pt, policy.onnx and summary.json.",
    )
    parser.add_argument("--task", choices=TASKS, help="task (required)")
    parser.add_argument(
        "--model", type=path_str, metavar="RUN",
        help="generator: train-model run directory or .pt checkpoint (required)",
    )
    parser.add_argument(
        "--observation", choices=("goal", "image"), default="goal",
        help="policy input: goal xy, or the 64x64 camera image (input remapping) "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--iterations", type=positive_int, metavar="I", help="EM iterations (required)"
    )
    parser.add_argument("--out", type=path_str, metavar="DIR", help="run directory (required)")
    parser.add_argument(
        "--seed", type=integer, default=0, metavar="S", help="random seed (default: %(default)s)"
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its last.pt"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing run directory at --out"
    )
    parser.add_argument(
        "--eval-goals", type=positive_int, default=500, metavar="N",
        help="held-out goals of the final evaluation (default: %(default)s)",
    )
    em = parser.add_argument_group("EM hyperparameters (defaults: genrl_ros.em.config.EMConfig)")
    em.add_argument(
        "--episodes-per-iteration", type=positive_int, metavar="N",
        help=f"episodes per iteration (default: {defaults.episodes_per_iteration}; "
        f"basketball {_task_default('basketball', 'episodes_per_iteration')})",
    )
    em.add_argument(
        "--latents-per-goal", type=positive_int, metavar="K",
        help="latents drawn per sampled goal (N / K goals per iteration, each K times; "
        f"default: {defaults.latents_per_goal}; "
        f"basketball {_task_default('basketball', 'latents_per_goal')})",
    )
    em.add_argument(
        "--estep-epochs", type=positive_int, metavar="E",
        help=f"E-step passes over the batch (default: {defaults.estep_epochs})",
    )
    em.add_argument(
        "--minibatch-size", type=positive_int, metavar="N",
        help=f"E-step minibatch (default: {defaults.minibatch_size}; "
        f"basketball {_task_default('basketball', 'minibatch_size')})",
    )
    em.add_argument(
        "--lr", type=positive_float, metavar="LR",
        help=f"E-step Adam learning rate (default: {defaults.lr})",
    )
    em.add_argument(
        "--kl-weight", type=non_negative_float, metavar="W",
        help=f"weight of KL(q || pi) in the E-step objective (default: {defaults.kl_weight})",
    )
    em.add_argument(
        "--max-kl", type=positive_float, metavar="KL",
        help=f"trust region: largest batch mean KL(q || pi) (default: {defaults.max_kl}; "
        f"basketball {_task_default('basketball', 'max_kl')})",
    )
    em.add_argument(
        "--value-epochs", type=positive_int, metavar="E",
        help=f"value-function Adam steps per iteration (default: {defaults.value_epochs})",
    )
    em.add_argument(
        "--init-std", type=positive_float, metavar="S",
        help="initial policy std (default: the prior's std)",
    )
    em.add_argument(
        "--invalid-reward", type=_float, metavar="R",
        help="reward of a trajectory rejected by the joint limits or the workspace check "
        "(default: per task, hockey -1.5, basketball -10)",
    )
    em.add_argument(
        "--no-workspace-check", dest="workspace_check", action="store_false", default=None,
        help="execute trajectories whose commands would drive the arm into the scene (the "
        "hockey blade into the table) instead of refusing them (default: refuse)",
    )
    em.add_argument(
        "--distill-epochs", type=positive_int, metavar="E",
        help=f"image policy: distillation epochs per iteration (default: {defaults.distill_epochs})",
    )
    em.add_argument(
        "--warm-start", type=path_str, metavar="DIR",
        help="demonstration dataset (genrl demos): before EM, fit the policy to the latents "
        "of the demonstrations that reached their goal (default: no warm start)",
    )
    em.add_argument(
        "--warm-start-std", type=positive_float, metavar="S",
        help=f"policy std after the warm start (default: {defaults.warm_start_std})",
    )
    em.add_argument(
        "--warm-start-max-distance", type=positive_float, metavar="M",
        dest="warm_start_max_distance_m",
        help="demonstrations that ended at most M metres from their goal (default: a tenth "
        "of the success radius)",
    )
    parser.add_argument(
        "--checkpoint-every", type=positive_int, metavar="N",
        help=f"write last.pt every N iterations (default: {defaults.checkpoint_every})",
    )
    parser.add_argument("--no-onnx", action="store_true", help="do not export policy.onnx")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    _require(parser, "task", "model", "iterations", "out")
    _common_options(parser, "genrl_train_policy")


# genrl study ---------------------------------------------------------------------------


def _run_study(args: argparse.Namespace) -> dict:
    from genrl_ros.study import run_study_cli  # noqa: PLC0415 - lazy: torch, mujoco, scipy

    return run_study_cli(args)


def _add_study(subparsers: Any) -> None:
    parser = _subparser(
        subparsers,
        "study",
        _run_study,
        "do a zoo's pre-RL measures predict its policies' reward? (paper Tables 1-3, 6)",
        "For every model of a 'genrl zoo' directory and every seed, train a goal policy with\n"
        "EM; label each model with its maximum reward (max over iterations of the mean\n"
        "training reward, mean over seeds: Table 1) and report Pearson R and p of precision,\n"
        "recall, delta_1 and delta_tilde against it per family (VAE, GAN) and over all\n"
        "(Tables 2/3; --pool-with other tasks' studies: Table 6). Writes OUT/study.md/json,\n"
        "labels.csv, correlations.csv, scatter.png, curves.png and runs/<MODEL>/seed<S>/.\n"
        "Resumable (--resume): finished runs are skipped, interrupted ones continue.",
    )
    parser.add_argument("--task", choices=TASKS, help="task of the zoo (required)")
    parser.add_argument("--zoo", type=path_str, metavar="DIR",
                        help="'genrl zoo' directory with zoo.json (required)")
    parser.add_argument("--out", type=path_str, metavar="DIR", help="study directory (required)")
    parser.add_argument("--seeds", type=positive_int, default=3, metavar="S",
                        help="policies per model (default: %(default)s, as the paper)")
    parser.add_argument("--seed", type=integer, default=0, metavar="S",
                        help="seed of the first policy (default: %(default)s)")
    parser.add_argument("--iterations", type=positive_int, default=20, metavar="I",
                        help="EM iterations per policy (default: %(default)s)")
    parser.add_argument("--episodes-per-iteration", type=positive_int, default=32, metavar="N",
                        help="episodes per EM iteration (default: %(default)s)")
    parser.add_argument("--eval-goals", type=positive_int, default=100, metavar="N",
                        help="held-out goals of each policy's final evaluation "
                        "(default: %(default)s)")
    parser.add_argument("--estep-epochs", type=positive_int, metavar="E",
                        help="E-step passes over the batch (default: EMConfig's)")
    parser.add_argument("--max-kl", type=positive_float, metavar="KL",
                        help="E-step trust region (default: EMConfig's)")
    parser.add_argument("--lr", type=positive_float, metavar="LR",
                        help="E-step learning rate (default: EMConfig's)")
    parser.add_argument("--models", type=_csv_list(str), metavar="NAME,..",
                        help="study only these zoo models (default: all)")
    parser.add_argument("--pool-with", type=path_str, action="append", metavar="DIR",
                        help="a finished study of another task, pooled for the all-tasks "
                        "correlation (Table 6); repeatable")
    parser.add_argument("--resume", action="store_true",
                        help="continue a study in a non-empty --out (finished runs are skipped)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    _require(parser, "task", "zoo", "out")
    _common_options(parser, "genrl_study")


# genrl compare ---------------------------------------------------------------------------


def _run_compare(args: argparse.Namespace) -> dict:
    from genrl_ros.compare import run_compare  # noqa: PLC0415 - lazy: torch, SB3, mujoco

    return run_compare(args)


def _method_name(value: Any) -> str:
    methods = ("genrl", "ppo", "sac")
    if value not in methods:
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(methods)}, got {value!r}")
    return value


def _add_compare(subparsers: Any) -> None:
    parser = _subparser(
        subparsers,
        "compare",
        _run_compare,
        "GenRL vs PPO (+BC) vs SAC (+demonstrations) with the same episode budget",
        "For seeds 0..S-1 train GenRL (EM on the trained generator --model), PPO pre-trained\n"
        "by behaviour cloning on the demonstrations --data, and SAC with the demonstration\n"
        "transitions in its replay buffer, each for E episodes (stable-baselines3, per-step\n"
        "environment). Writes OUT/compare.json (per-episode rewards and table-contact steps),\n"
        "reward_vs_episodes.png (Figure 6), table_contacts.png (Figure 7) and compare.md.\n"
        "Finished (method, seed) runs in OUT/runs/ are reused when run again.",
    )
    parser.add_argument("--task", choices=TASKS, help="task (required)")
    parser.add_argument(
        "--model", type=path_str, metavar="RUN",
        help="GenRL generator: train-model run directory or .pt checkpoint",
    )
    parser.add_argument(
        "--data", type=path_str, metavar="DIR",
        help="demonstration dataset (genrl demos) for PPO's BC and SAC's replay buffer",
    )
    parser.add_argument(
        "--episodes", type=positive_int, metavar="E",
        help="training episodes per method and seed (required)",
    )
    parser.add_argument(
        "--seeds", type=positive_int, default=3, metavar="S",
        help="seeds 0..S-1 per method (default: %(default)s)",
    )
    parser.add_argument("--out", type=path_str, metavar="DIR", help="output directory (required)")
    parser.add_argument(
        "--only-seeds", type=_csv_list(non_negative_int), metavar="K,..",
        help="run only these seeds (to split the work between processes); finished runs of "
        "the other seeds are reused, unfinished ones left out",
    )
    parser.add_argument(
        "--methods", type=_csv_list(_method_name), default=["genrl", "ppo", "sac"],
        metavar="M,..", help="methods to run (default: genrl,ppo,sac)",
    )
    parser.add_argument(
        "--demos", type=positive_int, metavar="N",
        help="use the first N demonstrations for PPO / SAC (default: all)",
    )
    parser.add_argument(
        "--genrl-episodes-per-iteration", type=positive_int, default=64, metavar="N",
        help="GenRL episodes per EM iteration; E must be a multiple (default: %(default)s)",
    )
    parser.add_argument(
        "--eval-goals", type=positive_int, default=100, metavar="N",
        help="held-out goals of the final deterministic evaluation (default: %(default)s)",
    )
    parser.add_argument(
        "--bins", type=positive_int, default=20, metavar="B",
        help="bins of the curves (default: %(default)s)",
    )
    parser.add_argument(
        "--bc-epochs", type=non_negative_int, metavar="E",
        help="PPO behaviour-cloning epochs (default: PPOBaselineConfig.bc_epochs = 20)",
    )
    parser.add_argument(
        "--ppo-init-std", type=positive_float, metavar="S",
        help="PPO policy std after BC, in units of the velocity limit (default: 0.1)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="delete --out first (no run is reused)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    _require(parser, "task", "episodes", "out")
    _common_options(parser, "genrl_compare")


SUBCOMMANDS: tuple[Callable[[Any], None], ...] = (
    _add_demos,
    _add_run,
    _add_import_bag,
    _add_export_bag,
    _add_train_model,
    _add_export,
    _add_eval_model,
    _add_zoo,
    _add_train_policy,
    _add_study,
    _add_compare,
)


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="genrl_ros in embedded mode: robot skill learning with latent-action "
        "generative models, without a ROS installation. "
        "Run 'genrl <command> --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="<command>")
    for add in SUBCOMMANDS:
        add(subparsers)
    return parser


def _subparsers_by_name(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # noqa: SLF001 - argparse keeps no public accessor
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return dict(action.choices)
    return {}


def _option_actions(sub: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """Options that a config file may set, by dest (``expert_goals``)."""
    skip = {"help", "config", "config_node", "debug", "json"}
    return {
        a.dest: a
        for a in sub._actions  # noqa: SLF001
        if a.option_strings and a.dest not in skip and a.dest != argparse.SUPPRESS
    }


def _config_defaults(
    sub: argparse.ArgumentParser, config: str, node: str
) -> dict[str, Any]:
    from genrl_ros.config import load_ros_params  # noqa: PLC0415 - lazy: imports yaml

    params = load_ros_params(config, node)
    actions = _option_actions(sub)
    defaults: dict[str, Any] = {}
    for key, value in params.items():
        dest = key.replace("-", "_")
        action = actions.get(dest)
        where = f"{config}: {node}.ros__parameters.{key}"
        if action is None:
            known = ", ".join(sorted(actions))
            raise CliError(f"{where}: unknown parameter for '{PROG} {sub.prog.split()[-1]}' "
                           f"(known: {known})")
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):  # noqa: SLF001
            if not isinstance(value, bool):
                raise CliError(f"{where}: must be true or false, got {value!r}")
        elif isinstance(value, (list, bool)) and action.type is not None:
            raise CliError(f"{where}: must be a single value, got {value!r}")
        elif action.type is not None:
            try:
                value = action.type(value)
            except (argparse.ArgumentTypeError, TypeError, ValueError) as exc:
                raise CliError(f"{where}: {exc}") from None
        if action.choices is not None and value not in action.choices:
            choices = ", ".join(map(str, action.choices))
            raise CliError(f"{where}: must be one of {choices}, got {value!r}")
        defaults[dest] = value
    return defaults


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse ``argv`` with the defaults of a ``--config`` file applied; SystemExit on error."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help(sys.stderr)
        parser.exit(EXIT_USAGE, f"{PROG}: error: a command is required\n")
    sub = _subparsers_by_name(parser)[args.command]
    if args.config:
        try:
            defaults = _config_defaults(sub, args.config, args.config_node)
        except (CliError, ValueError, FileNotFoundError) as exc:
            if args.debug:
                raise
            sub.error(str(exc))
        sub.set_defaults(**defaults)
        args = parser.parse_args(argv)  # the command line wins over the config file
    missing = [d for d in args._required if getattr(args, d, None) in (None, "")]  # noqa: SLF001
    if missing:
        flags = ", ".join("--" + d.replace("_", "-") for d in missing)
        sub.error(f"the following arguments are required: {flags} (on the command line or "
                  "in the --config file)")
    if args.command == "run" and args.episodes is None:
        args.episodes = PRESET_EPISODES[args.preset]
    del args._required  # noqa: SLF001
    return args


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``genrl`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code.

    Usage errors raise ``SystemExit`` (code 2) as argparse does, ``--help`` exits 0.
    """
    args = parse_args(argv)
    prefix = f"{PROG} {args.command}"
    apply_threads(args.threads, import_torch=args.command in TORCH_COMMANDS)
    try:
        summary = args.handler(args)
    except USER_ERRORS as exc:
        if args.debug:
            raise
        message = str(exc) or type(exc).__name__
        if isinstance(exc, (FileNotFoundError, FileExistsError)) and exc.filename and (
            str(exc.filename) not in message
        ):
            message = f"{exc.strerror or message}: {exc.filename}"
        print(f"{prefix}: error: {' '.join(message.split())}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{prefix}: interrupted", file=sys.stderr)
        return 130
    summary = dict(summary or {})
    summary.setdefault("command", args.command)
    if args.json:
        sys.stderr.flush()
        emit_json(summary)
    else:
        _emit_human(summary, sys.stdout)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
