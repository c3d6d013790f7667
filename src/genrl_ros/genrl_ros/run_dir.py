"""The output directory of a training run (models, policies): resume, or refuse to clobber.

A run directory holds ``run.json`` (what the run is) and ``last.pt`` (its latest checkpoint).
"""

from __future__ import annotations

from pathlib import Path

RUN_FILE = "run.json"
LAST_FILE = "last.pt"


def check_run_dir(out: Path, *, resume: bool, overwrite: bool, what: str) -> bool:
    """Whether to resume from ``out/last.pt``; raises :class:`FileExistsError` when ``out``
    must not be written: a file, a non-empty directory without ``--resume`` / ``--overwrite``,
    or a non-empty directory that is not a run (never replaced, even with ``overwrite``).

    :param what: the kind of run, for messages (e.g. "training run").
    """
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a directory; not writing a {what}")
    nonempty = out.is_dir() and any(out.iterdir())
    if resume:
        if (out / LAST_FILE).is_file():
            return True
        if nonempty:
            raise FileExistsError(f"cannot resume: {out} is not empty and has no {LAST_FILE}")
        return False
    if nonempty:
        if not overwrite:
            raise FileExistsError(
                f"{out} exists and is not empty; pass --resume to continue the run or "
                "--overwrite to replace it"
            )
        if not (out / RUN_FILE).is_file():
            raise FileExistsError(
                f"{out} is not empty and has no {RUN_FILE}: it is not a {what}, "
                "refusing to replace it"
            )
    return False
