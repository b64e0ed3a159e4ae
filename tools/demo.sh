#!/usr/bin/env bash
# The project's main job on its embedded default (what `make demo` runs): ACRST on the CPU demo set.
#   1. build the demo detection set (composited from real images) on first use, cached under data/;
#   2. train SSMLL, ACRST's semi-supervised multi-label classifier (tools/train.py);
#   3. write SSMLL's class scores of the unlabeled images (tools/acrst/ssmll_scores.py), read by filter stage 2;
#   4. train the ACRST detector: CropBank + FBR/AFFR pastes, two-stage filter, selective supervision;
#   5. evaluate the final checkpoint with tools/test.py (COCO bbox mAP, per-class AP) and draw the teacher's
#      detections next to the ground truth on a few val images (one PNG, path printed at the end).
# Extra arguments go to the ACRST tools/train.py and tools/test.py calls (e.g. --cfg-options ...).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PY:-.venv/bin/python}
SSMLL_CONFIG=${SSMLL_CONFIG:-configs/acrst/ssmll/ssmll_efficientnet-lite0_semi-0.25-composited-demo.py}
CONFIG=${CONFIG:-configs/acrst/acrst_faster-rcnn_efficientnet-lite0_fpn_semi-0.25-composited-demo.py}
WORK_DIR=${WORK_DIR:-work_dirs/acrst_demo}
SCORES="$WORK_DIR/ssmll/unlabeled_scores.json"
# point filter stage 2 at this run's SSMLL scores, merged into the caller's --cfg-options when there are any
# (a second --cfg-options flag would replace the first)
SCORES_KV="model.semi_train_cfg.ml_scores_file=$SCORES"
ARGS=()
HAS_CFG=0
for arg in "$@"; do
    ARGS+=("$arg")
    if [ "$arg" = "--cfg-options" ]; then
        ARGS+=("$SCORES_KV")
        HAS_CFG=1
    fi
done
if [ "$HAS_CFG" = 0 ]; then
    ARGS=(--cfg-options "$SCORES_KV" ${ARGS[@]+"${ARGS[@]}"})
fi
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

"$PY" -c "from tools.benchmarks.composited import ensure_demo_detection; print('[demo] data:', ensure_demo_detection())"
echo "[demo] 1/4 SSMLL (semi-supervised multi-label classifier)"
"$PY" tools/train.py "$SSMLL_CONFIG" --work-dir "$WORK_DIR/ssmll"
echo "[demo] 2/4 SSMLL scores of the unlabeled images -> $SCORES"
"$PY" tools/acrst/ssmll_scores.py "$SSMLL_CONFIG" "$(cat "$WORK_DIR/ssmll/last_checkpoint")" --out "$SCORES"
echo "[demo] 3/4 ACRST detector"
"$PY" tools/train.py "$CONFIG" --work-dir "$WORK_DIR" "${ARGS[@]}"
echo "[demo] 4/4 evaluation (teacher, per-class AP)"
CKPT="$(cat "$WORK_DIR/last_checkpoint")"
"$PY" tools/test.py "$CONFIG" "$CKPT" --work-dir "$WORK_DIR/test" --out "$WORK_DIR/test/results.pkl" "${ARGS[@]}"
"$PY" tools/analysis_tools/show_detections.py "$WORK_DIR/test/results.pkl" \
    data/composited_det_demo/annotations/instances_val.json --score-thr 0.3 --out "$WORK_DIR/test/detections.png"
echo "[demo] done: logs and checkpoints in $WORK_DIR (results on data composited from real images)"
echo "[demo] teacher detections next to the ground truth: $WORK_DIR/test/detections.png"
