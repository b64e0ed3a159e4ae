# Fine-tune DDeP (ResNet-18 + UNet 1x) on the composited segmentation benchmark ("composited from real
# images") with 10% of the train labels (fold 1). load_from = the converted DDeP checkpoint; set
# load_from=None for the random-init-decoder baseline.
_base_ = [
    './_base_/composited_seg_mmseg.py',
    './_base_/ddep_seg_r18_unet1x.py',
    './_base_/finetune_schedule.py',
]
crop_size = (256, 256)
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(norm_cfg=norm_cfg),
    decode_head=dict(num_classes=11, norm_cfg=norm_cfg, decoder=dict(norm_cfg=norm_cfg)),
)
max_iters = 10000
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=500),
    dict(type='CosineAnnealingLR', T_max=max_iters - 500, by_epoch=False, begin=500, end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_interval=1000)
default_hooks = dict(checkpoint=dict(interval=1000))
train_dataloader = dict(batch_size=8, dataset=dict(ann_file='splits/train.1@10.txt'))
load_from = 'work_dirs/ddep_r18-unet1x_1xb16-20k_composited-seg-unlabeled/ddep_seg.pth'  # ddep_to_seg.py
