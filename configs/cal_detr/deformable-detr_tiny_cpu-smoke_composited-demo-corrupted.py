# Out-of-domain test of ./deformable-detr_tiny_cpu-smoke_composited-demo.py: the demo set's corrupted val copy ("composited from real images").
_base_ = ['./deformable-detr_tiny_cpu-smoke_composited-demo.py']

test_dataloader = _base_.corrupted_test_dataloader
test_evaluator = _base_.demo_corrupted_test_evaluator
