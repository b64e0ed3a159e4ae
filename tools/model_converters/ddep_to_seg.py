"""Convert a DDeP pretraining checkpoint into weights for the DDeP fine-tuning segmentor.

The frozen encoder (``backbone.*``) and the pretrained UNet decoder (``neck.*`` ->
``decode_head.decoder.*``) are kept; the denoising head is dropped, so the segmentation classifier
(``decode_head.conv_seg``) starts from its own initialisation. Use the output as ``load_from`` of a
``configs/ddep/*`` fine-tuning config.

The decoder's layout (skip strides, channels, width, norm) is read from the pretraining config that
mmengine stores in the checkpoint (``meta['cfg']``; or ``--config`` for a checkpoint without it), checked
against the decoder weights, and recorded in the output (``decode_head.decoder_layout`` and
``meta['ddep_decoder']``). Loading the output into a segmentor whose decoder differs then fails with an
error naming the setting instead of silently leaving the decoder random.

Example::

    python tools/model_converters/ddep_to_seg.py work_dirs/ddep_pretrain/iter_100000.pth \
        work_dirs/ddep_pretrain/ddep_seg.pth
"""

import argparse
import os
import os.path as osp
import sys
from typing import Dict, Mapping, Optional

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))  # run from a source checkout
from mmengine.config import Config  # noqa: E402

from mmssod.models.ddep.ddep import LAYOUT_KEY, ddep_to_segmentor  # noqa: E402
from mmssod.models.ddep.unet_decoder import UNetDecoder  # noqa: E402
from mmssod.utils.safe_load import load_checkpoint_file  # noqa: E402


def decoder_layout(neck_cfg: Mapping, state: Mapping[str, torch.Tensor]) -> Dict:
    """Layout of the pretrained decoder, after checking that its weights fit the config exactly.

    Args:
        neck_cfg (Mapping): ``model.neck`` of the pretraining config (a ``UNetDecoder``).
        state (Mapping[str, torch.Tensor]): The DDeP ``state_dict``.

    Returns:
        dict: :meth:`UNetDecoder.layout`.
    """
    cfg = dict(neck_cfg)
    if cfg.pop('type', 'UNetDecoder') != 'UNetDecoder':
        raise ValueError(f'ddep_to_seg: model.neck is {neck_cfg.get("type")}, not a UNetDecoder')
    cfg.pop('init_cfg', None)
    decoder = UNetDecoder(**cfg)
    weights = {k[len('neck.') :]: v for k, v in state.items() if k.startswith('neck.')}
    # strict: every key present with its shape (raises naming the keys otherwise)
    decoder.load_state_dict(weights, strict=True)
    return decoder.layout()


def convert(src: str, dst: str, config: Optional[str] = None) -> int:
    """Read a DDeP checkpoint, map its weights to the segmentor, record the decoder layout, save.

    Args:
        src (str): DDeP checkpoint (``.pth`` saved by the pretraining run).
        dst (str): Output checkpoint for ``load_from``.
        config (str, optional): Pretraining config, for checkpoints without ``meta['cfg']``.

    Returns:
        int: Number of tensors written.
    """
    if not osp.isfile(src):
        raise FileNotFoundError(f'ddep_to_seg: checkpoint {src} does not exist')
    ckpt = load_checkpoint_file(src, map_location='cpu')
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f'ddep_to_seg: {src} holds no state_dict')
    state = {k[len('module.') :] if k.startswith('module.') else k: v for k, v in state.items()}
    if not any(k.startswith('neck.') for k in state):
        ddep_to_segmentor(state, {})  # raises the "no neck weights" error
    if config is not None:
        cfg = Config.fromfile(config)
    elif isinstance(ckpt.get('meta'), dict) and ckpt['meta'].get('cfg'):
        cfg = Config.fromstring(ckpt['meta']['cfg'], '.py')
    else:
        raise ValueError(
            f'ddep_to_seg: {src} does not record its config (meta["cfg"]); pass the pretraining config with '
            '--config so that the decoder layout can be recorded'
        )
    layout = decoder_layout(cfg.model.neck, state)
    out = ddep_to_segmentor(state, layout)
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    meta = {'converted_from': osp.abspath(src), 'converter': 'ddep_to_seg', 'ddep_decoder': layout}
    torch.save({'state_dict': out, 'meta': meta}, dst)
    return sum(1 for k in out if k != LAYOUT_KEY)


def main(argv=None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description='DDeP checkpoint -> fine-tuning segmentor weights')
    parser.add_argument('src', help='DDeP pretraining checkpoint')
    parser.add_argument('dst', help='output checkpoint (load_from of a configs/ddep fine-tuning config)')
    parser.add_argument('--config', help='pretraining config (only for a checkpoint without meta["cfg"])')
    args = parser.parse_args(argv)
    n = convert(args.src, args.dst, args.config)
    print(f'wrote {n} tensors (encoder + UNet decoder) and the decoder layout to {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
