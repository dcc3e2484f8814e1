"""Real-dataset loaders on fixture files written in the exact on-disk formats (reference/fer_datasets.md §8)."""
import os, pickle, shutil
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from PIL import Image

from emosynth_nb.data.synth import CLASSES
from emosynth_nb.data.fer import (FER2013, RAFDB, CKPlus, CIFAR10, AffectNet, EXT_CLASSES, DatasetNotFoundError,
                                  DatasetFormatError, load_pickle, read_fer_csv, canonical_label)
from emosynth_nb.data.fixtures import *

C = {c: i for i, c in enumerate(EXT_CLASSES)}


# ---------------------------------------------------------------- FER2013 CSV family
@pytest.mark.parametrize("files", [("fer2013.csv",), ("icml_face_data.csv",)])
def test_fer2013_csv_splits_pixels_labels(tmp_path, files):
    info = write_fer2013(tmp_path, files=files)
    sizes = {s: len(FER2013(tmp_path, s)) for s in ("train", "public_test", "private_test", "test")}
    assert sizes == {"train": 14, "public_test": 7, "private_test": 7, "test": 14}
    for split, rows in (("train", range(14)), ("public_test", range(14, 21)), ("private_test", range(21, 28))):
        ds = FER2013(tmp_path, split)
        assert ds.targets == info["labels"][list(rows)].tolist()        # CSV order, canonical = CSV labels
        for k, r in enumerate(rows):
            img, y = ds[k]
            assert img.mode == "L" and img.size == (48, 48)
            np.testing.assert_array_equal(np.array(img), info["images"][r])


