"""What the network predicts: the noise eps, the clean image x_0, or the velocity v, and exact conversions.

With a_t = sqrt(alpha_bar_t) and b_t = sqrt(1 - alpha_bar_t), so that x_t = a_t x_0 + b_t eps and
a_t^2 + b_t^2 = 1 (seed 001, section 2.6):

    v   = a_t eps - b_t x_0           (seed 001, section 2.6: V_t = -b_t X_0 + a_t eps)
    x_0 = (x_t - b_t eps) / a_t       (seed 001, eq. 8)
    eps = (x_t - a_t x_0) / b_t       (seed 001, eq. 2)
    x_0 = a_t x_t - b_t v,   eps = b_t x_t + a_t v   (seed 001, section 2.6)
    score = grad log q(x_t) = -eps / b_t   (Tweedie: E[eps | x_t] = -b_t grad log q(x_t))

`a` and `b` are tensors broadcastable against x_t (see `explorer.schedules.at`).
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from explorer.checks import choice

OBJECTIVES = ("eps", "x0", "v")


def check_objective(objective: str) -> str:
    return choice("objective", objective, OBJECTIVES)


def x0_from_eps(x_t, eps, a, b):
    return (x_t - b * eps) / a  # seed 001, eq. 8


def eps_from_x0(x_t, x0, a, b):
    return (x_t - a * x0) / b  # seed 001, eq. 2


def v_from_eps_x0(eps, x0, a, b):
    return a * eps - b * x0  # seed 001, section 2.6


def x0_from_v(x_t, v, a, b):
    return a * x_t - b * v  # seed 001, section 2.6


def eps_from_v(x_t, v, a, b):
    return b * x_t + a * v  # seed 001, section 2.6


def score_from_eps(eps, b):
    """The score grad_x log q(x_t) from the optimal noise prediction eps_hat = E[eps | x_t]: -eps / b_t.

    q(x_t) = int N(x_t; a_t x_0, b_t^2 I) q(x_0) dx_0, so grad log q(x_t) = E[-(x_t - a_t x_0) / b_t^2 | x_t]
    = -E[eps | x_t] / b_t (Tweedie's formula); the score is what guides the reverse-time drift (seed 001,
    appendix A.3, eq. 10). Needs b_t > 0 (t >= 1).
    """
    return -eps / b


def target(objective: str, x0, eps, a, b):
    """The regression target of each objective for the training pair (x_0, eps) (Algorithm 1, line 6)."""
    check_objective(objective)
    if objective == "eps":
        return eps
    if objective == "x0":
        return x0
    return v_from_eps_x0(eps, x0, a, b)


class Prediction(NamedTuple):
    eps: torch.Tensor
    x0: torch.Tensor
    v: torch.Tensor


def predictions(objective: str, out, x_t, a, b, clip_x0: bool | float = False) -> Prediction:
    """Turn a network output in `objective` into all three predictions (eps_hat, x0_hat, v_hat).

    With clip_x0, x0_hat is clamped to the data range, [-1, 1] for True (images) or [-c, c] for a number
    c > 0 (e.g. the 2D toys, whose points lie within about 2.5 of 0), and eps_hat, v_hat are recomputed from it
    so the three stay consistent with x_t = a x0_hat + b eps_hat. eps predictions need b > 0 (t >= 1); x0 from
    eps needs a > 0, which every clipped schedule guarantees (alpha_bar_T > 0), but divides the net's error by
    a: at t = T of the cosine schedule (a_T = 5e-5 for T = 1000) only clipping keeps x0_hat in range.
    """
    check_objective(objective)
    if objective == "eps":
        eps, x0 = out, x0_from_eps(x_t, out, a, b)
    elif objective == "x0":
        eps, x0 = eps_from_x0(x_t, out, a, b), out
    else:
        eps, x0 = eps_from_v(x_t, out, a, b), x0_from_v(x_t, out, a, b)
    if clip_x0:
        bound = 1.0 if clip_x0 is True else float(clip_x0)
        if not bound > 0:
            raise ValueError(f"clip_x0 must be True, False or a bound > 0, got {clip_x0!r}")
        x0 = x0.clamp(-bound, bound)
        eps = eps_from_x0(x_t, x0, a, b)
    return Prediction(eps=eps, x0=x0, v=v_from_eps_x0(eps, x0, a, b))
