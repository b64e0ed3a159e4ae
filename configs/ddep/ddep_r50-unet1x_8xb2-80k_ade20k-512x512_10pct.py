# ADE20K with 10% of the train labels (subset file from tools/dataset_converters/ddep_label_fractions.py).
# Schedule scaled to the fraction: 25000 iterations = full-label 80000 x sqrt(10/100), rounded to 1k (batch 16:
# ~198 epochs of ~2021 images; the unscaled 80000 would be ~633). Our choice, see README.
_base_ = ['./ddep_r50-unet1x_8xb2-80k_ade20k-512x512.py']
train_dataloader = dict(dataset=dict(ann_file='splits/train@10.txt'))
max_iters = 25000
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=1000),
    dict(type='CosineAnnealingLR', T_max=max_iters - 1000, by_epoch=False, begin=1000, end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters // 4)
default_hooks = dict(checkpoint=dict(interval=max_iters // 4))
