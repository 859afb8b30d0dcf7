"""Secrets encrypted before they are committed (issue 8): real files, real dulwich, the real
``git`` binary, real age keys (pyrage). What lands in git -- and on remotes -- holds no
credential; the work tree keeps the plaintext; reading back needs the identity file."""

from __future__ import annotations

import json
import os
import subprocess
import tomllib
from pathlib import Path

import pyrage
import pytest
from cvs_helpers import bare_remote, commit_count, fast_options, git, remote_head, wait_for, write
from pyrage import x25519

from config_vcs import history
from config_vcs.errors import BadInput
from config_vcs.sealing import FILE_HEADER, check_rewrite, json_spans, toml_spans, yaml_spans
from config_vcs.service import ConfigHistory
from tradevault.cli import app
from tradevault.cli.support import run

CONFIG = '{"exchange": {"key": "K", "secret": "S"}, "stake": 10}\n'
API_KEY = "AKIAPLAINTEXTAPIKEY0001"
API_SECRET = "plaintext-api-secret-0002"
ENV_TOKEN = "plaintext-env-token-0003"


@pytest.fixture
def keys(tmp_path):
    """(recipient, identity file, a wrong identity file)."""
    identity = x25519.Identity.generate()
    path = tmp_path / "keys" / "config.key"
    path.parent.mkdir()
    path.write_text(f"# public key: {identity.to_public()}\n{identity}\n")
    wrong = tmp_path / "keys" / "wrong.key"
    wrong.write_text(f"{x25519.Identity.generate()}\n")
    return str(identity.to_public()), path, wrong


def options(recipient, identity_file="", **extra):
    return fast_options(
        secret_recipients=(recipient,), secret_identity_file=str(identity_file), **extra
    )


def blob(work: Path, spec: str) -> str:
    return git("show", spec, cwd=work)


def all_objects(git_dir: Path) -> str:
    """Every object's content in a repository (reachable or not), via git itself."""
    done = subprocess.run(
        ["git", "--git-dir", str(git_dir), "cat-file", "--batch-all-objects", "--batch"],
        capture_output=True, timeout=60, check=True,
    )
    return done.stdout.decode("utf-8", errors="replace")


def decrypt_file_blob(data: bytes, identity_file: Path) -> bytes:
    assert data.startswith(FILE_HEADER)
    identity = x25519.Identity.from_str(identity_file.read_text().splitlines()[-1])
    return pyrage.decrypt(data[len(FILE_HEADER):], [identity])


def cli(*argv: str) -> int:
    return run(app, list(argv))


def settings_file(tmp_path, work, recipient, identity_file=None) -> Path:
    cfg = tmp_path / "tradevault.toml"
    text = f'[config_vcs]\npaths = ["{work}"]\nsecret_recipients = ["{recipient}"]\n'
    if identity_file is not None:
        text += f'secret_identity_file = "{identity_file}"\n'
    cfg.write_text(text)
    return cfg


# -- what is committed ---------------------------------------------------------------------------


def test_json_secret_values_are_encrypted_keys_and_other_values_stay_readable(tmp_path, keys):
    recipient, _identity, _ = keys
    work = tmp_path / "config"
    repo = options(recipient).repo(work, create=True)
    write(work / "config.json", CONFIG)
    assert repo.commit_worktree() is not None

    committed = blob(work, "HEAD:config.json")
    parsed = json.loads(committed)  # still valid JSON
    assert parsed["stake"] == 10 and '"stake": 10' in committed
    assert set(parsed["exchange"]) == {"key", "secret"}
    for name in ("key", "secret"):
        assert parsed["exchange"][name].startswith("ENC[age,") and parsed["exchange"][name].endswith("]")
    assert '"K"' not in committed and '"S"' not in committed
    assert (work / "config.json").read_text() == CONFIG  # the work tree keeps the plaintext
    assert git("status", "--porcelain", cwd=work) == ""  # and git does not see it as modified


