"""The served pipeline against the training code: same frames, same crops, same clips, same scores."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from service.pipeline import LEGACY_NEUTRAL_BIAS, Predictor, analyse_video, neutral_bias
from service.settings import Settings
from training.clips import clip_indices, decide_video, label_runs, majority_vote, merge_short_runs
from training.data import preprocess_video_file


@pytest.fixture(scope="module")
def predictor(model_dir):
    """The served checkpoint at temperature 1: these tests re-decide the reported clip probabilities,
    and the decision reads the network's own (test_calibration covers the temperature)."""
    p = Predictor(model_dir)
    p.temperature = 1.0
    return p


def test_served_clips_are_scored_on_the_training_preprocessing(predictor, videos, tmp_path, model_dir):
    # the training readers detect every frame; served with RAMFER_DETECT_EVERY=1 the crops must be theirs (the
    # default, 2, averages the boxes between detections: docs/performance.md measures what that changes)
    settings = Settings(model_dir=model_dir, storage_dir=tmp_path, detect_every=1)
    result = analyse_video(videos["astronaut_mp4"], predictor, settings)
    # the class-folder loader's path: decode, detect, smooth, crop (training.data)
    crops = preprocess_video_file(videos["astronaut_mp4"], predictor.crop)
    clips = clip_indices(len(crops))
    probs, _ = predictor.predict(crops[clips])  # each clip encoded on its own, no sharing
    assert len(result["clips"]) == len(clips)
    for served, p in zip(result["clips"], predictor.calibrated(probs)):  # reported at the checkpoint's temperature
        np.testing.assert_allclose([served["probabilities"][c] for c in predictor.classes], p, atol=2e-4)
    neutral = predictor.classes.index("neutral")
    winner, votes, _ = decide_video(
        probs,
        len(predictor.classes),
        abstain=neutral,
        radius=settings.vote_smooth_clips,
        min_run=settings.vote_min_clips,
        abstain_bias=neutral_bias(predictor, settings),
    )
    assert result["expression"] == predictor.classes[winner]
    assert result["votes"] == {c: int(v) for c, v in zip(predictor.classes, votes)}
    assert result["decision"] == {
        "smooth_clips": settings.vote_smooth_clips,
        "min_clips": settings.vote_min_clips,
        "neutral_bias": neutral_bias(predictor, settings),
    }


def test_neutral_bias_reaches_the_answer_and_the_timeline(predictor, videos, tmp_path, model_dir):
    """The clips' own labels and probabilities are the network's whatever the bias; the answer and the
    segments are read under it. A bias no expression can beat leaves neutral alone; none, the clips' own vote."""
    plain = analyse_video(
        videos["astronaut_mp4"], predictor, Settings(model_dir=model_dir, storage_dir=tmp_path, neutral_bias=0)
    )
    calm = analyse_video(
        videos["astronaut_mp4"], predictor, Settings(model_dir=model_dir, storage_dir=tmp_path, neutral_bias=60)
    )
    assert [c["probabilities"] for c in calm["clips"]] == [c["probabilities"] for c in plain["clips"]]
    assert [c["label"] for c in calm["clips"]] == [c["label"] for c in plain["clips"]]
    assert calm["expression"] == "neutral" and {s["label"] for s in calm["segments"]} == {"neutral"}
    assert calm["decision"]["neutral_bias"] == 60
    assert plain["expression"] == "happy"  # she smiles: the bias, not the face, made the calm answer
    with pytest.raises(ValueError, match="neutral_bias"):
        Settings(neutral_bias=-1)


def test_the_checkpoint_carries_its_prior_for_neutral_and_neutral_bias_overrides_it(predictor, tmp_path, model_dir):
    """A checkpoint records the prior its decision rule was chosen with (config.json "decision"); one
    that records none gets the prior the service used before checkpoints carried theirs."""
    import shutil

    from training.checkpoint import read_config, write_record

    own = tmp_path / "own"
    shutil.copytree(model_dir, own)
    config = read_config(own)
    config["decision"] = {"neutral_bias": 0.7}
    write_record(own, config)
    config.pop("decision")
    bare = tmp_path / "bare"
    shutil.copytree(model_dir, bare)
    write_record(bare, config)
    unset = Settings(storage_dir=tmp_path)
    assert neutral_bias(Predictor(own), unset) == 0.7
    assert neutral_bias(Predictor(own), Settings(storage_dir=tmp_path, neutral_bias=1.5)) == 1.5
    assert neutral_bias(Predictor(bare), unset) == LEGACY_NEUTRAL_BIAS


