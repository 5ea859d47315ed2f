"""``load_settings`` on mutated copies of config/streamer.example.yaml and on garbage ``STREAMER__*``
variables: it succeeds or raises ``ConfigError`` naming a key path and what was expected, never another
exception."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamer.config import ConfigError, load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "streamer.example.yaml"
BASE = yaml.safe_load(EXAMPLE.read_text())

scalars = (st.none() | st.booleans() | st.integers(min_value=-(10**40), max_value=10**40)
           | st.floats() | st.sampled_from([-1, 0, -0.5, 1e308, 10**20, "", "abc", "-1", "1e999", "nan", ".inf",
                                            "wss://x", "all", "127.0.0.1", "0.0.0.0"]) | st.text(max_size=10))
garbage = st.recursive(scalars, lambda c: st.lists(c, max_size=3)
                       | st.dictionaries(st.text(max_size=6) | st.integers(), c, max_size=3), max_leaves=8)


def _paths(value: object, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.extend(_paths(v, (*prefix, i)))
    return out


PATHS = _paths(BASE)
def _get(value, path):
    for p in path:
        value = value[p]
    return value



def _set(value, path, new):
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _set(value[head], rest, new)}
    copy = list(value)
    copy[head] = _set(copy[head], rest, new)
    return copy


def _check(path: Path | None, env: dict[str, str]) -> None:
    try:
        load_settings(path, env=env)
    except ConfigError as exc:
        error = exc
    else:
        return
    message = str(error)
    assert error.key, message
    assert error.expected, message
    assert error.key in message
    assert error.expected in message


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_mutated_example_config_gives_config_error_or_settings(tmp_path_factory, data):
    doc = BASE
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        kind = data.draw(st.sampled_from(["replace", "unknown_key", "delete"]))
        if kind == "replace":
            doc = _set(doc, data.draw(st.sampled_from(_paths(doc))), data.draw(garbage))
        else:
            maps = [p for p in _paths(doc) if isinstance(_get(doc, p), dict)]
            if not maps:  # an earlier step replaced the whole document by a scalar or a list
                continue
            where = data.draw(st.sampled_from(maps))
            target = dict(_get(doc, where))
            if kind == "unknown_key":
                target[data.draw(st.text(min_size=1, max_size=8))] = data.draw(garbage)
            elif target:
                target.pop(data.draw(st.sampled_from(sorted(target, key=str))))
            doc = _set(doc, where, target)
    path = tmp_path_factory.mktemp("cfg") / "streamer.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    _check(path, {})


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=st.text(max_size=200))
def test_arbitrary_yaml_text_gives_config_error_or_settings(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("cfg") / "streamer.yaml"
    path.write_text(text)
    _check(path, {})


ENV_PATHS = ["__".join(str(p).upper() for p in path) for path in PATHS if path and all(isinstance(p, str)
                                                                                            for p in path)]


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(names=st.lists(st.sampled_from(ENV_PATHS) | st.text(alphabet="ABCXYZ_", min_size=1, max_size=12),
                      min_size=1, max_size=3),
       values=st.lists(st.text(max_size=20) | st.sampled_from(["-1", "1e999", "[", "{a: [}", "[1, {x: 2}]", "~",
                                                               "nan", "99999999999999999999999", "true", "{}"]),
                       min_size=3, max_size=3))
def test_garbage_env_overrides_give_config_error_or_settings(names, values):
    env = {f"STREAMER__{n}": v for n, v in zip(names, values, strict=False)}
    _check(None, env)
