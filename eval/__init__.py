"""SC09 evaluation: digit classifier and automated sample metrics (docs/ARCHITECTURE.md §9).

- :mod:`eval.features`          log-mel front end (waveform → normalised log-mel image)
- :mod:`eval.classifier`        ResNeXt-style classifier, ``features`` / ``probs``, checkpoint I/O
- :mod:`eval.augment`           batched training augmentations
- :mod:`eval.train_classifier`  training loop behind ``audiomamba evaluate train-classifier``
- :mod:`eval.confusion`         confusion matrix and its plot
- :mod:`eval.kmeans`            deterministic k-means used by NDB
- :mod:`eval.metrics`           FID, IS, mIS, AM, NDB
- :mod:`eval.sample_audio`      reading a folder of generated clips with quality flags
- :mod:`eval.report`            ``audiomamba evaluate samples``: table and JSON
- :mod:`eval.clips`             an SC09 split as one waveform tensor
- :mod:`eval.synthetic`         tiny tone "digits" in the SC09 layout for tests and demos
- :mod:`eval.progress`          the rich progress bar used by the loops
"""
