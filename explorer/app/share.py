"""Share links and settings files of the forward view, the reverse view and the 2D toy lab, with no gradio in it:
a view's controls to a query string (`?view=forward&image=sneaker&schedule=cosine&T=1000&seed=0&t=250&log_y=false`)
or a JSON object (`{"view": "forward", "t": 250, ...}`) and back, every value checked by the view's own settings
parsing (forward_logic.ForwardSettings.parse, reverse_logic.RunSettings.parse, toy_logic.ToySettings.parse) and
by the choices its page offers.

A link or file carries the view and the controls in its ViewSpec's `keys`; every other control is the view's
default, so a link shows the same to whoever opens it. What stays with one visitor (an uploaded image, a model
trained in the session, an uploaded checkpoint) is not carried: `settings_of` puts the default in its place and
says so.

Reading a link (`read_link`) is lenient: an unknown parameter or a bad value is left out and named in
`Link.ignored`, the others still apply. Parameters whose names start with "__" belong to the app's host (Gradio's
`__theme`, Hugging Face Spaces' `__sign`) and are passed over silently. Reading a settings file (`read_settings`)
is strict: a bad value, or a file that is not a JSON object of this view, raises ValueError and sets nothing;
only unknown keys are left out and named.

Values are checked in the order of `keys`, each with those accepted before it, and setting one moves the others
as the page does (ViewSpec.follow): T comes before t and the sampler's steps and moves them (t keeps its fraction
of the process, steps stay within T), so `?view=forward&T=50` alone is a valid link; the reverse view's checkpoint
comes first and brings its objective, its T and its classes (reverse_logic.with_checkpoint).
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from explorer import checks
from explorer.app import catalogue, forward_logic, reverse_logic, toy_logic

VIEW = "view"  # the parameter that names the view (a tab id of explorer.app)
HOST_PREFIX = "__"
MAX_FILE_BYTES = 16_384  # a settings file is a few hundred bytes


def follow_T(before: dict, changed: dict, key: str) -> dict:
    """The page's T control: a new T moves t (its fraction of the process kept) and the steps (at most T)."""
    if key == "T":
        T = checks.whole("T", changed["T"], 1)
        changed["t"] = forward_logic.rescaled_t(before["t"], before["T"], T)
        if "steps" in changed:
            changed["steps"] = min(before["steps"], T)
    return changed


def follow_checkpoint(before: dict, changed: dict, key: str) -> dict:
    """The reverse view's checkpoint list: a bundled checkpoint brings its objective, T and classes."""
    if key != "checkpoint":
        return changed
    found = catalogue.bundled_images()
    if changed["checkpoint"] not in found:
        raise ValueError(f"checkpoint must be one of the bundled files ({', '.join(found) or 'none'}), "
                         f"got {changed['checkpoint']!r}")
    name = changed["checkpoint"]
    return reverse_logic.with_checkpoint(changed, catalogue.PRETRAINED / name, found[name])


@dataclass(frozen=True)
class ViewSpec:
    """What a view's links carry and how they are checked."""
    title: str  # the view as messages name it
    defaults: dict  # all the view's controls by name; a key's kind (int, float, bool, str) is its default's
    keys: tuple[str, ...]  # the controls a link carries, in the order they are checked
    parse: Callable[[dict], object]  # the view's settings parsing: ValueError names what is wrong
    choices: dict[str, tuple]  # controls whose page (or whose link) offers fewer values than `parse` accepts
    follow: Callable[[dict, dict, str], dict] = follow_T  # (before, changed, key): the others that `key` moves


SPECS = {
    "forward": ViewSpec("the forward view", forward_logic.DEFAULTS, ("image", "schedule", "T", "seed", "t", "log_y"),
                        forward_logic.ForwardSettings.parse,
                        {"image": tuple(forward_logic.GALLERY), "T": forward_logic.T_CHOICES}),
    "reverse": ViewSpec("the reverse view", reverse_logic.DEFAULTS,
                        ("checkpoint", "method", "variance", "eta", "spacing", "steps", "label", "guidance",
                         "classifier_scale", "seed", "n", "clip"),
                        reverse_logic.RunSettings.parse, {}, follow_checkpoint),
    "toy": ViewSpec("the 2D toy lab", toy_logic.DEFAULTS,
                    ("dataset", "schedule", "T", "objective", "source", "t", "n", "seed", "field_kind", "method",
                     "variance", "eta", "spacing", "steps", "label", "guidance", "clip"),
                    toy_logic.ToySettings.parse, {"T": toy_logic.T_CHOICES, "source": ("pretrained",)}),
}


@dataclass(frozen=True)
class Link:
    """A link, read: the tab it opens (None: it names none), that view's controls by name (None for a view that
    takes no link parameters) and what was left out, each with the reason."""
    view: str | None
    controls: dict | None
    ignored: list[str]


