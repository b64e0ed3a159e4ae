"""Every DDeP paper config, resolved with its bases, holds the paper's settings.

Source: Brempong et al., "Decoder Denoising Pretraining for Semantic Segmentation", TMLR 2022 (arXiv
2205.11423), as summarised in the project's method notes (noise, target, decoder layout, input scale,
fine-tuning recipe); there is no official code. Values the paper text as available here does not pin down
(batch sizes, iteration counts, warm-up, fine-tuning learning rate, few-label schedules) are marked "open" and
keep the project's choice (configs/ddep/README.md, section "Paper settings"). Config parsing only.
"""

import glob
import os.path as osp

import pytest

from tests.conftest import REPO_ROOT
from tests.paper_settings import NOT_PAPER, load, mismatches

DDEP_DIR = 'configs/ddep'
STRIDES = (2, 4, 8, 16, 32)  # skips from the ResNet stem (stride 2, before the max-pool) and layer1..4

# Decoder denoising pretraining (Method section).
PRETRAIN = {
    'model.type': 'DDeP',
    'model.backbone.depth': 50,
    'model.sigma': 0.22,  # best noise level, on images scaled to [-1, 1]
    'model.noise_type': 'scaled',  # x~ = sqrt(gamma) x + sqrt(1 - gamma) eps, gamma = 1 / (1 + sigma^2)
    'model.target': 'noise',  # predict eps
    'model.head.loss.criterion': 'L2',
    'model.freeze_encoder': True,  # the encoder keeps its classifier weights
    'model.data_preprocessor.mean': [127.5] * 3,  # images scaled to [-1, 1]
    'model.data_preprocessor.std': [127.5] * 3,
    'model.neck.in_strides': STRIDES,
    'model.neck.out_stride': 1,
    'optim_wrapper.optimizer.type': 'Adam',
    'optim_wrapper.optimizer.lr': 6e-5,  # 1x and 3x decoders (2x: 1e-4)
    'param_scheduler.1.type': 'CosineAnnealingLR',
    'param_scheduler.0.end': 2000,  # open: warm-up, ours
    'train_cfg.max_iters': 100000,  # open: ours
    'train_dataloader.batch_size': 32,  # open: ours (8 GPUs x 32)
    'train_pipeline.1.type': 'RandomResizedCrop',
    'train_pipeline.1.scale': 224,  # pretraining at 224 x 224
}

# Fine-tuning on labels (Experiments): cross-entropy, Adam with cosine decay, random crop + flip.
FINETUNE = {
    'model.type': 'DDePEncoderDecoder',
    'model.backbone.depth': 50,
    'model.decode_head.decoder.in_strides': STRIDES,
    'model.decode_head.decoder.out_stride': 1,
    'model.decode_head.loss_decode.type': 'CrossEntropyLoss',
    'optim_wrapper.optimizer.type': 'Adam',
    'optim_wrapper.optimizer.lr': 1e-4,  # open: ours
    'optim_wrapper.optimizer.weight_decay': 0.0,  # open: ours
    'param_scheduler.0.end': 1000,  # open: warm-up, ours
    'param_scheduler.1.type': 'CosineAnnealingLR',
    'train_dataloader.batch_size': 2,  # open: ours (8 GPUs x 2)
}


def _pretrain(widen: int = 1, lr: float = 6e-5, **extra) -> dict:
    return {**PRETRAIN, 'model.neck.widen_factor': widen, 'optim_wrapper.optimizer.lr': lr, **extra}


def _finetune(dataset: str, iters: int, pct: int | None = None, widen: int = 1) -> dict:
    """A fine-tuning config: crop per dataset (1024 Cityscapes, 512 ADE20K / Pascal Context), its schedule."""
    crop, classes = {'cityscapes': (1024, 19), 'ade20k': (512, 150), 'pascal-context': (512, 59)}[dataset]
    out = {
        **FINETUNE,
        'model.decode_head.decoder.widen_factor': widen,
        'model.decode_head.num_classes': classes,
        'model.data_preprocessor.size': (crop, crop),
        'train_cfg.max_iters': iters,  # open: full labels ours; fractions full x sqrt(fraction), ours
        'param_scheduler.1.end': iters,
    }
    if pct is not None:
        out['train_dataloader.dataset.ann_file'] = f'splits/train@{pct}.txt'
    return out


FRACTION_ITERS = {  # open: full-label iterations x sqrt(fraction), rounded to 1k (ours)
    'cityscapes': {1: 4000, 2: 6000, 5: 9000, 10: 13000, 20: 18000},
    'pascal-context': {1: 4000, 2: 6000, 5: 9000, 10: 13000, 20: 18000},
    'ade20k': {1: 8000, 2: 11000, 5: 18000, 10: 25000, 20: 36000},
}
FULL = {
    'cityscapes': ('ddep_r50-unet1x_8xb2-40k_cityscapes-1024x1024', 40000),
    'pascal-context': ('ddep_r50-unet1x_8xb2-40k_pascal-context-59-512x512', 40000),
    'ade20k': ('ddep_r50-unet1x_8xb2-80k_ade20k-512x512', 80000),
}

