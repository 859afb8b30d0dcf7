"""Credential detection (pure): names, private keys, and secret-looking keys with values."""

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
