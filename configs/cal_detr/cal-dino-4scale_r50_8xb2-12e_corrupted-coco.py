# Test set: CorCOCO-style corrupted COCO val2017, the out-of-domain set of Cal-DETR
# (./_base_/corrupted-coco_test.py).
# Train with ./cal-dino-4scale_r50_8xb2-12e_coco.py and test its checkpoint here.
_base_ = ['./cal-dino-4scale_r50_8xb2-12e_coco.py', './_base_/corrupted-coco_test.py']

test_dataloader = _base_.corrupted_coco_test_dataloader
test_evaluator = _base_.corrupted_coco_test_evaluator