def test_bundled_checkpoints_are_found_by_name(tmp_path, monkeypatch):
    from training.bundled import BUNDLED_CHECKPOINTS
    from training.checkpoint import read_config

    monkeypatch.chdir(tmp_path)
    for name, folder in BUNDLED_CHECKPOINTS.items():
        assert Settings(model_dir=name).model_dir == folder
        assert read_config(name)["weights_sha256"] == read_config(folder)["weights_sha256"]
    assert Settings(model_dir="synthetic").model_dir != Settings().model_dir


def test_vote_min_clips_reaches_the_vote(predictor, videos, tmp_path, model_dir):
    # longer than the video: no expression holds that long, so every clip votes, the calm ones too
    settings = Settings(model_dir=model_dir, storage_dir=tmp_path, vote_min_clips=1000)
    result = analyse_video(videos["face_gap_face"], predictor, settings)
    face = [c for c in result["clips"] if c["face"]]
    probs = np.array([[c["probabilities"][k] for k in predictor.classes] for c in face])
    labels = [predictor.classes.index(c["label"]) for c in face]
    assert result["expression"] == predictor.classes[majority_vote(labels, probs, len(predictor.classes))[0]]
    with pytest.raises(ValueError, match="vote_min_clips"):
        Settings(vote_min_clips=0)


