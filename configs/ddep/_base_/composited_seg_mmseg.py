# The composited segmentation benchmark ("composited from real images", configs/_base_/datasets/
# composited_seg.py) read through mmseg (default_scope='mmseg'): same files and splits, mmseg transforms,
# mmseg IoUMetric. Labels: 0 = background (a real class), 255 = ignore; reduce_zero_label=False.
_base_ = ['../../_base_/datasets/composited_seg.py']
data_root = 'data/composited_seg/'
crop_size = (256, 256)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=False),
    dict(type='RandomResize', scale=(256, 256), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=False),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=8, dataset=dict(data_root=data_root, reduce_zero_label=False, pipeline=train_pipeline)
)
val_dataloader = dict(dataset=dict(data_root=data_root, reduce_zero_label=False, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'], ignore_index=255)
test_evaluator = val_evaluator
