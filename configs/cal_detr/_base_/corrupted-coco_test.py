# The out-of-domain test set of Cal-DETR: CorCOCO-style corrupted COCO val2017 (one random corruption and
# severity per image). Build it with tools/dataset_converters/corrupted_coco.py (see ../README.md).
#
# Used as the second base next to a COCO config, whose test keys it must not repeat (mmengine refuses a key
# defined by two bases): the test settings are held as `corrupted_coco_*` variables and the child config
# assigns them (see ../cal-dino-4scale_r50_8xb2-12e_corrupted-coco.py).
corrupted_ann = 'data/coco/annotations/instances_val2017_corrupted.json'
corrupted_coco_test_dataloader = dict(
    dataset=dict(
        ann_file='annotations/instances_val2017_corrupted.json', data_prefix=dict(img='val2017_corrupted/')
    )
)
corrupted_coco_test_evaluator = [
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
