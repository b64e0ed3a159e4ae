# SSMLL for the CPU demo (`make demo`) on the ImageNet-pretrained EfficientNet-Lite0 (stride-32 features, pooled):
# the demo set's 25% labeled split + its unlabeled images, "composited from real images"; everything else as the
# ResNet-18 demo config. tools/acrst/ssmll_scores.py then writes the unlabeled images' class scores for ACRST.
_base_ = ['./ssmll_r18_semi-0.1-composited-demo.py']

labeled_ann = 'semi_anns/instances_train.1@25.json'
unlabeled_ann = 'semi_anns/instances_train.1@25-unlabeled.json'
model = dict(
    classifier=dict(
        backbone=dict(
            _delete_=True,
            type='EfficientNetLite',
            arch='lite0',
            out_indices=(4,),
            frozen_stages=3,
            norm_eval=True,
        ),
        head=dict(in_channels=320),
    )
)
labeled_dataset = dict(_base_.labeled_dataset, ann_file=labeled_ann)
unlabeled_dataset = dict(_base_.unlabeled_dataset, ann_file=unlabeled_ann)
score_dataset = dict(_base_.score_dataset, ann_file=unlabeled_ann)
train_dataloader = dict(dataset=dict(datasets=[labeled_dataset, unlabeled_dataset]))
