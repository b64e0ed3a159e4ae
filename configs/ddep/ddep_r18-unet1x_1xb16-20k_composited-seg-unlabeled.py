# DDeP decoder pretraining on the unlabeled images of the composited segmentation benchmark ("composited
# from real images"; build it with tools/dataset_converters/composited_seg.py).
_base_ = ['./_base_/ddep_r18_unet1x.py', './_base_/pretrain_schedule.py']
max_iters = 20000
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=500),
    dict(type='CosineAnnealingLR', T_max=max_iters - 500, by_epoch=False, begin=500, end=max_iters),
]
train_cfg = dict(max_iters=max_iters)
default_hooks = dict(checkpoint=dict(interval=5000))
model = dict(neck=dict(norm_cfg=dict(type='BN')))
data_root = 'data/composited_seg/'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, crop_ratio_range=(0.3, 1.0), backend='pillow'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=16,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='CustomDataset',
        data_root=data_root,
        data_prefix='img_dir/unlabeled',
        with_label=False,
        extensions=('.png',),
        pipeline=train_pipeline,
    ),
)
