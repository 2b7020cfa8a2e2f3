"""What each extra person in a video costs the pipeline, and what following every face costs a
video of one.

Videos of 1, 2, 3 and 4 real faces side by side (London set photos of held-out people, CC BY 4.0,
each drifting a little), 640x360, 30 fps, `--seconds` long. Each runs through `analyse_video` (what
the workers and `python -m service predict` run) with the service's defaults, and the one-face video
also with RAMFER_MAX_FACES=1, where the detector looks for no one new while it follows one face: the
work the pipeline did before it told people apart. Configurations are interleaved round by round;
medians of `--rounds` runs. Printed: milliseconds per stage, and each total as a ratio to the
one-face video at RAMFER_MAX_FACES=1.

    python benchmarks/people_cost.py --london LONDON_DIR [--rounds 5] [--seconds 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

PEOPLE = ["smiling/091_08", "neutral/034_03", "neutral/001_03", "smiling/022_08"]  # held-out London people (fold 0)


def make_videos(folder: Path, london: Path, frames: int) -> dict[int, Path]:
    import videos
    from videos import london_tile, people_frames, write_video

    videos.LONDON = london
    tiles = [london_tile(p, 150) for p in PEOPLE]
    made = {}
    for n in range(1, 5):
        where = [(tiles[k], lambda i, k=k: (10 + 160 * k + (i % 20) / 2, 100 + 10 * (k % 2))) for k in range(n)]
        made[n] = write_video(folder / f"people{n}.mp4", people_frames(frames, where))
    return made


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--london", required=True, help="the Face Research Lab London Set folder")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    args = ap.parse_args()

    import torch

    from service.pipeline import Predictor, analyse_video
    from service.settings import Settings

    if args.threads:
        torch.set_num_threads(args.threads)
    videos = make_videos(Path(tempfile.mkdtemp(prefix="ramfer-people-")), Path(args.london), round(30 * args.seconds))
    predictor = Predictor.from_settings(Settings())
    configs = {"1 face, RAMFER_MAX_FACES=1": (videos[1], Settings(max_faces=1))}
    configs.update({f"{n} face{'s' if n > 1 else ''}": (videos[n], Settings()) for n in range(1, 5)})
    analyse_video(videos[1], predictor, Settings())  # warm-up
    runs: dict[str, list[dict]] = {name: [] for name in configs}
    people: dict[str, int] = {}
    for _ in range(args.rounds):
        for name, (video, settings) in configs.items():
            result = analyse_video(video, predictor, settings)
            runs[name].append(result["timings_ms"])
            people[name] = sum(p["scored"] for p in result["people"])
    stages = ["decode", "detect", "crop", "infer", "render", "total"]
    base = statistics.median(t["total"] for t in runs["1 face, RAMFER_MAX_FACES=1"])
    print(
        f"{args.seconds:.0f} s videos, 640x360, 30 fps; medians of {args.rounds} rounds; "
        f"torch threads {torch.get_num_threads()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
    )
    print(f"| video | people scored | {' | '.join(stages)} ms | total / 1 face at RAMFER_MAX_FACES=1 |")
    print("|---|---|" + "---|" * (len(stages) + 1))
    for name, timings in runs.items():
        med = {s: statistics.median(t.get(s, 0.0) for t in timings) for s in stages}
        print(
            f"| {name} | {people[name]} | "
            + " | ".join(f"{med[s]:.0f}" for s in stages)
            + f" | {med['total'] / base:.2f} |"
        )


if __name__ == "__main__":
    main()
