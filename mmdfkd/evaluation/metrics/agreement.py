"""Top-1 agreement between the student and the teacher."""
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.evaluator import BaseMetric
from mmengine.structures import BaseDataElement

from mmdfkd.registry import METRICS


def _to_label(value, key: str) -> int:
    """One class index from a ``(1,)`` label tensor, a score vector or an
    int.

    Args:
        value: ``pred_label``/``teacher_pred_label`` (a tensor of shape
            ``(1,)`` or a Python int) or ``pred_score`` (a score vector, of
            which the arg-max is taken).
        key (str): The field name, for the error message.

    Returns:
        int: The class index.
    """
    if isinstance(value, int):
        return value
    value = torch.as_tensor(value)
    if key == 'pred_score':
        return int(value.argmax())
    if value.numel() != 1:
        raise ValueError(f'{key} must hold exactly one class index (top-1), '
                         f'got a tensor of shape {tuple(value.shape)}')
    return int(value.reshape(()))


@METRICS.register_module()
class Agreement(BaseMetric):
    """Top-1 agreement between the student and the teacher.

    The percentage of evaluated images on which the student's top-1
    prediction equals the teacher's, whatever the ground truth is. Data-free
    distillation papers report it next to accuracy because it measures how
    faithfully the student imitates the teacher, which is the objective the
    synthetic images are built for; AdaDFKD reports it among its evaluation
    metrics (J. Li, S. Zhou, L. Li, H. Wang, J. Bu and Z. Yu, "AdaDFKD:
    Exploring adaptive inter-sample relationship in data-free knowledge
    distillation", Neural Networks, 2024, doi:10.1016/j.neunet.2024.106386).

    It reads the student's ``pred_label`` (or, when absent, the arg-max of
    ``pred_score``) and the ``teacher_pred_label`` that
    :class:`~mmdfkd.models.algorithms.DataFreeDistillation` stores in
    ``predict`` mode when ``predict_with_teacher=True``. Data samples may be
    dicts (as mmengine's ``Evaluator`` passes them, through ``to_dict()``)
    or :class:`~mmpretrain.structures.DataSample` objects.

    Example:
        >>> val_evaluator = [dict(type='Accuracy', topk=(1, )),
        ...                  dict(type='Agreement')]
        >>> # -> {'accuracy/top1': ..., 'agreement/top1': ...}

    Args:
        collect_device (str): Device on which the results of all ranks are
            gathered, ``'cpu'`` or ``'gpu'``. Defaults to ``'cpu'``.
        prefix (str, optional): Prefix of the metric names. Defaults to
            ``None``, which means :attr:`default_prefix` (``'agreement'``).
    """
    default_prefix: Optional[str] = 'agreement'

    def __init__(self,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Store the student and teacher labels of one batch.

        Args:
            data_batch: A batch of data from the dataloader (unused).
            data_samples (Sequence[dict]): The model's outputs, as dicts or
                data elements.
        """
        for data_sample in data_samples:
            if isinstance(data_sample, BaseDataElement):
                data_sample = data_sample.to_dict()
            if 'teacher_pred_label' not in data_sample:
                raise KeyError(
                    'Agreement needs the teacher\'s prediction '
                    '(`teacher_pred_label`) in every data sample, but a '
                    'sample has none: the model must be a data-free '
                    'distillation algorithm built with '
                    '`predict_with_teacher=True`')
            # unlike mmpretrain's Accuracy, prefer pred_label: for top-1 it is
            # the arg-max of pred_score anyway, and storing one int per
            # sample keeps the results gathered across ranks tiny
            if 'pred_label' in data_sample:
                student = _to_label(data_sample['pred_label'], 'pred_label')
            elif 'pred_score' in data_sample:
                student = _to_label(data_sample['pred_score'], 'pred_score')
            else:
                raise KeyError('Agreement needs the student\'s `pred_label` '
                               'or `pred_score` in every data sample')
            teacher = _to_label(data_sample['teacher_pred_label'],
                                'teacher_pred_label')
            self.results.append(dict(student=student, teacher=teacher))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Compute the agreement over all processed samples.

        Args:
            results (list[dict]): The stored labels of every sample (of all
                ranks).

        Returns:
            dict[str, float]: ``{'top1': percentage}``.
        """
        if not results:
            raise ValueError('Agreement received no data samples: the '
                             'evaluation dataloader is empty')
        agree = sum(r['student'] == r['teacher'] for r in results)
        return dict(top1=100.0 * agree / len(results))
