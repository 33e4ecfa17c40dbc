"""The one account key for an email address, and what a new account's address must be."""

import pytest

from objectvision_common.emails import (
    MAX_LOCAL_PART_LENGTH,
    InvalidEmail,
    account_key,
    new_account_address,
)


@pytest.mark.parametrize(
    "spelling",
    [
        "victim@example.com",
        "  Victim@Example.COM  ",
        "VICTIM@EXAMPLE.COM",
        # Fullwidth letters in the domain: IDNA/UTS-46 maps them to ASCII. The gateway once
        # keyed its limits on `strip().lower()`, which left this spelling a separate counter.
        "victim@\uff45xample.com",
        "victim@\uff25\uff38\uff21\uff2d\uff30\uff2c\uff25.\uff43\uff4f\uff4d",
    ],
    ids=["plain", "spaces and case", "upper", "fullwidth e", "fullwidth domain"],
)
def test_every_spelling_of_one_address_has_one_key(spelling: str) -> None:
    assert account_key(spelling) == "victim@example.com"


def test_a_punycode_and_a_unicode_domain_are_one_key() -> None:
    assert account_key("ada@xn--bcher-kva.de") == account_key("ada@B\u00fccher.de")


@pytest.mark.parametrize(
    "email",
    ["victim@example.com", "ada@xn--bcher-kva.de", "\u00fcser@example.com", "a.b+c@example.org"],
)
def test_a_key_is_its_own_key(email: str) -> None:
    key = account_key(email)
    assert account_key(key) == key


@pytest.mark.parametrize(
    ("email", "message"),
    [
        ("", "email is required"),
        ("   ", "email is required"),
        ("nonsense", "not a valid email address"),
        ("victim@example.com.", "not a valid email address"),
        ("v\u200bictim@example.com", "not a valid email address"),
        ("ada@localhost", "not a valid email address"),
        (f"{'a' * 64}@{'b' * 250}.com", "too long"),
    ],
    ids=["empty", "blank", "no at", "trailing dot", "zero-width space", "special use", "long"],
)
def test_text_that_is_no_address_has_no_key(email: str, message: str) -> None:
    with pytest.raises(InvalidEmail, match=message):
        account_key(email)


def test_a_new_account_address_is_the_account_key() -> None:
    assert new_account_address(" Ada@\uff45xample.com") == account_key("ada@example.com")


def test_a_new_account_address_must_have_an_ascii_local_part() -> None:
    """Python's mail library refuses to compose a message to such an address."""
    assert account_key("\u00fcser@example.com") == "\u00fcser@example.com"
    with pytest.raises(InvalidEmail, match="ASCII"):
        new_account_address("\u00fcser@example.com")
    with pytest.raises(InvalidEmail, match="ASCII"):
        new_account_address("\uff56ictim@example.com")


def test_a_new_account_address_has_at_most_64_characters_before_the_at() -> None:
    longest = "a" * MAX_LOCAL_PART_LENGTH
    assert new_account_address(f"{longest}@example.com") == f"{longest}@example.com"
    with pytest.raises(InvalidEmail, match="at most 64"):
        new_account_address(f"{longest}a@example.com")