def test_git_log_p_and_every_object_hold_no_secret(tmp_path, keys):
    recipient, _identity, _ = keys
    work = tmp_path / "config"
    repo = options(recipient).repo(work, create=True)
    write(work / "config.json", json.dumps({"exchange": {"key": API_KEY, "secret": API_SECRET}, "stake": 1}))
    write(work / ".env", f"TELEGRAM_TOKEN={ENV_TOKEN}\n")
    repo.commit_worktree()
    write(work / "config.json", json.dumps({"exchange": {"key": API_KEY, "secret": API_SECRET + "x"}, "stake": 2}))
    repo.commit_worktree()
    assert commit_count(work) == 2

    patch = git("log", "-p", "--all", cwd=work)
    assert '"stake": 2' in patch and "ENC[age," in patch
    objects = all_objects(work / ".git")
    for secret in (API_KEY, API_SECRET, ENV_TOKEN):
        assert secret not in patch
        assert secret not in objects  # not even an unreferenced plaintext blob


def test_env_file_is_encrypted_whole_and_decrypts_to_the_original(tmp_path, keys):
    recipient, identity, _ = keys
    work = tmp_path / "config"
    repo = options(recipient).repo(work, create=True)
    write(work / ".env", f"TELEGRAM_TOKEN={ENV_TOKEN}\nDEBUG=1\n")
    write(work / "tls" / "server.pem", "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n")
    repo.commit_worktree()

    for path in (".env", "tls/server.pem"):
        data = subprocess.run(["git", "show", f"HEAD:{path}"], cwd=work, capture_output=True, check=True).stdout
        assert data.startswith(FILE_HEADER + b"-----BEGIN AGE ENCRYPTED FILE-----\n")
        assert b"TELEGRAM_TOKEN" not in data and b"MIIB" not in data
        assert decrypt_file_blob(data, identity) == (work / path).read_bytes()


def test_toml_and_yaml_values_are_rewritten_in_place(tmp_path, keys):
    recipient, identity, _ = keys
    work = tmp_path / "config"
    repo = options(recipient).repo(work, create=True)
    toml_text = '# bot\n[telegram]\ntoken = "123:abc"  # from BotFather\nchat_id = 42\n[db]\npassword = \'pa"ss\'\n'
    yaml_text = "db:\n  user: bot\n  password: s3cret  # rotate monthly\n  port: 5432\napi_key: 'q''uoted'\n"
    write(work / "bot.toml", toml_text)
    write(work / "db.yaml", yaml_text)
    repo.commit_worktree()

    committed_toml = blob(work, "HEAD:bot.toml")
    parsed = tomllib.loads(committed_toml)
    assert parsed["telegram"]["chat_id"] == 42 and parsed["telegram"]["token"].startswith("ENC[age,")
    assert parsed["db"]["password"].startswith("ENC[age,")
    assert "# from BotFather" in committed_toml and "123:abc" not in committed_toml
    committed_yaml = blob(work, "HEAD:db.yaml")
    assert "  user: bot\n" in committed_yaml and "  port: 5432\n" in committed_yaml
    assert '  password: "ENC[age,' in committed_yaml and "# rotate monthly" in committed_yaml
    assert "s3cret" not in committed_yaml and "uoted" not in committed_yaml

    reader = options(recipient, identity).repo(work, create=False)
    assert history.show(reader, "HEAD:bot.toml").decode() == toml_text  # byte-exact
    assert history.show(reader, "HEAD:db.yaml").decode() == yaml_text


BOT_FILES = {
    # freqtrade's config.json as `new-config` writes it, with comments and a trailing comma
    "user_data/config.json": (
        '{\n  // exchange credentials\n  "exchange": {"name": "binance", "key": "Kx7pQ2mN9vR4tW8zA1", '
        '"secret": "Sb3nV8cX1zL6kJ4hG9", "password": ""},\n'
        '  "telegram": {"enabled": true, "token": "5938271046:AAHfK3x9Qm2LwVtR7nYbE4cJ8uPzS1dGk0o", '
        '"chat_id": "1234567890"},\n'
        '  "api_server": {"jwt_secret_key": "7f3b2c9e4a1d8f6b", "ws_token": "wsTok9x", '
        '"password": "ApiServerPass1", "username": "freqtrader"}, /* ui */\n'
        '  "stake_amount": 100,\n}\n'
    ),
    "bot.json5": "{\n  exchange: {name: 'kraken', apiKey: 'J5AbCdEf9876', secret: 'q\\'uoted'},\n  stake: 5,\n}\n",
    "bot.yaml": "bot:\n  exchange:\n    credentials:\n      apiKey: Y7uH6gT5rF4eD3\n      uid: 42\n  stake: 10\n",
}
BOT_SECRETS = ["Kx7pQ2mN9vR4tW8zA1", "Sb3nV8cX1zL6kJ4hG9", "AAHfK3x9Qm2LwVtR7nYbE4cJ8uPzS1dGk0o", "7f3b2c9e4a1d8f6b",
               "wsTok9x", "ApiServerPass1", "J5AbCdEf9876", "uoted", "Y7uH6gT5rF4eD3"]


