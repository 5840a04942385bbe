"""Throughput: the bare openai client vs distilflow vs distilabel, on the same simulator.

    python benchmarks/throughput.py                      # N=5000, latency 200 ms, concurrency 200
    python benchmarks/throughput.py --rows 100000 --latency 0.02 --modes distilflow   # memory at 100k rows
    python benchmarks/throughput.py --rate-limit 0.2     # also a run where 20% of answers are 429

Modes: `bare` (the openai client's chat.completions.create under a semaphore), `bare-post` (the
same client's post() without per-request typing, which is how distilflow's OpenAILLM sends
requests: distilflow / bare-post is the framework's own cost), `distilflow` (run_tasks in a flow
at the same concurrency), `defaults` (flows/text_generation.py with every setting at its default)
and `distilabel` (its TextGeneration pipeline at its defaults, when installed).

Every mode runs in its own process (its CPU time and peak memory are its own); imports and
set-up are not timed; the simulator and a Prefect server run in processes of their own, started
before any timing. distilflow's time is the whole flow run, Prefect's start and exit included.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def rows(n: int) -> list[dict]:
    return [{"instruction": f"Question {i}: explain topic number {i} briefly."} for i in range(n)]


# -- the modes (each runs in a child process) ------------------------------------------------------


def bare(args) -> dict:
    import asyncio

    import httpx
    import openai

    async def main() -> int:
        client = openai.AsyncOpenAI(base_url=args.base_url, api_key="x", max_retries=10)
        limit = asyncio.Semaphore(args.concurrency)

        async def one(row):
            messages = [{"role": "user", "content": row["instruction"]}]
            async with limit:
                if args.mode == "bare":  # the SDK as documented: typed request and answer
                    answer = await client.chat.completions.create(model="bench", messages=messages, max_tokens=128)
                    return answer.choices[0].message.content
                # bare-post: the SDK's HTTP call without that typing, as distilflow's OpenAILLM sends it
                response = await client.post("/chat/completions", cast_to=httpx.Response,
                                             body={"model": "bench", "messages": messages, "max_tokens": 128})
                return json.loads(response.content)["choices"][0]["message"]["content"]

        outputs = await asyncio.gather(*(one(r) for r in rows(args.rows)))
        return sum(1 for o in outputs if o)

    return lambda: {"rows_out": asyncio.run(main())}


def distilflow(args) -> dict:
    from prefect import flow
    from prefect.task_runners import ThreadPoolTaskRunner

    from distilflow.storage import DatasetWriter
    from distilflow.steps.tasks import TextGeneration
    from distilflow.models import OpenAILLM
    from distilflow.runner import run_tasks

    batch = min(args.batch_size, max(1, args.rows // 4))
    task = TextGeneration(
        llm=OpenAILLM(model="bench", base_url=args.base_url, max_concurrent_requests=args.concurrency, max_retries=20),
        input_batch_size=batch,
    )

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=64))
    def generate() -> dict:
        started = time.perf_counter()
        with DatasetWriter(args.output) as writer:
            result = run_tasks(
                task, rows(args.rows), keep_rows=False, sink=writer, result_storage=args.results,
                max_concurrent_batches=max(4, 2 * (args.concurrency // batch) + 2), progress=False,
            )
            written = writer.commit()
        limits = [limit for _, limit in task.llm._limits_adaptive.items()]
        return {"rows_out": written, "run_tasks_s": time.perf_counter() - started,
                "limit_decreases": sum(limit.decreases for limit in limits),
                "final_limit": min((limit.current for limit in limits), default=None),
                "cache_hits": sum(s.cache_hits for s in result.steps), "batches": result.steps[0].batches}

    return generate


def defaults(args) -> dict:
    """The text-generation flow as a user runs it, every setting at its default."""
    os.environ.update(OPENAI_BASE_URL=args.base_url, OPENAI_API_KEY="bench")
    from distilflow.flows.text_generation import TextGenerationParams, text_generation

    source = Path(args.output).with_suffix(".input.jsonl")
    source.write_text("".join(json.dumps(row) + "\n" for row in rows(args.rows)))
    params = TextGenerationParams(input=str(source), output=args.output, model={"model": "bench"},
                                  run={"result_storage": args.results})
    return lambda: {"rows_out": text_generation(params)["rows"]}


def distilabel(args) -> dict:
    from distilabel.models import OpenAILLM as DistilabelOpenAILLM
    from distilabel.pipeline import Pipeline
    from distilabel.steps import LoadDataFromDicts
    from distilabel.steps.tasks import TextGeneration as DistilabelTextGeneration

    def go() -> dict:
        with Pipeline(name="bench") as pipeline:
            load = LoadDataFromDicts(data=rows(args.rows))
            generate = DistilabelTextGeneration(llm=DistilabelOpenAILLM(model="bench", base_url=args.base_url, api_key="x"))
            load >> generate
        distiset = pipeline.run(use_cache=False)
        return {"rows_out": sum(len(split) for split in distiset["default"].values())}

    return go


MODES = {"bare": bare, "bare-post": bare, "distilflow": distilflow, "defaults": defaults, "distilabel": distilabel}


def child(args) -> None:
    go = MODES[args.mode](args)  # imports and set-up are not timed
    started_wall, started_cpu = time.perf_counter(), time.process_time()
    result = go()
    result.update(
        wall_s=time.perf_counter() - started_wall,
        cpu_s=time.process_time() - started_cpu,
        peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )
    print("RESULT " + json.dumps(result), flush=True)


# -- the parent: servers, runs, the table ------------------------------------------------------------


def start(command: list[str], env: dict, pattern: str, timeout: float = 60) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        match = re.search(pattern, line or "")
        if match:
            return process, match.group(1)
    process.kill()
    raise RuntimeError(f"{command[:4]} did not start")


def run_child(mode: str, args, env: dict, base_url: str, work: Path, **extra) -> dict:
    command = [sys.executable, __file__, "--child", mode, "--base-url", base_url, "--rows", str(args.rows),
               "--concurrency", str(args.concurrency), "--batch-size", str(args.batch_size),
               "--output", extra.get("output", str(work / f"{mode}.jsonl")), "--results", extra.get("results", str(work / f"results-{mode}"))]
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=work, timeout=3600)
    found = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not found:
        raise RuntimeError(f"{mode} failed:\n{done.stdout[-1500:]}\n{done.stderr[-3000:]}")
    return json.loads(found[-1][len("RESULT "):])


def simulator_command(args) -> list[str]:
    command = [sys.executable, "-m", "distilflow.simulator", "--port", "0", "--latency", str(args.latency)]
    if args.latency_jitter:
        command += ["--latency-jitter", str(args.latency_jitter)]
    if args.stragglers:
        command += ["--straggler-fraction", str(args.stragglers), "--straggler-latency", str(args.straggler_latency)]
    return command


BARE_SCRIPT = """
import asyncio, json, sys, httpx, openai

