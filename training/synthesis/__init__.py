"""Synthetic training data: faces that move as people's do, in the CK+ layout.

Two renderers, each split by idea, and what they share:

* drawn faces, from a parametric shape model (no data needed):
    `drawn_face`         who a face is, and its 68 points
    `drawn_paint`        painting the face from its points
    `drawn`              rendering: expressions, the scene around the face, sequences, performances
    `drawn_dataset`      the CK+ tree and the talking videos on disk
* photo-real faces, real studio photos (the London set, the user's copy) warped along FACS action units:
    `london`             the set on disk: finding it, its people, the held-out folds, morph pairs
    `template`           its 189-point face template
    `identity`           a person ready to animate: photo, triangulation, aligned real smile, morphs
    `smile`              how broad a person's real smile is, and faint smiles made of it
    `warp`               the piecewise-affine warp of a photo over the triangulated template
    `texture`            what a warp cannot make: creases and the mouth interior
    `photoreal`          rendering: expressions, the camera, sequences, performances
    `photoreal_dataset`  the CK+ tree and the talking videos on disk
* both:
    `facs`               the classes, FACS action units and emotion prototypes of both renderers
    `speech`             speech's mouth shapes on both renderers' points
    `motion`             what both renderers animate: speech (jaw and lips), head turns, nods and drift,
                         blinks, gaze, and how an expression comes and goes over time
    `studio`             backdrops, key lights and cameras (`training synth --studio`)
    `contact_sheet`      one picture of a data set, a row per class
"""
