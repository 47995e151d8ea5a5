"""Speed of the reverse view: the first frame after Generate, and a DDIM-50 run of 16 images against the time
the network itself takes.

    python -m bench.reverse_view [--rounds 3] [--first-frames 10] [--browser] [--policies] [--write]

The app is launched in this process exactly as app.py launches it (explorer.app.launch) and driven through
its /generate endpoint with gradio_client (queue, server-sent events, PNG files written per frame; the client
does not download them). The checkpoint is the view's default (the first bundled image checkpoint), copied to
a temporary folder so that a training run rewriting pretrained/ cannot swap the model mid-measurement.
Forward hooks on the loaded model time every network call.

Each round runs, back to back, so that background load hits all three alike:
- pure compute: the 50 network calls of DDIM-50 on a batch of 16 (same timesteps and labels), nothing else;
- handler: `reverse.generate(...)` iterated directly (sampler, grids, sigma figure, PNG and GIF files);
- served: the same run submitted through the app; wall time from submit to the final output.
The ratios are wall time / sum of the network calls within that run, and served wall / pure compute.
First frame: the handler's own share (to its first yield, plus Gradio's postprocessing of that yield: the PNG,
the figure's JSON); then submit to the first streamed output (x_T) at the client, for `--first-frames` short
runs and the served runs above, each next to the round trip of a no-op call (/stop with no run) through the
same app and client: what any event costs there, whatever it does. --browser adds click-to-picture-loaded in
headless Chromium (CHROMIUM_PATH or chromium).
--policies adds DDIM runs (pure, handler, served) in fresh processes under the app's passive OpenMP waiting and
under libgomp's default spin-then-sleep, alternated: does spinning pay once the app serves?
--write records the result in bench/results/reverse_view.md.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from explorer.threads import configure_threads

ROOT = Path(__file__).resolve().parents[1]

configure_threads("passive")  # as app.py: the app's thread settings, before torch loads
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from explorer.app import catalogue

from bench.report import WAIT_POLICIES, publish_with_conditions, run_under
from bench.serve import free_port

import gradio as gr
import torch
from gradio_client import Client

from explorer.app import demo, launch
from explorer.app import reverse as rv
from explorer.app import reverse_logic as rl
from explorer.samplers import timesteps

RESULT = ROOT / "bench" / "results" / "reverse_view.md"
STEPS, IMAGES = 50, 16
FIRST_FRAME_TARGET_S = 0.3
CLICK_TO_PICTURE = """() => new Promise(resolve => {  // ms from the click on Generate to x_T's picture loaded
    const box = document.querySelector('#reverse-xt');
    const before = box.querySelector('img')?.getAttribute('src');
    const t0 = performance.now();
    const seen = new MutationObserver(() => {
        const img = box.querySelector('img');
        if (!img || img.getAttribute('src') === before) return;
        seen.disconnect();
        const done = () => resolve(performance.now() - t0);
        if (img.complete && img.naturalWidth) done(); else img.addEventListener('load', done, {once: true});
    });
    seen.observe(box, {subtree: true, childList: true, attributes: true});
    document.querySelector('#reverse-generate').click();
})"""


class NetworkTimer:
    """Forward pre/post hooks on a model: the duration of every call."""

    def __init__(self, model: torch.nn.Module):
        self.calls: list[float] = []
        self._start = 0.0
        self._handles = [model.register_forward_pre_hook(self._pre), model.register_forward_hook(self._post)]

    def _pre(self, module, args):
        self._sync()
        self._start = time.perf_counter()

    def _post(self, module, args, output):
        self._sync()
        self.calls.append(time.perf_counter() - self._start)

    @staticmethod
    def _sync():
        if catalogue.DEVICE.type == "cuda":
            torch.cuda.synchronize()

    def take(self) -> tuple[int, float]:
        """(number of calls, their summed seconds) since the last take."""
        n, total = len(self.calls), sum(self.calls)
        self.calls.clear()
        return n, total


def controls(name: str, objective: str, steps: int | None = None, seed: int = 0) -> dict:
    values = {**rl.DEFAULTS, "checkpoint": name, "upload": None, "objective": objective, "method": "ddim",
              "steps": steps or STEPS, "n": IMAGES, "seed": seed}
    return {key: values[key] for key in rl.CONTROLS}


@torch.inference_mode()
def pure_compute(model, objective_controls: dict) -> float:
    """Seconds for DDIM-50's network calls alone (STEPS calls of batch IMAGES) at its timesteps, with its labels."""
    s = rl.RunSettings.parse(objective_controls)
    x = torch.randn(IMAGES, *model.sample_shape, device=catalogue.DEVICE)
    y = rl.batch_labels(s, catalogue.DEVICE)
    start = time.perf_counter()
    for t in timesteps(model.schedule.T, STEPS, s.sampler.spacing):
        model(x, torch.full((IMAGES,), t, device=catalogue.DEVICE), y)
    NetworkTimer._sync()
    return time.perf_counter() - start


