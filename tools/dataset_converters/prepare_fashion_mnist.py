"""Lay out Fashion-MNIST IDX files where mmpretrain's own dataset reads them.

Fashion-MNIST (Xiao et al., "Fashion-MNIST: a Novel Image Dataset for
Benchmarking Machine Learning Algorithms", arXiv:1708.07747, 2017) is read in
this project by mmpretrain's :class:`mmpretrain.datasets.FashionMNIST`
(``mmpretrain/datasets/mnist.py``), not by a loader of our own. With
``download=False`` that class expects the four *uncompressed* IDX files
directly in ``data_root``::

    data/fashion_mnist/
    ├── train-images-idx3-ubyte   (47,040,016 bytes, 60000 x 28 x 28 uint8)
    ├── train-labels-idx1-ubyte   (60,008 bytes)
    ├── t10k-images-idx3-ubyte    (7,840,016 bytes, 10000 x 28 x 28 uint8)
    └── t10k-labels-idx1-ubyte    (10,008 bytes)

It checks that all four exist (both splits, whichever one is asked for) and
otherwise tries to download them, which cannot work offline. The md5 sums in
the class are those of the upstream ``.gz`` archives and are only checked while
downloading. Debian's ``dataset-fashion-mnist`` recompressed the archives, so
their ``.gz`` md5 sums differ from upstream, yet their contents are identical:
this script therefore checks the md5 of the *decompressed* files against the
upstream raw-file sums below.

Usage (Debian's package supplies the source files)::

    apt-get install dataset-fashion-mnist
    python tools/dataset_converters/prepare_fashion_mnist.py \
        [--src /usr/share/datasets/fashion-mnist] [--out data/fashion_mnist]

The script is idempotent: a target file whose md5 already matches is left
alone (with ``--dataset idx``, which knows no md5, files are copied again). Source files may be gzipped (``*.gz``) or already decompressed.

MNIST and other IDX folders. mmpretrain's :class:`~mmpretrain.datasets.MNIST`
(the parent class of ``FashionMNIST``) reads exactly the same four file names,
so the same script prepares any folder of IDX files in the official layout::

    python tools/dataset_converters/prepare_fashion_mnist.py \
        --dataset mnist --src path/to/mnist --out data/mnist

``--dataset mnist`` checks the upstream MNIST raw-file md5 sums, and
``--dataset idx`` checks only the IDX headers (for other data in the MNIST
format, e.g. KMNIST); then use ``dict(type='MNIST', data_root='data/mnist')``.

Caveat of mmpretrain 1.2.0: ``MNIST.load_data_list`` chooses the files by
``test_mode``, not by ``split``, so ``split='test'`` alone silently returns the
60000 *training* images. Always pass ``split='test', test_mode=True`` for the
test set (``configs/_base_/datasets/fashionmnist_bs256.py`` does).
"""
import argparse
import gzip
import hashlib
import os
import os.path as osp
import shutil
import struct
import sys
import tempfile

DEBIAN_DIR = '/usr/share/datasets/fashion-mnist'

# (file name, number of dimensions, number of items)
FILES = [
    ('train-images-idx3-ubyte', 3, 60000),
    ('train-labels-idx1-ubyte', 1, 60000),
    ('t10k-images-idx3-ubyte', 3, 10000),
    ('t10k-labels-idx1-ubyte', 1, 10000),
]

# md5 of the decompressed upstream files; the .gz sums in mmpretrain's class
# depend on how the archives were compressed and do not match Debian's.
RAW_MD5 = {
    'fashion-mnist': {
        'train-images-idx3-ubyte': 'f4a8712d7a061bf5bd6d2ca38dc4d50a',
        'train-labels-idx1-ubyte': '9018921c3c673c538a1fc5bad174d6f9',
        't10k-images-idx3-ubyte': '8181f5470baa50b63fa0f6fddb340f0a',
        't10k-labels-idx1-ubyte': '15d484375f8d13e6eb1aabb0c3f46965',
    },
    'mnist': {
        'train-images-idx3-ubyte': '6bbc9ace898e44ae57da46a324031adb',
        'train-labels-idx1-ubyte': 'a25bea736e30d166cdddb491f175f624',
        't10k-images-idx3-ubyte': '2646ac647ad5339dbf082846283269ea',
        't10k-labels-idx1-ubyte': '27ae3e4e09519cfbb04c329615203637',
    },
    'idx': None,
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        '--src',
        default=DEBIAN_DIR,
        help='folder with the four IDX files, gzipped or not '
        f'(default: {DEBIAN_DIR}, from Debian\'s dataset-fashion-mnist)')
    parser.add_argument(
        '--out',
        default='data/fashion_mnist',
        help='data_root for mmpretrain (default: data/fashion_mnist)')
    parser.add_argument(
        '--dataset',
        choices=sorted(RAW_MD5),
        default='fashion-mnist',
        help='which md5 sums to check: fashion-mnist (default), mnist, or '
        'idx to check only the IDX headers')
    return parser.parse_args(argv)


