"""The ``genrl`` command: the embedded mode of genrl_ros (no ROS installation needed).

Every subcommand shares these options:

``--json``
    print a one-line JSON summary as the last line of stdout (human output and progress go
    to stderr or come before it); without it a human summary is printed instead.
``--threads N``
    CPU threads for torch (``torch.set_num_threads``), the BLAS/OpenMP libraries
    (``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``) and the simulator's
    executor (passed on as ``args.threads``). Default 1.
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

THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

TASKS = ("hockey", "basketball")
PRESET_EPISODES = {"small": 2000, "paper": 40000}

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
    """Limit CPU threads: BLAS/OpenMP env vars, and torch if loaded (or ``import_torch``)."""
    for name in THREAD_ENV_VARS:
        os.environ[name] = str(threads)
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
        help="CPU threads for torch, BLAS/OpenMP and the simulator (default: %(default)s)",
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
    _require(parser, "task", "out")
    _common_options(parser, "genrl_demos")


# genrl run -----------------------------------------------------------------------------


def _run_main_job(args: argparse.Namespace) -> dict:
    from genrl_ros.demos_cmd import run_main_job  # noqa: PLC0415 - lazy: imports mujoco

    return run_main_job(args)


def _add_run(subparsers: Any) -> None:
    parser = _subparser(
        subparsers,
        "run",
        _run_main_job,
        "run the main job (demonstrations, models, policy training, report)",
        "Run the main job end to end. The 'small' preset finishes on a laptop; the 'paper'\n"
        "preset uses the episode budget of the paper (40000 episodes).",
    )
    parser.add_argument(
        "--task",
        choices=(*TASKS, "both"),
        default="both",
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
        help="training episodes (default: 2000 with --preset small, 40000 with --preset paper)",
    )
    parser.add_argument(
        "--preset",
        choices=tuple(PRESET_EPISODES),
        default="small",
        help="size of the experiment (default: %(default)s)",
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


SUBCOMMANDS: tuple[Callable[[Any], None], ...] = (
    _add_demos,
    _add_run,
    _add_import_bag,
    _add_export_bag,
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
    apply_threads(args.threads, import_torch=args.command == "run")
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
