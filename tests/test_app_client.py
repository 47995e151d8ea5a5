"""The app launched in-process (as app.py launches it) and driven through its named API with gradio_client."""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from explorer.app import forward as fv
from explorer.app import forward_logic as fl

pytestmark = pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")  # as explorer.app.uploads sets

ENDPOINTS = {"/forward", "/upload", "/drop_upload", "/set_T", "/step_back", "/step_forward", "/toggle_play", "/tick"}
CONTROLS = ["image", "upload", "size", "colour", "schedule", "T", "seed", "t", "log_y"]


@pytest.fixture(scope="module")
def client(app_url, tmp_path_factory):
    return Client(app_url, verbose=False, analytics_enabled=False, download_files=str(tmp_path_factory.mktemp("dl")))


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_the_named_endpoints_and_their_parameters(client):
    api = client.view_api(return_format="dict", print_info=False)
    assert ENDPOINTS <= set(api["named_endpoints"])  # other views add theirs
    assert not api["unnamed_endpoints"]
    params = {name: [p["parameter_name"] for p in ep["parameters"]] for name, ep in api["named_endpoints"].items()}
    for name in ("/forward", "/set_T", "/step_back", "/step_forward", "/tick"):
        assert params[name] == CONTROLS
    assert params["/upload"] == CONTROLS[1:]


def test_forward_returns_what_the_handler_computes(client):
    args = ("sneaker", None, 64, "grey", "linear", 200, 4, 120, True)
    out = client.predict(*args, api_name="/forward")
    expected = fv.forward(**dict(zip(CONTROLS, args)))
    assert len(out) == len(fl.OUTPUTS)
    for got, want in zip(out[:4], expected[:4]):
        assert np.array_equal(pixels(got), want)  # PNG: lossless
    for got in out[4:7]:
        assert got["type"] == "plotly"
    assert out[4:7][0]["plot"] == expected[4].to_json()
    assert list(out[7:]) == list(expected[7:])


def test_t0_through_the_api_is_the_image(client):
    out = client.predict("bag", None, 64, "grey", "cosine", 1000, 0, 0, False, api_name="/forward")
    assert np.array_equal(pixels(out[1]), pixels(out[0])) and np.array_equal(pixels(out[2]), pixels(out[0]))


def test_steps_and_T(client):
    base = ["sandal", None, 64, "grey", "cosine", 50, 0]
    assert client.predict(*base, 49, False, api_name="/step_forward")[0] == 50
    assert client.predict(*base, 50, False, api_name="/step_forward")[0] == 50
    assert client.predict(*base, 0, False, api_name="/step_back")[0] == 0
    assert client.predict(*base, 20, False, api_name="/tick")[0] == 21
    slider, *_ = client.predict("sandal", None, 64, "grey", "cosine", 200, 0, 500, False, api_name="/set_T")
    assert slider == {"__type__": "update", "maximum": 200, "value": 100}  # 500 of 1000 -> 100 of 200


@pytest.mark.parametrize("name,size,colour,shape", [("photo", 128, "colour", (128, 128, 3)),
                                                    ("cmyk", 32, "grey", (224, 224)),
                                                    ("palette", 64, "colour", (192, 192, 3)),
                                                    ("rgba", 64, "grey", (192, 192))])
def test_good_uploads(client, uploads, name, size, colour, shape):
    image, *out = client.predict(handle_file(str(uploads[name])), size, colour, "cosine", 1000, 0, 10, False,
                                 api_name="/upload")
    assert image["value"] == fl.UPLOAD and fl.UPLOAD in [c[0] for c in image["choices"]]
    assert pixels(out[0]).shape == shape


@pytest.mark.parametrize("name,message", [
    ("bomb", "megapixels"), ("50mp", "megapixels"), ("tiny", "1x1 pixels"), ("text", "not an image"),
    ("truncated", "could not be decoded"),
])
def test_bad_uploads_give_a_message_and_the_app_keeps_serving(client, uploads, name, message):
    with pytest.raises(AppError, match=message):
        client.predict(handle_file(str(uploads[name])), 64, "grey", "cosine", 1000, 0, 10, False, api_name="/upload")
    out = client.predict("coat", None, 64, "grey", "cosine", 1000, 0, 10, False, api_name="/forward")
    assert pixels(out[1]).shape == (224, 224)


def test_uploads_are_limited_in_size(client, tmp_path):
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG" + bytes(21 << 20))
    with pytest.raises(ValueError, match="maximum file size"):
        client.predict(handle_file(str(big)), 64, "grey", "cosine", 1000, 0, 10, False, api_name="/upload")


def test_out_of_range_values_give_a_message(client):
    with pytest.raises(AppError, match="t must be"):
        client.predict("coat", None, 64, "grey", "cosine", 50, 0, 60, False, api_name="/forward")


def test_requests_must_go_through_the_queue(app_url):
    """api_open=False: a direct POST that would skip the bounded queue is refused."""
    body = json.dumps({"data": ["coat", None, 64, "grey", "cosine", 1000, 0, 10, False]}).encode()
    request = urllib.request.Request(f"{app_url}gradio_api/run/forward", data=body,
                                     headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 404 and "queue" in refused.value.read().decode()
