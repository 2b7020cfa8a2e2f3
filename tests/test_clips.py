import numpy as np
import pytest

from training.clips import clip_indices, label_runs, majority_vote


@pytest.mark.parametrize("n", [8, 9, 10, 11, 17, 20, 71])
def test_clips_are_8_frames_stride_2_and_cover_every_frame(n):
    clips = clip_indices(n)
    assert clips.shape[1] == 8
    assert (np.diff(clips, axis=1) == 1).all()  # consecutive frames
    starts = clips[:, 0]
    regular = np.arange(0, n - 8 + 1, 2)
    assert starts[: len(regular)].tolist() == regular.tolist()  # stride 2: 6 frames of overlap
    assert clips[-1, -1] == n - 1  # the last frame (CK+'s peak) is always in a clip
    assert set(clips.ravel()) == set(range(n))


def test_odd_tail_gets_one_clip_aligned_to_the_end():
    assert clip_indices(11)[:, 0].tolist() == [0, 2, 3]
    assert clip_indices(10)[:, 0].tolist() == [0, 2]  # already ends on the last frame


@pytest.mark.parametrize("n", [1, 3, 7])
def test_short_video_is_one_clip_with_the_first_frame_repeated_in_front(n):
    clips = clip_indices(n)
    assert clips.shape == (1, 8)
    assert clips[0].tolist() == [0] * (8 - n) + list(range(n))


def test_no_frames_no_clips():
    assert clip_indices(0).shape == (0, 8)


def test_majority_vote():
    winner, votes = majority_vote([4, 4, 1, 4, 6], num_classes=7)
    assert winner == 4 and votes.tolist() == [0, 2 - 1, 0, 0, 3, 0, 1]


def test_tie_goes_to_the_class_with_more_probability_then_the_lower_index():
    probs = np.array([[0.1, 0.9, 0], [0.2, 0.8, 0], [0.6, 0.4, 0], [0.55, 0.45, 0]])
    # 2 votes each; class 1 has the larger summed probability over all clips
    assert majority_vote([1, 1, 0, 0], probs)[0] == 1
    assert majority_vote([1, 1, 0, 0], num_classes=3)[0] == 0


def test_abstaining_class_only_wins_alone():
    neutral = 7
    winner, votes = majority_vote([7, 7, 7, 7, 4, 4], num_classes=8, abstain=neutral)
    assert winner == 4 and votes[neutral] == 4  # reported, but does not outvote the expression
    assert majority_vote([7, 7, 7], num_classes=8, abstain=neutral)[0] == neutral


def test_min_run_keeps_one_clip_blips_from_outvoting_the_calm():
    neutral = 7
    blip = [7, 7, 7, 4, 7, 7, 7, 7]  # one clip where a still face starts to move
    assert majority_vote(blip, num_classes=8, abstain=neutral)[0] == 4  # the rule: any clip counts
    assert majority_vote(blip, num_classes=8, abstain=neutral, min_run=3)[0] == neutral
    held = [7, 2, 7, 4, 4, 4, 7, 2]  # a held expression still outvotes the calm and the blips
    assert majority_vote(held, num_classes=8, abstain=neutral, min_run=3)[0] == 4
    # shorter than min_run: every clip votes, and here the calm has most
    assert majority_vote([7, *held], num_classes=8, abstain=neutral, min_run=4)[0] == neutral
    # no run long enough and no calm to fall back on: every clip votes (a one-clip video too)
    assert majority_vote([1, 4, 1], num_classes=8, abstain=neutral, min_run=3)[0] == 1
    assert majority_vote([5], num_classes=8, abstain=neutral, min_run=3)[0] == 5
    _winner, votes = majority_vote(blip, num_classes=8, abstain=neutral, min_run=3)
    assert votes.tolist() == [0, 0, 0, 0, 1, 0, 0, 7]  # every clip is still counted and reported


def test_vote_needs_clips():
    with pytest.raises(ValueError):
        majority_vote([])


