# The CPU-scale DETR-family setting of tools/benchmarks/caldetr_bench.py: the ImageNet-pretrained
# EfficientNet-Lite0 (mmssod EfficientNetLite: timm features at strides 8 / 16 / 32, out_indices=(2, 3, 4),
# channels 40 / 112 / 320; the mapper adds a stride-64 level), a small transformer (2 encoder / 3 decoder
# layers, 100 queries), 900 iterations at batch 4.
#
# Used as the second base next to a ./*_tiny_cpu-smoke_composited-demo.py config, whose keys it must not
# repeat (mmengine refuses a key defined by two bases): the settings are held as `lite0_*` variables and the
# child config assigns them (see ../dino-4scale-small_efficientnet-lite0_1xb4-900it_composited-demo.py).
lite0_model = dict(
    num_queries=100,
    backbone=dict(
        _delete_=True,
        type='EfficientNetLite',
        arch='lite0',
        out_indices=(2, 3, 4),
        frozen_stages=1,  # stem + the stride-4 stage frozen, BatchNorm in eval mode (batch 4), as for ResNets
        norm_eval=True,
        pretrained=True,
    ),
    neck=dict(in_channels=[40, 112, 320]),
    encoder=dict(num_layers=2, layer_cfg=dict(ffn_cfg=dict(feedforward_channels=256))),
    decoder=dict(num_layers=3, layer_cfg=dict(ffn_cfg=dict(feedforward_channels=256))),
    test_cfg=dict(max_per_img=100),
)

lite0_max_iters = 900
lite0_train_cfg = dict(max_iters=lite0_max_iters, val_interval=lite0_max_iters)
lite0_param_scheduler = [
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=lite0_max_iters, milestones=[765], gamma=0.1)
]
lite0_default_hooks = dict(
    logger=dict(interval=50), checkpoint=dict(by_epoch=False, interval=lite0_max_iters, max_keep_ckpts=1)
)
