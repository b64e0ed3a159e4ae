# Baseline of the Cal-DETR domain shift: mmdet's plain Deformable-DETR R50 trained on Cityscapes (8 classes),
# validated on Cityscapes val (in-domain), tested on Foggy Cityscapes val, beta 0.02 (out-of-domain); box AP
# and D-ECE on both.
# Data: mmdet's tools/dataset_converters/cityscapes.py, then tools/dataset_converters/foggy_cityscapes.py.
_base_ = ['mmdet::deformable_detr/deformable-detr_r50_16xb2-50e_coco.py']
custom_imports = dict(imports=['mmssod'], allow_failed_imports=False)

dataset_type = 'CityscapesDataset'
data_root = 'data/cityscapes/'
model = dict(bbox_head=dict(num_classes=8))
train_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/instancesonly_filtered_gtFine_train.json',
        data_prefix=dict(img='leftImg8bit/train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
    )
)
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/instancesonly_filtered_gtFine_val.json',
        data_prefix=dict(img='leftImg8bit/val/'),
    )
)
test_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/instancesonly_filtered_gtFine_val_foggy_beta_0.02.json',
        data_prefix=dict(img='leftImg8bit_foggy/val/'),
    )
)
val_ann = data_root + 'annotations/instancesonly_filtered_gtFine_val.json'
foggy_ann = data_root + 'annotations/instancesonly_filtered_gtFine_val_foggy_beta_0.02.json'
val_evaluator = [
    dict(type='CocoMetric', ann_file=val_ann, metric='bbox', format_only=False),
    dict(type='DECEMetric', ann_file=val_ann, score_thr=0.3, iou_thr=0.5, num_bins=10),
]
test_evaluator = [
    dict(type='CocoMetric', ann_file=foggy_ann, metric='bbox', format_only=False),
    dict(type='DECEMetric', ann_file=foggy_ann, score_thr=0.3, iou_thr=0.5, num_bins=10, prefix='dece_foggy'),
]
