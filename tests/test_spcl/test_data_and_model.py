"""PK pseudo-identity sampler, two-domain dataset, list-file datasets, domain-specific BN, SpCL model."""

import os
import os.path as osp

import numpy as np
import pytest
import torch
from mmdet.registry import DATASETS, MODELS
from mmengine.registry import init_default_scope

from mmssod.datasets.reid import ReIDLayoutError
from mmssod.datasets.reid_lists import MSMT17ReIDDataset, VehicleIDReIDDataset
from mmssod.datasets.reid_uda import PseudoIdentitySampler, TwoDomainReIDDataset, multi_gallery_stream
from mmssod.models.reid.spcl import DomainSpecificBN, convert_dsbn

PIPE = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(32, 64), keep_ratio=False),
    dict(type='PackReIDInputs', meta_keys=('pid', 'camid', 'sample_idx')),
]


@pytest.fixture
def two_domain(spcl_reid_root):
    init_default_scope('mmdet')
    _, root = spcl_reid_root
    return DATASETS.build(
        dict(
            type='TwoDomainReIDDataset',
            source=dict(type='MarketReIDDataset', data_root=osp.join(root, 'source'), pipeline=PIPE),
            target=dict(type='MarketReIDDataset', data_root=osp.join(root, 'target'), pipeline=PIPE),
        )
    )


def test_two_domain_dataset_tags_domain_and_local_index(two_domain):
    assert isinstance(two_domain, TwoDomainReIDDataset)
    n_src = len(two_domain.source)
    first_target = two_domain[n_src]['data_samples']
    assert first_target.metainfo['domain'] == 'target' and first_target.metainfo['sample_idx'] == 0
    assert two_domain[0]['data_samples'].metainfo['domain'] == 'source'


def test_uda_sampler_halves_pk_groups_and_constant_length(two_domain):
    sampler = PseudoIdentitySampler(two_domain, batch_size=16, num_instances=4, iters_per_epoch=5, seed=0)
    n_src, n_tgt = len(two_domain.source), len(two_domain.target)
    labels = np.arange(n_tgt) // 5  # pseudo identities of 5 images
    sampler.set_pseudo_labels(labels)
    for epoch in (0, 1):
        sampler.set_epoch(epoch)
        idx = list(sampler)
        assert len(idx) == len(sampler) == 80
        for b in range(5):
            batch = idx[16 * b : 16 * b + 16]
            assert all(i < n_src for i in batch[:8]) and all(i >= n_src for i in batch[8:])
            tgt = np.array(batch[8:]) - n_src
            counts = np.bincount(labels[tgt])
            assert counts.max() <= 4
    again = PseudoIdentitySampler(two_domain, batch_size=16, num_instances=4, iters_per_epoch=5, seed=0)
    again.set_pseudo_labels(labels)
    again.set_epoch(1)
    assert list(again) == idx, 'same seed and epoch must give the same batches'


def test_identity_sampling_prefers_other_cameras_and_fills_small_clusters_with_replacement():
    # identity 0: 6 images, anchor camera decides the pool; identity 1: 2 images (cluster smaller than K);
    # identity 2: 3 images on one camera; identity 3: an un-clustered instance
    groups = [np.arange(0, 6), np.array([6, 7]), np.array([8, 9, 10]), np.array([11])]
    camids = np.array([0, 0, 0, 1, 2, 2, 0, 1, 3, 3, 3, 0])
    stream = multi_gallery_stream(groups, camids, 4, np.random.default_rng(0))
    seen = {g: 0 for g in range(4)}
    for _ in range(200):  # 200 identity groups
        anchor = next(stream)
        g = next(i for i, m in enumerate(groups) if anchor in m)
        seen[g] += 1
        if g == 3:
            continue  # a singleton gives only itself
        rest = [next(stream) for _ in range(3)]
        assert all(r in groups[g] for r in rest)
        if g == 0:
            other = [i for i in groups[0] if camids[i] != camids[anchor]]
            assert set(rest) <= set(other), 'images of other cameras come first'
        if g == 1:
            assert rest == [7, 7, 7] if anchor == 6 else rest == [6, 6, 6]  # 4 images, with replacement
        if g == 2:  # one camera: the other images of the identity, with replacement (3 < K)
            assert anchor not in rest
    assert min(seen.values()) > 30


def test_sampler_rejects_bad_settings(two_domain):
    with pytest.raises(ValueError, match='even'):
        PseudoIdentitySampler(two_domain, batch_size=15)
    sampler = PseudoIdentitySampler(two_domain, batch_size=16)
    with pytest.raises(ValueError, match='pseudo labels'):
        sampler.set_pseudo_labels([0, 1])


