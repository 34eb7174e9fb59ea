# ruff: noqa: E501 - message texts read best unbroken
"""Default message templates (Jinja, sandboxed). Admin can edit the stored copies.

Each kind lists the variables it receives; the editor sees that list.
"""
from __future__ import annotations

from app.notifications.models import Channel

# kind -> (variables documentation, {(channel, locale): (subject, body, body_html)})
Texts = dict[tuple[Channel, str], tuple[str | None, str, str | None]]

DEFAULT_TEMPLATES: dict[str, tuple[str, Texts]] = {
    "appointment_booked": (
        "code: mã lịch hẹn; office: cơ quan; address: địa chỉ; date: ngày (dd/mm/yyyy); "
        "time: giờ (HH:MM); documents: số giấy tờ; what_to_bring: giấy tờ cần mang; link: đường dẫn",
        {
            (Channel.sms, "vi"): (None, "SaoY: Lịch hẹn chứng thực {{ code }} lúc {{ time }} ngày "
                                 "{{ date }} tại {{ office }}. Mang theo bản chính giấy tờ.", None),
            (Channel.sms, "en"): (None, "SaoY: Appointment {{ code }} at {{ time }} on {{ date }}, "
                                 "{{ office }}. Bring the originals.", None),
            (Channel.portal, "vi"): ("Đặt lịch hẹn thành công: {{ code }}",
                                     "Lịch hẹn {{ code }} lúc {{ time }} ngày {{ date }} tại "
                                     "{{ office }} ({{ address }}). {{ what_to_bring }}", None),
            (Channel.portal, "en"): ("Appointment booked: {{ code }}",
                                     "Appointment {{ code }} at {{ time }} on {{ date }}, "
                                     "{{ office }} ({{ address }}). {{ what_to_bring }}", None),
        },
    ),
    "appointment_reminder": (
        "code, office, address, date, time",
        {
            (Channel.sms, "vi"): (None, "SaoY: Nhắc lịch hẹn {{ code }} lúc {{ time }} ngày mai "
                                 "{{ date }} tại {{ office }}.", None),
            (Channel.sms, "en"): (None, "SaoY: Reminder: appointment {{ code }} tomorrow {{ date }} "
                                 "at {{ time }}, {{ office }}.", None),
        },
    ),
    "appointment_rescheduled": (
        "code, office, date, time (mới/new), old_date, old_time, reason",
        {
            (Channel.sms, "vi"): (None, "SaoY: Lịch hẹn {{ code }} được dời sang {{ time }} ngày "
                                 "{{ date }} tại {{ office }}. Lý do: {{ reason }}", None),
            (Channel.sms, "en"): (None, "SaoY: Appointment {{ code }} moved to {{ time }} on "
                                 "{{ date }}, {{ office }}. Reason: {{ reason }}", None),
            (Channel.portal, "vi"): ("Lịch hẹn {{ code }} đã được dời",
                                     "Lịch hẹn của bạn được dời từ {{ old_time }} ngày {{ old_date }} "
                                     "sang {{ time }} ngày {{ date }} tại {{ office }}. "
                                     "Lý do: {{ reason }}", None),
            (Channel.portal, "en"): ("Appointment {{ code }} rescheduled",
                                     "Your appointment moved from {{ old_time }} on {{ old_date }} "
                                     "to {{ time }} on {{ date }}, {{ office }}. "
                                     "Reason: {{ reason }}", None),
        },
    ),
    "appointment_cancelled": (
        "code, office, date, time, reason",
        {
            (Channel.sms, "vi"): (None, "SaoY: Lịch hẹn {{ code }} lúc {{ time }} ngày {{ date }} "
                                 "đã bị hủy. Lý do: {{ reason }}", None),
            (Channel.sms, "en"): (None, "SaoY: Appointment {{ code }} at {{ time }} on {{ date }} "
                                 "was cancelled. Reason: {{ reason }}", None),
            (Channel.portal, "vi"): ("Lịch hẹn {{ code }} đã bị hủy",
                                     "Lịch hẹn lúc {{ time }} ngày {{ date }} tại {{ office }} đã "
                                     "bị hủy. Lý do: {{ reason }}", None),
            (Channel.portal, "en"): ("Appointment {{ code }} cancelled",
                                     "The appointment at {{ time }} on {{ date }}, {{ office }} was "
                                     "cancelled. Reason: {{ reason }}", None),
        },
    ),
    "counter_code": (
        "code: mã một lần; office: cơ quan; minutes: số phút hiệu lực",
        {
            (Channel.sms, "vi"): (None, "SaoY: Mã xác nhận tài khoản tại quầy {{ office }}: {{ code }} "
                                 "({{ minutes }} phút). Chỉ đọc mã này cho cán bộ khi bạn đang ở quầy.", None),
            (Channel.sms, "en"): (None, "SaoY: Counter check code at {{ office }}: {{ code }} "
                                 "({{ minutes }} min). Read it out only at the counter.", None),
            (Channel.email, "vi"): ("Mã xác nhận tài khoản tại quầy: {{ code }}",
                                    "Cán bộ tiếp nhận tại {{ office }} vừa gửi mã xác nhận tài khoản "
                                    "của bạn: {{ code }} (hiệu lực {{ minutes }} phút). Chỉ đọc mã "
                                    "này cho cán bộ khi bạn đang có mặt tại quầy. Nếu bạn không ở "
                                    "quầy, đừng đưa mã cho ai.", None),
            (Channel.email, "en"): ("Counter check code: {{ code }}",
                                    "The officer at {{ office }} has sent a code to confirm your "
                                    "account: {{ code }} (valid {{ minutes }} minutes). Read it out "
                                    "only when you are at the counter; if you are not, give it to "
                                    "no one.", None),
        },
    ),
    "copy_returned_to_officer": (
        "request_id: số hồ sơ; office; document_type; requester: người yêu cầu; reason; "
        "link: đường dẫn tới hồ sơ",
        {
            (Channel.portal, "vi"): ("Hồ sơ #{{ request_id }} bị lãnh đạo trả lại",
                                     "Hồ sơ #{{ request_id }} ({{ document_type }}, người yêu cầu "
                                     "{{ requester }}) bị trả lại. Lý do: {{ reason }}. Quét lại "
                                     "và trình ký, hoặc hủy hồ sơ: {{ link }}", None),
            (Channel.portal, "en"): ("Request #{{ request_id }} returned by the leader",
                                     "Request #{{ request_id }} ({{ document_type }}, requester "
                                     "{{ requester }}) was returned. Reason: {{ reason }}. Scan "
                                     "again and resubmit, or cancel it: {{ link }}", None),
        },
    ),
    "copy_refused": (
        "request_id: số hồ sơ; office; document_type; reason; link",
        {
            (Channel.portal, "vi"): ("Yêu cầu chứng thực #{{ request_id }} không được thực hiện",
                                     "Yêu cầu chứng thực {{ document_type }} tại {{ office }} không "
                                     "được thực hiện. Lý do: {{ reason }}", None),
            (Channel.portal, "en"): ("Certification request #{{ request_id }} refused",
                                     "Your request to certify {{ document_type }} at {{ office }} "
                                     "was refused. Reason: {{ reason }}", None),
            (Channel.email, "vi"): ("Yêu cầu chứng thực không được thực hiện",
                                    "Kính gửi Ông/Bà,\n\nYêu cầu chứng thực {{ document_type }} tại "
                                    "{{ office }} (hồ sơ #{{ request_id }}) không được thực hiện.\n"
                                    "Lý do: {{ reason }}\n\n{{ office }}", None),
            (Channel.email, "en"): ("Certification request refused",
                                    "Dear Sir or Madam,\n\nYour request to certify "
                                    "{{ document_type }} at {{ office }} (request "
                                    "#{{ request_id }}) was refused.\nReason: {{ reason }}\n\n"
                                    "{{ office }}", None),
        },
    ),
    "copy_delivered": (
        "office, document_type, number, book, verify_url, access_code, requester, link",
        {
            (Channel.portal, "vi"): ("Bản sao điện tử đã được chứng thực",
                                     "{{ document_type }} — số chứng thực {{ number }}, quyển số "
                                     "{{ book }}, {{ office }}. Tra cứu: {{ verify_url }} (mã "
                                     "truy cập {{ access_code }})", None),
            (Channel.portal, "en"): ("Your certified copy is ready",
                                     "{{ document_type }} — certification no. {{ number }}, book "
                                     "{{ book }}, {{ office }}. Verify: {{ verify_url }} "
                                     "(access code {{ access_code }})", None),
            (Channel.email, "vi"): (
                "Bản sao điện tử chứng thực từ bản chính — số {{ number }}",
                "Kính gửi Ông/Bà {{ requester }},\n\n{{ office }} gửi kèm bản sao điện tử "
                "{{ document_type }} đã được chứng thực (số chứng thực {{ number }}, quyển số "
                "{{ book }}).\nKiểm tra tính hợp lệ tại: {{ verify_url }}\nMã truy cập (để tải "
                "bản sao từ trang kiểm tra): {{ access_code }}\n\nTrân trọng,\n{{ office }}",
                "<p>Kính gửi Ông/Bà {{ requester }},</p><p><b>{{ office }}</b> gửi kèm bản sao "
                "điện tử <b>{{ document_type }}</b> đã được chứng thực (số chứng thực "
                "{{ number }}, quyển số {{ book }}).</p><p>Kiểm tra tính hợp lệ tại: "
                "<a href=\"{{ verify_url }}\">{{ verify_url }}</a><br>Mã truy cập (để tải bản "
                "sao từ trang kiểm tra): <b>{{ access_code }}</b></p><p>Trân trọng,<br>"
                "{{ office }}</p>"),
            (Channel.email, "en"): (
                "Certified electronic copy — no. {{ number }}",
                "Dear {{ requester or 'Sir or Madam' }},\n\n{{ office }} sends the certified "
                "electronic copy of {{ document_type }} (certification no. {{ number }}, book "
                "{{ book }}).\nVerify it at: {{ verify_url }}\nAccess code (to download the copy "
                "from that page): {{ access_code }}\n\nKind regards,\n{{ office }}",
                None),
        },
    ),
    "test_message": (
        "text",
        {
            (Channel.sms, "vi"): (None, "SaoY: {{ text }}", None),
            (Channel.email, "vi"): ("SaoY: {{ text }}", "{{ text }}", None),
            (Channel.portal, "vi"): ("SaoY", "{{ text }}", None),
        },
    ),
}
