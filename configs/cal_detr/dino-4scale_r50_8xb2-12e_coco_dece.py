# Baseline for Cal-DINO: mmdet's DINO-4scale R50 unchanged, evaluated with box AP and D-ECE.
_base_ = ['mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py']
custom_imports = dict(imports=['mmssod'], allow_failed_imports=False)

ann_file = 'data/coco/annotations/instances_val2017.json'
val_evaluator = [
    dict(type='CocoMetric', ann_file=ann_file, metric='bbox', format_only=False),
    dict(type='DECEMetric', ann_file=ann_file, score_thr=0.3, iou_thr=0.5, num_bins=10),
]
test_evaluator = val_evaluator
