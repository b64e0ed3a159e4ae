# CPU-scale Deformable-DETR on the ImageNet-pretrained EfficientNet-Lite0 (mmssod EfficientNetLite: timm
# features at strides 8 / 16 / 32, out_indices=(2, 3, 4), channels 40 / 112 / 320; the mapper adds a stride-64
# level) with a small transformer (2 encoder / 3 decoder layers, 100 queries) on the demo set (300 train / 100
# val images, 256x256, "composited from real images"), batch 4, 900 iterations: the Deformable-DETR family of
# tools/benchmarks/caldetr_bench.py (--family ddetr). Data, pipelines and evaluators (box AP + D-ECE) come
# from the tiny smoke config; the model and schedule from ./_base_/small_efficientnet-lite0_1xb4-900it.py, as
# for ./dino-4scale-small_efficientnet-lite0_1xb4-900it_composited-demo.py.
_base_ = [
    './deformable-detr_tiny_cpu-smoke_composited-demo.py',
    './_base_/small_efficientnet-lite0_1xb4-900it.py',
]
# the EfficientNet-Lite0 model and 900-iteration schedule override the tiny config's
model = _base_.lite0_model
max_iters = _base_.lite0_max_iters
train_cfg = _base_.lite0_train_cfg
param_scheduler = _base_.lite0_param_scheduler
default_hooks = _base_.lite0_default_hooks
