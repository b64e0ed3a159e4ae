# SpCL, UDA MSMT17 (labeled source) -> Market-1501 (unlabeled target) (paper: 77.5 mAP / 89.7 top-1).
# The Market-1501 -> MSMT17 recipe with the two domains swapped.
_base_ = ['./spcl_r50_1xb128-50e_uda_market1501-to-msmt17.py']

source_root = 'data/msmt17/'
target_root = 'data/market1501/'
train_dataloader = dict(
    dataset=dict(
        source=dict(type='MSMT17ReIDDataset', data_root=source_root),
        target=dict(type='MarketReIDDataset', data_root=target_root),
    )
)
val_dataloader = dict(
    dataset=dict(
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