def test_fer2013_icml_equals_fer(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write_fer2013(a, files=("fer2013.csv",)); write_fer2013(b, files=("icml_face_data.csv",))
    for s in ("train", "test"):
        da, db = FER2013(a, s), FER2013(b, s)
        assert da.targets == db.targets
        assert all(np.array_equal(np.array(da[i][0]), np.array(db[i][0])) for i in range(len(da)))


def test_fer2013_quirk_crlf_quoted(tmp_path):
    info = write_fer2013(tmp_path, quirk=True)
    assert b"\r\n" in (tmp_path / "fer2013/fer2013.csv").read_bytes()
    ds = FER2013(tmp_path, "private_test")
    np.testing.assert_array_equal(np.array(ds[6][0]), info["images"][27])
    assert ds.targets == info["labels"][21:].tolist()


def test_fer2013_missing_trailing_newline(tmp_path):
    info = write_fer2013(tmp_path)
    p = tmp_path / "fer2013/fer2013.csv"; p.write_bytes(p.read_bytes().rstrip(b"\n"))
    assert len(FER2013(tmp_path, "test")) == 14


def test_fer2013_kaggle_train_test_csv(tmp_path):
    info = write_fer2013(tmp_path, files=("train.csv", "test.csv"))
    tr, te = FER2013(tmp_path, "train"), FER2013(tmp_path, "test")
    assert len(tr) == 14 and len(te) == 14
    assert te.targets == [None] * 14 and te[0][1] is None
    np.testing.assert_array_equal(np.array(te[0][0]), info["images"][14])
    with pytest.raises(ValueError, match="has no labels"): te.class_counts()
    with pytest.raises(ValueError, match="do not mark the halves"): FER2013(tmp_path, "public_test")


def test_fer2013_precedence(tmp_path):
    write_fer2013(tmp_path, files=("icml_face_data.csv", "train.csv", "test.csv"))
    assert FER2013(tmp_path).source.name == "icml_face_data.csv"
    write_fer2013(tmp_path, files=("fer2013.csv",))
    assert FER2013(tmp_path).source.name == "fer2013.csv"
    assert len(FER2013(tmp_path, "test")) == 14 and FER2013(tmp_path, "test").targets[0] is not None


def _patch_tv(module):
    return mock.patch(f"torchvision.datasets.{module}.check_integrity", return_value=True)


@pytest.mark.parametrize("files", [("fer2013.csv",), ("icml_face_data.csv",), ("train.csv", "test.csv")])
def test_fer2013_matches_torchvision(tmp_path, files):
    from torchvision.datasets import FER2013 as TV
    write_fer2013(tmp_path, files=files)
    with _patch_tv("fer2013"):
        for split in ("train", "test"):
            tv, ours = TV(str(tmp_path), split=split), FER2013(tmp_path, split)
            assert len(tv) == len(ours)
            for i in range(len(tv)):
                (a, ya), (b, yb) = tv[i], ours[i]
                assert ya == yb and a.mode == b.mode
                np.testing.assert_array_equal(np.array(a), np.array(b))


# bad input: one test each
def _fer_lines(tmp_path):
    write_fer2013(tmp_path); p = tmp_path / "fer2013/fer2013.csv"
    return p, p.read_text().split("\n")


def test_fer2013_short_pixel_row(tmp_path):
    p, lines = _fer_lines(tmp_path)
    e, px, u = lines[4].split(","); lines[4] = ",".join([e, " ".join(px.split()[:-1]), u]); p.write_text("\n".join(lines))
    with pytest.raises(DatasetFormatError, match=r"fer2013\.csv, line 5: 2303 pixel values, expected 2304"):
        FER2013(tmp_path)


def test_fer2013_label_out_of_range(tmp_path):
    p, lines = _fer_lines(tmp_path)
    lines[9] = "7" + lines[9][1:]; p.write_text("\n".join(lines))
    with pytest.raises(DatasetFormatError, match=r"line 10: emotion 7 is outside 0-6"):
        FER2013(tmp_path)


def test_fer2013_pixel_out_of_range(tmp_path):
    p, lines = _fer_lines(tmp_path)
    lines[2] = lines[2].replace(",", ",256 ", 1).replace(" " + lines[2].split(",")[1].split()[-1] + ",", ",", 1)
    p.write_text("\n".join(lines))
    with pytest.raises(DatasetFormatError, match=r"line 3: a pixel value is outside 0-255"):
        FER2013(tmp_path)


def test_fer2013_non_numeric_pixel(tmp_path):
    p, lines = _fer_lines(tmp_path)
    e, px, u = lines[7].split(","); toks = px.split(); toks[100] = "1x2"; lines[7] = ",".join([e, " ".join(toks), u])
    p.write_text("\n".join(lines))
    with pytest.raises(DatasetFormatError, match=r"line 8: pixel value '1x2' is not a non-negative integer"):
        FER2013(tmp_path)


def test_fer2013_wrong_header(tmp_path):
    p, lines = _fer_lines(tmp_path)
    lines[0] = "label,pixels,Usage"; p.write_text("\n".join(lines))
    with pytest.raises(DatasetFormatError, match=r"fer2013\.csv, line 1: wrong header"):
        FER2013(tmp_path)


def test_fer2013_unknown_usage(tmp_path):
    p, lines = _fer_lines(tmp_path)
    lines[3] = lines[3].rsplit(",", 1)[0] + ",Validation"; p.write_text("\n".join(lines))
    with pytest.raises(DatasetFormatError, match=r"line 4: Usage 'Validation'"):
        FER2013(tmp_path)


def test_fer2013_missing_files(tmp_path):
    with pytest.raises(DatasetNotFoundError) as e:
        FER2013(tmp_path)
    msg = str(e.value)
    assert str(tmp_path / "fer2013" / "fer2013.csv") in msg and "icml_face_data.csv" in msg and "train/<angry" in msg


# ---------------------------------------------------------------- FER2013 folders
def test_fer_folders_label_by_name(tmp_path):
    files = write_fer_folders(tmp_path)
    ds = FER2013(tmp_path, "train")
    assert ds.variant == "folder" and len(ds) == 14
    for k, f in enumerate(ds.files):
        name, im = files[f]
        assert ds.targets[k] == CLASSES.index(name)
        img, y = ds[k]
        assert img.mode == "L" and img.size == (48, 48)
        assert np.abs(np.array(img).astype(int) - im).mean() < 6            # JPEG: tolerance
    assert CLASSES.index("neutral") == 6 and ds.class_counts().tolist() == [2] * 7


def test_fer_folders_public_private(tmp_path):
    write_fer_folders(tmp_path)
    pub, prv, te = FER2013(tmp_path, "public_test"), FER2013(tmp_path, "private_test"), FER2013(tmp_path, "test")
    assert len(pub) == len(prv) == 7 and len(te) == 14
    assert all(f.name.startswith("PublicTest_") for f in pub.files)
    assert all(f.name.startswith("PrivateTest_") for f in prv.files)


def test_fer_folders_unknown_class(tmp_path):
    write_fer_folders(tmp_path, extra_class="contempt")
    with pytest.raises(DatasetFormatError, match="is not one of FER2013's 7 classes"):
        FER2013(tmp_path, "train")
    assert len(FER2013(tmp_path, "train", unknown_folder="ignore")) == 14


def test_fer_folders_nonsense_class(tmp_path):
    write_fer_folders(tmp_path, extra_class="bored")
    with pytest.raises(DatasetFormatError, match="unknown class folder 'bored'"):
        FER2013(tmp_path, "train")
    assert len(FER2013(tmp_path, "train", unknown_folder="ignore")) == 14


def test_fer_folders_unreadable_image(tmp_path):
    files = write_fer_folders(tmp_path)
    bad = sorted(files)[0]; bad.write_bytes(b"not a jpeg")
    ds = FER2013(tmp_path, "train" if "train" in bad.parts else "test")
    k = ds.files.index(bad)
    with pytest.raises(DatasetFormatError, match=f"unreadable image {bad}"):
        ds[k]


# ---------------------------------------------------------------- FER+
def test_ferplus_majority_and_alignment(tmp_path):
    info = write_fer2013(tmp_path); write_ferplus(tmp_path)
    ds = FER2013(tmp_path, "train", labels="ferplus")
    assert ds.classes == EXT_CLASSES
    # rows 2 (not a face, empty name) and 3 (no majority) are dropped; others kept in order
    assert ds.rows.tolist() == [0, 1, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]
    assert ds.targets[:5] == [C["happy"], C["contempt"], C["neutral"], C["fear"], C["fear"]]
    for k, r in enumerate(ds.rows):
        np.testing.assert_array_equal(np.array(ds[k][0]), info["images"][r])    # joined by row position
    other = [FER2013(tmp_path, s, labels="ferplus") for s in ("public_test", "private_test")]
    assert [len(o) for o in other] == [7, 7]
    assert other[0].targets == info["labels"][14:21].tolist()


def test_ferplus_probability(tmp_path):
    write_fer2013(tmp_path); write_ferplus(tmp_path)
    ds = FER2013(tmp_path, "train", labels="ferplus", ferplus_mode="probability")
    assert 3 in ds.rows and 2 not in ds.rows
    k = ds.rows.tolist().index(3)
    img, soft = ds[k]
    assert soft.shape == (8,) and abs(float(soft.sum()) - 1) < 1e-6
    assert abs(float(soft[C["neutral"]]) - 0.4) < 1e-6 and abs(float(soft[C["sad"]]) - 0.3) < 1e-6


def test_ferplus_row_mismatch(tmp_path):
    write_fer2013(tmp_path); write_ferplus(tmp_path)
    p = tmp_path / "fer2013/fer2013new.csv"; p.write_text("\n".join(p.read_text().split("\n")[:-3]) + "\n")
    with pytest.raises(DatasetFormatError, match="align with FER2013 rows by position"):
        FER2013(tmp_path, labels="ferplus")


# ---------------------------------------------------------------- RAF-DB
RAF = {1: "surprise", 2: "fear", 3: "disgust", 4: "happy", 5: "sad", 6: "angry", 7: "neutral"}


@pytest.mark.parametrize("quirk", [{}, dict(trailing_newline=True), dict(crlf=True), dict(blank_line=True),
                                   dict(spelling="list_partition_label.txt")])
def test_rafdb(tmp_path, quirk):
    out = write_rafdb(tmp_path, **quirk)
    tr, te = RAFDB(tmp_path, "train"), RAFDB(tmp_path / "basic", "test")
    assert (len(tr), len(te)) == (14, 7)
    for ds in (tr, te):
        for k, name in enumerate(ds.names):
            code, im = out[name]
            assert ds.targets[k] == CLASSES.index(RAF[code])
    img, _ = tr[0]
    assert img.mode == "RGB" and img.size == (100, 100)
    a = np.array(img).astype(int)
    assert a[:50, :, 0].mean() > 200 and a[:50, :, 2].mean() < 100              # red top half: RGB, not BGR
    assert np.abs(a - out["train_00001.jpg"][1]).mean() < 20                     # JPEG (chroma subsampled): tolerance


def test_rafdb_missing_image(tmp_path):
    write_rafdb(tmp_path, missing_image=True)
    with pytest.raises(DatasetNotFoundError, match=r"line 6: image .*train_00006_aligned\.jpg is missing"):
        RAFDB(tmp_path, "train")


@pytest.mark.parametrize("bad", [0, 8])
def test_rafdb_bad_label(tmp_path, bad):
    write_rafdb(tmp_path, bad_label=bad)
    with pytest.raises(DatasetFormatError, match=f"list_patition_label.txt, line 4: label {bad} is outside 1-7"):
        RAFDB(tmp_path, "train")


def test_rafdb_missing_label_file(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="list_patition_label.txt"):
        RAFDB(tmp_path)


# ---------------------------------------------------------------- CK+
def test_ckplus_last3(tmp_path):
    ck = write_ckplus(tmp_path)
    ds = CKPlus(tmp_path)
    labelled = [(sq, v) for sq, v in ck.items() if v[1] is not None]
    assert len(ds) == sum(min(3, len(fr)) for _, (fr, _) in labelled)
    assert "S011_002" not in ds.sequences                                       # unlabelled: skipped
    k = 0
    for (s, q), (frames, code) in labelled:
        for im in frames[-3:]:
            img, y = ds[k]
            assert ds.sequences[k] == f"{s}_{q}" and y == canonical_label(CK_NAMES[code])
            assert img.mode == "L"
            np.testing.assert_array_equal(np.array(img), im)                    # PNG: exact, RGB subject converted
            k += 1


def test_ckplus_modes(tmp_path):
    write_ckplus(tmp_path)
    full, no_contempt = CKPlus(tmp_path), CKPlus(tmp_path, contempt=False)
    assert full.class_counts()[C["contempt"]] == 6 and no_contempt.class_counts()[C["contempt"]] == 0
    assert len(no_contempt) == len(full) - 6
    neu = CKPlus(tmp_path, neutral_first=True)
    assert neu.class_counts()[C["neutral"]] == 6 and len(neu) == len(full) + 6
    assert CKPlus(tmp_path, frames=1).class_counts().sum() == 7
    assert CKPlus(tmp_path, rgb=True)[0][0].mode == "RGB"


def test_ckplus_folds(tmp_path):
    write_ckplus(tmp_path)
    ds = CKPlus(tmp_path)
    folds = ds.folds(k=4, seed=0)
    subj = np.array(ds.subjects)
    assert sorted(np.concatenate([te for _, te in folds]).tolist()) == list(range(len(ds)))
    for tr, te in folds:
        assert not set(subj[tr]) & set(subj[te])
    assert [te.tolist() for _, te in ds.folds(4, seed=0)] == [te.tolist() for _, te in folds]


def test_ckplus_bad_emotion_file(tmp_path):
    write_ckplus(tmp_path)
    p = tmp_path / "Emotion/S010/001/S010_001_00000004_emotion.txt"; p.write_text("happy\n")
    with pytest.raises(DatasetFormatError, match="S010_001_00000004_emotion.txt, line 1"):
        CKPlus(tmp_path)


def test_ck48(tmp_path):
    out = write_ck48(tmp_path)
    ds = CKPlus(tmp_path)
    assert ds.variant == "ck+48" and len(ds) == 21
    for k, f in enumerate(ds.files):
        assert ds.targets[k] == canonical_label(f.parent.name)
        np.testing.assert_array_equal(np.array(ds[k][0]), out[f])
    assert ds.class_counts().tolist() == [3, 3, 3, 3, 3, 3, 0, 3]               # no neutral in CK+48
    subj = np.array(ds.subjects)
    for tr, te in ds.folds(k=3, seed=1):
        assert not set(subj[tr]) & set(subj[te])


def test_ckplus_missing(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="cohn-kanade-images"):
        CKPlus(tmp_path)


# ---------------------------------------------------------------- AffectNet
AFF = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "angry", "contempt")


