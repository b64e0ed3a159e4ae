"""Data preprocessor for multi-view classification samples (SSMLL's weak / strong views, mmpretrain)."""

from __future__ import annotations

from mmengine.model import BaseDataPreprocessor
from mmpretrain.registry import MODELS


@MODELS.register_module()
class MultiViewClsDataPreprocessor(BaseDataPreprocessor):
    """Run an mmpretrain ``ClsDataPreprocessor`` on each view of multi-view samples.

    With mmpretrain's ``MultiView`` transform each sample's ``inputs`` is a list of views (here: weak,
    strong), which mmengine's ``pseudo_collate`` turns into view-major ``inputs[v][i]`` (V lists of N image
    tensors); the result's ``inputs`` is then a list of (N, C, H, W) batches, one per view. Single-view
    samples (testing) pass through the inner preprocessor unchanged.

    Args:
        data_preprocessor (dict): the inner ``ClsDataPreprocessor`` config.
    """

    def __init__(self, data_preprocessor: dict) -> None:
        super().__init__()
        self.data_preprocessor = MODELS.build(data_preprocessor)

    def forward(self, data: dict, training: bool = False) -> dict:
        inputs = data['inputs']
        if not (isinstance(inputs, (list, tuple)) and inputs and isinstance(inputs[0], (list, tuple))):
            return self.data_preprocessor(data, training)
        views, data_samples = [], data.get('data_samples')
        for view in inputs:  # view-major, as pseudo_collate transposes the per-sample view lists
            out = self.data_preprocessor({'inputs': list(view), 'data_samples': data_samples}, training)
            views.append(out['inputs'])
            data_samples = out['data_samples']
        return {'inputs': views, 'data_samples': data_samples}
