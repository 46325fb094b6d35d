"""Vietnamese labels for the fields and codes of the reports, shared by every document the
CLI writes (xlsx headers, the printable monthly report): one place, so that a column reads
the same in every file a CDC officer sends on."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, get_args

from schemas.models import DischargeOutcome

# The monthly report's lists: (Vietnamese, English) titles and fields in document order.
LIST_TITLES: Final[Mapping[str, tuple[str, str]]] = MappingProxyType(
    {
        "patients": ("Người bệnh theo chương trình", "Patients by programme"),
        "dispensing": ("Cấp phát thuốc", "Dispensing"),
        "stock": ("Xuất nhập tồn thuốc và sinh phẩm", "Stock ledger"),
        "tests": ("Xét nghiệm ma túy", "Drug tests"),
        "timeliness": ("Tiến độ nộp báo cáo", "Report timeliness"),
    }
)
MONTHLY_COLUMNS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "patients": (
            "programme",
            "active_start",
            "enrolled",
            "transferred_in",
            "transferred_out",
            "discharged",
            "active_end",
            "take_home_end",
            "enrolled_year",
            "completed_year",
        ),
        "dispensing": (
            "item",
            "patients_dosed",
            "observed_doses",
            "take_home_handouts",
            "mg_observed",
            "mg_take_home",
        ),
        "stock": (
            "item",
            "unit",
            "opening",
            "received",
            "adjusted",
            "used",
            "count_difference",
            "closing",
        ),
        "tests": ("purpose", "tests", "positive"),
        "timeliness": (
            "report_type",
            "period",
            "recipient_id",
            "due",
            "submitted_at",
            "on_time",
        ),
    }
)

# Known keys of nested fields, in the order their columns appear (others follow, sorted).
NESTED_KEYS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "discharged": (*get_args(DischargeOutcome), "programme_changed"),
        "positive": (),
    }
)
NESTED_LABELS: Final[Mapping[str, str]] = MappingProxyType(
    {"discharged": "Ra khỏi chương trình", "positive": "Dương tính", "details": "Chi tiết"}
)

PROGRAMME_LABELS: Final[Mapping[str, tuple[str, str]]] = MappingProxyType(
    {
        "methadone": ("Methadone", "Methadone"),
        "buprenorphine": ("Buprenorphine", "Buprenorphine"),
        "community_detox": ("Cai nghiện tự nguyện tại gia đình, cộng đồng", "Community detox"),
        "centre_detox": ("Cai nghiện tại cơ sở", "Centre detox"),
        "unknown": ("Chưa rõ chương trình", "Programme unknown"),
    }
)
PURPOSE_LABELS: Final[Mapping[str, tuple[str, str]]] = MappingProxyType(
    {
        "addiction_determination": ("Xác định tình trạng nghiện", "Addiction determination"),
        "treatment_monitoring": ("Theo dõi điều trị", "Treatment monitoring"),
        "screening": ("Sàng lọc", "Screening"),
    }
)
OUTCOME_LABELS: Final[Mapping[str, tuple[str, str]]] = MappingProxyType(
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

# Vietnamese column headers, by field name (flattened nested fields as "field.key").
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
        **{f"discharged.{code}": vi for code, (vi, _) in OUTCOME_LABELS.items()},
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