# One dict per paper config: the expected value of each config key.
PAPER_SETTINGS = {
    'ddep_r50-unet1x_8xb32-100k_in1k-224.py': _pretrain(),
    'ddep_r50-unet2x_8xb32-100k_in1k-224.py': _pretrain(widen=2, lr=1e-4),
    'ddep_r50-unet3x_8xb32-100k_in1k-224.py': _pretrain(widen=3),
    'ddep_r50-unet1x-whole-network_8xb32-100k_in1k-224.py': _pretrain(**{'model.freeze_encoder': False}),
    # ablations of the paper: simple additive noise x + sigma eps; predicting the clean image
    'ddep_r50-unet1x_8xb32-100k_in1k-224_simple-noise.py': _pretrain(**{'model.noise_type': 'simple'}),
    'ddep_r50-unet1x_8xb32-100k_in1k-224_predict-image.py': _pretrain(**{'model.target': 'image'}),
    # pretraining on the target dataset's own images (open: batch, schedule and 512 crops are ours)
    'ddep_r50-unet1x_8xb8-40k_cityscapes-unlabeled.py': _pretrain(
        **{
            'train_dataloader.batch_size': 8,
            'train_cfg.max_iters': 40000,
            'param_scheduler.0.end': 1000,
            'train_pipeline.1.scale': 512,
        }
    ),
    'ddep_r50-unet2x_8xb2-40k_cityscapes-1024x1024.py': _finetune('cityscapes', 40000, widen=2),
    'ddep_r50-unet3x_8xb2-40k_cityscapes-1024x1024.py': _finetune('cityscapes', 40000, widen=3),
    'ddep_r50-unet1x-whole-network_8xb2-40k_cityscapes-1024x1024.py': _finetune('cityscapes', 40000),
}
for _dataset, (_name, _iters) in FULL.items():
    PAPER_SETTINGS[f'{_name}.py'] = _finetune(_dataset, _iters)
    for _pct, _frac_iters in FRACTION_ITERS[_dataset].items():
        PAPER_SETTINGS[f'{_name}_{_pct}pct.py'] = _finetune(_dataset, _frac_iters, _pct)

# test-time augmentation: flip (Cityscapes); multi-scale 0.5-1.75 + flip (ADE20K, Pascal Context)
TTA_SCALES = {
    'cityscapes': None,
    'ade20k': [0.5, 0.75, 1.0, 1.25, 1.5, 1.75],
    'pascal-context': [0.5, 0.75, 1.0, 1.25, 1.5, 1.75],
}


def test_every_paper_config_is_in_the_table():
    found = {
        osp.basename(p)
        for p in glob.glob(osp.join(REPO_ROOT, DDEP_DIR, '*.py'))
        if not any(tag in osp.basename(p) for tag in NOT_PAPER)
    }
    assert found == set(PAPER_SETTINGS)


@pytest.mark.parametrize('name', sorted(PAPER_SETTINGS))
def test_paper_settings(name):
    wrong = mismatches(load(f'{DDEP_DIR}/{name}'), PAPER_SETTINGS[name])
    assert not wrong, f'{name}: (config value, paper value) {wrong}'


@pytest.mark.parametrize(
    'name', sorted(n for n in PAPER_SETTINGS if 'DDePEncoderDecoder' in str(PAPER_SETTINGS[n]))
)
def test_finetune_augmentation(name):
    """Training: random rescale, crop at the paper's size, flip, nothing else; test-time flip (+ scales)."""
    cfg = load(f'{DDEP_DIR}/{name}')
    pipeline = cfg.train_dataloader.dataset.pipeline
    types = [t['type'] for t in pipeline]
    assert types == [
        'LoadImageFromFile',
        'LoadAnnotations',
        'RandomResize',
        'RandomCrop',
        'RandomFlip',
        'PackSegInputs',
    ]
    crop = tuple(PAPER_SETTINGS[name]['model.data_preprocessor.size'])
    assert tuple(pipeline[3]['crop_size']) == crop
    dataset = next(d for d in TTA_SCALES if d in name)
    resizes, flips = cfg.tta_pipeline[1]['transforms'][:2]
    assert [f['prob'] for f in flips] == [0.0, 1.0]
    scales = [r['scale_factor'] for r in resizes] if 'scale_factor' in resizes[0] else None
    assert scales == TTA_SCALES[dataset]
