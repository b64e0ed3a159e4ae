# SSMLL for ACRST on the composited long-tailed benchmark (10% fold 1), "composited from real images":
# a half-width ResNet-18 from scratch at 192x192, 4k iterations (the first 400 supervised only); weak view for
# the teacher, strong view (+ colour jitter, Gaussian blur, cutout) for the student, as in the demo config.
_base_ = ['./ssmll_efficientnet-lite0_semi-0.25-composited-demo.py']

data_root = 'data/composited_lt_det/'
percent = 10
img_size = 192
weak_view = [
    dict(type='Resize', scale=(img_size, img_size)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
]
strong_view = weak_view + _base_.strong_view[len(_base_.weak_view) :]  # the demo's photometric steps
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiView', num_views=[1, 1], transforms=[weak_view, strong_view]),
    dict(type='PackInputs', meta_keys=_base_.meta_keys),
]
model = dict(
    classifier=dict(
        backbone=dict(
            _delete_=True,
            type='ResNet',
            depth=18,
            stem_channels=32,
            base_channels=32,
            num_stages=4,
            out_indices=(3,),
        ),
        head=dict(in_channels=256),
    ),
    pretrain_iters=400,
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
