# Cal-DETR domain shift: Deformable-DETR R50 trained on Cityscapes (8 classes) with the Cal-DETR head; val on
# Cityscapes val (in-domain), test on Foggy Cityscapes val, beta 0.02 (out-of-domain); box AP and D-ECE on both.
_base_ = ['./deformable-detr_r50_16xb2-50e_cityscapes-to-foggy_dece.py']

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
