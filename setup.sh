#!/usr/bin/env bash
# Set up genrl_ros in embedded mode (no ROS needed) and run it or its tests.
#
#   ./setup.sh            same as ./setup.sh run
#   ./setup.sh run  [ARGS...]   set up, then `genrl run ARGS...` (the main job, small preset)
#   ./setup.sh test [ARGS...]   set up, then `python -m pytest ARGS...` (default suite:
#                               everything not marked slow or bench)
#   ./setup.sh install          set up only
#
# Setting up = Debian packages that are missing (python3-venv if `python3 -m venv` cannot
# work, libosmesa6 for offscreen MuJoCo rendering), a virtual environment in .venv, torch
# (pinned in constraints.txt) installed FIRST so that no other package pulls another torch
# build, then requirements.txt, then the three packages of src/ in editable mode. A stamp file
# in .venv records the hash of everything that decides the install, so a second run skips
# pip and takes about a second.
#
# Environment: PYTHON (interpreter for the venv, default python3), GENRL_VENV (default
# .venv), TORCH_PIP_ARGS (extra pip arguments for the torch install only, e.g. an index with
# CPU builds), GENRL_NUMPY (an exact numpy version to install instead of the newest one the
# range in constraints.txt allows, e.g. GENRL_NUMPY=1.26.4 for the numpy of ROS 2 Jazzy),
# GENRL_SKIP_APT=1 (never call apt-get).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"

MODE="${1:-run}"
if [[ $# -gt 0 ]]; then shift; fi
case "$MODE" in
  run | test | install) ;;
  -h | --help | help)
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "usage: ./setup.sh [run|test|install] [ARGS...]" >&2
    exit 2
    ;;
esac

PYTHON="${PYTHON:-python3}"
VENV="${GENRL_VENV:-$ROOT/.venv}"
STAMP="$VENV/.genrl-setup-stamp"
PACKAGES=(src/sim_bridge src/latent_policy_node src/genrl_ros)

log() { printf '[setup.sh] %s\n' "$*" >&2; }
die() { printf '[setup.sh] error: %s\n' "$*" >&2; exit 1; }

# Headless rendering for MuJoCo (and PyOpenGL) everywhere below, including the checks.
export MUJOCO_GL="${MUJOCO_GL:-osmesa}"
export PYOPENGL_PLATFORM="${PYOPENGL_PLATFORM:-osmesa}"
export PIP_DISABLE_PIP_VERSION_CHECK=1
export DEBIAN_FRONTEND=noninteractive

# ---------------------------------------------------------------- Debian packages
APT_UPDATED=0
apt_install() {
  local missing=()
  local pkg
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  if [[ "${GENRL_SKIP_APT:-0}" == 1 ]] || ! command -v apt-get >/dev/null 2>&1; then
    die "missing system packages: ${missing[*]} (install them, e.g. apt-get install ${missing[*]})"
  fi
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
      sudo=(sudo)
    else
      die "missing system packages ${missing[*]} and not root (no sudo): install them as root"
    fi
  fi
  if [[ $APT_UPDATED -eq 0 ]]; then
    log "apt-get update"
    "${sudo[@]}" apt-get update -qq </dev/null
    APT_UPDATED=1
  fi
  log "apt-get install ${missing[*]}"
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null
}

command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found (Python >= 3.10 is needed)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
  || die "$PYTHON is $("$PYTHON" -V 2>&1); Python >= 3.10 is needed (set PYTHON=...)"

needs_venv_pkg=0
if [[ ! -x "$VENV/bin/python" ]] && ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  needs_venv_pkg=1
fi
if command -v dpkg >/dev/null 2>&1; then
  wanted=(libosmesa6)
  if [[ $needs_venv_pkg -eq 1 ]]; then
    # Debian splits venv/ensurepip into python3-venv (python3.X-venv for a non-default 3.X).
    pyver="$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
    if apt-cache show "python${pyver}-venv" >/dev/null 2>&1; then
      wanted+=("python${pyver}-venv")
    else
      wanted+=(python3-venv)
    fi
  fi
  apt_install "${wanted[@]}"
elif [[ $needs_venv_pkg -eq 1 ]]; then
  die "$PYTHON cannot create virtual environments (no ensurepip/venv) and this is no Debian system"
fi

# ---------------------------------------------------------------- virtual environment
if [[ -d "$VENV" ]] && ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
  log "removing broken virtual environment $VENV"
  rm -rf "$VENV"
