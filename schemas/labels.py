"""Bilingual labels (Vietnamese beside English) for the codes staff read: alert kinds,
severities and states, programmes, test purposes, discharge outcomes, report states, the
monthly report's lists and fields, the stock card's lines.

One place, so that a code reads the same in the CLI's tables, the notifications, the live
view, the dashboards and every document a CDC officer sends on. A leaf: it imports nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, NamedTuple


class Label(NamedTuple):
    """A code's name for people: Vietnamese first, English beside it."""

    vi: str
    en: str

    def text(self, sep: str = " / ") -> str:
        """``Vietnamese / English``, as tables and documents show it (once when the same)."""
        return self.vi if self.vi == self.en else f"{self.vi}{sep}{self.en}"

    def english_first(self, sep: str = " / ") -> str:
        """``English / Vietnamese``, as the notifications' subject lines show it."""
        return self.en if self.vi == self.en else f"{self.en}{sep}{self.vi}"


def _labels(pairs: Mapping[str, tuple[str, str]]) -> Mapping[str, Label]:
    return MappingProxyType({code: Label(*pair) for code, pair in pairs.items()})


def label_of(labels: Mapping[str, Label], code: str) -> Label:
    """``code``'s label, or the code itself in both languages when none is known."""
    return labels.get(code) or Label(code, code)


ALERT_KINDS: Final = _labels(
    {
        "stock_low": ("Tồn kho thấp", "Stock low"),
        "stock_out": ("Hết thuốc", "Stock out"),
        "count_discrepancy": ("Chênh lệch kiểm kê", "Count discrepancy"),
        "double_dosing": ("Cấp thuốc trùng", "Double dosing"),
        "take_home_violation": ("Vi phạm cấp thuốc nhiều ngày", "Take-home violation"),
        "inactive_patient_dosed": ("Cấp thuốc cho người không điều trị", "Inactive patient dosed"),
        "report_due_soon": ("Sắp đến hạn báo cáo", "Report due soon"),
        "report_overdue": ("Quá hạn báo cáo", "Report overdue"),
        "supervision_behind": ("Chưa đủ số lần giám sát", "Supervision behind"),
        "commune_notification": ("Thông báo UBND xã", "Commune notification"),
        "commune_unknown": ("Không rõ xã cư trú", "Commune unknown"),
    }
)
SEVERITIES: Final = _labels(
    {
        "critical": ("Nghiêm trọng", "critical"),
        "warning": ("Cảnh báo", "warning"),
        "info": ("Thông tin", "info"),
    }
)
ALERT_STATUSES: Final = _labels({"open": ("Đang mở", "open"), "resolved": ("Đã xử lý", "resolved")})
# What one alert change did, as a notification announces it.
ALERT_CHANGES: Final = _labels(
    {
        "opened": ("Mới phát sinh", "Opened"),
        "updated": ("Cập nhật", "Updated"),
        "resolved": ("Đã xử lý xong", "Resolved"),
    }
)
DELIVERY_STATUSES: Final = _labels(
    {"pending": ("chờ gửi", "pending"), "sent": ("đã gửi", "sent"), "failed": ("lỗi", "failed")}
)
# The states the dashboards and the live view colour: a severity, or a report's deadline state.
STATES: Final = _labels(
    {
        **SEVERITIES,
        "ok": ("Ổn", "ok"),
        "submitted": ("Đã nộp", "submitted"),
        "submitted_late": ("Nộp muộn", "late"),
        "pending": ("Chưa đến hạn", "pending"),
        "due_soon": ("Sắp đến hạn", "due soon"),
        "overdue": ("Quá hạn", "overdue"),
    }
)

PROGRAMMES: Final = _labels(
    {
        "methadone": ("Methadone", "Methadone"),
        "buprenorphine": ("Buprenorphine", "Buprenorphine"),
        "community_detox": ("Cai nghiện tự nguyện tại gia đình, cộng đồng", "Community detox"),
        "centre_detox": ("Cai nghiện tại cơ sở", "Centre detox"),
        "unknown": ("Chưa rõ chương trình", "Programme unknown"),
    }
)
PURPOSES: Final = _labels(
    {
        "addiction_determination": ("Xác định tình trạng nghiện", "Addiction determination"),
        "treatment_monitoring": ("Theo dõi điều trị", "Treatment monitoring"),
        "screening": ("Sàng lọc", "Screening"),
    }
)
OUTCOMES: Final = _labels(
    {
        "completed": ("Hoàn thành", "Completed"),
        "self_terminated": ("Tự ý chấm dứt", "Self-terminated"),
        "deceased": ("Tử vong", "Deceased"),
        "incarcerated": ("Bị bắt giữ", "Incarcerated"),
        "compulsory_rehab": ("Cai nghiện bắt buộc", "Compulsory rehab"),
        "other": ("Lý do khác", "Other"),
        "programme_changed": ("Chuyển chương trình", "Changed programme"),
    }
)

