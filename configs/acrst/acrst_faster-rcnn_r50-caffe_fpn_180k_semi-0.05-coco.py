# ACRST on COCO-standard 5% (fold 1); everything else as the 10% config.
_base_ = ['./acrst_faster-rcnn_r50-caffe_fpn_180k_semi-0.1-coco.py']

ml_scores_file = 'work_dirs/ssmll_r50_8xb16-36k_semi-0.05-coco/unlabeled_scores.json'
model = dict(semi_train_cfg=dict(ml_scores_file=ml_scores_file, burn_in_iters=5000))  # paper burn-in
labeled_dataset = _base_.labeled_dataset
unlabeled_dataset = _base_.unlabeled_dataset
labeled_dataset.ann_file = 'semi_anns/instances_train2017.1@5.json'
unlabeled_dataset.ann_file = 'semi_anns/instances_train2017.1@5-unlabeled.json'
train_dataloader = dict(dataset=dict(datasets=[labeled_dataset, unlabeled_dataset]))
