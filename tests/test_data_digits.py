"scikit-learn's digits as a Dataset: shapes, range, the stratified seeded split and bad arguments."
import numpy as np
import pytest
import torch

from emosynth_nb.data import Digits


def test_digits_split_covers_all_and_is_stratified():
    tr, te = Digits('train', test_frac=0.2, seed=4), Digits('test', test_frac=0.2, seed=4)
    assert len(tr) + len(te) == 1797 and not set(tr.indices) & set(te.indices)
    share = te.class_counts() / (tr.class_counts() + te.class_counts())
    assert np.abs(share - 0.2).max() < 0.01
    assert np.array_equal(Digits('test', test_frac=0.2, seed=4).indices, te.indices)


def test_digits_items():
    x, y = Digits('test')[5]
    assert x.shape == (1, 8, 8) and x.dtype == torch.float32 and isinstance(y, int) and 0 <= y <= 9
    d = Digits('train', flat=True)
    assert d[0][0].shape == (64,) and d.targets.dtype == torch.int64 and d.classes == tuple('0123456789')
    assert float(d.data.min()) == 0.0 and float(d.data.max()) == 1.0
    X, Y = d.tensors()
    assert X.shape == (len(d), 64) and torch.equal(Y, d.targets)


@pytest.mark.parametrize("kw,msg", [(dict(split='validation'), "split must be one of 'train', 'test'"),
                                    (dict(test_frac=0), r"test_frac must be in \(0, 1\)"),
                                    (dict(test_frac=float('nan')), "test_frac must be a finite number"),
                                    (dict(test_frac=0.999), "leaves a class with no training image"),
                                    (dict(seed=1.5), "seed must be an integer")])
def test_digits_bad(kw, msg):
    with pytest.raises(ValueError, match=msg):
        Digits(**kw)
