"""Synthetic training data: faces that move as people's do, in the CK+ layout.

* `drawn`     faces this project draws from a parametric shape model (no data needed);
* `photoreal` real studio photos (the London set, the user's copy) warped along FACS action units;
* `motion`    what both renderers animate: speech (jaw and lips), head turns, nods and drift,
              blinks, gaze, and how an expression comes and goes over time.
"""
