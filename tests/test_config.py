"""Config: defaults, the example file, environment overrides, and errors naming key, value, source."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamer.config import ConfigError, load_settings

EXAMPLE = Path(__file__).parent.parent / "config" / "streamer.example.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "streamer.yaml"
    path.write_text(text)
    return path


def test_example_config_loads_and_equals_defaults():
    assert load_settings(EXAMPLE, env={}) == load_settings(None, env={})


def test_environment_overrides_file(tmp_path: Path):
    path = write(tmp_path, "http:\n  port: 9000\n")
    s = load_settings(path, env={"STREAMER__HTTP__PORT": "9100",
                                 "STREAMER__EXCHANGES__BINANCE__SYMBOLS": "[BTCUSDT, ETHUSDT]"})
    assert (s.http.port, s.exchanges.binance.symbols) == (9100, ["BTCUSDT", "ETHUSDT"])


def test_wrong_type_names_key_value_and_file(tmp_path: Path):
    path = write(tmp_path, "http:\n  port: abc\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    err = info.value
    assert (err.key, err.value, err.source) == ("http.port", "abc", str(path))
    assert "int" in err.expected


def test_unknown_key_is_an_error_not_a_silent_default(tmp_path: Path):
    path = write(tmp_path, "rules:\n  extreme_funding:\n    threshold: 0.5\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert info.value.key == "rules.extreme_funding.threshold"


def test_bad_environment_value_names_the_variable():
    with pytest.raises(ConfigError) as info:
        load_settings(None, env={"STREAMER__RULES__EXTREME_FUNDING__THRESHOLD_PCT": "-1"})
    err = info.value
    assert (err.key, err.value) == ("rules.extreme_funding.threshold_pct", -1)
    assert err.source == "environment variable STREAMER__RULES__EXTREME_FUNDING__THRESHOLD_PCT"


def test_invalid_yaml_names_the_line(tmp_path: Path):
    path = write(tmp_path, "http:\n  port: [1\n")
    with pytest.raises(ConfigError, match="line"):
        load_settings(path, env={})


def test_bad_url_scheme_is_rejected(tmp_path: Path):
    path = write(tmp_path, "exchanges:\n  binance:\n    um_ws_url: http://x\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert info.value.key == "exchanges.binance.um_ws_url"


def test_new_rule_sections_load_from_yaml_and_environment(tmp_path: Path):
    path = write(tmp_path, "rules:\n  oi_change:\n    window_s: 86400\n    threshold_pct: 25\n"
                           "  iv_extreme:\n    enabled: false\n  funding_divergence:\n    max_age_s: 300\n")
    s = load_settings(path, env={"STREAMER__RULES__FUNDING_DIVERGENCE__THRESHOLD_PCT": "0.1"})
    assert (s.rules.oi_change.window_s, s.rules.oi_change.threshold_pct) == (86400, 25)
    assert s.rules.iv_extreme.enabled is False
    assert (s.rules.funding_divergence.max_age_s, s.rules.funding_divergence.threshold_pct) == (300, 0.1)


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"STREAMER__RULES__OI_CHANGE__THRESHOLD_PCT": "0"}, "rules.oi_change.threshold_pct"),
        ({"STREAMER__RULES__FUNDING_DIVERGENCE__RESOLVE_RATIO": "1.5"}, "rules.funding_divergence.resolve_ratio"),
        ({"STREAMER__RULES__IV_EXTREME__LOW_PCT": "98"}, "rules.iv_extreme.low_pct"),
    ],
)
def test_new_rule_sections_reject_values_that_break_their_definition(env, key):
    with pytest.raises(ConfigError) as info:
        load_settings(None, env=env)
    assert info.value.key == key


def test_config_errors_never_show_secrets_or_webhook_urls(tmp_path):
    from streamer.config import ConfigError, load_settings

    path = tmp_path / "streamer.yaml"
    path.write_text("sinks:\n  webhooks:\n    - secret: whsec_c2VjcmV0c2VjcmV0c2VjcmV0\n      timeout_s: 5\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path, env={})
    assert "c2VjcmV0" not in str(err.value)
    assert "'secret': '<redacted>'" in str(err.value)
    path.write_text("sinks:\n  chat:\n    - {kind: slack, url: 'https://hooks.slack.com/services/T0/B0/TOKEN1'"
                    ", filters: {nope: 1}}\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path, env={})
    assert "TOKEN1" not in str(err.value)
