"""Credentials never reach a remote in clear by default (issue 26): without recipients a
commit range holding a detected credential is held back from every remote that lacks
``allow_plaintext_secrets``; once recipients are configured the unpushed commits are
sealed and delivered. Real files, real dulwich, bare remotes read by the real ``git``."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from cvs_helpers import bare_remote, commit_count, fast_options, git, local_head, remote_head, wait_for, write
from pyrage import x25519

from config_vcs import history

API_KEY = "AKIAHELDBACKAPIKEY0042"
API_SECRET = "held-back-secret-value-0043"
ENV_TOKEN = "held-back-env-token-0044"

pytestmark = pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")


def remote_text(bare: Path) -> str:
    """Everything a remote holds: every object, reachable or not, and the patches."""
    objects = subprocess.run(
        ["git", "--git-dir", str(bare), "cat-file", "--batch-all-objects", "--batch"],
        capture_output=True, timeout=60, check=True,
    ).stdout.decode("utf-8", "replace")
    patches = git("--git-dir", str(bare), "log", "--all", "-p", check=False)
    return objects + patches


def bot_config(stake: int, secret: str = API_SECRET) -> str:
    return json.dumps({"exchange": {"name": "binance", "key": API_KEY, "secret": secret}, "stake": stake})


def remote_state(service, name: str) -> dict:
    return service.status()[0]["remotes"][name]


def test_without_recipients_a_credential_never_reaches_the_remote(tmp_path, start_history):
    work = tmp_path / "config"
    write(work / "strategy.py", "class S: pass\n")
    usb = bare_remote(tmp_path / "usb.git")
    warnings: list[str] = []
    service = start_history([work], {"usb": str(usb)}, warn=warnings.append)
    wait_for(lambda: remote_head(usb) == local_head(work), what="the harmless first commit pushed")
    first = local_head(work)

    write(work / "config.json", bot_config(1))
    wait_for(lambda: remote_state(service, "usb")["held"] == ["config.json"], what="the push held")
    write(work / ".env", f"TOKEN={ENV_TOKEN}\n")
    wait_for(lambda: remote_state(service, "usb")["held"] == [".env", "config.json"], what="the .env held too")
    write(work / "strategy.py", "class S: stake = 2\n")  # harmless, but on top of the held ones
    wait_for(lambda: commit_count(work) == 4, what="the fourth commit")
    time.sleep(0.5)

    assert remote_head(usb) == first  # the remote kept what it had; the commits stay local
    text = remote_text(usb)
    assert not [s for s in (API_KEY, API_SECRET, ENV_TOKEN) if s in text]
    state = remote_state(service, "usb")
    assert state["unpushed"] == 3 and state["last_error"] is None and not state["diverged"]
    held_lines = [w for w in warnings if "held" in w and "usb" in w and "config push" in w]
    assert len(held_lines) == 2, warnings  # once per new set of files, not once per attempt
    assert "secret_recipients" in held_lines[-1] and "allow_plaintext_secrets" in held_lines[-1]
    assert not any(s in "".join(warnings) for s in (API_KEY, API_SECRET, ENV_TOKEN))

    # held is not retried in a loop: only a new commit makes the pusher look again
    pusher = service.workers[0].pushers[0]
    attempts = pusher.attempts
    time.sleep(1.5)  # with backoff 0.1..0.5 s a failing push would have been retried 3+ times
    assert pusher.attempts == attempts


def test_allow_plaintext_secrets_pushes_in_clear_and_only_to_that_remote(tmp_path, start_history):
    work = tmp_path / "config"
    write(work / "config.json", bot_config(1))
    clear = bare_remote(tmp_path / "clear.git")
    guarded = bare_remote(tmp_path / "guarded.git")
    service = start_history(
        [work], {"clear": str(clear), "guarded": str(guarded)}, fast_options(plaintext_remotes=("clear",))
    )
    wait_for(lambda: remote_head(clear) == local_head(work), what="the push to the allowed remote")
    wait_for(lambda: remote_state(service, "guarded")["held"], what="the other remote held")
    assert API_SECRET in remote_text(clear)
    assert remote_head(guarded) is None and API_SECRET not in remote_text(guarded)
    assert remote_state(service, "clear")["allow_plaintext_secrets"] is True
    assert remote_state(service, "guarded")["allow_plaintext_secrets"] is False


def test_configuring_recipients_seals_the_held_commits_and_delivers_them(tmp_path, start_history):
    work = tmp_path / "config"
    write(work / "strategy.py", "class S: pass\n")
    usb = bare_remote(tmp_path / "usb.git")
    service = start_history([work], {"usb": str(usb)})
    wait_for(lambda: remote_head(usb) == local_head(work), what="first commit pushed")
    first = local_head(work)
    for stake in (1, 2):
        write(work / "config.json", bot_config(stake, API_SECRET + str(stake)))
        wait_for(lambda stake=stake: commit_count(work) == 1 + stake, what=f"commit {stake}")
    write(work / ".env", f"TOKEN={ENV_TOKEN}\n")
    wait_for(lambda: commit_count(work) == 4, what="the .env commit")
    wait_for(lambda: len(remote_state(service, "usb")["held"]) == 2, what="held")
    service.stop(flush=True)
    assert remote_head(usb) == first

    identity = x25519.Identity.generate()
    key_file = tmp_path / "identity.txt"
    key_file.write_text(f"{identity}\n")
    sealed = fast_options(secret_recipients=(str(identity.to_public()),), secret_identity_file=str(key_file))
    service = start_history([work], {"usb": str(usb)}, sealed)
    wait_for(lambda: remote_head(usb) == local_head(work), what="the resealed commits pushed")

    text = remote_text(usb)
    assert not [s for s in (API_KEY, API_SECRET, ENV_TOKEN) if s in text] and "ENC[age," in text
    # the remote's history is the local one: what it had, then the three sealed commits
    assert git("--git-dir", str(usb), "rev-list", "--count", "master").strip() == "4"
    git("merge-base", "--is-ancestor", first, "HEAD", cwd=work)  # raises unless it is
    assert not [s for s in (API_SECRET, ENV_TOKEN) if s in git("log", "-p", cwd=work)]
    assert git("status", "--porcelain", cwd=work) == ""  # the index follows the sealed blobs
    assert remote_state(service, "usb")["held"] == []
    # and every sealed version reads back exactly
    reader = sealed.repo(work, create=False)
    assert json.loads(history.show(reader, "HEAD~2:config.json"))["exchange"]["secret"] == API_SECRET + "1"
    assert history.show(reader, "HEAD:.env").decode() == f"TOKEN={ENV_TOKEN}\n"


def test_offline_status_names_held_files_before_any_agent_ran(tmp_path):
    from config_vcs.service import offline_status

    work = tmp_path / "config"
    repo = fast_options().repo(work, create=True)
    write(work / "config.json", bot_config(1))
    repo.commit_worktree()
    usb = bare_remote(tmp_path / "usb.git")
    report = offline_status([work], {"usb": str(usb), "lab": str(usb)}, fast_options(plaintext_remotes=("lab",)))
    assert report[0]["remotes"]["usb"]["held"] == ["config.json"]
    assert report[0]["remotes"]["lab"]["held"] == [] and report[0]["remotes"]["lab"]["allow_plaintext_secrets"]
