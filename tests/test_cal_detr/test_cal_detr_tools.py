"""Cal-DETR configs, tools/train.py + tools/test.py --out on the CPU smoke configs, and the D-ECE tool.

Real runs in subprocesses on the embedded demo set ("composited from real images").
"""

import glob
import json
import os.path as osp
import re

import pytest
from mmdet.registry import MODELS
from mmengine.config import Config

from ..conftest import REPO_ROOT, run_python

CONFIG_DIR = osp.join(REPO_ROOT, 'configs', 'cal_detr')


def _check(res):
    assert res.returncode == 0, f'exit {res.returncode}\n{res.stdout[-2000:]}\n{res.stderr[-5000:]}'
    return res.stdout + res.stderr


def _data_options(root, split='test'):
    root = root.rstrip('/') + '/'
    opts = [f'{split}_dataloader.dataset.data_root={root}', f'{split}_dataloader.dataset.indices=6']
    opts += [f'{split}_dataloader.num_workers=0', f'{split}_dataloader.persistent_workers=False']
    opts += [f'{split}_evaluator.0.ann_file={root}annotations/instances_val.json']
    opts += [f'{split}_evaluator.1.ann_file={root}annotations/instances_val.json']
    return opts


def test_every_config_loads_with_the_calibrated_head_and_dece_evaluator():
    configs = sorted(glob.glob(osp.join(CONFIG_DIR, '*.py')))
    assert len(configs) >= 20
    for path in configs:
        cfg = Config.fromfile(path)
        name = osp.basename(path)
        head = cfg.model.bbox_head.type
        if name.startswith('cal-'):
            assert head in ('CalDINOHead', 'CalDeformableDETRHead'), name
        else:
            assert head in ('DINOHead', 'DeformableDETRHead'), name
        evaluators = [e['type'] for e in cfg.test_evaluator]
        assert evaluators == ['CocoMetric', 'DECEMetric'], name
        if 'corrupted' in name or 'foggy' in name:
            assert (
                'corrupted' in cfg.test_evaluator[1]['ann_file']
                or 'foggy' in cfg.test_evaluator[1]['ann_file']
            )


@pytest.mark.parametrize(
    'released,paper',
    [
        ('cal-dino-4scale-released_r50_8xb2-12e_coco.py', 'cal-dino-4scale_r50_8xb2-12e_coco.py'),
        (
            'cal-dino-4scale-released_r50_8xb2-12e_corrupted-coco.py',
            'cal-dino-4scale_r50_8xb2-12e_corrupted-coco.py',
        ),
        ('cal-deformable-detr-released_r50_16xb2-50e_coco.py', 'cal-deformable-detr_r50_16xb2-50e_coco.py'),
        (
            'cal-deformable-detr-released_r50_16xb2-50e_corrupted-coco.py',
            'cal-deformable-detr_r50_16xb2-50e_corrupted-coco.py',
        ),
    ],
)
def test_released_mode_configs_differ_from_the_paper_configs_in_the_two_release_settings_only(
    released, paper
):
    rel = Config.fromfile(osp.join(CONFIG_DIR, released))
    pap = Config.fromfile(osp.join(CONFIG_DIR, paper))
    assert rel.model.bbox_head.modulation_mode == 'released' and rel.model.bbox_head.logit_mixing is False
    assert pap.model.bbox_head.modulation_mode == 'paper' and pap.model.bbox_head.logit_mixing is True
    rel_dict, pap_dict = rel.to_dict(), pap.to_dict()
    for d in (rel_dict, pap_dict):
        d['model']['bbox_head'].pop('modulation_mode')
        d['model']['bbox_head'].pop('logit_mixing')
    assert rel_dict == pap_dict


@pytest.mark.parametrize(
    'name',
    ['cal-dino-4scale_r50_8xb2-12e_coco.py', 'cal-deformable-detr_r50_16xb2-50e_cityscapes-to-foggy.py'],
)
def test_full_size_cal_configs_build(name):
    from mmssod.utils import register_all_modules

    register_all_modules()
    cfg = Config.fromfile(osp.join(CONFIG_DIR, name))
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    assert type(model.bbox_head).__name__ == cfg.model.bbox_head.type
    assert (
        model.bbox_head.logit_modulation and model.bbox_head.logit_mixing and model.bbox_head.mix_alpha == 0.9
    )
    assert model.bbox_head.loss_mix.loss_weight == 0.5


def _train(config, root, work_dir, iters=2):
    return _check(
        run_python(
            [
                'tools/train.py',
                osp.join('configs/cal_detr', config),
                '--work-dir',
                str(work_dir),
                '--cfg-options',
                f'train_dataloader.dataset.data_root={root}',
                'train_dataloader.batch_size=2',
                'train_dataloader.num_workers=0',
                'train_dataloader.persistent_workers=False',
                f'train_cfg.max_iters={iters}',
                f'train_cfg.val_interval={iters}',
                f'default_hooks.checkpoint.interval={iters}',
                'default_hooks.logger.interval=1',
                'randomness.seed=0',
                *_data_options(root, 'val'),
            ]
        )
    )


