"""Reading what the stack's mail sink received.

The stack points notification-service at a local SMTP sink (`objectvision-mail-sink`, started
by `Stack`) that keeps each message as an .eml file under `Stack.mail_dir`, written whole
(a temporary file, then a rename). That folder stands for every user's inbox: the end-to-end
tests read their emails from it by recipient, since the sink holds every other test's mail
too, and wait for them with the bounded polls of `objectvision_devstack.waiting`.
"""

import email
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

from objectvision_devstack.waiting import eventually, stays


class Mailbox:
    """The messages a mail sink stored as .eml files in `directory`, by recipient."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        # A stored file never changes (the sink renames it into place whole), so each is
        # parsed once however often a test polls.
        self._parsed: dict[Path, EmailMessage] = {}

    def messages(self) -> list[EmailMessage]:
        """Every stored message, oldest first (the file names start with the time stored)."""
        found = []
        for path in sorted(self.directory.glob("*.eml")):
            if path not in self._parsed:
                message = email.message_from_bytes(path.read_bytes(), policy=default_policy)
                assert isinstance(message, EmailMessage)
                self._parsed[path] = message
            found.append(self._parsed[path])
        return found

    def to(self, address: str) -> list[EmailMessage]:
        """Every message whose To is `address` alone, oldest first."""
        return [
            message
            for message in self.messages()
            if [mailbox.addr_spec for mailbox in message["To"].addresses] == [address]
        ]

    def about(self, address: str, subject: str, *, prefix: bool = False) -> list[EmailMessage]:
        """The messages to `address` with this subject; with `prefix`, those whose subject
        starts with it (a subject that ends in details of its own, such as a job's counts)."""
        return [
            message
            for message in self.to(address)
            if (message["Subject"].startswith(subject) if prefix else message["Subject"] == subject)
        ]

    async def exactly_one(
        self, address: str, subject: str, *, within: float, quiet: float, prefix: bool = False
    ) -> EmailMessage:
        """The one message to `address` with this subject (as `about` matches it): it arrives
        within `within` seconds, and no second copy follows in the next `quiet` seconds."""
        await eventually(
            lambda: self.about(address, subject, prefix=prefix),
            within=within,
            what=f"an email {subject!r} to {address}",
        )
        await stays(
            lambda: len(self.about(address, subject, prefix=prefix)) == 1,
            for_seconds=quiet,
            what=f"a second email {subject!r} to {address}",
        )
        (message,) = self.about(address, subject, prefix=prefix)
        return message


def text_and_html(message: EmailMessage) -> tuple[str, str]:
    """The plain-text and HTML bodies of a message, as sent: every email the stack sends has
    both (a reader without HTML gets the same words), so a missing one fails here."""
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None, "an email needs a text and an HTML part"
    return text.get_content(), html.get_content()
