from typing import Any, Dict, Mapping, Optional

import torch
from mmengine.model import BaseModule
from torch import nn

from mmdfkd.registry import MODELS
from ..recorders import RecorderManager


def detach_record(record: Any) -> Any:
    """``record`` with every tensor in it detached (tensors, and tuples,
    named tuples, lists and dicts of them)."""
    if isinstance(record, torch.Tensor):
        return record.detach()
    if isinstance(record, tuple) and hasattr(record, '_fields'):
        return type(record)(*(detach_record(r) for r in record))
    if isinstance(record, (list, tuple)):
        return type(record)(detach_record(r) for r in record)
    if isinstance(record, dict):
        return {k: detach_record(v) for k, v in record.items()}
    return record


@MODELS.register_module()
class ConfigurableDistiller(BaseModule):
    """Compute a set of weighted losses from recorded tensors.

    The config keys are those of MMRazor's ``ConfigurableDistiller``:
    ``student_recorders`` / ``teacher_recorders`` name tensors to capture,
    ``distill_losses`` builds each loss from the registry (each carries its
    own ``loss_weight``) and ``loss_forward_mappings`` says which recorded
    tensor feeds which loss argument::

        loss_forward_mappings=dict(
            loss_kd=dict(
                preds_S=dict(from_student=True, recorder='logits'),
                preds_T=dict(from_student=False, recorder='logits')))

    A mapping entry is either a recorder reference (``from_student``,
    ``recorder``, optional ``record_idx`` for the n-th forward call and
    ``data_idx`` for an element of a tuple record) or, as an mmdfkd addition,
    ``dict(from_data='images')`` which takes a tensor of the current synthetic
    batch (``images``, ``targets``, ``latents``) handed in by the algorithm,
    so that image priors and class-conditional losses need no special cases.

    Args:
        student_recorders (dict, optional): Recorder configs on the student.
        teacher_recorders (dict, optional): Recorder configs on the teachers;
            sources start with the teacher key, e.g. ``'tea.head.fc'``.
        distill_losses (dict, optional): Loss name -> loss config.
        loss_forward_mappings (dict, optional): Loss name -> {argument ->
            source}. Every loss needs a mapping.
    """

    def __init__(self,
                 student_recorders: Optional[Dict[str, dict]] = None,
                 teacher_recorders: Optional[Dict[str, dict]] = None,
                 distill_losses: Optional[Dict[str, dict]] = None,
                 loss_forward_mappings: Optional[Dict[str, dict]] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        self.student_recorders = RecorderManager(student_recorders)
        self.teacher_recorders = RecorderManager(teacher_recorders)
        self.distill_losses = nn.ModuleDict({
            name: MODELS.build(cfg)
            for name, cfg in (distill_losses or {}).items()
        })
        self.loss_forward_mappings = dict(loss_forward_mappings or {})
        self._check_mappings()

    def _check_mappings(self) -> None:
        losses, mapped = set(self.distill_losses), set(
            self.loss_forward_mappings)
        if losses != mapped:
            raise ValueError(
                'every distill loss needs exactly one loss_forward_mappings '
                f'entry; losses without mapping: {sorted(losses - mapped)}, '
                f'mappings without loss: {sorted(mapped - losses)}')
        for loss_name, mapping in self.loss_forward_mappings.items():
            for arg, source in mapping.items():
                if 'from_data' in source:
                    continue
                if 'recorder' not in source or 'from_student' not in source:
                    raise ValueError(
                        f'loss_forward_mappings[{loss_name!r}][{arg!r}] must '
                        'hold `from_student` and `recorder`, or `from_data`; '
                        f'got {dict(source)}')
                manager = (self.student_recorders if source['from_student']
                           else self.teacher_recorders)
                manager.get_recorder(source['recorder'])

    @property
    def needs_student(self) -> bool:
        """Whether any loss reads a student recorder (if not, the algorithm
        can skip the student forward in this phase)."""
        return bool(self.student_recorders)

    def prepare_from_student(self, student: nn.Module) -> None:
        self.student_recorders.prepare_from_model(student)

    def prepare_from_teacher(self, teachers: nn.Module) -> None:
        self.teacher_recorders.prepare_from_model(teachers)

    def detach_teacher_records(self) -> dict[str, list[Any]]:
        """Detach the teacher recorders' records in place and return them by
        recorder name, for :meth:`load_teacher_records`.

        A generator step records the teachers with gradients flowing to the
        generator; detached, the same records can feed a student step on
        the same images without a second teacher forward.
        """
        records = {}
        for name, recorder in self.teacher_recorders.recorders.items():
            recorder.data_buffer = [
                detach_record(r) for r in recorder.data_buffer
            ]
            records[name] = recorder.data_buffer
        return records

    def load_teacher_records(self, records: Mapping[str, list[Any]]) -> None:
        """Set the teacher recorders' records as if the teachers had just run
        (``records`` from :meth:`detach_teacher_records`)."""
        for name, recorder in self.teacher_recorders.recorders.items():
            if name not in records:
                raise KeyError(f'no records for teacher recorder {name!r}; '
                               f'records hold {sorted(records)}')
            recorder.data_buffer = list(records[name])

    def _get_input(self, source: Mapping, batch: Mapping[str, Any]) -> Any:
        if 'from_data' in source:
            key = source['from_data']
            if key not in batch:
                raise KeyError(f'from_data={key!r} is not in the synthetic '
                               f'batch; available: {sorted(batch)}')
            return batch[key]
        manager = (self.student_recorders
                   if source['from_student'] else self.teacher_recorders)
        return manager.get_recorder(source['recorder']).get_record_data(
            source.get('record_idx', 0), source.get('data_idx'))

    def compute_distill_losses(
            self, batch: Optional[Mapping[str, Any]] = None
    ) -> Dict[str, torch.Tensor]:
        """Evaluate every loss on the recorded tensors.

        Args:
            batch (Mapping, optional): Tensors of the current synthetic batch
                for ``from_data`` mapping entries.

        Returns:
            dict: loss name -> weighted loss tensor.
        """
        batch = batch or {}
        losses = {}
        for name, loss_module in self.distill_losses.items():
            kwargs = {
                arg: self._get_input(source, batch)
                for arg, source in self.loss_forward_mappings[name].items()
            }
            losses[name] = loss_module(**kwargs)
        return losses
