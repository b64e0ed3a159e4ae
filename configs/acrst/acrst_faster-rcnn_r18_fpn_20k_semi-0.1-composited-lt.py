# ACRST on the composited long-tailed benchmark (384x384 canvases, imbalance 50, 10% labeled fold 1),
# "composited from real images", with a half-width ResNet-18 Faster R-CNN trained from scratch, batch 4 + 4,
# 20k iterations; everything but the detector's backbone as in the demo config.
# Build the data: python tools/dataset_converters/composited_det.py --out data/composited_lt_det --seed 0
_base_ = ['./acrst_faster-rcnn_efficientnet-lite0_fpn_semi-0.25-composited-demo.py']

data_root = 'data/composited_lt_det/'
percent = 10
ml_scores_file = 'work_dirs/ssmll_r18_semi-0.1-composited-lt/unlabeled_scores.json'

# half-width ResNet-18 (base 32 channels) from scratch over strides 4-32 (+64 from FPN); heads of the demo
strides = [4, 8, 16, 32]
model = dict(
    detector=dict(
        backbone=dict(
            _delete_=True,
            type='ResNet',
            depth=18,
            stem_channels=32,
            base_channels=32,
            num_stages=4,
            out_indices=(0, 1, 2, 3),
            frozen_stages=-1,
            norm_cfg=dict(type='BN', requires_grad=True),
            norm_eval=False,
            style='pytorch',
            init_cfg=None,
        ),
        neck=dict(in_channels=[32, 64, 128, 256], num_outs=5),
        rpn_head=dict(anchor_generator=dict(strides=strides + [64])),
        roi_head=dict(bbox_roi_extractor=dict(featmap_strides=strides)),
    ),
    semi_train_cfg=dict(ml_scores_file=ml_scores_file, burn_in_iters=2000, unsup_weight=2.0),
)
scale = [(800, 320), (800, 480)]
paste = dict(
    type='ACRSTPaste', num_paste=(1, 3), scale_range=(0.7, 1.3), bbox_occluded_thr=8, mask_occluded_thr=200
)
sup_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomResize', scale=scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandAugment', aug_space=_base_.color_space, aug_num=1),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    paste,
    dict(type='MultiBranch', branch_field=_base_.branch_field, sup=dict(type='PackDetInputs')),
]
weak_pipeline = [
    dict(type='RandomResize', scale=scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs', meta_keys=_base_.student_meta_keys[:-2]),
]
strong_pipeline = [
    dict(type='RandomResize', scale=scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomOrder',
        transforms=[
            dict(type='RandAugment', aug_space=_base_.color_space, aug_num=1),
            dict(type='RandAugment', aug_space=_base_.geometric, aug_num=1),
        ],
    ),
    dict(type='RandomErasing', n_patches=(1, 5), ratio=(0, 0.2)),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    paste,
    dict(type='PackDetInputs', meta_keys=_base_.student_meta_keys),
]
unsup_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadEmptyAnnotations'),
    dict(
        type='MultiBranch',
        branch_field=_base_.branch_field,
        unsup_teacher=weak_pipeline,
        unsup_student=strong_pipeline,
    ),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(384, 384), keep_ratio=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
labeled_dataset = _base_.labeled_dataset
labeled_dataset.update(
    data_root=data_root, ann_file=f'semi_anns/instances_train.1@{percent}.json', pipeline=sup_pipeline
)
unlabeled_dataset = _base_.unlabeled_dataset
unlabeled_dataset.update(
    data_root=data_root,
    ann_file=f'semi_anns/instances_train.1@{percent}-unlabeled.json',
    pipeline=unsup_pipeline,
)
batch_size = 8
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=4,
    sampler=dict(batch_size=batch_size, source_ratio=[1, 1]),
    dataset=dict(datasets=[labeled_dataset, unlabeled_dataset]),
)
val_dataloader = dict(batch_size=8, num_workers=2, dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator

max_iters = 20000
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=2000)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters, milestones=[15000, 18000], gamma=0.1),
]
custom_hooks = [
    dict(type='MeanTeacherHook', momentum=0.0004, skip_buffer=False),
    dict(
        type='CropBankHook',
        label_cap=50,
        pseudo_cap=50,
        refresh_interval=500,
        beta=0.6,
        conf_thr=0.1,
    ),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2000, max_keep_ckpts=2),
)
