"""Personal data in what people type: the note of an acknowledgement (``alerts ack --note``).

A note is kept for years beside the alert and travels with it to the notifiers, so it must
hold no more than an event may: no phone, ID number or e-mail address (``schemas.privacy``
finds those), and no person's name. A name cannot be told by its shape alone, so only the
common forms are caught: a Vietnamese family name followed by a middle name ("Nguyễn Văn
An", "Trần Thị B"), a family name followed by two more capitalised words, or a form of
address before a capitalised word ("anh Tuấn", "bà Hoa", "bệnh nhân Lan"). A note that
matches is refused with the reason, never stored redacted: the person typing is there to
write it again, and a note silently changed would tell an inspector something else.
"""

from __future__ import annotations

import re
from typing import Final

from schemas.privacy import KIND_LABELS, personal_kind

MAX_NOTE_CHARS: Final = 500

_UPPER = "A-ZÀ-ỸĐ"
_WORD = rf"[{_UPPER}][^\W\d_]*"
SURNAMES: Final = (
    "Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ",
    "Hồ", "Ngô", "Dương", "Lý", "Đào", "Đinh", "Mai", "Trương", "Lâm", "Tô", "Hà", "Lương",
    "Cao", "Chu", "Tạ", "Thái", "Vương", "Quách", "Lưu", "Kiều", "Trịnh", "Triệu", "Doãn",
)  # fmt: skip
MIDDLE_NAMES: Final = (
    "Văn", "Thị", "Đức", "Hữu", "Minh", "Ngọc", "Quang", "Xuân", "Thanh", "Hoàng", "Công",
    "Đình", "Quốc", "Kim", "Thu", "Bảo", "Gia", "Hồng", "Như", "Tuấn", "Anh", "Mạnh", "Phương",
)  # fmt: skip
ADDRESS_FORMS: Final = (
    "ông", "bà", "anh", "chị", "cô", "chú", "bác", "em", "cháu", "bệnh nhân", "người bệnh",
    "BN", "Mr", "Mrs", "Ms", "Miss",
)  # fmt: skip
_NAME_RE = re.compile(
    rf"\b(?:{'|'.join(SURNAMES)})\s+(?:(?:{'|'.join(MIDDLE_NAMES)})\b|{_WORD}\s+{_WORD})"
)
_ADDRESSED_RE = re.compile(
    rf"(?<![^\W_])(?i:{'|'.join(re.escape(form) for form in ADDRESS_FORMS)})\.?\s+{_WORD}"
)


def note_problem(text: str) -> str | None:
    """Why a note may not be kept (naming the kind, never the value), or None."""
    if len(text) > MAX_NOTE_CHARS:
        return f"longer than {MAX_NOTE_CHARS} characters"
    for word in text.split():
        kind = personal_kind(word.strip(".,;:()\"'"), code=False)
        if kind and kind != "free_text":
            return f"looks like {KIND_LABELS.get(kind, kind)}"
    kind = personal_kind(text, code=False)
    if kind and kind != "free_text":
        return f"looks like {KIND_LABELS.get(kind, kind)}"
    if _NAME_RE.search(text) or _ADDRESSED_RE.search(text):
        return "looks like a person's name"
    return None
