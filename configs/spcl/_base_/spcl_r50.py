# SpCL model, optimiser and schedule (Ge et al., NeurIPS 2020): ResNet-50 (ImageNet init) with last stride 1,
# global average pooling, BN neck, L2-normalised 2048-d feature, hybrid memory (tau 0.05, momentum 0.2).
# Adam 3.5e-4 (wd 5e-4), x0.1 every 20 epochs, 50 epochs x 400 iterations, PK batches of 16 ids x 4 images.
_base_ = ['mmdet::_base_/default_runtime.py']
custom_imports = dict(imports=['mmssod'], allow_failed_imports=False)

model = dict(
    type='SpCLReID',
    domain_specific_bn=False,
    data_preprocessor=dict(
        type='ReIDDataPreprocessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True
    ),
    backbone=dict(
        type='mmpretrain.ResNet',
        depth=50,
        strides=(1, 2, 2, 1),  # last stride 1
        out_indices=(3,),
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50'),
    ),
    neck=dict(type='mmpretrain.GlobalAveragePooling'),  # or dict(type='mmpretrain.GeneralizedMeanPooling')
    head=dict(type='SpCLHead', in_channels=2048, temperature=0.05, momentum=0.2),
)

img_size = (
    128,
    256,
)  # (w, h) persons; vehicles use 224 x 224; bicubic resize as the official T.Resize(.., 3)
# Random erasing as the official code: after normalisation, the erased area is set to (0.485, 0.456, 0.406)
# (RGB). The pipeline works on BGR pixels before the data preprocessor normalises them, so the fill is that
# value mapped back through mean / std: RGB 123.675 + 0.485 * 58.395 = 152, 116.28 + 0.456 * 57.12 = 142,
# 103.53 + 0.406 * 57.375 = 127 -> BGR (127, 142, 152).
erase_fill_bgr = (127, 142, 152)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_size, keep_ratio=False, interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='mmpretrain.RandomCrop', crop_size=(img_size[1], img_size[0]), padding=10),
    # the official patch draw: aspect ratio uniform in [0.3, 3.33], up to 100 draws until the patch fits
    dict(type='ReIDRandomErasing', erase_prob=0.5, mode='const', fill_color=erase_fill_bgr),
    dict(type='PackReIDInputs', meta_keys=('pid', 'camid', 'sample_idx')),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_size, keep_ratio=False, interpolation='bicubic'),
    dict(type='PackReIDInputs', meta_keys=('pid', 'camid', 'subset', 'sample_idx')),
]

batch_size = 64  # per rank; UDA batches are 64 source + 64 target
iters_per_epoch = 400
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(
        type='PseudoIdentitySampler', batch_size=batch_size, num_instances=4, iters_per_epoch=iters_per_epoch
    ),
)
val_dataloader = dict(
    batch_size=128,
    num_workers=4,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='MarketReIDMetric', topk=(1, 5, 10))
test_evaluator = val_evaluator

custom_hooks = [
    dict(
        type='SpCLClusterHook',
        pipeline=test_pipeline,
        eps=0.6,
        eps_gap=0.02,
        min_samples=4,
        k1=30,
        k2=6,
        batch_size=128,
        num_workers=4,
    )
]

max_epochs = 50
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=3.5e-4, weight_decay=5e-4))
param_scheduler = [dict(type='MultiStepLR', by_epoch=True, milestones=[20, 40], gamma=0.1)]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(
        type='CheckpointHook', interval=5, max_keep_ckpts=3, save_best='reid/mAP', rule='greater'
    ),
)
log_processor = dict(by_epoch=True)
auto_scale_lr = dict(enable=False, base_batch_size=64)

# The other ranks wait in a collective while rank 0 extracts and clusters (SpCLClusterHook.before_train /
# before_train_epoch); NCCL aborts a wait longer than dist_cfg.timeout (torch's NCCL default: 10 min).
# Estimate for the largest paper setting, VehicleID -> VeRi-776 (113,346 source + 37,746 target images):
# extraction at >= 250 img/s (a GPU fed by 4 loader workers; an assumption, no GPU was measured) ~10 min;
# k-reciprocal Jaccard of the target measured on one CPU thread at 4,000 x 2048-d features: 14.1 s (torch
# backend; 3.0 s with numba), DBSCAN + reliability 0.2 s, so <= ~21 min at 37,746 if it grew with N^2 (on a
# GPU far less); label_quality / refresh_memory add a target extraction and two clusterings per epoch.
# 2 h covers that ~4x over. Change it with --cfg-options env_cfg.dist_cfg.timeout=SECONDS.
env_cfg = dict(dist_cfg=dict(backend='nccl', timeout=7200))
