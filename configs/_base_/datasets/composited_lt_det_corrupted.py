# Composited long-tailed detection, test = the corrupted val copy (one random corruption + severity per image,
# fixed seed): the out-of-domain (CorCOCO-style) set for calibration. "composited from real images".
# Build it with composited_det.py (default) or redraw it with:
#   python tools/dataset_converters/composited_corrupt.py --out data/composited_lt_det --seed 0
_base_ = './composited_lt_det.py'

data_root = 'data/composited_lt_det/'
test_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        ann_file='annotations/instances_val_corrupted.json',
        data_prefix=dict(img='val_corrupted/'),
    )
)
test_evaluator = dict(ann_file=data_root + 'annotations/instances_val_corrupted.json')