# The monthly report's lists (CONTRACT §6), in document order.
LIST_TITLES: Final = _labels(
    {
        "patients": ("Người bệnh theo chương trình", "Patients by programme"),
        "dispensing": ("Cấp phát thuốc", "Dispensing"),
        "stock": ("Xuất nhập tồn thuốc và sinh phẩm", "Stock ledger"),
        "tests": ("Xét nghiệm ma túy", "Drug tests"),
        "timeliness": ("Tiến độ nộp báo cáo", "Report timeliness"),
    }
)
# The stock card's lines (``audit ledger``), top to bottom between opening and closing.
LEDGER_LINES: Final = _labels(
    {
        "opening_balance": ("Tồn đầu kỳ", "Opening balance"),
        "received": ("Nhập trong kỳ", "Received"),
        "used_doses": ("Cấp phát cho người bệnh", "Used by doses"),
        "used_tests": ("Dùng cho xét nghiệm", "Used by tests"),
        "loss_spillage": ("Hao hụt: rơi vãi", "Loss: spillage"),
        "loss_breakage": ("Hao hụt: đổ vỡ", "Loss: breakage"),
        "loss_expired": ("Hao hụt: hết hạn", "Loss: expired"),
        "loss_other": ("Hao hụt: lý do khác", "Loss: other"),
        "transfer_in": ("Nhận điều chuyển", "Transfers in"),
        "transfer_out": ("Điều chuyển đi", "Transfers out"),
        "count_corrections": ("Điều chỉnh theo kiểm kê", "Count corrections"),
        "count_differences": ("Chênh lệch kiểm kê", "Count differences"),
        "closing_balance": ("Tồn cuối kỳ", "Closing balance"),
    }
)

# Vietnamese column headers of files for spreadsheets, by field name (nested fields
# flattened as "field.key"; their heads in NESTED_LABELS).
NESTED_LABELS: Final[Mapping[str, str]] = MappingProxyType(
    {"discharged": "Ra khỏi chương trình", "positive": "Dương tính", "details": "Chi tiết"}
)
FIELD_LABELS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "facility_id": "Mã cơ sở",
        "facility_name": "Tên cơ sở",
        "programme": "Chương trình",
        "active_start": "Đang điều trị đầu kỳ",
        "enrolled": "Thu dung mới",
        "transferred_in": "Chuyển đến",
        "transferred_out": "Chuyển đi",
        "active_end": "Đang điều trị cuối kỳ",
        "take_home_end": "Cấp thuốc nhiều ngày cuối kỳ",
        "enrolled_year": "Thu dung từ đầu năm",
        "completed_year": "Hoàn thành từ đầu năm",
        **{f"discharged.{code}": label.vi for code, label in OUTCOMES.items()},
        "item": "Mặt hàng",
        "unit": "Đơn vị tính",
        "patients_dosed": "Số người bệnh được cấp thuốc",
        "observed_doses": "Lượt uống tại chỗ",
        "take_home_handouts": "Lượt cấp nhiều ngày",
        "mg_observed": "mg uống tại chỗ",
        "mg_take_home": "mg cấp mang về",
        "opening": "Tồn đầu kỳ",
        "received": "Nhập trong kỳ",
        "adjusted": "Điều chỉnh (±)",
        "used": "Sử dụng",
        "count_difference": "Chênh lệch kiểm kê (±)",
        "closing": "Tồn cuối kỳ",
        "purpose": "Mục đích",
        "tests": "Số test",
        "report_type": "Loại báo cáo",
        "period": "Kỳ báo cáo",
        "recipient_id": "Đơn vị nhận",
        "due": "Hạn nộp (trước)",
        "submitted_at": "Thời điểm nộp",
        "on_time": "Đúng hạn",
        # the other reports
        "date": "Ngày",
        "month": "Tháng",
        "year": "Năm",
        "on_hand": "Tồn kho",
        "avg_daily_use": "Dùng trung bình/ngày",
        "days_of_supply": "Đủ dùng (ngày)",
        "active": "Đang điều trị",
        "take_home_approved": "Được cấp thuốc nhiều ngày",
        "routine_target": "Thường quy: chỉ tiêu",
        "routine_actual": "Thường quy: thực hiện",
        "take_home_target": "Nhiều ngày: chỉ tiêu",
        "take_home_actual": "Nhiều ngày: thực hiện",
        "community_detox_target": "Cai cộng đồng: chỉ tiêu",
        "community_detox_actual": "Cai cộng đồng: thực hiện",
        "alert_id": "Mã cảnh báo",
        "kind": "Loại cảnh báo",
        "severity": "Mức độ",
        "subject": "Đối tượng",
        "raised_at": "Phát sinh lúc",
        "status": "Trạng thái",
        "message": "Nội dung (tiếng Anh)",
        "message_vi": "Nội dung",
        "line": "Dòng",
        "event_id": "Mã sự kiện",
        "event_type": "Loại sự kiện",
        "reason": "Lý do",
        "source": "Nguồn",
        "seq": "Số thứ tự",
        "raw": "Nội dung gốc",
        "received_at": "Nhận lúc",
    }
)
