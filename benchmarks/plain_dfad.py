"""DFAD (Fang et al., "Data-Free Adversarial Distillation", arXiv
1912.11006) in plain PyTorch: the overhead floor of
``configs/dfad/dfad_lenet5_lenet5half_1xb128_fashionmnist.py``.

One iteration, exactly as the config's ``DataFreeDistillation`` computes it
(student phase first, as in DFAD's code)::

    repeat student_iter (5) times, each on a fresh z:
        x = G(z)  without graph              (G in train mode)
        L_S = w_s * mean |student(x) - teacher(x)|
        update the student (SGD 0.1, momentum 0.9, wd 5e-4)
    x = G(z')                                (one more fresh z)
    L_G = w_adv * mean |student(x) - teacher(x)|,  w_adv = -1
    update G (Adam 1e-3); the student's parameters are frozen meanwhile
    (train mode, so its BN statistics follow the batch, as in DFAD)

    python benchmarks/plain_dfad.py [--iters 50] [--warmup 5] [--device cpu]
"""
import os.path as osp
import sys

import torch
from torch import nn

if __package__ in (None, ''):  # run as a script
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from benchmarks.plain_loop import PlainLoop, standalone_main
from benchmarks.plain_models import PlainDAFLGenerator, PlainLeNet5


class PlainDFAD(PlainLoop):
    """The DFAD training loop with nothing but torch.

    Defaults are those of the Fashion-MNIST config.

    Args:
        teacher (nn.Module): Frozen teacher (put in eval mode here).
        student (nn.Module): Student.
        generator (nn.Module): Generator.
        batch_size (int): Images per generator batch. Defaults to 128.
        latent_dim (int): Size of z. Defaults to 256.
        student_iter (int): Student steps per iteration. Defaults to 5.
        student_weight (float): w_s. Defaults to 1.
        adversarial_weight (float): w_adv. Defaults to -1.
        generator_optimizer (tuple): ``(torch.optim name, kwargs)``.
            Defaults to Adam, lr 1e-3.
        student_optimizer (tuple): Defaults to SGD, lr 0.1, momentum 0.9,
            weight decay 5e-4.
        device (str | torch.device): Defaults to 'cpu'.
    """

    def __init__(self,
                 teacher: nn.Module,
                 student: nn.Module,
                 generator: nn.Module,
                 batch_size: int = 128,
                 latent_dim: int = 256,
                 student_iter: int = 5,
                 student_weight: float = 1.0,
                 adversarial_weight: float = -1.0,
                 generator_optimizer: tuple[str, dict] = ('Adam', {'lr': 1e-3}),
                 student_optimizer: tuple[str, dict] = (
                     'SGD', {'lr': 0.1, 'momentum': 0.9, 'weight_decay': 5e-4}),
                 device='cpu') -> None:
        super().__init__(teacher, student, generator, batch_size, latent_dim,
                         generator_optimizer, student_optimizer,
                         device=device)
        self.student_iter = student_iter
        self.student_weight = student_weight
        self.adversarial_weight = adversarial_weight

    @property
    def draws_per_iteration(self) -> int:
        return self.student_iter + 1

    def train_step(self, latents: torch.Tensor,
                   targets: torch.Tensor | None = None
                   ) -> dict[str, torch.Tensor]:
        """One iteration on latents (N, student_iter + 1, latent_dim)
        (``targets`` are not used); returns the losses (detached, student
        ones averaged over the steps) under mmdfkd's log names."""
        student_losses = []
        for k in range(self.student_iter):
            with torch.no_grad():
                images = self.generator(latents[:, k])
                logits_t = self.teacher(images)
            logits_s = self.student(images)
            loss_s = self.student_weight * (logits_s - logits_t).abs().mean()
            loss_s.backward()
            self.optimizer_s.step()
            self.optimizer_s.zero_grad()
            student_losses.append(loss_s.detach())

        # frozen student: the backward reaches the generator only
        self.student.requires_grad_(False)
        images = self.generator(latents[:, self.student_iter])
        logits_t = self.teacher(images)
        logits_s = self.student(images)
        loss_adv = self.adversarial_weight * (logits_s -
                                              logits_t).abs().mean()
        loss_adv.backward()
        self.optimizer_g.step()
        self.optimizer_g.zero_grad()
        self.student.requires_grad_(True)

        loss_s = sum(student_losses) / len(student_losses)
        return {
            'student.loss_l1': loss_s,
            'student.loss': loss_s,
            'generator.loss_adv': loss_adv.detach(),
            'generator.loss': loss_adv.detach(),
        }


def build_fashion_mnist_dfad(device='cpu') -> PlainDFAD:
    """The Fashion-MNIST config's networks (random weights) and recipe."""
    return PlainDFAD(
        teacher=PlainLeNet5(1.0),
        student=PlainLeNet5(0.5),
        generator=PlainDAFLGenerator(
            img_size=32, latent_dim=256, hidden_channels=32, out_channels=1,
            bn_eps=1e-5),
        device=device)


if __name__ == '__main__':
    standalone_main(build_fashion_mnist_dfad,
                    'Time the plain-PyTorch DFAD loop (Fashion-MNIST sizes)')
