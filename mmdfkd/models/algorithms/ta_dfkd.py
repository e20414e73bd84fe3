"""TA-DFKD: the teacher as a lenient expert that filters synthetic samples."""
from typing import NamedTuple

import torch
import torch.nn.functional as F
from mmengine.logging import MMLogger

from mmdfkd.registry import MODELS

from ..utils import module_mode, unwrap_model
from ..utils.gaussian_mixture import GaussianMixture1D
from .data_free_distillation import DataFreeDistillation, SyntheticBatch


def random_crop_flip(images: torch.Tensor,
                     padding: int,
                     flip: bool,
                     per_sample: bool = True) -> torch.Tensor:
    """RandomCrop(size, padding, fill 0) + RandomHorizontalFlip(0.5) on a
    batch, differentiable and on the batch's device.

    ``per_sample=True`` draws a crop offset and a flip for every image;
    ``per_sample=False`` draws one of each for the whole batch, which is
    what torchvision's transforms do when they are given a 4-D tensor (the
    TA-DFKD reference code).
    """
    n, c, h, w = images.shape
    draws = n if per_sample else 1
    device = images.device
    if padding > 0:
        padded = F.pad(images, (padding, ) * 4)
        dy = torch.randint(0, 2 * padding + 1, (draws, ), device=device)
        dx = torch.randint(0, 2 * padding + 1, (draws, ), device=device)
        if per_sample:
            rows = (dy[:, None] + torch.arange(h, device=device)).view(
                n, 1, h, 1).expand(n, c, h, w + 2 * padding)
            images = padded.gather(2, rows)
            cols = (dx[:, None] + torch.arange(w, device=device)).view(
                n, 1, 1, w).expand(n, c, h, w)
            images = images.gather(3, cols)
        else:
            y, x = int(dy), int(dx)
            images = padded[:, :, y:y + h, x:x + w]
    if flip:
        flipped = torch.rand(draws, device=device) < 0.5
        images = torch.where(flipped.view(-1, 1, 1, 1), images.flip(3),
                             images)
    return images


class SampleSplit(NamedTuple):
    """The teacher's verdict on one generated batch of N images."""
    train_view: torch.Tensor  # (N, C, H, W) augmented and normalised
    keep: torch.Tensor  # (N,) bool: clean samples
    clean_posterior: torch.Tensor  # (N,) posterior of the low-loss component
    teacher_pred: torch.Tensor  # (N,) teacher's top-1 on the plain view


