"""The email's bytes (:func:`invitations.mime.email_bytes`): its quoted-printable parts are
what ``binascii.b2a_qp`` makes of the whole text, although each line is encoded once and kept."""

from __future__ import annotations

import binascii

from django.core.mail import EmailMessage
from hypothesis import given
from hypothesis import strategies as st

from invitations.mime import email_bytes

# Lines of the kinds that quoted-printable treats apart: spaces and tabs at their end, a lone
# dot, "=", bytes above 126, control characters, lines longer than 76 characters.
_PIECES = st.sampled_from(
    [" ", "\t", "\n", "\r", "\r\n", ".", "=", "é", "\x00", "\x0c", "\u2028", "x" * 73, "  "]
)


def _plain_part(data: bytes) -> bytes:
    return data.split(b"Content-Transfer-Encoding: quoted-printable\r\n\r\n", 1)[1][: -len(b"\r\n")]


@given(pieces=st.lists(_PIECES | st.text(max_size=8), max_size=24))
def test_text_part_is_b2a_qp_of_the_whole_text_when_lines_are_encoded_one_by_one(
    pieces: list[str],
) -> None:
    text = "".join(pieces)
    whole = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    expected = binascii.b2a_qp(whole, istext=True).replace(b"\n", b"\r\n")
    mail = EmailMessage(subject="s", body=text, from_email="a@example.org", to=["b@example.org"])
    assert _plain_part(email_bytes(mail)) == expected
    # Again, every line now found among those kept.
    assert _plain_part(email_bytes(mail)) == expected
