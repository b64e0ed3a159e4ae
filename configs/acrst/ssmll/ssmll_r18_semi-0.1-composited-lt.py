# SSMLL for ACRST on the composited long-tailed benchmark (10% fold 1), "composited from real images":
# the demo's half-width ResNet-18 at 192x192, 4k iterations (the first 400 supervised only); weak view for the
# teacher, strong view (+ colour jitter, Gaussian blur, cutout) for the student.
_base_ = ['./ssmll_r18_semi-0.1-composited-demo.py']

data_root = 'data/composited_lt_det/'
percent = 10
img_size = 192
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
    dict(type='PackInputs', meta_keys=_base_.meta_keys),
]
model = dict(
    pretrain_iters=400,
    prior_prob=0.01,
    data_preprocessor=dict(  # one normalised batch per view (weak, strong)
        _delete_=True,
        type='MultiViewClsDataPreprocessor',
        data_preprocessor=dict(
            type='ClsDataPreprocessor',
            mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375],
            to_rgb=True,
        ),
    ),
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(img_size, img_size)),
    dict(type='PackInputs', meta_keys=_base_.meta_keys),
]
labeled_dataset = _base_.labeled_dataset
unlabeled_dataset = _base_.unlabeled_dataset
labeled_dataset.update(
    data_root=data_root, ann_file=f'semi_anns/instances_train.1@{percent}.json', pipeline=train_pipeline
)
unlabeled_dataset.update(
    data_root=data_root,
    ann_file=f'semi_anns/instances_train.1@{percent}-unlabeled.json',
    pipeline=train_pipeline,
)
score_dataset = dict(unlabeled_dataset, pipeline=test_pipeline)
batch_size = 32
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=4,
    sampler=dict(batch_size=batch_size),
    dataset=dict(datasets=[labeled_dataset, unlabeled_dataset]),
)
val_dataloader = dict(dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
max_iters = 4000
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=1000)
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=max_iters, eta_min=1e-5)]
default_hooks = dict(checkpoint=dict(interval=1000))
