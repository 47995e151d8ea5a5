"""Load: several visitors at once against the served app, through its named API endpoints.

    python -m bench.load [--users 8] [--duration 300] [--write]

The app runs as visitors get it, `python app.py` in its own process on loopback (bench.serve: GRADIO_SERVER_PORT,
a free port), so that its memory is that process's alone: VmRSS in /proc/<pid>/status every RSS_EVERY_S seconds from
its first answer to the end, and VmHWM, its peak since launch. Each user is a thread with its own gradio_client
Client (its own session, so its Stop reaches its own runs only; the files the app sends are downloaded, as a
browser loads them) and walks CYCLE from its own place in it until `duration` has passed, then ends the path it
is on:
- drag: FULL.drag_moves /forward calls one after the other (a slider dragged across t, on a random gallery
  image);
- upload: a gallery PNG through /upload, the forward view's upload path;
- reverse: a /generate run (FULL.runs: the app's defaults); every second one is stopped through /stop once
  STOP_AFTER outputs have streamed;
- train: a /toy_train run (two moons, FULL.runs's steps); every second one is stopped through /toy_stop_training.
Between paths a user pauses FULL.think_s seconds (uniform). Parameters are passed by name, with the defaults that
client.view_api reports, so the endpoints' other parameters may change without touching this script.
Per endpoint: requests, answered, "queue full" refusals (gradio_client's QueueError), other failures (any other
exception, or a run whose final status is neither Done nor Stopped), latency from submit to the final answer
and, for the streamed runs, to the first output. Per user: paths walked, and each run finished or stopped (a
Stop that came after the run's last step leaves it finished: counted apart). Also the exceptions in the app's
output (a handled gr.Error prints none).
--quick: 2 users for 15 s with QUICK's shorter paths and pauses, so that both walk every path: checks the harness,
not the app's capacity.
--write records the result in bench/results/load.md.
"""
from __future__ import annotations

import argparse
import ast
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from explorer.threads import configure_threads

ROOT = Path(__file__).resolve().parents[1]

configure_threads("passive")  # as app.py, so the conditions below describe the app's settings
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from bench.report import publish_with_conditions
from bench.serve import served_app

import httpx
import numpy as np
from gradio_client import Client, handle_file
from gradio_client.utils import QueueError

RESULT = ROOT / "bench" / "results" / "load.md"
GALLERY = sorted((ROOT / "explorer" / "app" / "assets" / "gallery").glob("*.png"))
CYCLE = ("drag", "reverse", "drag", "train", "drag", "upload")  # user i starts at 2 i: a drag, then its own path
STOP_AFTER = 3  # outputs streamed before a stopped run's Stop (x_T and two steps of a reverse run)
RUN_SHOWN = {"/generate": ("checkpoint", "method", "steps", "n"), "/toy_train": ("dataset", "objective", "train_steps")}
STOPS = {"/generate": "/stop", "/toy_train": "/toy_stop_training"}
ENDPOINTS = ("/forward", "/upload", "/generate", "/stop", "/toy_train", "/toy_stop_training")
DONE, STOPPED = "**Done**", "**Stopped**"
RSS_EVERY_S = 1.0
POLL_S = 0.02  # how often a user looks for a streamed run's outputs
RUN_TIMEOUT_S = 900
STARTUP_S = 300
EXCEPTION_LINE = r"^[A-Za-z_][\w.]*(?:Error|Exception)\b.*$"  # the last line of a traceback in the app's output


@dataclass(frozen=True)
class Plan:
    """What a path costs: /forward calls per drag, the pause between paths (seconds, uniform) and each run's
    parameters over the app's defaults."""
    drag_moves: int
    think_s: tuple[float, float]
    runs: dict[str, dict]


FULL = Plan(10, (0.5, 2.0), {"/generate": {}, "/toy_train": {"train_steps": 300}})
QUICK = Plan(3, (0.0, 0.2), {"/generate": {"steps": 10, "n": 4}, "/toy_train": {"train_steps": 100}})


