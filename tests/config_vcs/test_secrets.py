"""Credential detection (pure): names, private keys, and secret-looking keys with values."""

import json

import pytest

from config_vcs.secrets import is_secret_key, secret_reason


@pytest.mark.parametrize("name", [".env", ".env.production", "tls/server.pem", "exchange.key", "id_ed25519"])
def test_credential_file_names_are_flagged(name):
    assert secret_reason(name, b"")


def test_private_key_block_is_flagged_in_any_file():
    assert "private key" in secret_reason("notes.txt", b"-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n")


def test_json_secret_with_value_is_flagged_with_its_key_path_not_its_value():
    reason = secret_reason("config.json", b'{"exchange": {"name": "binance", "key": "AKIA123", "secret": ""}}')
    assert reason == "key 'exchange.key' has a value"
    assert "AKIA123" not in reason


def test_json_with_empty_secrets_is_not_flagged():
    assert secret_reason("config.json", b'{"exchange": {"key": "", "secret": ""}, "dry_run": true}') is None


def test_json_with_comments_falls_back_to_line_scan():
    text = b'{\n  // freqtrade allows comments\n  "api_server": {"password": "hunter2"}\n}\n'
    assert secret_reason("config.json", text)


def test_toml_and_yaml_keys_are_flagged():
    assert secret_reason("bot.toml", b'[telegram]\ntoken = "123:abc"\n') == "key 'telegram.token' has a value"
    assert secret_reason("bot.yaml", b"db:\n  password: s3cret\n")
    assert secret_reason("bot.yml", b"db:\n  password: ''\n  token: ~\n") is None


def test_binary_content_is_not_parsed():
    assert secret_reason("blob.bin", b"\0password=x") is None


@pytest.mark.parametrize("key", ["key", "api_key", "apiSecret", "secret_key", "ws_token", "DB_PASSWORD", "passphrase"])
def test_secret_like_key_names(key):
    assert is_secret_key(key)


@pytest.mark.parametrize("key", ["keyboard", "token_count", "key_file", "stake_currency", "name"])
def test_ordinary_key_names(key):
    assert not is_secret_key(key)


# -- the config formats of real bots (issue 26: a miss is a leak) ---------------------------------

FREQTRADE_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
FREQTRADE_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
TELEGRAM_TOKEN = "5938271046:AAHfK3x9Qm2LwVtR7nYbE4cJ8uPzS1dGk0o"
JWT_SECRET = "7f3b2c9e4a1d8f6b0e5c3a9d7b1f4e2c8a6d0b3f5e9c1a7d"
WS_TOKEN = "sercet_Ws_t0ken-Xy81kQ"

FREQTRADE_CONFIG = f"""{{
    "max_open_trades": 3,
    "stake_currency": "USDT",
    "dry_run": false,
    "exchange": {{
        "name": "binance",
        "key": "{FREQTRADE_KEY}",
        "secret": "{FREQTRADE_SECRET}",
        "password": "",
        "ccxt_config": {{}},
        "pair_whitelist": ["BTC/USDT", "ETH/USDT"]
    }},
    "telegram": {{"enabled": true, "token": "{TELEGRAM_TOKEN}", "chat_id": "1234567890"}},
    "api_server": {{
        "enabled": true,
        "listen_ip_address": "127.0.0.1",
        "jwt_secret_key": "{JWT_SECRET}",
        "ws_token": "{WS_TOKEN}",
        "CORS_origins": [],
        "username": "freqtrader",
        "password": "SuperSecurePassword"
    }},
    "bot_name": "freqtrade"
}}
"""


def _only(text: str, **replace: str) -> bytes:
    """FREQTRADE_CONFIG with every credential emptied except the ones named."""
    emptied = text
    for value in (FREQTRADE_KEY, FREQTRADE_SECRET, TELEGRAM_TOKEN, JWT_SECRET, WS_TOKEN, "SuperSecurePassword"):
        if value not in replace.values():
            emptied = emptied.replace(f'"{value}"', '""')
    return emptied.encode()


@pytest.mark.parametrize("kept, key", [
    (FREQTRADE_KEY, "exchange.key"),
    (FREQTRADE_SECRET, "exchange.secret"),
    (TELEGRAM_TOKEN, "telegram.token"),
    (JWT_SECRET, "api_server.jwt_secret_key"),
    (WS_TOKEN, "api_server.ws_token"),
    ("SuperSecurePassword", "api_server.password"),
])
def test_each_credential_of_a_freqtrade_config_is_found_alone(kept, key):
    reason = secret_reason("user_data/config.json", _only(FREQTRADE_CONFIG, kept=kept))
    assert reason == f"key {key!r} has a value"
    assert kept not in reason


def test_a_freqtrade_config_with_every_credential_empty_is_not_flagged():
    assert secret_reason("user_data/config.json", _only(FREQTRADE_CONFIG)) is None


