"""The live route: WS /live (service/live.py runs each session), and GET /live, which describes the
protocol in the OpenAPI document (its messages: service/schemas.py, LiveStart ... LiveError)."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from service import live
from service.errors import ApiError
from service.guards import key_is_valid
from service.schemas import ErrorBody

router = APIRouter()


@router.get(
    "/live",
    status_code=426,
    responses={426: {"model": ErrorBody, "description": "not a WebSocket request"}},
    summary="Live: a camera stream analysed as it happens (WebSocket)",
)
def live_protocol():
    """**A WebSocket** (`ws://HOST/live`, `wss://` behind TLS); a plain GET answers 426. The protocol
    (docs/api.md, "Live"; each message's schema is below, LiveStart to LiveError, and listed under this
    operation's `x-websocket-messages`):

    1. Client: a text message `{"type": "start", "fps": 15}` (the rate it will send at, 1-60), with
       `"api_key": "KEY"` when the service needs keys (a browser cannot set headers; other clients
       may send `Authorization: Bearer KEY` instead).
    2. Service: `{"type": "ready", "session", "fps", "limits"}` once a live worker serves it.
    3. Client: frames, each a binary message: its capture time (8 bytes, float64 big-endian,
       seconds, increasing) then a JPEG image (at most RAMFER_LIVE_MAX_FRAME_KB).
    4. Service, as each 8-frame clip (stride 2) closes: `{"type": "clip", "clip", "person",
       "start_s", "end_s", "label", "probabilities", "face": {"x", "y", "width", "height"}}` (times are
       the client's capture times; the box in frame pixels); every RAMFER_LIVE_DECIDE_EVERY_CLIPS clips
       `{"type": "decision", "person", "expression", "confidence", "votes", "clips", "start_s",
       "end_s", "attention", "frames_received", "frames_analysed", "dropped", "fps_analysed"}`: the
       service's decision rule over the last RAMFER_LIVE_WINDOW_S seconds, where the network looked
       (an h x w grid over the face box), and how many frames were dropped because they came
       faster than the worker read them (only the newest RAMFER_LIVE_BUFFER_FRAMES wait).
    5. Client: `{"type": "stop"}`; service: the last clips, a decision, `{"type": "end", ...counts}`,
       close 1000.

    Errors: `{"type": "error", "code", "message"}`, then a close with code 4000 + the HTTP status
    that means the same: 4400 bad_message, bad_frame, frame_out_of_order, frame_size_changed;
    4401 unauthorized; 4408 idle_timeout, not_reading; 4413 frame_too_large, resolution_too_large;
    4429 too_many_sessions; 4503 no_live_worker, worker_lost, redis_unavailable; 4500 internal_error."""
    raise ApiError(
        426,
        "websocket_required",
        "GET /live is a WebSocket: connect with ws:// (see this route's description).",
        {"Upgrade": "websocket"},
    )


@router.websocket("/live")
async def live_socket(websocket: WebSocket):
    app = websocket.app
    if app.state.live_redis is None:
        app.state.live_redis = live.connect(app.state.settings)
    await live.run_session(websocket, app.state.settings, app.state.live_redis, key_is_valid)
