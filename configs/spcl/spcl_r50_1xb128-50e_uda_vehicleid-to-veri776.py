# SpCL, UDA VehicleID (labeled source) -> VeRi-776 (unlabeled target) (paper: 38.9 mAP / 80.4 top-1).
# VehicleID: data/vehicleid/{image/, train_test_split/train_list.txt}.
# VeRi-776: data/veri776/{image_train,image_query,image_test}/ named <vid>_c<cam>_... (Market-style naming).
_base_ = ['./_base_/spcl_r50.py']
custom_imports = dict(imports=['mmssod'], allow_failed_imports=False)

source_root = 'data/vehicleid/'
target_root = 'data/veri776/'
img_size = (224, 224)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_size, keep_ratio=False, interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='mmpretrain.RandomCrop', crop_size=(img_size[1], img_size[0]), padding=10),
    dict(type='ReIDRandomErasing', erase_prob=0.5, mode='const', fill_color={{_base_.erase_fill_bgr}}),
    dict(type='PackReIDInputs', meta_keys=('pid', 'camid', 'sample_idx')),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_size, keep_ratio=False, interpolation='bicubic'),
    dict(type='PackReIDInputs', meta_keys=('pid', 'camid', 'subset', 'sample_idx')),
]
batch_size = 128
iters_per_epoch = 800  # the official recipe's epoch length for VehicleID / VeRi-776
model = dict(domain_specific_bn=True)
train_dataloader = dict(
    batch_size=batch_size,
    sampler=dict(batch_size=batch_size, iters_per_epoch=iters_per_epoch),
    dataset=dict(
        type='TwoDomainReIDDataset',
        source=dict(type='VehicleIDReIDDataset', data_root=source_root, pipeline=train_pipeline),
        target=dict(
            type='MarketReIDDataset',
            data_root=target_root,
            subset='train',
            data_prefix=dict(img_path='image_train'),
            pipeline=train_pipeline,
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
                data_prefix=dict(img_path=folder),
                test_mode=True,
                pipeline=test_pipeline,
            )
            for subset, folder in (('query', 'image_query'), ('gallery', 'image_test'))
        ],
    )
)
test_dataloader = val_dataloader
custom_hooks = [
    dict(
        type='SpCLClusterHook',
        pipeline=test_pipeline,
        eps=0.6,
        eps_gap=0.02,
        min_samples=4,
        k1=30,
        k2=6,
        batch_size=128,
        num_workers=4,
    )
]
