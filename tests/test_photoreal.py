"""Photo-real CK+ sequences from the Face Research Lab London Set: layout, determinism, labels,
sequence shape (neutral first, peak last), the real smile, and faces the Haar detector finds.

Needs the set at ../shared/datasets/london-set (it is not in the repository); skipped without it."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from training.data import ckplus_number, peak_still_classes
from training.faces import FaceDetector, crop_face
from training.synthesis import photoreal
from training.synthesis.contact_sheet import write_photoreal_contact_sheet
from training.synthesis.facs import CLASSES, KINDS
from training.synthesis.identity import load_identity
from training.synthesis.london import (
    MORPH_ID,
    id_key,
    list_identities,
    london_face_id,
    london_groups,
    london_people,
    morph_identities,
    split_identities,
)
from training.synthesis.photoreal import render_identity_sequence
from training.synthesis.photoreal_dataset import write_dataset, write_talking_dataset
from training.synthesis.smile import FAINT_PULL, corner_pull, faint_smile_peak, mouth_corner_motion, resting_corner_lift
from training.synthesis.template import read_template

LONDON = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "london-set"
pytestmark = pytest.mark.skipif(
    not (LONDON / "neutral").is_dir(),
    reason=f"the Face Research Lab London Set is not at {LONDON} (download: https://doi.org/10.6084/m9.figshare.5047666.v5)",
)

IDS = ["001", "012"]  # a small set; other identities are exercised by the per-class tests below
SIZE = (320, 245)  # small frames keep the tests fast; the face is still big enough for Haar
NUMBER = r"   -?\d\.\d{7}e[+-]\d{2}\n"


def files_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def gray(img: np.ndarray) -> np.ndarray:
    return img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("photoreal")
    return root, write_dataset(LONDON, root, seed=0, identities=IDS, size=SIZE, progress=False)


def test_template_and_identities(tmp_path):
    ids = list_identities(LONDON)
    assert ids == sorted(ids) and set(IDS) <= set(ids) and all(re.fullmatch(r"\d{3}", i) for i in ids)
    pts = read_template(LONDON / "neutral" / "001_03.tem")
    assert pts.shape == (189, 2) and pts.dtype.kind == "f"
    assert pts[0, 0] < pts[1, 0]  # pupils: left, right
    assert pts[87, 0] < pts[93, 0] and pts[129, 1] > pts[93, 1] > pts[0, 1]  # mouth corners, chin below
    assert list_identities(tmp_path) == []  # no set there


def test_ckplus_layout_names_and_labels(tree):
    root, summary = tree
    assert sorted(p.name for p in root.iterdir()) == [
        "Emotion",
        "cohn-kanade-images",
        "peak_stills.json",
    ]  # no Landmarks/
    # only the real smiles may be used as stills of their expression (training.data reads this)
    assert peak_still_classes(root) == {"happy"}
    images = root / "cohn-kanade-images"
    assert sorted(p.name for p in images.iterdir()) == [f"L{i}" for i in IDS] == summary["subjects"]
    assert summary["identities"] == len(IDS) and summary["sequences"] == len(IDS) * len(KINDS)
    assert summary["per_class"] == {k: len(IDS) for k in KINDS}
    frames, orders = 0, []
    for fid in IDS:
        subj = f"L{fid}"
        seqs = sorted(p.name for p in (images / subj).iterdir())
        assert seqs == [f"{k:03d}" for k in range(1, len(KINDS) + 1)]
        codes = []
        for num in seqs:
            names = sorted(p.name for p in (images / subj / num).iterdir())
            n = len(names)
            assert n >= 8 and names == [f"{subj}_{num}_{i:08d}.png" for i in range(1, n + 1)]
            emotion = sorted((root / "Emotion" / subj / num).iterdir())
            assert [p.name for p in emotion] == [f"{subj}_{num}_{n:08d}_emotion.txt"]  # named after the last frame
            text = emotion[0].read_text()
            assert re.fullmatch(NUMBER, text)
            codes.append(int(float(text)))
            frames += n
            first = cv2.imread(str(images / subj / num / names[0]), cv2.IMREAD_UNCHANGED)
            assert first.shape[:2] == (SIZE[1], SIZE[0]) and first.dtype == np.uint8
        assert sorted(codes) == list(range(8))  # one sequence per class, neutral labelled 0
        orders.append(codes)
    assert frames == summary["frames"]
    assert any(o != sorted(o) for o in orders) and orders[0] != orders[1]  # a seeded random class order
    assert "CC BY 4.0" in summary["attribution"]


def test_neutral_code_is_zero_and_optional(tree, tmp_path):
    root, _ = tree
    texts = {p.read_text() for p in (root / "Emotion").rglob("*_emotion.txt")}
    assert "   0.0000000e+00\n" in texts and "   5.0000000e+00\n" in texts
    s = write_dataset(LONDON, tmp_path, seed=0, identities=["001"], size=(160, 122), neutral=False, progress=False)
    assert s["sequences"] == 7 and "neutral" not in s["per_class"]
    codes = sorted(int(float(p.read_text())) for p in (tmp_path / "Emotion").rglob("*_emotion.txt"))
    assert codes == list(range(1, 8))


def test_more_smiles_extend_the_tree_with_other_cameras(tree, tmp_path):
    root, _ = tree
    s = write_dataset(LONDON, tmp_path, seed=0, identities=["012"], size=SIZE, smiles=3, progress=False)
    assert s["per_class"]["happy"] == 3 and s["sequences"] == len(KINDS) + 2 and s["smiles"] == 3
    full, more = files_of(root), files_of(tmp_path)
    # the one-smile tree is a subset, byte for byte: sequences 001-008 do not change
    assert all(more[k] == v for k, v in full.items() if "L012" in k)
    extra = sorted(k for k in more if k not in full and k.endswith("_emotion.txt"))
    assert [k.split("/")[2] for k in extra] == ["009", "010"]
    assert {more[k].decode() for k in extra} == {ckplus_number(5.0) + "\n"}
    # each extra smile is the same real smile under another camera: the peak frames differ
    peaks = [
        cv2.imread(str(max((tmp_path / "cohn-kanade-images" / "L012" / n).iterdir())), cv2.IMREAD_GRAYSCALE)
        for n in ("009", "010")
    ]
    assert peaks[0].shape == peaks[1].shape and np.abs(peaks[0].astype(int) - peaks[1].astype(int)).mean() > 2
    with pytest.raises(ValueError, match="at least 1"):
        write_dataset(LONDON, tmp_path / "none", identities=["012"], size=SIZE, smiles=0, progress=False)


def test_deterministic_per_seed_and_per_identity(tree, tmp_path):
    root, _ = tree
    one = write_dataset(LONDON, tmp_path / "one", seed=0, identities=["012"], size=SIZE, progress=False)
    other = write_dataset(LONDON, tmp_path / "other", seed=1, identities=["012"], size=SIZE, progress=False)
    full, f1, f2 = files_of(root), files_of(tmp_path / "one"), files_of(tmp_path / "other")
    assert f1 and all(full[k] == v for k, v in f1.items())  # identity 012's files do not depend on 001 being written
    assert f1.keys() != f2.keys() or any(f1[k] != f2[k] for k in f1)
    assert one["frames"] == sum(k.endswith(".png") for k in f1) and other["frames"] == sum(
        k.endswith(".png") for k in f2
    )
    a = render_identity_sequence(LONDON, "001", "fear", 6, np.random.default_rng(5), size=(160, 122))
    b = render_identity_sequence(LONDON, "001", "fear", 6, np.random.default_rng(5), size=(160, 122))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_gray_and_colour_frames():
    g = render_identity_sequence(LONDON, "001", "happy", 3, np.random.default_rng(0), size=(160, 122))
    c = render_identity_sequence(LONDON, "001", "happy", 3, np.random.default_rng(0), size=(160, 122), color=True)
    assert len(g) == 3 and all(f.shape == (122, 160) and f.dtype == np.uint8 for f in g)
    assert all(f.shape == (122, 160, 3) and f.dtype == np.uint8 for f in c)
    with pytest.raises(ValueError):
        render_identity_sequence(LONDON, "001", "joy", 5, np.random.default_rng(0))
    with pytest.raises(ValueError):
        render_identity_sequence(LONDON, "001", "anger", 1, np.random.default_rng(0))


def _regions(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Mean absolute difference of two 48x48 face crops around the mouth and around the brows."""
    d = np.abs(a.astype(np.float32) - b.astype(np.float32))
    return float(d[30:43, 11:37].mean()), float(d[7:17, 6:42].mean())


