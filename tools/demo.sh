#!/usr/bin/env bash
# The project's main job on its embedded default (what `make demo` runs):
#   1. build the demo detection set (composited from real images) on first use, cached under data/;
#   2. train the CPU demo detector with tools/train.py;
#   3. evaluate the final checkpoint with tools/test.py (COCO bbox mAP, per-class AP).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PY:-.venv/bin/python}
CONFIG=${CONFIG:-configs/demo/faster-rcnn_r18_fpn_composited-demo.py}
WORK_DIR=${WORK_DIR:-work_dirs/demo}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

"$PY" -c "from mmssod.datasets.composited import ensure_demo_detection; print('[demo] data:', ensure_demo_detection())"
"$PY" tools/train.py "$CONFIG" --work-dir "$WORK_DIR" "$@"
CKPT="$(cat "$WORK_DIR/last_checkpoint")"
"$PY" tools/test.py "$CONFIG" "$CKPT" --work-dir "$WORK_DIR/test" "$@"
echo "[demo] done: logs and checkpoints in $WORK_DIR (results on data composited from real images)"
