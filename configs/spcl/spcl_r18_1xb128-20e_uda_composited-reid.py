# SpCL, UDA source -> target on the composited two-domain re-ID benchmark ("composited from real images"):
# batches of 64 labeled source + 64 pseudo-labeled target images, domain-specific BN.
_base_ = ['./_base_/spcl_r18_composited-reid.py']
custom_imports = dict(imports=['mmssod'], allow_failed_imports=False)

batch_size = 128
model = dict(domain_specific_bn=True)
train_dataloader = dict(
    batch_size=batch_size,
    sampler=dict(batch_size=batch_size),
    dataset=dict(
        _delete_=True,
        type='TwoDomainReIDDataset',
        source=dict(
            type='MarketReIDDataset',
            data_root={{_base_.source_root}},
            subset='train',
            metainfo={{_base_.metainfo}},
            pipeline={{_base_.train_pipeline}},
        ),
        target=dict(
            type='MarketReIDDataset',
            data_root={{_base_.target_root}},
            subset='train',
            metainfo={{_base_.metainfo}},
            pipeline={{_base_.train_pipeline}},
        ),
    ),
)