def test_real_bot_configs_are_sealed_value_by_value_and_read_back_byte_exact(tmp_path, keys):
    recipient, identity, _ = keys
    work = tmp_path / "config"
    warnings: list[str] = []
    repo = options(recipient).repo(work, create=True, warn=warnings.append)
    for name, text in BOT_FILES.items():
        write(work / name, text)
    repo.commit_worktree()

    patch = git("log", "-p", "--all", cwd=work)
    assert not [s for s in BOT_SECRETS if s in patch]
    assert patch.count("ENC[age,") == len(BOT_SECRETS)
    assert not warnings  # every file sealed in place, none encrypted whole
    assert "// exchange credentials" in patch and '"chat_id": "1234567890"' in patch and "uid: 42" in patch
    reader = options(recipient, identity).repo(work, create=False)
    for name, text in BOT_FILES.items():
        assert history.show(reader, f"HEAD:{name}").decode() == text


def test_a_file_that_cannot_be_rewritten_safely_is_encrypted_whole_with_a_warning(tmp_path, keys):
    recipient, identity, _ = keys
    work = tmp_path / "config"
    warnings: list[str] = []
    repo = options(recipient).repo(work, create=True, warn=warnings.append)
    inline = 'exchange = { name = "binance", secret = "inline-secret" }\n'
    block = "db:\n  password: |\n    multi-line-secret\n"
    write(work / "inline.toml", inline)
    write(work / "block.yaml", block)
    write(work / "app.ini", "[db]\npassword = ini-secret\n")
    repo.commit_worktree()

    for path, plain in (("inline.toml", inline), ("block.yaml", block)):
        data = subprocess.run(["git", "show", f"HEAD:{path}"], cwd=work, capture_output=True, check=True).stdout
        assert data.startswith(FILE_HEADER)
        assert decrypt_file_blob(data, identity).decode() == plain
    assert blob(work, "HEAD:app.ini").startswith(FILE_HEADER.decode())
    assert sorted(w.split(":")[0] for w in warnings) == ["app.ini", "block.yaml", "inline.toml"]
    assert all("encrypted as a whole file" in w for w in warnings)
    assert not any(s in "".join(warnings) for s in ("inline-secret", "multi-line-secret", "ini-secret"))


def test_files_without_secrets_are_committed_as_they_are(tmp_path, keys):
    recipient, _identity, _ = keys
    work = tmp_path / "config"
    repo = options(recipient).repo(work, create=True)
    text = '{"exchange": {"key": "", "name": "binance"}, "stake": 10}\n'
    write(work / "config.json", text)
    repo.commit_worktree()
    assert blob(work, "HEAD:config.json") == text


def test_without_recipients_secrets_are_committed_in_clear_as_before(tmp_path):
    work = tmp_path / "config"
    repo = fast_options().repo(work, create=True)
    write(work / "config.json", CONFIG)
    repo.commit_worktree()
    assert blob(work, "HEAD:config.json") == CONFIG


def test_a_bad_recipient_is_refused_before_anything_starts(tmp_path):
    with pytest.raises(BadInput, match="secret_recipients"):
        ConfigHistory([tmp_path / "config"], {}, fast_options(secret_recipients=("age1nonsense",)))
    assert not (tmp_path / "config").exists()


# -- change detection ------------------------------------------------------------------------------------