@dataclass
class Call:
    """One request: its endpoint, seconds from submit to the final answer (or the failure), how it ended
    ("answered", "queue full" or "failed") and, for a streamed run, seconds to its first output."""
    endpoint: str
    seconds: float
    outcome: str
    first: float | None = None
    error: str = ""


class Memory:
    """The resident memory of process `pid`, read from /proc every RSS_EVERY_S seconds in a thread."""

    def __init__(self, pid: int):
        self.status = Path(f"/proc/{pid}/status")
        self.start = time.monotonic()
        self.samples: list[tuple[float, int]] = []  # (seconds since start, VmRSS kB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def read(self, field: str = "VmRSS") -> int:
        """A field of /proc/<pid>/status in kB (VmRSS now, VmHWM the peak since the process started)."""
        for line in self.status.read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
        raise KeyError(field)

    def _sample(self) -> None:
        while True:
            self.samples.append((time.monotonic() - self.start, self.read()))
            if self._stop.wait(RSS_EVERY_S):
                return

    def stop(self) -> int:
        """End the sampling (one last sample); returns VmHWM."""
        self._stop.set()
        self._thread.join()
        return self.read("VmHWM")


def choices(param: dict) -> list:
    """The values a Literal[...] parameter of view_api admits."""
    return list(ast.literal_eval(param["python_type"]["type"].removeprefix("Literal")))


class User:
    """One visitor: a client of its own walking CYCLE from position `2 * index`, with its own random numbers."""

    def __init__(self, index: int, client: Client, api: dict, plan: Plan):
        self.index, self.client, self.plan = index, client, plan
        self.params = {name: {p["parameter_name"]: p for p in api[name]["parameters"]} for name in ENDPOINTS}
        self.rng = random.Random(index)
        self.calls: list[Call] = []
        self.started: Counter[str] = Counter()  # runs per endpoint
        self.outcomes: Counter[tuple[str, str]] = Counter()  # (endpoint, finished / stopped / stop too late)
        self.paths = 0
        self.walked = False  # the walk ended by itself (no exception escaped it)

    def values(self, endpoint: str, **chosen) -> dict:
        """The endpoint's parameters by name: view_api's defaults, then `chosen`."""
        return {**{name: p.get("parameter_default") for name, p in self.params[endpoint].items()}, **chosen}

    def request(self, endpoint: str, send) -> tuple | None:
        """Time `send()`, which returns (final answer, seconds to the first output or None); record the Call.
        Returns the answer, None when refused or failed."""
        start = time.perf_counter()
        try:
            answer, first = send()
        except QueueError:
            self.calls.append(Call(endpoint, time.perf_counter() - start, "queue full"))
            return None
        except Exception as exc:  # noqa: BLE001 - every other exception is a failure to count and show
            error = f"{type(exc).__name__}: {exc}"
            self.calls.append(Call(endpoint, time.perf_counter() - start, "failed", error=error))
            return None
        self.calls.append(Call(endpoint, time.perf_counter() - start, "answered", first))
        return answer

    def predict(self, endpoint: str, **values):
        return self.request(endpoint, lambda: (self.client.predict(api_name=endpoint, **values), None))

    def drag(self) -> None:
        image = self.rng.choice(choices(self.params["/forward"]["image"]))
        T = int(self.values("/forward")["T"])
        t = self.rng.randrange(T + 1)
        direction = self.rng.choice((-1, 1))
        for _ in range(self.plan.drag_moves):
            t = min(T, max(0, t + direction * self.rng.randint(5, 60)))
            if t in (0, T):
                direction = -direction  # dragged to the end of the slider: back the other way
            self.predict("/forward", **self.values("/forward", image=image, t=t))

    def upload(self) -> None:
        picture = self.rng.choice(GALLERY)
        self.predict("/upload", **self.values("/upload", upload=handle_file(str(picture)),
                                              t=self.rng.randrange(int(self.values("/upload")["T"]) + 1)))

    def reverse(self) -> None:
        self.run("/generate")

    def train(self) -> None:
        self.run("/toy_train")

    def run(self, endpoint: str) -> None:
        """A streamed run with a new seed, stopped once STOP_AFTER outputs have come or left to finish, in turn
        (user 0 stops its first run of each kind, user 1 its second...). Its outcome counts by its final status."""
        stop = (self.started[endpoint] + self.index) % 2 == 0
        self.started[endpoint] += 1
        values = self.values(endpoint, **self.plan.runs[endpoint], seed=self.rng.randrange(10_000))
        stop_sent = False

        def stream():
            nonlocal stop_sent
            start = time.perf_counter()
            job = self.client.submit(api_name=endpoint, **values)
            first = None
            while not job.done():
                if time.perf_counter() - start > RUN_TIMEOUT_S:
                    job.cancel()
                    raise TimeoutError(f"no final answer after {RUN_TIMEOUT_S} s")
                n = len(job.outputs())
                if n and first is None:
                    first = time.perf_counter() - start
                if stop and not stop_sent and n >= STOP_AFTER:
                    self.predict(STOPS[endpoint])
                    stop_sent = True
                time.sleep(POLL_S)
            texts = [v for v in job.result() if isinstance(v, str)]
            ended = "stopped" if any(STOPPED in v for v in texts) else "finished" if any(DONE in v for v in texts) \
                else None
            if ended is None:
                raise RuntimeError(f"final status says neither {DONE} nor {STOPPED}: {texts}")
            return ended, first if first is not None else time.perf_counter() - start

        ended = self.request(endpoint, stream)
        if ended is not None:
            self.outcomes[endpoint, "stop too late" if ended == "finished" and stop_sent else ended] += 1

    def walk(self, deadline: float) -> None:
        """Walk CYCLE until the deadline, pausing between paths; the path under way at the deadline ends first."""
        position = 2 * self.index
        while time.monotonic() < deadline:
            getattr(self, CYCLE[position % len(CYCLE)])()
            position += 1
            self.paths += 1
            time.sleep(self.rng.uniform(*self.plan.think_s))
        self.walked = True


