# SpCL on the composited two-domain re-ID benchmark ("composited from real images": Fashion-MNIST items on
# scikit-image photos / textures; build it with tools/dataset_converters/composited_reid.py, see
# configs/_base_/datasets/composited_reid.py). Unsupervised on the target domain by default; the UDA children
# add the labeled source domain. ResNet-18 (last stride 1, random init: no weights can be downloaded here) at
# the native 64 x 128 crop size, so that the benchmark trains on CPUs; switch to ../_base_/spcl_r50.py's
# model for the paper's network.
_base_ = ['./spcl_r50.py']
custom_imports = dict(imports=['mmssod'], allow_failed_imports=False)

data_root = 'data/composited_reid/'
source_root = data_root + 'source/'
target_root = data_root + 'target/'
# provenance: a list, since mmengine reads a str metainfo value as the path of a meta file
metainfo = dict(provenance=['composited from real images'])
model = dict(
    backbone=dict(depth=18, init_cfg=None),
    head=dict(in_channels=512),
)
img_size = (64, 128)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_size, keep_ratio=False, interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='mmpretrain.RandomCrop', crop_size=(img_size[1], img_size[0]), padding=5),
    dict(type='mmpretrain.RandomErasing', erase_prob=0.5, mode='const', fill_color={{_base_.erase_fill_bgr}}),
    dict(type='PackReIDInputs', meta_keys=('pid', 'camid', 'sample_idx')),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_size, keep_ratio=False, interpolation='bicubic'),
    dict(type='PackReIDInputs', meta_keys=('pid', 'camid', 'subset', 'sample_idx')),
]
batch_size = 64
iters_per_epoch = 100
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=2,
    sampler=dict(batch_size=batch_size, iters_per_epoch=iters_per_epoch),
    dataset=dict(
        type='MarketReIDDataset',
        data_root=target_root,
        subset='train',
        metainfo=metainfo,
        pipeline=train_pipeline,
    ),
)
val_dataloader = dict(
    num_workers=2,
    dataset=dict(
        type='ConcatDataset',
        datasets=[
            dict(
                type='MarketReIDDataset',
                data_root=target_root,
                subset=subset,
                test_mode=True,
                metainfo=metainfo,
                pipeline=test_pipeline,
            )
            for subset in ('query', 'gallery')
        ],
    ),
)
test_dataloader = val_dataloader
custom_hooks = [dict(type='SpCLClusterHook', pipeline=test_pipeline, batch_size=128, num_workers=2)]
max_epochs = 20
train_cfg = dict(max_epochs=max_epochs, val_interval=5)
param_scheduler = [dict(type='MultiStepLR', by_epoch=True, milestones=[10, 16], gamma=0.1)]
default_hooks = dict(logger=dict(interval=20), checkpoint=dict(interval=5))
