# ACRST on the composited long-tailed benchmark, 1% labeled (fold 1), "composited from real images".
_base_ = ['./acrst_faster-rcnn_r18_fpn_20k_semi-0.1-composited-lt.py']

ml_scores_file = 'work_dirs/ssmll_r18_semi-0.01-composited-lt/unlabeled_scores.json'
model = dict(semi_train_cfg=dict(ml_scores_file=ml_scores_file))
labeled_dataset = _base_.labeled_dataset
unlabeled_dataset = _base_.unlabeled_dataset
labeled_dataset.ann_file = 'semi_anns/instances_train.1@1.json'
unlabeled_dataset.ann_file = 'semi_anns/instances_train.1@1-unlabeled.json'
train_dataloader = dict(dataset=dict(datasets=[labeled_dataset, unlabeled_dataset]))
