# ACRST on COCO-additional: all of train2017 labeled + unlabeled2017 (123k images) unlabeled.
# Schedule of the ACRST paper's arXiv v1 for COCO-additional, 270k iterations with a 90k-iteration burn-in (the
# AAAI version gives none for this setting); learning rate x0.1 at 2/3 and 8/9 of the run, as the 180k base.
_base_ = ['./acrst_faster-rcnn_r50-caffe_fpn_180k_semi-0.1-coco.py']

ml_scores_file = 'work_dirs/ssmll_r50_8xb16-96k_coco-additional/unlabeled_scores.json'
model = dict(semi_train_cfg=dict(ml_scores_file=ml_scores_file, burn_in_iters=90000))  # paper (arXiv v1)
labeled_dataset = _base_.labeled_dataset
unlabeled_dataset = _base_.unlabeled_dataset
labeled_dataset.ann_file = 'annotations/instances_train2017.json'
unlabeled_dataset.ann_file = 'annotations/image_info_unlabeled2017.json'
unlabeled_dataset.data_prefix = dict(img='unlabeled2017/')
train_dataloader = dict(dataset=dict(datasets=[labeled_dataset, unlabeled_dataset]))

max_iters = 270000  # paper (arXiv v1)
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=20000)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=max_iters, by_epoch=False, milestones=[180000, 240000], gamma=0.1),
]
