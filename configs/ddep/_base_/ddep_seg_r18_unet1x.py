# Fine-tuning segmentor with a ResNet-18 encoder (composited benchmark). See ddep_seg_r50_unet1x.py.
_base_ = ['./ddep_seg_r50_unet1x.py']
model = dict(
    backbone=dict(
        depth=18,
        init_cfg=dict(
            checkpoint='https://download.openmmlab.com/mmclassification/v0/resnet/'
            'resnet18_8xb32_in1k_20210831-fbbb1da6.pth'
        ),
    ),
    decode_head=dict(
        decoder=dict(in_channels=(64, 64, 128, 256, 512), decoder_channels=(128, 64, 32, 16, 16))
    ),
)
