# SpCL, UDA PersonX (synthetic, labeled source) -> Market-1501 (paper: 73.8 mAP / 88.0 top-1).
# PersonX follows the Market-1501 layout and naming: data/personx/{bounding_box_train,query,bounding_box_test}/.
_base_ = ['./_base_/spcl_r50.py']
custom_imports = dict(imports=['mmssod'], allow_failed_imports=False)

source_root = 'data/personx/'
target_root = 'data/market1501/'
batch_size = 128
model = dict(domain_specific_bn=True)
train_dataloader = dict(
    batch_size=batch_size,
    sampler=dict(batch_size=batch_size),
    dataset=dict(
        type='TwoDomainReIDDataset',
        source=dict(
            type='MarketReIDDataset',
            data_root=source_root,
            subset='train',
            pipeline={{_base_.train_pipeline}},
        ),
        target=dict(
            type='MarketReIDDataset',
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
                type='MarketReIDDataset',
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
