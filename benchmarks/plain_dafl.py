"""DAFL (Chen et al., "Data-Free Learning of Student Networks", ICCV 2019)
in plain PyTorch: the overhead floor of
``configs/dafl/dafl_lenet5_lenet5half_1xb128_fashionmnist.py``.

One iteration, exactly as the config's ``DataFreeDistillation`` computes it::

    x = G(z)                                   (G in train mode)
    t, f = teacher logits and penultimate features on x (eval mode)
    L_G = w_oh * CE(t, argmax t)
          - w_a * mean |f|
          + w_ie * sum_c p_c ln p_c,  p = mean_i softmax(t_i)
    update G (Adam)
    s = student(x.detach())                    (train mode)
    L_S = w_kd * tau^2 * 1/N * sum_i KL(softmax(t_i/tau) || softmax(s_i/tau))
    update the student (Adam)

As in DAFL's own code, the student's KD target is the teacher output of the
generator step (the teacher is frozen and in eval mode, so a second teacher
forward on the same images would return the same logits).

    python benchmarks/plain_dafl.py [--iters 50] [--warmup 5] [--device cpu]
"""
import os.path as osp
import sys

import torch
import torch.nn.functional as F
from torch import nn

if __package__ in (None, ''):  # run as a script
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from benchmarks.plain_loop import PlainLoop, standalone_main
from benchmarks.plain_models import PlainDAFLGenerator, PlainLeNet5


class PlainDAFL(PlainLoop):
    """The DAFL training loop with nothing but torch.

    Defaults are those of the Fashion-MNIST config.

    Args:
        teacher (PlainLeNet5): Frozen teacher (put in eval mode here).
        student (PlainLeNet5): Student.
        generator (PlainDAFLGenerator): Generator.
        batch_size (int): Images per generator batch. Defaults to 128.
        latent_dim (int): Size of z. Defaults to 100.
        onehot_weight (float): w_oh. Defaults to 1.
        activation_weight (float): w_a. Defaults to 0.1.
        entropy_weight (float): w_ie. Defaults to 5.
        kd_weight (float): w_kd. Defaults to 1.
        tau (float): KD temperature. Defaults to 1.
        generator_optimizer (tuple): ``(torch.optim name, kwargs)``.
            Defaults to Adam, lr 0.2.
        student_optimizer (tuple): Defaults to Adam, lr 2e-3.
        device (str | torch.device): Defaults to 'cpu'.
    """

    def __init__(self,
                 teacher: nn.Module,
                 student: nn.Module,
                 generator: nn.Module,
                 batch_size: int = 128,
                 latent_dim: int = 100,
                 onehot_weight: float = 1.0,
                 activation_weight: float = 0.1,
                 entropy_weight: float = 5.0,
                 kd_weight: float = 1.0,
                 tau: float = 1.0,
                 generator_optimizer: tuple[str, dict] = ('Adam', {'lr': 0.2}),
                 student_optimizer: tuple[str, dict] = ('Adam', {'lr': 2e-3}),
                 device='cpu') -> None:
        super().__init__(teacher, student, generator, batch_size, latent_dim,
                         generator_optimizer, student_optimizer,
                         device=device)
        self.onehot_weight = onehot_weight
        self.activation_weight = activation_weight
        self.entropy_weight = entropy_weight
        self.kd_weight = kd_weight
        self.tau = tau

    def train_step(self, latents: torch.Tensor,
                   targets: torch.Tensor | None = None
                   ) -> dict[str, torch.Tensor]:
        """One iteration on latents (N, 1, latent_dim) (``targets`` are not
        used); returns the losses (detached) under mmdfkd's log names."""
        images = self.generator(latents[:, 0])
        features_t, logits_t = self.teacher.features_and_logits(images)
        loss_onehot = self.onehot_weight * F.cross_entropy(
            logits_t, logits_t.argmax(dim=1))
        loss_activation = -self.activation_weight * features_t.abs().mean()
        mean_prob = F.softmax(logits_t, dim=1).mean(dim=0)
        loss_entropy = self.entropy_weight * (
            mean_prob * mean_prob.clamp_min(1e-12).log()).sum()
        loss_g = loss_onehot + loss_activation + loss_entropy
        loss_g.backward()
        self.optimizer_g.step()
        self.optimizer_g.zero_grad()

        logits_s = self.student(images.detach())
        log_p_s = F.log_softmax(logits_s / self.tau, dim=1)
        log_p_t = F.log_softmax(logits_t.detach() / self.tau, dim=1)
        kl = F.kl_div(log_p_s, log_p_t, reduction='sum', log_target=True)
        loss_kd = self.kd_weight * self.tau**2 * (kl / logits_s.shape[0])
        loss_kd.backward()
        self.optimizer_s.step()
        self.optimizer_s.zero_grad()
        return {
            'generator.loss_onehot': loss_onehot.detach(),
            'generator.loss_activation': loss_activation.detach(),
            'generator.loss_entropy': loss_entropy.detach(),
            'generator.loss': loss_g.detach(),
            'student.loss_kd': loss_kd.detach(),
            'student.loss': loss_kd.detach(),
        }


def build_fashion_mnist_dafl(device='cpu') -> PlainDAFL:
    """The Fashion-MNIST config's networks (random weights) and recipe."""
    return PlainDAFL(
        teacher=PlainLeNet5(1.0),
        student=PlainLeNet5(0.5),
        generator=PlainDAFLGenerator(
            img_size=32, latent_dim=100, hidden_channels=32, out_channels=1,
            bn_eps=0.8),
        device=device)


if __name__ == '__main__':
    standalone_main(build_fashion_mnist_dafl,
                    'Time the plain-PyTorch DAFL loop (Fashion-MNIST sizes)')
