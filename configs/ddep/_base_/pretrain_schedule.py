# Decoder pretraining schedule: Adam with the paper's learning rate for the 1x (and 3x) decoder, 6e-5 (the 2x
# decoder uses 1e-4, set in its config), linear warm-up + cosine decay; only decoder parameters receive
# gradients (the encoder is frozen).
_base_ = ['mmpretrain::_base_/default_runtime.py']
custom_imports = dict(imports=['mmssod'], allow_failed_imports=False)
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=6e-5, weight_decay=0.0))
max_iters = 100000
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=2000),
    dict(type='CosineAnnealingLR', T_max=max_iters - 2000, by_epoch=False, begin=2000, end=max_iters),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=10000, max_keep_ckpts=3),
)
log_processor = dict(by_epoch=False)
randomness = dict(seed=0, diff_rank_seed=True)  # different noise on every rank
