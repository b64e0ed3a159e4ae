# DDeP pretraining model with a ResNet-18 encoder (composited benchmark). See ddep_r50_unet1x.py.
_base_ = ['./ddep_r50_unet1x.py']
decoder_channels = (128, 64, 32, 16, 16)
model = dict(
    backbone=dict(
        depth=18,
        init_cfg=dict(
            checkpoint='https://download.openmmlab.com/mmclassification/v0/resnet/'
            'resnet18_8xb32_in1k_20210831-fbbb1da6.pth'
        ),
    ),
    neck=dict(in_channels=(64, 64, 128, 256, 512), decoder_channels=decoder_channels),
    head=dict(in_channels=16),
)
