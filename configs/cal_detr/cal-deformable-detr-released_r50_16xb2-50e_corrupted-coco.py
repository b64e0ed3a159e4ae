# Out-of-domain test (CorCOCO-style corrupted COCO val2017) of
# ./cal-deformable-detr-released_r50_16xb2-50e_coco.py: the paper-mode corrupted-test config with the
# release's head settings (test that config's checkpoint here).
_base_ = ['./cal-deformable-detr_r50_16xb2-50e_corrupted-coco.py']

model = dict(bbox_head=dict(modulation_mode='released', logit_mixing=False))
