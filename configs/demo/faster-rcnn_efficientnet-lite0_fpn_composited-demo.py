# Supervised Faster R-CNN on the ImageNet-pretrained EfficientNet-Lite0, trained and evaluated on the demo set,
# composited from real images (Fashion-MNIST items on scikit-image photos): the fully supervised reference of the
# demo. `make demo` builds the data on first use.
_base_ = [
    '../_base_/models/faster-rcnn_efficientnet-lite0_fpn.py',
    '../_base_/datasets/composited_det_demo.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmssod'], allow_failed_imports=False)

model = dict(
    roi_head=dict(bbox_head=dict(num_classes=10)),
    # fewer proposals / sampled RoIs than the COCO defaults: the demo images hold at most a dozen objects
    train_cfg=dict(rpn_proposal=dict(nms_pre=512, max_per_img=256), rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(rpn=dict(nms_pre=300, max_per_img=100), rcnn=dict(max_per_img=50)),
)

train_dataloader = dict(batch_size=4, num_workers=1)
val_dataloader = dict(batch_size=4, num_workers=1)
test_dataloader = val_dataloader

max_iters = 400
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    # AdamW: the heads start from random weights; SGD lr 0.02 learned several times slower here
    optimizer=dict(type='AdamW', lr=6e-4, weight_decay=0.05),
    clip_grad=dict(max_norm=10, norm_type=2),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters, milestones=[300, 370], gamma=0.1),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters, max_keep_ckpts=1),
)
log_processor = dict(by_epoch=False)
auto_scale_lr = dict(enable=False, base_batch_size=4)
