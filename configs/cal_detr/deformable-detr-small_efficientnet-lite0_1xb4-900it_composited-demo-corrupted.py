# Out-of-domain test of ./deformable-detr-small_efficientnet-lite0_1xb4-900it_composited-demo.py: the demo
# set's corrupted val copy (one random corruption and severity per image; "composited from real images"). Test
# that config's checkpoint here.
_base_ = ['./deformable-detr-small_efficientnet-lite0_1xb4-900it_composited-demo.py']

test_dataloader = _base_.corrupted_test_dataloader
test_evaluator = _base_.demo_corrupted_test_evaluator
