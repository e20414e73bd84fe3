"""What the plain Fast and NAYER loops share: mmdfkd's
``FastDistillation`` iteration (few-step synthesis tasks, a memory bank,
student steps on bank batches) written with nothing but torch and numpy.

One iteration (``t`` counts iterations; warm-up: ``t < warmup_iters``)::

    begin_iteration()                          (Fast: layer reset; NAYER:
                                                re-initialisation of G)
    synthesis_loops x (warm-up: warmup_synthesis_loops x), one task each:
        y = arrange_targets(drawn targets)     (NAYER: balanced blocks)
        G', z, optimisers = begin_task()       (Fast: copy of the meta-G;
                                                NAYER: G with a fresh Adam
                                                and re-drawn noisy layers)
        generator_iter x:
            x = G'(z, y);  v = normalise(crop(x))        (per image)
            L = w_bn L_BN^m(T(v)) + w_oh CE(T(v), y)
                [+ w_adv tau^2 1/N sum_i m_i KL(p_T(v_i) || p_S(v_i))]
                                              (not during warm-up; S frozen,
                                               eval mode)
            keep x if L is the lowest of the task so far (judged before
            the step)
            backward; after_backward(G') (Fast: meta-gradient += grad);
            step G' (and z)
        end_task(G')                           (Fast: the meta step on G)
        bank <- the kept x;  BN running averages <- the last step's batch
            statistics
    student_iter x (not during warm-up):
        x ~ bank (numpy PCG64 stream of mmdfkd's SyntheticMemoryBank);
        v = normalise(crop(x));  L = w_kd tau^2 KL(p_T^tau || p_S^tau) -> S

with m_i = 1[argmax S(v_i) = argmax T(v_i)] and the momentum BN-statistics
loss L_BN^m = sum_l ||mu_l - mu_T,l|| + ||var_l - var_T,l||, where mu_l =
(1 - m) mu_l(v) + m mu_bar_l (the same for var) once running averages
exist.

The operations are the ones mmdfkd runs, in the same order, and the random
numbers come from the same streams in the same order (the global torch RNG
for crops, flips and noisy layers; numpy PCG64 seeded with (seed, rank 0,
stream 2, count) for the bank's batches), so that from the same weights the
two compute the same losses; ``tools/benchmark.py --compare-plain`` checks
it before it times them.
"""
import math
from collections import defaultdict

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from benchmarks.plain_loop import PlainLoop
from benchmarks.plain_models import PlainLeNet5

# the sampling stream of mmdfkd's SyntheticMemoryBank (its seed is
# (seed, rank, stream, number of batches sampled so far))
BANK_SAMPLE_STREAM = 2
# Fashion-MNIST's mean and std (the data preprocessor's, in [0, 1] units)
FASHION_MNIST_MEAN, FASHION_MNIST_STD = (72.94 / 255, ), (90.0 / 255, )