@pytest.mark.parametrize("fid", ["005", "086"])
def test_neutral_first_peak_last(fid):
    """One rng state gives the same camera (framing, motion, light, noise) for every emotion, so a
    sequence compared with its neutral twin shows the expression alone: nothing in frame 0, the
    most at the last frame, around the mouth or the brows. The neutral sequence itself changes
    less from its frame 0 than an expressive one under the same head motion."""
    n = 10
    seqs = {
        e: render_identity_sequence(LONDON, fid, e, n, np.random.default_rng([3, int(fid)]), size=SIZE) for e in KINDS
    }
    face = FaceDetector()(gray(seqs["neutral"][-1]))
    assert face is not None
    box = face[:3]
    crops = {e: [crop_face(gray(f), box, 48, 1.2) for f in fr] for e, fr in seqs.items()}
    for e in CLASSES:
        assert np.array_equal(seqs[e][0], seqs["neutral"][0]), e  # neutral first
        change = [max(_regions(c, t)) for c, t in zip(crops[e], crops["neutral"])]
        # peak last: the last frame changed (about) the most, and more than a third of the way in
        assert change[0] == 0 and change[-1] >= 0.9 * max(change) and change[-1] > change[n // 3], (e, change)
        assert change[-1] > 1.2, (e, change[-1])  # visible around the mouth or brows at 48 px

    # The neutral sequence's last frame against its frame 0, after the best rigid/affine
    # registration (head motion is undone by one, a changed mouth or brow is not).
    def self_change(fr):
        first, last = (crop_face(gray(f), box, 48, 1.2) for f in (fr[0], fr[-1]))
        return min(max(_regions(first, r)) for r in _registered(last, first))

    still = self_change(seqs["neutral"])
    assert still < 5, still
    assert still < self_change(seqs["surprise"]) and still < self_change(seqs["fear"])


def _registered(src: np.ndarray, dst: np.ndarray) -> list[np.ndarray]:
    """src as is, and warped onto dst by ECC with a translation, a rotation and an affine map."""
    out = [src]
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-5)
    for mode in (cv2.MOTION_TRANSLATION, cv2.MOTION_EUCLIDEAN, cv2.MOTION_AFFINE):
        try:
            _, w = cv2.findTransformECC(
                dst.astype(np.float32), src.astype(np.float32), np.eye(2, 3, dtype=np.float32), mode, criteria, None, 3
            )
        except cv2.error:
            continue
        out.append(
            cv2.warpAffine(
                src, w, dst.shape[::-1], flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE
            )
        )
    return out