def served_run(client: Client, args: dict) -> tuple[float, float]:
    """(seconds to the first streamed output, seconds to the final one) of one /generate through the app."""
    start = time.perf_counter()
    job = client.submit(*args.values(), api_name="/generate")
    next(job)
    first = time.perf_counter() - start
    job.result(timeout=600)
    return first, time.perf_counter() - start


def first_yield(args: dict) -> float:
    """Seconds from calling the handler to its first yield postprocessed as Gradio does (PNG file, figure JSON)."""
    start = time.perf_counter()
    run = rv.generate(**args)
    out = next(run)
    gr.Image(format="png", render=False).postprocess(out[rl.OUTPUTS.index("x_t")])
    gr.Plot(render=False).postprocess(out[rl.OUTPUTS.index("sigmas")])
    gr.Markdown(render=False).postprocess(out[rl.OUTPUTS.index("status")])
    elapsed = time.perf_counter() - start
    run.close()
    return elapsed


def no_op(client: Client) -> float:
    """Seconds for a round trip of /stop when nothing runs: the app's and the client's cost of any event."""
    start = time.perf_counter()
    client.predict(api_name="/stop")
    return time.perf_counter() - start


def browser_first_frames(url: str, repeats: int) -> list[float]:
    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
    times = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--headless", "--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.get_by_role("tab", name="Reverse process").click()
        page.wait_for_selector("#reverse-generate")
        steps = page.locator("#reverse-steps input[type=number]")
        steps.fill("2")
        steps.press("Enter")
        for seed in range(repeats):
            box = page.locator("#reverse-seed input")
            box.fill(str(1000 + seed))  # a new x_T: a new picture to load
            box.press("Enter")
            times.append(page.evaluate(CLICK_TO_PICTURE) / 1e3)
            page.wait_for_function("() => document.querySelector('#reverse-status').innerText.includes('Done')",
                                   timeout=120_000)
        browser.close()
    return times


