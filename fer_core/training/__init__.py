"""Training: architectures, settings, the tf.data pipeline, the run loop, resume, background jobs.

    architectures, networks   the model registry and its layer graphs
    config         TrainConfig (validated settings), the cosine schedule
    precision      float32 / bf16 (mixed precision where the hardware runs it)
    pipeline       tf.data input (autotune off), augmentation
    feeding        the feed of the active Keras backend (tf.data, or NumPy batches under JAX)
    split          the arrays a run trains on: train / validation split, class weights
    camera_shifts  webcam-like augmentation (blur, JPEG, noise, light, low resolution, occlusion)
    calibrate      a run's calibration temperature, fitted on its own validation split
    run_state      RunState: what the loop and its callbacks share; disk-full guard; signals
    callbacks      the run's Keras callbacks: stop, best checkpoint, epoch events, resume checkpoint
    loop           train(): one run in the store, start to end
    resuming       resume(): continue a stopped / failed / killed run
    jobs           training as a subprocess of the app: start, follow, stop, resume
    worker         the subprocess's side of that contract (docs/DESIGN.md)

May import fer_core's foundation, fer_core.data and fer_core.store; never inference, cli, charts
or Streamlit (tests/test_layout.py).

Import names from the module that defines them (`from fer_core.training.<module> import ...`): this
package declares no API of its own (tests/test_layout.py).
"""
