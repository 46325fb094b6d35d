"""Acknowledgement notes through the personal-data guard (issue 15, item 7): a phone, an ID,
an e-mail address or a person's name is refused with the kind named, never the value; the
notes staff actually write pass."""

from __future__ import annotations

import pytest

from infra.application.alerts import AckRequest
from infra.application.common import OperationError, build
from schemas.free_text import note_problem


@pytest.mark.parametrize(
    ("note", "kind"),
    [
        ("gọi lại số 0912 345 678", "phone"),
        ("đã gọi +84912345678.", "phone"),
        ("số định danh 001085012345", "national ID"),
        ("gửi qua canbo@tytxa.gov.vn", "e-mail"),
        ("đã báo Nguyễn Văn An", "name"),
        ("Trần Thị B đến lấy thuốc", "name"),
        ("gặp anh Tuấn ở trạm", "name"),
        ("bệnh nhân Lan đã chuyển", "name"),
        ("BN Hùng bỏ trị", "name"),
        ("Lê Minh Quân đã ký", "name"),
        ("x" * 501, "longer than"),
    ],
)
def test_personal_data_in_a_note_is_refused_by_kind(note: str, kind: str) -> None:
    problem = note_problem(note)
    assert problem is not None and kind in problem
    assert not any(word in problem for word in note.split() if len(word) > 3)


@pytest.mark.parametrize(
    "note",
    [
        "",
        "đã gửi công văn",
        "kiểm tra sổ",
        "Đã xử lý, đã báo TTYT Lục Ngạn",
        "gửi thông báo về Hà Nội ngày 12/03/2024",
        "đã nhập kho 2000 ml, lô L-2024-07",
        "chị em trạm y tế đã đếm lại",
        "called the district, count redone",
    ],
)
def test_ordinary_notes_pass(note: str) -> None:
    assert note_problem(note) is None


def test_the_ack_request_refuses_before_touching_the_store() -> None:
    with pytest.raises(OperationError, match=r"^--note looks like a phone number"):
        build(AckRequest, alert_ids=["a"], note="số 0987654321")
