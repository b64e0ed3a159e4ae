# CPU smoke test of DDeP fine-tuning (matches ddep_r18-tiny_cpu-smoke_pretrain_composited-seg.py): a few
# iterations on 10% of the composited segmentation labels ("composited from real images"), then mIoU.
_base_ = ['./ddep_r18-unet1x_1xb8-10k_composited-seg-10pct.py']
crop_size = (64, 64)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(base_channels=16, stem_channels=16, init_cfg=None),
    decode_head=dict(decoder=dict(in_channels=(16, 16, 32, 64, 128), decoder_channels=(32, 16, 16, 8, 8))),
)
max_iters = 4
param_scheduler = [dict(type='CosineAnnealingLR', T_max=max_iters, by_epoch=False, begin=0, end=max_iters)]
optim_wrapper = dict(optimizer=dict(lr=1e-3))
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(interval=max_iters, save_best=None),
    visualization=dict(type='SegVisualizationHook', draw=False),
)
data_root = 'data/composited_seg_smoke/'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=False),
    dict(type='RandomResize', scale=(64, 64), ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(64, 64), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=False),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline),
)
val_dataloader = dict(
    num_workers=0, persistent_workers=False, dataset=dict(data_root=data_root, pipeline=test_pipeline)
)
test_dataloader = val_dataloader
load_from = None
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
