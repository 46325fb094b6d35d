"""The five dashboards of issue 5, panel by panel (titles in Vietnamese, then English)."""

from __future__ import annotations

from dashboards.model import Column, Dashboard, Panel, Thresholds

C = Column


def _facility(name: str = "facility") -> Column:
    return C(name, "Cơ sở", "Facility", "text")


FACILITY_ID = C("facility_id", "Mã cơ sở", "Facility id", "text")
ITEM = C("item", "Mặt hàng", "Item", "text")
STATUS = C("status", "Tình trạng", "Status", "status")
DAY = C("day", "Ngày", "Day", "date")
TIME = C("time", "Thời gian", "Time", "datetime")
TIME_DAY = C("time", "Ngày", "Day", "date")

DAYS_OF_SUPPLY = Thresholds(critical_at=7, warning_at=14)

TARGETS = Panel(
    "targets",
    "Bệnh nhân điều trị so với chỉ tiêu năm",
    "Patients on treatment against annual targets",
    "table",
    "targets",
    (
        FACILITY_ID,
        C("unit", "Đơn vị", "Unit", "text"),
        C("year", "Năm", "Year", "text"),
        C("routine_target", "Chỉ tiêu thường quy", "Routine target"),
        C("routine_actual", "Thực tế thường quy", "Routine actual"),
        C("take_home_target", "Chỉ tiêu nhiều ngày", "Take-home target"),
        C("take_home_actual", "Thực tế nhiều ngày", "Take-home actual"),
        C("community_detox_target", "Chỉ tiêu cai cộng đồng", "Community detox target"),
        C("community_detox_actual", "Thực tế cai cộng đồng", "Community detox actual"),
        C("routine_pct", "% chỉ tiêu thường quy", "Routine % of target", "percent", 1),
    ),
    "Actuals roll up the unit and every facility below it, at T (the latest event).",
    width=24,
    thresholds={"routine_pct": Thresholds(critical_at=50, warning_at=80)},
)

DOSING_PROGRESS = Panel(
    "dosing_progress",
    "Tiến độ cấp thuốc hôm nay",
    "Today's dosing progress",
    "bargauge",
    "dosing_progress",
    (
        FACILITY_ID,
        _facility(),
        C("dosed_today", "Đã cấp hôm nay", "Dosed today"),
        C("active_patients", "Bệnh nhân đang điều trị", "Active patients"),
        C("progress_pct", "Tiến độ", "Progress", "percent", 1),
    ),
    "Patients dosed on T's local day (with the facility's dispensing points) over its "
    "active patients.",
    label_column="facility",
    thresholds={"progress_pct": Thresholds(critical_at=30, warning_at=60)},
)

STOCK = Panel(
    "stock",
    "Số ngày đủ thuốc theo cơ sở và mặt hàng",
    "Stock days of supply per facility and item",
    "table",
    "stock_position",
    (
        FACILITY_ID,
        _facility(),
        ITEM,
        C("unit", "Đơn vị", "Unit", "text"),
        C("on_hand", "Tồn kho", "On hand", decimals=1),
        C("avg_daily_use", "Dùng TB/ngày", "Average daily use", decimals=2),
        C("days_of_supply", "Số ngày đủ", "Days of supply", decimals=1),
        C("stockout_date", "Dự kiến hết", "Projected stock-out", "date"),
        STATUS,
    ),
    "As `ostwatch report stock` at T: red under 7 days, amber under 14, green otherwise.",
    width=24,
    height=10,
    thresholds={"days_of_supply": DAYS_OF_SUPPLY},
)

ALERTS_BY_SEVERITY = Panel(
    "alerts_by_severity",
    "Cảnh báo đang mở theo mức độ",
    "Open alerts by severity",
    "barchart",
    "alerts_by_severity",
    (C("severity", "Mức độ", "Severity", "status"), C("open_alerts", "Đang mở", "Open")),
    "From the alerts table (the stream's alert engine).",
    width=8,
    label_column="severity",
)

OPEN_ALERTS = Panel(
    "open_alerts",
    "Danh sách cảnh báo đang mở",
    "Open alerts",
    "table",
    "open_alerts",
    (
        C("alert_id", "Mã", "Id", "text"),
        C("severity", "Mức độ", "Severity", "status"),
        C("kind", "Loại", "Kind", "text"),
        FACILITY_ID,
        C("subject", "Đối tượng", "Subject", "text"),
        C("raised_at", "Phát sinh", "Raised", "datetime"),
        C("message_vi", "Nội dung", "Message (vi)", "text"),
        C("message", "Message", "Message (en)", "text"),
    ),
    width=16,
)

