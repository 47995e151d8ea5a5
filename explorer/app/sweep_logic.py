"""What the steps-sweep view runs and shows, with no gradio in it: the view (explorer.app.sweep) only builds the
page, parses the controls into a `SweepSettings` and streams what `sweep_stream` yields.

One x_T goes through each chosen sampler (rows: DDPM, DDIM eta 0, DDIM eta 1, DPM-Solver++) at each chosen number
of steps (columns); the loop is explorer's (`samplers.sweep`, one Step per model call and a SweepCell per finished
cell, each timed without its consumer). Every sampler runs with the trailing spacing and x0_hat clipped to [-1, 1];
a class-conditional model samples the chosen class at guidance 1, so each step is one model call on one batch.

Seeds: one torch.Generator seeded with the seed draws x_T, then the seed of the cells' own generators (so DDPM's
first fresh noise is not x_T drawn again); every cell starts its noise from that seed, whatever ran before it.

A stream yields a dict of the OUTPUTS that change: the grid as HTML (x_T in its corner, each finished cell's images
with their model calls and seconds, a blank slot for each cell still to come), the results table's rows and the
status. A run stopped by its flag (explorer.app.stops) makes no further model call and ends saying how far it got.
"""
from __future__ import annotations

import base64
import html
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from explorer import checks
from explorer.app import catalogue, plots
from explorer.app.options import METHOD_NAMES, SEED_MAX, UserInputError, until
from explorer.app.reverse_logic import grid, scale_to
from explorer.checkpoint import DEFAULT_CHECKPOINT, ModelConfig
from explorer.samplers import SWEEP_SAMPLERS, SWEEP_STEPS, SweepCell, sweep

MAX_IMAGES = 4  # per cell
SLOW_STEPS = 1000  # step counts from here on take minutes on a CPU: offered, not chosen by default
CELL_PX = 112  # each cell's picture is enlarged by whole pixels up to about this size
TICK = 25  # during a cell, the status counts its model calls every TICK of them
CLIP = True  # x0_hat clipped to [-1, 1] in every cell, as the reverse view does by default
DEFAULTS = {"checkpoint": DEFAULT_CHECKPOINT.name, "label": None, "seed": 0, "n": 2,
            "samplers": list(SWEEP_SAMPLERS), "step_counts": [k for k in SWEEP_STEPS if k < SLOW_STEPS]}
# (label None: the view starts on the checkpoint's first class)
CONTROLS = tuple(DEFAULTS)  # the names of the sweep's controls, in the API's order
OUTPUTS = ("grid", "table", "status")
TABLE_HEADERS = ["sampler", "steps", "model calls", "seconds"]
ABOUT = (
    r"$$x_s = \sqrt{\bar\alpha_s}\,\hat x_0 + \sqrt{1-\bar\alpha_s-\sigma_t^2}\;\hat\varepsilon + \sigma_t\,z$$"
    "\n\n"
    r"One step from t to the next timestep s, DDIM eq. 12 (Song et al. 2021). With $\sigma_t = 0$ (DDIM η = 0) "
    "the path from x_T is an ODE's, which DPM-Solver++ follows too: 10 to 20 steps come close to the 1000-step "
    "image. DDPM adds fresh noise z at every step (it is η = 1, so those rows agree); with few steps it falls "
    "behind (DDIM, Table 1). Each step is one model call."
)


def sampler_name(label: str) -> str:
    """The page's name of a sampler of samplers.SWEEP_SAMPLERS, e.g. "DDIM, η = 0"."""
    options = SWEEP_SAMPLERS[label]
    name = METHOD_NAMES[options["method"]]
    return f"{name}, η = {options['eta']:g}" if "eta" in options else name


def steps_name(steps: int) -> str:
    return f"{steps} (slow)" if steps >= SLOW_STEPS else str(steps)


def bundled(name) -> tuple[Path, ModelConfig]:
    """The bundled image checkpoint named `name`; a ValueError names the allowed ones (or sends a 2D toy to the
    toy lab)."""
    for path, config in catalogue.listed():
        if path.name == name:
            catalogue.check_config(name, config)
    found = catalogue.bundled_images()
    checks.choice("checkpoint", name, found)
    return catalogue.PRETRAINED / name, found[name]


