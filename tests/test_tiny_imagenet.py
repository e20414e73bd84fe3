"""TinyImageNet reads the official tiny-imagenet-200 layout: classes in
wnids.txt order, training labels from the class folders, validation labels
from val_annotations.txt (the images sit in one flat folder), clear errors
for a broken tree. The tree is a tiny fake built by the test."""
import os.path as osp
import shutil

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config

from conftest import ROOT
from mmdfkd.datasets import TinyImageNet
from mmdfkd.registry import DATASETS, MODELS
from mmdfkd.utils import register_all_modules

register_all_modules()

# deliberately not sorted: a folder-sorting loader would number them 0, 1, 2
WNIDS = ['n02124075', 'n01443537', 'n09256479']
WORDS = {
    'n01443537': 'goldfish, Carassius auratus',
    'n02124075': 'Egyptian cat',
    'n09256479': 'coral reef',
    'n00001740': 'entity',  # words.txt covers all of WordNet
}
# one BGR colour per class, so that an image shows which class it belongs to
COLOURS_BGR = [(0, 0, 220), (0, 220, 0), (220, 0, 0)]
# val file -> wnid, in an order unrelated to the files' names
VAL_ANNOTATIONS = [('val_0.JPEG', 'n09256479'), ('val_1.JPEG', 'n02124075'),
                   ('val_2.JPEG', 'n01443537'), ('val_3.JPEG', 'n09256479')]
TRAIN_PER_CLASS = 2


def write_image(path, label):
    image = np.zeros((64, 64, 3), np.uint8)
    image[:] = COLOURS_BGR[label]
    assert cv2.imwrite(str(path), image)


def make_tiny_imagenet_tree(root):
    """Write a tiny-imagenet-200 folder with the official layout and file
    formats (tab-separated words.txt and val_annotations.txt, *_boxes.txt
    files, an unlabelled test split) at ``root``."""
    root.mkdir(parents=True)
    (root / 'wnids.txt').write_text(''.join(w + '\n' for w in WNIDS))
    (root / 'words.txt').write_text(''.join(
        f'{wnid}\t{name}\n' for wnid, name in WORDS.items()))
    for label, wnid in enumerate(WNIDS):
        images = root / 'train' / wnid / 'images'
        images.mkdir(parents=True)
        boxes = []
        for i in range(TRAIN_PER_CLASS):
            write_image(images / f'{wnid}_{i}.JPEG', label)
            boxes.append(f'{wnid}_{i}.JPEG\t0\t0\t63\t63\n')
        (root / 'train' / wnid / f'{wnid}_boxes.txt').write_text(
            ''.join(boxes))
    (root / 'val' / 'images').mkdir(parents=True)
    lines = []
    for name, wnid in VAL_ANNOTATIONS:
        write_image(root / 'val' / 'images' / name, WNIDS.index(wnid))
        lines.append(f'{name}\t{wnid}\t5\t6\t50\t60\n')
    (root / 'val' / 'val_annotations.txt').write_text(''.join(lines))
    (root / 'test' / 'images').mkdir(parents=True)
    write_image(root / 'test' / 'images' / 'test_0.JPEG', 0)
    return root


@pytest.fixture
def tiny_root(tmp_path):
    return make_tiny_imagenet_tree(tmp_path / 'tiny-imagenet-200')


def test_train_split_classes_in_wnids_order(tiny_root):
    dataset = TinyImageNet(data_root=str(tiny_root), split='train')
    assert len(dataset) == len(WNIDS) * TRAIN_PER_CLASS
    assert dataset.metainfo['wnids'] == tuple(WNIDS)
    assert dataset.CLASSES == tuple(WORDS[w] for w in WNIDS)
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        # the file lives in the folder of the class its label names
        assert f'/train/{WNIDS[info["gt_label"]]}/images/' in info['img_path']
    assert sorted(dataset.get_gt_labels().tolist()) == sorted(
        list(range(len(WNIDS))) * TRAIN_PER_CLASS)


