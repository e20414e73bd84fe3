"""Label embeddings without a text model: a deterministic stand-in for the
label-text embeddings (LTE) of NAYER."""
import numpy as np
import torch

RANDOM_EMBEDDING_TYPES = ('orthogonal', )


def orthogonal_label_embeddings(num_classes: int,
                                dim: int,
                                seed: int = 0) -> torch.Tensor:
    """A (num_classes, dim) table of unit-norm class embeddings drawn from
    a seeded Gaussian, with orthonormal rows when ``num_classes <= dim``.

    NAYER (Tran et al., CVPR 2024) feeds its generator CLIP text features
    of "a image of {class}" (512-d); a sentence encoder
    (``tools/misc/compute_label_embeddings.py``) gives 384-d features of
    the same prompts. Both carry *semantic* similarity between classes (a
    cat is nearer a dog than a truck). This table carries none: every
    class is equally far from every other, like a one-hot code in a
    randomly rotated basis. It lets NAYER run without any text model and
    is the ablation "constant input, no label text"; it is not CLIP.

    The rows are the columns of Q from the QR decomposition of a
    (dim, num_classes) standard Gaussian matrix (numpy PCG64 seeded with
    ``seed``, so the same on every platform); with more classes than
    dimensions the rows are the normalised Gaussian rows, which are only
    nearly orthogonal.
    """
    if num_classes < 1 or dim < 1:
        raise ValueError('orthogonal label embeddings need num_classes >= 1 '
                         f'and dim >= 1, got {num_classes} and {dim}')
    gaussian = np.random.default_rng(seed).standard_normal(
        (dim, num_classes))
    if num_classes <= dim:
        q, r = np.linalg.qr(gaussian)
        # fix the signs QR leaves free, so the table is unique
        table = (q * np.sign(np.diag(r))).T
    else:
        table = gaussian.T / np.linalg.norm(gaussian.T, axis=1, keepdims=True)
    return torch.from_numpy(np.ascontiguousarray(table)).float()


def build_label_embeddings(spec: dict) -> torch.Tensor:
    """The table described by ``spec``:
    ``dict(type='orthogonal', num_classes=C, dim=E, seed=0)`` (see
    :func:`orthogonal_label_embeddings`)."""
    spec = dict(spec)
    kind = spec.pop('type', None)
    if kind not in RANDOM_EMBEDDING_TYPES:
        raise ValueError(f'label embedding spec type must be one of '
                         f'{RANDOM_EMBEDDING_TYPES}, got {kind!r}')
    unknown = set(spec) - {'num_classes', 'dim', 'seed'}
    missing = {'num_classes', 'dim'} - set(spec)
    if unknown or missing:
        raise KeyError(
            "a label embedding spec is dict(type='orthogonal', "
            f'num_classes=C, dim=E, seed=S); unknown keys {sorted(unknown)}'
            f', missing keys {sorted(missing)}')
    return orthogonal_label_embeddings(**spec)
