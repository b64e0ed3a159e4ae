# Cal-Deformable-DETR on the composited long-tailed detection benchmark ("composited from real images"): the
# baseline ./deformable-detr_r18_4xb4-24e_composited-lt-det.py with the Cal-DETR head, same data and schedule.
_base_ = ['./deformable-detr_r18_4xb4-24e_composited-lt-det.py']

model = dict(
    bbox_head=dict(type='CalDeformableDETRHead', logit_modulation=True, logit_mixing=True, mix_alpha=0.9)
)