def test_label_runs_merge_consecutive_clips_only():
    assert label_runs(["neutral", "neutral", "sadness", None, "happy", "happy", "neutral"]) == [
        ("neutral", 0, 1),
        ("sadness", 2, 2),
        (None, 3, 3),
        ("happy", 4, 5),
        ("neutral", 6, 6),
    ]
    assert label_runs([4, 4, 4]) == [(4, 0, 2)]
    assert label_runs([]) == []


def test_smoothing_averages_neighbours_and_radius_0_keeps_clips():
    from training.clips import smooth_probabilities

    p = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    assert np.array_equal(smooth_probabilities(p, 0), p)
    s = smooth_probabilities(p, 1)
    assert np.allclose(s[0], [0.5, 0.5]) and np.allclose(s[1], [2 / 3, 1 / 3]) and np.allclose(s[3], [1.0, 0.0])
    assert np.allclose(s.sum(1), 1)


def test_short_runs_merge_into_the_longer_neighbour_and_no_face_stays():
    from training.clips import merge_short_runs

    assert merge_short_runs(list("aaabaaa"), 2) == list("aaaaaaa")
    assert merge_short_runs(list("aabbbbc"), 3) == list("bbbbbbb")
    assert merge_short_runs(["a", "a", None, "b", "b", "b"], 3) == ["a", "a", None, "b", "b", "b"]  # nowhere to go
    assert merge_short_runs(list("abab"), 1) == list("abab")


def test_decide_video_radius_0_is_the_vote_and_smoothing_silences_a_blip():
    from training.clips import decide_video

    neutral, happy = 7, 4
    probs = np.full((9, 8), 0.01)
    probs[:, neutral] = 0.93
    probs[4] = 0.01
    probs[4, happy] = 0.93  # one clip where the mouth opened
    winner, _votes, labels = decide_video(probs, 8, abstain=neutral)
    assert winner == happy and winner == majority_vote(probs.argmax(1), probs, 8, abstain=neutral)[0]
    winner, _votes, labels = decide_video(probs, 8, abstain=neutral, radius=2)
    assert winner == neutral and (labels == neutral).all()
    probs[2:8, :] = probs[4]  # an expression held for 6 clips survives the same smoothing
    assert decide_video(probs, 8, abstain=neutral, radius=2)[0] == happy


def test_a_prior_for_neutral_is_bayes_rule_and_only_outweighs_a_doubtful_expression():
    from training.clips import decide_video, shift_prior

    neutral, happy, sad = 7, 4, 5
    probs = np.full((6, 8), 0.02)
    probs[:, happy], probs[:, neutral] = 0.6, 0.2  # a mild smile, six clips long
    shifted = shift_prior(probs, neutral, 2.0)
    np.testing.assert_allclose(shifted.sum(1), 1.0)
    # the odds of neutral against any other class grow by exp(bias); the others' odds among themselves stay
    np.testing.assert_allclose(shifted[:, neutral] / shifted[:, happy], np.exp(2.0) * 0.2 / 0.6)
    np.testing.assert_allclose(shifted[:, sad] / shifted[:, happy], 0.02 / 0.6)
    assert shift_prior(probs, neutral, 0.0) is not None and np.array_equal(shift_prior(probs, neutral, 0.0), probs)
    assert decide_video(probs, 8, abstain=neutral, min_run=5)[0] == happy
    assert decide_video(probs, 8, abstain=neutral, min_run=5, abstain_bias=1.0)[0] == happy  # 0.6 > 0.2 e
    assert decide_video(probs, 8, abstain=neutral, min_run=5, abstain_bias=2.0)[0] == neutral  # 0.6 < 0.2 e^2
    probs[:, happy], probs[:, neutral] = 0.84, 0.02  # a clear one survives the same prior
    assert decide_video(probs, 8, abstain=neutral, min_run=5, abstain_bias=2.0)[0] == happy
    # without a class to abstain (the 7-class protocol) there is nothing to weigh
    assert decide_video(probs[:, :7], 7, abstain_bias=2.0)[0] == happy
