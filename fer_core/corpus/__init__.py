"""Labelling a corpus: folders, zips, globs and lists of photos and videos, streamed in bounded
memory into a Parquet dataset, on this machine (the local engine, the default) or on Ray Data.

- inputs: SRC arguments -> numbered items, frozen in the job's folder
- work: one item's work (read, find faces, classify, a video through the video engine)
- rows: the table every engine writes
- output: the job's folder (manifest, shards, per-source summary, resume)
- local / ray_engine: the two engines; job: run_batch, the entry point; jobs: the app's background jobs
"""
