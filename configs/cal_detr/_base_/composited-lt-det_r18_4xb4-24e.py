# The composited long-tailed detection benchmark for the DETR-family configs ("composited from real images":
# Fashion-MNIST items on scikit-image photos, 10 classes, 384x384): ResNet-18 from scratch (no weights can be
# downloaded offline), 300 queries, batch 4, 24 epochs; box AP and D-ECE on clean val and on the corrupted val
# copy.
# Build the data: python tools/dataset_converters/composited_det.py --out data/composited_lt_det --seed 0
#
# Used as the second base next to an mmdet DETR config. That config already defines the data, model and
# schedule keys and mmengine refuses a key defined by two bases, so the settings are held as `lt_det_*`
# variables and the child config assigns them (see ../dino-4scale_r18_4xb4-24e_composited-lt-det.py).
_base_ = ['../../_base_/datasets/composited_classes.py']
custom_imports = dict(imports=['mmssod'], allow_failed_imports=False)

lt_det_data_root = 'data/composited_lt_det/'
# provenance: a list, since mmengine reads a str metainfo value as the path of a meta file
metainfo = dict(provenance=['composited from real images'], classes=_base_.fmnist_classes)
img_scale = (384, 384)
lt_det_model = dict(
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
lt_det_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
lt_det_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
lt_det_train_dataloader = dict(
    batch_size=4,
    dataset=dict(
        data_root=lt_det_data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=8),
        pipeline=lt_det_train_pipeline,
    ),
)
lt_det_val_dataloader = dict(
    dataset=dict(
        data_root=lt_det_data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'),
        pipeline=lt_det_test_pipeline,
    )
)
lt_det_val_evaluator = [
    dict(type='CocoMetric', ann_file=lt_det_data_root + 'annotations/instances_val.json', metric='bbox'),
    dict(type='DECEMetric', ann_file=lt_det_data_root + 'annotations/instances_val.json'),
]
# the out-of-domain test: the corrupted copy of val (one random corruption and severity per image, fixed seed)
corrupted_test_dataloader = dict(
    dataset=dict(ann_file='annotations/instances_val_corrupted.json', data_prefix=dict(img='val_corrupted/'))
)
lt_det_corrupted_test_evaluator = [
    dict(
        type='CocoMetric',
        ann_file=lt_det_data_root + 'annotations/instances_val_corrupted.json',
        metric='bbox',
    ),
    dict(
        type='DECEMetric',
        ann_file=lt_det_data_root + 'annotations/instances_val_corrupted.json',
        prefix='dece_corrupted',
    ),
]

lt_det_max_epochs = 24
lt_det_train_cfg = dict(max_epochs=lt_det_max_epochs, val_interval=4)
lt_det_param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=lt_det_max_epochs, by_epoch=True, milestones=[20], gamma=0.1)
]
lt_det_auto_scale_lr = dict(base_batch_size=16)
