"""Opening the ONNX files genrl_ros writes (policies, decoders) with onnxruntime only.

Both kinds carry ``metadata_props`` with :data:`META_FORMAT` naming the kind of file and a
``format_version``; :func:`open_onnx` refuses, with the caller's error type, a file that is
missing, not ONNX, of another kind, lacking required metadata or of a newer version.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

META_FORMAT = "genrl_ros.format"


def int_metadata(meta: dict[str, str], key: str, path: Path, error: type[Exception]) -> int:
    """Metadata value ``key`` as an integer >= 1, or ``error`` naming the file and key."""
    try:
        value = int(meta[key])
    except (KeyError, TypeError, ValueError):
        raise error(f"{path}: metadata {key}={meta.get(key)!r} is not an integer") from None
    if value < 1:
        raise error(f"{path}: metadata {key}={value} must be >= 1")
    return value


def open_onnx(
    path: Path,
    *,
    format_name: str,
    format_version: int,
    required_keys: tuple[str, ...],
    what: str,
    export_hint: str,
    error: type[Exception],
    threads: int = 1,
) -> tuple[Any, dict[str, str]]:
    """An onnxruntime session (CPU, ``threads`` intra-op threads) and the file's metadata.

    :param what: what the file should be, for messages (e.g. "genrl_ros decoder").
    :param export_hint: how to make a right one, for messages.
    """
    import onnxruntime as ort  # noqa: PLC0415 - keep importers light until a file is opened

    if not path.is_file():
        raise FileNotFoundError(f"no ONNX {what.split()[-1]} at {path}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as err:  # onnxruntime raises its own exception types
        first = " ".join(str(err).split())[:200]
        raise error(f"{path} is not a loadable ONNX model: {first}") from None
    meta = dict(session.get_modelmeta().custom_metadata_map)
    if meta.get(META_FORMAT) != format_name:
        raise error(
            f"{path} is not a {what}: metadata {META_FORMAT} is {meta.get(META_FORMAT)!r}, "
            f"expected {format_name!r} ({export_hint})"
        )
    missing = [key for key in required_keys if key not in meta]
    if missing:
        raise error(f"{path}: {what.split()[-1]} metadata lacks {missing}")
    version = int_metadata(meta, "format_version", path, error)
    if version > format_version:
        raise error(
            f"{path}: format_version {version} is newer than the supported {format_version}"
        )
    return session, meta
