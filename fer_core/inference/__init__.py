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
    warmup         the app's background preload of the default model

May import fer_core's foundation (errors, labels, paths, preprocess, colors, charts), fer_core.data
and fer_core.store; never training, cli or Streamlit (tests/test_layout.py).

Import names from the module that defines them (`from fer_core.inference.<module> import ...`): this
package declares no API of its own (tests/test_layout.py).
"""
