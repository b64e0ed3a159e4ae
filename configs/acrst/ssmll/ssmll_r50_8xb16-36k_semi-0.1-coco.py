# SSMLL for ACRST on COCO-standard 10% (fold 1): ResNet-50 (ImageNet init) multi-label classifier, Mean Teacher,
# focal BCE; paper recipe: images 576x576, Adam lr 1e-5, batch 64 labeled + 64 unlabeled (8 GPUs x 8 + 8).
# Mean Teacher with a weak view (resize + flip) for the teacher and a strong view (+ colour jitter, Gaussian blur,
# cutout) for the student; supervised pre-training for the first 2k iterations (paper: 2k / 2k / 6k for VOC /
# COCO-standard / COCO-additional), then the unlabeled loss starts from teacher = student.
# 36k iterations in all (paper: 18k / 36k / 96k steps for VOC / COCO-standard / COCO-additional). Afterwards:
#   python tools/acrst/ssmll_scores.py <this config> <checkpoint> \
#       --out work_dirs/ssmll_r50_8xb16-36k_semi-0.1-coco/unlabeled_scores.json
_base_ = ['mmpretrain::_base_/default_runtime.py']
default_scope = 'mmpretrain'
custom_imports = dict(imports=['mmssod'], allow_failed_imports=False)

data_root = 'data/coco/'
labeled_ann = 'semi_anns/instances_train2017.1@10.json'
unlabeled_ann = 'semi_anns/instances_train2017.1@10-unlabeled.json'
img_prefix = 'train2017/'
num_classes = 80
img_size = 576
metainfo = None  # class names from the COCO file's categories (ordered by id, as mmdet's CocoDataset)

model = dict(
    type='SSMLL',
    classifier=dict(
        type='ImageClassifier',
        backbone=dict(
            type='ResNet',
            depth=50,
            num_stages=4,
            out_indices=(3,),
            init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50'),
        ),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='MultiLabelLinearClsHead', num_classes=num_classes, in_channels=2048),
    ),
    loss=dict(type='FocalLoss', gamma=2.0, alpha=0.25),
    unsup_weight=1.0,
    pseudo_thr=0.5,
    pretrain_iters=2000,  # paper, COCO-standard
    prior_prob=0.01,  # the untrained head scores classes ~0.01: first pseudo-targets "absent", not noise
    predict_on='teacher',
    data_preprocessor=dict(  # one normalised batch per view (weak, strong)
        type='MultiViewClsDataPreprocessor',
        data_preprocessor=dict(
            type='ClsDataPreprocessor',
            mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375],
            to_rgb=True,
        ),
    ),
)

meta_keys = ('sample_idx', 'img_path', 'img_id', 'labeled', 'ori_shape', 'img_shape', 'scale_factor', 'flip')
weak_view = [
    dict(type='Resize', scale=(img_size, img_size)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
]
strong_view = weak_view + [
    # no hue jitter: mmcv.adjust_hue overflows uint8 on numpy 2 for negative shifts
    dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4),
    dict(type='GaussianBlur', magnitude_range=(0.1, 2.0), magnitude_std='inf', prob=0.5),
    dict(type='RandomErasing', erase_prob=0.7, min_area_ratio=0.02, max_area_ratio=0.2, mode='const'),
]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiView', num_views=[1, 1], transforms=[weak_view, strong_view]),  # inputs: [weak, strong]
    dict(type='PackInputs', meta_keys=meta_keys),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(img_size, img_size)),
    dict(type='PackInputs', meta_keys=meta_keys),
]
labeled_dataset = dict(
    type='CocoMultiLabelDataset',
    data_root=data_root,
    ann_file=labeled_ann,
    data_prefix=dict(img_path=img_prefix),
    metainfo=metainfo,
    labeled=True,
    pipeline=train_pipeline,
)
unlabeled_dataset = dict(
    type='CocoMultiLabelDataset',
    data_root=data_root,
    ann_file=unlabeled_ann,
    data_prefix=dict(img_path=img_prefix),
    metainfo=metainfo,
    labeled=False,
    pipeline=train_pipeline,
)
score_dataset = dict(unlabeled_dataset, pipeline=test_pipeline)  # what tools/acrst/ssmll_scores.py scores

batch_size = 16
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='mmdet.MultiSourceSampler', batch_size=batch_size, source_ratio=[1, 1]),
    dataset=dict(type='ConcatDataset', datasets=[labeled_dataset, unlabeled_dataset]),
)
val_dataloader = dict(
    batch_size=32,
    num_workers=4,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='CocoMultiLabelDataset',
        data_root=data_root,
        ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img_path='val2017/'),
        metainfo=metainfo,
        labeled=True,
        pipeline=test_pipeline,
    ),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='AveragePrecision')
test_evaluator = val_evaluator

max_iters = 36000  # paper, COCO-standard
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=6000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(optimizer=dict(type='Adam', lr=1e-5, weight_decay=1e-4))
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=max_iters, eta_min=1e-7)]
# skip_buffer=False: the teacher's BatchNorm statistics follow the student's (EMA), as its weights do
custom_hooks = [dict(type='mmdet.MeanTeacherHook', momentum=0.0004, skip_buffer=False)]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=6000, max_keep_ckpts=1),
)
log_processor = dict(by_epoch=False)
