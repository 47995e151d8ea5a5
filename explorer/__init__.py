"""Diffusion explorer: the maths of denoising diffusion models (DDPM, DDIM, DPM-Solver++), the networks and
the trainer behind the Gradio app in `explorer.app`.

Conventions (see DESIGN.md): timesteps t = 1..T with index 0 meaning clean data; schedule arrays have length
T+1; images are float tensors in [-1, 1], NCHW; schedules are float64 and cast at use. Only `explorer.app`
imports gradio.
"""
