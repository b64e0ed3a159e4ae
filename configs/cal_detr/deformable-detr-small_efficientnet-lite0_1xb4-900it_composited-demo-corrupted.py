# Out-of-domain test of ./deformable-detr-small_efficientnet-lite0_1xb4-900it_composited-demo.py: the demo
# set's corrupted val copy (one random corruption and severity per image; "composited from real images"). Test
# that config's checkpoint here.
_base_ = ['./deformable-detr-small_efficientnet-lite0_1xb4-900it_composited-demo.py']

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
