# SpCL, UDA Market-1501 (labeled source) -> MSMT17 (unlabeled target) (paper: 26.8 mAP / 53.7 top-1).
# Batches: 64 source (true identities) + 64 target (pseudo identities); domain-specific BN.
_base_ = ['./_base_/spcl_r50.py']
custom_imports = dict(imports=['mmssod'], allow_failed_imports=False)

source_root = 'data/market1501/'
target_root = 'data/msmt17/'
batch_size = 128
iters_per_epoch = 800  # the official recipe's epoch length with MSMT17 (400 for Market-1501 / PersonX only)
model = dict(domain_specific_bn=True)
train_dataloader = dict(
    batch_size=batch_size,
    sampler=dict(batch_size=batch_size, iters_per_epoch=iters_per_epoch),
    dataset=dict(
        type='TwoDomainReIDDataset',
        source=dict(
            type='MarketReIDDataset',
            data_root=source_root,
            subset='train',
            pipeline={{_base_.train_pipeline}},
        ),
        target=dict(
            type='MSMT17ReIDDataset',
            data_root=target_root,
            subset='train',
            pipeline={{_base_.train_pipeline}},
        ),
    ),
)
val_dataloader = dict(
    dataset=dict(
        type='ConcatDataset',
        datasets=[
            dict(
                type='MSMT17ReIDDataset',
                data_root=target_root,
                subset=subset,
                test_mode=True,
                pipeline={{_base_.test_pipeline}},
            )
            for subset in ('query', 'gallery')
        ],
    )
)
test_dataloader = val_dataloader