def measure(rounds_n: int, first_frames: int, browser: bool) -> dict:
    """Launch the app on a copy of the default checkpoint and time it: `rounds_n` interleaved rounds of pure
    compute / handler / served DDIM runs, then `first_frames` first frames (handler, client, no-op, browser)."""
    found = catalogue.bundled_images()
    if not found:
        sys.exit(f"no bundled image checkpoint in {catalogue.PRETRAINED}")
    name = rl.default_name(found)
    config = found[name]
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy2(catalogue.PRETRAINED / name, tmp)
        catalogue.PRETRAINED = Path(tmp)
        model = catalogue.sampling_model(Path(tmp) / name)  # what the view runs
        timer = NetworkTimer(model)
        _, url, _ = launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
        client = Client(url, verbose=False, analytics_enabled=False, download_files=False)
        run_args = controls(name, config.objective)
        for _ in rv.generate(**controls(name, config.objective, steps=2)):  # warm-up: first calls, allocations
            pass
        timer.take()
        rounds = []
        for r in range(rounds_n):
            pure = pure_compute(model, run_args)
            timer.take()
            start = time.perf_counter()
            frames = sum(1 for _ in rv.generate(**run_args))
            handler_wall = time.perf_counter() - start
            handler_calls, handler_net = timer.take()
            first, served_wall = served_run(client, controls(name, config.objective, seed=r + 1))
            served_calls, served_net = timer.take()
            assert handler_calls == served_calls == STEPS and frames == 1 + STEPS
            rounds.append({"pure": pure, "handler": handler_wall, "handler_net": handler_net, "served": served_wall,
                           "served_net": served_net, "first": first})
        firsts, noops, handler_firsts = [r["first"] for r in rounds], [], []
        for i in range(first_frames):
            handler_firsts.append(first_yield(controls(name, config.objective, seed=200 + i)))
            noops.append(no_op(client))
            firsts.append(served_run(client, controls(name, config.objective, steps=2, seed=100 + i))[0])
        clicks = browser_first_frames(url, first_frames) if browser else []
        demo.close()
    return {"name": name, "config": config, "rounds": rounds, "handler_firsts": handler_firsts, "firsts": firsts,
            "noops": noops, "clicks": clicks}


