# Cal-DETR on Deformable-DETR R50 (50 epochs, COCO): the paper's main setting. Evaluated with box AP and D-ECE.
_base_ = ['mmdet::deformable_detr/deformable-detr_r50_16xb2-50e_coco.py']
custom_imports = dict(imports=['mmssod'], allow_failed_imports=False)

model = dict(
    bbox_head=dict(
        type='CalDeformableDETRHead',
        logit_modulation=True,
        modulation_mode='paper',
        logit_mixing=True,
        mix_alpha=0.9,
        loss_mix=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=0.5),  # lambda
    )
)

ann_file = 'data/coco/annotations/instances_val2017.json'
val_evaluator = [
    dict(type='CocoMetric', ann_file=ann_file, metric='bbox', format_only=False),
    dict(type='DECEMetric', ann_file=ann_file, score_thr=0.3, iou_thr=0.5, num_bins=10),
]
test_evaluator = val_evaluator
