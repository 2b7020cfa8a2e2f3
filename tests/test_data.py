"""The loaders on small trees the tests write: CK+ as distributed (with its quirks), a CK+ copy
of ready-made 48 px crops, and class folders of videos."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from training import data as data_module
from training.clips import clip_indices
from training.data import (
    CLASSES,
    labelled_video_files,
    load_ckplus,
    load_class_folders,
    load_dataset,
    read_label_code,
    subject_from_filename,
)
from training.faces import CropConfig, crop_face, landmarks_box


@pytest.fixture(scope="session")
def ck_tree(tmp_path_factory) -> Path:
    """A synthetic CK+ tree (3 subjects) with the quirks of the real one added."""
    from training.synthesis.drawn_dataset import write_dataset

    root = tmp_path_factory.mktemp("ck") / "CK+"
    write_dataset(root, subjects=3, seed=11, size=(320, 245), progress=False)
    images = root / "cohn-kanade-images"
    subject = sorted(p for p in images.iterdir() if p.is_dir())[0]
    seq = sorted(p for p in subject.iterdir() if p.is_dir())[0]
    (images / ".DS_Store").write_bytes(b"\0\1")
    (subject / ".DS_Store").write_bytes(b"\0\1")
    (seq / "._S000_001_00000001.png").write_bytes(b"AppleDouble")  # a macOS resource fork
    # an extra sequence whose Emotion folder exists but is empty: unlabelled
    extra = subject / "099"
    shutil.copytree(seq, extra)
    for f in extra.iterdir():
        f.rename(extra / f.name.replace(f"_{seq.name}_", "_099_"))
    (root / "Emotion" / subject.name / "099").mkdir(parents=True)
    return root


def sequences_on_disk(root: Path) -> dict[str, int]:
    """name -> label code, read straight from the Emotion files."""
    out = {}
    for f in (root / "Emotion").glob("*/*/*_emotion.txt"):
        out[f"{f.parent.parent.name}/{f.parent.name}"] = int(float(f.read_text().split()[0]))
    return out


def test_label_files_are_floats():
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "S005_001_00000011_emotion.txt").write_text("   3.0000000e+00\n")
        assert read_label_code(Path(d)) == 3
        assert read_label_code(Path(d) / "missing") is None


def test_ckplus_loader_reads_labelled_sequences_only(ck_tree, tmp_path):
    ds = load_ckplus(ck_tree, cache_dir=tmp_path, progress=False)
    truth = sequences_on_disk(ck_tree)
    assert {v.name for v in ds.videos} == set(truth)  # unlabelled (no or empty Emotion) are skipped
    for v in ds.videos:
        assert CLASSES[v.label] == CLASSES[truth[v.name] - 1]
        assert v.subject == v.name.split("/")[0] and v.subject.startswith("S")
        n_images = len([p for p in (ck_tree / "cohn-kanade-images" / v.name).iterdir() if not p.name.startswith(".")])
        assert v.frames.shape == (n_images, 48, 48) and v.frames.dtype == np.uint8
    assert len(set(ds.subjects)) == 3
    assert any(len(v.frames) < 8 for v in ds.videos)  # short sequences are kept ...
    assert all(len(clip_indices(len(v.frames))) >= 1 for v in ds.videos)  # ... and still make a clip


def test_ckplus_crop_is_the_landmark_box(ck_tree, tmp_path):
    ds = load_ckplus(ck_tree, cache_dir=tmp_path, progress=False)
    v = max(ds.videos, key=lambda v: len(v.frames))
    frame = sorted((ck_tree / "cohn-kanade-images" / v.name).glob("S*.png"))[-1]
    lm = ck_tree / "Landmarks" / v.name / f"{frame.stem}_landmarks.txt"
    gray = cv2.imread(str(frame), cv2.IMREAD_GRAYSCALE)
    # the smoothing averages the last frames' boxes; the last frame's own box is close to it
    own = crop_face(gray, landmarks_box(np.loadtxt(lm)), 48, CropConfig().scale)
    assert np.abs(own.astype(int) - v.frames[-1]).mean() < 12


def test_colour_and_16_bit_frames_become_gray(ck_tree, tmp_path):
    tree = tmp_path / "ck"
    shutil.copytree(ck_tree, tree)
    ds = load_ckplus(tree, cache_dir=tmp_path / "c1", progress=False)
    v = ds.videos[0]
    frames = sorted((tree / "cohn-kanade-images" / v.name).glob("S*.png"))  # not the ._ resource fork
    gray = cv2.imread(str(frames[0]), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(frames[0]), cv2.merge([gray, gray, gray]))  # colour
    second = cv2.imread(str(frames[1]), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(frames[1]), second.astype(np.uint16) * 257)  # 16-bit
    again = load_ckplus(tree, cache_dir=tmp_path / "c2", progress=False).videos[0]
    assert again.name == v.name
    assert np.abs(again.frames[:2].astype(int) - v.frames[:2]).max() <= 2


def test_ckplus_copy_of_48px_crops_without_landmarks(ck_tree, tmp_path):
    """The copy the project will be judged on: last frames only, no Landmarks, 48x48 gray."""
    copy = tmp_path / "ck48"
    for f in (ck_tree / "Emotion").rglob("*_emotion.txt"):
        dest = copy / f.relative_to(ck_tree)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, dest)
    for name in sequences_on_disk(ck_tree):
        seq = ck_tree / "cohn-kanade-images" / name
        frames = sorted(seq.glob("S*.png"))[-3:]
        out = copy / "cohn-kanade-images" / seq.relative_to(ck_tree / "cohn-kanade-images")
        out.mkdir(parents=True)
        for f in frames:
            gray = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
            lm = np.loadtxt(
                ck_tree / "Landmarks" / seq.relative_to(ck_tree / "cohn-kanade-images") / f"{f.stem}_landmarks.txt"
            )
            cv2.imwrite(str(out / f.name), crop_face(gray, landmarks_box(lm), 48, 1.2))
    ds = load_dataset(copy, cache_dir=tmp_path / "cache", progress=False)
    assert ds.layout == "ckplus" and len(ds.videos) == len(sequences_on_disk(ck_tree))
    assert all(v.frames.shape == (3, 48, 48) for v in ds.videos)
    assert all(clip_indices(3).shape == (1, 8) for _ in ds.videos)
    # the crops of crops keep the face at the same place: close to the tree read with landmarks
    full = {v.name: v for v in load_ckplus(ck_tree, cache_dir=tmp_path / "c2", progress=False).videos}
    diffs = [np.abs(v.frames[-1].astype(int) - full[v.name].frames[-1]).mean() for v in ds.videos]
    assert np.median(diffs) < 25


def test_preprocessed_arrays_are_cached(ck_tree, tmp_path, monkeypatch):
    first = load_ckplus(ck_tree, cache_dir=tmp_path, progress=False)
    assert len(list(tmp_path.glob("ckplus-*.npz"))) == 1

    def boom(*a, **k):
        raise AssertionError("decoded again despite the cache")

    monkeypatch.setattr(data_module, "preprocess_ck_sequence", boom)
    second = load_ckplus(ck_tree, cache_dir=tmp_path, progress=False)
    assert [v.name for v in first.videos] == [v.name for v in second.videos]
    assert all(np.array_equal(a.frames, b.frames) for a, b in zip(first.videos, second.videos))
    # a changed file invalidates it
    img = next((ck_tree / "cohn-kanade-images").glob("*/*/*.png"))
    import os

    st = img.stat()
    os.utime(img, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    with pytest.raises(AssertionError, match="decoded again"):
        load_ckplus(ck_tree, cache_dir=tmp_path, progress=False)


def test_not_a_ck_tree(tmp_path):
    with pytest.raises(FileNotFoundError, match="cohn-kanade-images"):
        load_ckplus(tmp_path)


def test_subject_from_file_name():
    assert subject_from_filename(Path("alice_take2.mp4")) == "alice"
    assert subject_from_filename(Path("1001_DFA_ANG_XX.flv")) == "1001"
    assert subject_from_filename(Path("bob.webm")) == "bob"


def test_class_folders_of_videos(tmp_path, caplog):
    from videos import write_video

    from training.synthesis.drawn import render_sequence
    from training.synthesis.drawn_face import make_subject

    root = tmp_path / "videos"
    for i, (cls, name) in enumerate(
        [("happy", "alice_1.mp4"), ("happy", "bob_take2.webm"), ("surprise", "alice_2.mp4")]
    ):
        rng = np.random.default_rng(i)
        frames, _ = render_sequence(make_subject(rng), cls, 12, rng, size=(320, 240))
        (root / cls).mkdir(parents=True, exist_ok=True)
        write_video(root / cls / name, frames)
    (root / "happy" / "carol_broken.mp4").write_bytes(b"not a video at all")
    (root / "laughing").mkdir()  # not a class: skipped with a warning
    (root / "happy" / ".DS_Store").write_bytes(b"\0")
    ds = load_class_folders(root, cache_dir=tmp_path / "cache", progress=False)
    assert ds.layout == "folders"
    assert sorted((v.name, v.subject, CLASSES[v.label]) for v in ds.videos) == [
        ("happy/alice_1.mp4", "alice", "happy"),
        ("happy/bob_take2.webm", "bob", "happy"),
        ("surprise/alice_2.mp4", "alice", "surprise"),
    ]
    assert all(v.frames.shape == (12, 48, 48) for v in ds.videos)
    assert "laughing" in caplog.text and "carol_broken" in caplog.text
    layout, entries = labelled_video_files(root)  # what benchmarks/video_eval.py reads
    assert layout == "folders" and [(f.name, CLASSES[c], s) for f, c, s in entries] == [
        ("alice_1.mp4", "happy", "alice"),
        ("bob_take2.webm", "happy", "bob"),
        ("carol_broken.mp4", "happy", "carol"),
        ("alice_2.mp4", "surprise", "alice"),
    ]


def test_cremad_file_names(tmp_path):
    from videos import write_video

    from training.data import CLASSES_WITH_NEUTRAL, load_cremad
    from training.synthesis.drawn import render_sequence
    from training.synthesis.drawn_face import make_subject

    root = tmp_path / "CREMA-D" / "VideoFlash"
    root.mkdir(parents=True)
    for name, cls in [("1001_DFA_ANG_XX", "anger"), ("1001_IEO_NEU_XX", "neutral"), ("1002_TIE_HAP_HI", "happy")]:
        rng = np.random.default_rng(len(name) + ord(name[-1]))
        frames, _ = render_sequence(make_subject(rng), cls, 9, rng, size=(320, 240))
        write_video(root / f"{name}.flv", frames, codec="flv")
    (root / "notes_1001.flv").write_bytes(b"x")  # not CREMA-D's naming: ignored
    seven = load_dataset(tmp_path / "CREMA-D", cache_dir=tmp_path / "c", progress=False)
    assert seven.layout == "cremad"
    assert labelled_video_files(tmp_path / "CREMA-D")[0] == "cremad"
    assert sorted((v.subject, CLASSES[v.label]) for v in seven.videos) == [("1001", "anger"), ("1002", "happy")]
    eight = load_cremad(tmp_path / "CREMA-D", cache_dir=tmp_path / "c", classes=CLASSES_WITH_NEUTRAL, progress=False)
    assert sorted(CLASSES_WITH_NEUTRAL[v.label] for v in eight.videos) == ["anger", "happy", "neutral"]
    assert all(v.frames.shape == (9, 48, 48) for v in eight.videos)


def test_neutral_class_from_onset_frames_peak_stills_and_code_0(ck_tree, tmp_path):
    from training.data import CLASSES_WITH_NEUTRAL

    tree = tmp_path / "ck"
    shutil.copytree(ck_tree, tree)
    # a sequence labelled 0 (neutral), as CK+ codes it
    some = next((tree / "Emotion").glob("*/*/*_emotion.txt"))
    some.write_text("   0.0000000e+00\n")
    seven = load_ckplus(tree, cache_dir=tmp_path / "c", progress=False)
    eight = load_ckplus(tree, cache_dir=tmp_path / "c", classes=CLASSES_WITH_NEUTRAL, progress=False)
    neutral = CLASSES_WITH_NEUTRAL.index("neutral")
    assert len(seven.videos) == len(sequences_on_disk(tree)) - 1  # 7 classes: the code-0 sequence is left out
    coded = [v for v in eight.videos if v.label == neutral and not v.name.endswith("#onset")]
    onsets = [v for v in eight.videos if v.name.endswith("#onset")]
    assert len(coded) == 1
    assert len(onsets) == sum(len(v.frames) >= 4 for v in seven.videos)
    by_name = {v.name: v for v in seven.videos}
    for o in onsets:
        assert o.label == neutral and np.array_equal(o.frames, by_name[o.name.removesuffix("#onset")].frames[:1])
    # an expression sequence keeps only the frames its late clips need: each clip ends past 2/3 of it
    cut = 0
    for v in eight.videos:
        if "#" in v.name or v.label == neutral:
            continue
        whole = by_name[v.name].frames
        assert np.array_equal(v.frames, whole[len(whole) - len(v.frames) :])
        ends = clip_indices(len(v.frames))[:, -1] + len(whole) - len(v.frames)
        assert ends.min() >= min(len(whole) - 1, math.ceil(2 / 3 * (len(whole) - 1)))
        assert len(v.frames) >= min(len(whole), 8)
        cut += len(v.frames) < len(whole)
    assert cut > 0
    # and a still of each expression at its peak, so that stillness alone does not mean neutral
    peaks = [v for v in eight.videos if v.name.endswith("#peak")]
    assert len(peaks) == len(onsets)
    for p in peaks:
        source = by_name[p.name.removesuffix("#peak")]
        assert p.label == source.label != neutral and np.array_equal(p.frames, source.frames[-1:])


def test_a_tree_can_limit_its_peak_stills_to_some_classes(ck_tree, tmp_path):
    from training.data import CLASSES_WITH_NEUTRAL, PEAK_STILLS_FILE

    tree = tmp_path / "ck"
    shutil.copytree(ck_tree, tree)
    everything = load_ckplus(tree, cache_dir=tmp_path / "c", classes=CLASSES_WITH_NEUTRAL, progress=False)
    (tree / PEAK_STILLS_FILE).write_text('{"classes": ["happy"]}')
    limited = load_ckplus(tree, cache_dir=tmp_path / "c", classes=CLASSES_WITH_NEUTRAL, progress=False)
    happy = CLASSES_WITH_NEUTRAL.index("happy")
    peaks = [v for v in limited.videos if v.name.endswith("#peak")]
    assert peaks and all(v.label == happy for v in peaks)
    assert len(peaks) == sum(v.name.endswith("#peak") and v.label == happy for v in everything.videos)
    # the onset stills and the sequences themselves are untouched
    assert [v.name for v in limited.videos if not v.name.endswith("#peak")] == [
        v.name for v in everything.videos if not v.name.endswith("#peak")
    ]
    (tree / PEAK_STILLS_FILE).write_text('{"classes": ["joy"]}')
    with pytest.raises(ValueError, match="unknown classes"):
        load_ckplus(tree, cache_dir=tmp_path / "c", classes=CLASSES_WITH_NEUTRAL, progress=False)


def test_several_roots_keep_their_subjects_apart(ck_tree, tmp_path):
    from training.data import load_datasets

    other = tmp_path / "copy"
    shutil.copytree(ck_tree, other)
    both = load_datasets([ck_tree, other], cache_dir=tmp_path / "c", progress=False)
    one = load_ckplus(ck_tree, cache_dir=tmp_path / "c", progress=False)
    assert len(both.videos) == 2 * len(one.videos)
    assert len(set(both.subjects)) == 2 * len(set(one.subjects))  # same S### names, different people


def test_a_pack_reads_back_as_the_data_set_it_was_made_of(ck_tree, tmp_path):
    from training.data import CLASSES_WITH_NEUTRAL, load_pack, save_pack

    loaded = load_ckplus(ck_tree, cache_dir=tmp_path / "c", classes=CLASSES_WITH_NEUTRAL, progress=False)
    path = save_pack(loaded, tmp_path / "packs" / "ck.npz", CropConfig())
    packed = load_dataset(path, classes=CLASSES_WITH_NEUTRAL)  # --data FILE.npz
    assert [(v.subject, v.name, v.label) for v in packed.videos] == [
        (v.subject, v.name, v.label) for v in loaded.videos
    ]
    for a, b in zip(packed.videos, loaded.videos):
        np.testing.assert_array_equal(a.frames, b.frames)
    assert any(v.name.endswith("#onset") for v in packed.videos)  # the stills travel with it
    assert packed.root == f"{path} = {loaded.root}" and packed.layout == "pack (ckplus)"
    with pytest.raises(ValueError, match="packed for the classes"):
        load_pack(path, classes=CLASSES)  # a 7-class run must not read 8-class labels
    with pytest.raises(ValueError, match="crop settings"):
        load_pack(path, CropConfig(size=64), classes=CLASSES_WITH_NEUTRAL)


def test_align_flag_makes_aligned_crops_from_the_landmarks(ck_tree, tmp_path):
    """`training cv|train|pack --align`: crops aligned on the CK+ eyes (landmarks_face), recorded in the crop settings."""
    import argparse

    from training.__main__ import crop_config
    from training.faces import align_face, landmarks_face

    args = argparse.Namespace(input_size=48, align=True)
    crop = crop_config(args)
    assert crop.align and crop.to_dict()["align"] is True
    aligned = load_ckplus(ck_tree, crop, cache_dir=tmp_path, progress=False)
    boxed = load_ckplus(ck_tree, cache_dir=tmp_path, progress=False)
    v = max(aligned.videos, key=lambda v: len(v.frames))
    assert not np.array_equal(v.frames, next(b for b in boxed.videos if b.name == v.name).frames)
    frame = sorted((ck_tree / "cohn-kanade-images" / v.name).glob("S*.png"))[-1]
    lm = np.loadtxt(ck_tree / "Landmarks" / v.name / f"{frame.stem}_landmarks.txt")
    own = align_face(cv2.imread(str(frame), cv2.IMREAD_GRAYSCALE), landmarks_face(lm)[3:].reshape(6, 2), crop)
    assert np.abs(own.astype(int) - v.frames[-1]).mean() < 12  # the last frame's own aligned crop, up to smoothing


# --- still images: FER+ and class folders of images ---------------------------------------


def astronaut_face(size: int = 48) -> np.ndarray:
    """A real face (skimage's astronaut) cut as FER2013 cuts its faces: gray, the face filling the square."""
    from skimage import data

    gray = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)
    return cv2.resize(gray[40:250, 150:360], (size, size), interpolation=cv2.INTER_AREA)


