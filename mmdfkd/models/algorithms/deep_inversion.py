from typing import Dict, Optional

import torch

from mmdfkd.registry import MODELS
from ..utils import unwrap_model
from .data_free_distillation import DataFreeDistillation, SyntheticBatch


@MODELS.register_module()
class DeepInversionDistillation(DataFreeDistillation):
    """DeepInversion and Adaptive DeepInversion (ADI), Yin et al., "Dreaming
    to Distill: Data-free Knowledge Transfer via DeepInversion", CVPR 2020.

    There is no generator network: the pixels of a batch
    (:class:`LearnableImages`) are optimised directly. Each iteration::

        re-draw the pixels and reset their optimiser state
        generator_iter times: x_j = jitter(x) (random roll + flip);
            minimise CE(T(x_j), y) + a_f * L_BN + a_tv * TV + a_l2 * ||x||
                     [ + a_c * (1 - JS(T(x_j), S(x_j))) for ADI ]
        add the final x to the memory bank
        student_iter times: distil on a batch sampled from the bank

    The losses and their weights come from ``generator_distiller``; ADI is
    the same config plus a negative-weight :class:`JSDivergence`. Unlike
    the reference, the pool stays in memory (no PNG files) and the student
    starts learning after the first batch instead of after the whole set is
    synthesised; set a large ``memory_bank.capacity`` to keep every image.

    Args:
        memory_bank (dict): :class:`SyntheticMemoryBank` config without
            ``image_shape`` (taken from the generator).
        jitter (int): Maximum random roll in pixels per step (DeepInversion
            uses 30 at 224 px; 2 suits 32 px). Defaults to 2.
        flip (bool): Random horizontal flip per step. Defaults to True.
        student_batch_size (int, optional): Student batch size; defaults to
            the synthesis batch size.
        **kwargs: :class:`DataFreeDistillation` arguments.
    """

    def __init__(self,
                 memory_bank: dict,
                 jitter: int = 2,
                 flip: bool = True,
                 student_batch_size: Optional[int] = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        generator = unwrap_model(self.generator)
        if not hasattr(generator, 'reset'):
            raise TypeError('DeepInversionDistillation optimises pixels: use '
                            "generator=dict(type='LearnableImages', ...)")
        self.memory_bank = MODELS.build(
            dict(memory_bank, image_shape=generator.image_shape))
        self.jitter = jitter
        self.flip = flip
        self.student_batch_size = student_batch_size or generator.batch_size

    @property
    def draws_per_iteration(self) -> int:
        return 1  # one set of targets per synthesised batch

    def generate(self, latents: torch.Tensor,
                 targets: torch.Tensor) -> torch.Tensor:
        images = self.generator(latents, targets)
        if self.jitter > 0:
            dx, dy = torch.randint(-self.jitter, self.jitter + 1, (2, ))
            images = torch.roll(images, shifts=(int(dx), int(dy)), dims=(2, 3))
        if self.flip and torch.rand(()) < 0.5:
            images = torch.flip(images, dims=(3, ))
        return images

    def generator_phase(self, optim_wrapper) -> Dict[str, torch.Tensor]:
        wrapper = optim_wrapper['generator']
        pixels = unwrap_model(self.generator)
        pixels.reset()
        wrapper.optimizer.state.clear()  # new images: no stale Adam moments
        latents, targets = self.next_draw()
        step_logs = []
        for _ in range(self.generator_iter):
            step_logs.append(self.generator_step(latents, targets, wrapper))
            pixels.project()
        images = pixels.images.detach()
        self.memory_bank.add(images, targets)
        self.last_synthetic_batch = images
        return self.mean_log_vars(step_logs)

    def update_memory(self, batch: SyntheticBatch) -> None:
        """Only the final images of a synthesis are stored (in
        :meth:`generator_phase`), not every intermediate step."""

    def sample_student_batch(self) -> SyntheticBatch:
        images, targets = self.memory_bank.sample(self.student_batch_size)
        return dict(images=images, targets=targets)