def test_commented_freqtrade_json_is_scanned_by_its_pairs():
    text = "// written by freqtrade new-config\n" + FREQTRADE_CONFIG.replace(
        '"dry_run": false,', '"dry_run": false,  /* paper trading off */'
    ).replace('"bot_name": "freqtrade"', '"bot_name": "freqtrade",  // trailing comma next\n')
    with pytest.raises(ValueError):
        json.loads(text)
    assert secret_reason("config.json", _only(text, kept=WS_TOKEN)) == "key 'ws_token' has a value"
    assert secret_reason("config.json", _only(text)) is None


def test_json5_single_quotes_bare_keys_and_inline_objects():
    text = "{\n  // json5\n  exchange: {name: 'binance', key: 'AbCdEf123456', secret: ''},\n}\n"
    assert secret_reason("bot.json5", text.encode()) == "key 'key' has a value"
    assert secret_reason("bot.json5", text.replace("AbCdEf123456", "").encode()) is None
    assert secret_reason("bot.jsonc", b"{apiKey: 'x1', /* c */ }") == "key 'apiKey' has a value"


@pytest.mark.parametrize("name, text", [
    (".env", "DEBUG=1\n"),  # by its name, whatever it holds
    ("deploy/bot.env", "FREQTRADE__EXCHANGE__KEY=abc\n"),
    ("settings.ini", "[telegram]\nexport BOT_TOKEN='abc:def'\n"),
    ("vars.properties", "exchange.api.secret = s3cr3t\n"),
])
def test_env_style_files_are_flagged(name, text):
    assert secret_reason(name, text.encode())


def test_yaml_with_nested_credentials():
    text = (
        "bot:\n  name: grid\n  exchange:\n    id: kraken\n    credentials:\n"
        "      apiKey: \"Kx7pQ2mN9vR4tW8z\"\n      privateKey: |\n        -----BEGIN EC KEY-----\n"
    )
    assert secret_reason("bot.yaml", text.encode()) == "key 'apiKey' has a value"
    assert secret_reason("bot.yaml", b"bot:\n  exchange:\n    credentials:\n      apiKey: ''\n      uid: ~\n") is None


# -- values that look generated, under keys that hint at credentials --------------------------------

@pytest.mark.parametrize("key, value", [
    ("access_key_id", "AKIAQWERTYUIOPASDF12"),
    ("auth", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.x8Yv2"),
    ("session_cookie", "s%3AqP8x7Vn2Kd9LmZ4r.Tf3"),
    ("privateKeyHex", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    ("signing", "Zx81Kk2LmQp93RtVw7Yb"),
])
def test_generated_values_under_credential_hinting_keys_are_flagged(key, value):
    assert secret_reason("c.json", f'{{"{key}": "{value}"}}'.encode()) == f"key {key!r} has a value"
    assert secret_reason("c.yaml", f"{key}: {value}\n".encode()) == f"key {key!r} has a value"


@pytest.mark.parametrize("key, value", [
    ("access_key_id", ""), ("auth", True), ("auth_enabled", "none"), ("session_timeout", 3600),
    ("key_file", "/etc/tradevault/keys/binance.json"), ("private_channel", "freqtrade-alerts"),
    ("access_mode", "read-write"), ("auth_strategy", "SampleStrategy"), ("seed", 42),
    ("token_count", 12), ("webhook_enabled", False), ("signature_version", "v4"),
    ("session_name", "binance_futures_v2"), ("keyboard", "[['/daily', '/profit']]"),
])
def test_obvious_non_secrets_under_hinting_keys_are_not_flagged(key, value):
    assert secret_reason("c.json", json.dumps({key: value}).encode()) is None, (key, value)


@pytest.mark.parametrize("name, text", [
    ("c.json", '{"notify": {"discord": "https://discord.com/api/webhooks/112233445566/AbCdEfGhIjKlMnOpQrSt"}}'),
    ("bots.toml", f'bots = ["{TELEGRAM_TOKEN}"]'),
    ("aws.ini", "aws = AKIAIOSFODNN7EXAMPLE\n"),
])
def test_well_known_token_shapes_are_flagged_under_any_key(name, text):
    reason = secret_reason(name, text.encode())
    assert reason and not any(part in reason for part in ("AKIA", "discord.com", TELEGRAM_TOKEN[:10]))


@pytest.mark.parametrize("text, shape", [
    (f"start_bot('{TELEGRAM_TOKEN}')\n", "a Telegram bot token"),
    ("# AGE-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQY\n", "an age secret key"),
    ("connect('s3', 'AKIAIOSFODNN7EXAMPLE')\n", "an AWS access key id"),
])
def test_a_token_shape_outside_any_key_is_named_by_its_shape(text, shape):
    assert secret_reason("strategies/s.py", text.encode()) == f"it holds what looks like {shape}"
