"""mmpretrain's CIFAR10/CIFAR100 download code, run for real against an HTTP
server on 127.0.0.1 that serves a tiny archive in the official layout
(``cifar-10-python.tar.gz`` -> ``cifar-10-batches-py/data_batch_1..5,
test_batch, batches.meta``; python pickles of ``{'data': uint8 (N, 3072),
'labels': [...]}`` with the 1024 red, then green, then blue values of each
row-major 32x32 image).

Only the class attributes that pin the real archive (its URL and the md5
sums of the tarball and of every extracted file) are pointed at the fake, in
a subclass built by the test; the download, md5 checks, extraction and
decoding are mmpretrain's own code, as the configs run it."""
import hashlib
import io
import pickle
import tarfile

import numpy as np
import pytest
from mmpretrain.datasets import CIFAR10, CIFAR100

IMAGES_PER_FILE = 3


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def fake_images(seed: int, num: int) -> np.ndarray:
    """``num`` images as CIFAR rows: (num, 3 * 1024), planes R, G, B."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (num, 3 * 32 * 32), dtype=np.uint8)


def build_archive(dataset_cls, folder):
    """Write the fake archive of ``dataset_cls`` into ``folder``; return
    the subclass attributes that point at it and the content per split."""
    cifar100 = issubclass(dataset_cls, CIFAR100)
    files, content = {}, {}
    for offset, split, entries in ((0, 'train', dataset_cls.train_list),
                                   (100, 'test', dataset_cls.test_list)):
        rows, labels = [], []
        for i, (name, _) in enumerate(entries):
            data = fake_images(offset + i, IMAGES_PER_FILE)
            num_classes = 100 if cifar100 else 10
            batch_labels = [(7 * i + j) % num_classes
                            for j in range(IMAGES_PER_FILE)]
            entry = {'batch_label': f'{split} {i}', 'data': data}
            if cifar100:
                entry['fine_labels'] = batch_labels
                entry['coarse_labels'] = [lab // 5 for lab in batch_labels]
            else:
                entry['labels'] = batch_labels
            files[name] = pickle.dumps(entry, protocol=2)
            rows.append(data)
            labels += batch_labels
        content[split] = (np.concatenate(rows), labels)
    names_key = dataset_cls.meta['key']
    files[dataset_cls.meta['filename']] = pickle.dumps(
        {names_key: [f'class {i}' for i in range(100 if cifar100 else 10)]},
        protocol=2)

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode='w:gz') as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f'{dataset_cls.base_folder}/{name}')
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    archive = buffer.getvalue()
    (folder / dataset_cls.filename).write_bytes(archive)
    attributes = dict(
        tgz_md5=md5(archive),
        train_list=[[n, md5(files[n])] for n, _ in dataset_cls.train_list],
        test_list=[[n, md5(files[n])] for n, _ in dataset_cls.test_list],
        meta=dict(dataset_cls.meta,
                  md5=md5(files[dataset_cls.meta['filename']])))
    return attributes, content


def served_class(dataset_cls, url, attributes):
    """``dataset_cls`` downloading from ``url`` with the fake's md5 sums."""
    return type(f'Local{dataset_cls.__name__}', (dataset_cls, ),
                dict(attributes, url=f'{url}/{dataset_cls.filename}'))


@pytest.mark.parametrize('dataset_cls', [CIFAR10, CIFAR100])
def test_download_checks_extracts_and_decodes(dataset_cls, served_dir,
                                              tmp_path):
    folder, url = served_dir
    attributes, content = build_archive(dataset_cls, folder)
    local_cls = served_class(dataset_cls, url, attributes)
    data_root = tmp_path / 'data'

    for split in ('train', 'test'):
        dataset = local_cls(
            data_root=str(data_root), split=split, test_mode=split == 'test')
        rows, labels = content[split]
        assert len(dataset) == len(labels)
        assert dataset.get_gt_labels().tolist() == labels
        # row layout -> HWC RGB image, as mmpretrain decodes it
        image = dataset.get_data_info(1)['img']
        assert image.shape == (32, 32, 3)
        planes = rows[1].reshape(3, 32, 32)
        np.testing.assert_array_equal(image, planes.transpose(1, 2, 0))
    assert (data_root / dataset_cls.filename).is_file()
    assert (data_root / dataset_cls.base_folder).is_dir()

    # the extracted copy is checked and reused: no second download
    (folder / dataset_cls.filename).unlink()
    again = local_cls(data_root=str(data_root), split='test', test_mode=True)
    assert len(again) == len(content['test'][1])


def test_corrupted_download_is_refused(served_dir, tmp_path):
    folder, url = served_dir
    attributes, _ = build_archive(CIFAR10, folder)
    archive = folder / CIFAR10.filename
    archive.write_bytes(archive.read_bytes()[:-10])  # truncated transfer
    local_cls = served_class(CIFAR10, url, attributes)
    with pytest.raises(RuntimeError, match='corrupted'):
        local_cls(data_root=str(tmp_path / 'data'), split='test')


def test_tampered_extracted_file_is_refused(served_dir, tmp_path):
    """A batch file whose md5 differs from the expected one fails the
    integrity check after extraction instead of being loaded."""
    folder, url = served_dir
    attributes, _ = build_archive(CIFAR10, folder)
    attributes['test_list'] = [['test_batch', '0' * 32]]
    local_cls = served_class(CIFAR10, url, attributes)
    with pytest.raises(AssertionError, match='Download failed'):
        local_cls(data_root=str(tmp_path / 'data'), split='test')