def test_list_file_datasets_and_layout_errors(tmp_path):
    root = tmp_path / 'msmt17'
    os.makedirs(root / 'train' / '0000')
    (root / 'list_train.txt').write_text('0000/0000_000_01_0303morning_0015_0.jpg 0\n')
    (root / 'list_val.txt').write_text('0000/0000_001_05_0303noon_0020_1.jpg 0\n')
    ds = MSMT17ReIDDataset(data_root=str(root), subset='train', lazy_init=False)
    assert [ds.get_data_info(i)['camid'] for i in range(len(ds))] == [0, 4]
    assert ds.get_data_info(0)['img_path'].endswith('train/0000/0000_000_01_0303morning_0015_0.jpg')
    with pytest.raises(ReIDLayoutError, match='list_query.txt not found.*MSMT17 layout'):
        MSMT17ReIDDataset(data_root=str(root), subset='query')
    (root / 'list_query.txt').write_text('broken line here\n')
    with pytest.raises(ReIDLayoutError, match='list_query.txt:1'):
        MSMT17ReIDDataset(data_root=str(root), subset='query')
    vroot = tmp_path / 'vehicleid'
    os.makedirs(vroot / 'train_test_split')
    (vroot / 'train_test_split' / 'train_list.txt').write_text('00001 0007\n00002 0007\n00003 0009\n')
    vds = VehicleIDReIDDataset(data_root=str(vroot))
    assert [vds.get_data_info(i)['label'] for i in range(3)] == [0, 0, 1]
    with pytest.raises(ReIDLayoutError, match='Market-1501 layout'):
        DATASETS.build(dict(type='MarketReIDDataset', data_root=str(tmp_path / 'nothing'), subset='train'))


def test_domain_specific_bn_splits_halves_and_uses_target_bn_in_eval():
    bn = torch.nn.BatchNorm1d(3)
    net = convert_dsbn(torch.nn.Sequential(torch.nn.Linear(3, 3), bn))
    dsbn = net[1]
    assert isinstance(dsbn, DomainSpecificBN)
    src, tgt = torch.randn(4, 3) + 5, torch.randn(4, 3) - 5
    net.train()
    net(torch.cat([src, tgt]))
    assert (dsbn.bn_source.running_mean != dsbn.bn_target.running_mean).all()
    net.eval()
    x = torch.randn(2, 3)
    torch.testing.assert_close(dsbn(x), dsbn.bn_target(x))
    net.train()
    with pytest.raises(ValueError, match='equal size'):
        dsbn(torch.randn(3, 3))


def tiny_model(dsbn):
    init_default_scope('mmdet')
    return MODELS.build(
        dict(
            type='SpCLReID',
            domain_specific_bn=dsbn,
            data_preprocessor=dict(
                type='ReIDDataPreprocessor', mean=[128.0] * 3, std=[64.0] * 3, to_rgb=True
            ),
            backbone=dict(
                type='mmpretrain.ResNet',
                depth=18,
                base_channels=8,
                stem_channels=8,
                strides=(1, 2, 2, 1),
                out_indices=(3,),
            ),
            neck=dict(type='mmpretrain.GeneralizedMeanPooling'),
            head=dict(type='SpCLHead', in_channels=64),
        )
    )


def test_spcl_model_loss_and_predict_with_real_batches(two_domain):
    model = tiny_model(dsbn=True)
    assert model.backbone.layer4[0].conv1.stride == (1, 1), 'last stride must be 1'
    n_src = len(two_domain.source)
    batch = [two_domain[i] for i in [0, 1, n_src, n_src + 1]]
    data = model.data_preprocessor(
        dict(inputs=[b['inputs'] for b in batch], data_samples=[b['data_samples'] for b in batch]), True
    )
    model.memory.init_memory(torch.randn(12, 64), torch.randn(len(two_domain.target), 64))
    losses = model(data['inputs'], data['data_samples'], mode='loss')
    assert torch.isfinite(losses['loss_spcl'])
    losses['loss_spcl'].backward()
    assert model.backbone.conv1.weight.grad.abs().sum() > 0
    rows = model.head.memory_rows(data['data_samples'])
    labels = [int(ds.gt_label.label) for ds in data['data_samples'][:2]]
    assert rows == labels + [12, 13]
    assert [ds.metainfo['source_label'] for ds in data['data_samples'][:2]] == labels
    swapped = data['data_samples'][2:] + data['data_samples'][:2]
    with pytest.raises(ValueError, match='source half'):
        model(data['inputs'], swapped, mode='loss')
    model.eval()
    preds = model(data['inputs'], data['data_samples'], mode='predict')
    norms = torch.stack([p.pred_feature for p in preds]).norm(dim=1)
    torch.testing.assert_close(norms, torch.ones(4))
