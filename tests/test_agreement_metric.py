"""Tests of the Agreement metric (student/teacher top-1 agreement)."""
import pytest
import torch
from mmpretrain.structures import DataSample

from mmdfkd.evaluation.metrics.agreement import Agreement


def _sample(student: int, teacher=None, num_classes: int = 10,
            with_score: bool = True) -> DataSample:
    """A DataSample as DataFreeDistillation.predict leaves it."""
    sample = DataSample().set_gt_label(0)
    if with_score:
        score = torch.zeros(num_classes)
        score[student] = 1.0
        sample.set_pred_score(score)  # also sets pred_label = argmax
    else:
        sample.set_pred_label(student)
    if teacher is not None:
        sample.set_field(torch.tensor([teacher]), 'teacher_pred_label')
    return sample


def test_three_of_four_agree_as_dicts():
    metric = Agreement()
    samples = [_sample(1, 1), _sample(2, 2), _sample(3, 4), _sample(5, 5)]
    # mmengine's Evaluator hands metrics the samples as dicts (to_dict())
    metric.process(None, [s.to_dict() for s in samples])
    assert metric.evaluate(size=4) == {'agreement/top1': 75.0}


def test_data_samples_labels_only_and_batches():
    metric = Agreement()
    # 1 of 2 agree, then 0 of 1: 1/3 over all processed batches
    metric.process(None, [_sample(0, 0, with_score=False),
                          _sample(1, 2, with_score=False)])
    metric.process(None, [_sample(7, 3, with_score=False)])
    result = metric.evaluate(size=3)
    assert result['agreement/top1'] == pytest.approx(100.0 / 3)


def test_pred_score_only_uses_argmax():
    metric = Agreement()
    sample = dict(pred_score=torch.tensor([0.1, 0.7, 0.2]),
                  teacher_pred_label=torch.tensor([1]))
    metric.process(None, [sample, dict(sample, teacher_pred_label=2)])
    assert metric.evaluate(size=2) == {'agreement/top1': 50.0}


def test_custom_prefix():
    metric = Agreement(prefix='fidelity')
    metric.process(None, [_sample(4, 4).to_dict()])
    assert metric.evaluate(size=1) == {'fidelity/top1': 100.0}


def test_missing_teacher_label_raises():
    metric = Agreement()
    with pytest.raises(KeyError, match='predict_with_teacher=True'):
        metric.process(None, [_sample(1, 1).to_dict(), _sample(2).to_dict()])


def test_registered():
    from mmdfkd.registry import METRICS
    metric = METRICS.build(dict(type='Agreement'))
    assert isinstance(metric, Agreement)