TIMELINESS = Panel(
    "timeliness",
    "Tiến độ nộp báo cáo đến hạn tháng này",
    "Report timeliness this month",
    "table",
    "timeliness",
    (
        C("report_type", "Báo cáo", "Report", "text"),
        FACILITY_ID,
        C("reporter", "Đơn vị báo cáo", "Reporter", "text"),
        C("period", "Kỳ", "Period", "text"),
        C("period_end", "Hết kỳ", "Period ends", "date"),
        C("recipient", "Đơn vị nhận", "Recipient", "text"),
        C("due_date", "Hạn nộp", "Due", "date"),
        C("submitted_at", "Ngày nộp", "Submitted", "datetime"),
        STATUS,
    ),
    "The reports falling due this month (last month's, and last quarter's, half-year's or "
    "year's where one ended), judged at the end of the time range.",
    width=24,
)

OVERVIEW = Dashboard(
    "ostwatch-overview",
    "Tổng quan tỉnh (CDC)",
    "Province overview (CDC)",
    (TARGETS, DOSING_PROGRESS, ALERTS_BY_SEVERITY, OPEN_ALERTS, STOCK, TIMELINESS),
    "What the provincial CDC looks at every morning.",
    time_from="now-30d",
    refresh="30s",
)

FACILITY = Dashboard(
    "ostwatch-facility",
    "Cơ sở điều trị",
    "Facility",
    (
        Panel(
            "dosing_by_hour",
            "Cấp thuốc theo giờ",
            "Dosing by hour",
            "timeseries",
            "dosing_by_hour",
            (
                TIME,
                C("observed", "Uống tại chỗ", "Observed"),
                C("take_home", "Mang về", "Take-home"),
            ),
            format="time_series",
        ),
        Panel(
            "dosing_by_day",
            "Cấp thuốc theo ngày",
            "Dosing by day",
            "timeseries",
            "dosing_by_day",
            (
                TIME_DAY,
                C("patients_dosed", "Bệnh nhân được cấp", "Patients dosed"),
                C("observed_doses", "Liều uống tại chỗ", "Observed doses"),
                C("take_home_handouts", "Lần cấp mang về", "Take-home handouts"),
            ),
            format="time_series",
        ),
        Panel(
            "observed_vs_take_home",
            "Uống tại chỗ và mang về",
            "Observed vs take-home",
            "stat",
            "observed_vs_take_home",
            (
                C("observed_doses", "Liều uống tại chỗ", "Observed doses"),
                C("take_home_handouts", "Lần cấp mang về", "Take-home handouts"),
                C("mg_observed", "mg uống tại chỗ", "mg observed"),
                C("mg_take_home", "mg mang về", "mg take-home"),
            ),
            width=8,
        ),
        Panel(
            "patient_counts",
            "Bệnh nhân: đang điều trị, thu dung, ra khỏi chương trình",
            "Patients: active, enrolled, discharged",
            "stat",
            "patient_counts",
            (
                C("active", "Đang điều trị", "Active"),
                C("enrolled", "Thu dung", "Enrolled"),
                C("discharged", "Ra khỏi chương trình", "Discharged"),
            ),
            width=8,
        ),
        Panel(
            "tests_positivity",
            "Xét nghiệm và kết quả dương tính",
            "Tests and positive results",
            "timeseries",
            "tests_positivity",
            (
                TIME_DAY,
                C("tests", "Số xét nghiệm", "Tests"),
                C("positive_results", "Kết quả dương tính", "Positive results"),
            ),
            width=8,
            format="time_series",
        ),
        Panel(
            "stock_card",
            "Thẻ kho",
            "Stock card",
            "table",
            "stock_card",
            (
                DAY,
                FACILITY_ID,
                ITEM,
                C("unit", "Đơn vị", "Unit", "text"),
                C("received", "Nhập", "Received", decimals=1),
                C("adjusted", "Điều chỉnh", "Adjusted", decimals=1),
                C("used", "Sử dụng", "Used", decimals=1),
                C("counted_on_hand", "Kiểm kê", "Counted", decimals=1),
            ),
            width=24,
        ),
    ),
    "One facility's day: dosing, stock, patients and tests.",
)

STOCK_SUPPLY = Dashboard(
    "ostwatch-stock",
    "Kho và cung ứng",
    "Stock and supply",
    (
        STOCK,
        Panel(
            "expiring_lots",
            "Lô sắp hết hạn",
            "Expiring lots",
            "table",
            "expiring_lots",
            (
                FACILITY_ID,
                ITEM,
                C("lot", "Lô", "Lot", "text"),
                C("expiry_date", "Hạn dùng", "Expiry", "date"),
                C("quantity_received", "Số lượng nhập", "Quantity received", decimals=1),
                C("days_to_expiry", "Còn (ngày)", "Days to expiry"),
                STATUS,
            ),
        ),
        Panel(
            "count_discrepancies",
            "Chênh lệch kiểm kê",
            "Count discrepancies",
            "table",
            "count_discrepancies",
            (
                DAY,
                FACILITY_ID,
                ITEM,
                C("counted_on_hand", "Kiểm kê", "Counted", decimals=1),
                C("expected", "Tính toán", "Expected", decimals=1),
                C("difference", "Chênh lệch", "Difference", decimals=1),
                STATUS,
            ),
            "Amber beyond the tolerance (2 % or 1 unit, whichever is larger), red beyond 5×.",
        ),
    ),
    "On hand, use, days of supply, stock-out dates, expiring lots and count discrepancies.",
)

