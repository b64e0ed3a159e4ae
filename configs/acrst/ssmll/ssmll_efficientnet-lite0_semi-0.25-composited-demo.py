# SSMLL (ACRST's semi-supervised multi-label classifier) for the CPU demo (`make demo`): the ImageNet-pretrained
# EfficientNet-Lite0 (pooled stride-32 features) trained with Mean Teacher and focal BCE on the demo set's 25%
# labeled split + unlabeled images, "composited from real images": the first 40 iterations supervised only, then
# a weak view for the teacher and a strong view (colour jitter, blur, cutout) for the student.
# tools/acrst/ssmll_scores.py then writes the unlabeled images' class scores for ACRST.
_base_ = ['mmpretrain::_base_/default_runtime.py']
default_scope = 'mmpretrain'
custom_imports = dict(imports=['mmssod'], allow_failed_imports=False)

data_root = 'data/composited_det_demo/'
classes = (
    'T-shirt/top',
    'Trouser',
    'Pullover',
    'Dress',
    'Coat',
    'Sandal',
    'Shirt',
    'Sneaker',
    'Bag',
    'Ankle boot',
)
labeled_ann = 'semi_anns/instances_train.1@25.json'
unlabeled_ann = 'semi_anns/instances_train.1@25-unlabeled.json'
img_size = 128

model = dict(
    type='SSMLL',
    classifier=dict(
        type='ImageClassifier',
        backbone=dict(
            type='EfficientNetLite', arch='lite0', out_indices=(4,), frozen_stages=3, norm_eval=True
        ),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='MultiLabelLinearClsHead', num_classes=len(classes), in_channels=320),
    ),
    loss=dict(type='FocalLoss', gamma=2.0, alpha=0.25),
    unsup_weight=1.0,
    pseudo_thr=0.5,
    pretrain_iters=40,
    prior_prob=0.01,
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
    dict(type='MultiView', num_views=[1, 1], transforms=[weak_view, strong_view]),
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
    data_prefix=dict(img_path='train/'),
    metainfo=dict(classes=classes),
    labeled=True,
    pipeline=train_pipeline,
)
unlabeled_dataset = dict(
    type='CocoMultiLabelDataset',
    data_root=data_root,
    ann_file=unlabeled_ann,
    data_prefix=dict(img_path='train/'),
    metainfo=dict(classes=classes),
    labeled=False,
    pipeline=train_pipeline,
)
# what tools/acrst/ssmll_scores.py scores (the unlabeled set, no augmentation)
score_dataset = dict(unlabeled_dataset, pipeline=test_pipeline)

# every batch half labeled, half unlabeled (mmdet's MultiSourceSampler over labeled + unlabeled)
batch_size = 8
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=1,
    sampler=dict(type='mmdet.MultiSourceSampler', batch_size=batch_size, source_ratio=[1, 1]),
    dataset=dict(type='ConcatDataset', datasets=[labeled_dataset, unlabeled_dataset]),
)
val_dataloader = dict(
    batch_size=16,
    num_workers=1,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='CocoMultiLabelDataset',
        data_root=data_root,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img_path='val/'),
        metainfo=dict(classes=classes),
        labeled=True,
        pipeline=test_pipeline,
    ),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='AveragePrecision')
test_evaluator = val_evaluator

max_iters = 100
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(optimizer=dict(type='Adam', lr=1e-3, weight_decay=1e-4))
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=max_iters, eta_min=1e-5)]
# skip_buffer=False: the teacher's BatchNorm statistics follow the student's (EMA), as its weights do
custom_hooks = [dict(type='mmdet.MeanTeacherHook', momentum=0.02, skip_buffer=False)]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=25),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters, max_keep_ckpts=1),
)
log_processor = dict(by_epoch=False)
