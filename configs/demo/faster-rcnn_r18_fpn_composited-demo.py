# The project's CPU demo: a small Faster R-CNN (half-width ResNet-18 FPN, random init: no weights can be
# downloaded here) trained and evaluated on the embedded demo set, composited from real images (Fashion-MNIST
# items on scikit-image photos). `make demo` builds the data on first use and runs tools/train.py + test.py.
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py',
    '../_base_/datasets/composited_det_demo.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmssod'], allow_failed_imports=False)

width = 64
model = dict(
    # half-width ResNet-18 (base 32 channels) trained from scratch: fast enough for 2 CPU cores
    backbone=dict(
        depth=18, stem_channels=32, base_channels=32, init_cfg=None, frozen_stages=-1, norm_eval=False
    ),
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=width),
    rpn_head=dict(in_channels=width, feat_channels=width),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=width),
        bbox_head=dict(in_channels=width, fc_out_channels=256, num_classes=10),
    ),
    # fewer proposals / sampled RoIs than the COCO defaults: the demo images hold at most a dozen objects
    train_cfg=dict(rpn_proposal=dict(nms_pre=512, max_per_img=256), rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(rpn=dict(nms_pre=300, max_per_img=100), rcnn=dict(max_per_img=50)),
)

train_dataloader = dict(batch_size=4, num_workers=1)
val_dataloader = dict(batch_size=4, num_workers=1)
test_dataloader = val_dataloader

max_iters = 600
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-4),
    clip_grad=dict(max_norm=10, norm_type=2),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters, milestones=[450, 550], gamma=0.1),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=200, max_keep_ckpts=2),
)
log_processor = dict(by_epoch=False)
auto_scale_lr = dict(enable=False, base_batch_size=4)