fi
if [[ ! -d "$VENV" ]]; then
  log "creating virtual environment $VENV ($("$PYTHON" -V 2>&1))"
  "$PYTHON" -m venv "$VENV"
fi
# colcon must never treat the venv (or anything installed in it) as part of a workspace.
touch "$VENV/COLCON_IGNORE"
VPY="$VENV/bin/python"
export PATH="$VENV/bin:$PATH"
export VIRTUAL_ENV="$VENV"

stamp_value() {
  {
    "$VPY" -c 'import sys; print(sys.version)'
    cat requirements.txt constraints.txt
    local pkg
    for pkg in "${PACKAGES[@]}"; do cat "$pkg/setup.py" "$pkg/setup.cfg"; done
    echo "numpy=${GENRL_NUMPY:-} torch_args=${TORCH_PIP_ARGS:-}"
    echo "setup.sh stamp format 1"
  } | sha256sum | cut -d' ' -f1
}

render_check() {
  "$VPY" - <<'EOF'
import mujoco
model = mujoco.MjModel.from_xml_string(
    "<mujoco><worldbody><light pos='0 0 1'/><geom type='sphere' size='.1'/></worldbody></mujoco>")
data = mujoco.MjData(model)
mujoco.mj_forward(model, data)
with mujoco.Renderer(model, 16, 16) as renderer:
    renderer.update_scene(data)
    assert renderer.render().shape == (16, 16, 3)
EOF
}

WANT="$(stamp_value)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" && -x "$VENV/bin/genrl" ]]; then
  log "environment up to date ($VENV)"
else
  start=$SECONDS
  rm -f "$STAMP"
  PIP=("$VPY" -m pip --disable-pip-version-check)
  torch_req="$(grep -E '^torch==' constraints.txt)"
  # shellcheck disable=SC2086  # TORCH_PIP_ARGS is a list of words on purpose
  log "pip install $torch_req (first, so nothing else can pull another torch build)"
  "${PIP[@]}" install -q ${TORCH_PIP_ARGS:-} "$torch_req"
  constraints=(-c constraints.txt)
  if [[ -n "${GENRL_NUMPY:-}" ]]; then
    printf 'numpy==%s\n' "$GENRL_NUMPY" >"$VENV/.genrl-numpy-constraint.txt"
    constraints+=(-c "$VENV/.genrl-numpy-constraint.txt")
  fi
  log "pip install -r requirements.txt ${constraints[*]}"
  "${PIP[@]}" install -q -r requirements.txt "${constraints[@]}"
  # --no-deps: the dependencies are all in requirements.txt, and pip must not look up the
  # sibling packages (sim_bridge, latent_policy_node) on a package index.
  log "pip install -e ${PACKAGES[*]}"
  editable=()
  for pkg in "${PACKAGES[@]}"; do editable+=(-e "$pkg"); done
  # (PYTHONWARNINGS: silence setuptools' generic notice about editable installs)
  PYTHONWARNINGS=ignore "${PIP[@]}" install -q --no-deps --no-build-isolation "${editable[@]}"
  "${PIP[@]}" check >&2 || die "pip check found broken requirements (see above)"
  [[ -x "$VENV/bin/genrl" ]] || die "the genrl console script was not installed in $VENV/bin"
  if ! render_check 2>/dev/null; then
    # MuJoCo's OSMesa backend may also need libGL on some systems.
    if command -v dpkg >/dev/null 2>&1; then apt_install libgl1; fi
    render_check || die "MuJoCo cannot render offscreen with MUJOCO_GL=$MUJOCO_GL"
  fi
  echo "$WANT" >"$STAMP"
  log "environment ready in $((SECONDS - start)) s ($VENV)"
fi

case "$MODE" in
  install)
    log "done; activate with: source ${VENV#"$ROOT"/}/bin/activate  (then: genrl --help)"
    ;;
  run)
    # Running the main command again continues (finished stages are skipped) instead of
    # refusing the existing run; --overwrite starts over.
    resume=(--resume)
    for arg in "$@"; do
      case "$arg" in --resume|--overwrite|-h|--help) resume=() ;; esac
    done
    exec "$VENV/bin/genrl" run "${resume[@]}" "$@"
    ;;
  test)
    extra=()
    if [[ -n "${CI:-}" ]]; then extra+=(--durations=15); fi
    exec "$VPY" -m pytest "${extra[@]}" "$@"
    ;;
esac
