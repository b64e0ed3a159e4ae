# SpCL, UDA PersonX (synthetic, labeled source) -> Market-1501 (paper: 73.8 mAP / 88.0 top-1).
# PersonX follows the Market-1501 layout and naming: data/personx/{bounding_box_train,query,bounding_box_test}/.
# Same recipe and target as MSMT17 -> Market-1501; only the source dataset changes.
_base_ = ['./spcl_r50_1xb128-50e_uda_msmt17-to-market1501.py']

source_root = 'data/personx/'
iters_per_epoch = 400  # no MSMT17 here: the official 400 iterations per epoch
train_dataloader = dict(
    sampler=dict(iters_per_epoch=iters_per_epoch),
    dataset=dict(source=dict(type='MarketReIDDataset', data_root=source_root)),
)
