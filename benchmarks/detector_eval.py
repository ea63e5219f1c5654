"""Measure face detectors on real photos with known faces (recall, false positives, time).

The photos are those that ship offline with scikit-image (a test dependency) and scikit-learn:

- faces: `astronaut` (colour, frontal), `camera` (grayscale, face turned ~45 degrees),
  `lfw_subset` (100 grayscale 25x25 face crops of different people);
- no faces: `chelsea` (cat), `coffee`, `rocket`, `brick`, `grass`, `gravel`, `coins`, `horse`,
  `hubble_deep_field`, `motorcycle_left`, `page`, `text`, `moon`, `retina`, `ihc`, `cell`,
  `clock`, `logo`, `color`, sklearn's `china.jpg`, `flower.jpg`, LFW non-face crops, and blank
  / noise / gradient frames.

Known boxes: for `astronaut` and `camera` they are the consensus (mean) of YuNet and MTCNN on
the original photo (Haar agrees on astronaut, finds camera only with the profile cascade; the
numbers are recorded below). For LFW crops the box is the pasted crop. Each test frame is made
by one affine transform (scale, rotation about the face centre, placement in a 640x480 frame
over a face-free background), and the same transform maps the known box: its centre moves with
the face and its size scales (an upright box, as detectors report). Occlusions are black bars
drawn over the eyes / mouth / lower half of the face (from the landmarks).

A detection matches a known face when IoU >= 0.3 (detectors disagree on where a face box ends:
YuNet includes the forehead, Haar is square). Unmatched detections are false positives.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from fer_core.inference.boxes import Box
from benchmarks.detector_cases import Case
from fer_core.inference.faces import FaceDetector

MATCH_IOU = 0.3


def match(detections: Sequence[Box], truth: Sequence[Box], iou: float = MATCH_IOU) -> tuple[int, int]:
    """Greedy IoU matching: (true positives, false positives)."""
    pairs = sorted(((d.iou(t), i, j) for i, d in enumerate(detections) for j, t in enumerate(truth)), reverse=True)
    used_d, used_t = set(), set()
    for v, i, j in pairs:
        if v < iou:
            break
        if i not in used_d and j not in used_t:
            used_d.add(i)
            used_t.add(j)
    return len(used_t), len(detections) - len(used_d)


@dataclass
class DetectorScore:
    name: str
    recall: float
    recall_by_group: dict[str, float]
    faces: int
    found: int
    false_positives: int  # over all frames
    negative_frames_with_fp: int
    negative_frames: int
    ms_per_frame: float
    misses: list[str]

    def row(self) -> dict:
        return {
            "detector": self.name,
            "recall": round(self.recall, 3),
            **{f"recall_{g}": round(v, 3) for g, v in sorted(self.recall_by_group.items())},
            "false_positives": self.false_positives,
            "neg_frames_with_fp": f"{self.negative_frames_with_fp}/{self.negative_frames}",
            "ms_per_frame": round(self.ms_per_frame, 2),
        }


def evaluate_detector(detector: FaceDetector, cases: Iterable[Case], name: str | None = None) -> DetectorScore:
    faces = found = fps = neg_fp_frames = neg_frames = 0
    by_group: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    times = []
    misses = []
    for case in cases:
        t0 = time.perf_counter()
        dets = detector.detect(case.frame)
        times.append(time.perf_counter() - t0)
        tp, fp = match(dets, case.boxes)
        faces += len(case.boxes)
        found += tp
        fps += fp
        if case.boxes:
            by_group[case.group][0] += tp
            by_group[case.group][1] += len(case.boxes)
            if tp < len(case.boxes):
                misses.append(case.name)
        else:
            neg_frames += 1
            neg_fp_frames += int(fp > 0)
    return DetectorScore(
        name=name or getattr(detector, "name", type(detector).__name__),
        recall=found / faces if faces else math.nan,
        recall_by_group={g: a / b for g, (a, b) in by_group.items()},
        faces=faces,
        found=found,
        false_positives=fps,
        negative_frames_with_fp=neg_fp_frames,
        negative_frames=neg_frames,
        ms_per_frame=1000.0 * float(np.mean(times)) if times else math.nan,
        misses=misses,
    )