def test_ferplus_votes_become_shares_of_the_model_classes():
    from training.data import CLASSES_WITH_NEUTRAL, ferplus_target

    # label.csv's order: neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, not a face
    t = ferplus_target([4, 0, 0, 1, 3, 2, 0, 0, 0, 0])
    assert t is not None and t.sum() == pytest.approx(1)
    shares = dict(zip(CLASSES_WITH_NEUTRAL, t))
    assert shares["neutral"] == pytest.approx(4 / 9) and shares["anger"] == pytest.approx(3 / 9)
    assert shares["sadness"] == 0  # a single vote is an annotator's outlier (Barsoum et al.)
    assert CLASSES_WITH_NEUTRAL[int(t.argmax())] == "neutral"
    assert ferplus_target([0, 0, 0, 0, 0, 0, 0, 0, 6, 4]) is None  # mostly "unknown"
    assert ferplus_target([2, 0, 0, 0, 0, 0, 0, 0, 0, 8]) is None  # not a face
    assert (
        ferplus_target([9, 0, 0, 0, 0, 0, 0, 0, 1, 0], CLASSES) is None
    )  # neutral, in a 7-class run (CK+ has no neutral)
    assert CLASSES[int(ferplus_target([0, 0, 0, 0, 0, 0, 0, 9, 1, 0], CLASSES).argmax())] == "contempt"
    assert ferplus_target([1, 1, 1, 1, 1, 1, 1, 1, 1, 1]) is None  # nobody agreed with anybody


