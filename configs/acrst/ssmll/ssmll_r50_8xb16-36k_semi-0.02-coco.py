# SSMLL for ACRST on COCO-standard 2% (fold 1); everything else as the 10% config.
_base_ = ['./ssmll_r50_8xb16-36k_semi-0.1-coco.py']

labeled_dataset = _base_.labeled_dataset
unlabeled_dataset = _base_.unlabeled_dataset
labeled_dataset.ann_file = 'semi_anns/instances_train2017.1@2.json'
unlabeled_dataset.ann_file = 'semi_anns/instances_train2017.1@2-unlabeled.json'
score_dataset = dict(unlabeled_dataset, pipeline=_base_.test_pipeline)
train_dataloader = dict(dataset=dict(datasets=[labeled_dataset, unlabeled_dataset]))
