# SSMLL for ACRST on VOC: VOC07 trainval labeled, VOC12 trainval unlabeled (COCO-format files, see the ACRST config).
_base_ = ['./ssmll_r50_8xb16-36k_semi-0.1-coco.py']

data_root = 'data/VOCdevkit/'
labeled_dataset = _base_.labeled_dataset
unlabeled_dataset = _base_.unlabeled_dataset
labeled_dataset.update(
    data_root=data_root, ann_file='annotations/voc07_trainval.json', data_prefix=dict(img_path='')
)
unlabeled_dataset.update(
    data_root=data_root, ann_file='annotations/voc12_trainval.json', data_prefix=dict(img_path='')
)
score_dataset = dict(unlabeled_dataset, pipeline=_base_.test_pipeline)
model = dict(classifier=dict(head=dict(num_classes=20)), pretrain_iters=2000)  # paper, VOC
train_dataloader = dict(dataset=dict(datasets=[labeled_dataset, unlabeled_dataset]))
val_dataloader = dict(
    dataset=dict(data_root=data_root, ann_file='annotations/voc07_test.json', data_prefix=dict(img_path=''))
)
test_dataloader = val_dataloader
max_iters = 18000  # paper, VOC
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=3000)
default_hooks = dict(checkpoint=dict(interval=3000))
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=max_iters, eta_min=1e-7)]
