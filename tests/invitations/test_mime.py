"""The email's bytes (:func:`invitations.mime.email_bytes`): its quoted-printable parts are
what ``binascii.b2a_qp`` makes of the whole text, although each line is encoded once and kept
(the 1,024 used last)."""

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


def test_lines_kept_are_bounded_and_forgotten_one_at_a_time_the_oldest_first() -> None:
    """Emails whose template's lines come back with lines of their own (names, links): the
    template's stay kept however many other lines pass, and no more than 1,024 are kept.
    A table emptied all at once when full made the worker's memory climb for minutes."""
    from invitations.mime import _qp_line

    _qp_line.cache_clear()
    template = '<td style="padding:0 0 16px 0">Accept</td>\n'
    for index in range(3_000):
        text = f"{template}https://convoke.example/rsvp/{index:06d}\n"
        mail = EmailMessage(
            subject="s", body=text, from_email="a@example.org", to=["b@example.org"]
        )
        email_bytes(mail)
    info = _qp_line.cache_info()
    assert info.currsize == info.maxsize == 1_024
    assert info.hits >= 2_999  # the template's line, encoded once for all 3,000 emails