def _picked(what: str, values, allowed: tuple) -> tuple:
    """The ticked values of a checkbox group, each one of `allowed`, in the order of `allowed`; at least one."""
    if not isinstance(values, (list, tuple)):
        raise UserInputError(f"the {what}s must be a list of some of {', '.join(map(str, allowed))}; got {values!r}")
    for value in values:
        checks.choice(what, value, allowed)
    picked = tuple(a for a in allowed if a in values)
    if not picked:
        raise UserInputError(f"choose at least one {what} ({', '.join(map(str, allowed))})")
    return picked


@dataclass(frozen=True)
class SweepSettings:
    """One validated sweep: the checkpoint, its class, the seed, images per cell, the rows and the columns."""
    path: Path
    config: ModelConfig
    label: str | None  # a class name; None for an unconditional model
    seed: int
    n: int
    samplers: tuple[str, ...]  # labels of samplers.SWEEP_SAMPLERS, in its order
    step_counts: tuple[int, ...]  # of samplers.SWEEP_STEPS, increasing

    @classmethod
    def parse(cls, controls: dict) -> SweepSettings:
        """The controls by name (CONTROLS); ValueError names what is wrong."""
        c = controls
        seed = checks.whole("seed", c["seed"], 0, SEED_MAX)
        n = checks.whole("images per cell", c["n"], 1, MAX_IMAGES)
        path, config = bundled(c["checkpoint"])
        samplers = _picked("sampler", c["samplers"], tuple(SWEEP_SAMPLERS))
        counts = _picked("step count", c["step_counts"], SWEEP_STEPS)
        over = [k for k in counts if k > config.T]
        if over:
            raise UserInputError(f"{path.name} has T = {config.T} timesteps, so at most {config.T} steps; "
                                 f"untick {', '.join(map(str, over))}")
        label = c["label"]
        if config.class_names:
            checks.choice("class", label, config.class_names)
        elif label is not None:
            raise UserInputError(f"{path.name} is unconditional (trained without class labels): there is no class "
                                 "to choose; leave the class empty.")
        return cls(path, config, label, seed, n, samplers, counts)

    def cells(self) -> list[tuple[str, int]]:
        """(sampler, steps) of every cell, in the order samplers.sweep runs them: the cheap columns first."""
        return [(label, k) for k in self.step_counts for label in self.samplers]

    def describe(self) -> str:
        what = f"class {self.label}" if self.label is not None else "unconditional"
        images = f"{self.n} image{'s' * (self.n > 1)} per cell"
        return f"**{self.path.name}** · {what} · seed {self.seed} · {images} · x̂₀ clipped to [−1, 1]"


def initial_noise(settings: SweepSettings) -> tuple[torch.Tensor, int]:
    """x_T ~ N(0, I) drawn on the CPU from a generator seeded with the seed, and the seed of the cells' noise,
    drawn next from the same generator."""
    gen = torch.Generator().manual_seed(settings.seed)
    x_T = torch.randn((settings.n, *settings.config.sample_shape), generator=gen)
    return x_T, int(torch.randint(0, SEED_MAX, (), generator=gen))


def labels(settings: SweepSettings, device: torch.device) -> torch.Tensor | None:
    """The class of every image (None for an unconditional model)."""
    if settings.label is None:
        return None
    return torch.full((settings.n,), settings.config.class_names.index(settings.label), dtype=torch.long,
                      device=device)


# --- pictures and texts --------------------------------------------------------------------------------------

def image_tag(x: torch.Tensor, alt: str) -> str:
    """An <img> of the batch x (N, C, H, W) in [-1, 1]: its grid (reverse_logic.grid) as a PNG data URI, shown at
    about CELL_PX by whole pixels (the page enlarges it without smoothing)."""
    g = grid(x)
    p, scale = plots.picture(g, 1), scale_to(g, CELL_PX)
    buffer = io.BytesIO()
    Image.fromarray(p).save(buffer, format="PNG")
    uri = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    return (f'<img src="{uri}" width="{p.shape[1] * scale}" height="{p.shape[0] * scale}" '
            f'alt="{html.escape(alt)}">')