def md5_of(path, chunk_size=1 << 20):
    md5 = hashlib.md5()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(chunk_size), b''):
            md5.update(chunk)
    return md5.hexdigest()


def find_source(src, name):
    """Return the path of ``name`` or ``name.gz`` in ``src``."""
    for candidate in (osp.join(src, name), osp.join(src, name + '.gz')):
        if osp.isfile(candidate):
            return candidate
    raise FileNotFoundError(
        f'Neither {name} nor {name}.gz is in {src}. The folder must hold the '
        'four IDX files of the official release: ' +
        ', '.join(n for n, _, _ in FILES))


def check_idx_header(path, ndim, num_items):
    """Check the IDX magic number (unsigned bytes, ``ndim`` dimensions) and
    the item count, so a truncated or mismatched file fails here rather than
    deep inside mmpretrain's reader."""
    with open(path, 'rb') as f:
        header = f.read(4 + 4 * ndim)
    if len(header) < 4 + 4 * ndim:
        raise ValueError(f'{path} is too short to be an IDX file')
    zero, dtype, file_ndim = struct.unpack('>HBB', header[:4])
    dims = struct.unpack(f'>{ndim}I', header[4:]) if file_ndim == ndim else ()
    # 0x08 = unsigned byte, the only type mmpretrain's reader accepts here
    if zero != 0 or dtype != 0x08 or file_ndim != ndim:
        raise ValueError(f'{path} is not a uint8 IDX file with {ndim} '
                         f'dimension(s) (magic {header[:4].hex()})')
    payload = 1
    for d in dims:
        payload *= d
    if osp.getsize(path) != len(header) + payload:
        raise ValueError(f'{path}: size {osp.getsize(path)} does not match '
                         f'its header dims {dims}')
    if num_items is not None and dims[0] != num_items:
        raise ValueError(
            f'{path} holds {dims[0]} items, expected {num_items}')


def copy_decompressed(src_path, dst_path):
    """Copy ``src_path`` to ``dst_path``, gunzipping if needed, through a
    temporary file so that an interrupted run never leaves a half file that
    mmpretrain's existence check would accept."""
    opener = gzip.open if src_path.endswith('.gz') else open
    fd, tmp_path = tempfile.mkstemp(
        dir=osp.dirname(dst_path), prefix='.' + osp.basename(dst_path))
    try:
        with opener(src_path, 'rb') as fin, os.fdopen(fd, 'wb') as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
        # mkstemp creates 0600 files; give the data the usual permissions
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, dst_path)
    except BaseException:
        if osp.exists(tmp_path):
            os.remove(tmp_path)
        raise


def prepare(src, out, dataset='fashion-mnist'):
    """Decompress and verify the IDX files of ``src`` into ``out``.

    Returns:
        list[str]: the four paths written (or already present).
    """
    if not osp.isdir(src):
        hint = (' Debian\'s package puts Fashion-MNIST in '
                f'{DEBIAN_DIR}: `apt-get install dataset-fashion-mnist`.'
                if dataset == 'fashion-mnist' else '')
        raise FileNotFoundError(
            f'Source folder {src} does not exist.{hint} Otherwise pass --src '
            'with a folder holding the four (gzipped) IDX files.')
    expected_md5 = RAW_MD5[dataset]
    # item counts are only known for the two official datasets
    check_counts = expected_md5 is not None
    os.makedirs(out, exist_ok=True)

    written = []
    for name, ndim, num_items in FILES:
        dst_path = osp.join(out, name)
        want = expected_md5[name] if expected_md5 else None
        if osp.isfile(dst_path) and want is not None \
                and md5_of(dst_path) == want:
            status = 'up to date'
        else:
            copy_decompressed(find_source(src, name), dst_path)
            status = 'written'
            if want is not None:
                got = md5_of(dst_path)
                if got != want:
                    os.remove(dst_path)
                    raise ValueError(
                        f'md5 of decompressed {name} is {got}, expected '
                        f'{want} for {dataset}; is --src the right dataset? '
                        '(use --dataset idx to skip the md5 check)')
        check_idx_header(dst_path, ndim, num_items if check_counts else None)
        print(f'{status:>10}: {dst_path}')
        written.append(dst_path)
    return written


def main(argv=None):
    args = parse_args(argv)
    try:
        prepare(args.src, args.out, args.dataset)
    except (FileNotFoundError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    cls = 'FashionMNIST' if args.dataset == 'fashion-mnist' else 'MNIST'
    print(f'{args.dataset} is ready in {osp.abspath(args.out)}; use '
          f"dict(type='{cls}', data_root='{args.out}') "
          '(and test_mode=True for split=\'test\').')
    return 0


if __name__ == '__main__':
    sys.exit(main())
