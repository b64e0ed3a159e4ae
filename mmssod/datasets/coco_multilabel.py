"""Image-level multi-label view of COCO-format detection files (ACRST's SSMLL, mmpretrain scope)."""

from __future__ import annotations

import os.path as osp

from mmpretrain.datasets import BaseDataset
from mmpretrain.registry import DATASETS


@DATASETS.register_module()
class CocoMultiLabelDataset(BaseDataset):
    """Image-level multi-label classification view of a COCO-format detection annotation file.

    Each image's ``gt_label`` lists the (contiguous, 0-based) classes of its non-crowd boxes. With
    ``labeled=False`` the labels are dropped (the unlabeled split of a semi-supervised run); every sample
    carries ``labeled`` and ``img_id`` so the pipeline's ``PackInputs(meta_keys=...)`` can pass them on.

    Args:
        ann_file (str): COCO json, relative to ``data_root``.
        labeled (bool): keep the image-level labels. Defaults to True.
        **kwargs: passed to mmpretrain's ``BaseDataset`` (``data_root``, ``data_prefix``, ``pipeline``,
            ``metainfo`` with ``classes``, ...).
    """

    def __init__(self, ann_file: str, labeled: bool = True, **kwargs) -> None:
        self.labeled = labeled
        super().__init__(ann_file=ann_file, **kwargs)

    def load_data_list(self) -> list[dict]:
        """Read the COCO file with pycocotools; classes are matched by name when metainfo gives them."""
        from pycocotools.coco import COCO

        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(f'CocoMultiLabelDataset.ann_file {self.ann_file!r} does not exist')
        coco = COCO(self.ann_file)
        cats = sorted(coco.loadCats(coco.getCatIds()), key=lambda c: c['id'])
        names = [c['name'] for c in cats]
        classes = list(self._metainfo.get('classes') or names)
        missing = [n for n in names if n not in classes]
        if missing:
            raise ValueError(
                f'{self.ann_file}: categories {missing} are not in metainfo.classes {classes}; '
                'the dataset classes must match the annotation file'
            )
        self._metainfo['classes'] = tuple(classes)
        cat_to_label = {c['id']: classes.index(c['name']) for c in cats}
        img_prefix = self.data_prefix.get('img_path', self.data_prefix.get('img', ''))
        data_list = []
        for img_id in sorted(coco.getImgIds()):
            info = coco.loadImgs([img_id])[0]
            anns = coco.loadAnns(coco.getAnnIds(imgIds=[img_id], iscrowd=False))
            labels = sorted({cat_to_label[a['category_id']] for a in anns}) if self.labeled else []
            data_list.append(
                {
                    'img_path': osp.join(img_prefix, info['file_name']),
                    'img_id': img_id,
                    'file_name': info['file_name'],
                    'gt_label': labels,
                    'labeled': self.labeled,
                }
            )
        return data_list
