# Out-of-domain test of ./dino-4scale_r18_4xb4-24e_composited-lt-det.py: the corrupted copy of the composited val set (one random corruption and
# severity per image, fixed seed; "composited from real images"). Test the checkpoint trained with that config.
_base_ = ['./dino-4scale_r18_4xb4-24e_composited-lt-det.py']

test_dataloader = dict(
    dataset=dict(ann_file='annotations/instances_val_corrupted.json', data_prefix=dict(img='val_corrupted/'))
)
test_evaluator = [
    dict(
        type='CocoMetric',
        ann_file=_base_.data_root + 'annotations/instances_val_corrupted.json',
        metric='bbox',
    ),
    dict(
        type='DECEMetric',
        ann_file=_base_.data_root + 'annotations/instances_val_corrupted.json',
        prefix='dece_corrupted',
    ),
]
