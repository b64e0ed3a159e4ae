# SpCL, unsupervised re-ID on Market-1501 (paper: 73.1 mAP / 88.1 top-1).
# Layout: data/market1501/{bounding_box_train,query,bounding_box_test}/ (Market-1501-v15.09.15).
_base_ = ['./_base_/spcl_r50.py']
custom_imports = dict(imports=['mmssod'], allow_failed_imports=False)

data_root = 'data/market1501/'
train_dataloader = dict(
    dataset=dict(
        type='MarketReIDDataset', data_root=data_root, subset='train', pipeline={{_base_.train_pipeline}}
    )
)
val_dataloader = dict(
    dataset=dict(
        type='ConcatDataset',
        datasets=[
            dict(
                type='MarketReIDDataset',
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
