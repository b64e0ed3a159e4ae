# Baseline DINO-4scale on the composited long-tailed detection benchmark ("composited from real images":
# Fashion-MNIST items on scikit-image photos, 10 classes, 384x384). ResNet-18 trained from scratch (no weights
# can be downloaded offline), 300 queries, 24 epochs; box AP and D-ECE (+ reliability diagram) on clean val.
# Data, model size and schedule: ./_base_/composited-lt-det_r18_4xb4-24e.py.
_base_ = [
    'mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py',
    './_base_/composited-lt-det_r18_4xb4-24e.py',
]
# the composited data, model size and schedule override the mmdet config's
data_root = _base_.lt_det_data_root
model = _base_.lt_det_model
train_pipeline = _base_.lt_det_train_pipeline
test_pipeline = _base_.lt_det_test_pipeline
train_dataloader = _base_.lt_det_train_dataloader
val_dataloader = _base_.lt_det_val_dataloader
test_dataloader = val_dataloader
val_evaluator = _base_.lt_det_val_evaluator
test_evaluator = val_evaluator

max_epochs = _base_.lt_det_max_epochs
train_cfg = _base_.lt_det_train_cfg
param_scheduler = _base_.lt_det_param_scheduler
auto_scale_lr = _base_.lt_det_auto_scale_lr