def test_affectnet_csv(tmp_path):
    out = write_affectnet_csv(tmp_path)
    a7, a8, v8 = AffectNet(tmp_path, "train"), AffectNet(tmp_path, "train", n_classes=8), AffectNet(tmp_path, "val", n_classes=8)
    assert [t for t in a7.targets] == [canonical_label(AFF[c]) for _, c in out["train"] if c <= 6]
    assert a8.targets == [canonical_label(AFF[c]) for _, c in out["train"] if c <= 7]
    assert len(v8) == 8 and v8.class_counts().tolist() == [1] * 8
    img, _ = a7[0]
    assert img.mode == "RGB" and img.size == (48, 50)
    crop = AffectNet(tmp_path, "train", crop=True)[0][0]
    assert crop.size == (40, 40)


def test_affectnet_missing_image(tmp_path):
    write_affectnet_csv(tmp_path, missing_image=True)
    with pytest.raises(DatasetNotFoundError, match=r"training\.csv, line 4: the image .*train002abc\.jpg"):
        AffectNet(tmp_path, "train")
    ds = AffectNet(tmp_path, "train", missing="skip")
    assert len(ds) == 7 and len(ds.skipped) == 1


def test_affectnet_npy(tmp_path):
    out = write_affectnet_npy(tmp_path)
    a7, a8 = AffectNet(tmp_path, "train"), AffectNet(tmp_path, "train", n_classes=8)
    assert a8.targets == [canonical_label(AFF[c]) for _, c in out["train"]]
    assert len(a7) == len(a8) - 1 and C["contempt"] not in a7.targets
    assert AffectNet(tmp_path, "val", n_classes=8).targets[0] == C["angry"]


