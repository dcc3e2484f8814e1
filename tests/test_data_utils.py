"""Splits, weights, sampler, transforms, TTA and the leakage audit."""
import numpy as np
import pytest
import torch
from PIL import Image

from emosynth_nb.data import (SynthFER, stratified_split, group_kfold, group_split, balanced_class_weights, balanced_sampler,
                              make_transforms, ten_crop_transform, tta_logits, leakage_audit)
from emosynth_nb.data.fer import FER2013, CKPlus
from emosynth_nb.data.fixtures import write_fer2013, write_ckplus


def test_stratified_split_properties():
    y = np.repeat(np.arange(7), [50, 5, 40, 80, 45, 30, 50])
    tr, va = stratified_split(y, 0.2, seed=3)
    assert len(np.intersect1d(tr, va)) == 0 and len(tr) + len(va) == len(y)
    assert np.array_equal(np.bincount(y[va], minlength=7), np.round(0.2 * np.bincount(y)).astype(int))
    assert np.array_equal(va, stratified_split(y, 0.2, seed=3)[1])
    assert not np.array_equal(va, stratified_split(y, 0.2, seed=4)[1])


@pytest.mark.parametrize("args,msg", [((np.arange(5) * 1.0, 0.2), "integer labels"), ((np.arange(5), 0.0), "val_frac must be in"),
                                      ((np.arange(5), 0.5, -1), "seed must be in")])
def test_stratified_split_bad(args, msg):
    with pytest.raises(ValueError, match=msg):
        stratified_split(*args)


def test_stratified_split_groups_bad():
    with pytest.raises(ValueError, match="groups has 3 entries for 5 samples"):
        stratified_split(np.arange(5), 0.2, groups=[0, 1, 2])


def test_group_kfold_ckplus(tmp_path):
    write_ckplus(tmp_path)
    ds = CKPlus(tmp_path)
    for k in (2, 4):
        folds = group_kfold(ds.subjects, k, seed=0)
        s = np.array(ds.subjects)
        assert all(not set(s[tr]) & set(s[te]) for tr, te in folds)
    with pytest.raises(ValueError, match="need at least 10 distinct groups"):
        group_kfold(ds.subjects, 10)


def test_balanced_weights_and_sampler():
    y = np.repeat(np.arange(3), [90, 9, 1])
    w = balanced_class_weights(y)
    assert torch.allclose(w, torch.tensor([100 / 270, 100 / 27, 100 / 3]))
    drawn = y[list(balanced_sampler(y, 9000, seed=1))]
    assert np.abs(np.bincount(drawn) / 9000 - 1 / 3).max() < 0.03
    with pytest.raises(ValueError, match="labels must be in"):
        balanced_class_weights([0, 3], n_classes=3)


def test_transforms_shapes_and_ranges(tmp_path):
    write_fer2013(tmp_path)
    pil = FER2013(tmp_path)[0][0]
    for size, rgb, train in ((48, False, True), (48, False, False), (100, True, True), (112, True, False)):
        x = make_transforms(size, rgb=rgb, train=train)(pil)
        assert x.shape == (3 if rgb else 1, size, size) and x.dtype == torch.float32
        assert 0 <= float(x.min()) and float(x.max()) <= 1
    rgb_img = Image.fromarray(np.zeros((100, 100, 3), np.uint8), 'RGB')
    assert make_transforms(48, train=False)(rgb_img).shape == (1, 48, 48)


def test_ten_crop_loader_batch():
    ds = SynthFER(8, transform=ten_crop_transform(48, 40))
    xb, yb = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert xb.shape == (4, 10, 1, 40, 40)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(1600, 7))
    assert tta_logits(model, xb).shape == (4, 7) and tta_logits(model, xb, 'probs').exp().sum(1).allclose(torch.ones(4))
    with pytest.raises(ValueError, match=r"x must have shape \(N, ncrops, C, H, W\)"):
        tta_logits(model, xb[0])


def test_leakage_audit_fer_fixture(tmp_path):
    write_fer2013(tmp_path)
    tr, te = FER2013(tmp_path, 'train'), FER2013(tmp_path, 'test')
    assert leakage_audit({'train': tr, 'test': te}).ok
    rep = leakage_audit({'train': tr, 'test': tr})
    assert sorted(rep.exact['train', 'test']) == [(i, i) for i in range(14)]
    assert rep.summary()[0]['test_affected'] == 14


