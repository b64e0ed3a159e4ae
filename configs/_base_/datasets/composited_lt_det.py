# Composited long-tailed detection (COCO format), "composited from real images": Fashion-MNIST items pasted on
# scikit-image photos/textures, exponential class tail (train imbalance 50, val 5 by default).
# Build it with:  python tools/dataset_converters/composited_det.py --out data/composited_lt_det --seed 0
# The small demo set (data/composited_det_demo): tools.benchmarks.composited.ensure_demo_detection().
# Changing data_root in a child config: also override the dataloaders' data_root and the evaluators' ann_file.
_base_ = './composited_classes.py'

dataset_type = 'CocoDataset'
data_root = 'data/composited_lt_det/'
# `provenance` travels with dataset_meta to the evaluators: every results table on these data must say it
# (a list: mmengine reads a str metainfo value as the path of a meta file)
metainfo = dict(
    provenance=['composited from real images'], classes=_base_.fmnist_classes, palette=_base_.fmnist_palette
)
img_scale = (384, 384)  # canvases are 384x384 (demo: 256x256)
backend_args = None

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=8),
        pipeline=train_pipeline,
        backend_args=backend_args,
    ),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args,
    ),
)
test_dataloader = val_dataloader

# classwise=True: per-class AP is what shows head vs tail behaviour
val_evaluator = dict(
    type='CocoMetric',
    ann_file=data_root + 'annotations/instances_val.json',
    metric='bbox',
    classwise=True,
    format_only=False,
    backend_args=backend_args,
)
test_evaluator = val_evaluator
