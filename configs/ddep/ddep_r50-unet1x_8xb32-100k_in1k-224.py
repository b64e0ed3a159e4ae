# DDeP decoder pretraining on ImageNet-style folders (data/imagenet/train/<class>/*.JPEG; class folders
# are ignored: no labels are used) at 224 px. Global batch 8 x 32.
_base_ = ['./_base_/ddep_r50_unet1x.py', './_base_/pretrain_schedule.py']
data_root = 'data/imagenet/'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, crop_ratio_range=(0.2, 1.0), backend='pillow'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='CustomDataset',
        data_root=data_root,
        data_prefix='train',
        with_label=False,
        pipeline=train_pipeline,
    ),
)