def test_unchanged_plaintext_makes_no_commit_across_rescans_and_restarts(tmp_path, keys):
    recipient, identity, _ = keys
    work = tmp_path / "config"
    repo = options(recipient).repo(work, create=True)
    write(work / "config.json", CONFIG)
    write(work / ".env", f"TOKEN={ENV_TOKEN}\n")
    repo.commit_worktree()
    first = blob(work, "HEAD:config.json")

    assert repo.commit_worktree() is None  # rescan
    for name in ("config.json", ".env"):  # rewritten with the same bytes: new stat, same plaintext
        (work / name).write_bytes((work / name).read_bytes())
        os.utime(work / name, ns=(1, 1))
    assert repo.commit_worktree() is None
    again = options(recipient).repo(work, create=False)  # a new process: only the cache on disk
    assert again.commit_worktree() is None
    (work / ".git" / "tradevault" / "secret-cache.json").unlink()  # cache lost, identity at hand
    relearn = options(recipient, identity).repo(work, create=False)
    assert relearn.commit_worktree() is None
    assert commit_count(work) == 1

    # a change of another value keeps the secrets' ciphertexts: the diff is one value
    write(work / "config.json", CONFIG.replace("10", "20"))
    assert relearn.commit_worktree() is not None
    assert blob(work, "HEAD:config.json") == first.replace('"stake": 10', '"stake": 20')


def test_adding_a_recovery_recipient_reseals_the_current_values_to_it(tmp_path, keys):
    recipient, identity, _ = keys
    work = tmp_path / "config"
    write(work / "config.json", CONFIG)
    write(work / ".env", f"TOKEN={ENV_TOKEN}\n")
    options(recipient, identity).repo(work, create=True).commit_worktree()
    recovery = x25519.Identity.generate()  # made elsewhere; only its public key comes here
    recovery_file = tmp_path / "keys" / "recovery.key"
    recovery_file.write_text(f"{recovery}\n")

    both = fast_options(secret_recipients=(recipient, str(recovery.to_public())), secret_identity_file=str(identity))
    assert both.repo(work, create=False).commit_worktree() is not None  # sealed anew, to both
    with_recovery = options(str(recovery.to_public()), recovery_file).repo(work, create=False)
    assert history.show(with_recovery, "HEAD:config.json").decode() == CONFIG
    assert history.show(with_recovery, "HEAD:.env").decode() == f"TOKEN={ENV_TOKEN}\n"
    with pytest.raises(BadInput, match="does not hold a key"):  # older commits: the first key only
        history.show(with_recovery, "HEAD~1:config.json")
    assert both.repo(work, create=False).commit_worktree() is None  # and then stable again


# -- reading back --------------------------------------------------------------------------------------


@pytest.fixture
def two_versions(tmp_path, keys):
    """config.json with two different secrets in two commits, and .env."""
    recipient, _identity, _ = keys
    work = tmp_path / "config"
    repo = options(recipient).repo(work, create=True)
    write(work / "config.json", CONFIG)
    write(work / ".env", f"TOKEN={ENV_TOKEN}\n")
    repo.commit_worktree(when=1714564800)
    write(work / "config.json", CONFIG.replace('"S"', '"S2"'))
    write(work / ".env", "TOKEN=other\n")
    repo.commit_worktree(when=1714565400)
    return work


def test_cli_checkout_with_the_identity_restores_the_plaintext(tmp_path, keys, two_versions, capsys):
    recipient, identity, _ = keys
    work = two_versions
    cfg = settings_file(tmp_path, work, recipient, identity)
    old_blob = git("rev-parse", "HEAD~1:config.json", cwd=work).strip()

    assert cli("config", "checkout", "--rev", "HEAD~1", "-c", str(cfg)) == 0
    assert (work / "config.json").read_text() == CONFIG
    assert (work / ".env").read_text() == f"TOKEN={ENV_TOKEN}\n"
    assert "warning" not in capsys.readouterr().err
    # the restore commit reuses the old ciphertext: the tree is exactly HEAD~2's
    assert git("log", "-1", "--format=%s", cwd=work).startswith("config: restore all files")
    assert git("rev-parse", "HEAD:config.json", cwd=work).strip() == old_blob
    assert ENV_TOKEN not in git("log", "-p", cwd=work)

    assert cli("config", "show", "HEAD~1:config.json", "-c", str(cfg)) == 0
    assert capsys.readouterr().out == CONFIG.replace('"S"', '"S2"')
    assert cli("config", "diff", "HEAD~2", "HEAD~1", "-c", str(cfg)) == 0
    out = capsys.readouterr().out
    assert '-{"exchange": {"key": "K", "secret": "S"}' in out and '"S2"' in out and "ENC[" not in out