def test_leakage_audit_near_and_bad():
    tr = SynthFER(100, seed=0)
    X, _ = tr.tensors(np.arange(10))
    rep = leakage_audit({'train': tr, 'val': SynthFER(50, seed=5), 'test': (X * 0.8 + 0.1)})
    assert not rep.exact['train', 'test'] and {j for _, j, _ in rep.near['train', 'test']} == set(range(10))
    assert not rep.exact['train', 'val'] and not rep.near['train', 'val']
    with pytest.raises(ValueError, match="at least two named datasets"):
        leakage_audit({'train': tr})


def test_group_split_synthfer_no_identity_on_both_sides():
    ds = SynthFER(500, n_identities=30, seed=7)
    for seed in (0, 1, 2):
        tr, va = group_split(ds.identities, 0.25, seed=seed, labels=ds.targets)
        assert not set(ds.identities[tr]) & set(ds.identities[va])
        assert np.array_equal(np.sort(np.concatenate([tr, va])), np.arange(500))
        assert abs(len(va) / 500 - 0.25) < 0.03
    tr2, va2 = group_split(ds.identities, 0.25, seed=2, labels=ds.targets)
    assert np.array_equal(va, va2)


def test_group_split_ckplus_subjects(tmp_path):
    write_ckplus(tmp_path)
    ds = CKPlus(tmp_path)
    s = np.array(ds.subjects)
    tr, va = group_split(s, 0.3, seed=0)
    assert len(tr) and len(va) and not set(s[tr]) & set(s[va])


@pytest.mark.parametrize("args,kw,msg", [(([3, 3, 3], 0.2), {}, "at least 2 distinct groups"),
                                         (([0] * 9 + [1], 0.5), {}, "cannot be met with whole groups"),
                                         (([0, 1], 0.0), {}, "val_frac must be in"),
                                         (([], 0.2), {}, "groups is empty"),
                                         (([0, 1, 2, 3], 0.5), {'labels': [0, 1, 0]}, "labels has 3 entries")])
def test_group_split_bad(args, kw, msg):
    with pytest.raises(ValueError, match=msg):
        group_split(*args, **kw)


def test_resample_helpers_in_data():
    from emosynth_nb.data import oversample_indices, near_duplicates, balance, latent_features, LATENT_SKIP
    ds = SynthFER(200, imbalance='fer2013', seed=1)
    idx = oversample_indices(ds, seed=3)
    counts = np.unique(ds.targets[idx], return_counts=True)[1]
    assert counts.min() == counts.max() == ds.class_counts().max() and set(range(200)) <= set(idx)
    x, y = ds.tensors()
    xb, yb = balance(x, y, seed=0)
    assert len(xb) == len(yb) == len(idx)
    assert int((xb.unsqueeze(1) == x[:50].unsqueeze(0)).all(-1).all(-1).all(-1).any(0).sum()) == 50   # originals kept
    d = near_duplicates(x[:4], seed=2)
    assert d.shape == x[:4].shape and not torch.equal(d, x[:4]) and torch.equal(d, near_duplicates(x[:4], seed=2))
    F, L = latent_features(ds)
    assert F.shape == (200, len(ds.latent_table().columns) - len(LATENT_SKIP)) and torch.equal(L, y)
    with pytest.raises(ValueError, match="at least one label"):
        oversample_indices(np.array([], np.int64))
    with pytest.raises(ValueError, match=r"shape \(N, C, H, W\)"):
        near_duplicates(x[0])
    with pytest.raises(TypeError, match="needs a SynthFER dataset"):
        latent_features(np.zeros(3))


def test_tta_average_choices():
    from emosynth_nb.data import average_crops, TTA_AVERAGES
    assert TTA_AVERAGES == ('logits', 'probs')
    z = torch.randn(2, 10, 5)
    assert torch.allclose(average_crops(z), z.mean(1))
    with pytest.raises(ValueError, match="average must be one of 'logits', 'probs'; got 'mean'"):
        average_crops(z, 'mean')
    with pytest.raises(ValueError, match=r"crop must be in \[1, 48\]"):
        ten_crop_transform(48, 49)
