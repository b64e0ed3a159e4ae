# The official Cal-DETR release's behaviour (z_L - tanh(var), no mixing loss) on
# ./deformable-detr-small_efficientnet-lite0_1xb4-900it_composited-demo-corrupted.py, for comparison with the
# paper's method (./cal-deformable-detr-small_efficientnet-lite0_1xb4-900it_composited-demo-corrupted.py).
_base_ = ['./cal-deformable-detr-small_efficientnet-lite0_1xb4-900it_composited-demo-corrupted.py']

model = dict(bbox_head=dict(modulation_mode='released', logit_mixing=False))