def connect(url: str, process: subprocess.Popen, downloads: Path, log: Path) -> Client:
    """A client of the app, once it answers (it loads its models first)."""
    deadline = time.monotonic() + STARTUP_S
    while True:
        try:
            return Client(url, verbose=False, analytics_enabled=False, download_files=str(downloads))
        except httpx.TransportError:
            if process.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"the app did not answer at {url}; the end of its output:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)


def measure(users_n: int, duration: float, plan: Plan) -> dict:
    """Launch the app, let `users_n` users walk for `duration` seconds; the users, RSS samples and wall time."""
    with tempfile.TemporaryDirectory() as tmp, served_app(Path(tmp) / "app.log") as (process, url):
        clients = [connect(url, process, Path(tmp) / f"user{i}", Path(tmp) / "app.log") for i in range(users_n)]
        memory = Memory(process.pid)
        api = clients[0].view_api(return_format="dict", print_info=False)["named_endpoints"]
        users = [User(i, client, api, plan) for i, client in enumerate(clients)]
        start = time.monotonic()
        threads = [threading.Thread(target=u.walk, args=(start + duration,)) for u in users]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.monotonic() - start
        peak = memory.stop()
        for client in clients:
            client.close()
        raised = Counter(re.findall(EXCEPTION_LINE, (Path(tmp) / "app.log").read_text(), re.M))
    return {"users": users, "wall": wall, "rss": memory.samples, "hwm": peak, "raised": raised}


def ms(seconds: list[float], q: float) -> str:
    return f"{np.percentile(seconds, q) * 1e3:.0f} ms" if seconds else "–"


def endpoint_rows(calls: list[Call]) -> list[str]:
    rows = ["| endpoint | requests | answered | queue full | other failures | p50 | p95 | first output p50 "
            "| first output p95 |", "|---|---|---|---|---|---|---|---|---|"]
    for endpoint in ENDPOINTS:
        mine = [c for c in calls if c.endpoint == endpoint]
        counts = Counter(c.outcome for c in mine)
        answered = [c.seconds for c in mine if c.outcome == "answered"]
        firsts = [c.first for c in mine if c.first is not None]
        rows.append(f"| {endpoint} | {len(mine)} | {counts['answered']} | {counts['queue full']} | {counts['failed']} "
                    f"| {ms(answered, 50)} | {ms(answered, 95)} | {ms(firsts, 50)} | {ms(firsts, 95)} |")
    return rows