def grid_html(settings: SweepSettings, x_T_tag: str, finished: dict[tuple[str, int], str]) -> str:
    """The sweep as an HTML table: x_T in the corner, a column per step count, a row per sampler; each finished
    cell (finished: (sampler, steps) -> its <img> and caption) with its pictures, the others blank."""
    head = "".join(f'<th scope="col">{k} steps</th>' for k in settings.step_counts)
    rows = []
    for label in settings.samplers:
        cells = []
        for k in settings.step_counts:
            content = finished.get((label, k))
            state = "done" if content else "pending"
            cells.append(f'<td class="{state}" data-sampler="{label}" data-steps="{k}">{content or "…"}</td>')
        rows.append(f'<tr><th scope="row">{sampler_name(label)}</th>{"".join(cells)}</tr>')
    corner = f'<th class="corner">{x_T_tag}<div class="caption">x_T, seed {settings.seed}</div></th>'
    return f'<table><thead><tr>{corner}{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def status(settings: SweepSettings, done: list[SweepCell], seconds: float, step: tuple[int, int] | None = None
           ) -> str:
    """Where the sweep stands after `seconds`: cells done, the cell running (and its model calls so far, `step`
    = (calls, of)), or the totals once every cell is done."""
    cells = settings.cells()
    if len(done) == len(cells):
        calls, compute = sum(c.calls for c in done), sum(c.seconds for c in done)
        return (f"{settings.describe()}\n\n**Done**: {len(cells)} cells, {calls} model calls, {compute:.1f} s of "
                f"sampling ({seconds:.1f} s in all).")
    label, k = cells[len(done)]
    progress = f": step {step[0]} of {step[1]}" if step else ""
    return (f"{settings.describe()}\n\n{len(done)} of {len(cells)} cells done · running {sampler_name(label)} at "
            f"{k} steps{progress} · {seconds:.1f} s")


def shown(done: int, total: int) -> str:
    """What a run has shown, as the Stop button reports it."""
    return f"{done} of {total} cells done"


def stopped(shown_last: str | None) -> str:
    """The status of a stopped sweep, from the Stop button and from the run itself alike."""
    return f"**Stopped** with {shown_last}." if shown_last else "**Stopped** before it started."


def row(cell: SweepCell) -> list:
    """The cell's row of the results table (TABLE_HEADERS)."""
    return [sampler_name(cell.sampler), cell.steps, cell.calls, round(cell.seconds, 3)]


# --- the stream the view shows -------------------------------------------------------------------------------

@torch.inference_mode()
def sweep_stream(settings: SweepSettings, running) -> Iterator[dict]:
    """The sweep as dicts of the OUTPUTS that change: x_T with a blank grid and an empty table, then every finished
    cell (the grid, the table and the status), and the status every TICK model calls within a cell. `running` is
    the run's explorer.app.stops.Running: its flag stops the run before its next model call, and a stopped run
    ends with a status saying how far it got."""
    start = time.perf_counter()
    total = len(settings.cells())
    x_T, cell_seed = initial_noise(settings)
    corner, finished, done = image_tag(x_T, "x_T"), {}, []
    if running.show(shown(0, total)):
        yield {"grid": grid_html(settings, corner, finished), "table": [], "status": status(settings, done, 0.0)}
        model = catalogue.sampling_model(settings.path)  # after the first frame: loading takes longer than drawing x_T
        device = next(model.parameters()).device
        items = sweep(model, model.schedule, x_T.to(device), samplers=settings.samplers,
                      step_counts=settings.step_counts, seed=cell_seed, objective=model.objective,
                      y=labels(settings, device), clip_x0=CLIP)
        for item in until(items, running.stop):
            if isinstance(item, SweepCell):
                if not running.show(shown(len(done) + 1, total)):
                    break
                done.append(item)
                alt = f"{sampler_name(item.sampler)}, {item.steps} steps"
                finished[item.sampler, item.steps] = (f'{image_tag(item.x0, alt)}<div class="caption">'
                                                      f'{item.calls} calls · {item.seconds:.2f} s</div>')
                yield {"grid": grid_html(settings, corner, finished), "table": [row(c) for c in done],
                       "status": status(settings, done, time.perf_counter() - start)}
            elif (item.i + 1) % TICK == 0 and item.i + 1 < item.n:
                if not running.show(shown(len(done), total)):
                    break
                yield {"status": status(settings, done, time.perf_counter() - start, (item.i + 1, item.n))}
    if len(done) < total:  # stopped: the same words as the Stop button's, whichever lands last
        yield {"status": stopped(running.shown)}
