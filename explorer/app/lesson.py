"""The lesson: a short path through the ideas of diffusion models in six steps, each with a few sentences, one
displayed formula and a button that opens the view which shows it, at the settings that show it.

A button opens its step's link (STEPS[i].query, read as a share link is: explorer.app.share.read_link) in this page:
explorer.app.links.Links wires the `Opener`s that build() returns. Equations are named by paper: DDPM (Ho et al.
2020), Improved DDPM (Nichol & Dhariwal 2021), DDIM (Song et al. 2021), v (Salimans & Ho 2022).
"""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from explorer.app.links import Opener
from explorer.app.widgets import LATEX

TITLE = "Lesson"
CSS = "#lesson { max-width: 920px; }  /* lines short enough to read */"
INTRO = ("## Diffusion in six steps\nEach step says one idea with its formula; its button opens the view that "
         "shows it, at settings chosen for it. Move the controls there, then come back for the next step.")


@dataclass(frozen=True)
class Step:
    title: str
    formula: str  # LaTeX, displayed
    text: str  # Markdown, 2-4 sentences
    button: str
    query: dict[str, str]  # a share link's parameters


STEPS = (
    Step("Noise in one jump",
         r"q(x_t \mid x_0) = \mathcal N\big(x_t;\ \sqrt{\bar\alpha_t}\,x_0,\ (1-\bar\alpha_t)\,I\big)",
         r"T small Gaussian steps of noise merge into one Gaussian jump from the image (DDPM eq. 4): $x_t$ is $x_0$ "
         r"shrunk by $\sqrt{\bar\alpha_t}$ plus noise of variance $1-\bar\alpha_t$. So training can draw any t "
         "directly. In the forward view the closed form and the step-by-step chain give two draws of this same "
         "Gaussian, and the spectrum shows fine detail drowning first.",
         "Open the forward view at t = 250",
         {"view": "forward", "image": "sneaker", "schedule": "cosine", "T": "1000", "t": "250"}),
    Step("How fast the signal fades: the schedule",
         r"\bar\alpha_t = \frac{f(t)}{f(0)},\qquad f(t) = \cos^2\!\Big(\frac{t/T + s}{1 + s}\cdot\frac{\pi}{2}\Big)",
         r"$\bar\alpha_t$ decides how much of the image is left at t. DDPM's linear $\beta_t$ wipes the image out "
         "long before t = T, so the last few hundred steps are wasted on pure noise; the cosine schedule "
         "(Improved DDPM eq. 17) keeps more signal in the middle. At t = 500 compare the two curves and the SNR.",
         "Open the forward view: linear schedule, t = 500",
         {"view": "forward", "image": "sneaker", "schedule": "linear", "T": "1000", "t": "500"}),
    Step("Back one step: the posterior is Gaussian",
         r"q(x_{t-1} \mid x_t, x_0) = \mathcal N\big(x_{t-1};\ \tilde\mu_t(x_t, x_0),\ \tilde\beta_t I\big),\quad "
         r"\tilde\beta_t = \frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}\,\beta_t",
         r"Going back from $x_t$ alone would need the whole data distribution. Given $x_0$ as well, Bayes' rule "
         "multiplies two Gaussians in $x_{t-1}$ (the step forward and the jump from $x_0$), so the result is "
         r"Gaussian (DDPM eq. 6-7): its mean $\tilde\mu_t$ mixes $x_0$ and $x_t$, its variance is fixed. A sampler "
         r"puts the network's guess $\hat x_0$ in place of $x_0$ and steps from noise to an image.",
         "Open the reverse view: DDPM, 100 steps, sneakers",
         {"view": "reverse", "method": "ddpm", "variance": "beta_tilde", "steps": "100", "label": "Sneaker",
          "n": "8"}),
    Step("What the network predicts: ε, x₀ or v",
         r"\hat x_0 = \frac{x_t - \sqrt{1-\bar\alpha_t}\,\hat\varepsilon}{\sqrt{\bar\alpha_t}},\qquad "
         r"v = \sqrt{\bar\alpha_t}\,\varepsilon - \sqrt{1-\bar\alpha_t}\,x_0",
         r"The network sees $x_t$ and t and predicts the noise ε (DDPM), the image $x_0$, or v (Salimans & Ho "
         "2022); by DDPM eq. 4 any one gives the others (x̂₀ from ε̂ is DDPM eq. 15). They differ in what an error "
         r"costs: near t = T, x̂₀ from ε̂ divides the error by a tiny $\sqrt{\bar\alpha_t}$. In the toy lab the "
         "arrows are ε̂ over the whole plane.",
         "Open the toy lab: an ε-model's ε̂ at t = 500",
         {"view": "toy", "dataset": "two-moons", "objective": "eps", "field_kind": "eps", "t": "500"}),
    Step("Skipping steps: DDIM",
         r"x_s = \sqrt{\bar\alpha_s}\,\hat x_0 + \sqrt{1-\bar\alpha_s-\sigma_t^2}\;\hat\varepsilon + \sigma_t\,z",
         r"DDIM (Song et al. 2021) keeps every $q(x_t \mid x_0)$ of DDPM eq. 4 but jumps from t to any earlier s with "
         r"x̂₀ and ε̂ (DDIM eq. 12). With $\sigma_t = 0$ (η = 0) it adds no fresh noise, the path is deterministic, "
         "and 10 steps come close to 1000. Press **Generate** and watch the particles jump.",
         "Open the toy lab: DDIM, η = 0, 10 steps",
         {"view": "toy", "dataset": "8-gaussians", "method": "ddim", "eta": "0.0", "steps": "10", "t": "0"}),
    Step("Distributions flowing",
         r"q(x_t) = \int q(x_t \mid x_0)\,q(x_0)\,dx_0",
         "Apply DDPM eq. 4 to every point of a dataset and the whole distribution flows: shrunk by "
         r"$\sqrt{\bar\alpha_t}$ and blurred by Gaussian noise until it is N(0, I). The toy lab draws the exact "
         r"$q(x_t)$ behind the cloud, and the learned score $-\hat\varepsilon/\sqrt{1-\bar\alpha_t}$ points back "
         "towards the data; move t, then **Generate** with DDPM to watch noise flow back into a swiss roll.",
         "Open the toy lab: the swiss roll at t = 150",
         {"view": "toy", "dataset": "swiss-roll", "field_kind": "score", "method": "ddpm", "steps": "100",
          "t": "150"}),
)


def build() -> list[Opener]:
    """Create the lesson inside the current gr.Tab; returns its buttons with their links."""
    openers = []
    with gr.Column(elem_id="lesson"):
        gr.Markdown(INTRO)
        for i, step in enumerate(STEPS, 1):
            with gr.Group(elem_id=f"lesson-step-{i}"):
                gr.Markdown(f"### {i}. {step.title}\n\n$${step.formula}$$\n\n{step.text}", latex_delimiters=LATEX,
                            padding=True)
                button = gr.Button(step.button, size="md", elem_id=f"lesson-open-{i}")
            openers.append(Opener(button, step.query))
    return openers
