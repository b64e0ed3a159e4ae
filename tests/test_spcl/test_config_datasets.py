"""Every configs/spcl config builds its train / val / test datasets on miniature data in the real layouts.

The miniature datasets (tests/fixtures/reid_layouts.py) sit at the paths the configs read (``data/...``
relative to the working directory), so the shipped configs are used unchanged; one sample of each set is
loaded through its pipeline and the UDA training set is sampled with the config's sampler.
"""

import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmssod  # noqa: F401  (registers the SpCL modules)

from ..conftest import REPO_ROOT
from ..fixtures.reid_layouts import make_market1501, make_reid_layouts

CONFIGS = sorted(glob.glob(osp.join(REPO_ROOT, 'configs/spcl/*.py')))


@pytest.fixture(scope='module')
def layouts_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('reid_layouts'))
    make_reid_layouts(root)
    for name in ('composited_reid', 'composited_reid_tiny'):  # the composited set is Market-1501 style
        for seed, domain in enumerate(('source', 'target')):
            make_market1501(osp.join(root, 'data', name, domain), seed=10 + seed)
    return root


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_shipped_config_builds_its_datasets(path, layouts_root, monkeypatch):
    from mmdet.registry import DATA_SAMPLERS, DATASETS

    monkeypatch.chdir(layouts_root)
    cfg = Config.fromfile(path)
    init_default_scope('mmdet')
    train = DATASETS.build(cfg.train_dataloader.dataset)
    assert len(train) > 0
    sample = train[len(train) - 1]  # target domain for UDA: goes through the training pipeline
    assert sample['inputs'].dim() >= 3
    if cfg.train_dataloader.dataset.type == 'TwoDomainReIDDataset':
        assert sample['data_samples'].metainfo['domain'] == 'target'
        assert train[0]['data_samples'].metainfo['domain'] == 'source'
    sampler = DATA_SAMPLERS.build(dict(cfg.train_dataloader.sampler, dataset=train, seed=0))
    first_batch = list(sampler)[: cfg.train_dataloader.batch_size]
    assert len(first_batch) == cfg.train_dataloader.batch_size
    for loader in ('val_dataloader', 'test_dataloader'):
        evaluated = DATASETS.build(cfg[loader].dataset)
        subsets = [evaluated[i]['data_samples'].metainfo['subset'] for i in (0, len(evaluated) - 1)]
        assert subsets == ['query', 'gallery']