def _ecc_onto(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """src warped onto dst by an affine map fitted on the eye half of the crops (ECC)."""
    norm = lambda x: ((x - x.mean()) / (x.std() + 1e-6)).astype(np.float32)  # noqa: E731
    s = dst.shape[0]
    mask = np.zeros(dst.shape, np.uint8)
    mask[: s // 2] = 1
    w = np.eye(2, 3, dtype=np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-5)
    _, w = cv2.findTransformECC(norm(dst), norm(src), w, cv2.MOTION_AFFINE, criteria, mask, 5)
    return cv2.warpAffine(
        src, w, (s, s), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE
    )


@pytest.mark.parametrize("fid", ["001", "045", "120"])
def test_happy_peak_is_the_real_smile(fid):
    """The happy sequence ends on the person's real smiling photo: its last frame's face crop,
    around the mouth, is closer to the smiling photo's crop than to the neutral photo's (all three
    cropped the same way, 1.2 x the Haar box, the photos then registered on the eyes)."""
    frames = render_identity_sequence(LONDON, fid, "happy", 8, np.random.default_rng([0, int(fid), 99]), size=SIZE)
    size = 96

    def crop(img):
        g = gray(img)
        face = FaceDetector()(g)
        assert face is not None
        return crop_face(g, face[:3], size, 1.2).astype(np.float32)

    peak = crop(frames[-1])
    neutral = _ecc_onto(crop(cv2.imread(str(LONDON / "neutral" / f"{fid}_03.jpg"))), peak)
    smile = _ecc_onto(crop(cv2.imread(str(LONDON / "smiling" / f"{fid}_08.jpg"))), peak)
    lower = (slice(int(size * 0.55), int(size * 0.9)), slice(int(size * 0.2), int(size * 0.8)))
    z = lambda x: (x[lower] - x[lower].mean()) / (x[lower].std() + 1e-6)  # noqa: E731
    to_smile, to_neutral = np.abs(z(peak) - z(smile)).mean(), np.abs(z(peak) - z(neutral)).mean()
    assert to_smile < to_neutral, (to_smile, to_neutral)


def test_detector_finds_the_face_in_first_and_last_frames(tree):
    root, _ = tree
    missed = []
    for seq in sorted((root / "cohn-kanade-images").glob("*/*")):
        frames = sorted(seq.glob("*.png"))
        for f in (frames[0], frames[-1]):
            if FaceDetector()(gray(cv2.imread(str(f), cv2.IMREAD_UNCHANGED))) is None:
                missed.append(f.name)
    assert not missed


def test_contact_sheet(tree, tmp_path):
    root, _ = tree
    out = tmp_path / "sheet.png"
    write_photoreal_contact_sheet(root, out, per_class=2)
    sheet = cv2.imread(str(out))
    assert sheet is not None and sheet.shape[0] > 8 * 90 and sheet.shape[1] >= 84 + 3 * 90
    assert out.stat().st_size < 600_000


def test_mouth_corner_motion_tells_a_broad_smile_from_a_faint_one():
    # 012's smile shows teeth; 131's "smiling" photo barely moves the mouth (benchmarks/smile_size.py)
    (lx, ly), (rx, ry) = mouth_corner_motion(LONDON, "012")
    assert lx < -0.03 and rx > 0.03  # the corners pull outwards...
    assert ly < -0.02 and ry < -0.02  # ...and up (y runs down the face)
    faint = np.abs(mouth_corner_motion(LONDON, "131")).max()
    assert faint < 0.5 * min(-lx, rx, -ly, -ry)


def test_resting_corner_lift_sees_upturned_corners():
    # 009's neutral photo has corners above the lips' line (read happy by fold 3's checkpoint);
    # 105's sit well below it (the lowest of the 102: benchmarks/smile_size.py)
    assert resting_corner_lift(LONDON, "009") > 0.03
    assert resting_corner_lift(LONDON, "105") < -0.06


def test_faint_smiles_stop_the_real_smile_early(tree, tmp_path):
    root, _ = tree
    s = write_dataset(LONDON, tmp_path, seed=0, identities=["012"], size=SIZE, faint=2, progress=False)
    assert s["per_class"]["happy"] == 3 and s["sequences"] == len(KINDS) + 2 and s["faint_smiles"] == 2
    full, more = files_of(root), files_of(tmp_path)
    assert all(more[k] == v for k, v in full.items() if "L012" in k)  # the plain tree is a subset
    extra = sorted(k for k in more if k not in full and k.endswith("_emotion.txt"))
    assert [k.split("/")[2] for k in extra] == ["009", "010"]
    assert {more[k].decode() for k in extra} == {ckplus_number(5.0) + "\n"}  # labelled happy
    # 012 smiles broadly: each faint smile is a fraction of it that moves the corners by FAINT_PULL
    pull = corner_pull(LONDON, "012")
    peaks = s["faint_peaks"]["L012"]
    assert len(peaks) == 2 and all(0 < p < 1 for p in peaks)
    lo, hi = FAINT_PULL
    assert all(lo - 1e-3 <= p * pull <= hi + 1e-3 for p in peaks), (peaks, pull)


def test_a_faint_smile_moves_the_face_less_than_the_full_one():
    def last(peak):  # the same rng each time: the same camera, so only the smile differs
        f = render_identity_sequence(LONDON, "012", "happy", 8, np.random.default_rng(4), size=SIZE, peak=peak)
        return gray(f[-1]).astype(int)

    calm, faint, full = last(1e-6), last(0.3), last(1.0)
    moved_faint, moved_full = np.abs(faint - calm).mean(), np.abs(full - calm).mean()
    assert 0 < moved_faint < 0.6 * moved_full, (moved_faint, moved_full)
    with pytest.raises(ValueError, match="only for happy"):
        render_identity_sequence(LONDON, "012", "anger", 8, np.random.default_rng(4), size=SIZE, peak=0.5)


def test_a_person_whose_smile_is_already_faint_keeps_it_whole():
    assert corner_pull(LONDON, "131") < FAINT_PULL[0]
    assert faint_smile_peak(LONDON, "131", np.random.default_rng(0)) == 1.0


def still_performance(n: int, jaw: float = 0.0, yaw: float = 0.0):
    from training.synthesis import motion

    zeros = np.zeros(n)
    return motion.Performance(
        jaw=np.full(n, jaw),
        spread=zeros,
        press=zeros,
        yaw=np.full(n, yaw),
        pitch=zeros,
        roll=zeros,
        shift=np.zeros((n, 2)),
        scale=np.ones(n),
        blink=zeros,
        gaze=np.zeros((n, 2)),
        intensity=zeros,
    )


def test_a_talking_face_opens_its_mouth_dark_and_a_turned_head_moves_the_face():
    from training.faces import FaceDetector

    def render(**kw):
        return gray(
            photoreal.render_performance(
                LONDON, "001", "neutral", still_performance(2, **kw), np.random.default_rng(0), size=SIZE
            )[0]
        )

    rest, open_mouth, turned = render(), render(jaw=1.0), render(yaw=20.0)
    cx, cy, side = FaceDetector()(rest)[:3]  # the box; landmarks follow
    changed = np.abs(open_mouth.astype(int) - rest) > 12
    ys, xs = np.nonzero(changed)
    assert len(ys) > 0.003 * side * side and ys.mean() > cy + 0.1 * side, (
        "the open mouth is not below the face's centre"
    )
    assert abs(xs.mean() - cx) < 0.15 * side
    # darker where it changed (the mouth's inside), on average and in its darkest pixels
    assert open_mouth[changed].mean() < rest[changed].mean() - 10, "an open mouth is darker inside"
    assert np.percentile(open_mouth[changed], 5) < np.percentile(rest[changed], 5) - 10
    moved = np.abs(turned.astype(int) - rest) > 12
    assert moved.sum() > 3 * changed.sum(), "a 20 degree turn moves more of the face than the jaw does"


def test_talking_performance_is_deterministic_and_every_class_renders():
    from training.synthesis import motion

    for emotion in KINDS:
        rng = np.random.default_rng([1, 2])
        perf = motion.performance(6, 30, rng, talking=True, expression=None if emotion == "neutral" else "held")
        a = photoreal.render_performance(LONDON, "012", emotion, perf, rng, size=SIZE)
        rng = np.random.default_rng([1, 2])
        perf = motion.performance(6, 30, rng, talking=True, expression=None if emotion == "neutral" else "held")
        b = photoreal.render_performance(LONDON, "012", emotion, perf, rng, size=SIZE)
        assert len(a) == 6 and a[0].shape[:2] == SIZE[::-1]
        assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_talking_dataset_is_class_folders_of_videos_the_loader_reads(tmp_path):
    from training.data import CLASSES_WITH_NEUTRAL, load_class_folders

    summary = write_talking_dataset(
        LONDON, tmp_path, seed=0, identities=["012"], calm=1, seconds=(0.5, 0.6), progress=False
    )
    assert summary["per_class"] == dict.fromkeys(KINDS, 1)
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.mp4"))
    assert files == sorted(f"{c}/L012_talk{k:02d}.mp4" for k, c in enumerate(["neutral", *CLASSES], start=1))
    data = load_class_folders(tmp_path, classes=CLASSES_WITH_NEUTRAL, cache_dir=tmp_path / "cache", progress=False)
    assert set(data.subjects) == {"L012"} and london_face_id(data.subjects[0]) == "012"
    assert sorted(CLASSES_WITH_NEUTRAL[v.label] for v in data.videos) == sorted(KINDS)
    assert all(15 <= len(v.frames) <= 18 for v in data.videos)  # 0.5-0.6 s at 30 fps, a face in every frame

    # a run for more people adds to the set: a person whose videos are all there is not rendered again,
    # one with a video missing (an interrupted run) is, to the same bytes, and no partial file is left
    written = {p: p.read_bytes() for p in tmp_path.rglob("*.mp4")}
    again = write_talking_dataset(
        LONDON, tmp_path, seed=0, identities=["012"], calm=1, seconds=(0.5, 0.6), progress=False
    )
    assert again["reused_identities"] == 1 and again["per_class"] == summary["per_class"]
    (tmp_path / "anger" / "L012_talk02.mp4").unlink()
    redone = write_talking_dataset(
        LONDON, tmp_path, seed=0, identities=["012"], calm=1, seconds=(0.5, 0.6), progress=False
    )
    assert redone["reused_identities"] == 0
    assert {p: p.read_bytes() for p in tmp_path.rglob("*.mp4")} == written


def test_morphs_are_new_faces_made_of_two_people():
    from training.synthesis.motion import talking_performance

    ids = list_identities(LONDON)[:10]
    six = morph_identities(ids, 6, seed=0)
    assert six[:3] == morph_identities(ids, 3, seed=0)  # more morphs add to the fewer
    assert six != morph_identities(ids, 6, seed=1) and len(set(six)) == 6
    for m in six:
        a, b = MORPH_ID.match(m).groups()
        assert a != b and {a, b} <= set(ids) and london_people(f"photoreal:L{m}") == {a, b}
    with pytest.raises(ValueError, match="at most 2"):
        morph_identities(["001", "002"], 3)
    # balanced: the main person comes from each self-reported group in turn, no one person more than twice their share
    groups = london_groups(LONDON)
    train = split_identities(list_identities(LONDON))[0]
    plain = Counter(groups[m.split("m")[0]] for m in morph_identities(train, 40, seed=0))
    firsts = [m.split("m")[0] for m in morph_identities(train, 40, seed=0, groups=groups)]
    balanced = Counter(groups[a] for a in firsts)
    assert plain["white"] > 20 and balanced["white"] < plain["white"] and balanced["black"] > plain["black"]
    assert max(Counter(firsts).values()) <= 2 and len(balanced) == len({groups[i] for i in train})
    assert london_groups(LONDON / "neutral") == {}  # no london_info.csv there
    # its random draws are its own, not a real person's
    assert id_key("001m017") not in {int(i) for i in list_identities(LONDON)}

    m = six[0]
    a, b = MORPH_ID.match(m).groups()
    face = load_identity(str(LONDON), m)
    first, second = load_identity(str(LONDON), a), load_identity(str(LONDON), b)
    # mostly the first person: its shape is nearer theirs than the second's (after the second is moved
    # onto the first by a similarity), its photo nearer their photo, and it is neither
    box = (
        slice(int(face.eye[1] - face.iod), int(face.eye[1] + 2 * face.iod)),
        slice(int(face.eye[0] - face.iod), int(face.eye[0] + face.iod)),
    )

    def diff(x, y):
        return np.abs(x[box].astype(float) - y[box]).mean()

    assert 0 < np.abs(face.pts - first.pts).mean() < 0.5 * np.abs(first.pts - second.pts).mean() + 1
    assert 2 < diff(face.neutral, first.neutral) < diff(face.neutral, second.neutral)
    # the morph smiles: its aligned smile differs from its neutral photo around the mouth, as a real smile does
    mouth = face.pts[[87, 93]].mean(0).astype(int)
    r = int(0.4 * face.iod)
    smile = face.smile[0]
    assert (
        np.abs(
            smile[mouth[1] - r : mouth[1] + r, mouth[0] - r : mouth[0] + r].astype(float)
            - face.neutral[mouth[1] - r : mouth[1] + r, mouth[0] - r : mouth[0] + r]
        ).mean()
        > 8
    )
    rng = np.random.default_rng(3)
    frames = photoreal.render_performance(
        LONDON, m, "happy", talking_performance("happy", rng, (0.3, 0.3)), rng, size=SIZE
    )
    assert len(frames) == 9 and frames[0].shape[:2] == SIZE[::-1]


def test_a_london_fold_leaves_out_the_morphs_of_its_people():
    from training.__main__ import without_london_fold
    from training.data import Dataset, Video

    ids = list_identities(LONDON)
    held = set(split_identities(ids, 1)[1])
    kept_id, held_id = sorted(set(ids) - held)[:2], sorted(held)[0]
    subjects = [f"L{kept_id[0]}", f"L{kept_id[0]}m{kept_id[1]}", f"L{kept_id[1]}m{held_id}", f"L{held_id}", "S001"]
    data = Dataset([Video(s, s, 0, np.zeros((3, 8, 8), np.uint8)) for s in subjects], ["neutral"], "folders", "x")
    assert [v.subject for v in without_london_fold(data, LONDON, 1).videos] == subjects[:2] + ["S001"]


def test_synth_morphs_writes_new_faces_of_the_training_people_only(tmp_path):
    from training.__main__ import main

    main(["synth", "--photoreal", str(LONDON), "--morphs", "2", "--out", str(tmp_path), "--quiet"])
    subjects = sorted(p.name for p in (tmp_path / "cohn-kanade-images").iterdir())
    ids = list_identities(LONDON)
    train, held = split_identities(ids)
    assert subjects == sorted(f"L{m}" for m in morph_identities(train, 2, seed=0))
    people = set().union(*(london_people(s) for s in subjects))
    assert len(people) in (3, 4) and people <= set(train)
    assert sum(1 for _ in (tmp_path / "Emotion").rglob("*_emotion.txt")) == 2 * len(KINDS)
    readme = (tmp_path / "README.txt").read_text()
    assert all(i in readme for i in held) and not any(f" {i}" in readme.split("not in this set:")[1] for i in people)
