# Test set: CorCOCO-style corrupted COCO val2017 (one random corruption and severity per image), the
# out-of-domain set of Cal-DETR. Build it with tools/dataset_converters/corrupted_coco.py (see README.md).
# Train with ./cal-deformable-detr_r50_16xb2-50e_coco.py and test its checkpoint here.
_base_ = ['./cal-deformable-detr_r50_16xb2-50e_coco.py']

corrupted_ann = 'data/coco/annotations/instances_val2017_corrupted.json'
test_dataloader = dict(
    dataset=dict(
        ann_file='annotations/instances_val2017_corrupted.json', data_prefix=dict(img='val2017_corrupted/')
    )
)
test_evaluator = [
    dict(type='CocoMetric', ann_file=corrupted_ann, metric='bbox', format_only=False),
    dict(
        type='DECEMetric',
        ann_file=corrupted_ann,
        score_thr=0.3,
        iou_thr=0.5,
        num_bins=10,
        prefix='dece_corrupted',
    ),
]
