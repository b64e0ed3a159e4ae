# Baseline for Cal-Deformable-DETR: mmdet's Deformable-DETR R50 unchanged, evaluated with box AP and D-ECE.
_base_ = ['mmdet::deformable_detr/deformable-detr_r50_16xb2-50e_coco.py']
custom_imports = dict(imports=['mmssod'], allow_failed_imports=False)

ann_file = 'data/coco/annotations/instances_val2017.json'
val_evaluator = [
    dict(type='CocoMetric', ann_file=ann_file, metric='bbox', format_only=False),
    dict(type='DECEMetric', ann_file=ann_file, score_thr=0.3, iou_thr=0.5, num_bins=10),
]
test_evaluator = val_evaluator
