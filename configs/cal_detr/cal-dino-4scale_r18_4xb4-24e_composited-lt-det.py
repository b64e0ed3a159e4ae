# Cal-DINO on the composited long-tailed detection benchmark ("composited from real images"): the baseline
# ./dino-4scale_r18_4xb4-24e_composited-lt-det.py with the Cal-DETR head, same data, schedule and seed.
_base_ = ['./dino-4scale_r18_4xb4-24e_composited-lt-det.py']

model = dict(bbox_head=dict(type='CalDINOHead', logit_modulation=True, logit_mixing=True, mix_alpha=0.9))
