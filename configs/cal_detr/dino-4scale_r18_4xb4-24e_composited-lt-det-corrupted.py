# Out-of-domain test of ./dino-4scale_r18_4xb4-24e_composited-lt-det.py: the corrupted copy of the composited val set (one random corruption and
# severity per image, fixed seed; "composited from real images"). Test the checkpoint trained with that config.
_base_ = ['./dino-4scale_r18_4xb4-24e_composited-lt-det.py']

test_dataloader = _base_.corrupted_test_dataloader
test_evaluator = _base_.lt_det_corrupted_test_evaluator
