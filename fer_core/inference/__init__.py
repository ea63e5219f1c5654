"""Using a model: images in, faces found, emotions out; the webcam pipeline; evaluation.

    images         decode uploads and files to BGR, safely (size limits)
    boxes, faces   face boxes and the detectors (YuNet, Haar, MTCNN)
    classifier     EmotionClassifier: one compiled call for a batch of faces
    results        FacePrediction: one face's result, on every path
    batch_predict  photos -> faces -> emotions, annotated images, CSV
    sources        files, folders and zips of photos, predicted chunk by chunk
    realtime       FramePipeline: detect / track / classify / smooth / draw per camera frame
                   (with frames, overlay, tracking); webrtc: the browser stream's glue
    saliency       Grad-CAM
    evaluation     metrics of a stored model on a labelled split
    detector_cases, detector_eval   how well a face detector does on real faces
    warmup         the app's background preload of the default model

May import fer_core's foundation (errors, labels, paths, preprocess, colors, charts), fer_core.data
and fer_core.store; never training, cli or Streamlit (tests/test_layout.py).
"""

from __future__ import annotations

from fer_core.lazy import lazy_getattr

# public name -> the module of this package that defines it (imported on first use, so importing
# the package costs nothing and pulls in no TensorFlow)
_API = {
    "load_image_bytes": "images",
    "load_image_file": "images",
    "ensure_bgr": "images",
    "Box": "boxes",
    "make_detector": "faces",
    "available_detectors": "faces",
    "FaceDetector": "faces",
    "EmotionClassifier": "classifier",
    "FacePrediction": "results",
    "predict_images": "batch_predict",
    "ImageSource": "sources",
    "path_sources": "sources",
    "zip_sources": "sources",
    "predict_sources": "sources",
    "FramePipeline": "realtime",
    "evaluate_run": "evaluation",
    "evaluate_model": "evaluation",
    "compute_metrics": "evaluation",
    "grad_cam": "saliency",
    "evaluate_detector": "detector_eval",
    "LoadCache": "warmup",
    "rtc_configuration": "webrtc",
    "webrtc_callback": "webrtc",
}
__all__ = sorted(_API)
__getattr__ = lazy_getattr(__name__, _API)
