"""The output directory of a training run (models, policies): resume, or refuse to clobber;
and how its files are written (atomically).

A run directory holds ``run.json`` (what the run is) and ``last.pt`` (its latest checkpoint).
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path
from collections.abc import Iterable
from typing import Any

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


def check_settings_dir(
    out: Path,
    settings: dict[str, Any],
    keys: Iterable[str],
    *,
    config_file: str,
    resume: bool,
    what: str,
) -> None:
    """Refuse to write a collection of runs (a zoo, a study) into ``out`` unless it is empty,
    or ``resume`` is set and ``out/config_file`` holds the same ``settings`` for ``keys``.

    Raises :class:`FileExistsError` (a file, a non-empty directory without ``--resume`` or
    without ``config_file``) or :class:`ValueError` naming the changed settings.

    :param what: the kind of collection, for messages (e.g. "zoo").
    """
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a directory")
    if not (out.is_dir() and any(out.iterdir())):
        return
    if not resume:
        raise FileExistsError(f"{out} exists and is not empty; pass --resume to continue the {what}")
    config_path = out / config_file
    if not config_path.is_file():
        raise FileExistsError(f"{out} is not empty and has no {config_file}: not a {what}")
    saved = json.loads(config_path.read_text(encoding="utf-8"))
    changed = [f"{k} {saved.get(k)!r} -> {settings[k]!r}" for k in keys if saved.get(k) != settings[k]]
    if changed:
        raise ValueError(
            f"cannot resume the {what} in {out} with other settings: {', '.join(changed)}"
        )


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``path`` so that a crash leaves the old file or the new one, never a part:
    a temporary file next to it, fsync, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """:func:`atomic_write_bytes` of UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


def csv_text(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """CSV of ``rows`` (header first, the given columns; other keys left out)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
