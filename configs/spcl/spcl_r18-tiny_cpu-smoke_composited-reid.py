# CPU smoke test of SpCL (UDA, domain-specific BN) on a tiny composited re-ID set ("composited from real
# images"): a quarter-width ResNet-18 at 32 x 64, 2 epochs x 3 iterations. Build the data with
#   python tools/dataset_converters/composited_reid.py --out data/composited_reid_tiny --train-ids 12 \
#       --test-ids 10 --cameras 4 --distractors 6 --junk 4 --height 64 --width 32
_base_ = ['./spcl_r18_1xb128-20e_uda_composited-reid.py']
custom_imports = dict(imports=['mmssod'], allow_failed_imports=False)

data_root = 'data/composited_reid_tiny/'
model = dict(backbone=dict(base_channels=16, stem_channels=16), head=dict(in_channels=128))
img_size = (32, 64)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_size, keep_ratio=False, interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackReIDInputs', meta_keys=('pid', 'camid', 'sample_idx')),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_size, keep_ratio=False, interpolation='bicubic'),
    dict(type='PackReIDInputs', meta_keys=('pid', 'camid', 'subset', 'sample_idx')),
]
batch_size = 16
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(batch_size=batch_size, iters_per_epoch=3, seed=0),
    dataset=dict(
        source=dict(data_root=data_root + 'source/', pipeline=train_pipeline),
        target=dict(data_root=data_root + 'target/', pipeline=train_pipeline),
    ),
)
val_dataloader = dict(
    batch_size=32,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        datasets=[
            dict(
                type='MarketReIDDataset',
                data_root=data_root + 'target/',
                subset=subset,
                test_mode=True,
                pipeline=test_pipeline,
            )
            for subset in ('query', 'gallery')
        ]
    ),
)
test_dataloader = val_dataloader
custom_hooks = [dict(type='SpCLClusterHook', pipeline=test_pipeline, batch_size=32, num_workers=0)]
train_cfg = dict(max_epochs=2, val_interval=2)
param_scheduler = [dict(type='MultiStepLR', by_epoch=True, milestones=[1], gamma=0.1)]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1, max_keep_ckpts=3, save_best=None))
randomness = dict(seed=0)
