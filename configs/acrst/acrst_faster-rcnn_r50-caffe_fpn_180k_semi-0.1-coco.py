# ACRST on COCO-standard 10% (fold 1): Faster R-CNN R50-caffe FPN, Mean Teacher (mmdet's Soft Teacher framework)
# with CropBank pastes (FBR + AFFR), two-stage pseudo-label filtering and selective supervision.
# Paper hyper-parameters (AAAI 2022): batch 32 labeled + 32 unlabeled (8 GPUs x 4 + 4), SGD lr 0.01 momentum 0.9,
# EMA 0.9996, unsup weight 4, tau_cls 0.7, tau_ml 0.2, beta 0.6, 180k iterations, burn-in 3k / 5k / 5k / 10k
# iterations for COCO-standard 1 / 2 / 5 / 10% (the teacher becomes a copy of the student when it ends).
# The label bank holds the whole labeled set; the pseudo-bank cap and refresh interval are ours (see README).
# Before training: train SSMLL (configs/acrst/ssmll/ssmll_r50_8xb16-36k_semi-0.1-coco.py) and write its scores:
#   python tools/acrst/ssmll_scores.py <ssmll config> <ssmll checkpoint> --out <ml_scores_file below>
_base_ = ['mmdet::soft_teacher/soft-teacher_faster-rcnn_r50-caffe_fpn_180k_semi-0.1-coco.py']
custom_imports = dict(imports=['mmssod'], allow_failed_imports=False)

ml_scores_file = 'work_dirs/ssmll_r50_8xb16-36k_semi-0.1-coco/unlabeled_scores.json'
model = dict(
    type='ACRST',
    semi_train_cfg=dict(
        sup_weight=1.0,
        unsup_weight=4.0,
        burn_in_iters=10000,  # paper, COCO-standard 10%
        pseudo_label_initial_score_thr=0.1,  # teacher detections entering the pseudo-recall statistics
        tau_cls=0.7,  # filter stage 1
        tau_ml=0.2,  # filter stage 2
        ml_scores_file=ml_scores_file,
        rpn_pseudo_thr=0.7,
        cls_pseudo_thr=0.7,
        regress_pseudo=False,  # selective supervision
        bbox_occluded_thr=10,
        mask_occluded_thr=300,
    ),
)

# FBR / AFFR paste, last before packing in the labeled and unlabeled-student pipelines
paste = dict(
    type='ACRSTPaste', num_paste=(1, 3), scale_range=(0.7, 1.3), bbox_occluded_thr=10, mask_occluded_thr=300
)
sup_pipeline = _base_.sup_pipeline[:-1] + [paste, _base_.sup_pipeline[-1]]
# The student's strong view as the paper's: resize + flip, colour jitter, Gaussian blur, cutout (mmdet's Soft
# Teacher base adds RandAugment colour / geometric operations instead of the jitter and blur).
strong_pipeline = [
    dict(type='RandomResize', scale=_base_.scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    # no hue jitter: mmcv.adjust_hue overflows uint8 on numpy 2 for negative shifts
    dict(type='mmpretrain.ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4),
    dict(type='mmpretrain.GaussianBlur', magnitude_range=(0.1, 2.0), magnitude_std='inf', prob=0.5),
    dict(type='RandomErasing', n_patches=(1, 5), ratio=(0, 0.2)),  # cutout
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    paste,
    dict(
        type='PackDetInputs',
        meta_keys=_base_.strong_pipeline[-1].meta_keys + ('pasted_bboxes', 'pasted_labels'),
    ),
]
unsup_pipeline = _base_.unsup_pipeline[:-1] + [
    dict(
        type='MultiBranch',
        branch_field=_base_.branch_field,
        unsup_teacher=_base_.weak_pipeline,
        unsup_student=strong_pipeline,
    )
]
labeled_dataset = _base_.labeled_dataset
labeled_dataset.pipeline = sup_pipeline
unlabeled_dataset = _base_.unlabeled_dataset
unlabeled_dataset.pipeline = unsup_pipeline
batch_size = 8
train_dataloader = dict(
    batch_size=batch_size,
    sampler=dict(batch_size=batch_size, source_ratio=[1, 1]),
    dataset=dict(datasets=[labeled_dataset, unlabeled_dataset]),
)

custom_hooks = [
    dict(type='MeanTeacherHook', momentum=0.0004),  # EMA 0.9996
    dict(
        type='CropBankHook',
        pseudo_cap=1000,  # label bank: every labeled instance (label_cap=None)
        refresh_interval=1000,
        beta=0.6,
        conf_thr=0.1,
        pr_form='aaai',  # PR = summed teacher confidences (arXiv v1: 'v1')
    ),
]
