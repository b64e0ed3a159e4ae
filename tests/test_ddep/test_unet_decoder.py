"""UNet decoder: shapes (odd input sizes included), width multiplier, and clear errors for bad settings."""

import pytest
import torch
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS

from mmssod.models.ddep import UNetDecoder, check_input_size, check_layout

R18_TINY = dict(
    type='ResNetWithStem', depth=18, base_channels=16, stem_channels=16, out_indices=(0, 1, 2, 3, 4)
)
TINY = dict(in_channels=(16, 16, 32, 64, 128), decoder_channels=(32, 16, 16, 8, 8))


@pytest.fixture(scope='module')
def encoder():
    torch.manual_seed(0)
    # a module-scoped fixture runs before conftest's (function-scoped) scope fixture
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(R18_TINY)
    model.eval()  # mmpretrain's ResNet.train() returns None, so no chaining
    return model


@pytest.mark.parametrize('size', [(64, 64), (65, 97), (33, 45), (32, 32)])
def test_output_has_input_size(encoder, size):
    """Sides that are not multiples of 32 work: skips are resized, the output gets exactly out_size."""
    dec = UNetDecoder(**TINY).eval()
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        feats = encoder(x)
        out = dec(feats, out_size=size)
        free = dec(feats)
    assert out.shape == (2, 8, *size)
    # without out_size the last stage doubles the stride-2 (stem) size: input rounded up to a multiple of 2
    assert free.shape[-2:] == tuple(2 * f for f in feats[0].shape[-2:])


def test_out_stride_and_stage_strides(encoder):
    dec = UNetDecoder(in_channels=(16, 16, 32, 64, 128), decoder_channels=(32, 16, 16, 8), out_stride=2)
    assert dec.stage_strides == (16, 8, 4, 2)
    with torch.no_grad():
        out = dec.eval()(encoder(torch.randn(1, 3, 64, 96)))
    assert out.shape == (1, 8, 32, 48)


@pytest.mark.parametrize('widen', [1, 2, 3])
def test_widen_factor(widen):
    dec = UNetDecoder(**TINY, widen_factor=widen)
    assert dec.stage_channels == tuple(c * widen for c in TINY['decoder_channels'])
    assert dec.out_channels == 8 * widen
    assert dec.stages[0].convs[0].conv.in_channels == 128 + 64  # deepest + first skip
    assert dec.stages[3].convs[0].conv.in_channels == 16 * widen + 16  # stride-2 stage: + the stem skip
    assert dec.stages[0].convs[0].conv.out_channels == 32 * widen


def test_r50_default_layout():
    """The paper's (TransUNet) skips: strides 2 (the stem), 4, 8 and 16; deepest level at 32."""
    dec = UNetDecoder()
    assert dec.in_channels == (64, 256, 512, 1024, 2048)
    assert dec.in_strides == (2, 4, 8, 16, 32)
    assert dec.stage_strides == (16, 8, 4, 2, 1)
    assert dec.total_stride == 32
    # every stage down to stride 2 concatenates a skip; only the last (stride 1) stage has none
    skips = [s.convs[0].conv.in_channels - p for s, p in zip(dec.stages, (2048, 256, 128, 64, 32))]
    assert skips == [1024, 512, 256, 64, 0]


def test_resnet_with_stem_levels():
    """Level 0 is the stem output (stride 2, before the max-pool); names match ResNet (checkpoints load)."""
    from mmpretrain.models.backbones import ResNet

    torch.manual_seed(0)
    enc = MODELS.build(R18_TINY).eval()
    ref = ResNet(depth=18, base_channels=16, stem_channels=16, out_indices=(0, 1, 2, 3))
    ref.load_state_dict(enc.state_dict(), strict=True)
    ref.eval()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        feats, ref_feats = enc(x), ref(x)
        stem = enc.relu(enc.norm1(enc.conv1(x)))
    assert [tuple(f.shape[-2:]) for f in feats] == [(32, 48), (16, 24), (8, 12), (4, 6), (2, 3)]
    torch.testing.assert_close(feats[0], stem)
    for a, b in zip(feats[1:], ref_feats):
        torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match='out_indices'):
        MODELS.build(dict(R18_TINY, out_indices=(0, 5)))


