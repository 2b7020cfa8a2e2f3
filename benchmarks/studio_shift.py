"""Does the answer stay when only the studio changes? Held-out faces before other backdrops, under
other lights, through other cameras, and a second studio's faces.

For every held-out London identity (fold K's people, never trained on by a checkpoint of that
fold) the real neutral photo, and with --smiles the real smiling photo, is put in each studio
condition (training.synthesis.studio: the wall replaced by another backdrop, a key light with the
face's shading and shadows, another camera's colour, grey mix, tone curve, vignette, noise or bit
rate), held still for 10 frames (30 fps, H.264) and sent through the full pipeline
(`analyse_video`, the service's defaults). The Canada set (another lab, camera and light; 40
people, neutral only) is the second studio: as photographed and before the ten backdrops
(--canada-conditions: only as photographed, or in every condition). No
condition is tuned on: they are fixed here, and every face sees every one.

Prints, per condition, how many neutral faces are read neutral (and smiles happy), what the others
became, and the mean p(neutral) of the neutral faces' clips; then **invariance**: for each face,
the share of the ten backdrops in which it gets its most common answer, averaged over faces, and
how many faces get one answer in all ten.

--talking adds calm talking videos (neutral; training.synthesis.photoreal.render_performance, 2.4 s)
of the same people in a few of the conditions: speech and head motion on top of the studio.

--json writes every video's answer and its face clips' probabilities (for the calibration fit,
benchmarks/calibrate.py, and for comparing checkpoints face by face).

    python benchmarks/studio_shift.py [--london DIR] [--canada DIR] [--backgrounds DIR] [--model DIR]
                                      [--fold 0] [--smiles] [--talking] [--people N] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from london_eval import TALK_FPS, TALK_FRAMES, TALK_SEED, mean_probabilities, network_probabilities

from service.pipeline import Predictor, analyse_video
from service.settings import DEFAULT_MODEL_DIR, Settings
from training.synthesis import motion, photoreal
from training.synthesis.london import HOLDOUT_EVERY, LONDON_ENV, find_london, list_identities, split_identities
from training.synthesis.studio import Backdrop, Camera, Light, Studio, apply, background_photos, camera_frame
from training.synthesis.template import read_template
from training.video import VideoError, write_video

CANADA_ENV = "RAMFER_CANADA_DIR"
STILL_FRAMES = 10  # 2 clips; a still's clips differ only by sensor noise
SMALL_FRAME = (360, 288)  # a small, soft camera: the face about 90 px wide


def conditions(photos: list[str]) -> dict[str, tuple[str, Studio]]:
    """name -> (group, studio). The ten "backdrop" conditions are the invariance set."""
    backdrops = {
        "flat dark grey": Backdrop("flat", (60, 60, 60)),
        "flat mid grey": Backdrop("flat", (128, 128, 128)),
        "flat white": Backdrop("flat", (245, 245, 245)),
        "flat blue": Backdrop("flat", (150, 90, 30)),
        "gradient": Backdrop("gradient", (230, 200, 170), (40, 30, 60), angle=30),
        "noise": Backdrop("noise", (120, 130, 110), seed=3),
        "texture brick": Backdrop("texture", (110, 130, 160), name="brick", seed=1),
    }
    # three photographs when a folder of them is given, else three more procedural backdrops: ten either way
    if photos:
        backdrops |= {
            f"photo {Path(p).stem.split('-')[0]}": Backdrop("photo", name=p, seed=k) for k, p in enumerate(photos[:3])
        }
    else:
        backdrops |= {
            "flat black": Backdrop("flat", (20, 20, 20)),
            "flat green": Backdrop("flat", (60, 140, 70)),
            "texture gravel": Backdrop("texture", (140, 140, 140), name="gravel", seed=2),
        }
    out = {name: ("backdrop", Studio(backdrop=b)) for name, b in backdrops.items()}
    lights = {
        "key left, hard": Light(180, 35, 0.55, 1.0),
        "key right, hard": Light(0, 35, 0.55, 1.0),
        "key above, hard": Light(90, 45, 0.55, 1.0),
        "key left, soft": Light(160, 45, 0.45, 0.0),
        "key above-right, soft": Light(45, 45, 0.45, 0.0),
    }
    out |= {name: ("light", Studio(light=light)) for name, light in lights.items()}
    cameras = {
        "warm cast": Camera(gains=(0.8, 1.0, 1.25)),
        "cool cast": Camera(gains=(1.25, 1.0, 0.8)),
        "green cast": Camera(gains=(0.9, 1.2, 0.9)),
        "grey from red": Camera(grey=(0.05, 0.25, 0.7)),
        "grey from blue": Camera(grey=(0.6, 0.3, 0.1)),
        "gamma 0.6": Camera(gamma=0.6),
        "gamma 1.6": Camera(gamma=1.6),
        "low contrast": Camera(contrast=-0.6),
        "high contrast": Camera(contrast=0.6),
        "vignette": Camera(vignette=0.6),
        "sensor noise": Camera(noise=8.0),
        "small, 150 kb/s": Camera(bit_rate=150_000),
    }
    out |= {name: ("camera", Studio(camera=cam)) for name, cam in cameras.items()}
    return out


def still(image: np.ndarray, points: np.ndarray, name: str, studio: Studio) -> list[np.ndarray]:
    """The photo in the studio, as STILL_FRAMES frames (each with its own sensor noise)."""
    img = apply(image, points, studio)
    if name.startswith("small"):
        w, h = SMALL_FRAME
        s = h / img.shape[0]
        img = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        canvas = np.full((h, w, 3), img[:, :4].mean((0, 1)), np.uint8)
        x = (w - img.shape[1]) // 2
        canvas[:, max(x, 0) : max(x, 0) + min(w, img.shape[1])] = img[:, max(-x, 0) : max(-x, 0) + min(w, img.shape[1])]
        img = cv2.GaussianBlur(canvas, (0, 0), 1.0)
    return [camera_frame(img, studio.camera, i) for i in range(STILL_FRAMES)]


def find_canada(given=None) -> Path | None:
    d = given or os.environ.get(CANADA_ENV)
    return Path(d) if d and any(Path(d).glob("*.tem")) else None


def faces(london: Path, ids: list[str], smiles: bool, canada: Path | None, canada_people: int | None):
    """(set, face id, wanted label, photo path, template points)."""
    for face_id in ids:
        pts = read_template(london / "neutral" / f"{face_id}_03.tem")
        yield "london", face_id, "neutral", london / "neutral" / f"{face_id}_03.jpg", pts
        if (
            smiles
        ):  # the smiling photo has no template: the neutral one's, moved by the eyes is close enough for the mask
            yield "london", face_id, "happy", london / "smiling" / f"{face_id}_08.jpg", pts
    if canada:
        for tem in sorted(canada.glob("*.tem"))[:canada_people]:
            yield "canada", tem.stem, "neutral", tem.with_suffix(".jpg"), read_template(tem)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--london", default=None, help=f"the London set (default: ${LONDON_ENV})")
    ap.add_argument(
        "--canada", default=None, help=f"the Canada set, a second studio (default: ${CANADA_ENV}; skipped without)"
    )
    ap.add_argument(
        "--backgrounds",
        default=None,
        help="a folder of photographs to use as backdrops (default: $RAMFER_BACKGROUNDS_DIR; "
        "without, textures stand in)",
    )
    ap.add_argument("--model", default=str(DEFAULT_MODEL_DIR))
    ap.add_argument(
        "--fold", type=int, default=0, choices=range(HOLDOUT_EVERY), help="London fold whose people are judged"
    )
    ap.add_argument("--smiles", action="store_true", help="the smiling photos too (should read happy in every studio)")
    ap.add_argument("--talking", action="store_true", help="also calm talking videos in a few conditions")
    ap.add_argument("--people", type=int, default=None, help="only the first N people of each set (a quick look)")
    ap.add_argument(
        "--canada-conditions",
        dest="canada_conditions",
        choices=("photographed", "backdrops", "all"),
        default="backdrops",
        help="the Canada faces as photographed only, also before the ten backdrops (default), or in every condition",
    )
    ap.add_argument(
        "--only", nargs="*", default=None, metavar="CONDITION", help="only these conditions (and as photographed)"
    )
    ap.add_argument("--json", default=None, metavar="FILE")
    ap.add_argument(
        "--sheet",
        default=None,
        metavar="PNG",
        help="only draw the first --people (default 3) faces in every "
        "condition, as the network's crops would frame them, and stop",
    )
    args = ap.parse_args()

    london = find_london(args.london)
    canada = find_canada(args.canada)
    photos = background_photos(args.backgrounds)
    _, held = split_identities(list_identities(london), args.fold)
    held = held[: args.people]
    if args.sheet:
        conds = {"as photographed": ("as photographed", Studio())} | conditions(photos)
        return contact_sheet(Path(args.sheet), london, held[: args.people or 3], conds)
    settings = Settings(model_dir=Path(args.model))
    predictor = Predictor.from_settings(settings)
    conds = {"as photographed": ("as photographed", Studio())} | conditions(photos)
    if args.only is not None:
        conds = {k: v for k, v in conds.items() if k == "as photographed" or k in args.only}

    tmp = Path(tempfile.mkdtemp(prefix="ramfer-studio-"))
    records = []
    start = time.time()
    try:
        for dataset, face_id, want, photo, pts in faces(london, held, args.smiles, canada, args.people):
            image = cv2.imread(str(photo))
            for name, (group, studio) in conds.items():
                if (
                    dataset == "canada"
                    and args.canada_conditions != "all"
                    and group not in ("as photographed", "backdrop" if args.canada_conditions == "backdrops" else None)
                ):
                    continue
                video = write_video(tmp / "still.mp4", still(image, pts, name, studio), bit_rate=studio.camera.bit_rate)
                records.append(judge(video, predictor, settings, dataset, face_id, want, name, group, "still"))
            mine = [r for r in records if (r["set"], r["id"], r["want"]) == (dataset, face_id, want)]
            print(
                f"  {dataset} {face_id} {want}: {sum(r['expression'] == want for r in mine)}/{len(mine)} "
                f"({time.time() - start:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
        if args.talking:
            talk = [
                "as photographed",
                "flat mid grey",
                "flat blue",
                "noise",
                "key left, hard",
                "key above, hard",
                "warm cast",
                "gamma 1.6",
            ]
            for face_id in held:
                for name in [n for n in talk if n in conds]:
                    group, studio = conds[name]
                    rng = np.random.default_rng([TALK_SEED, int(face_id), 7])  # london_eval's calm video of this person
                    perf = motion.performance(TALK_FRAMES, TALK_FPS, rng, talking=True, expression=None, strength=None)
                    frames = photoreal.render_performance(london, face_id, "neutral", perf, rng, studio=studio)
                    video = write_video(tmp / "talk.mp4", frames, fps=TALK_FPS, bit_rate=studio.camera.bit_rate)
                    records.append(
                        judge(video, predictor, settings, "london", face_id, "neutral", name, group, "talking")
                    )
                print(f"  talking {face_id} ({time.time() - start:.0f} s)", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    canada_people = len({r["id"] for r in records if r["set"] == "canada"})
    print(
        f"# studio shift: model {predictor.variant} {predictor.sha256[:12]}, London fold {args.fold} ({len(held)} people), "
        f"Canada {f'{canada_people} people' if canada else 'not given'}; "
        f"backdrop photos: {len(photos)}; {time.time() - start:.0f} s"
    )
    report(records, predictor.classes)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "model": args.model,
                    "sha256": predictor.sha256,
                    "fold": args.fold,
                    "kind": "studio",
                    "classes": predictor.classes,
                    "videos": records,
                },
                indent=1,
            )
        )


def contact_sheet(path: Path, london: Path, ids: list[str], conds: dict, tile: int = 96) -> None:
    """One row per face, one column per condition: the region around the face (1.6x the template's
    outline) of the still's first frame, so the mask's edges, the light and the camera show."""
    rows = []
    for face_id in ids:
        image = cv2.imread(str(london / "neutral" / f"{face_id}_03.jpg"))
        pts = read_template(london / "neutral" / f"{face_id}_03.tem")
        (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
        c, half = ((x0 + x1) / 2, (y0 + y1) / 2), 0.8 * max(x1 - x0, y1 - y0)
        tiles = []
        for _name, (_group, studio) in conds.items():
            frame = still(image, pts, "", studio)[0]  # the small camera is left out: it only shrinks the frame
            x, y = int(max(c[0] - half, 0)), int(max(c[1] - half, 0))
            tiles.append(
                cv2.resize(
                    frame[y : y + int(2 * half), x : x + int(2 * half)], (tile, tile), interpolation=cv2.INTER_AREA
                )
            )
        rows.append(np.hstack(tiles))
    sheet = np.vstack(rows)
    cv2.imwrite(str(path), sheet)
    print(f"wrote {path}: {len(ids)} faces x {len(conds)} conditions ({', '.join(conds)})")


def judge(video, predictor, settings, dataset, face_id, want, condition, group, kind) -> dict:
    try:
        result = analyse_video(video, predictor, settings)
    except VideoError as e:
        result = {"expression": f"({e.code})", "clips": []}
    return {
        "set": dataset,
        "id": face_id,
        "want": want,
        "condition": condition,
        "group": group,
        "kind": kind,
        "expression": result["expression"],
        "mean_probabilities": mean_probabilities(result, predictor.classes),
        "clip_probabilities": network_probabilities(result, predictor.classes, predictor.temperature),
    }


def report(records: list[dict], classes: list[str]) -> None:
    rows = defaultdict(list)
    for r in records:
        rows[(r["set"], r["kind"], r["want"], r["condition"], r["group"])].append(r)
    print("\n| set | video | wanted | group | condition | right | what the others became | mean p(neutral) |")
    print("|---|---|---|---|---|---|---|---|")
    for (dataset, kind, want, cond, group), rs in rows.items():
        right = sum(r["expression"] == want for r in rs)
        others = Counter(r["expression"] for r in rs if r["expression"] != want)
        pn = [r["mean_probabilities"]["neutral"] for r in rs if r["mean_probabilities"] and "neutral" in classes]
        print(
            f"| {dataset} | {kind} | {want} | {group} | {cond} | {right}/{len(rs)} | "
            f"{', '.join(f'{k} {n}' for k, n in others.most_common()) or '-'} | {np.mean(pn) if pn else float('nan'):.2f} |"
        )
    # worst condition per (set, kind, wanted), and invariance over the backdrops
    for key in sorted({(r["set"], r["kind"], r["want"]) for r in records}):
        per = {
            c: sum(r["expression"] == key[2] for r in rs) for (s, k, w, c, g), rs in rows.items() if (s, k, w) == key
        }
        n = len([r for r in records if (r["set"], r["kind"], r["want"], r["condition"]) == (*key, "as photographed")])
        worst = min(per, key=per.get)
        print(
            f"\n{key[0]} {key[1]} {key[2]}: {n} faces; worst condition {worst!r} {per[worst]}/{n}; "
            f"conditions at >= {n - 1}/{n}: {sum(v >= n - 1 for v in per.values())} of {len(per)}"
        )
        by_face = defaultdict(list)
        for r in records:
            if (r["set"], r["kind"], r["want"], r["group"]) == (*key, "backdrop"):
                by_face[r["id"]].append(r["expression"])
        if by_face:
            shares = [Counter(v).most_common(1)[0][1] / len(v) for v in by_face.values()]
            same = sum(len(set(v)) == 1 for v in by_face.values())
            print(
                f"invariance over {len(next(iter(by_face.values())))} backdrops: one face's most common answer "
                f"{100 * np.mean(shares):.1f} % of the time; one answer in all of them: {same}/{len(by_face)} faces"
            )


if __name__ == "__main__":
    main()