@MODELS.register_module()
class TADFKDDistillation(DataFreeDistillation):
    """TA-DFKD (Shin & Choi, "Teacher as a Lenient Expert: Teacher-Agnostic
    Data-Free Knowledge Distillation", AAAI 2024, arXiv 2402.12406).

    The generator gets no class prior (no CE / one-hot loss). Instead the
    teacher judges every generated image and only the "clean" ones are
    used, for the student and for the generator alike. On a batch of
    generator outputs x in [0, 1]::

        l_i   = CE(T(norm(x_i)), argmax T(norm(x_i))) = -log max_c p_T(c|x_i)
        l~_i  = (l_i - min l) / (max l - min l)
        keep_i = P(low-mean component | l~_i) > 0.5   (2-component GMM)

    scored on the plain view ``norm(x)``; the kept images then go on in
    their training view ``norm(crop_flip(x))``. ``norm`` is the data
    preprocessor's normalisation. Per iteration (``student_train_first``):

        student_iter x: gather exactly B kept images from fresh generator
            batches of B; L_S = |S(x) - T(x)|_1 (mean)      (``distiller``)
        generator_iter x: one fresh batch of B, kept images x_k:
            L_G = (1 - clamp(JS_3(T(x_k), S(x_k)), 0, 1)) + 10 L_BN(x_k)
                  + 1.5e-5 TV + 6e-3 ||x||                  (``generator_distiller``)

    The weights live in the config (``configs/_base_/algorithms/ta_dfkd.py``).
    Departures from the reference code, on purpose: augmentation is drawn
    per sample (the code draws one crop and one flip per batch:
    ``per_sample_augmentation=False`` restores that); teacher losses are
    computed in one batched pass on the training device and the mixture is
    fitted there (:class:`GaussianMixture1D`) instead of in 32-image chunks
    and scikit-learn on the CPU; the student batch is gathered in as few
    generator passes as needed (the code always makes at least two) with a
    cap of ``max_generator_passes``, after which the batch is topped up
    with the rejected images of the last pass that are most probably clean.
    Images are normalised with the dataset's statistics (the code uses
    CIFAR-10's for CIFAR-100 too).

    Logged: ``student.kept_fraction`` / ``generator.kept_fraction`` (share of
    generated images kept) and ``student.generator_passes``.

    Args:
        selection_threshold (float): Keep an image when its clean posterior
            exceeds this. Defaults to 0.5.
        gmm (dict, optional): :class:`GaussianMixture1D` arguments; defaults
            to the reference's ``max_iter=10, tol=1e-2, reg_covar=5e-4``.
        crop_padding (int): RandomCrop padding of the training view.
            Defaults to 4.
        flip (bool): Random horizontal flip in the training view. Defaults
            to True.
        per_sample_augmentation (bool): Draw crop and flip per image (True,
            the paper's augmentation) or once per batch (the reference
            code). Defaults to True.
        max_generator_passes (int): Generator batches one student step may
            draw to gather B kept images. Defaults to 8.
        **kwargs: :class:`DataFreeDistillation` arguments. The generator
            must output pixels in [0, 1] (sigmoid) and ``data_preprocessor``
            must normalise (mean and std).
    """

    def __init__(self,
                 selection_threshold: float = 0.5,
                 gmm: dict | None = None,
                 crop_padding: int = 4,
                 flip: bool = True,
                 per_sample_augmentation: bool = True,
                 max_generator_passes: int = 8,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if self.reuse_generator_batch:
            raise ValueError('TA-DFKD trains the student on kept images of '
                             'fresh generator batches; set '
                             'reuse_generator_batch=False')
        if not 0.0 <= selection_threshold < 1.0:
            raise ValueError('selection_threshold must be in [0, 1), got '
                             f'{selection_threshold}')
        if not isinstance(max_generator_passes,
                          int) or max_generator_passes < 1:
            raise ValueError('max_generator_passes must be a positive int, '
                             f'got {max_generator_passes!r}')
        if crop_padding < 0:
            raise ValueError(f'crop_padding must be >= 0, got {crop_padding}')
        if not getattr(self.data_preprocessor, '_enable_normalize', False):
            raise ValueError(
                'TADFKDDistillation normalises the [0, 1] generator outputs '
                "with the data preprocessor's mean and std; set model."
                "data_preprocessor=dict(type='ClsDataPreprocessor', mean=..., "
                'std=...) (the dataset config provides one)')
        self.selection_threshold = selection_threshold
        self.gmm_cfg = {'max_iter': 10, 'tol': 1e-2, 'reg_covar': 5e-4}
        self.gmm_cfg.update(gmm or {})
        GaussianMixture1D(**self.gmm_cfg)  # fail at build time if invalid
        self.crop_padding = crop_padding
        self.flip = flip
        self.per_sample_augmentation = per_sample_augmentation
        self.max_generator_passes = max_generator_passes
        self._generator_kept_fraction: torch.Tensor | None = None
        self._student_selection_logs: dict[str, torch.Tensor] = {}
        self._warned_top_up = False

    # ------------------------------------------------------------ selection
    @torch.no_grad()
    def clean_posterior(self, images: torch.Tensor):
        """Posterior of the low-loss mixture component for every image of
        a normalised batch, and the teacher's top-1 labels.

        The loss is the teacher's (the first one's, if there are several)
        cross-entropy against its own top-1 class; when all losses are
        equal there is nothing to split and every image counts as clean.
        """
        teacher = next(iter(self.teachers.values()))
        logits = teacher(images, mode='tensor')
        top, pred = logits.max(dim=1)
        losses = logits.logsumexp(dim=1) - top
        if not bool(torch.isfinite(losses).all()):
            raise FloatingPointError(
                'the teacher gave non-finite logits on a synthetic batch; '
                'lower the generator learning rate or check the teacher')
        spread = losses.max() - losses.min()
        if losses.numel() < 2 or float(spread) <= 0:
            return torch.ones_like(losses), pred
        normalised = (losses - losses.min()) / spread
        posterior = GaussianMixture1D(
            **self.gmm_cfg).low_mean_posterior(normalised)
        return posterior.to(losses.dtype), pred

    def split(self, images: torch.Tensor) -> SampleSplit:
        """Score generator outputs (N, C, H, W) in [0, 1] with the teacher
        and build their training view (gradients flow through it)."""
        posterior, pred = self.clean_posterior(
            self.normalize(images.detach()))
        keep = posterior > self.selection_threshold
        if not bool(keep.any()):  # no evidence to reject anything
            keep = torch.ones_like(keep)
        train_view = self.normalize(
            random_crop_flip(images, self.crop_padding, self.flip,
                             self.per_sample_augmentation))
        return SampleSplit(train_view, keep, posterior, pred)

    def select_samples(self, batch: SyntheticBatch) -> SyntheticBatch:
        """The kept images of a generator batch in their training view,
        labelled with the teacher's top-1; ``generated_images`` holds the
        training view of the whole batch (the reference applies its image
        priors to it)."""
        split = self.split(batch['images'])
        keep = split.keep
        self._generator_kept_fraction = keep.float().mean()
        selected = {
            'images': split.train_view[keep],
            'targets': split.teacher_pred[keep],
            'generated_images': split.train_view,
        }
        if 'latents' in batch:
            selected['latents'] = batch['latents'][keep]
        return selected

    # ------------------------------------------------------------ the loop
    def generator_step(self, latents: torch.Tensor, targets: torch.Tensor,
                       optim_wrapper) -> dict[str, torch.Tensor]:
        log_vars = super().generator_step(latents, targets, optim_wrapper)
        log_vars['generator.kept_fraction'] = self._generator_kept_fraction
        return log_vars

    @torch.no_grad()
    def sample_student_batch(self) -> SyntheticBatch:
        """Exactly B kept images (B = the latent batch size) from as many
        fresh generator batches of B as needed, at most
        ``max_generator_passes``; the last pass contributes a random subset
        of its kept images if it has more than are missing."""
        latents, targets = self.next_draw()
        batch_size = latents.shape[0]
        generator = unwrap_model(self.generator)
        images, labels = [], []
        gathered = kept_total = passes = 0
        while gathered < batch_size and passes < self.max_generator_passes:
            if passes:  # further passes: fresh z ~ N(0, I) on the device
                latents = torch.randn_like(latents)
            with module_mode(generator,
                             self.generator_train_mode_in_student_step):
                split = self.split(generator(latents, targets))
            passes += 1
            kept = split.keep.nonzero().squeeze(1)
            kept_total += kept.numel()
            missing = batch_size - gathered
            if kept.numel() > missing:
                choice = torch.randperm(kept.numel(), device=kept.device)
                kept = kept[choice[:missing]]
            images.append(split.train_view[kept])
            labels.append(split.teacher_pred[kept])
            gathered += kept.numel()
        if gathered < batch_size:
            rejected = (~split.keep).nonzero().squeeze(1)
            order = split.clean_posterior[rejected].argsort(descending=True)
            top_up = rejected[order[:batch_size - gathered]]
            images.append(split.train_view[top_up])
            labels.append(split.teacher_pred[top_up])
            if not self._warned_top_up:
                MMLogger.get_current_instance().warning(
                    f'TA-DFKD kept only {kept_total} of {passes * batch_size}'
                    f' generated images in {passes} passes; the student batch'
                    f' was topped up with {batch_size - gathered} rejected '
                    'ones (raise max_generator_passes to avoid it; warned '
                    'once)')
                self._warned_top_up = True
        batch = {'images': torch.cat(images), 'targets': torch.cat(labels)}
        device = batch['images'].device
        self._student_selection_logs = {
            'student.kept_fraction':
            torch.tensor(kept_total / (passes * batch_size), device=device),
            'student.generator_passes':
            torch.tensor(float(passes), device=device),
        }
        self.last_synthetic_batch = batch['images']
        return batch

    def student_step(self, batch: SyntheticBatch,
                     optim_wrapper) -> dict[str, torch.Tensor]:
        log_vars = super().student_step(batch, optim_wrapper)
        log_vars.update(self._student_selection_logs)
        return log_vars
