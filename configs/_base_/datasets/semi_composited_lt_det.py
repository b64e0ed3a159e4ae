# Semi-supervised composited long-tailed detection, "composited from real images". Mirrors mmdet's
# configs/_base_/datasets/semi_coco_detection.py (MultiBranch sup / unsup_teacher / unsup_student pipelines,
# GroupMultiSourceSampler over a ConcatDataset of labeled + unlabeled), on the splits written by
#   python tools/dataset_converters/composited_det.py --out data/composited_lt_det --seed 0
# semi_anns/instances_train.{fold}@{percent}.json (+ -unlabeled.json), folds 1-5, percents 1 / 5 / 10.
# `fold` / `percent` below are read when THIS file is parsed: a child config that wants another split
# overrides labeled_dataset.ann_file / unlabeled_dataset.ann_file (as mmdet's soft-teacher configs do).
_base_ = './composited_lt_det.py'  # the data folder, metainfo and the val / test sets

dataset_type = _base_.dataset_type
data_root = _base_.data_root
metainfo = _base_.metainfo
backend_args = _base_.backend_args
fold = 1
percent = 10

color_space = [
    [dict(type='ColorTransform')],
    [dict(type='AutoContrast')],
    [dict(type='Equalize')],
    [dict(type='Sharpness')],
    [dict(type='Posterize')],
    [dict(type='Solarize')],
    [dict(type='Color')],
    [dict(type='Contrast')],
    [dict(type='Brightness')],
]
geometric = [
    [dict(type='Rotate')],
    [dict(type='ShearX')],
    [dict(type='ShearY')],
    [dict(type='TranslateX')],
    [dict(type='TranslateY')],
]
# canvases are 384x384: random short side 320-480 (mmdet's COCO setting is 400-1200 for ~640x480 images)
scale = [(800, 320), (800, 480)]
test_scale = (384, 384)

branch_field = ['sup', 'unsup_teacher', 'unsup_student']
# labeled data -> student, supervised loss
sup_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomResize', scale=scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandAugment', aug_space=color_space, aug_num=1),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='MultiBranch', branch_field=branch_field, sup=dict(type='PackDetInputs')),
]
# unlabeled data, weak view -> teacher (pseudo labels)
weak_pipeline = [
    dict(type='RandomResize', scale=scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='PackDetInputs',
        meta_keys=(
            'img_id',
            'img_path',
            'ori_shape',
            'img_shape',
            'scale_factor',
            'flip',
            'flip_direction',
            'homography_matrix',
        ),
    ),
]
# unlabeled data, strong view -> student (unsupervised loss)
strong_pipeline = [
    dict(type='RandomResize', scale=scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomOrder',
        transforms=[
            dict(type='RandAugment', aug_space=color_space, aug_num=1),
            dict(type='RandAugment', aug_space=geometric, aug_num=1),
        ],
    ),
    dict(type='RandomErasing', n_patches=(1, 5), ratio=(0, 0.2)),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(
        type='PackDetInputs',
        meta_keys=(
            'img_id',
            'img_path',
            'ori_shape',
            'img_shape',
            'scale_factor',
            'flip',
            'flip_direction',
            'homography_matrix',
        ),
    ),
]
unsup_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadEmptyAnnotations'),
    dict(
        type='MultiBranch',
        branch_field=branch_field,
        unsup_teacher=weak_pipeline,
        unsup_student=strong_pipeline,
    ),
]
batch_size = 5
num_workers = 2
labeled_dataset = dict(
    type=dataset_type,
    data_root=data_root,
    metainfo=metainfo,
    ann_file=f'semi_anns/instances_train.{fold}@{percent}.json',
    data_prefix=dict(img='train/'),
    filter_cfg=dict(filter_empty_gt=True, min_size=8),
    pipeline=sup_pipeline,
    backend_args=backend_args,
)
unlabeled_dataset = dict(
    type=dataset_type,
    data_root=data_root,
    metainfo=metainfo,
    ann_file=f'semi_anns/instances_train.{fold}@{percent}-unlabeled.json',
    data_prefix=dict(img='train/'),
    filter_cfg=dict(filter_empty_gt=False),
    pipeline=unsup_pipeline,
    backend_args=backend_args,
)
train_dataloader = dict(
    _delete_=True,  # another sampler and dataset than the base's supervised loader
    batch_size=batch_size,
    num_workers=num_workers,
    persistent_workers=True,
    sampler=dict(type='GroupMultiSourceSampler', batch_size=batch_size, source_ratio=[1, 4]),
    dataset=dict(type='ConcatDataset', datasets=[labeled_dataset, unlabeled_dataset]),
)

# validation and test: the base's val split (no annotations loaded by the pipeline)
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=test_scale, keep_ratio=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
