"""Task metrics on the coordinator: eval sets from the files people have, and the metrics
of the predictions the board decoded (the board's side: ``devices/agent/tasks``).

- ``data.py``: an ImageFolder tree, a COCO JSON with its images, or images with label
  masks, preprocessed once (pillow) into an npz cached by content hash.
- ``plan.py``: a suite model's task as the board's ``TaskSettings`` plus what stays here
  (a user decoder, a custom metric, the eval npz).
- ``metrics.py``: top-1/top-k, COCO mAP (pycocotools), mIoU and pixel accuracy, custom.
- ``score.py``: a job's result scored: the board's predictions in, the metrics out.

docs/tasks.md describes all of it.
"""