def test_val_labels_come_from_the_annotations(tiny_root):
    dataset = TinyImageNet(
        data_root=str(tiny_root),
        split='val',
        test_mode=True,
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='PackInputs')])
    assert len(dataset) == len(VAL_ANNOTATIONS)
    expected = [WNIDS.index(wnid) for _, wnid in VAL_ANNOTATIONS]
    assert dataset.get_gt_labels().tolist() == expected
    # and each image is the one drawn for its label (OpenCV decodes BGR)
    for i, label in enumerate(expected):
        item = dataset[i]
        assert item['data_samples'].gt_label.item() == label
        mean_bgr = item['inputs'].float().mean(dim=(1, 2))
        assert torch.allclose(
            mean_bgr, torch.tensor(COLOURS_BGR[label], dtype=torch.float),
            atol=6)


def test_config_pipelines_and_rgb_normalisation(tiny_root):
    """The shipped train/val configs load the fake tree, crop to 64 px, and
    their preprocessor turns OpenCV's BGR into the RGB the teachers expect,
    normalised with mean = std = 0.5."""
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs/_base_/datasets/tinyimagenet_bs128.py'))
    preprocessor = MODELS.build(cfg.data_preprocessor)
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        dataset_cfg = dict(loader.dataset, data_root=str(tiny_root))
        dataset = DATASETS.build(dataset_cfg)
        item = dataset[0]
        assert item['inputs'].shape == (3, 64, 64)
        batch = preprocessor(
            dict(inputs=[item['inputs']],
                 data_samples=[item['data_samples']]))
        label = item['data_samples'].gt_label.item()
        # crops may pad zeros at the border: compare the centre
        centre = batch['inputs'][0, :, 24:40, 24:40].mean(dim=(1, 2))
        rgb = torch.tensor(COLOURS_BGR[label][::-1], dtype=torch.float)
        assert torch.allclose(centre, (rgb - 127.5) / 127.5, atol=0.05)


def test_test_split_is_refused(tiny_root):
    with pytest.raises(ValueError, match="without labels.*split='val'"):
        TinyImageNet(data_root=str(tiny_root), split='test')
    with pytest.raises(ValueError, match='split must be one of'):
        TinyImageNet(data_root=str(tiny_root), split='validation')


def test_missing_root_and_files_are_named(tiny_root, tmp_path):
    missing = tmp_path / 'nowhere'
    with pytest.raises(FileNotFoundError, match='nowhere.*tiny-imagenet-200'):
        TinyImageNet(data_root=str(missing))
    (tiny_root / 'wnids.txt').unlink()
    with pytest.raises(FileNotFoundError, match='wnids.txt'):
        TinyImageNet(data_root=str(tiny_root))


def test_half_extracted_train_tree_is_refused(tiny_root):
    shutil.rmtree(tiny_root / 'train' / WNIDS[2])
    with pytest.raises(FileNotFoundError,
                       match=f'{WNIDS[2]}/images.*partly extracted'):
        TinyImageNet(data_root=str(tiny_root), split='train')
    (tiny_root / 'train' / WNIDS[2] / 'images').mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match='no .JPEG image'):
        TinyImageNet(data_root=str(tiny_root), split='train')


def test_broken_val_split_is_refused(tiny_root):
    annotations = tiny_root / 'val' / 'val_annotations.txt'
    (tiny_root / 'val' / 'images' / 'val_3.JPEG').unlink()
    with pytest.raises(FileNotFoundError, match='val_3.JPEG'):
        TinyImageNet(data_root=str(tiny_root), split='val')
    annotations.write_text('val_0.JPEG\tn99999999\t0\t0\t1\t1\n')
    with pytest.raises(ValueError, match='n99999999 is not in wnids.txt'):
        TinyImageNet(data_root=str(tiny_root), split='val')
    annotations.unlink()
    with pytest.raises(FileNotFoundError, match='val_annotations.txt'):
        TinyImageNet(data_root=str(tiny_root), split='val')


def test_class_names_need_words_txt(tiny_root):
    (tiny_root / 'words.txt').write_text('n01443537\tgoldfish\n')
    with pytest.raises(ValueError, match='words.txt has no name'):
        TinyImageNet(data_root=str(tiny_root))
