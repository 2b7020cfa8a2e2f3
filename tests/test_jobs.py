"""The job queue (service/jobs.py) against the tests' real Redis: a job submitted, read back, taken
by a worker and failed with the reason a client is shown; the images a result's view links to."""

from __future__ import annotations

from rq.serializers import JSONSerializer
from rq.worker import SimpleWorker

from service import jobs, worker


class PlainWorker(SimpleWorker):
    """RQ's in-process worker without the model, stopping at once as the service's does (its listener
    for commands reads a second at a time, not RQ's 60 s)."""

    subscribe = worker.ModelWorker.subscribe


def test_a_submitted_job_is_queued_with_its_storage_keys_then_fails_saying_its_upload_is_gone(settings, monkeypatch):
    redis = jobs.connect(settings)
    queue = jobs.make_queue(redis, settings)
    job_id = jobs.new_job_id()
    jobs.submit(queue, settings, job_id, {"filename": "clip.mp4"})

    job = jobs.fetch(queue, job_id)
    assert job is not None and job.kwargs == {"upload": f"uploads/{job_id}.video", "results": f"results/{job_id}"}
    assert job.meta["filename"] == "clip.mp4" and job.timeout == settings.job_timeout_s
    assert jobs.job_view(job) == {
        "job_id": job_id,
        "status": "queued",
        "progress": {"stage": "queued"},
        "result": None,
        "error": None,
    }
    assert jobs.queue_depth(queue) == 1
    assert jobs.fetch(queue, jobs.new_job_id()) is None  # well formed, never submitted
    assert jobs.fetch(queue, "../" + job_id) is None  # not an id: never looked up

    # A worker takes it (RQ's own, without the model: the job fails before it would need one), and
    # no upload was stored under its key.
    monkeypatch.setattr(worker, "_settings", None)  # the process's job settings, put back afterwards
    monkeypatch.setattr(worker, "_storage", None)
    worker.use_settings(settings)
    PlainWorker([queue], connection=redis, serializer=JSONSerializer).work(burst=True, logging_level="WARNING")
    view = jobs.job_view(jobs.fetch(queue, job_id))
    assert view["status"] == "failed" and view["result"] is None
    assert view["error"] == jobs.UPLOAD_MISSING and view["progress"] == {"stage": "failed"}
    assert jobs.queue_depth(queue) == 0


def test_every_image_of_a_result_is_listed_for_its_view():
    """The main person's maps, then each person's maps and picture (a person seen without one has none)."""
    result = {
        "attention_maps": [{"name": "peak"}, {"name": "mean"}],
        "people": [
            {"attention_maps": [{"name": "peak"}, {"name": "mean"}], "thumbnail": {"name": "person_1"}},
            {"attention_maps": [{"name": "person_2_peak"}], "thumbnail": None},
        ],
    }
    names = [image["name"] for image in jobs.result_images(result)]
    assert names == ["peak", "mean", "peak", "mean", "person_1", "person_2_peak"]
    assert jobs.result_images({"attention_maps": []}) == []
