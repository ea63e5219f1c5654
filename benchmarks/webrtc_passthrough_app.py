"""The ceiling for benchmarks/webcam_browser.py: a streamlit-webrtc app whose callback only turns
each frame into an array and back (what any processing app pays), same settings as the Webcam page."""

import av
import streamlit as st
from streamlit_webrtc import WebRtcMode, webrtc_streamer


def passthrough(frame: av.VideoFrame) -> av.VideoFrame:
    img = frame.to_ndarray(format="bgr24")
    out = av.VideoFrame.from_ndarray(img, format="bgr24")
    out.pts, out.time_base = frame.pts, frame.time_base
    return out


st.title("pass-through")
webrtc_streamer(key="passthrough", mode=WebRtcMode.SENDRECV, rtc_configuration={"iceServers": []},
                video_frame_callback=passthrough, async_processing=True,
                media_stream_constraints={"video": {"width": {"ideal": 640}, "height": {"ideal": 480}}, "audio": False})