async def main(base_url, path, concurrency):
    rows = [json.loads(line) for line in open(path)]
    client = openai.AsyncOpenAI(base_url=base_url, api_key="x", max_retries=10)
    limit = asyncio.Semaphore(concurrency)

    async def one(row):
        async with limit:
            answer = await client.chat.completions.create(
                model="bench", messages=[{"role": "user", "content": row["instruction"]}], max_tokens=256)
            return {**row, "generation": answer.choices[0].message.content}

    done = await asyncio.gather(*(one(row) for row in rows))
    with open(sys.argv[4], "w") as out:
        out.writelines(json.dumps(row) + "\\n" for row in done)

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


def run_whole_process(mode: str, args, env: dict, base_url: str, work: Path) -> dict[str, dict]:
    """`cli`: the main flow as a user runs it (its own Prefect server, every setting at its default
    but the endpoint and the files), then again; `bare-cli`: a script with the bare client, the
    same rows and `--concurrency` requests at once. Each timed as a whole process."""
    source = work / "cli-input.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows(args.rows)))
    user_env = as_a_user(env, base_url, work / "cli-prefect", work / "distilflow-home")
    if mode == "bare-cli":
        script = work / "bare.py"
        script.write_text(BARE_SCRIPT)
        runs = {"bare client, whole process": [sys.executable, str(script), base_url, str(source), str(args.concurrency), str(work / "bare-cli.jsonl")]}
    else:
        def command(results: str) -> list[str]:
            return [sys.executable, str(ROOT / "flows" / "text_generation.py"), "--input", str(source),
                    "--output", str(work / "cli.jsonl"), "--model.model", "bench", "--run.result-storage", str(work / results)]

        runs = {
            "flows/text_generation.py, first ever run": command("results-cli-first"),  # starts the kept server
            "flows/text_generation.py, whole process": command("results-cli"),
            "  the same, again (all cached)": command("results-cli"),
        }
    results = {}
    for label, command in runs.items():  # noqa: B007
        before = requests_so_far(base_url)
        logs = work / "cli-output.log"
        started = time.perf_counter()
        with open(logs, "w") as log:
            process = subprocess.Popen(command, env=user_env, cwd=work, stdout=log, stderr=subprocess.STDOUT)
            _, status, usage = os.wait4(process.pid, 0)  # this process's own CPU time and peak memory
        wall = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"{label} failed:\n{logs.read_text()[-3000:]}")
        out = work / ("bare-cli.jsonl" if mode == "bare-cli" else "cli.jsonl")
        results[label] = {"rows_out": sum(1 for _ in open(out)), "wall_s": wall, "requests": requests_so_far(base_url) - before,
                          "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mib": usage.ru_maxrss / 1024}
    if mode == "cli":
        subprocess.run([sys.executable, "-m", "distilflow.flows.local_server", "stop"], env=user_env, capture_output=True)
    return results