def test_input_skip_wrapper():
    """The optional full-resolution skip: the input itself becomes level 0 (stride 1)."""
    enc = MODELS.build(dict(type='InputSkip', encoder=R18_TINY)).eval()
    dec = UNetDecoder(
        in_channels=(3, 16, 16, 32, 64, 128),
        in_strides=(1, 2, 4, 8, 16, 32),
        decoder_channels=(32, 16, 16, 8, 8),
    ).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        feats = enc(x)
        out = dec(feats)
    assert feats[0] is x and out.shape == (1, 8, 64, 64)
    assert dec.stages[-1].convs[0].conv.in_channels == 8 + 3


def test_mismatched_encoder_channels_error(encoder):
    dec = UNetDecoder()  # ResNet-50 channels, but the encoder is a narrow ResNet-18
    with torch.no_grad():
        feats = encoder(torch.randn(1, 3, 64, 64))
    with pytest.raises(ValueError, match=r'in_channels \(64, 256, 512, 1024, 2048\)'):
        dec(feats)
    with pytest.raises(ValueError, match='feature levels'):
        UNetDecoder(**TINY)(feats[1:])


def test_bad_settings_errors():
    with pytest.raises(ValueError, match='decoder_channels has 3 entries'):
        UNetDecoder(in_channels=(16, 16, 32, 64, 128), decoder_channels=(8, 8, 8))
    with pytest.raises(ValueError, match='in_strides'):
        UNetDecoder(in_channels=(16, 32), in_strides=(4, 16), decoder_channels=(8, 8, 8))
    with pytest.raises(ValueError, match='same length'):
        UNetDecoder(in_channels=(16, 32, 64), in_strides=(4, 8), decoder_channels=(8,))
    with pytest.raises(ValueError, match='out_stride'):
        UNetDecoder(**TINY, out_stride=3)
    with pytest.raises(ValueError, match='widen_factor'):
        UNetDecoder(**TINY, widen_factor=0)


def test_input_smaller_than_total_stride():
    check_input_size((32, 40), 32)
    with pytest.raises(ValueError, match=r'16x40 are smaller than the total stride 32'):
        check_input_size((16, 40), 32, 'DDeP')


def test_layout_and_check_layout():
    a = UNetDecoder(**TINY).layout()
    assert a == dict(
        in_strides=[2, 4, 8, 16, 32],
        in_channels=[16, 16, 32, 64, 128],
        widen_factor=1.0,
        stage_channels=[32, 16, 16, 8, 8],
        norm='BN',
        out_stride=1,
    )
    assert UNetDecoder(**TINY, norm_cfg=dict(type='SyncBN')).layout() == a  # same weights
    check_layout(a, a)
    with pytest.raises(ValueError, match=r'widen_factor .*checkpoint 2.0, model 1.0'):
        check_layout(UNetDecoder(**TINY, widen_factor=2).layout(), a)
    with pytest.raises(ValueError, match=r'norm_cfg type .*checkpoint GN, model BN'):
        check_layout(UNetDecoder(**TINY, norm_cfg=dict(type='GN', num_groups=4)).layout(), a)
    old = UNetDecoder(
        in_channels=(16, 32, 64, 128), in_strides=(4, 8, 16, 32), decoder_channels=(32, 16, 16, 8, 8)
    )
    with pytest.raises(ValueError, match=r'in_strides \(the skip layout.*checkpoint \[4, 8, 16, 32\]'):
        check_layout(old.layout(), a)


def test_unet_layout_with_full_resolution_skips():
    """mmseg-UNet-style encoder pyramid (strides 1..16, finest first): no extra stages, output at stride 1."""
    dec = UNetDecoder(
        in_channels=(8, 16, 32, 64, 128), in_strides=(1, 2, 4, 8, 16), decoder_channels=(64, 32, 16, 8)
    )
    assert dec.stage_strides == (8, 4, 2, 1) and dec.total_stride == 16
    feats = [torch.randn(1, c, 48 // s, 40 // s) for c, s in zip((8, 16, 32, 64, 128), (1, 2, 4, 8, 16))]
    with torch.no_grad():
        out = dec.eval()(feats)
    assert out.shape == (1, 8, 48, 40)
