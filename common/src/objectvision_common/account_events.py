"""The types of the events auth-service announces about accounts and their API keys.

auth-service stages them in its outbox; notification-service (and, for `user.deleted`, every
service that keeps a user's data) acts on them. An event's type is the contract between the
two sides, so it is spelled here once: a type renamed on one side alone would be dropped
unnoticed by the other.
"""

USER_REGISTERED = "user.registered"
# Someone tried to sign up with the address of an existing account, or to change another
# account's email to it. The event names only the existing account, whose owner is told.
SIGNUP_ATTEMPTED = "user.signup_attempted"
EMAIL_CHANGE_ATTEMPTED = "user.email_change_attempted"
# Someone asked for a password reset link for an active account; the link goes to its owner.
# The one event with a secret in it (ADR 0021).
PASSWORD_RESET_REQUESTED = "user.password_reset_requested"  # noqa: S105 - an event type
# A link that confirms an account's address, to that address; a secret too (ADR 0029).
EMAIL_VERIFICATION_REQUESTED = "user.email_verification_requested"
# Security notices: the account's password, or its sign-in address, was changed; its owner
# is told.
PASSWORD_CHANGED = "user.password_changed"  # noqa: S105 - an event type
EMAIL_CHANGED = "user.email_changed"
# The account was deleted by its owner: every service erases what it keeps of the user, and
# the address it had gets one goodbye email (ADR 0025).
USER_DELETED = "user.deleted"
# An admin suspended the account, or restored it (ADR 0032): its owner is told either way.
ACCOUNT_SUSPENDED = "user.suspended"
ACCOUNT_RESTORED = "user.restored"
# Security notices about the account's second factor (ADR 0034): turned on, turned off (by
# its owner or an admin), and a recovery code used to log in.
TWO_FACTOR_ENABLED = "user.two_factor_enabled"
TWO_FACTOR_DISABLED = "user.two_factor_disabled"
RECOVERY_CODE_USED = "user.recovery_code_used"
# The account was logged in to from somewhere none of its earlier logins was (ADR 0035).
NEW_LOGIN = "user.new_login"
# An API key was revoked: notification-service deletes the webhooks registered with it
# (ADR 0026, amendment).
API_KEY_REVOKED = "api_key.revoked"