PROGRAMME = Dashboard(
    "ostwatch-programme",
    "Chương trình điều trị",
    "Programme",
    (
        Panel(
            "enrolments",
            "Thu dung theo chương trình",
            "Enrolments by programme",
            "timeseries",
            "enrolments",
            (
                TIME_DAY,
                C("programme", "Chương trình", "Programme", "text"),
                C("enrolments", "Thu dung", "Enrolments"),
            ),
            format="time_series",
        ),
        Panel(
            "discharges",
            "Ra khỏi chương trình theo kết quả",
            "Discharges by outcome",
            "barchart",
            "discharges",
            (C("outcome", "Kết quả", "Outcome", "text"), C("discharges", "Số ca", "Discharges")),
            label_column="outcome",
        ),
        Panel(
            "transfers",
            "Chuyển cơ sở",
            "Transfers",
            "table",
            "transfers",
            (
                C("from_facility", "Từ cơ sở", "From", "text"),
                C("to_facility", "Đến cơ sở", "To", "text"),
                C("transfers", "Số ca", "Transfers"),
            ),
            width=8,
        ),
        Panel(
            "retention",
            "Duy trì điều trị",
            "Retention",
            "table",
            "retention",
            (
                FACILITY_ID,
                C("enrolled", "Thu dung", "Enrolled"),
                C("still_in_treatment", "Còn điều trị", "Still in treatment"),
                C("retention_pct", "Tỷ lệ duy trì", "Retention", "percent", 1),
            ),
            "Of those enrolled in the time range, the share still in treatment at T.",
            width=8,
            thresholds={"retention_pct": Thresholds(critical_at=70, warning_at=85)},
        ),
        Panel(
            "take_home_share",
            "Tỷ lệ cấp thuốc mang về",
            "Take-home share",
            "timeseries",
            "take_home_share",
            (TIME_DAY, C("take_home_share_pct", "Tỷ lệ mang về", "Take-home share", "percent", 1)),
            width=8,
            format="time_series",
        ),
        Panel(
            "coverage",
            "Độ bao phủ so với chỉ tiêu",
            "Coverage against targets",
            "barchart",
            "targets",
            TARGETS.columns,
            width=24,
            label_column="unit",
        ),
    ),
    "Enrolments, discharges, transfers, retention, take-home share and coverage.",
    time_from="now-90d",
)

QUALITY = Dashboard(
    "ostwatch-quality",
    "Chất lượng dữ liệu",
    "Data quality",
    (
        Panel(
            "rejected",
            "Sự kiện bị từ chối theo lý do và nguồn",
            "Rejected events by reason and source",
            "table",
            "rejected",
            (
                C("source", "Nguồn", "Source", "text"),
                C("reason", "Lý do", "Reason", "text"),
                C("rejected", "Bị từ chối", "Rejected"),
            ),
        ),
        Panel(
            "duplicates",
            "Bản trùng theo nguồn",
            "Duplicates by source",
            "table",
            "duplicates",
            (
                C("source", "Nguồn", "Source", "text"),
                C("accepted", "Chấp nhận", "Accepted"),
                C("rejected", "Từ chối", "Rejected"),
                C("duplicates", "Trùng", "Duplicates"),
                C("duplicate_pct", "% trùng", "Duplicate share", "percent", 2),
            ),
        ),
        Panel(
            "late_events",
            "Sự kiện đến muộn (đến − xảy ra)",
            "Late events (arrival − occurrence)",
            "table",
            "late_events",
            (
                FACILITY_ID,
                C("events", "Sự kiện", "Events"),
                C("late_over_1h", "Muộn > 1 giờ", "Late > 1 h"),
                C("median_delay_h", "Trễ trung vị (giờ)", "Median delay (h)", decimals=1),
                C("max_delay_h", "Trễ tối đa (giờ)", "Max delay (h)", decimals=1),
            ),
        ),
        Panel(
            "silent_facilities",
            "Cơ sở im lặng",
            "Silent facilities",
            "table",
            "silent_facilities",
            (
                FACILITY_ID,
                _facility(),
                C("type", "Loại", "Type", "text"),
                C("last_event", "Sự kiện cuối", "Last event", "datetime"),
                C("hours_silent", "Số giờ im lặng", "Hours silent", decimals=1),
                STATUS,
            ),
            "Hours from each facility's latest event to T: amber from 24 h, red from 48 h.",
            thresholds={"hours_silent": Thresholds(48, 24, higher_is_worse=True)},
        ),
    ),
    "What did not arrive, arrived twice, arrived late or was rejected.",
)

DASHBOARDS: tuple[Dashboard, ...] = (OVERVIEW, FACILITY, STOCK_SUPPLY, PROGRAMME, QUALITY)


def all_panels() -> list[tuple[Dashboard, Panel]]:
    return [(d, p) for d in DASHBOARDS for p in d.panels]
