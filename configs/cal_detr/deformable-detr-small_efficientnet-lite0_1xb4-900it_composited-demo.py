# CPU-scale Deformable-DETR on the ImageNet-pretrained EfficientNet-Lite0 (mmssod EfficientNetLite: timm
# features at strides 8 / 16 / 32, out_indices=(2, 3, 4), channels 40 / 112 / 320; the mapper adds a stride-64
# level) with a small transformer (2 encoder / 3 decoder layers, 100 queries) on the demo set (300 train / 100
# val images, 256x256, "composited from real images"), batch 4, 900 iterations: the Deformable-DETR family of
# tools/benchmarks/caldetr_bench.py (--family ddetr). Data, pipelines and evaluators (box AP + D-ECE) come
# from the tiny smoke config; the model settings mirror
# ./dino-4scale-small_efficientnet-lite0_1xb4-900it_composited-demo.py.
_base_ = ['./deformable-detr_tiny_cpu-smoke_composited-demo.py']

model = dict(
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

max_iters = 900
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters, milestones=[765], gamma=0.1)
]
default_hooks = dict(
    logger=dict(interval=50), checkpoint=dict(by_epoch=False, interval=max_iters, max_keep_ckpts=1)
)
