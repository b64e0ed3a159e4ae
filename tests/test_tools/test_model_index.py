"""model-index.yml and the per-method metafiles list every config that exists, and only those."""

import glob
import os.path as osp

import pytest
import yaml

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _metafiles() -> list[str]:
    with open(osp.join(ROOT, 'model-index.yml')) as f:
        return list(yaml.safe_load(f)['Import'])


def test_model_index_imports_every_method_metafile():
    on_disk = sorted(osp.relpath(p, ROOT) for p in glob.glob(osp.join(ROOT, 'configs', '*', 'metafile.yml')))
    assert sorted(_metafiles()) == on_disk


@pytest.mark.parametrize('metafile', _metafiles())
def test_metafile_lists_exactly_the_configs_of_its_folder(metafile):
    with open(osp.join(ROOT, metafile)) as f:
        meta = yaml.safe_load(f)
    folder = osp.dirname(metafile)
    listed = [m['Config'] for m in meta['Models']]
    assert len(listed) == len(set(listed)), f'{metafile}: a config is listed twice'
    on_disk = {
        osp.relpath(p, ROOT)
        for p in glob.glob(osp.join(ROOT, folder, '**', '*.py'), recursive=True)
        if '_base_' not in osp.relpath(p, ROOT).split(osp.sep)
    }
    assert (
        set(listed) == on_disk
    ), f'{metafile}: missing {sorted(on_disk - set(listed))}, stale {sorted(set(listed) - on_disk)}'
    names = [m['Name'] for m in meta['Models']]
    assert names == [osp.splitext(osp.basename(c))[0] for c in listed]
    for collection in meta['Collections']:
        assert osp.isfile(osp.join(ROOT, collection['README']))
