# SSMLL for ACRST on COCO-additional: train2017 labeled, unlabeled2017 unlabeled; 6k supervised pre-training
# iterations (paper).
_base_ = ['./ssmll_r50_8xb16-20k_semi-0.1-coco.py']

labeled_dataset = _base_.labeled_dataset
unlabeled_dataset = _base_.unlabeled_dataset
labeled_dataset.ann_file = 'annotations/instances_train2017.json'
unlabeled_dataset.update(
    ann_file='annotations/image_info_unlabeled2017.json', data_prefix=dict(img_path='unlabeled2017/')
)
score_dataset = dict(unlabeled_dataset, pipeline=_base_.test_pipeline)
train_dataloader = dict(dataset=dict(datasets=[labeled_dataset, unlabeled_dataset]))
model = dict(pretrain_iters=6000)  # paper, COCO-additional
