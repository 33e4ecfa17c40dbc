"""Sealed secrets (objectvision_common.sealing): only the key that sealed a text opens it,
and the key derived for event secrets is not the shared secret's other key."""

import pytest

from objectvision_common.sealing import SecretBox, event_secrets


def test_a_sealed_text_opens_with_its_key_and_no_other() -> None:
    box = event_secrets("shared-service-secret")
    sealed = box.seal("ovp_the-token")
    assert "ovp_the-token" not in sealed
    assert event_secrets("shared-service-secret").open(sealed) == "ovp_the-token"
    with pytest.raises(ValueError, match="configured SERVICE_TOKEN_SECRET"):
        event_secrets("another-secret").open(sealed)


def test_the_event_key_is_derived_for_its_purpose_alone() -> None:
    """The same setting's value seals differently for events than as a plain key."""
    sealed = event_secrets("one-value").seal("x")
    with pytest.raises(ValueError):
        SecretBox.from_setting("one-value", setting="SERVICE_TOKEN_SECRET").open(sealed)


def test_an_altered_sealed_text_does_not_open() -> None:
    box = SecretBox.from_setting("key-material", setting="WEBHOOK_SECRET_KEY")
    sealed = box.seal("whsec_abc")
    altered = sealed[:-6] + ("A" if sealed[-6] != "A" else "B") + sealed[-5:]
    with pytest.raises(ValueError, match="WEBHOOK_SECRET_KEY"):
        box.open(altered)


def test_empty_key_material_is_refused() -> None:
    with pytest.raises(ValueError, match="SERVICE_TOKEN_SECRET must not be empty"):
        event_secrets("")