def run_start_times(args, env: dict, base_url: str, work: Path, repeats: int = 3) -> dict[str, dict]:
    """`start`: one row through `python flows/text_generation.py`, whole process, as a user meets it:
    the first run ever (it starts the kept Prefect server), runs with the server up, the same
    answered from the cache, and a run after `distilflow-server stop` (the server must start
    again). Each figure is the median of `repeats` runs."""
    import statistics

    source = work / "one-row.jsonl"
    source.write_text(json.dumps(rows(1)[0]) + "\n")
    user_env = as_a_user(env, base_url, work / "start-prefect", work / "start-home")
    server = [sys.executable, "-m", "distilflow.flows.local_server"]

    def once(label: str, results: str, **extra: str) -> float:
        command = [sys.executable, str(ROOT / "flows" / "text_generation.py"), "--input", str(source), "--output",
                   str(work / "one-row-out.jsonl"), "--model.model", "bench", "--run.result-storage", str(work / results)]
        started = time.perf_counter()
        done = subprocess.run(command, env={**user_env, **extra}, cwd=work, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"{label} failed:\n{done.stderr[-3000:]}")
        return wall

    def timed(label: str, results: list[str], stop_first: bool = False, **extra: str) -> dict:
        """Median wall of one run per result storage; requests per run (cpu and memory: the runs' own
        processes are not all the caller's, so none are given)."""
        before, walls = requests_so_far(base_url), []
        for name in results:
            if stop_first:
                subprocess.run([*server, "stop"], env=user_env, capture_output=True)
            walls.append(once(label, name, **extra))
        return {"rows_out": 1, "requests": (requests_so_far(base_url) - before) / len(results),
                "wall_s": statistics.median(walls), "cpu_s": float("nan"), "peak_rss_mib": float("nan")}

    fresh = [f"start-{i}" for i in range(repeats)]
    results = {"one row, first run ever (starts the server)": timed("first", ["start-first"])}
    try:
        results["one row, server up"] = timed("up", fresh)
        results["  the same, all cached"] = timed("cached", [fresh[0]] * repeats)
        results["one row, server stopped (starts again)"] = timed("stopped", [f"{n}-stopped" for n in fresh], stop_first=True)
    finally:
        subprocess.run([*server, "stop"], env=user_env, capture_output=True)
    return results


def as_a_user(env: dict, base_url: str, prefect_home: Path, distilflow_home: Path) -> dict:
    """A user's environment: no Prefect API configured (the first run starts the kept server), the
    model server's address and key, and homes of the benchmark's own."""
    user_env = {k: v for k, v in env.items() if not k.startswith("PREFECT_API")}
    user_env.update(OPENAI_BASE_URL=base_url, OPENAI_API_KEY="bench", PREFECT_HOME=str(prefect_home),
                    DISTILFLOW_HOME=str(distilflow_home))
    return user_env