def test_cli_checkout_without_the_identity_refuses_and_writes_nothing(tmp_path, keys, two_versions, capsys):
    recipient, _identity, _ = keys
    work = two_versions
    cfg = settings_file(tmp_path, work, recipient)
    dest = tmp_path / "restored"

    # a bot must never read ENC[age,...] as its config: exit 2, naming the files and the key
    assert cli("config", "checkout", "--rev", "HEAD~1", "--to", str(dest), "-c", str(cfg)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and ".env, config.json" in err and "secret_identity_file is not set" in err
    assert not dest.exists()
    missing = settings_file(tmp_path, work, recipient, tmp_path / "lost.key")
    assert cli("config", "checkout", "--rev", "HEAD~1", "--to", str(dest), "-c", str(missing)) == 2
    err = capsys.readouterr().err
    assert "lost.key" in err and "No such file" in err and ".env, config.json" in err
    assert not dest.exists()
    # files without sealed secrets are still written
    write(work / "notes.txt", "plain\n")
    fast_options().repo(work, create=False).commit_worktree()
    assert cli("config", "checkout", "--rev", "HEAD", "--to", str(dest), "-c", str(cfg), "notes.txt") == 0
    assert (dest / "notes.txt").read_text() == "plain\n"


def test_in_place_checkout_without_identity_changes_nothing(tmp_path, keys, two_versions):
    from config_vcs.errors import MissingIdentity

    recipient, _identity, _ = keys
    work = two_versions
    before = {p.name: p.read_bytes() for p in work.iterdir() if p.is_file()}
    head = git("rev-parse", "HEAD", cwd=work)
    write(work / "pending.txt", "an edit not yet committed\n")
    repo = options(recipient).repo(work, create=False)
    with pytest.raises(MissingIdentity, match="secret_identity_file is not set"):
        history.checkout(repo, rev="HEAD~1")
    assert git("rev-parse", "HEAD", cwd=work) == head  # not even the pending edit was committed
    assert {p.name: p.read_bytes() for p in work.iterdir() if p.is_file() and p.name != "pending.txt"} == before


def test_a_wrong_identity_is_a_clear_error_and_writes_nothing(tmp_path, keys, two_versions, capsys):
    recipient, _identity, wrong = keys
    work = two_versions
    cfg = settings_file(tmp_path, work, recipient, wrong)
    dest = tmp_path / "restored"

    assert cli("config", "checkout", "--rev", "HEAD", "--to", str(dest), "-c", str(cfg)) == 2
    err = capsys.readouterr().err
    assert "does not hold a key" in err and str(wrong) in err
    assert not any(dest.rglob("*"))
    assert cli("config", "show", "HEAD:config.json", "-c", str(cfg)) == 2
    missing = settings_file(tmp_path, work, recipient, tmp_path / "nope.key")
    assert cli("config", "show", "HEAD:config.json", "-c", str(missing)) == 2


def test_export_config_at_decrypts_with_the_identity(tmp_path, keys, two_versions):
    recipient, identity, _ = keys
    dest = tmp_path / "export"
    results = history.export_config_at(
        [two_versions], "2024-05-01T12:05:00Z", dest, options(recipient, identity)
    )
    assert results[0].files == 2
    assert (dest / "config.json").read_text() == CONFIG
    assert (dest / ".env").read_text() == f"TOKEN={ENV_TOKEN}\n"


def test_diff_against_the_work_tree_compares_plaintexts(tmp_path, keys, two_versions):
    recipient, identity, _ = keys
    reader = options(recipient, identity).repo(two_versions, create=False)
    patch, changes = history.diff(reader, "HEAD")
    assert patch == b"" and changes == []
    write(two_versions / ".env", "TOKEN=third\n")
    patch, _ = history.diff(reader, "HEAD")
    assert b"-TOKEN=other\n+TOKEN=third\n" in patch


# -- the agent path -------------------------------------------------------------------------------------


def test_agent_pushes_only_ciphertext_to_the_remote(tmp_path, keys, start_history):
    recipient, identity, _ = keys
    work = tmp_path / "config"
    write(work / "config.json", json.dumps({"exchange": {"key": API_KEY, "secret": API_SECRET}, "stake": 1}))
    write(work / ".env", f"TOKEN={ENV_TOKEN}\n")
    remote = bare_remote(tmp_path / "remote.git")
    warnings: list[str] = []
    service = start_history([work], {"origin": str(remote)}, options(recipient), warn=warnings.append)
    write(work / "config.json", json.dumps({"exchange": {"key": API_KEY, "secret": API_SECRET}, "stake": 2}))
    wait_for(lambda: commit_count(work) == 2, what="the second commit")
    service.stop(flush=True)

    assert remote_head(remote) == git("rev-parse", "HEAD", cwd=work).strip()
    objects = all_objects(remote)
    assert "ENC[age," in objects and '"stake": 2' in objects
    for secret in (API_KEY, API_SECRET, ENV_TOKEN):
        assert secret not in objects
        assert secret not in "".join(warnings)
    assert not any("looks like credentials" in w for w in warnings)  # nothing leaves in clear

    clone = tmp_path / "clone"
    git("clone", "-q", str(remote), str(clone))
    reader = options(recipient, identity).repo(clone, create=False)
    assert json.loads(history.show(reader, "HEAD:config.json"))["exchange"]["secret"] == API_SECRET


# -- the rewriting rules (pure) ---------------------------------------------------------------------------


def test_spans_find_exactly_the_secret_values():
    text = '{\n  // comment "key": "x"\n  "api_key": "A", "name": "k", "pin": 5, "token": 123, "password": ""\n}'
    assert [text[s:e] for s, e, _ in json_spans(text)] == ['"A"', "123"]
    toml = 'a.secret = "x"\n"api_key" = \'y\'\nnote = """\ntoken = "inside"\n"""\nkey = ""\n'
    assert [toml[s:e] for s, e, _ in toml_spans(toml)] == ['"x"', "'y'"]
    yaml = "- token: abc\n  enabled: yes\n  secret: ~\n  password: 'p w'  # c\n"
    assert [yaml[s:e] for s, e, _ in yaml_spans(yaml)] == ["abc", "'p w'"]


def test_check_rewrite_refuses_a_rewrite_that_changes_anything_else():
    marker = '"ENC[age,QUJD]"'
    assert check_rewrite("c.json", '{"key": "K", "n": 1}', '{"key": ' + marker + ', "n": 1}') is None
    assert check_rewrite("c.json", '{"key": "K", "n": 1}', '{"key": ' + marker + ', "n": 2}')
    assert check_rewrite("c.json", '{"key": "K", "n": 1}', '{"key": "K", "n": 1}')


def test_recovery_decrypts_checked_out_secrets_with_the_identity(tmp_path, keys, two_versions):
    from config_vcs.recovery import recover_directories

    recipient, identity, _ = keys
    work = two_versions
    for name in ("config.json", ".env"):
        (work / name).unlink()
    without = recover_directories([work], {})[0]
    assert not without.ok and without.needs_identity
    assert without.action.startswith("refused: cannot decrypt the sealed secrets of .env, config.json")
    assert not (work / ".env").exists() and not (work / "config.json").exists()  # no ciphertext written

    report = recover_directories([work], {}, options(recipient, identity))[0]
    assert report.ok and "secrets decrypted in 2 file(s)" in report.action
    assert (work / "config.json").read_text() == CONFIG.replace('"S"', '"S2"')
    assert (work / ".env").read_text() == "TOKEN=other\n"


def test_recovery_by_clone_decrypts_before_the_directory_appears(tmp_path, keys, two_versions):
    import shutil

    from config_vcs.recovery import recover_directories

    recipient, identity, _ = keys
    remote = bare_remote(tmp_path / "usb.git")
    git("push", "-q", str(remote), "master", cwd=two_versions)
    shutil.rmtree(two_versions)

    without = recover_directories([two_versions], {"usb": str(remote)})[0]
    assert without.needs_identity and not two_versions.exists()
    assert not list(tmp_path.glob(".tradevault-recover-*"))  # the scratch clone is gone too

    report = recover_directories([two_versions], {"usb": str(remote)}, options(recipient, identity))[0]
    assert report.ok and report.action == "cloned from remote usb; secrets decrypted in 2 file(s)"
    assert (two_versions / ".env").read_text() == "TOKEN=other\n"
