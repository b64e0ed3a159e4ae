# The official Cal-DETR release's behaviour (z_L - tanh(var), no mixing loss) on
# ./dino-4scale-small_efficientnet-lite0_1xb4-900it_composited-demo.py, for comparison with the paper's method
# (./cal-dino-4scale-small_efficientnet-lite0_1xb4-900it_composited-demo.py).
_base_ = ['./cal-dino-4scale-small_efficientnet-lite0_1xb4-900it_composited-demo.py']

model = dict(bbox_head=dict(modulation_mode='released', logit_mixing=False))
