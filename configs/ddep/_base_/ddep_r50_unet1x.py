# DDeP pretraining model: frozen ResNet-50 encoder (ImageNet classifier weights) + UNet decoder (1x width)
# that predicts the noise added to the input. The decoder has the paper's (TransUNet) skips at strides 2 (the
# encoder stem, before the max-pool), 4, 8 and 16; ResNetWithStem returns the stem output as level 0. Images reach the model scaled to [-1, 1] (sigma = 0.22 is
# defined on that scale); encoder_norm re-normalises the noisy image the way the classifier was trained.
imagenet_mean = [123.675, 116.28, 103.53]
imagenet_std = [58.395, 57.12, 57.375]
widen_factor = 1
decoder_channels = (256, 128, 64, 32, 16)  # strides 16, 8, 4, 2, 1 (times widen_factor)
in_channels = (64, 256, 512, 1024, 2048)  # stem, layer1..4 (strides 2, 4, 8, 16, 32)
model = dict(
    type='DDeP',
    sigma=0.22,
    noise_type='scaled',  # 'simple' = x + sigma * eps (ablation)
    target='noise',  # 'image' = predict the clean image (ablation)
    freeze_encoder=True,
    encoder_norm=dict(mean=imagenet_mean, std=imagenet_std),
    data_preprocessor=dict(type='SelfSupDataPreprocessor', mean=[127.5] * 3, std=[127.5] * 3, to_rgb=True),
    backbone=dict(
        type='ResNetWithStem',
        depth=50,
        out_indices=(0, 1, 2, 3, 4),
        norm_cfg=dict(type='BN'),
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://download.openmmlab.com/mmclassification/v0/resnet/'
            'resnet50_8xb32_in1k_20210831-ea4938fc.pth',
            prefix='backbone.',
        ),
    ),
    neck=dict(
        type='UNetDecoder',
        in_channels=in_channels,
        in_strides=(2, 4, 8, 16, 32),
        decoder_channels=decoder_channels,
        widen_factor=widen_factor,
        out_stride=1,
        norm_cfg=dict(type='SyncBN'),
    ),
    head=dict(
        type='DDePDenoisingHead',
        in_channels=decoder_channels[-1] * widen_factor,
        out_channels=3,
        loss=dict(type='PixelReconstructionLoss', criterion='L2'),
    ),
)