def test_affectnet_balanced_sampler(tmp_path):
    from emosynth_nb.data.utils import balanced_sampler
    write_affectnet_npy(tmp_path)
    ds = AffectNet(tmp_path, "train", n_classes=8)
    drawn = np.array(ds.targets)[list(balanced_sampler(ds, 8000, seed=0))]
    frac = np.bincount(drawn, minlength=8) / 8000
    assert np.abs(frac - 1 / 8).max() < 0.03


# ---------------------------------------------------------------- CIFAR-10
@pytest.mark.parametrize("bytes_keys", [False, True])
def test_cifar10(tmp_path, bytes_keys):
    out = write_cifar10(tmp_path, bytes_keys=bytes_keys)
    tr, te = CIFAR10(tmp_path, train=True), CIFAR10(tmp_path, split="test")
    assert (len(tr), len(te)) == (15, 3)
    np.testing.assert_array_equal(tr.data, out["train"][0])                       # planar → HWC reshape
    assert tr.targets == out["train"][1].tolist()
    assert tr.classes == CIFAR_NAMES
    img, y = te[1]
    assert img.mode == "RGB" and img.size == (32, 32)
    np.testing.assert_array_equal(np.array(img), out["test"][0][1])


def test_cifar10_matches_torchvision(tmp_path):
    from torchvision.datasets import CIFAR10 as TV
    write_cifar10(tmp_path)
    with _patch_tv("cifar"):
        for train in (True, False):
            tv, ours = TV(str(tmp_path), train=train, download=False), CIFAR10(tmp_path, train=train)
            assert len(tv) == len(ours) and tv.classes == list(ours.classes)
            for i in range(len(tv)):
                assert tv[i][1] == ours[i][1]
                np.testing.assert_array_equal(np.array(tv[i][0]), np.array(ours[i][0]))


