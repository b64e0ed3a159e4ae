"""ACRST on a GPU, checked on CPU (DeviceTensors stand in for CUDA tensors): a checkpoint restored onto the
training device (``--resume`` loads with ``map_location`` = the device) restores the CropBank exactly, and the
pseudo-label / paste path reads the teacher's device tensors back only through one copy per batch."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mmssod.datasets.cropbank import CropBank
from mmssod.engine.hooks import CropBankHook

from .bank_digest_hook import canonical
from .device_standin import DeviceTensor, on_device
from .test_cropbank import random_records


def test_device_standin_refuses_host_reads_until_cpu():
    t = torch.arange(4).as_subclass(DeviceTensor)
    for read in (np.asarray, lambda x: x.numpy(), lambda x: x.tolist(), lambda x: x[0].item()):
        with pytest.raises(TypeError, match='cpu'):
            read(t)
    assert type(t + 1) is DeviceTensor  # every other op works and stays "on the device"
    assert type(t.cpu()) is torch.Tensor and t.cpu().tolist() == [0, 1, 2, 3]
    assert type(t.to('cpu')) is torch.Tensor


def filled_bank():
    rng = np.random.default_rng(0)
    bank = CropBank(4, pseudo_cap=3)
    bank.label_bank.extend('labeled.png', [[0, 0, 10, 10], [5, 5, 30, 40]], [1, 3], [1, 1])
    bank.num_labeled_images = 1
    bank.labeled_counts[[1, 3]] = 1
    bank.add_teacher_records(random_records(rng, 6, 'a'))
    bank.refresh()
    bank.add_teacher_records(random_records(rng, 4, 'b'))  # a window and unsynced additions in the state
    return bank


def test_bank_state_restored_from_device_tensors_is_exact():
    bank = filled_bank()
    state = bank.state_dict()
    restored = CropBank(4, pseudo_cap=3)
    restored.load_state_dict(on_device(state))
    bank.sync()  # the loading bank joins the unsynced additions to its window
    assert canonical(restored.state_dict()) == canonical(bank.state_dict())
    np.testing.assert_array_equal(restored.pseudo_bank.records, bank.pseudo_bank.records)
    assert len(restored.candidates) > 0 and len(restored.pseudo_bank) > 0


def test_hook_resumes_from_a_checkpoint_loaded_onto_the_device():
    bank = filled_bank()
    saved = CropBankHook()
    saved.bank = bank
    saved.history = [{'iter': 2, 'pr': [0.5, None, 1.0, 0.0], 'mu': bank.mu.tolist(), 'sizes': [1, 2, 3, 4]}]
    model = SimpleNamespace(
        pasted_class_counts=torch.tensor([1, 0, 2, 0]), pseudo_class_counts=torch.tensor([3, 1, 0, 5])
    )
    saved._model = lambda runner: model
    checkpoint = {}
    saved.before_save_checkpoint(None, checkpoint)

    hook = CropBankHook()
    hook.after_load_checkpoint(SimpleNamespace(_resume=True), on_device(checkpoint))
    resumed = SimpleNamespace(pasted_class_counts=torch.zeros(4, dtype=torch.long))
    resumed.pseudo_class_counts = torch.zeros(4, dtype=torch.long)
    hook.bank = CropBank(4, pseudo_cap=3)
    hook.bank.load_state_dict(hook._resume_state)  # what before_train does on --resume
    hook._restore_stats(resumed)
    bank.sync()
    assert canonical(hook.bank.state_dict()) == canonical(bank.state_dict())
    assert hook.history == saved.history
    assert resumed.pasted_class_counts.tolist() == [1, 0, 2, 0]
    assert resumed.pseudo_class_counts.tolist() == [3, 1, 0, 5]


def test_acrst_pseudo_labels_and_pastes_from_device_tensors(acrst_cfg, monkeypatch):
    """The teacher's detections on the device: filtered, recorded for the CropBank and merged with the pastes
    without any host read of a device tensor (one forced copy per batch, as ``numpy(force=True)`` on CUDA)."""
    from mmdet.models.detectors import SoftTeacher
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample
    from mmengine.registry import init_default_scope
    from mmengine.structures import InstanceData

    init_default_scope('mmdet')
    model = MODELS.build(acrst_cfg.model)
    model.semi_train_cfg.update(tau_cls=0.5)
    boxes = torch.tensor([[10.0, 10.0, 40.0, 40.0], [60.0, 60.0, 100.0, 100.0], [5.0, 70.0, 30.0, 120.0]])
    meta = dict(img_path='u.png', homography_matrix=np.eye(3, dtype=np.float32), img_shape=(128, 128))
    teacher = DetDataSample(metainfo=meta)
    teacher.gt_instances = InstanceData(
        bboxes=boxes,
        labels=torch.tensor([1, 2, 3]),
        scores=torch.tensor([0.9, 0.8, 0.3]),
        reg_uncs=torch.zeros(3),
    )
    teacher.gt_instances = InstanceData(**on_device(dict(teacher.gt_instances.items())))
    monkeypatch.setattr(SoftTeacher, 'get_pseudo_instances', lambda self, inputs, samples: (samples, {}))
    (pseudo,), _ = model.get_pseudo_instances(torch.zeros(1, 3, 128, 128), [teacher])
    (record,) = model.pop_cropbank_records()
    assert record['kept'].tolist() == [True, True, False] and record['labels'].tolist() == [1, 2, 3]
    np.testing.assert_array_equal(record['bboxes'], boxes.numpy())
    assert type(pseudo.gt_instances.bboxes) is DeviceTensor and len(pseudo.gt_instances) == 2

    student_meta = dict(
        meta,
        pad_shape=(128, 128),
        batch_input_shape=(128, 128),
        pasted_bboxes=np.array([[55.0, 55.0, 105.0, 105.0]], np.float32),  # covers the second pseudo box
        pasted_labels=np.array([7]),
    )
    (student,) = model.project_pseudo_instances([pseudo], [DetDataSample(metainfo=student_meta)])
    inst = student.gt_instances
    assert type(inst.labels) is DeviceTensor and student.num_pasted == 1
    assert inst.labels.cpu().tolist() == [1, 7] and inst.pasted.cpu().tolist() == [False, True]
    (regressed,) = model.regression_samples([student])
    assert regressed.gt_instances.labels.cpu().tolist() == [7]
