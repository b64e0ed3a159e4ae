# DDeP decoder pretraining on the target dataset's images without labels (Cityscapes train + train_extra
# leftImg8bit folders; labels are never read), random 512x512 crops.
_base_ = ['./_base_/ddep_r50_unet1x.py', './_base_/pretrain_schedule.py']
max_iters = 40000
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=1000),
    dict(type='CosineAnnealingLR', T_max=max_iters - 1000, by_epoch=False, begin=1000, end=max_iters),
]
train_cfg = dict(max_iters=max_iters)
data_root = 'data/cityscapes/'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=512, crop_ratio_range=(0.1, 1.0), backend='pillow'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]
unlabeled = dict(
    type='CustomDataset',
    data_root=data_root,
    with_label=False,
    extensions=('.png',),
    pipeline=train_pipeline,
)
train_dataloader = dict(
    batch_size=8,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='ConcatDataset',
        datasets=[
            dict(unlabeled, data_prefix='leftImg8bit/train'),  # 2,975 images
            dict(unlabeled, data_prefix='leftImg8bit/train_extra'),  # 19,998 images
        ],
    ),
)