def test_cifar10_missing_batch(tmp_path):
    write_cifar10(tmp_path, skip=("data_batch_3",))
    with pytest.raises(DatasetNotFoundError, match="data_batch_3"):
        CIFAR10(tmp_path, train=True)
    assert len(CIFAR10(tmp_path, train=False)) == 3


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_cifar10_malicious_pickle_refused(tmp_path):
    write_cifar10(tmp_path)
    p = tmp_path / "cifar-10-batches-py" / "test_batch"
    p.write_bytes(pickle.dumps({"data": _Evil(), "labels": [0]}, protocol=2))
    cwd = os.getcwd(); os.chdir(tmp_path)
    try:
        with pytest.raises(pickle.UnpicklingError, match="refusing to load global posix.system|refusing to load global os.system"):
            CIFAR10(tmp_path, train=False)
        assert not (tmp_path / "PWNED").exists()
    finally:
        os.chdir(cwd)


def test_cifar10_corrupt_batch(tmp_path):
    write_cifar10(tmp_path)
    p = tmp_path / "cifar-10-batches-py" / "test_batch"
    with open(p, "wb") as f: pickle.dump({"data": np.zeros((3, 100), np.uint8), "labels": [0, 1, 2]}, f, protocol=2)
    with pytest.raises(DatasetFormatError, match=r"test_batch: 'data' must be a uint8 array \(n, 3072\)"):
        CIFAR10(tmp_path, train=False)
    with open(p, "wb") as f: pickle.dump({"data": np.zeros((3, 3072), np.uint8), "labels": [0, 1, 12]}, f, protocol=2)
    with pytest.raises(DatasetFormatError, match="'labels' must be 3 integers in 0-9"):
        CIFAR10(tmp_path, train=False)


