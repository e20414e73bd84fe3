"""Tiny-ImageNet-200 read from its official archive layout."""
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

from mmpretrain.datasets import BaseDataset

from mmdfkd.registry import DATASETS

TINY_IMAGENET_URL = 'http://cs231n.stanford.edu/tiny-imagenet-200.zip'


@DATASETS.register_module()
class TinyImageNet(BaseDataset):
    """Tiny-ImageNet-200 read from the archive exactly as it is shipped.

    Tiny-ImageNet (Le & Yang, CS231N 2015, ``tiny-imagenet-200.zip`` from
    http://cs231n.stanford.edu) has 200 ImageNet classes of 64x64 images:
    500 training and 50 validation images per class. The DFKD papers
    (NAYER, CPNet, TA-DFKD, AdaDFKD) train on ``train`` and report accuracy
    on ``val``; the ``test`` split ships without labels. Layout of the
    unpacked archive (``data_root`` is the ``tiny-imagenet-200`` folder)::

        wnids.txt                         the 200 WordNet ids, one a line
        words.txt                         wnid <TAB> names, for all of WordNet
        train/<wnid>/images/*.JPEG        training images of class <wnid>
        train/<wnid>/<wnid>_boxes.txt     bounding boxes (not used)
        val/images/*.JPEG                 all 10,000 validation images, flat
        val/val_annotations.txt           file <TAB> wnid <TAB> box (4 ints)
        test/images/*.JPEG                unlabelled

    Class ``i`` is the ``i``-th wnid of ``wnids.txt`` (the order the
    reference code and its teachers use); class names come from
    ``words.txt``. Validation labels are read from ``val_annotations.txt``:
    the validation images sit in one flat folder, so a folder-per-class
    reader (``ImageFolder``, mmpretrain's ``CustomDataset`` pointed at
    ``val/images``) cannot label them; TA-DFKD's evaluation does exactly
    that.

    A missing or half-extracted tree (no ``wnids.txt``, a class without its
    ``images`` folder or with no image, an annotated validation image that is
    not on disk, an annotation naming an unknown wnid) raises an error naming
    the path, instead of silently yielding a smaller dataset.

    Items are ``dict(img_path=..., gt_label=...)``: put
    ``LoadImageFromFile`` first in the pipeline. It decodes with OpenCV
    (BGR), so set ``to_rgb=True`` in the data preprocessor (as
    ``configs/_base_/datasets/normalization.py`` does).

    Args:
        data_root (str): The ``tiny-imagenet-200`` folder.
        split (str): ``'train'`` or ``'val'``. ``'test'`` is refused: it has
            no labels to evaluate against. Defaults to ``'train'``.
        **kwargs: Other arguments of mmpretrain's ``BaseDataset``
            (``pipeline``, ``test_mode``, ``indices``, ...).
    """

    SPLITS = ('train', 'val')
    IMAGE_SUFFIX = '.JPEG'

    def __init__(self,
                 data_root: str,
                 split: str = 'train',
                 metainfo: Optional[dict] = None,
                 **kwargs) -> None:
        if split == 'test':
            raise ValueError(
                'the Tiny-ImageNet test split ships without labels; evaluate '
                "on split='val' (the test set of the DFKD papers)")
        if split not in self.SPLITS:
            raise ValueError(
                f"split must be one of {self.SPLITS}, got {split!r}")
        if not data_root:
            raise ValueError('TinyImageNet needs data_root (the '
                             'tiny-imagenet-200 folder)')
        self.split = split
        super().__init__(
            ann_file='', metainfo=metainfo, data_root=data_root, **kwargs)

    def load_data_list(self) -> List[dict]:
        """Read the class list, then the image paths and labels of the
        split."""
        if not osp.isdir(self.data_root):
            raise self._missing(self.data_root, 'data_root')
        wnids = self._read_wnids()
        names = self._read_class_names(wnids)
        if self.CLASSES is not None and len(self.CLASSES) != len(wnids):
            raise ValueError(
                f'{len(self.CLASSES)} class names were given but '
                f'{self._path("wnids.txt")} lists {len(wnids)} classes')
        self._metainfo.setdefault('classes', tuple(names))
        self._metainfo['wnids'] = tuple(wnids)
        label_of = {wnid: label for label, wnid in enumerate(wnids)}
        if self.split == 'train':
            return self._load_train(wnids)
        return self._load_val(label_of)

    def _path(self, *parts: str) -> str:
        return osp.join(self.data_root, *parts)

    def _missing(self, path: str, what: str) -> FileNotFoundError:
        return FileNotFoundError(
            f'Tiny-ImageNet: {what} {path} not found; data_root must be the '
            f'unpacked tiny-imagenet-200 folder of {TINY_IMAGENET_URL} '
            '(is the archive only partly extracted?)')

    def _read_lines(self, name: str) -> List[str]:
        path = self._path(name)
        if not osp.isfile(path):
            raise self._missing(path, 'file')
        with open(path, encoding='utf-8') as f:
            return [line.rstrip('\n') for line in f if line.strip()]

    def _read_wnids(self) -> List[str]:
        wnids = [line.strip() for line in self._read_lines('wnids.txt')]
        if not wnids:
            raise ValueError(f'{self._path("wnids.txt")} lists no class')
        if len(set(wnids)) != len(wnids):
            raise ValueError(f'{self._path("wnids.txt")} lists a wnid twice')
        return wnids

    def _read_class_names(self, wnids: Sequence[str]) -> List[str]:
        words: Dict[str, str] = {}
        for line in self._read_lines('words.txt'):
            wnid, _, name = line.partition('\t')
            words[wnid.strip()] = name.strip()
        unnamed = [wnid for wnid in wnids if wnid not in words]
        if unnamed:
            raise ValueError(
                f'{self._path("words.txt")} has no name for '
                f'{len(unnamed)} class(es) of wnids.txt, e.g. {unnamed[0]}')
        return [words[wnid] for wnid in wnids]

    def _load_train(self, wnids: Sequence[str]) -> List[dict]:
        data_list = []
        for label, wnid in enumerate(wnids):
            folder = self._path('train', wnid, 'images')
            if not osp.isdir(folder):
                raise self._missing(folder, 'training image folder')
            files = sorted(
                f for f in os.listdir(folder) if f.endswith(self.IMAGE_SUFFIX))
            if not files:
                raise FileNotFoundError(
                    f'Tiny-ImageNet: no {self.IMAGE_SUFFIX} image in {folder}')
            data_list += [
                dict(img_path=osp.join(folder, f), gt_label=label)
                for f in files
            ]
        return data_list

    def _load_val(self, label_of: Dict[str, int]) -> List[dict]:
        folder = self._path('val', 'images')
        if not osp.isdir(folder):
            raise self._missing(folder, 'validation image folder')
        on_disk = set(os.listdir(folder))
        data_list = []
        for number, line in enumerate(
                self._read_lines(osp.join('val', 'val_annotations.txt')), 1):
            fields = line.split('\t')
            if len(fields) < 2:
                raise ValueError(
                    f'{self._path("val", "val_annotations.txt")} line '
                    f'{number} is not "file<TAB>wnid<TAB>box": {line!r}')
            filename, wnid = fields[0].strip(), fields[1].strip()
            if wnid not in label_of:
                raise ValueError(
                    f'{self._path("val", "val_annotations.txt")} line '
                    f'{number}: wnid {wnid} is not in wnids.txt')
            if filename not in on_disk:
                raise self._missing(
                    osp.join(folder, filename), 'annotated validation image')
            data_list.append(
                dict(
                    img_path=osp.join(folder, filename),
                    gt_label=label_of[wnid]))
        if not data_list:
            raise ValueError(
                f'{self._path("val", "val_annotations.txt")} is empty')
        return data_list

    def extra_repr(self) -> List[str]:
        return [f'Split: \t{self.split}', f'Root: \t{self.data_root}']
