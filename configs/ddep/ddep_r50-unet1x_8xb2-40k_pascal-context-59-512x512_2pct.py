# Pascal Context 59 with 2% of the train labels (subset file from tools/dataset_converters/ddep_label_fractions.py).
# Schedule scaled to the fraction: 6000 iterations = full-label 40000 x sqrt(2/100), rounded to 1k (batch 16:
# ~970 epochs of ~99 images; the unscaled 40000 would be ~6465). Our choice, see README.
_base_ = ['./ddep_r50-unet1x_8xb2-40k_pascal-context-59-512x512.py']
train_dataloader = dict(dataset=dict(ann_file='splits/train@2.txt'))
max_iters = 6000
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=1000),
    dict(type='CosineAnnealingLR', T_max=max_iters - 1000, by_epoch=False, begin=1000, end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters // 4)
default_hooks = dict(checkpoint=dict(interval=max_iters // 4))
