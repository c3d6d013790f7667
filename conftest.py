"""Repository-wide pytest setup, loaded before any test module (and so before mujoco).

Offscreen rendering: MuJoCo picks its OpenGL backend when it is first imported, so
MUJOCO_GL / PYOPENGL_PLATFORM must be set before that. One CPU thread for the BLAS/OpenMP
libraries and torch keeps the tests deterministic and fair on a 2-core machine; a test that
wants more sets it itself.
"""

import os
import sys

os.environ.setdefault("MUJOCO_GL", "osmesa")
os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")
for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

if "torch" in sys.modules:  # only if something imported it already; never import it here
    sys.modules["torch"].set_num_threads(1)
