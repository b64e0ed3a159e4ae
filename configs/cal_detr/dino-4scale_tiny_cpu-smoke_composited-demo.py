# CPU smoke / benchmark config: a tiny DINO (quarter-width ResNet-18 from scratch, 1 encoder + 3 decoder layers,
# 30 queries) on the embedded demo set (256x256, "composited from real images"), iteration-based. Small enough
# for tests to train 2 iterations with tools/train.py; tools/benchmarks/caldetr_bench.py trains it longer.
_base_ = ['./dino-4scale_r18_4xb4-24e_composited-lt-det.py', './_base_/tiny_cpu-smoke_composited-demo.py']
# the demo data, tiny model and iteration schedule override the baseline's
data_root = _base_.demo_data_root
img_scale = _base_.demo_img_scale
model = dict(_base_.demo_model, dn_cfg=dict(group_cfg=dict(num_dn_queries=20)))  # fewer denoising queries
train_pipeline = _base_.demo_train_pipeline
test_pipeline = _base_.demo_test_pipeline
train_dataloader = _base_.demo_train_dataloader
val_dataloader = _base_.demo_val_dataloader
test_dataloader = val_dataloader
val_evaluator = _base_.demo_val_evaluator
test_evaluator = val_evaluator

train_cfg = _base_.demo_train_cfg
param_scheduler = _base_.demo_param_scheduler
default_hooks = _base_.demo_default_hooks
log_processor = _base_.demo_log_processor
auto_scale_lr = _base_.demo_auto_scale_lr
