# Fine-tune DDeP (ResNet-50 + UNet 1x) on ADE20K, all labels, 512x512 crops (multi-scale 0.5-1.75 + flip
# at test time via tta_pipeline / --tta). Few-label variants replace ann_file (see README).
_base_ = [
    'mmseg::_base_/datasets/ade20k.py',
    './_base_/ddep_seg_r50_unet1x.py',
    './_base_/finetune_schedule.py',
]
crop_size = (512, 512)
max_iters = 80000
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=1000),
    dict(type='CosineAnnealingLR', T_max=max_iters - 1000, by_epoch=False, begin=1000, end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_interval=8000)
# The paper's training augmentation is random crop + flip: mmseg's ADE20K pipeline without its colour
# distortion (the random rescale 0.5-2.0 before the crop stays).
train_pipeline = [t for t in _base_.train_pipeline if t['type'] != 'PhotoMetricDistortion']
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))
model = dict(data_preprocessor=dict(size=crop_size), decode_head=dict(num_classes=150))
load_from = 'work_dirs/ddep_r50-unet1x_8xb32-100k_in1k-224/ddep_seg.pth'  # ddep_to_seg.py output
