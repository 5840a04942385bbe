"""A pipeline over a large file, as a user runs it: time, the flow process's peak memory, Prefect's database.

    python benchmarks/pipeline_memory.py [--rows 1000000] [--batch-size 1000] [--latency 0] [--distiset]

Writes a JSONL of `--rows` instructions, then runs a pipeline script the way a user would
(`python pipeline.py --output out.jsonl`, a process of its own that starts distilflow's local
Prefect server in a fresh DISTILFLOW_HOME): LoadDataFromFileSystem >> TextGeneration >> KeepColumns
against the simulator (its own process) at `--latency`. Prints the run's wall time, the flow
process's own CPU time and peak RSS (from wait4, so children are not counted), the rows written,
and the size of the Prefect server's SQLite database after the run. With `--distiset` the script
ends as most distilabel scripts do instead: `distiset = pipeline.run()` then
`distiset.save_to_disk(...)`, so the peak includes building the Distiset and saving it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PIPELINE = textwrap.dedent('''
    import sys
    from distilflow import KeepColumns, LoadDataFromFileSystem, OpenAILLM, Pipeline, TextGeneration

    with Pipeline(name="large-file") as pipeline:
        load = LoadDataFromFileSystem(name="load", data_files=sys.argv.pop(1))
        generate = TextGeneration(name="generate", llm=OpenAILLM(model="bench", max_concurrent_requests=128))
        keep = KeepColumns(name="keep", columns=["instruction", "generation"])
        load >> generate >> keep

    if __name__ == "__main__":
        if sys.argv[1] == "--distiset":
            distiset = pipeline.run(parameters={"load": {"batch_size": int(sys.argv[3])}})
            distiset.save_to_disk(sys.argv[2])
        else:
            pipeline.main()
''')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=1000, help="the loader's batch_size (rows per task run)")
    parser.add_argument("--latency", type=float, default=0.0, help="simulator seconds per answer")
    parser.add_argument("--distiset", action="store_true", help="end with pipeline.run() and distiset.save_to_disk()")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="distilflow-pipeline-bench-"))
    source = work / "instructions.jsonl"
    with open(source, "w") as f:
        for i in range(args.rows):
            f.write(json.dumps({"instruction": f"Question {i}: explain topic number {i % 977} briefly.", "id": i}) + "\n")
    (work / "pipeline.py").write_text(PIPELINE)

    simulator = subprocess.Popen(
        [sys.executable, "-m", "distilflow.simulator", "--port", "0", "--latency", str(args.latency)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        base_url = _simulator_url(simulator)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
        env.update(OPENAI_BASE_URL=base_url, OPENAI_API_KEY="bench", DISTILFLOW_HOME=str(work / "home"),
                   DISTILFLOW_RESULTS=str(work / "results"))
        command = [sys.executable, str(work / "pipeline.py"), str(source), "--output", str(work / "out.jsonl"),
                   "--load.batch-size", str(args.batch_size), "--run.max-rows-in-flight", "10000"]
        if args.distiset:
            command = [sys.executable, str(work / "pipeline.py"), str(source), "--distiset", str(work / "distiset"),
                       str(args.batch_size)]
        started = time.perf_counter()
        with open(work / "run.log", "w") as log:
            process = subprocess.Popen(command, env=env, cwd=work, stdout=log, stderr=subprocess.STDOUT)
            _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"the pipeline failed:\n{(work / 'run.log').read_text()[-3000:]}")
        if args.distiset:
            from distilflow.distiset import Distiset

            rows_out = len(Distiset.load_from_disk(work / "distiset")["default"]["train"])
        else:
            rows_out = sum(1 for _ in open(work / "out.jsonl"))
        database = work / "home" / "prefect" / "prefect.db"
        ending = "pipeline.run() + distiset.save_to_disk()" if args.distiset else "pipeline.main() --output"
        print(f"{args.rows} rows, loader batch_size {args.batch_size}, simulator latency {args.latency}s, 2 cores, {ending}")
        print(f"wall {wall:.1f} s, flow process CPU {usage.ru_utime + usage.ru_stime:.1f} s, "
              f"peak RSS {usage.ru_maxrss / 1024:.0f} MiB, rows out {rows_out}, "
              f"Prefect database {database.stat().st_size / 2**20:.0f} MiB ({args.rows // args.batch_size * 3} task runs)")
    finally:
        simulator.terminate()
        subprocess.run([sys.executable, "-m", "distilflow.flows.local_server", "stop"],
                       env={**os.environ, "DISTILFLOW_HOME": str(work / "home")}, capture_output=True)


def _simulator_url(process: subprocess.Popen) -> str:
    for line in process.stdout:
        if "http://" in line:
            start = line.index("http://")
            url = line[start:].split()[0].rstrip("/.,")
            return url if url.endswith("/v1") else url + "/v1"
    raise SystemExit("the simulator did not start")


if __name__ == "__main__":
    main()