def _checked(spec: ViewSpec, key: str, value):
    """`value` as the page holds it (ints for whole-number controls, floats for the others), checked by its kind
    and the page's choices alone; ValueError."""
    kind = type(spec.defaults[key])
    if kind is bool:
        checks.flag(key, value)
    elif kind is str and not (isinstance(value, str) and value):
        raise ValueError(f"{key} must be a non-empty text, got {value!r}")
    if key in spec.choices:
        checks.choice(key, value, spec.choices[key])
    return value


def _accept(spec: ViewSpec, controls: dict, key: str, value) -> dict:
    """`controls` with `key` set to `value` if the view's parsing accepts the result, else ValueError; the controls
    that setting `key` moves on the page move with it (spec.follow)."""
    value = _checked(spec, key, value)
    changed = spec.follow(controls, {**controls, key: value}, key)
    spec.parse(changed)
    kind = type(spec.defaults[key])
    changed[key] = kind(value) if kind in (int, float) else value  # whole numbers checked by parse: int() is exact
    return changed


def _from_text(spec: ViewSpec, key: str, text: str):
    """A query parameter's text as a value of the key's kind: true/false for flags, numbers for numbers (the
    parsing then says whether they fit), text as it is."""
    kind = type(spec.defaults[key])
    if kind is bool:
        if text.lower() not in ("true", "false"):
            raise ValueError(f"{key} must be true or false, got {text!r}")
        return text.lower() == "true"
    if kind in (int, float):
        for number in (int, float):
            try:
                return number(text)
            except ValueError:
                pass
        raise ValueError(f"{key} must be a number, got {text!r}")
    return text


def _unknown(spec: ViewSpec, key: str) -> str:
    return f"{key}: not a setting of {spec.title} (its settings: {', '.join(spec.keys)})"


def read_link(query: Mapping[str, str], tabs: Iterable[str]) -> Link:
    """A page's query parameters (name -> text) read as a link to one of `tabs` (the app's tab ids)."""
    params = {k: v for k, v in query.items() if not k.startswith(HOST_PREFIX)}
    view = params.pop(VIEW, None)
    tabs = tuple(tabs)
    if view not in tabs:
        why = "the link names no view" if view is None else f"unknown view {view!r}; allowed: {', '.join(tabs)}"
        return Link(None, None, [f"{k}: {why}" for k in ([] if view is None else [VIEW]) + list(params)])
    spec = SPECS.get(view)
    if spec is None:
        return Link(view, None, [f"{k}: the {view} tab takes no link settings" for k in params])
    controls = dict(spec.defaults)
    ignored = [_unknown(spec, k) for k in params if k not in spec.keys]
    for key in spec.keys:
        if key in params:
            try:
                controls = _accept(spec, controls, key, _from_text(spec, key, params[key]))
            except ValueError as err:
                ignored.append(f"{key}={params[key]!r}: {err}")
    return Link(view, controls, ignored)


def settings_of(view: str, controls: Mapping) -> tuple[dict, list[str]]:
    """The part of a view's controls (by name, as the page sends them; the others default) that a link carries,
    checked by the view's parsing (ValueError), and a note for each value the view accepts but no link carries
    (an upload, the model trained here, a T only the API offers), which the default replaces."""
    spec = SPECS[view]
    controls = {**spec.defaults, **controls}
    spec.parse(controls)
    values, notes = dict(spec.defaults), []
    for key in spec.keys:
        try:
            values = _accept(spec, values, key, controls[key])
        except ValueError:
            notes.append(f"{key} {controls[key]!r} is not in the link: it opens with {values[key]!r}")
    return {k: values[k] for k in spec.keys}, notes


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def to_query(view: str, values: Mapping) -> str:
    """`?view=...&key=value...` for a view's link values (settings_of)."""
    return "?" + urlencode({VIEW: view, **{k: _text(values[k]) for k in SPECS[view].keys}})


def to_json(view: str, values: Mapping) -> str:
    """The settings file: a JSON object of the view and its link values (settings_of)."""
    return json.dumps({VIEW: view, **{k: values[k] for k in SPECS[view].keys}}, indent=2) + "\n"


def read_settings(view: str, data: bytes) -> tuple[dict, list[str]]:
    """A settings file's bytes as the view's controls by name (its defaults changed by the file), and the unknown
    keys left out; ValueError for anything else that is wrong, so that nothing is set."""
    spec = SPECS[view]
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"a settings file has at most {MAX_FILE_BYTES} bytes; this one has more")
    try:
        saved = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise ValueError(f"not a settings file: no JSON text ({err})") from None
    if not isinstance(saved, dict):
        raise ValueError(f"not a settings file: a JSON object was expected, not {type(saved).__name__}")
    if saved.get(VIEW) != view:
        other = SPECS[saved[VIEW]].title if saved.get(VIEW) in SPECS else f"view {saved.get(VIEW)!r}"
        raise ValueError(f"these settings are for {other}, not {spec.title}")
    controls = dict(spec.defaults)
    for key in spec.keys:
        if key in saved:
            controls = _accept(spec, controls, key, saved[key])
    return controls, [_unknown(spec, k) for k in saved if k != VIEW and k not in spec.keys]
