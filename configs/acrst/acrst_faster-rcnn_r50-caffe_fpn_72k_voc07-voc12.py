# ACRST on PASCAL VOC: VOC07 trainval labeled + VOC12 trainval unlabeled, evaluated on VOC07 test (COCO-style AP
# and AP50). VOC in COCO format, written by mmdet's converter:
#   python tools/dataset_converters/pascal_voc.py data/VOCdevkit -o data/VOCdevkit/annotations --out-format coco
# (mmdet's tools; gives voc07_trainval.json, voc12_trainval.json, voc07_test.json with VOC20xx/JPEGImages paths).
# Paper schedule for VOC: 72k iterations, burn-in 5k; other hyper-parameters as COCO.
_base_ = ['./acrst_faster-rcnn_r50-caffe_fpn_180k_semi-0.1-coco.py']

data_root = 'data/VOCdevkit/'
metainfo = dict(
    classes=(
        'aeroplane',
        'bicycle',
        'bird',
        'boat',
        'bottle',
        'bus',
        'car',
        'cat',
        'chair',
        'cow',
        'diningtable',
        'dog',
        'horse',
        'motorbike',
        'person',
        'pottedplant',
        'sheep',
        'sofa',
        'train',
        'tvmonitor',
    )
)
ml_scores_file = 'work_dirs/ssmll_r50_8xb16-18k_voc07-voc12/unlabeled_scores.json'
model = dict(
    detector=dict(roi_head=dict(bbox_head=dict(num_classes=20))),
    semi_train_cfg=dict(ml_scores_file=ml_scores_file, burn_in_iters=5000),  # paper
)
labeled_dataset = _base_.labeled_dataset
unlabeled_dataset = _base_.unlabeled_dataset
labeled_dataset.update(
    data_root=data_root,
    metainfo=metainfo,
    ann_file='annotations/voc07_trainval.json',
    data_prefix=dict(img=''),
)
unlabeled_dataset.update(
    data_root=data_root,
    metainfo=metainfo,
    ann_file='annotations/voc12_trainval.json',
    data_prefix=dict(img=''),
)
train_dataloader = dict(dataset=dict(datasets=[labeled_dataset, unlabeled_dataset]))
val_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/voc07_test.json',
        data_prefix=dict(img=''),
    )
)
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/voc07_test.json', classwise=True)
test_evaluator = val_evaluator

max_iters = 72000  # paper
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=4000)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=max_iters, by_epoch=False, milestones=[54000, 64800], gamma=0.1),
]
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=4000, max_keep_ckpts=2))
