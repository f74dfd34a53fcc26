"""Issue 19, finding 14: a change to the YAML directory reaches answers without a restart.

The identity the composition root builds from the settings (the directory provider behind the
Redis identity cache, the real Redis), asked the way a question asks it; the file is edited
in place between questions, as an operator would.
"""

from __future__ import annotations

import time
import uuid

import pytest
import yaml

from chatops import metrics
from chatops.access import Acl
from chatops.settings import Settings
from chatops_app.container import Container
from connectors.identity.directory import RECHECK_SECONDS
from tests.security.conftest import redis_or_skip
from usecases.people import IDENTITY_DOWN, Refusal, Someone, resolve

pytestmark = pytest.mark.redis

SALARIES = Acl.of(groups=["hr"])
HR = Someone(chat_id="UHR", email="hr@corp.example")
NEW = Someone(chat_id="UNEW", email="new@corp.example")


def write(path, users: list[dict]) -> None:
    path.write_text(yaml.safe_dump({"users": users}))


@pytest.fixture
def world(tmp_path):
    client = redis_or_skip()
    directory = tmp_path / "directory.yml"
    write(directory, [{"email": "hr@corp.example", "groups": ["hr"]}])
    prefix = f"chatops-directory-{uuid.uuid4().hex[:8]}"
    settings = Settings.load(CHATOPS_DATA_DIR=str(tmp_path / "data"), DATABASE_URL="sqlite:///:memory:",
                             CHATOPS_DIRECTORY_FILE=str(directory), CHATOPS_IDENTITY_PROVIDER="directory",
                             CHATOPS_KEY_PREFIX=prefix)
    container = Container(settings)
    yield container.identity, directory
    container.close()
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


def next_question_after_the_check() -> None:
    time.sleep(RECHECK_SECONDS + 0.2)


def test_a_removal_from_a_group_applies_to_the_next_question_without_a_restart(world):
    identity, directory = world
    assert resolve(identity, HR).can_see(SALARIES)
    assert resolve(identity, HR).can_see(SALARIES)       # now from the identity cache too
    write(directory, [{"email": "hr@corp.example", "groups": ["eng"]}])
    next_question_after_the_check()
    assert not resolve(identity, HR).can_see(SALARIES)


def test_a_person_removed_from_the_directory_is_refused_at_the_next_question(world):
    identity, directory = world
    assert resolve(identity, HR).can_see(SALARIES)
    write(directory, [{"email": "other@corp.example", "groups": []}])
    next_question_after_the_check()
    with pytest.raises(Refusal):
        resolve(identity, HR)


def test_a_person_added_is_found_at_once_even_after_a_miss(world):
    identity, directory = world
    with pytest.raises(Refusal):
        resolve(identity, NEW)                            # the miss is cached for a minute
    write(directory, [{"email": "hr@corp.example", "groups": ["hr"]}, {"email": "new@corp.example", "groups": []}])
    next_question_after_the_check()
    assert resolve(identity, NEW).email == "new@corp.example"


def test_a_broken_directory_file_refuses_questions_until_it_is_fixed(world):
    # Serving the previous file would keep a removal that came with the mistake from applying.
    identity, directory = world
    assert resolve(identity, HR).can_see(SALARIES)
    failed = metrics.DIRECTORY_RELOADS.labels(outcome="failed")._value.get()
    directory.write_text("users: [\n")
    next_question_after_the_check()
    with pytest.raises(Refusal) as refused:
        resolve(identity, HR)
    assert str(refused.value) == IDENTITY_DOWN
    assert metrics.DIRECTORY_RELOADS.labels(outcome="failed")._value.get() == failed + 1
    write(directory, [{"email": "hr@corp.example", "groups": ["hr"]}])
    next_question_after_the_check()
    assert resolve(identity, HR).can_see(SALARIES)