def user_rows(users: list[User]) -> list[str]:
    ends = ("finished", "stopped", "stop too late")
    rows = ["| user | paths | walk ended | requests | reverse runs: finished | stopped | stop too late "
            "| training: finished | stopped | stop too late | other failures |", "|---" * 11 + "|"]
    for u in users:
        outcomes = " | ".join(str(u.outcomes[run, end]) for run in ("/generate", "/toy_train") for end in ends)
        rows.append(f"| {u.index} | {u.paths} | {'yes' if u.walked else 'no'} | {len(u.calls)} | {outcomes} "
                    f"| {sum(c.outcome == 'failed' for c in u.calls)} |")
    return rows


def memory_lines(samples: list[tuple[float, int]], hwm: int, marks: int = 10) -> list[str]:
    rss = [kb for _, kb in samples]
    rows = ["| seconds after the app answered | RSS |", "|---|---|"]
    for i in sorted({round(k * (len(samples) - 1) / marks) for k in range(marks + 1)}):
        rows.append(f"| {samples[i][0]:.0f} | {samples[i][1] / 1024:.0f} MB |")
    return [f"Sampled every {RSS_EVERY_S:g} s: start **{rss[0] / 1024:.0f} MB** (the app answering, no user yet), peak "
            f"**{max(rss) / 1024:.0f} MB**, end **{rss[-1] / 1024:.0f} MB** (after the last user's path); the "
            f"kernel's high-water mark (VmHWM) {hwm / 1024:.0f} MB.", "", *rows]


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--duration", type=float, default=300.0, help="seconds during which users start paths")
    parser.add_argument("--write", action="store_true", help=f"record the result in {RESULT.relative_to(ROOT)}")
    parser.add_argument("--quick", action="store_true", help="2 users, 15 s, short paths: checks the harness")
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.quick:
        args.users, args.duration = 2, 15.0
    load_before = os.getloadavg()[0]
    m = measure(args.users, args.duration, plan)
    calls = [c for u in m["users"] for c in u.calls]
    failures = Counter(f"{c.endpoint}: {c.error}" for c in calls if c.outcome == "failed")
    chosen = {endpoint: m["users"][0].values(endpoint, **plan.runs[endpoint]) for endpoint in RUN_SHOWN}
    sizes = "; ".join(f"{endpoint} " + ", ".join(f"{k} = {chosen[endpoint][k]}" for k in keys)
                      for endpoint, keys in RUN_SHOWN.items())
    return publish_with_conditions([
        f"# Load: {args.users} users for {args.duration:.0f} s against `python app.py`",
        "",
        f"Produced by `bench/load.py` (see its docstring for what each user does). A drag: {plan.drag_moves} "
        f"/forward calls; pauses between paths: {plan.think_s[0]:g} to {plan.think_s[1]:g} s; runs: {sizes}. The "
        f"last user's path ended {m['wall']:.0f} s after the start.",
        "",
        "## Requests per endpoint",
        "",
        "Latency: submit to the final answer (answered requests); first output: submit to a streamed run's first "
        "output.",
        "",
        *endpoint_rows(calls),
        "",
        *(["Failures as the users saw them (count, endpoint, error):", "",
           *(f"- {n} × {failure}" for failure, n in failures.most_common()), ""] if failures else []),
        *(["Exceptions in the app's output (count, last line of the traceback):", "",
           *(f"- {n} × {line}" for line, n in m["raised"].most_common()), ""] if m["raised"] else []),
        "## Runs per user",
        "",
        *user_rows(m["users"]),
        "",
        "## Server memory (resident set of the app's process)",
        "",
        *memory_lines(m["rss"], m["hwm"]),
        "",
    ], "bench/load.py", argv, load_before, RESULT if args.write else None)


if __name__ == "__main__":
    main()
