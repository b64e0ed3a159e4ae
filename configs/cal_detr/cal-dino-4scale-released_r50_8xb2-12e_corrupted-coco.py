# Out-of-domain test (CorCOCO-style corrupted COCO val2017) of ./cal-dino-4scale-released_r50_8xb2-12e_coco.py:
# the paper-mode corrupted-test config with the release's head settings (test that config's checkpoint here).
_base_ = ['./cal-dino-4scale_r50_8xb2-12e_corrupted-coco.py']

model = dict(bbox_head=dict(modulation_mode='released', logit_mixing=False))
