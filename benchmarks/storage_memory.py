"""How much memory writing and reading a dataset takes, against the dataset's own size in memory.

    python benchmarks/storage_memory.py [--rows 100000] [--s3] [--formats jsonl parquet]

Rows (~300-450 bytes of JSON each) are generated lazily. For each format it writes them through
`DatasetWriter` in parts of 1,000 rows (to a single file and to a directory) and through
`write_rows` from a generator, then reads each back with `read_rows`, counting rows.

Wall times come from an untraced run; peak memory from a second run of the same step under
tracemalloc (which slows Python down, so its times are not shown), plus the peak of Arrow's own
allocations (Parquet buffers), which tracemalloc does not see. "Dataset as Python objects" is
measured, not estimated: the full list of rows is built once under tracemalloc, then dropped.
With --s3 a moto S3 server runs on 127.0.0.1 in a child process, so the objects it stores do not
count towards this process's memory.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import itertools
import os
import sys
import tempfile
import threading
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distilflow.storage import DatasetWriter, filesystem, read_rows, write_rows
from distilflow.storage.testing import moto_s3_server

PART_ROWS = 1000
WORDS = ["distilled", "synthetic", "data", "flows", "through", "prefect", "tasks", "while", "models", "answer",
         "every", "prompt"]


def rows(count: int) -> Iterator[dict]:
    for i in range(count):
        words = [WORDS[(i * 7 + k) % len(WORDS)] for k in range(12 + i % 10)]
        yield {
            "id": i,
            "instruction": f"Question {i}: explain why " + " ".join(words) + "?",
            "generation": "Because " + " ".join(reversed(words)) + f" (answer {i}).",
            "model_name": "distilflow-simulator",
            "distilabel_metadata": {"statistics_text_generation_0": {"input_tokens": 20 + i % 13,
                                                                      "output_tokens": 40 + i % 17}},
        }


def write_parts(uri: str, count: int, fmt: str | None = None) -> int:
    with DatasetWriter(uri, format=fmt) as writer:
        source = rows(count)
        for index in itertools.count():
            chunk = list(itertools.islice(source, PART_ROWS))
            if not chunk:
                break
            writer.write_part(index, chunk)
        return writer.commit()


def count_rows(uri: str) -> int:
    return sum(1 for _ in read_rows(uri))


def timed(step: Callable[[], int]) -> tuple[int, float, int, int]:
    """(result, seconds untraced, peak tracemalloc bytes, peak Arrow bytes) of `step`.

    Arrow allocates its buffers outside Python's allocator, where tracemalloc cannot see them, so
    a thread samples pyarrow.total_allocated_bytes() every millisecond during the traced run.
    """
    import pyarrow as pa

    started = time.perf_counter()
    result = step()
    seconds = time.perf_counter() - started
    arrow_base, arrow_peak, done = pa.total_allocated_bytes(), [0], threading.Event()

    def sample() -> None:
        while not done.wait(0.001):
            arrow_peak[0] = max(arrow_peak[0], pa.total_allocated_bytes() - arrow_base)

    sampler = threading.Thread(target=sample, daemon=True)
    tracemalloc.start()
    sampler.start()
    try:
        step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        done.set()
        sampler.join()
        tracemalloc.stop()
    return result, seconds, peak, arrow_peak[0]


def python_objects_size(count: int) -> int:
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        held = list(rows(count))
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del held
    return after - before


def stored_bytes(uri: str) -> int:
    fs, path = filesystem(uri)
    if fs.isfile(path):
        return fs.size(path)
    return sum(fs.du(path, total=False).values())


def use_moto(url: str) -> None:
    os.environ.update(AWS_ACCESS_KEY_ID="benchmark", AWS_SECRET_ACCESS_KEY="benchmark",
                      AWS_DEFAULT_REGION="us-east-1", AWS_ENDPOINT_URL=url)
    os.environ.pop("DISTILFLOW_S3_CREDENTIALS_BLOCK", None)


def mib(n: int) -> str:
    return f"{n / 2**20:8.1f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--s3", action="store_true", help="write to a moto S3 server on loopback")
    parser.add_argument("--formats", nargs="+", default=["jsonl", "parquet"], choices=["jsonl", "parquet"])
    args = parser.parse_args()

    with contextlib.ExitStack() as stack:
        if args.s3:
            import boto3

            use_moto(stack.enter_context(moto_s3_server()))
            bucket = f"bench-{uuid.uuid4().hex[:8]}"
            boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"]).create_bucket(Bucket=bucket)
            root, where = f"s3://{bucket}", f"S3 (moto on {os.environ['AWS_ENDPOINT_URL']})"
        else:
            root = tempfile.mkdtemp(prefix="distilflow-bench-")
            where = f"local disk ({root})"
        in_memory = python_objects_size(args.rows)
        print(f"{args.rows} rows, written to {where}")
        print(f"dataset as Python objects (list of dicts, measured with tracemalloc): {mib(in_memory).strip()}")
        print(f"{'step':44} {'rows':>8} {'on storage':>13} {'wall':>8} {'peak traced':>13} {'peak Arrow':>13}")
        for fmt in args.formats:
            steps = [
                (f"DatasetWriter, parts of {PART_ROWS} -> one .{fmt}", f"{root}/parts.{fmt}",
                 lambda uri: write_parts(uri, args.rows)),
                (f"DatasetWriter, parts of {PART_ROWS} -> directory", f"{root}/{fmt}-dataset/",
                 lambda uri, fmt=fmt: write_parts(uri, args.rows, fmt)),
                (f"write_rows(generator) -> one .{fmt}", f"{root}/generated.{fmt}",
                 lambda uri: write_rows(uri, rows(args.rows))),
            ]
            for label, uri, write in steps:
                count, seconds, peak, arrow = timed(functools.partial(write, uri))
                size = mib(stored_bytes(uri))
                print(f"{label:44} {count:8d} {size:>13} {seconds:7.2f}s {mib(peak):>13} {mib(arrow):>13}")
                count, seconds, peak, arrow = timed(functools.partial(count_rows, uri))
                print(f"{'  read_rows, counting':44} {count:8d} {'':>13} {seconds:7.2f}s {mib(peak):>13} {mib(arrow):>13}")


if __name__ == "__main__":
    main()