def test_ferplus_split_reads_as_still_clips_cropped_as_served(tmp_path):
    from training.data import CLASSES_WITH_NEUTRAL
    from training.faces import FaceDetector, crop_frame

    split = tmp_path / "FER2013Valid"
    split.mkdir()
    face = astronaut_face()
    for name, image in (("fer0000001.png", face), ("fer0000002.png", face[:, ::-1]), ("fer0000003.png", face)):
        cv2.imwrite(str(split / name), image)
    (split / "label.csv").write_text(
        'fer0000001.png,"(0, 0, 48, 48)",0,9,0,0,0,0,0,0,1,0\n'  # happy
        'fer0000002.png,"(0, 0, 48, 48)",6,0,2,0,0,0,0,2,0,0\n'  # neutral, some surprise and contempt
        'fer0000003.png,"(0, 0, 48, 48)",0,0,0,0,0,0,0,0,3,7\n'  # not a face: left out
        'fer0000004.png,"(0, 0, 48, 48)",0,9,0,0,0,0,0,0,1,0\n'  # no such file: left out
    )
    crop = CropConfig(align=True)
    d = load_dataset(split, crop, cache_dir=tmp_path / "cache", classes=CLASSES_WITH_NEUTRAL, progress=False)
    assert d.layout == "ferplus" and len(d.videos) == 2
    happy, neutral = d.videos
    assert (CLASSES_WITH_NEUTRAL[happy.label], CLASSES_WITH_NEUTRAL[neutral.label]) == ("happy", "neutral")
    assert happy.frames.shape == (1, 48, 48) and happy.target[happy.label] == 1
    assert neutral.target[CLASSES_WITH_NEUTRAL.index("contempt")] == pytest.approx(0.2)
    assert clip_indices(len(happy.frames)).tolist() == [[0] * 8]  # a still is a clip of its one frame, held
    # the face is found and aligned as a served frame's is, not taken as the file frames it
    found = FaceDetector()(face)
    assert found is not None
    assert np.array_equal(happy.frames[0], crop_frame(face, found, crop))
    assert not np.array_equal(happy.frames[0], face)


def test_class_folders_of_images_with_the_usual_folder_names(tmp_path):
    face = astronaut_face(96)
    for folder in ("Happy", "sad", "surprise", "unrelated"):
        (tmp_path / folder).mkdir()
        cv2.imwrite(str(tmp_path / folder / "0001.jpg"), face)
    d = load_dataset(tmp_path, CropConfig(), cache_dir=tmp_path / "cache", classes=CLASSES, progress=False)
    assert d.layout == "images"
    assert sorted(CLASSES[v.label] for v in d.videos) == ["happy", "sadness", "surprise"]
    assert all(v.frames.shape == (1, 48, 48) and v.target is None for v in d.videos)