def requests_so_far(base_url: str) -> int:
    import httpx

    return httpx.get(base_url.removesuffix("/v1") + "/_sim/stats").json()["requests"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=500, help="rows per batch in the distilflow mode (10 task runs at N=5000)")
    parser.add_argument("--modes", default="bare,bare-post,distilflow,defaults,distilabel",
                        help="bare: the openai client alone (chat.completions.create); bare-post: the same client's "
                        "post() without typing, as distilflow sends requests; distilflow: run_tasks in a flow at --concurrency; "
                        "defaults: flows/text_generation.py at its defaults; distilabel: its pipeline at its defaults; "
                        "cli: `python flows/text_generation.py` as a user runs it, whole process, starting its own "
                        "Prefect server, then again (every answer cached); bare-cli: a bare-client script, whole process; "
                        "start: one row through the CLI, whole process: first run ever, server up, cached, "
                        "and after the server was stopped (medians of 3)")
    parser.add_argument("--rate-limit", type=float, default=0.0, help="also run distilflow with this share of 429s")
    parser.add_argument("--stragglers", type=float, default=0.0,
                        help="share of answers that take --straggler-latency seconds (real APIs: the slowest 1%% take many times the median)")
    parser.add_argument("--straggler-latency", type=float, default=5.0)
    parser.add_argument("--latency-jitter", type=float, default=0.0, help="each answer takes latency + up to this much more")
    parser.add_argument("--child"), parser.add_argument("--base-url"), parser.add_argument("--output"), parser.add_argument("--results")
    args = parser.parse_args()
    if args.child:
        args.mode = args.child
        return child(args)

    work = Path(tempfile.mkdtemp(prefix="distilflow-bench-"))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "OPENAI_"))}
    env.update(PREFECT_HOME=str(work / "prefect"), PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
               PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1", PREFECT_LOGGING_LEVEL="WARNING")
    sim, base_url = start(simulator_command(args), env, r"listening on (\S+)")
    server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_healthy(f"http://127.0.0.1:{port}/api/health")
    results: dict[str, dict] = {}
    try:
        for mode in args.modes.split(","):
            if mode == "distilabel" and subprocess.run([sys.executable, "-c", "import distilabel"], capture_output=True).returncode:
                print("distilabel is not installed (pip install -e '.[bench]'); skipping it")
                continue
            if mode in ("cli", "bare-cli"):
                results.update(run_whole_process(mode, args, env, base_url, work))
                continue
            if mode == "start":
                results.update(run_start_times(args, env, base_url, work))
                continue
            before = requests_so_far(base_url)
            results[mode] = run_child(mode, args, env, base_url, work)
            results[mode]["requests"] = requests_so_far(base_url) - before
            if mode == "distilflow":  # again: every batch from the cache
                before = requests_so_far(base_url)
                results["distilflow (cached re-run)"] = run_child(mode, args, env, base_url, work, output=str(work / "again.jsonl"), results=str(work / "results-distilflow"))
                results["distilflow (cached re-run)"]["requests"] = requests_so_far(base_url) - before
        if args.rate_limit:
            sim.terminate()
            sim, base_url = start(simulator_command(args) + ["--rate-limit-fraction", str(args.rate_limit), "--retry-after", "0.5"],
                                  env, r"listening on (\S+)")
            label = f"distilflow ({args.rate_limit:.0%} answers 429)"
            results[label] = run_child("distilflow", args, env, base_url, work, results=str(work / "results-faults"))
            results[label]["requests"] = requests_so_far(base_url)
    finally:
        sim.terminate(), server.terminate()
    report(results, args)


def report(results: dict[str, dict], args) -> None:
    stragglers = f", {args.stragglers:.0%} of answers take {args.straggler_latency:g} s" if args.stragglers else ""
    rows_text = "one row" if args.modes == "start" else f"N={args.rows} rows"
    print(f"\n{rows_text}, simulator latency {args.latency * 1000:.0f} ms{stragglers}, concurrency {args.concurrency}, "
          f"{os.cpu_count()} cores\n")
    print(f"{'mode':56} {'rows out':>9} {'requests':>9} {'wall s':>8} {'rows/s':>8} {'cpu s':>7} {'peak MiB':>9}")
    labels = {"defaults": "distilflow flow at its defaults", "distilabel": "distilabel at its defaults"}
    for mode, r in results.items():
        print(f"{labels.get(mode, mode):56} {r['rows_out']:>9} {r['requests']:>9g} {r['wall_s']:>8.2f} {r['rows_out'] / r['wall_s']:>8.0f} "
              f"{r['cpu_s']:>7.2f} {r['peak_rss_mib']:>9.0f}")
    bare_r, flow_r = results.get("bare"), results.get("distilflow")
    if results.get("bare-post") and flow_r:
        post = results["bare-post"]
        print(f"distilflow / bare-post rows/s (the framework's own cost, same HTTP path): "
              f"{(flow_r['rows_out'] / flow_r['wall_s']) / (post['rows_out'] / post['wall_s']):.2f}; run_tasks alone: "
              f"{(flow_r['rows_out'] / flow_r['run_tasks_s']) / (post['rows_out'] / post['wall_s']):.2f}")
    if bare_r and flow_r:
        print(f"\ndistilflow / bare rows/s: {(flow_r['rows_out'] / flow_r['wall_s']) / (bare_r['rows_out'] / bare_r['wall_s']):.2f} "
              f"(flow run incl. Prefect's per-run start/exit); run_tasks alone: "
              f"{(flow_r['rows_out'] / flow_r['run_tasks_s']) / (bare_r['rows_out'] / bare_r['wall_s']):.2f}")
        print(f"framework CPU per row beyond the bare client: {(flow_r['cpu_s'] - bare_r['cpu_s']) / args.rows * 1000:.3f} ms")
    if results.get("bare-post") and flow_r:
        print(f"framework CPU per row beyond bare-post: {(flow_r['cpu_s'] - results['bare-post']['cpu_s']) / args.rows * 1000:.3f} ms")
    rate = {mode: r["rows_out"] / r["wall_s"] for mode, r in results.items()}
    if "distilflow" in rate and "distilabel" in rate:
        print(f"distilflow / distilabel rows/s: {rate['distilflow'] / rate['distilabel']:.2f}")
    if "defaults" in rate and "distilabel" in rate:
        print(f"at their defaults, distilflow's flow / distilabel rows/s: {rate['defaults'] / rate['distilabel']:.2f}")
    again = results.get("distilflow (cached re-run)")
    if flow_r and again:
        print(f"cached re-run: {again['wall_s'] / flow_r['wall_s']:.1%} of the first run's time, {again['requests']} requests "
              f"(run_tasks alone: {again['run_tasks_s']:.2f} s, {again['run_tasks_s'] / flow_r['run_tasks_s']:.0%})")
    bare_cli = results.get("bare client, whole process")
    cli = next((r for m, r in results.items() if m.startswith("flows/text_generation.py, whole process")), None)
    if bare_cli and cli:
        print(f"whole process: flows/text_generation.py / bare client rows/s: {bare_cli['wall_s'] / cli['wall_s']:.2f} "
              f"({cli['wall_s']:.1f} s vs {bare_cli['wall_s']:.1f} s, Prefect's server start and exit included)")
    if cli and "distilabel" in rate:
        print(f"flows/text_generation.py (whole process) / distilabel at its defaults (its run, imports not timed) rows/s: "
              f"{(cli['rows_out'] / cli['wall_s']) / rate['distilabel']:.2f}")
    again_cli = next((r for m, r in results.items() if m.startswith("  the same, again (all cached)")), None)
    if cli and again_cli:
        print(f"whole process, all cached: {again_cli['wall_s']:.1f} s, {again_cli['wall_s'] / cli['wall_s']:.0%} of the first run, "
              f"{again_cli['requests']} requests")
    faults = next((r for m, r in results.items() if "429" in m), None)
    if flow_r and faults:
        print(f"with 429s: {faults['rows_out']} of {args.rows} rows ({args.rows - faults['rows_out']} lost), "
              f"{faults['wall_s'] / flow_r['wall_s']:.2f}x the fault-free time; the in-flight limit was lowered "
              f"{faults['limit_decreases']} times and ended at {faults['final_limit']}")


def _wait_healthy(url: str, timeout: float = 90) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the Prefect server at {url} did not become healthy")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    main()
