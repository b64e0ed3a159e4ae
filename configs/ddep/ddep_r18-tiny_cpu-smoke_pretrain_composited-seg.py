# CPU smoke test of DDeP pretraining: a narrow random-init ResNet-18 encoder (base width 16), a small UNet
# decoder, 64 px crops, a few iterations on the composited segmentation benchmark's unlabeled images
# ("composited from real images"). For tests and quick checks only; no pretrained weights are downloaded.
_base_ = ['./ddep_r18-unet1x_1xb16-20k_composited-seg-unlabeled.py']
decoder_channels = (32, 16, 16, 8, 8)
model = dict(
    backbone=dict(base_channels=16, stem_channels=16, init_cfg=None),
    neck=dict(in_channels=(16, 16, 32, 64, 128), decoder_channels=decoder_channels, norm_cfg=dict(type='BN')),
    head=dict(in_channels=8),
)
max_iters = 4
param_scheduler = [dict(type='CosineAnnealingLR', T_max=max_iters, by_epoch=False, begin=0, end=max_iters)]
optim_wrapper = dict(optimizer=dict(lr=1e-3))
train_cfg = dict(max_iters=max_iters)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2, max_keep_ckpts=2))
data_root = 'data/composited_seg_smoke/'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=64, crop_ratio_range=(0.3, 1.0), backend='pillow'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline),
)
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
