# Baseline Deformable-DETR on the composited long-tailed detection benchmark ("composited from real images":
# Fashion-MNIST items on scikit-image photos, 10 classes, 384x384). ResNet-18 trained from scratch (no weights
# can be downloaded offline), 300 queries, 24 epochs; box AP and D-ECE (+ reliability diagram) on clean val.
# Build the data: python tools/dataset_converters/composited_det.py --out data/composited_lt_det --seed 0
_base_ = ['mmdet::deformable_detr/deformable-detr_r50_16xb2-50e_coco.py']
custom_imports = dict(imports=['mmssod'], allow_failed_imports=False)

data_root = 'data/composited_lt_det/'
metainfo = dict(
    provenance='composited from real images',
    classes=(
        'T-shirt/top',
        'Trouser',
        'Pullover',
        'Dress',
        'Coat',
        'Sandal',
        'Shirt',
        'Sneaker',
        'Bag',
        'Ankle boot',
    ),
)
img_scale = (384, 384)
model = dict(
    num_queries=300,
    backbone=dict(
        depth=18,
        init_cfg=None,
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
    ),
    neck=dict(in_channels=[128, 256, 512]),
    bbox_head=dict(num_classes=10),
    test_cfg=dict(max_per_img=100),
)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=4,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=8),
        pipeline=train_pipeline,
    ),
)
val_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'),
        pipeline=test_pipeline,
    )
)
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='CocoMetric', ann_file=data_root + 'annotations/instances_val.json', metric='bbox'),
    dict(type='DECEMetric', ann_file=data_root + 'annotations/instances_val.json'),
]
test_evaluator = val_evaluator

max_epochs = 24
train_cfg = dict(max_epochs=max_epochs, val_interval=4)
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[20], gamma=0.1)
]
auto_scale_lr = dict(base_batch_size=16)
