"""The studio a face is filmed in (training/synthesis/studio.py), on real studio photos: the person
cut out of the London wall, other backdrops, light and shadow from the face's shape, camera
responses, and photo-real sequences rendered in a drawn studio.

Needs the London set at ../shared/datasets/london-set (not in the repository); skipped without it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from training.synthesis import studio as S
from training.synthesis.photoreal import render_performance
from training.synthesis.photoreal_dataset import write_dataset
from training.synthesis.template import read_template

LONDON = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "london-set"
pytestmark = pytest.mark.skipif(not (LONDON / "neutral").is_dir(), reason=f"the London set is not at {LONDON}")


def photo(face_id="001"):
    return cv2.imread(str(LONDON / "neutral" / f"{face_id}_03.jpg")), read_template(
        LONDON / "neutral" / f"{face_id}_03.tem"
    )


@pytest.mark.parametrize("face_id", ["001", "004", "129"])
def test_the_person_is_cut_out_of_the_wall(face_id):
    img, pts = photo(face_id)
    alpha = S.person_mask(img, pts)
    h, w = alpha.shape
    assert alpha[:20, :20].max() < 0.05 and alpha[:20, -20:].max() < 0.05  # the wall's top corners
    inside = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(inside, S.face_outline(pts), 1)
    assert alpha[inside > 0].mean() > 0.98  # the face
    eye_y = int(pts[[0, 1], 1].mean())
    beside = alpha[eye_y, : w // 10]  # the wall beside the head at eye level
    assert beside.mean() < 0.1, "the wall beside the face was kept"
    iod = float(np.linalg.norm(pts[1] - pts[0]))
    neck = np.round(pts[129] + [0, 0.4 * iod]).astype(int)  # below the chin: skin, not wall
    assert alpha[neck[1], neck[0]] > 0.9
    assert 0.15 < alpha.mean() < 0.75


def test_a_flat_backdrop_replaces_the_wall_and_keeps_the_face():
    img, pts = photo()
    out = S.apply(img, pts, S.Studio(backdrop=S.Backdrop("flat", (150, 90, 30))))
    assert np.abs(out[5, 5].astype(int) - (150, 90, 30)).max() <= 2
    nose = np.round(pts[55]).astype(int)
    patch = (slice(nose[1] - 30, nose[1] + 30), slice(nose[0] - 30, nose[0] + 30))
    assert np.array_equal(out[patch], img[patch])


@pytest.mark.parametrize("kind", ["gradient", "noise", "texture", "photo"])
def test_every_backdrop_kind_draws_an_image(kind, tmp_path):
    name = {"texture": "brick", "photo": str(tmp_path / "p.jpg")}.get(kind, "")
    if kind == "photo":
        cv2.imwrite(name, np.random.default_rng(0).integers(0, 255, (100, 150, 3), dtype=np.uint8))
    b = S.Backdrop(kind, (100, 150, 200), (10, 20, 30), name=name, seed=4)
    a = S.backdrop_image(b, 120, 90)
    assert a.shape == (120, 90, 3) and a.dtype == np.uint8 and a.std() > 3
    assert np.array_equal(a, S.backdrop_image(b, 120, 90))  # seeded


def test_a_key_light_from_one_side_lights_that_side_and_shadows_the_other():
    img, pts = photo()
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(float)
    for azimuth, lit_side in ((180, "left"), (0, "right")):
        out = cv2.cvtColor(
            S.apply(img, pts, S.Studio(light=S.Light(azimuth, 35, 0.6, 1.0))), cv2.COLOR_BGR2GRAY
        ).astype(float)
        cheek_y = int(pts[[164, 167], 1].mean())
        left = (slice(cheek_y - 15, cheek_y + 15), slice(int(pts[164, 0]) - 15, int(pts[164, 0]) + 15))
        right = (slice(cheek_y - 15, cheek_y + 15), slice(int(pts[167, 0]) - 15, int(pts[167, 0]) + 15))
        change_left = out[left].mean() / gray[left].mean()
        change_right = out[right].mean() / gray[right].mean()
        if lit_side == "left":
            assert change_left > change_right + 0.2
        else:
            assert change_right > change_left + 0.2


def test_the_camera_changes_colour_grey_mix_tone_and_noise():
    img, pts = photo()
    grey = S.apply(img, pts, S.Studio(camera=S.Camera(grey=(0.0, 0.0, 1.0))))
    assert np.array_equal(grey[..., 0], grey[..., 2]) and np.abs(grey[..., 0].astype(int) - img[..., 2]).max() <= 1
    warm = S.apply(img, pts, S.Studio(camera=S.Camera(gains=(0.8, 1.0, 1.2))))
    assert warm[..., 2].mean() > img[..., 2].mean() and warm[..., 0].mean() < img[..., 0].mean()
    f = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    noisy = S.Camera(noise=6.0, seed=3)
    assert np.array_equal(S.camera_frame(f, noisy, 2), S.camera_frame(f, noisy, 2))
    assert not np.array_equal(S.camera_frame(f, noisy, 2), S.camera_frame(f, noisy, 3))
    dark = S.camera_frame(f, S.Camera(gamma=1.6))
    assert dark.mean() < f.mean() - 10
    vignetted = S.camera_frame(f, S.Camera(vignette=0.6))
    assert (
        vignetted[:20, :20].mean() < 0.7 * f[:20, :20].mean() and abs(int(vignetted[337, 337]) - int(f[337, 337])) <= 1
    )
    assert S.camera_frame(f, S.Camera()) is f


def test_drawn_studios_are_seeded_and_varied():
    a = [S.draw(np.random.default_rng([0, k]), ("x.jpg",)) for k in range(40)]
    b = [S.draw(np.random.default_rng([0, k]), ("x.jpg",)) for k in range(40)]
    assert a == b
    assert {s.backdrop.kind for s in a} == {"wall", "flat", "gradient", "noise", "texture", "photo"}
    assert sum(s.light.strength > 0 for s in a) > 20


def test_a_performance_rendered_in_a_studio_changes_the_backdrop_not_the_face():
    from training.synthesis import motion

    perf = motion.performance(6, 30, np.random.default_rng(1), talking=True, expression=None, strength=None)
    plain = render_performance(LONDON, "001", "neutral", perf, np.random.default_rng(2), size=(320, 180))
    blue = S.Studio(backdrop=S.Backdrop("flat", (200, 60, 10)))
    studio = render_performance(LONDON, "001", "neutral", perf, np.random.default_rng(2), size=(320, 180), studio=blue)
    assert len(plain) == len(studio) == 6
    diff = np.abs(plain[0].astype(int) - studio[0].astype(int))
    assert diff[:15].mean() > 10  # the wall above the head
    centre = (slice(70, 110), slice(140, 180))
    assert diff[centre].mean() < 3  # the face (gray: the blue backdrop is darker than the wall)


def test_synth_studio_draws_a_studio_per_sequence_and_keeps_the_rest(tmp_path):
    size = (160, 122)
    plain = write_dataset(
        LONDON, tmp_path / "plain", seed=0, identities=["001"], size=size, neutral=False, progress=False
    )
    studio = write_dataset(
        LONDON, tmp_path / "studio", seed=0, identities=["001"], size=size, neutral=False, progress=False, studio=True
    )
    assert studio["studio"] and not plain["studio"]
    assert (
        plain["per_class"] == studio["per_class"] and plain["frames"] == studio["frames"]
    )  # same sequences, lengths, labels
    first = sorted((tmp_path / "plain" / "cohn-kanade-images").rglob("*.png"))[0]
    twin = tmp_path / "studio" / first.relative_to(tmp_path / "plain")
    assert not np.array_equal(cv2.imread(str(first)), cv2.imread(str(twin)))
