# SSMLL for ACRST on COCO-additional: train2017 labeled, unlabeled2017 unlabeled; 96k iterations, the first 6k
# supervised (paper).
_base_ = ['./ssmll_r50_8xb16-36k_semi-0.1-coco.py']

labeled_dataset = _base_.labeled_dataset
unlabeled_dataset = _base_.unlabeled_dataset
labeled_dataset.ann_file = 'annotations/instances_train2017.json'
unlabeled_dataset.update(
    ann_file='annotations/image_info_unlabeled2017.json', data_prefix=dict(img_path='unlabeled2017/')
)
score_dataset = dict(unlabeled_dataset, pipeline=_base_.test_pipeline)
train_dataloader = dict(dataset=dict(datasets=[labeled_dataset, unlabeled_dataset]))
model = dict(pretrain_iters=6000)  # paper, COCO-additional
max_iters = 96000  # paper, COCO-additional
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=8000)
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=max_iters, eta_min=1e-7)]
default_hooks = dict(checkpoint=dict(interval=8000))
