"""A bad-input corpus through every named API endpoint of the served app (gradio_client, in-process server):
wrong types, NaN and infinities, huge and negative numbers, unknown choices, corrupt and hostile uploads. Each
call either works or is answered with a clear message (a gr.Error the app raised on purpose, or Gradio's own
validation), never an unhandled exception; and the app keeps serving afterwards."""
from __future__ import annotations

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

# Gradio's words for an exception the app did not turn into a message for the visitor
UNHANDLED = "has not enabled verbose error reporting"
# numbers out of range or of the wrong kind, and not numbers at all (a string, a list)
NUMBERS = [-1e30, 1e30, 0.5, True, "seven", [3]]
# NaN and the infinities as a raw HTTP client could send them (JSON has no such numbers), and the same as above
NON_NUMBERS = ["nan", "inf", "-inf", "seven", [3]]
CHOICES = ["no-such-choice", None]
FLAGS = ["yes"]
# cheap valid values, so that a call the corpus lets through stays short
CHEAP = {"steps": 2, "steps_b": 2, "n": 1, "train_steps": 10, "T": 50, "t": 25}  # T: every view offers 50
CHEAP_BY_ENDPOINT = {"/toy_forward": {"n": 100}, "/toy_set_T": {"n": 100}, "/toy_dataset": {"n": 100},
                     "/toy_generate": {"n": 100}, "/likelihood": {"t_stride": 1000},
                     "/sweep": {"samplers": ["dpm-solver++"], "step_counts": [5]}}


@pytest.fixture(scope="module")
def client(app_url, tmp_path_factory):
    return Client(app_url, verbose=False, analytics_enabled=False, download_files=str(tmp_path_factory.mktemp("dl")))


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, uploads):
    """Uploads no reader should trust: random bytes named .png, a header-only safetensors file, and the conftest's
    truncated JPEG and decompression bomb."""
    d = tmp_path_factory.mktemp("hostile")
    files = {"random.png": bytes(range(256)) * 64, "checkpoint.safetensors": b"\x10\0\0\0\0\0\0\0{}"}
    for name, data in files.items():
        (d / name).write_bytes(data)
    return [d / name for name in files] + [uploads[k] for k in ("truncated", "bomb")]


def endpoints(client) -> dict[str, list[dict]]:
    api = client.view_api(return_format="dict", print_info=False)
    return {name: ep["parameters"] for name, ep in api["named_endpoints"].items() if ep["parameters"]}


def defaults(name: str, params: list[dict]) -> dict:
    values = {p["parameter_name"]: p.get("parameter_default") for p in params}
    cheap = {**CHEAP, **CHEAP_BY_ENDPOINT.get(name, {})}
    return {key: cheap.get(key, value) for key, value in values.items()}


def corpus(kind: str, hostile: list) -> list:
    if kind == "filepath":
        return [handle_file(str(path)) for path in hostile]
    if kind.startswith("Literal"):
        return CHOICES
    if kind == "bool":
        return FLAGS
    return NUMBERS


def call(client, name: str, values: dict):
    """The endpoint's final output, or the AppError it answered with."""
    return calls(client, name, [values])[0]


def calls(client, name: str, many: list[dict]) -> list:
    """call() for each of `many`, submitted at once (as many visitors would: the queue runs them as the app's
    concurrency limits allow), answers in order."""
    jobs = [client.submit(api_name=name, **values) for values in many]
    answers = []
    for job in jobs:
        try:
            answers.append(job.result())
        except AppError as err:
            answers.append(err)
    return answers


def crashed(answer) -> bool:
    """An AppError whose message is not the app's or Gradio's words but the mark of an unhandled exception."""
    return isinstance(answer, AppError) and (UNHANDLED in str(answer) or not str(answer).strip())


def test_every_endpoint_answers_the_corpus_with_results_or_messages(client, hostile):
    eps = endpoints(client)
    assert len(eps) >= 15  # the forward view, the reverse view and the toy lab
    tried, crashes = 0, []
    for name, params in eps.items():
        base = defaults(name, params)
        cases = [(p["parameter_name"], bad) for p in params for bad in corpus(p["python_type"]["type"], hostile)]
        answers = calls(client, name, [{**base, key: bad} for key, bad in cases])
        crashes += [f"{name} {key}={bad!r}" for (key, bad), answer in zip(cases, answers) if crashed(answer)]
        tried += len(cases)
    assert tried > 200 and not crashes, "\n".join(crashes)
    # still serving, with the same answers as before the corpus
    for name, params in eps.items():
        if name in ("/forward", "/sigma_plot", "/toy_forward"):
            assert not isinstance(call(client, name, defaults(name, params)), AppError), name


@pytest.mark.parametrize("name,param,label", [("/forward", "t", "t: 0 is the image, T is pure noise: "),
                                              ("/generate", "steps", "Steps: ")])
def test_non_numbers_in_numeric_fields_are_answered_with_messages(client, name, param, label):
    params = endpoints(client)[name]
    answers = calls(client, name, [{**defaults(name, params), param: bad} for bad in NON_NUMBERS])
    assert all(isinstance(a, AppError) and "is not a number" in str(a) and label in str(a) for a in answers), answers
