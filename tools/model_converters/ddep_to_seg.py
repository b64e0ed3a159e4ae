"""Convert a DDeP pretraining checkpoint into weights for the DDeP fine-tuning segmentor.

The frozen encoder (``backbone.*``) and the pretrained UNet decoder (``neck.*`` ->
``decode_head.decoder.*``) are kept; the denoising head is dropped, so the segmentation classifier
(``decode_head.conv_seg``) starts from its own initialisation. Use the output as ``load_from`` of a
``configs/ddep/*`` fine-tuning config.

Example::

    python tools/model_converters/ddep_to_seg.py work_dirs/ddep_pretrain/iter_100000.pth \
        work_dirs/ddep_pretrain/ddep_seg.pth
"""

import argparse
import os
import os.path as osp
import sys

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))  # run from a source checkout
from mmssod.models.ddep.ddep import ddep_to_segmentor  # noqa: E402


def convert(src: str, dst: str) -> int:
    """Read a DDeP checkpoint, map its weights to the segmentor and save them.

    Args:
        src (str): DDeP checkpoint (``.pth`` saved by the pretraining run).
        dst (str): Output checkpoint for ``load_from``.

    Returns:
        int: Number of tensors written.
    """
    if not osp.isfile(src):
        raise FileNotFoundError(f'ddep_to_seg: checkpoint {src} does not exist')
    # a trusted local checkpoint written by mmengine (it pickles message hub / history objects)
    ckpt = torch.load(src, map_location='cpu', weights_only=False)
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f'ddep_to_seg: {src} holds no state_dict')
    out = ddep_to_segmentor(state)
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    torch.save(
        {'state_dict': out, 'meta': {'converted_from': osp.abspath(src), 'converter': 'ddep_to_seg'}}, dst
    )
    return len(out)


def main(argv=None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description='DDeP checkpoint -> fine-tuning segmentor weights')
    parser.add_argument('src', help='DDeP pretraining checkpoint')
    parser.add_argument('dst', help='output checkpoint (load_from of a configs/ddep fine-tuning config)')
    args = parser.parse_args(argv)
    n = convert(args.src, args.dst)
    print(f'wrote {n} tensors (encoder + UNet decoder) to {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
