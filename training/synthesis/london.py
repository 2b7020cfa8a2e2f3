"""The Face Research Lab London Set on disk, and who is in it.

The set (102 adults, one neutral and one smiling studio photo each, a 189-point template on the
neutral one) is the user's copy, read from where it lies and never copied into the repository:

    DeBruine, L., & Jones, B. (2017). Face Research Lab London Set (Version 5). figshare.
    https://doi.org/10.6084/m9.figshare.5047666.v5  (CC BY 4.0)

This module finds it (`find_london`: --photoreal/--london or $RAMFER_LONDON_DIR, or an error that says
where to get it), lists its people (`list_identities`, `face_files`), splits them into the folds
that evaluation holds out (`split_identities`, so no evaluation sees a person it trained on), maps a
data set's subject back to the London people it is made of (`london_face_id`, `london_people`), and
picks the pairs of people that morphs are made of (`morph_identities`, `london_groups`). `id_key` is
the number a face's random draws are seeded with. `ATTRIBUTION` is the line every data set made from
the set carries.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np

LONDON_ENV = "RAMFER_LONDON_DIR"  # where a user's copy of the London set is, when no --london is given
LONDON_SOURCE = "https://doi.org/10.6084/m9.figshare.5047666.v5"
ATTRIBUTION = (
    "Faces: Face Research Lab London Set, DeBruine & Jones (2017), figshare, "
    "doi:10.6084/m9.figshare.5047666.v5, CC BY 4.0; expressions other than happy are synthetic warps"
)


HOLDOUT_EVERY = 5  # every 5th identity (sorted ids) is held out of training, for evaluation
LONDON_SUBJECT = re.compile(
    r"(?:^|:)L(\d+(?:m\d+)?)$"
)  # "L001", "L001m017" (a morph), or "photoreal:L001" in a combined data set
MORPH_ID = re.compile(r"^(\d+)m(\d+)$")  # "001m017": a new face, mostly 001 with some of 017 (morph_identities)


def split_identities(ids: list[str], fold: int = 0) -> tuple[list[str], list[str]]:
    """(training ids, held-out ids): a fixed, documented split, so the served checkpoint's
    evaluation on real faces (benchmarks/london_eval.py) only sees people it never trained on.
    Fold 0 (every 5th id from the first) is the served checkpoint's; folds 1-4 (every 5th id from
    the 2nd, ..., 5th) hold out the other people in turn, for a person-independent estimate
    over the whole set (docs/real-faces.md)."""
    if not 0 <= fold < HOLDOUT_EVERY:
        raise ValueError(f"fold must be 0..{HOLDOUT_EVERY - 1}, got {fold}")
    ids = sorted(ids)
    held = ids[fold::HOLDOUT_EVERY]
    return [i for i in ids if i not in held], held


def london_face_id(subject: str) -> str | None:
    """The London face id of a photo-real data set's subject ("L001" or "photoreal:L001" -> "001",
    a morph's "L001m017" -> "001m017")."""
    m = LONDON_SUBJECT.search(subject)
    return m.group(1) if m else None


def london_people(subject: str) -> set[str]:
    """The real London people a subject's face is made of: one, two for a morph, none for other data.
    A fold that holds out a person holds out every morph of them too."""
    face_id = london_face_id(subject)
    if face_id is None:
        return set()
    m = MORPH_ID.match(face_id)
    return set(m.groups()) if m else {face_id}


def id_key(face_id: str) -> int:
    """The integer a face's random draws are seeded with: the id itself; a morph's above every real id."""
    m = MORPH_ID.match(str(face_id))
    return 10**6 + 1000 * int(m.group(1)) + int(m.group(2)) if m else int(face_id)


def morph_identities(ids: list[str], n: int, seed: int = 0, groups: dict[str, str] | None = None) -> list[str]:
    """n new faces made of two of `ids` each ("001m017": mostly the first): distinct ordered pairs,
    a seeded draw, so the first k of n are the same faces whatever n is. 81 people are too few for a
    network to learn which resting faces are calm; a morph of two of them is a face nobody has,
    resting as calmly as they do (CC BY 4.0 allows altered forms: the London set's README).
    With `groups` (id -> group, e.g. london_groups), the first person is drawn from each group in
    turn, so a group of 9 people gets as many new faces as one of 57, as far as no one person is the
    first of more than twice their share (a group of one gives few faces, not many of one face)."""
    ids = sorted(str(i) for i in ids)
    pairs = [(a, b) for a in ids for b in ids if a != b]
    if n > len(pairs):
        raise ValueError(f"{len(ids)} people make at most {len(pairs)} morphs, not {n}")
    rng = np.random.default_rng([seed, 424242])
    order = [pairs[k] for k in rng.permutation(len(pairs))]
    if groups:
        by_group: dict[str, list] = {}
        for a, b in order:
            by_group.setdefault(groups.get(a, "?"), []).append((a, b))
        cap, queues = 2 * -(-n // len(ids)), []
        for g in sorted(by_group):
            firsts, queue = Counter(), []
            for a, b in by_group[g]:
                if firsts[a] < cap:
                    firsts[a] += 1
                    queue.append((a, b))
            queues.append(queue)
        turns = [q[i] for i in range(max(map(len, queues))) for q in queues if i < len(q)]
        taken = set(turns)
        order = turns + [p for p in order if p not in taken]
    return [f"{a}m{b}" for a, b in order[:n]]


def london_groups(london_dir) -> dict[str, str]:
    """Face id -> self-reported ethnicity, from the set's london_info.csv ({} where it is missing)."""
    import csv

    info = Path(london_dir) / "london_info.csv"
    if not info.is_file():
        return {}
    with open(info, newline="") as f:
        return {row["face_id"].zfill(3): row["face_eth"] for row in csv.DictReader(f)}


def face_files(london_dir, face_id: str) -> tuple[Path, Path, Path]:
    d = Path(london_dir)
    return d / "neutral" / f"{face_id}_03.jpg", d / "neutral" / f"{face_id}_03.tem", d / "smiling" / f"{face_id}_08.jpg"


class LondonSetMissing(FileNotFoundError):
    pass


def find_london(london_dir=None) -> Path:
    """The user's copy of the London set: `london_dir` if given, else $RAMFER_LONDON_DIR. The set is
    not part of this repository (nor of its default paths): a missing one is an error that says
    where to get it."""
    import os

    given = london_dir or os.environ.get(LONDON_ENV)
    where = (
        f"{given} holds no London-set faces (neutral/NNN_03.jpg + .tem, smiling/NNN_08.jpg)"
        if given
        else "no London set given"
    )
    if given and list_identities(given):
        return Path(given)
    raise LondonSetMissing(
        f"{where}. Download the Face Research Lab London Set (CC BY 4.0) from {LONDON_SOURCE}, "
        f"unpack it, and name its folder on the command line (--london DIR, or `training synth --photoreal DIR`) or in {LONDON_ENV}."
    )


def list_identities(london_dir) -> list[str]:
    """Face ids ("001", ...) that have a neutral photo, its template and a smiling photo, sorted."""
    d = Path(london_dir)
    ids = (
        sorted(p.name[: -len("_03.jpg")] for p in (d / "neutral").glob("*_03.jpg")) if (d / "neutral").is_dir() else []
    )
    return [i for i in ids if i.isdigit() and all(p.is_file() for p in face_files(d, i))]