def test_split_names_explicit(tmp_path):
    write_rafdb(tmp_path)
    with pytest.raises(ValueError, match="split must be one of 'train', 'test'"):
        RAFDB(tmp_path, "val")


# ---------------------------------------------------------------- issue 15: bad inputs that were silent or raw
def test_fer2013_header_only_is_an_error(tmp_path):
    write_fer2013(tmp_path, rows=0)
    with pytest.raises(DatasetFormatError, match=r"fer2013\.csv, line 2: no data rows after the header"):
        FER2013(tmp_path)


def test_fer2013_split_without_rows_is_an_error(tmp_path):
    write_fer2013(tmp_path, rows=14)                                   # only the Training rows
    assert len(FER2013(tmp_path, "train")) == 14
    with pytest.raises(DatasetFormatError, match=r"fer2013\.csv: no rows with Usage PublicTest or PrivateTest for split='test'; the file has 14 'Training'"):
        FER2013(tmp_path, "test")


def test_fer2013_padded_usage_dropped_like_torchvision(tmp_path):
    from torchvision.datasets import FER2013 as TV
    write_fer2013(tmp_path, pad_usage=(0, 5, 20))                    # two Training rows, one PublicTest row
    with pytest.warns(UserWarning, match=r"3 row\(s\), first at line 2, have a Usage padded with spaces \(' Training '\)"):
        tr = FER2013(tmp_path, "train")
    with pytest.warns(UserWarning):
        te = FER2013(tmp_path, "test")
    assert (len(tr), len(te)) == (12, 13)
    with _patch_tv("fer2013"):
        for ours, split in ((tr, "train"), (te, "test")):
            tv = TV(str(tmp_path), split=split)
            assert len(tv) == len(ours)
            for i in range(len(tv)):
                np.testing.assert_array_equal(np.array(tv[i][0]), np.array(ours[i][0])); assert tv[i][1] == ours[i][1]