def policies_compared(rounds_n: int, quick: bool) -> list[str]:
    """Markdown rows: DDIM runs measured in fresh processes (this script with --json) under the app's passive
    OpenMP waiting and under libgomp's default, alternated round by round so that machine noise hits both."""
    per_policy = {name: [] for name in list(WAIT_POLICIES)[:2]}
    for _ in range(rounds_n):
        for name, rows in per_policy.items():
            rows.extend(run_under(WAIT_POLICIES[name], "bench.reverse_view", "--json", "--rounds", "1", "--first-frames", "0",
                                  *["--quick"] * quick))
    table = ["| OpenMP waiting | pure compute | handler wall | served wall | served / pure | first frame (client) |",
             "|---|---|---|---|---|---|"]
    med = {}
    for name, rows in per_policy.items():
        med[name] = {key: statistics.median(r[key] for r in rows) for key in rows[0]}
        m = med[name]
        table.append(f"| {name} | {m['pure']:.2f} s | {m['handler']:.2f} s | {m['served']:.2f} s "
                     f"| {m['served'] / m['pure']:.2f} | {m['first'] * 1e3:.0f} ms |")
    passive, spin = med.values()
    return [f"Medians of {rounds_n} fresh process(es) per policy, each one round of the table above. Spinning "
            f"makes the network alone {passive['pure'] / spin['pure']:.2f}x as fast, the served run "
            f"{passive['served'] / spin['served']:.2f}x: while the app serves, its own threads (the server, "
            "Gradio's encoding of every frame, here also the client) need the CPUs that spinning OpenMP threads "
            "hold.", "", *table]


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--first-frames", type=int, default=10)
    parser.add_argument("--browser", action="store_true", help="also time click-to-picture in headless Chromium")
    parser.add_argument("--policies", action="store_true",
                        help="also compare served runs under passive and default OpenMP waiting (fresh processes)")
    parser.add_argument("--write", action="store_true", help=f"record the result in {RESULT.relative_to(ROOT)}")
    parser.add_argument("--quick", action="store_true",
                        help="DDIM-4 on 2 images, one round, one first frame: checks the harness, not speed")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # a --policies child: rounds only
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    if args.quick:
        global STEPS, IMAGES
        STEPS, IMAGES = 4, 2
        args.rounds, args.first_frames = 1, min(args.first_frames, 1)
    load_before = os.getloadavg()[0]
    m = measure(args.rounds, args.first_frames, args.browser)
    if args.json:
        print(json.dumps(m["rounds"]))
        return ""
    name, config, rounds = m["name"], m["config"], m["rounds"]
    firsts, noops, handler_firsts, clicks = m["firsts"], m["noops"], m["handler_firsts"], m["clicks"]
    policies = policies_compared(args.rounds, args.quick) if args.policies else []

    med = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    ratios = {"handler": [r["handler"] / r["handler_net"] for r in rounds],
              "served": [r["served"] / r["served_net"] for r in rounds],
              "served_pure": [r["served"] / r["pure"] for r in rounds]}
    rows = [f"| round | pure compute ({STEPS} calls) | handler wall | its network calls | handler ratio "
            "| served wall | its network calls | served ratio | served / pure |",
            "|---|---|---|---|---|---|---|---|---|"]
    for i, r in enumerate(rounds, 1):
        rows.append(f"| {i} | {r['pure']:.2f} s | {r['handler']:.2f} s | {r['handler_net']:.2f} s "
                    f"| {r['handler'] / r['handler_net']:.3f} | {r['served']:.2f} s | {r['served_net']:.2f} s "
                    f"| {r['served'] / r['served_net']:.3f} | {r['served'] / r['pure']:.3f} |")
    rows.append(f"| median | {med['pure']:.2f} s | {med['handler']:.2f} s | {med['handler_net']:.2f} s "
                f"| **{statistics.median(ratios['handler']):.3f}** | {med['served']:.2f} s | {med['served_net']:.2f} s "
                f"| **{statistics.median(ratios['served']):.3f}** | {statistics.median(ratios['served_pure']):.3f} |")
    first_rows = [f"- the handler's own share (controls checked, x_T drawn, its grid, status and sigma figure, "
                  f"then Gradio's PNG and JSON of them; {len(handler_firsts)} runs): median "
                  f"**{statistics.median(handler_firsts) * 1e3:.1f} ms**, max {max(handler_firsts) * 1e3:.1f} ms",
                  f"- through gradio_client (submit to x_T received; {len(firsts)} runs): median "
                  f"**{statistics.median(firsts) * 1e3:.0f} ms**, max {max(firsts) * 1e3:.0f} ms "
                  f"(target {FIRST_FRAME_TARGET_S * 1e3:.0f} ms)",
                  f"- for scale, a no-op event (/stop with no run) through the same app and client, interleaved "
                  f"({len(noops)} calls): median {statistics.median(noops) * 1e3:.0f} ms"]
    if clicks:
        first_rows.append(f"- in headless Chromium (click on Generate to x_T's picture loaded; {len(clicks)} runs): "
                          f"median **{statistics.median(clicks) * 1e3:.0f} ms**, max {max(clicks) * 1e3:.0f} ms")
    return publish_with_conditions([
        f"# Reverse view: first frame and a DDIM-{STEPS} run of {IMAGES} images",
        "",
        "Produced by `bench/reverse_view.py` (see its docstring for what is timed). Checkpoint "
        f"`{name}` ({config.net} {config.net_config.get('channels')}, {config.dataset}, predicts {config.objective}, "
        f"{config.schedule}, T = {config.T}); DDIM, eta = 0, {STEPS} steps, {IMAGES} images "
        f"{'x'.join(map(str, config.sample_shape))}, guidance w = 1 (one network call per step), every step "
        f"streamed as a frame ({STEPS + 1} frames with x_T).",
        "",
        f"## DDIM-{STEPS}, {IMAGES} images: wall time against the network's own time",
        "",
        f"Ratio = wall time of the run / sum of its {STEPS} network calls (timed by hooks inside that same run). "
        "Rounds interleave the three measurements.",
        "",
        *rows,
        "",
        "## First frame after Generate",
        "",
        *first_rows,
        "",
        *(["## OpenMP waiting: the app's passive policy against libgomp's default, served", "", *policies, ""]
          if policies else []),
    ], "bench/reverse_view.py", argv, load_before, RESULT if args.write else None)


if __name__ == "__main__":
    main()
