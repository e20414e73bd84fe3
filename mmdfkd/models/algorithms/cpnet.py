"""CPNet: NAYER's loop with a generator coupled to the teacher."""

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmdfkd.registry import MODELS

from ..recorders import RecorderManager
from ..utils import frozen_parameters, module_mode, unwrap_model
from .fast import FastDistillation

#: names of the two generator losses this algorithm adds
ALIGNMENT_LOSS, FEATURE_ADVERSARIAL_LOSS = 'loss_align', 'loss_dis'


@MODELS.register_module()
class CPNetDistillation(FastDistillation):
    """CPNet (Chen et al., "Coupling the Generator with Teacher for
    Effective Data-Free Knowledge Distillation", ICCV 2025; reference code
    LannCX/CPNet, a fork of NAYER's).

    NAYER's loop (:class:`FastDistillation` with ``meta_update=None``,
    class-balanced targets, re-drawn noisy layers, re-initialisation every
    ``g_life`` iterations, warm-up, memory bank, KD at tau 20) with a
    :class:`CoupledGenerator`, built from the teacher's structure so that
    its block inputs h_i mirror the teacher's BN inputs at n nodes, and a
    synthesis step of::

        v = CutMix(normalise(jitter(flip(crop4(x)))))   (x = G(e_y))
        L = bn * L_BN^m(T(v)) + oh * L_CE^mix(T(v), y, y', rho)
            + adv * ( -1/N sum_i m_i KL(p_S(v_i) || p_T(v_i))
                      + beta * L_dis(f_T(v), y) )          (not in warm-up)
            + L_align(h, T(v))

    * L_CE^mix: CE against the CutMix-mixed one-hot targets
      (1 - rho_i) onehot(y_i) + rho_i onehot(y'_i) (:class:`CutMix`, p 0.5;
      the generator distiller's CE reads them as ``mixed_targets``, with
      ``use_soft=True``).
    * The adversarial KL swaps NAYER's direction to KL(p_S || p_T)
      (:class:`AgreementMaskedKLDivergence` with ``direction='reverse'``, a
      generator-distiller loss).
    * L_dis (:class:`PseudoInverseFeatureAdversarialLoss`,
      ``feature_adversarial_loss``, logged as ``loss_dis``) on the teacher's
      penultimate features f_T (the input of ``classifier_layer``) and the
      unmixed targets; its ``loss_weight`` is adv * beta. Off in warm-up.
    * L_align (:class:`CoupledFeatureAlignmentLoss`,
      ``feature_alignment_loss``, logged as ``loss_align``): MSE between h_i
      and the re-normalised teacher BN input at node i, on during warm-up.

    The teacher features come from the same (augmented, mixed) view as
    every other term, as in the reference; the generator features from the
    un-augmented path, so the two are not spatially aligned pixel by pixel
    (a property of the method as released).

    Departures from the reference code (configs/cpnet/README.md): beta
    weights L_dis (the code parses it and leaves it unused, and crashes
    on an undefined ``loss_dis`` at its first step); the nodes come from a
    rule on the teacher's module tree instead of tables for four teachers;
    the re-normalisation adds eps = 1e-5; the student stays in eval mode in
    every synthesis loop (as in our NAYER).

    Args:
        feature_alignment_loss (dict): :class:`CoupledFeatureAlignmentLoss`
            config without ``num_channels`` (taken from the nodes).
        feature_adversarial_loss (dict):
            :class:`PseudoInverseFeatureAdversarialLoss` config without the
            classifier (taken from the coupled teacher).
        cutmix (dict, optional): :class:`CutMix` config of the synthesis
            views (CPNet: ``dict(type='CutMix', prob=0.5)``). None: no
            mixing, ``mixed_targets`` are one-hot. Defaults to None.
        coupled_teacher (str, optional): Key of the teacher the generator is
            coupled to; defaults to the first teacher.
        classifier_layer (str): The coupled teacher's final ``nn.Linear``
            (relative to the classifier). Defaults to 'head.fc'.
        **kwargs: :class:`FastDistillation` arguments. ``generator`` must be
            a :class:`CoupledGenerator`; its ``teacher`` defaults to the
            coupled teacher's ``build_cfg``. ``meta_update`` is refused.
    """

    def __init__(self,
                 feature_alignment_loss: dict,
                 feature_adversarial_loss: dict,
                 cutmix: dict | None = None,
                 coupled_teacher: str | None = None,
                 classifier_layer: str = 'head.fc',
                 **kwargs) -> None:
        if kwargs.get('meta_update') is not None:
            raise ValueError('CPNetDistillation trains its generator in '
                             'place (NAYER); meta_update must be None')
        teachers = kwargs.get('teachers') or {}
        coupled_teacher = coupled_teacher or next(iter(teachers), None)
        if coupled_teacher not in teachers:
            raise KeyError(f'coupled_teacher {coupled_teacher!r} is not a '
                           f'teacher; teachers: {list(teachers)}')
        generator = dict(kwargs['generator'])
        generator.setdefault('teacher',
                             teachers[coupled_teacher]['build_cfg'])
        kwargs['generator'] = generator
        super().__init__(**kwargs)
        for name in (ALIGNMENT_LOSS, FEATURE_ADVERSARIAL_LOSS):
            if name in self.generator_distiller.distill_losses:
                raise KeyError(f'{name!r} is a loss of CPNetDistillation '
                               'itself; rename that generator loss')
        self.coupled_teacher = coupled_teacher
        self.cutmix = None if cutmix is None else MODELS.build(cutmix)

        teacher = self.teachers[coupled_teacher]
        gen = unwrap_model(self.generator)
        if not hasattr(gen, 'nodes') or not hasattr(gen, 'blocks'):
            raise TypeError('CPNetDistillation needs a CoupledGenerator, got '
                            f'{type(gen).__name__}')
        self.coupled_bns = self._coupled_bn_layers(teacher, gen)
        classifier = teacher.get_submodule(classifier_layer)
        if not isinstance(classifier, nn.Linear):
            raise TypeError(
                f'classifier_layer {classifier_layer!r} of teacher '
                f'{coupled_teacher!r} is a {type(classifier).__name__}; the '
                'feature-adversarial loss needs the final nn.Linear')
        self.feature_alignment_loss = MODELS.build(
            dict(feature_alignment_loss,
                 num_channels=[bn.num_features for bn in self.coupled_bns]))
        self.feature_adversarial_loss = MODELS.build(
            dict(feature_adversarial_loss,
                 classifier_weight=classifier.weight.detach(),
                 classifier_bias=None if classifier.bias is None else
                 classifier.bias.detach()))

        # the teacher side: BN inputs at the nodes and penultimate features
        self.teacher_feature_recorders = RecorderManager({
            **{f'node{i}': {'type': 'ModuleInputs',
                            'source': f'{coupled_teacher}.{name}'}
               for i, name in enumerate(gen.bn_nodes)},
            'penultimate': {'type': 'ModuleInputs',
                            'source': f'{coupled_teacher}.{classifier_layer}'}
        })
        self.teacher_feature_recorders.prepare_from_model(self.teachers)
        # the generator side: h_i is the input of block i; recording spans
        # the generator phase, each step reads and clears its own record
        self.block_recorders = RecorderManager({
            f'block{i}': {'type': 'ModuleInputs', 'source': f'blocks.{i}'}
            for i in range(len(gen.blocks))})
        self.block_recorders.prepare_from_model(gen)

    @staticmethod
    def _coupled_bn_layers(teacher: nn.Module,
                           generator: nn.Module) -> list[_BatchNorm]:
        layers = []
        for node in generator.nodes:
            try:
                layer = teacher.get_submodule(node.name)
            except AttributeError:
                layer = None
            if (not isinstance(layer, _BatchNorm)
                    or layer.num_features != node.channels):
                raise ValueError(
                    f'the generator mirrors the BN layer {node.name!r} with '
                    f'{node.channels} channels, which the coupled teacher '
                    'does not have: build the generator from this teacher')
            layers.append(layer)
        return layers

    # ------------------------------------------------------------ the loop
    def generator_phase(self, optim_wrapper) -> dict[str, torch.Tensor]:
        with self.block_recorders:
            return super().generator_phase(optim_wrapper)

    def end_synthesis_loop(self) -> None:
        """Fold the last batch statistics into the running averages of the
        BN-statistics loss and of the alignment loss's re-normalisation."""
        super().end_synthesis_loop()
        self.feature_alignment_loss.update_history()

    def reinitialize_generator(self,
                               optim_wrapper=None,
                               reset_bn_history: bool | None = None
                               ) -> None:
        super().reinitialize_generator(optim_wrapper, reset_bn_history)
        if reset_bn_history is None:
            reset_bn_history = self.reset_bn_history_on_reinit
        if reset_bn_history:
            self.feature_alignment_loss.reset_history()

    def _generator_block_inputs(self) -> list[torch.Tensor]:
        """h_0 .. h_{n-1} of the latest generator forward (then cleared, so
        that no step keeps an earlier step's graph)."""
        recorders = self.block_recorders.recorders.values()
        features = [r.get_record_data(max(len(r.data_buffer) - 1, 0))
                    for r in recorders]
        for recorder in recorders:
            recorder.reset_data()
        return features

    def mix(self, views: torch.Tensor, targets: torch.Tensor
            ) -> tuple[torch.Tensor, torch.Tensor]:
        """CutMix the views; return them with the mixed one-hot targets."""
        one_hot = F.one_hot(targets, self.num_classes).to(views.dtype)
        if self.cutmix is None:
            return views, one_hot
        views, partners, ratio = self.cutmix(views, targets)
        partner_hot = F.one_hot(partners, self.num_classes).to(views.dtype)
        ratio = ratio[:, None].to(views.dtype)
        return views, (1 - ratio) * one_hot + ratio * partner_hot

    def synthesis_loss(self, images: torch.Tensor, targets: torch.Tensor,
                       latents: torch.Tensor
                       ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The weighted generator loss of one CPNet synthesis step (see the
        class docstring) on the augmented, mixed view of ``images``."""
        block_inputs = self._generator_block_inputs()
        views, mixed_targets = self.mix(
            self.synthesis_augmentation(images), targets)
        batch = {'images': views, 'targets': targets, 'latents': latents,
                 'mixed_targets': mixed_targets}
        dist = self.generator_distiller
        with dist.teacher_recorders, self.teacher_feature_recorders:
            self.forward_teachers(views)
        if dist.needs_student:
            student = unwrap_model(self.architecture)
            train_mode = (self.student_train_mode_in_generator_step
                          and not self.in_warmup)
            with frozen_parameters(student), module_mode(
                    student, train_mode), dist.student_recorders:
                student(views, mode='tensor')
        losses = dist.compute_distill_losses(batch)
        records = self.teacher_feature_recorders
        losses[ALIGNMENT_LOSS] = self.feature_alignment_loss(
            block_inputs,
            [records.get_recorder(f'node{i}').get_record_data()
             for i in range(len(self.coupled_bns))],
            [bn.running_mean for bn in self.coupled_bns],
            [bn.running_var for bn in self.coupled_bns])
        if self.in_warmup:
            for name in self.warmup_disabled_losses:
                losses.pop(name)
        else:
            losses[FEATURE_ADVERSARIAL_LOSS] = self.feature_adversarial_loss(
                records.get_recorder('penultimate').get_record_data(),
                targets)
        return self._parse_and_check(losses, 'generator')
