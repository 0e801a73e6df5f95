"""Task metrics on the board's own outputs: decode what the timed runtime instance returns.

The agent runs the eval set with the runtime it timed (docs/measurement.md, trap 7),
turns each batch's outputs into compact predictions here, in numpy, and sends those back;
the coordinator computes the metric (``harness.tasks``). One decoder per file, one table
of them (``registry.py``):

- ``classification.py``: the top-k classes per image.
- ``yolov8.py``, ``yolov5.py``, ``ssd.py``: detection heads to boxes, scores and classes;
  ``nms.py`` keeps the best per class (greedy NMS, as Ultralytics' and torchvision's).
- ``segmentation.py``: per-image confusion counts of argmax classes against label masks.
- ``evaluate.py``: the loop over the eval set, timing pre-processing, inference and
  post-processing apart; ``pack.py``: arrays as one base64 npz in the result event.
"""
