"""PEM text as forms deliver it.

A single-line input (every field on Airflow 2.x, masked inputs on 3.x) drops the line breaks of pasted
PEM text, leaving ``-----BEGIN X-----MIIB...-----END X-----``, which no PEM reader accepts. The blocks are
re-wrapped here; text that already has its line breaks is returned unchanged.
"""

from __future__ import annotations

import re

_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)


def normalise_pem(text: str) -> str:
    """``text`` with every PEM block in the standard layout (64-character base64 lines).

    A block with headers (``Proc-Type: 4,ENCRYPTED``, legacy encrypted keys) is left as it is when its
    line breaks survive; once they are lost its headers cannot be told from the body, so such keys need
    a multi-line field or a file path.
    """

    def rewrap(match: re.Match[str]) -> str:
        label, body = match.group(1), match.group(2)
        if ":" in body:  # RFC 1421 headers: keep as given
            return match.group(0)
        compact = re.sub(r"\s+", "", body)
        lines = [compact[i : i + 64] for i in range(0, len(compact), 64)]
        return "\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----"])

    blocks = [rewrap(match) for match in _BLOCK.finditer(text)]
    return "\n".join(blocks) + "\n" if blocks else text