def logits_and_bn_inputs(
        net: PlainLeNet5,
        x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """LeNet-5 logits and the inputs of its four BatchNorm layers (what a
    DeepInversion hook sees), in module order."""
    bn_inputs = []

    def bn(layer, h):
        bn_inputs.append(h)
        return layer(h)

    h = net.pool1(net.relu1(bn(net.bn1, net.conv1(x))))
    h = net.pool2(net.relu2(bn(net.bn2, net.conv2(h))))
    h = net.relu3(bn(net.bn3, net.conv3(h)))
    features = net.relu4(bn(net.bn4, net.fc(torch.flatten(h, 1))))
    return net.classifier(features), bn_inputs


class CropFlipNormalize:
    """Per-image random crop with padding p (offsets ~ U{0..2p}^2, y then
    x), an optional horizontal flip with probability 1/2, then
    ``(x - mean) / std``; the random numbers are drawn from the global RNG
    in that order. Differentiable.

    Args:
        padding (int): p; 0 disables the crop.
        padding_value (float): Fill value of the padding.
        flip (bool): Random horizontal flips.
        mean (tuple[float]): Per-channel mean.
        std (tuple[float]): Per-channel std.
        device (torch.device): Device of the images.
    """

    def __init__(self, padding: int, padding_value: float, flip: bool,
                 mean: tuple, std: tuple, device: torch.device) -> None:
        self.padding = padding
        self.padding_value = padding_value
        self.flip = flip
        self.mean = torch.tensor(mean, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, device=device).view(1, -1, 1, 1)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        n, _, h, w = images.shape
        device, p = images.device, self.padding
        x = images
        if p:
            offset_y, offset_x = (
                (torch.rand(n, device=device) * (2 * p + 1)).floor().long()
                .clamp_max(2 * p) for _ in range(2))
            padded = F.pad(x, (p, ) * 4, value=self.padding_value)
            rows = offset_y[:, None] + torch.arange(h, device=device)
            cols = offset_x[:, None] + torch.arange(w, device=device)
            index = torch.arange(n, device=device)[:, None, None]
            x = padded[index, :, rows[:, :, None],
                       cols[:, None, :]].permute(0, 3, 1, 2)
        if self.flip:
            flipped = torch.rand(n, device=device) < 0.5
            x = torch.where(flipped[:, None, None, None], x.flip(-1), x)
        return (x - self.mean) / self.std


class ImageRingBuffer:
    """A first-in-first-out pool of images, sampled with the bank's own
    numpy stream (one ``default_rng([seed, 0, 2, count])`` per batch).

    Args:
        capacity (int): Images it holds.
        image_shape (tuple): (C, H, W).
        dtype (torch.dtype): Storage dtype (batches come out float32).
        seed (int): Seed of the sampling stream.
        device (torch.device): Storage device.
    """

    def __init__(self, capacity: int, image_shape: tuple, dtype: torch.dtype,
                 seed: int, device: torch.device) -> None:
        self.capacity = capacity
        self.images = torch.zeros(capacity, *image_shape, dtype=dtype,
                                  device=device)
        self.seed = seed
        self.stored = self.write_pos = self.num_samples = 0

    def add(self, images: torch.Tensor) -> None:
        n = len(images)
        slots = (self.write_pos + torch.arange(n, device=images.device)
                 ) % self.capacity
        self.images[slots] = images.to(self.images.dtype)
        self.write_pos = (self.write_pos + n) % self.capacity
        self.stored = min(self.stored + n, self.capacity)

    def sample(self, batch_size: int, replacement: bool) -> torch.Tensor:
        rng = np.random.default_rng(
            [self.seed, 0, BANK_SAMPLE_STREAM, self.num_samples])
        self.num_samples += 1
        if replacement:
            slots = rng.integers(0, self.stored, size=batch_size)
        else:  # distinct entries while the pool holds enough of them
            rounds = -(-batch_size // self.stored)
            slots = np.concatenate([
                rng.permutation(self.stored) for _ in range(rounds)
            ])[:batch_size]
        return self.images[torch.from_numpy(slots).to(
            self.images.device)].float()


class PlainSynthesisLoop(PlainLoop):
    """The loop of the module docstring; subclasses fill in the hooks
    :meth:`begin_iteration`, :meth:`arrange_targets`, :meth:`begin_task`,
    :meth:`after_backward` and :meth:`end_task`.

    Defaults are the recipe Fast and NAYER share on Fashion-MNIST.

    Args:
        teacher (PlainLeNet5): Frozen teacher.
        student (nn.Module): Student.
        generator (nn.Module): Generator, called as ``G(z, y)``.
        batch_size (int): Images per synthesis task.
        latent_dim (int): Size of z (0: none).
        generator_optimizer (tuple): ``(torch.optim name, kwargs)``.
        student_optimizer (tuple): Defaults to SGD, lr 0.2, momentum 0.9,
            weight decay 1e-4.
        num_classes (int): Classes of the targets. Defaults to 10.
        generator_iter (int): Steps per synthesis task.
        synthesis_loops (int): Tasks per iteration. Defaults to 1.
        warmup_synthesis_loops (int): Tasks per warm-up iteration.
            Defaults to ``synthesis_loops``.
        warmup_iters (int): Iterations without student steps and without
            the adversarial term.
        student_iter (int): Student steps per iteration. Defaults to 40.
        student_batch_size (int): Defaults to 256.
        student_sample_replacement (bool): Defaults to False.
        student_train_mode_in_generator_step (bool): Student BN mode during
            synthesis. Defaults to False.
        bn_weight (float): w_bn. Defaults to 10.
        bn_momentum (float, optional): m. Defaults to 0.9.
        oh_weight (float): w_oh. Defaults to 0.5.
        adv_weight (float): w_adv. Defaults to -1.33.
        adv_tau (float): Defaults to 1.
        kd_weight (float): w_kd. Defaults to 1.
        kd_tau (float): Defaults to 20.
        synthesis_augmentation (dict): :class:`CropFlipNormalize`
            arguments (no device) of the synthesis views. Defaults to a
            4-pixel crop without flips, Fashion-MNIST normalisation.
        student_augmentation (dict, optional): The same for the student's
            bank batches. Defaults to ``synthesis_augmentation``.
        memory_capacity (int): Images the bank holds.
        image_shape (tuple): (C, H, W) of the generated images. Defaults
            to (1, 32, 32).
        memory_dtype (torch.dtype): Defaults to float16.
        memory_seed (int): Defaults to 0.
        device (str | torch.device): Defaults to 'cpu'.
    """

    uses_targets = True

    def __init__(self,
                 teacher: nn.Module,
                 student: nn.Module,
                 generator: nn.Module,
                 batch_size: int,
                 latent_dim: int,
                 generator_optimizer: tuple[str, dict],
                 student_optimizer: tuple[str, dict] = (
                     'SGD', {'lr': 0.2, 'momentum': 0.9,
                             'weight_decay': 1e-4}),
                 num_classes: int = 10,
                 *,
                 generator_iter: int,
                 synthesis_loops: int = 1,
                 warmup_synthesis_loops: int | None = None,
                 warmup_iters: int,
                 student_iter: int = 40,
                 student_batch_size: int = 256,
                 student_sample_replacement: bool = False,
                 student_train_mode_in_generator_step: bool = False,
                 bn_weight: float = 10.0,
                 bn_momentum: float | None = 0.9,
                 oh_weight: float = 0.5,
                 adv_weight: float = -1.33,
                 adv_tau: float = 1.0,
                 kd_weight: float = 1.0,
                 kd_tau: float = 20.0,
                 synthesis_augmentation: dict | None = None,
                 student_augmentation: dict | None = None,
                 memory_capacity: int,
                 image_shape: tuple = (1, 32, 32),
                 memory_dtype: torch.dtype = torch.float16,
                 memory_seed: int = 0,
                 device='cpu') -> None:
        super().__init__(teacher, student, generator, batch_size, latent_dim,
                         generator_optimizer, student_optimizer, num_classes,
                         device)
        self.generator_iter = generator_iter
        self.synthesis_loops = synthesis_loops
        self.warmup_synthesis_loops = (synthesis_loops
                                       if warmup_synthesis_loops is None else
                                       warmup_synthesis_loops)
        self.warmup_iters = warmup_iters
        self.student_iter = student_iter
        self.student_batch_size = student_batch_size
        self.student_sample_replacement = student_sample_replacement
        self.student_train_mode_in_generator_step = \
            student_train_mode_in_generator_step
        self.bn_weight = bn_weight
        self.bn_momentum = bn_momentum
        self.oh_weight = oh_weight
        self.adv_weight = adv_weight
        self.adv_tau = adv_tau
        self.kd_weight = kd_weight
        self.kd_tau = kd_tau
        synthesis_augmentation = synthesis_augmentation or {
            'padding': 4, 'padding_value': 0.0, 'flip': False,
            'mean': FASHION_MNIST_MEAN, 'std': FASHION_MNIST_STD}
        self.synthesis_view = CropFlipNormalize(
            **synthesis_augmentation, device=self.device)
        self.student_view = CropFlipNormalize(
            **(student_augmentation or synthesis_augmentation),
            device=self.device)
        self.teacher_bns = [
            m for m in self.teacher.modules() if isinstance(m, _BatchNorm)
        ]
        self.bank = ImageRingBuffer(memory_capacity, tuple(image_shape),
                                    memory_dtype, memory_seed, self.device)
        # (mean, var) running averages of the BN loss, and the statistics
        # of the last synthesis step that are folded into them
        self.bn_history: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._last_bn_stats = None
        self.iteration = 0

    @property
    def draws_per_iteration(self) -> int:
        if self.warmup_iters:
            return max(self.synthesis_loops, self.warmup_synthesis_loops)
        return self.synthesis_loops

    # ------------------------------------------------------------- hooks
    def begin_iteration(self) -> None:
        """Before the iteration's first task."""

    def arrange_targets(self, targets: torch.Tensor) -> torch.Tensor:
        """The targets of a task, from the drawn ones."""
        return targets

    def begin_task(self, latents: torch.Tensor):
        """Return (generator, its optimiser, latents, latents' optimiser
        or None) of a synthesis task."""
        raise NotImplementedError

    def after_backward(self, generator: nn.Module) -> None:
        """After each synthesis step's backward pass."""

    def end_task(self, generator: nn.Module) -> None:
        """After a task's last step."""

    # ------------------------------------------------------------ losses
    def bn_loss(self, bn_inputs: list[torch.Tensor]) -> torch.Tensor:
        stats = [
            torch.var_mean(x, dim=[0, *range(2, x.dim())], unbiased=False)
            for x in bn_inputs
        ]
        means = [mean for _, mean in stats]
        variances = [var for var, _ in stats]
        if self.bn_momentum is not None:
            self._last_bn_stats = [(mean.detach(), var.detach())
                                   for mean, var in zip(means, variances)]
            if self.bn_history:
                m = self.bn_momentum
                means = [(1 - m) * mean + m * hist_mean
                         for mean, (hist_mean, _) in zip(
                             means, self.bn_history)]
                variances = [(1 - m) * var + m * hist_var
                             for var, (_, hist_var) in zip(
                                 variances, self.bn_history)]
        loss = sum(
            torch.linalg.vector_norm(mean - bn.running_mean) +
            torch.linalg.vector_norm(var - bn.running_var)
            for mean, var, bn in zip(means, variances, self.teacher_bns))
        return self.bn_weight * loss

    @torch.no_grad()
    def update_bn_history(self) -> None:
        if self._last_bn_stats is None:
            return
        m = self.bn_momentum
        if not self.bn_history:
            self.bn_history = [(mean.clone(), var.clone())
                               for mean, var in self._last_bn_stats]
        else:
            for (hist_mean, hist_var), (mean, var) in zip(
                    self.bn_history, self._last_bn_stats):
                hist_mean.mul_(m).add_(mean, alpha=1 - m)
                hist_var.mul_(m).add_(var, alpha=1 - m)
        self._last_bn_stats = None

    def adversarial_loss(self, logits_s: torch.Tensor,
                         logits_t: torch.Tensor) -> torch.Tensor:
        agree = (logits_s.argmax(dim=1) == logits_t.argmax(dim=1)).to(
            logits_s.dtype)
        per_sample = F.kl_div(
            F.log_softmax(logits_s / self.adv_tau, dim=1),
            F.log_softmax(logits_t / self.adv_tau, dim=1),
            reduction='none', log_target=True).sum(dim=1)
        loss = (agree * per_sample).sum() / logits_s.shape[0]
        return self.adv_weight * self.adv_tau**2 * loss

    def kd_loss(self, logits_s: torch.Tensor,
                logits_t: torch.Tensor) -> torch.Tensor:
        kl = F.kl_div(
            F.log_softmax(logits_s / self.kd_tau, dim=1),
            F.log_softmax(logits_t / self.kd_tau, dim=1),
            reduction='sum', log_target=True)
        return self.kd_weight * self.kd_tau**2 * (kl / logits_s.shape[0])

    # -------------------------------------------------------------- loop
    def synthesis_task(self, latents: torch.Tensor, targets: torch.Tensor,
                       warmup: bool, logs: dict) -> None:
        targets = self.arrange_targets(targets)
        generator, optimizer, latents, latent_optimizer = self.begin_task(
            latents)
        best_loss, best_images = math.inf, None
        for _ in range(self.generator_iter):
            images = generator(latents, targets)
            views = self.synthesis_view(images)
            logits_t, bn_inputs = logits_and_bn_inputs(self.teacher, views)
            losses = {
                'loss_bn': self.bn_loss(bn_inputs),
                'loss_oh': self.oh_weight * F.cross_entropy(
                    logits_t, targets, reduction='none').mean(),
            }
            if not warmup:  # the student is only read by this term
                losses['loss_adv'] = self.adversarial_loss(
                    self.student(views), logits_t)
            loss = sum(losses.values())
            value = float(loss.detach())
            if best_images is None or value < best_loss:
                best_loss, best_images = value, images.detach()
            loss.backward()
            self.after_backward(generator)
            optimizer.step()
            optimizer.zero_grad()
            if latent_optimizer is not None:
                latent_optimizer.step()
                latent_optimizer.zero_grad()
            logs['generator.loss'].append(loss.detach())
            for name, value in losses.items():
                logs[f'generator.{name}'].append(value.detach())
        self.end_task(generator)
        self.bank.add(best_images)
        logs['generator.best_loss'].append(torch.tensor(best_loss))
        self.update_bn_history()

    def student_phase(self) -> list[torch.Tensor]:
        losses = []
        for _ in range(self.student_iter):
            with torch.no_grad():
                views = self.student_view(
                    self.bank.sample(self.student_batch_size,
                                     self.student_sample_replacement))
                logits_t = self.teacher(views)
            loss = self.kd_loss(self.student(views), logits_t)
            loss.backward()
            self.optimizer_s.step()
            self.optimizer_s.zero_grad()
            losses.append(loss.detach())
        return losses

    def train_step(self, latents: torch.Tensor,
                   targets: torch.Tensor | None = None
                   ) -> dict[str, torch.Tensor]:
        """One iteration on latents (N, draws, latent_dim) and targets
        (N, draws); returns the losses (detached, averaged over the steps
        of each phase) under mmdfkd's log names."""
        warmup = self.iteration < self.warmup_iters
        self.begin_iteration()
        loops = self.warmup_synthesis_loops if warmup else self.synthesis_loops
        logs = defaultdict(list)
        # the student is frozen while the generator learns
        self.student.requires_grad_(False)
        self.student.train(self.student_train_mode_in_generator_step)
        for k in range(loops):
            self.synthesis_task(latents[:, k], targets[:, k], warmup, logs)
        self.student.requires_grad_(True)
        self.student.train()
        if not warmup:
            logs['student.loss_kd'] = self.student_phase()
            logs['student.loss'] = logs['student.loss_kd']
        self.iteration += 1
        return {key: sum(values) / len(values) for key, values in logs.items()}
