# SSMLL for ACRST on the composited long-tailed benchmark, 1% labeled (fold 1), "composited from real images".
_base_ = ['./ssmll_r18_semi-0.1-composited-lt.py']

labeled_dataset = _base_.labeled_dataset
unlabeled_dataset = _base_.unlabeled_dataset
labeled_dataset.ann_file = 'semi_anns/instances_train.1@1.json'
unlabeled_dataset.ann_file = 'semi_anns/instances_train.1@1-unlabeled.json'
score_dataset = dict(unlabeled_dataset, pipeline=_base_.test_pipeline)
train_dataloader = dict(dataset=dict(datasets=[labeled_dataset, unlabeled_dataset]))
