#!/usr/bin/env bash
# The project's main job on its embedded default (what `make demo` runs): ACRST beside the supervised detector
# on the CPU demo set, one seed.
#   1. build the demo detection set (composited from real images) on first use, cached under data/;
#   2. train SSMLL, ACRST's semi-supervised multi-label classifier (tools/train.py);
#   3. write SSMLL's class scores of the unlabeled images (tools/acrst/ssmll_scores.py), read by filter stage 2;
#   4. train the ACRST detector: CropBank + FBR/AFFR pastes, two-stage filter, selective supervision;
#   5. train the supervised arm: the same detector on the labeled split only, same schedule and seed
#      (tools/analysis_tools/demo_compare.py derives its config from the ACRST one, as acrst_bench does);
#   6. evaluate both final checkpoints with tools/test.py (COCO bbox mAP, per-class AP), draw the teacher's
#      detections next to the ground truth on a few val images, and print both arms' per-class AP, mAP and
#      rarest-third AP side by side, with a bar chart next to the detections PNG (paths printed at the end).
# Extra arguments go to the ACRST tools/train.py and tools/test.py calls (e.g. --cfg-options ...); their
# --cfg-options also reach the supervised arm's config. SEED (default 0) seeds both arms.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PY:-.venv/bin/python}
SSMLL_CONFIG=${SSMLL_CONFIG:-configs/acrst/ssmll/ssmll_efficientnet-lite0_semi-0.25-composited-demo.py}
CONFIG=${CONFIG:-configs/acrst/acrst_faster-rcnn_efficientnet-lite0_fpn_semi-0.25-composited-demo.py}
WORK_DIR=${WORK_DIR:-work_dirs/acrst_demo}
SEED=${SEED:-0}
SUP_DIR="$WORK_DIR/supervised"
SCORES="$WORK_DIR/ssmll/unlabeled_scores.json"
# point filter stage 2 at this run's SSMLL scores, seed the run and leave the evaluation to the test step (no
# validation during training: val_begin past the schedule), merged into the caller's --cfg-options when there
# are any (a second --cfg-options flag would replace the first)
SCORES_KV=("model.semi_train_cfg.ml_scores_file=$SCORES" "randomness.seed=$SEED" "train_cfg.val_begin=1000000000")
ARGS=()
HAS_CFG=0
for arg in "$@"; do
    ARGS+=("$arg")
    if [ "$arg" = "--cfg-options" ]; then
        ARGS+=("${SCORES_KV[@]}")
        HAS_CFG=1
    fi
done
if [ "$HAS_CFG" = 0 ]; then
    ARGS=(--cfg-options "${SCORES_KV[@]}" ${ARGS[@]+"${ARGS[@]}"})
fi
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

"$PY" -c "from tools.benchmarks.composited import ensure_demo_detection; print('[demo] data:', ensure_demo_detection())"
echo "[demo] 1/6 SSMLL (semi-supervised multi-label classifier)"
"$PY" tools/train.py "$SSMLL_CONFIG" --work-dir "$WORK_DIR/ssmll"
echo "[demo] 2/6 SSMLL scores of the unlabeled images -> $SCORES"
"$PY" tools/acrst/ssmll_scores.py "$SSMLL_CONFIG" "$(cat "$WORK_DIR/ssmll/last_checkpoint")" --out "$SCORES"
echo "[demo] 3/6 ACRST detector (seed $SEED)"
"$PY" tools/train.py "$CONFIG" --work-dir "$WORK_DIR" "${ARGS[@]}"
echo "[demo] 4/6 supervised detector: the same detector on the labeled split only, same schedule and seed"
"$PY" tools/analysis_tools/demo_compare.py supervised-config "$CONFIG" --work-dir "$SUP_DIR" --seed "$SEED" \
    --out "$SUP_DIR/supervised.py" "${ARGS[@]}"
"$PY" tools/train.py "$SUP_DIR/supervised.py" --work-dir "$SUP_DIR"
echo "[demo] 5/6 evaluation on the same test split (ACRST's teacher, the supervised detector; per-class AP)"
CKPT="$(cat "$WORK_DIR/last_checkpoint")"
"$PY" tools/test.py "$CONFIG" "$CKPT" --work-dir "$WORK_DIR/test" --out "$WORK_DIR/test/results.pkl" "${ARGS[@]}"
"$PY" tools/test.py "$SUP_DIR/supervised.py" "$(cat "$SUP_DIR/last_checkpoint")" --work-dir "$SUP_DIR/test"
"$PY" tools/analysis_tools/show_detections.py "$WORK_DIR/test/results.pkl" \
    data/composited_det_demo/annotations/instances_val.json --score-thr 0.3 --out "$WORK_DIR/test/detections.png"
echo "[demo] 6/6 supervised beside ACRST"
"$PY" tools/analysis_tools/demo_compare.py compare "$CONFIG" --supervised "$SUP_DIR/test" --acrst "$WORK_DIR/test" \
    --out "$WORK_DIR/test/supervised_vs_acrst.png"
echo "[demo] done: logs and checkpoints in $WORK_DIR and $SUP_DIR (results on data composited from real images;"
echo "[demo] one seed, one schedule, CPU scale: not evidence of ACRST's effect, see tools/benchmarks/acrst_bench.py)"
echo "[demo] teacher detections next to the ground truth: $WORK_DIR/test/detections.png"
echo "[demo] per-class AP, supervised beside ACRST: $WORK_DIR/test/supervised_vs_acrst.png"
