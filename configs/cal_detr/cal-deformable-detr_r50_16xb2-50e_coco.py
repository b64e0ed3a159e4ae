# Cal-DETR on Deformable-DETR R50 (50 epochs, COCO): the paper's main setting. Evaluated with box AP and D-ECE.
_base_ = ['./deformable-detr_r50_16xb2-50e_coco_dece.py']  # the baseline: same evaluators

model = dict(
    bbox_head=dict(
        type='CalDeformableDETRHead',
        logit_modulation=True,
        modulation_mode='paper',
        logit_mixing=True,
        mix_alpha=0.9,
        mix_target_share='class',  # 'query': the official code's (1 - alpha) / (P - 1) per other class
        loss_mix=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=0.5),  # lambda
    )
)
