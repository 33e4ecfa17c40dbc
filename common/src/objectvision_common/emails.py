"""Email addresses: the one normalisation that names an account, shared by every service.

An address has many spellings (letter case, fullwidth or other compatibility letters in the
domain, a punycode or Unicode domain) that all reach one mailbox. If the gateway's rate limits
keyed on one spelling while the auth service found the account by another, a guesser could
walk around the per-account limit by re-spelling the address. So every limit and every lookup
by email (sign-up, login, email changes, ADMIN_EMAILS, the gateway's login limits) takes its
key from `account_key`, and any two spellings that open the same account count as one.
"""

from email_validator import EmailNotValidError, validate_email

MAX_EMAIL_LENGTH = 320
# RFC 5321 4.5.3.1.1: longer local parts are refused by mail servers; email_validator only
# enforces it in strict mode.
MAX_LOCAL_PART_LENGTH = 64


class InvalidEmail(ValueError):
    """The text is not an address an account can have; the message is safe to show."""


def account_key(email: str) -> str:
    """The form of `email` accounts are stored, looked up and rate limited under.

    Validated by email_validator without DNS (special-use domains are refused), the domain
    mapped by IDNA/UTS-46 (a fullwidth `e`, U+FF45, is `e`), the local part NFC-normalised,
    then the whole address lowercased. Idempotent: a key is its own key.
    """
    stripped = email.strip()
    if not stripped:
        raise InvalidEmail("email is required")
    if len(stripped) > MAX_EMAIL_LENGTH:
        raise InvalidEmail("email is not a valid email address: it is too long")
    try:
        validated = validate_email(stripped, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmail(f"email is not a valid email address: {exc}") from exc
    return validated.normalized.lower()


def new_account_address(email: str) -> str:
    """`account_key(email)`, for an address an account is created with or moved to.

    Stricter than a lookup: the address must be one our mail can be sent to, or the account
    could never be told anything. Python's mail library refuses a non-ASCII local part when the
    message is composed, and mail servers refuse local parts over 64 characters. Lookups stay
    lenient so that an account stored before this rule is still found under its own key.
    """
    key = account_key(email)
    local_part = key.rpartition("@")[0]
    if not local_part.isascii():
        raise InvalidEmail("email must have only ASCII characters before the @")
    if len(local_part) > MAX_LOCAL_PART_LENGTH:
        raise InvalidEmail(
            f"email must have at most {MAX_LOCAL_PART_LENGTH} characters before the @"
        )
    return key