def test_peak_is_the_clip_most_sure_of_the_winner(predictor, videos, tmp_path, model_dir):
    settings = Settings(model_dir=model_dir, storage_dir=tmp_path)
    result = analyse_video(videos["astronaut_mp4"], predictor, settings, out_dir=tmp_path / "png")
    scores = [c["probabilities"][result["expression"]] for c in result["clips"]]
    # probabilities are reported to 4 decimals, so near-certain clips can tie: the peak is one of the most sure
    assert scores[result["peak"]["clip"]] == max(scores)
    assert result["peak"]["frame"] == result["clips"][result["peak"]["clip"]]["end_frame"]
    assert (tmp_path / "png" / "peak.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("radius, min_run, bias", [(0, 1, 0), (1, 5, None)])  # None: the checkpoint's own prior
def test_segments_are_the_decided_labels_in_runs_and_tile_the_video(
    predictor, videos, tmp_path, model_dir, radius, min_run, bias
):
    settings = Settings(
        model_dir=model_dir, storage_dir=tmp_path, vote_smooth_clips=radius, vote_min_clips=min_run, neutral_bias=bias
    )
    result = analyse_video(videos["face_gap_face"], predictor, settings)
    clips, segments = result["clips"], result["segments"]
    assert None in [s["label"] for s in segments]  # the blank stretch is its own segment
    face = [c for c in clips if c["face"]]
    probs = np.array([[c["probabilities"][k] for k in predictor.classes] for c in face])
    _, _, decided = decide_video(
        probs,
        len(predictor.classes),
        abstain=predictor.classes.index("neutral"),
        radius=radius,
        min_run=min_run,
        abstain_bias=neutral_bias(predictor, settings),
    )
    labels = iter(predictor.classes[k] for k in decided)
    expected = merge_short_runs([next(labels) if c["face"] else None for c in clips], min_run)
    assert [(s["label"], s["clips"]) for s in segments] == [(label, b - a + 1) for label, a, b in label_runs(expected)]
    if (radius, min_run, settings.neutral_bias) == (
        0,
        1,
        0,
    ):  # the paper's vote: the timeline is every clip's own label
        assert expected == [c["label"] for c in clips]
    assert sum(s["clips"] for s in segments) == len(clips)
    assert segments[0]["start_s"] == clips[0]["start_s"] and segments[-1]["end_s"] == clips[-1]["end_s"]
    for before, after in itertools.pairwise(segments):
        assert before["end_s"] == after["start_s"] and before["label"] != after["label"]


def test_detecting_every_third_frame_still_tracks_the_face(predictor, videos, tmp_path, model_dir):
    settings = Settings(model_dir=model_dir, storage_dir=tmp_path, detect_every=3)
    result = analyse_video(videos["astronaut_mp4"], predictor, settings)
    assert result["faces"]["frames_with_face"] == 40


def test_frame_cap_stops_decoding(predictor, videos, tmp_path, model_dir):
    settings = Settings(model_dir=model_dir, storage_dir=tmp_path, max_frames=20)
    assert analyse_video(videos["astronaut_mp4"], predictor, settings)["video"]["frames"] == 20


def test_flip_average_is_the_mean_of_a_clip_and_its_mirror(predictor, videos, tmp_path, model_dir):
    flipped = Predictor(model_dir, flip_average=True)
    crops = preprocess_video_file(videos["astronaut_mp4"], predictor.crop)
    clips = crops[clip_indices(len(crops))]
    plain, maps = predictor.predict(clips)
    mirror, _ = predictor.predict(np.ascontiguousarray(clips[..., ::-1]))
    both, both_maps = flipped.predict(clips)
    # relative: a confident checkpoint's probabilities are near 0 and 1, where plain and mirror
    # differ by less than any fixed tolerance that float32 batching allows
    tol = {"rtol": 1e-3, "atol": 1e-8}
    np.testing.assert_allclose(both, (plain + mirror) / 2, **tol)
    np.testing.assert_allclose(both_maps, maps, atol=2e-5)  # the maps are of the clip as shown
    assert not np.allclose(
        plain, mirror, **tol
    )  # at that tolerance the mirror is another input, or the test proves nothing
    # through the served pipeline (frame features shared between clips) the same numbers come out
    settings = Settings(model_dir=model_dir, storage_dir=tmp_path, detect_every=1)  # the training readers' crops
    result = analyse_video(videos["astronaut_mp4"], flipped, settings)
    reported = flipped.calibrated(both)  # at the checkpoint's temperature
    np.testing.assert_allclose(
        [[c["probabilities"][k] for k in flipped.classes] for c in result["clips"]], reported, atol=2e-4
    )
    assert result["model"]["flip_average"] is True


def test_a_calm_talking_face_gets_a_quieter_timeline_from_evidence_over_time(
    predictor, tmp_path, model_dir, monkeypatch
):
    """A drawn face talking calmly for 4 s, scored by an unsure model: the served rule (smoothed
    probabilities, runs of at least VOTE_MIN_CLIPS) changes label less often than each clip's own
    label does, and keeps each clip's own label. The served checkpoint itself may read this face
    steadily (the ones trained on talking faces do, at p(neutral) near 1), so its probabilities are
    mixed 40:60 with a seeded random class every clip, as an unsure model's would flicker: what is
    tested is the pipeline's rule on the timeline, not the checkpoint. Both read without the prior
    for neutral (NEUTRAL_BIAS=0), which would otherwise outweigh the flicker on such a face."""
    from videos import write_video

    from training.synthesis import drawn, drawn_face, motion

    rng = np.random.default_rng(11)
    perf = motion.performance(120, 30, rng, talking=True, expression=None)
    frames, _ = drawn.render_performance(drawn_face.make_subject(np.random.default_rng(5)), "neutral", perf, rng)
    video = write_video(tmp_path / "talking.mp4", frames)
    score = predictor.score

    def unsure(seed):
        noise = np.random.default_rng(seed)

        def scored(feats):
            probs, maps = score(feats)
            flicker = np.eye(probs.shape[1])[noise.integers(0, probs.shape[1], len(probs))]
            return 0.4 * probs + 0.6 * flicker, maps

        return scored

    monkeypatch.setattr(predictor, "score", unsure(3))
    plain = analyse_video(
        video,
        predictor,
        Settings(model_dir=model_dir, storage_dir=tmp_path, vote_smooth_clips=0, vote_min_clips=1, neutral_bias=0.0),
    )
    monkeypatch.setattr(predictor, "score", unsure(3))  # the same flicker, clip for clip
    served = analyse_video(video, predictor, Settings(model_dir=model_dir, storage_dir=tmp_path, neutral_bias=0.0))
    assert [c["label"] for c in plain["clips"]] == [
        c["label"] for c in served["clips"]
    ]  # each clip's own label is kept
    assert len(plain["segments"]) > 10
    assert len(served["segments"]) < len(plain["segments"]) / 2
    assert (
        all(s["clips"] >= Settings().vote_min_clips for s in served["segments"][:-1] if s["label"] is not None)
        or len(served["segments"]) == 1
    )


def test_a_video_without_a_face_is_the_no_face_error(predictor, videos, tmp_path, model_dir):
    from training.video import VideoError

    with pytest.raises(VideoError) as e:
        analyse_video(videos["no_face"], predictor, Settings(model_dir=model_dir, storage_dir=tmp_path))
    assert e.value.code == "no_face"


def by_side(result: dict) -> dict[str, dict]:
    """The people of a two-person result as left and right, by where their face was at the peak."""
    people = sorted(result["people"], key=lambda p: p["box_at_peak"]["x"])
    return {"left": people[0], "right": people[1]}


def test_two_people_side_by_side_each_get_their_own_expression(predictor, people_videos, tmp_path, model_dir):
    result = analyse_video(
        people_videos["side"], predictor, Settings(model_dir=model_dir, storage_dir=tmp_path), out_dir=tmp_path
    )
    assert result["faces"] | {"people": 2, "most_in_frame": 2, "dropped": 0} == result["faces"]
    assert len(result["people"]) == 2 and all(p["scored"] and p["frames"] == 48 for p in result["people"])
    people = by_side(result)
    assert (
        people["left"]["expression"] == "happy" and people["right"]["expression"] == "neutral"
    )  # the smiler, the calm one
    assert {s["label"] for s in people["left"]["segments"]} == {"happy"}
    assert {s["label"] for s in people["right"]["segments"]} == {"neutral"}
    # the top level is the main person's (both seen in every frame: the first found)
    main = result["people"][0]
    assert [result[k] for k in ("expression", "votes", "peak")] == [main[k] for k in ("expression", "votes", "peak")]
    # its maps also under the names of results before people were told apart
    assert result["attention_maps"] == [
        {**m, "name": m["name"].removeprefix(f"person{main['id']}_")} for m in main["attention_maps"]
    ]
    assert (tmp_path / "peak.png").read_bytes() == (tmp_path / f"person{main['id']}_peak.png").read_bytes()
    for p in result["people"]:  # each person's own pictures
        names = [m["name"] for m in p["attention_maps"]] + [p["thumbnail"]["name"]]
        assert names == [
            f"person{p['id']}_peak",
            f"person{p['id']}_peak_clip",
            f"person{p['id']}_peak_evidence",
            f"person{p['id']}_face",
        ]
        assert all((tmp_path / f"{n}.png").read_bytes().startswith(b"\x89PNG") for n in names)


def test_a_person_who_leaves_is_seen_until_they_go_and_the_other_stays_main(
    predictor, people_videos, tmp_path, model_dir
):
    result = analyse_video(people_videos["leave"], predictor, Settings(model_dir=model_dir, storage_dir=tmp_path))
    people = by_side(result)
    assert people["left"]["frames"] == 48 and people["left"]["expression"] == "happy"
    gone = people["right"]
    assert (
        gone["expression"] == "neutral" and 25 <= gone["frames"] <= 40 and gone["last_s"] < 1.4
    )  # out of frame by ~1.2 s
    assert result["people"][0] is people["left"] and result["expression"] == "happy"  # the main person: seen longest
    assert gone["clips"][-1]["end_frame"] < 47  # their clips end near when they left


def test_two_people_crossing_are_not_swapped(predictor, people_videos, tmp_path, model_dir):
    """The smiler walks right in front of the calm person, who walks left: each keeps their own
    answer through the crossing, where the calm face is hidden for a while."""
    result = analyse_video(people_videos["cross"], predictor, Settings(model_dir=model_dir, storage_dir=tmp_path))
    assert len(result["people"]) == 2
    for p in result["people"]:
        labels = {s["label"] for s in p["segments"]} - {None}
        assert labels == {p["expression"]}, p["segments"]  # one expression all along: no track took the other person
    assert sorted(p["expression"] for p in result["people"]) == ["happy", "neutral"]


def test_a_face_seen_for_three_frames_is_listed_but_not_scored(predictor, people_videos, tmp_path, model_dir):
    settings = Settings(model_dir=model_dir, storage_dir=tmp_path)
    result = analyse_video(people_videos["brief"], predictor, settings, out_dir=tmp_path)
    assert [p["scored"] for p in result["people"]] == [True, False]
    brief = result["people"][1]
    assert (
        brief["frames"] <= 3 + 2 * predictor.crop.smooth_radius and brief["expression"] is None and brief["clips"] == []
    )
    # from frame 32, or the skipped frame before it where the detector looks at every k-th frame only
    first = (32 - (settings.detect_every - 1)) / 30
    assert first - 0.01 <= brief["first_s"] <= 1.1 and brief["thumbnail"]["name"] == f"person{brief['id']}_face"
    assert result["expression"] == "happy" and result["faces"]["people"] == 2


def test_more_faces_than_max_faces_keeps_the_largest_and_says_how_many_were_left(
    predictor, people_videos, tmp_path, model_dir
):
    result = analyse_video(
        people_videos["cross"], predictor, Settings(model_dir=model_dir, storage_dir=tmp_path, max_faces=1)
    )
    assert result["faces"]["dropped"] == 1 and result["faces"]["max_faces"] == 1
    assert result["expression"] == "happy"  # the smiler's face is the larger
    assert all(p["expression"] in (None, "happy") for p in result["people"])


def test_two_people_crossing_keep_their_own_tracks(predictor, people_videos, tmp_path, model_dir):
    """Each person's track (their face box on every frame they were seen in) follows their own face
    through the crossing: the smiler's box moves right with the smiler's picture, the calm one's left
    with theirs, on both sides of the frames where the calm face is hidden (conftest's `cross`)."""
    result = analyse_video(people_videos["cross"], predictor, Settings(model_dir=model_dir, storage_dir=tmp_path))
    fps = result["video"]["fps"]
    # where each picture's face is drawn (the London tiles are centred on the face): centre x by frame
    drawn = {"happy": lambda i: -20 + 8 * i + 90, "neutral": lambda i: 500 - 8 * i + 65}
    for p in result["people"]:
        track = p["track"]
        assert set(track) == {"t", "x", "y", "w", "h"} and all(len(v) == p["frames"] for v in track.values())
        assert track["t"] == sorted(track["t"]) and track["t"][0] == p["first_s"]
        frames = [round(t * fps) for t in track["t"]]
        centres = [x + w / 2 for x, w in zip(track["x"], track["w"])]
        assert all(abs(c - drawn[p["expression"]](i)) < 30 for i, c in zip(frames, centres)), (
            p["expression"],
            frames,
            centres,
        )
        assert min(frames) < 25 and max(frames) > 38, frames  # seen before and after they cross (near frame 31)
    # the track's box at the peak frame is the box_at_peak
    for p in result["people"]:
        at = p["track"]["t"].index(p["peak"]["time_s"])
        assert {k: p["track"][k[0]][at] for k in ("x", "y", "width", "height")} == p["box_at_peak"]


@pytest.mark.parametrize("video", ["astronaut_mp4", "brief"])  # brief: a person seen too briefly to be scored
def test_a_result_is_the_result_model_as_json_field_for_field(predictor, videos, request, tmp_path, model_dir, video):
    """One definition of the result (service/schemas.py, docs/api.md): a real result validates as `Result`,
    dumps back to the same JSON byte for byte (the order of its keys included), and holds every field of
    every model but the two it never had: an image's `url` (the API adds it) and the single-frame pictures' `frames`."""
    import json

    from service import schemas

    path = videos[video] if video in videos else request.getfixturevalue("people_videos")[video]
    result = analyse_video(
        path, predictor, Settings(model_dir=model_dir, storage_dir=tmp_path), out_dir=tmp_path / "png"
    )
    model = schemas.Result.model_validate(result)
    assert json.dumps(model.stored()) == json.dumps(result)

    def fields(m) -> list[str]:
        return list(type(m).model_fields)

    def unsent(m) -> set[str]:
        return {"url", *([] if m.frames else ["frames"])} if isinstance(m, schemas.AttentionMap) else {"url"}

    assert list(result) == fields(model)
    for person, entry in zip(model.people, result["people"]):
        assert list(entry) == fields(person)
        for clip, row in zip(person.clips, entry["clips"]):
            assert list(row) == fields(clip)
        images = person.attention_maps + ([person.thumbnail] if person.thumbnail else [])
        shown = entry["attention_maps"] + ([entry["thumbnail"]] if entry["thumbnail"] else [])
        assert images and [list(i) for i in shown] == [[f for f in fields(m) if f not in unsent(m)] for m in images]
    assert {m["name"] for m in result["attention_maps"]} == {"peak", "peak_clip", "peak_evidence"}
    assert any(not p["scored"] for p in result["people"]) == (video == "brief")
