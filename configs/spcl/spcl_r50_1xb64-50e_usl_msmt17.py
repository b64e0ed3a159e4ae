# SpCL, unsupervised re-ID on MSMT17 (paper: 19.1 mAP / 42.3 top-1); 800 iterations per epoch.
# Layout: data/msmt17/{train,test}/ + list_{train,val,query,gallery}.txt (MSMT17_V1).
_base_ = ['./_base_/spcl_r50.py']
custom_imports = dict(imports=['mmssod'], allow_failed_imports=False)

data_root = 'data/msmt17/'
iters_per_epoch = 800  # the official recipe's epoch length for MSMT17 (400 for Market-1501 / PersonX)
train_dataloader = dict(
    sampler=dict(iters_per_epoch=iters_per_epoch),
    dataset=dict(
        type='MSMT17ReIDDataset', data_root=data_root, subset='train', pipeline={{_base_.train_pipeline}}
    ),
)
val_dataloader = dict(
    dataset=dict(
        type='ConcatDataset',
        datasets=[
            dict(
                type='MSMT17ReIDDataset',
                data_root=data_root,
                subset=subset,
                test_mode=True,
                pipeline={{_base_.test_pipeline}},
            )
            for subset in ('query', 'gallery')
        ],
    )
)
test_dataloader = val_dataloader