@pytest.mark.parametrize("sep", ["\t", "  ", " \t "])
def test_fer2013_tab_or_double_space_read_like_torchvision(tmp_path, sep):
    from torchvision.datasets import FER2013 as TV
    info = write_fer2013(tmp_path, pixel_sep=sep)
    ours = FER2013(tmp_path, "train")
    np.testing.assert_array_equal(np.array(ours[3][0]), info["images"][3])
    with _patch_tv("fer2013"):
        tv = TV(str(tmp_path), split="train")
        assert len(tv) == len(ours) and all(np.array_equal(np.array(tv[i][0]), np.array(ours[i][0])) for i in range(len(tv)))


def test_fer2013_non_utf8_byte_names_file_and_line(tmp_path):
    p, lines = _fer_lines(tmp_path)
    p.write_bytes("\n".join(lines[:6]).encode() + b"\n3,12 \xff 7,Training\n" + "\n".join(lines[6:]).encode())
    with pytest.raises(DatasetFormatError, match=r"fer2013\.csv, line 7: byte b'\\xff' at column 6 is not UTF-8 text"):
        FER2013(tmp_path)


def test_fer2013_oversized_field_names_file_and_line(tmp_path):
    p, lines = _fer_lines(tmp_path)
    lines[3] = '0,"' + "1 " * 70000 + '1",Training'                  # 140,001 characters: over csv's field limit
    p.write_text("\n".join(lines))
    with pytest.raises(DatasetFormatError, match=r"fer2013\.csv, line 4: not a valid CSV record \(field larger than field limit"):
        FER2013(tmp_path)


def test_fer2013_unclosed_quote_names_file(tmp_path):
    p, lines = _fer_lines(tmp_path)
    lines[3] = lines[3].replace(",", ',"', 1)                           # a quote opened and never closed swallows the file
    p.write_text("\n".join(lines) * 20)
    with pytest.raises(DatasetFormatError, match=r"fer2013\.csv, line 4: not a valid CSV record .*read up to line \d+.*a double quote opened on this line"):
        FER2013(tmp_path)


def test_ferplus_non_utf8_names_file(tmp_path):
    write_fer2013(tmp_path); write_ferplus(tmp_path)
    p = tmp_path / "fer2013" / "fer2013new.csv"; b = p.read_bytes().split(b"\n"); b[4] = b[4].replace(b"fer", b"f\xe9r", 1)
    p.write_bytes(b"\n".join(b))
    with pytest.raises(DatasetFormatError, match=r"fer2013new\.csv, line 5: byte b'\\xe9' at column 11"):
        FER2013(tmp_path, labels="ferplus")


def test_rafdb_empty_label_file(tmp_path):
    write_rafdb(tmp_path, empty=True)
    with pytest.raises(DatasetFormatError, match=r"list_patition_label\.txt: the label file is empty"):
        RAFDB(tmp_path)


def test_rafdb_split_with_no_lines(tmp_path):
    write_rafdb(tmp_path)
    lbl = tmp_path / "basic/EmoLabel/list_patition_label.txt"
    lbl.write_text("\n".join(l for l in lbl.read_text().split("\n") if l.startswith("train_")))
    assert len(RAFDB(tmp_path, "train")) == 14
    with pytest.raises(DatasetFormatError, match=r"list_patition_label\.txt: no samples for split='test'; expected lines naming test_\*\.jpg"):
        RAFDB(tmp_path, "test")


def test_rafdb_corrupt_jpeg_found_up_front(tmp_path):
    write_rafdb(tmp_path, corrupt_image=2)
    with pytest.raises(DatasetFormatError, match=r"1 corrupt image file\(s\): .*train_00003_aligned\.jpg .*verify=False"):
        RAFDB(tmp_path, "train")
    assert len(RAFDB(tmp_path, "test")) == 7                           # the other split is fine
    ds = RAFDB(tmp_path, "train", verify=False)                        # skip the check: the file fails when read, named
    ds[1]
    with pytest.raises(DatasetFormatError, match=r"unreadable image .*train_00003_aligned\.jpg"):
        ds[2]


