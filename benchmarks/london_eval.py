"""Real faces the model never trained on: the London set's held-out identities.

For every held-out identity (training.photoreal.split_identities: every 5th id), its real
neutral photo and its real smiling photo are each turned into a short constant video (16 frames,
30 fps, H.264, the photo as is) and sent through the full pipeline (`analyse_video`). The
neutral one should come out "neutral", the smiling one "happy". Prints the accuracy, what each
wrong one became, and the command's figures for docs/.

    python benchmarks/london_eval.py [--london ../shared/datasets/london-set] [--model models/default] [--all]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from service.pipeline import Predictor, analyse_video  # noqa: E402
from service.settings import DEFAULT_MODEL_DIR, Settings  # noqa: E402
from training import photoreal  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--london", default=str(photoreal.DEFAULT_LONDON_DIR))
    ap.add_argument("--model", default=str(DEFAULT_MODEL_DIR))
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--all", action="store_true", help="every identity, not only the held-out ones (training ones included!)")
    args = ap.parse_args()
    from videos import write_video

    ids = photoreal.list_identities(args.london)
    _, held = photoreal.split_identities(ids)
    chosen = ids if args.all else held
    predictor = Predictor(args.model)
    if "neutral" not in predictor.classes:
        sys.exit(f"{args.model} has no neutral class: it cannot say 'nothing'")
    settings = Settings(model_dir=Path(args.model))
    tmp = Path(tempfile.mkdtemp(prefix="ramfer-london-"))
    outcomes = {"neutral": Counter(), "happy": Counter()}
    wrong = []
    for face_id in chosen:
        for want, photo in (("neutral", f"neutral/{face_id}_03.jpg"), ("happy", f"smiling/{face_id}_08.jpg")):
            image = cv2.imread(str(Path(args.london) / photo))
            video = write_video(tmp / f"{face_id}_{want}.mp4", [image] * args.frames)
            got = analyse_video(video, predictor, settings)["expression"]
            outcomes[want][got] += 1
            if got != want:
                wrong.append(f"{face_id} {want} -> {got}")
    n = len(chosen)
    right = outcomes["neutral"]["neutral"] + outcomes["happy"]["happy"]
    print(f"# {'all' if args.all else 'held-out'} London identities: {n} people x (neutral, smiling) = {2 * n} stills; "
          f"model {predictor.variant} {predictor.sha256[:12]}")
    print(f"neutral photo -> neutral: {outcomes['neutral']['neutral']}/{n}; smiling photo -> happy: {outcomes['happy']['happy']}/{n}; "
          f"overall {right}/{2 * n} = {100 * right / (2 * n):.1f} %")
    print("what they became: neutral photos " + dict(outcomes["neutral"]).__repr__() + "; smiling photos " + dict(outcomes["happy"]).__repr__())
    if wrong:
        print("wrong: " + "; ".join(wrong))


if __name__ == "__main__":
    main()