@pytest.fixture(scope='module')
def trained_cal_dino(demo_det_root, tmp_path_factory):
    """Cal-DINO smoke config trained 2 iterations with tools/train.py (validated at the end)."""
    work_dir = tmp_path_factory.mktemp('cal_dino')
    return work_dir, _train('cal-dino-4scale_tiny_cpu-smoke_composited-demo.py', demo_det_root, work_dir)


def _assert_trained(work_dir, out):
    assert re.search(r'Iter\(train\) \[2/2\].*loss_mix: [0-9.]+', out), out[-3000:]
    assert 'dece/D-ECE' in out and 'coco/bbox_mAP' in out
    assert osp.isfile(osp.join(work_dir, 'iter_2.pth'))
    assert glob.glob(osp.join(work_dir, '*', 'dece_reliability_diagram.png'))


def test_cal_dino_smoke_config_trains_and_logs_the_mixing_loss(trained_cal_dino):
    _assert_trained(*trained_cal_dino)


def test_cal_deformable_detr_smoke_config_trains_and_logs_the_mixing_loss(demo_det_root, tmp_path):
    out = _train('cal-deformable-detr_tiny_cpu-smoke_composited-demo.py', demo_det_root, tmp_path)
    _assert_trained(str(tmp_path), out)


def test_dumped_results_give_dece_and_temperature_scaling_with_the_tool(
    trained_cal_dino, demo_det_root, tmp_path
):
    import importlib.util

    root = demo_det_root.rstrip('/') + '/'
    config = 'configs/cal_detr/cal-dino-4scale_tiny_cpu-smoke_composited-demo.py'
    pkl = str(tmp_path / 'res.pkl')
    ckpt = osp.join(trained_cal_dino[0], 'iter_2.pth')
    _check(
        run_python(
            ['tools/test.py', config, ckpt, '--work-dir', str(tmp_path / 'test'), '--out', pkl,
             '--cfg-options', *_data_options(root)]
        )
    )  # fmt: skip
    spec = importlib.util.spec_from_file_location(
        'dece_tool', osp.join(REPO_ROOT, 'tools/analysis_tools/dece.py')
    )
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    ann = f'{root}annotations/instances_val.json'
    summary = tool.main(
        [pkl, '--ann-file', ann, '--score-thr', '0.0', '--calib-results', pkl, '--calib-ann-file', ann,
         '--out-dir', str(tmp_path / 'dece')]
    )  # fmt: skip
    assert summary['raw']['dece/num_dets'] > 0 and summary['temperature'] > 0
    assert summary['temperature_scaled']['dece_ts/num_dets'] == summary['raw']['dece/num_dets']  # thr 0
    assert json.loads((tmp_path / 'dece' / 'dece.json').read_text())['temperature'] == summary['temperature']
    assert osp.isfile(tmp_path / 'dece' / 'dece_reliability_diagram.png')
    assert osp.isfile(tmp_path / 'dece' / 'dece_ts_reliability_diagram.png')
    with pytest.raises(FileNotFoundError, match='nope.pkl.*does not exist'):
        tool.main([str(tmp_path / 'nope.pkl'), '--ann-file', ann])


def _load_tool(path):
    import importlib.util

    spec = importlib.util.spec_from_file_location(osp.basename(path)[:-3], osp.join(REPO_ROOT, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_corrupted_coco_copy_is_seeded_and_keeps_annotations(demo_det_root, tmp_path):
    tool = _load_tool('tools/dataset_converters/corrupted_coco.py')
    coco = json.loads(open(osp.join(demo_det_root, 'annotations', 'instances_val.json')).read())
    coco['images'] = coco['images'][:3]
    ann = tmp_path / 'val3.json'
    ann.write_text(json.dumps(coco))
    counts = {}
    for run in ('a', 'b'):
        counts[run] = tool.corrupt_coco(
            str(ann),
            osp.join(demo_det_root, 'val'),
            str(tmp_path / run),
            str(tmp_path / f'{run}.json'),
            seed=1,
        )
        out = json.loads((tmp_path / f'{run}.json').read_text())
        assert out['annotations'] == coco['annotations']
        assert all('corruption' in img and 1 <= img['severity'] <= 5 for img in out['images'])
    assert counts['a'] == counts['b'] and sum(counts['a'].values()) == 3
    name = coco['images'][0]['file_name']
    assert (tmp_path / 'a' / name).read_bytes() == (tmp_path / 'b' / name).read_bytes()


def test_foggy_cityscapes_file_names():
    tool = _load_tool('tools/dataset_converters/foggy_cityscapes.py')
    assert tool.foggy_name('aachen/aachen_000000_000019_leftImg8bit.png', 0.02) == (
        'aachen/aachen_000000_000019_leftImg8bit_foggy_beta_0.02.png'
    )
    with pytest.raises(ValueError, match='not a Cityscapes'):
        tool.foggy_name('x.jpg', 0.02)