def test_ckplus_missing_peak_frame_refused(tmp_path):
    write_ckplus(tmp_path, missing_peak=[("S005", "001")])
    with pytest.raises(DatasetNotFoundError, match=r"S005_001_00000004_emotion\.txt labels frame 4 as the peak .*S005_001_00000004\.png is missing; "
                                                   r"the earlier frames are not given the label"):
        CKPlus(tmp_path)
    ds = CKPlus(tmp_path, missing="skip")
    assert "S005_001" not in ds.sequences and len(ds.skipped) == 1 and ds.skipped[0].endswith("S005/001")
    with pytest.raises(ValueError, match="missing must be one of 'error', 'skip'"):
        CKPlus(tmp_path, missing="ignore")


def test_ckplus_frames_are_the_ones_before_the_peak(tmp_path):
    ck = write_ckplus(tmp_path)
    (tmp_path / "cohn-kanade-images/S011/001/S011_001_00000007.png").write_bytes(
        (tmp_path / "cohn-kanade-images/S011/001/S011_001_00000001.png").read_bytes())   # a stray frame after the peak (6)
    ds = CKPlus(tmp_path)
    frames = [Path(f).name for f, s in zip(ds.files, ds.sequences) if s == "S011_001"]
    assert frames == ["S011_001_00000004.png", "S011_001_00000005.png", "S011_001_00000006.png"]


@pytest.mark.parametrize("protocol", range(0, pickle.HIGHEST_PROTOCOL + 1))
def test_cifar10_any_pickle_protocol(tmp_path, protocol):
    c = write_cifar10(tmp_path, protocol=protocol)
    tr, te = CIFAR10(tmp_path), CIFAR10(tmp_path, train=False)
    np.testing.assert_array_equal(tr.data, c["train"][0]); assert te.targets == c["test"][1].tolist()


def test_cifar10_malicious_pickle_is_a_clean_error(tmp_path):
    write_cifar10(tmp_path, protocol=5)
    p = tmp_path / "cifar-10-batches-py" / "test_batch"
    p.write_bytes(pickle.dumps({"data": _Evil(), "labels": [0]}, protocol=5))
    with pytest.raises(DatasetFormatError, match=r"test_batch: refusing to load global (posix|os)\.system") as e:
        CIFAR10(tmp_path, train=False)
    assert isinstance(e.value, ValueError) and isinstance(e.value, pickle.UnpicklingError)
    assert e.value.__cause__ is None and e.value.__suppress_context__


def test_cifar10_out_of_band_pickle_is_a_format_error(tmp_path):
    write_cifar10(tmp_path)
    p = tmp_path / "cifar-10-batches-py" / "test_batch"
    bufs = []
    p.write_bytes(pickle.dumps({"data": pickle.PickleBuffer(np.zeros((3, 3072), np.uint8)), "labels": [0, 1, 2]}, protocol=5, buffer_callback=bufs.append))
    with pytest.raises(DatasetFormatError, match="test_batch: not a readable CIFAR pickle"):
        CIFAR10(tmp_path, train=False)


@pytest.mark.parametrize("make,msg", [
    (lambda r: FER2013(r, labels="fer2014"), "labels must be one of 'fer2013', 'ferplus'; got 'fer2014'"),
    (lambda r: FER2013(r, ferplus_mode="vote"), "ferplus_mode must be one of 'majority', 'probability'; got 'vote'"),
    (lambda r: FER2013(r, unknown_folder="skip"), "unknown_folder must be one of 'error', 'ignore'; got 'skip'"),
    (lambda r: AffectNet(r, n_classes=6), "n_classes must be one of 7, 8; got 6"),
    (lambda r: AffectNet(r, missing="drop"), "missing must be one of 'error', 'skip'; got 'drop'"),
    (lambda r: CIFAR10(r, split="val"), "split must be one of 'train', 'test'; got 'val'"),
    (lambda r: CKPlus(r, frames=0), r"frames must be in \[1, inf\)"),
])
def test_choices_use_check_choice(tmp_path, make, msg):
    write_fer2013(tmp_path); write_affectnet_csv(tmp_path); write_cifar10(tmp_path); write_ckplus(tmp_path)
    with pytest.raises(ValueError, match=msg):
        make(tmp_path)
