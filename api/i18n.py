"""The console's words in English and Chinese, and the event timeline in plain words.

A small message catalogue: ``MESSAGES[lang][key]`` is a ``str.format`` template.
A key missing in Chinese falls back to English (the tests require both to have
the same keys). Amounts are formatted with Babel for the language.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Callable

from babel.numbers import format_currency, format_decimal

LANGUAGES = ("en", "zh")
BABEL_LOCALE = {"en": "en_US", "zh": "zh_CN"}

MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "app.name": "Collections console",
        "nav.worklist": "Worklist",
        "nav.approvals": "Approvals",
        "nav.dashboard": "Dashboard",
        "nav.signout": "Sign out",
        "nav.signed_in_as": "{name} ({role})",
        "nav.language": "Language",
        "lang.en": "English",
        "lang.zh": "中文",
        "login.title": "Sign in",
        "login.token": "API token",
        "login.help": "Paste the token printed by “python starter.py users token NAME” (or by “make demo”).",
        "login.submit": "Sign in",
        "login.invalid": "That token is not valid (or a newer one replaced it).",
        "login.done": "Signed in as {name}.",
        "logout.done": "Signed out.",
        "role.collector": "collector",
        "role.supervisor": "supervisor",
        "role.finance_manager": "finance manager",
        "role.integration": "integration",
        "role.system": "the engine",
        "status.open": "open",
        "status.disputed": "disputed",
        "status.promised": "promised",
        "status.on_plan": "on a payment plan",
        "status.escalated": "escalated",
        "status.awaiting_approval": "awaiting approval",
        "status.with_factor": "with the factor",
        "status.paid": "paid",
        "status.resolved": "resolved",
        "status.written_off": "written off",
        "status.cancelled": "cancelled",
        "status.closed": "closed",
        "plan.proposed": "proposed",
        "plan.approved": "approved, waiting for the customer",
        "plan.accepted": "accepted",
        "plan.rejected": "rejected",
        "plan.defaulted": "defaulted",
        "plan.completed": "completed",
        "approval.approved": "approved",
        "approval.rejected": "rejected",
        "approval.decided": "decided",
        "approval.pending": "pending",
        "kind.write_off": "Write-off",
        "kind.plan": "Payment plan",
        "kind.credit": "Dispute credit",
        "kind.cancellation": "Cancellation",
        "kind.waiver": "Interest waiver",
        "kind.escalation": "Escalation",
        "decision.plan": "Offer a payment plan",
        "decision.agency": "Refer to a collection agency",
        "decision.legal": "Refer to legal",
        "decision.credit_hold": "Put the customer on credit hold",
        "decision.write_off": "Request a write-off",
        "decision.continue": "Continue dunning",
        "outcome.upheld": "upheld",
        "outcome.rejected": "rejected",
        "reason.overdue": "invoice overdue",
        "reason.dispute": "opened as a dispute",
        "reason.manual": "opened by hand",
        "reason.ladder_exhausted": "every reminder was sent",
        "reason.follow_up": "follow-up after “continue dunning”",
        "reason.plan_defaulted": "the payment plan defaulted",
        "reason.escalation": "escalation decision",
        "common.any": "any",
        "common.apply": "Apply",
        "common.clear": "Clear",
        "common.none": "—",
        "common.submit": "Save",
        "common.optional": "optional",
        "common.data": "Data",
        "common.overdue": "overdue",
        "common.back": "Back",
        "worklist.title": "Collector worklist",
        "worklist.intro": "Open cases, highest priority first: amount at risk × days overdue × risk grade.",
        "worklist.count": "{shown} of {total} open case(s)",
        "worklist.empty": "No open case matches these filters.",
        "filter.status": "Status",
        "filter.assignee": "Assignee",
        "filter.mine": "mine",
        "filter.unassigned": "unassigned",
        "filter.grade": "Risk grade",
        "filter.currency": "Currency",
        "filter.search": "Invoice or customer",
        "col.invoice": "Invoice",
        "col.customer": "Customer",
        "col.status": "Status",
        "col.balance": "Balance",
        "col.at_risk": "At risk",
        "col.days_overdue": "Days overdue",
        "col.grade": "Grade",
        "col.priority": "Priority",
        "col.next_action": "Next action",
        "col.next_action_at": "When",
        "col.assignee": "Assignee",
        "col.waiting_for": "Waiting for",
        "col.kind": "Item",
        "col.amount": "Amount",
        "col.requested_by": "Requested by",
        "col.age": "Age",
        "col.sla": "SLA deadline",
        "col.tier": "Level",
        "col.actions": "Decision",
        "col.decided_by": "Decided by",
        "col.decision": "Decision",
        "approvals.title": "Approvals inbox",
        "approvals.intro": "Pending escalations, payment plans and write-offs. Items beyond your authority are shown but cannot be decided by you.",
        "approvals.empty": "Nothing is waiting for a decision.",
        "approvals.approve": "Approve",
        "approvals.reject": "Reject",
        "approvals.reason": "Reason (kept in the audit trail)",
        "approvals.decide": "Decide",
        "approvals.decision": "Decision",
        "approvals.note": "Note",
        "approvals.recent": "Recently decided",
        "approvals.needs": "needs a {tier}",
        "approvals.cannot.not_approver": "Only supervisors and finance managers decide",
        "approvals.cannot.tier": "Needs a {tier}",
        "approvals.cannot.own_request": "Your own request (four eyes)",
        "approvals.cannot.limit": "Beyond your write-off authority ({limit})",
        "approvals.approved": "{kind} for {invoice} approved; the case is now {status}.",
        "approvals.rejected": "{kind} for {invoice} rejected; the case is now {status}.",
        "escalation.decided": "Escalation of {invoice} decided ({decision}); the case is now {status}.",
        "case.title": "Case {invoice}",
        "case.state": "Current state",
        "case.customer": "Customer",
        "case.status": "Status",
        "case.balance": "Balance",
        "case.original": "Original amount",
        "case.disputed": "Disputed",
        "case.level": "Reminders sent",
        "case.grade": "Risk grade",
        "case.assignee": "Assignee",
        "case.waiting_for": "Waiting for",
        "case.next_action": "Next action",
        "case.policy": "Policy",
        "case.totals": "Payments {payments} · credits {credits} · write-offs {write_offs} · fees {fees}",
        "case.interest": "Of the fees: statutory interest {interest} (accrued to {accrued_to}) · fixed compensation {compensation}",
        "case.credit_hold": "Customer on credit hold",
        "case.closed": "This case is closed ({status}); it accepts no further commands.",
        "case.timeline": "Timeline",
        "case.when": "When",
        "case.who": "Who",
        "case.what": "What",
        "case.why": "Why",
        "case.actions": "Work this case",
        "case.done": "Recorded: {events}. The case is {status}, balance {balance}.",
        "case.nothing": "Nothing changed.",
        "case.dispute_open": "Open dispute: {amount} ({reason}), to resolve by {due}",
        "case.promise_open": "Promise to pay {amount} by {date}",
        "case.plan_open": "Payment plan {plan_id}: {status}",
        "case.paused": "Dunning paused until {until} ({reason}), asked by {by}",
        "case.pause_requested": "Pause until {until} ({reason}) waits for approval {approval}",
        "case.offer_lapses": "The offer lapses at {at}",
        "case.escalation_open": "Waiting for a {tier} decision, due {due}",
        "case.cannot_decide": "A {tier} decides this escalation.",
        "form.payment": "Record a payment",
        "form.amount": "Amount",
        "form.reference": "Reference",
        "form.received_on": "Received on",
        "form.dispute": "Open a dispute",
        "form.reason_code": "Reason code",
        "form.dispute_amount": "Disputed amount (default: whole balance)",
        "form.resolve": "Resolve the dispute",
        "form.outcome": "Outcome",
        "form.credit": "Credit note (default: disputed amount)",
        "form.note": "Note",
        "form.promise": "Record a promise to pay",
        "form.date": "Date",
        "form.plan": "Propose a payment plan",
        "form.instalments": "Instalments",
        "form.every": "Every (ISO 8601, e.g. P30D)",
        "form.first": "First due date",
        "form.accept_plan": "Customer accepted the plan",
        "form.escalation": "Decide the escalation",
        "form.write_off": "Request a write-off",
        "form.assign": "Assign",
        "form.assignee": "Assignee",
        "form.cancel": "Cancel the case",
        "error.title": "Something went wrong",
        "error.forbidden": "Not allowed",
        "error.forbidden_text": "{name} is a {role} and may not do this.",
        "error.csrf": "The form expired or came from another site; reload the page and try again.",
        "error.not_found": "Not found",
        "error.unavailable": "The engine is not reachable right now: {message}",
        "dashboard.title": "Dashboard",
        "dashboard.as_of": "As of {date}",
        "dashboard.currency": "Currency",
        "dashboard.aging": "Aging of receivables ({currency})",
        "dashboard.status": "Cases by status",
        "dashboard.approvals": "Approvals waiting and overdue against SLA",
        "dashboard.collected": "Amount collected per week ({currency})",
        "dashboard.dso": "DSO trend ({currency}, 90-day window, days)",
        "dashboard.waiting": "waiting",
        "dashboard.overdue": "past SLA",
        "dashboard.no_data": "no data",
        "dashboard.kpis": "Collection KPIs ({currency}, {start} to {end})",
        "kpi.dso_standard": "DSO (standard), days",
        "kpi.dso_countback": "DSO (countback), days",
        "kpi.cei_percent": "Collection effectiveness index, %",
        "kpi.ar_turnover_days": "Receivables turnover, days",
        "kpi.promise_kept_rate_percent": "Promises kept, %",
        "kpi.average_days_to_collect": "Average days to collect",
        "kpi.write_off_ratio_percent": "Write-off ratio, %",
        "kpi.advances_held_end": "Advances held (a liability, not in receivables)",
        "case.insurance": "Insured by {insurer} (policy {policy}, {percent}% indemnity): {stage}. Notify the insurer by {notify_by} (planned {notify_at}); no payment extension beyond {extension}.",
        "case.insurance_claim": "Claim {claim} of {amount}; indemnity expected {expected}, received {received}.",
        "case.financing": "Assigned to factor {factor} {recourse} (assignment {assignment}): {assigned} assigned, {advanced} advanced, fee {fee}; {status}.",
        "case.financing_recourse": "with recourse",
        "case.financing_no_recourse": "without recourse",
        "case.discount_offer": "Early-payment discount offered: pay {pay} by {by} ({percent}% off: {discount}).",
        "bucket.current": "current",
        "bucket.1-30": "1–30 days",
        "bucket.31-60": "31–60 days",
        "bucket.61-90": "61–90 days",
        "bucket.90+": "90+ days",
        "age.days": "{d}d {h}h",
        "age.hours": "{h}h {m}m",
        "age.minutes": "{m} min",
        "event.CaseOpened": "Case opened for invoice {invoice_id} over {opening_balance}",
        "event.ReminderSent": "{step} reminder sent to {recipient}",
        "event.ReminderFailed": "{step} reminder to {recipient} could not be delivered",
        "event.LateFeeCharged": "Late fee of {fee} charged",
        "event.InterestCharged": "Statutory interest of {interest} charged ({regime}; {accrued} accrued to {accrued_to})",
        "event.InterestCharged.compensation": "Statutory interest of {interest} and fixed compensation of {compensation} "
                                              "charged ({regime}; {accrued} accrued to {accrued_to})",
        "event.PaymentReceived": "Payment of {amount} received",
        "event.PaymentReported": "Customer reported a payment of {amount} on {paid_on}",
        "customer.title": "Your account with us",
        "customer.greeting": "Hello {name}",
        "customer.items": "Open invoices",
        "customer.invoice": "Invoice",
        "customer.due": "Due",
        "customer.original": "Amount",
        "customer.balance": "Outstanding",
        "customer.status": "Status",
        "customer.nothing_open": "Nothing is outstanding. Thank you.",
        "customer.history": "History",
        "customer.when": "When",
        "customer.what": "What",
        "customer.promise": "Promise to pay",
        "customer.promise_help": "Tell us when you will pay; we stop reminding you until that date.",
        "customer.amount": "Amount",
        "customer.date": "Payment date",
        "customer.promise_submit": "Promise this payment",
        "customer.paid": "Tell us it was paid",
        "customer.paid_help": "Already paid? Tell us the amount, date and reference so that we can find it.",
        "customer.paid_on": "Paid on",
        "customer.reference": "Payment reference",
        "customer.paid_submit": "Report the payment",
        "customer.done.promise": "Thank you: your promise to pay {amount} by {date} for invoice {invoice} is recorded.",
        "customer.done.paid": "Thank you: we will look for your payment of {amount} (reference {reference}).",
        "customer.refused": "We could not record this: {message}",
        "customer.link_invalid": "This link is not valid. Please use the link exactly as it appears in our message.",
        "customer.link_expired": "This link has expired. Please use the link in our latest message, or reply to it.",
        "customer.too_many": "Too many requests from this link; please wait a minute and try again.",
        "customer.link_error_title": "Link not usable",
        "customer.attachment": "One document (PDF, PNG or JPEG)",
        "customer.plan": "Ask for a payment plan",
        "customer.plan_help": "Pay the balance in instalments. A short plan is agreed at once; a longer one needs our approval.",
        "customer.instalments": "Number of instalments",
        "customer.every": "Every",
        "customer.every.P7D": "week",
        "customer.every.P14D": "two weeks",
        "customer.every.P30D": "30 days",
        "customer.plan_submit": "Ask for this plan",
        "customer.done.plan": "Agreed: invoice {invoice} is now on a plan of {count} instalments.",
        "customer.done.plan_approval": "Thank you: your plan of {count} instalments for invoice {invoice} needs our approval; we will come back to you.",
        "customer.link_revoked": "This link was withdrawn. Please use the link in our latest message, or reply to it.",
        "customer.contact": "Billing contact",
        "customer.contact_help": "Our messages go to {email}. Is this wrong? Give us the right address.",
        "customer.email": "E-mail address",
        "customer.contact_submit": "Correct the address",
        "customer.done.contact": "Thank you: from now on our messages go to {email}.",
        "event.ContactCorrected": "Billing contact changed to {email} (was {previous})",
        "customer.dispute": "Dispute an invoice",
        "customer.dispute_help": "Tell us what is wrong; we stop reminding you about the disputed amount while we look into it.",
        "customer.dispute_reason": "Reason",
        "customer.dispute_amount": "Disputed amount (empty: all of it)",
        "customer.comment": "Comment",
        "customer.dispute_submit": "Send the dispute",
        "customer.done.dispute": "Thank you: your dispute of invoice {invoice} ({reason}) is recorded; we will come back to you.",
        "reason.not_received": "goods or services not received",
        "reason.wrong_amount": "the amount is wrong",
        "reason.quality": "quality problem",
        "reason.already_paid": "already paid",
        "reason.other": "another reason",
        "event.PaymentReceived.excess": "Payment of {amount} received; {excess} kept as customer credit",
        "event.DisputeOpened": "Dispute opened over {amount}, to resolve by {resolve_by}",
        "event.DisputeResolved": "Dispute {outcome}",
        "event.DisputeResolved.credit": "Dispute {outcome}: credit note of {credit}",
        "event.DisputeOverdue": "Dispute not resolved by {resolve_by}",
        "event.PromiseMade": "Promise to pay {amount} by {promised_date}",
        "event.PromiseKept": "Promise to pay kept",
        "event.PromiseBroken": "Promise to pay broken (paid {paid})",
        "event.EscalatedToSupervisor": "Escalated to a {tier}; decision due {sla_due_at}",
        "event.EscalationSlaLapsed": "Decision not made in time: moved from {from_tier} to {to_tier}",
        "event.EscalationDecided": "Escalation decided: {decision}",
        "event.CreditHoldPlaced": "Customer put on credit hold",
        "event.PaymentPlanProposed": "Payment plan proposed: {count} instalments",
        "event.PaymentPlanProposed.approval": "Payment plan proposed: {count} instalments (needs approval)",
        "event.PaymentPlanApproved": "Payment plan approved",
        "event.PaymentPlanRejected": "Payment plan rejected",
        "event.PaymentPlanAccepted": "Customer accepted the payment plan",
        "event.InstalmentPaid": "Instalment {seq} paid ({amount})",
        "event.PaymentPlanDefaulted": "Payment plan defaulted: instalment {missed_seq} missed",
        "event.WriteOffRequested": "Write-off of {amount} requested; approval due {sla_due_at}",
        "event.WriteOffApproved": "Write-off of {amount} approved",
        "event.SmallBalanceWrittenOff": "Small balance of {amount} written off (within the bank-charge tolerance)",
        "event.WriteOffRejected": "Write-off rejected",
        "event.ReminderWithdrawn": "Reminder {seq} not sent: the case had closed",
        "event.ReductionRequested.credit": "Dispute credit of {amount} requested; approval due {sla_due_at}",
        "event.ReductionRequested.cancellation": "Cancellation of {amount} requested; approval due {sla_due_at}",
        "event.ReductionApproved.credit": "Dispute credit of {amount} approved",
        "event.ReductionApproved.cancellation": "Cancellation of {amount} approved",
        "event.ReductionRejected.credit": "Dispute credit rejected",
        "event.ReductionRejected.cancellation": "Cancellation rejected",
        "event.ReductionRequested.waiver": "Waiver of {amount} interest and compensation requested; approval due {sla_due_at}",
        "event.ReductionApproved.waiver": "Waiver of {amount} interest and compensation approved",
        "event.ReductionRejected.waiver": "Interest waiver rejected",
        "event.InterestWaived": "Interest and compensation of {amount} waived",
        "event.ApprovalSlaLapsed": "Approval not decided in time: moved to a {to_tier}",
        "event.CaseAssigned": "Case assigned to {assignee}",
        "event.CaseCancelled": "Case cancelled; {amount} no longer owed",
        "event.CaseClosed": "Case closed: {outcome}",
        "event.InvoiceAmended": "Invoice amount changed in the ERP from {previous} to {amount}",
        "event.CreditNoteApplied": "ERP credit note {document_id} of {amount}: {applied} off the balance",
        "event.PaidOutsideEngine": "ERP booked {amount} paid outside the engine",
        "event.DueDateMoved": "Due date moved in the ERP from {previous} to {due_date}",
        "event.CustomerDetailsChanged": "Customer details changed in the ERP",
    },
    "zh": {
        "app.name": "催收控制台",
        "nav.worklist": "工作清单",
        "nav.approvals": "审批",
        "nav.dashboard": "仪表盘",
        "nav.signout": "退出登录",
        "nav.signed_in_as": "{name}（{role}）",
        "nav.language": "语言",
        "lang.en": "English",
        "lang.zh": "中文",
        "login.title": "登录",
        "login.token": "API 令牌",
        "login.help": "粘贴由“python starter.py users token NAME”（或“make demo”）打印的令牌。",
        "login.submit": "登录",
        "login.invalid": "令牌无效（或已被新令牌取代）。",
        "login.done": "已登录为 {name}。",
        "logout.done": "已退出登录。",
        "role.collector": "催收员",
        "role.supervisor": "主管",
        "role.finance_manager": "财务经理",
        "role.integration": "系统集成",
        "role.system": "系统",
        "status.open": "进行中",
        "status.disputed": "争议中",
        "status.promised": "已承诺付款",
        "status.on_plan": "分期付款中",
        "status.escalated": "已升级",
        "status.awaiting_approval": "待审批",
        "status.with_factor": "由保理商催收",
        "status.paid": "已付清",
        "status.resolved": "已解决",
        "status.written_off": "已核销",
        "status.cancelled": "已取消",
        "status.closed": "已结案",
        "plan.proposed": "已提议",
        "plan.approved": "已批准，等待客户接受",
        "plan.accepted": "已接受",
        "plan.rejected": "已驳回",
        "plan.defaulted": "已违约",
        "plan.completed": "已完成",
        "approval.approved": "已批准",
        "approval.rejected": "已驳回",
        "approval.decided": "已决定",
        "approval.pending": "待决",
        "kind.write_off": "核销",
        "kind.plan": "分期付款计划",
        "kind.credit": "争议贷项",
        "kind.cancellation": "取消",
        "kind.waiver": "免除利息",
        "kind.escalation": "升级",
        "decision.plan": "提供分期付款计划",
        "decision.agency": "转交催收机构",
        "decision.legal": "转交法务",
        "decision.credit_hold": "冻结客户信用",
        "decision.write_off": "申请核销",
        "decision.continue": "继续催收",
        "outcome.upheld": "成立",
        "outcome.rejected": "不成立",
        "reason.overdue": "发票逾期",
        "reason.dispute": "因争议立案",
        "reason.manual": "手工立案",
        "reason.ladder_exhausted": "所有提醒均已发送",
        "reason.follow_up": "“继续催收”后的跟进",
        "reason.plan_defaulted": "分期付款计划违约",
        "reason.escalation": "升级决定",
        "common.any": "全部",
        "common.apply": "筛选",
        "common.clear": "清除",
        "common.none": "—",
        "common.submit": "保存",
        "common.optional": "可选",
        "common.data": "数据",
        "common.overdue": "已超时",
        "common.back": "返回",
        "worklist.title": "催收工作清单",
        "worklist.intro": "未结案件，按优先级从高到低排列：风险金额 × 逾期天数 × 风险等级。",
        "worklist.count": "共 {total} 个未结案件，显示 {shown} 个",
        "worklist.empty": "没有符合筛选条件的未结案件。",
        "filter.status": "状态",
        "filter.assignee": "负责人",
        "filter.mine": "我的",
        "filter.unassigned": "未分配",
        "filter.grade": "风险等级",
        "filter.currency": "币种",
        "filter.search": "发票或客户",
        "col.invoice": "发票",
        "col.customer": "客户",
        "col.status": "状态",
        "col.balance": "余额",
        "col.at_risk": "风险金额",
        "col.days_overdue": "逾期天数",
        "col.grade": "等级",
        "col.priority": "优先级",
        "col.next_action": "下一步",
        "col.next_action_at": "时间",
        "col.assignee": "负责人",
        "col.waiting_for": "等待",
        "col.kind": "事项",
        "col.amount": "金额",
        "col.requested_by": "申请人",
        "col.age": "已等待",
        "col.sla": "SLA 截止",
        "col.tier": "级别",
        "col.actions": "决定",
        "col.decided_by": "决定人",
        "col.decision": "决定",
        "approvals.title": "审批收件箱",
        "approvals.intro": "待决的升级、分期付款计划和核销。超出您权限的事项可以查看，但不能由您决定。",
        "approvals.empty": "没有待决事项。",
        "approvals.approve": "批准",
        "approvals.reject": "驳回",
        "approvals.reason": "理由（记入审计记录）",
        "approvals.decide": "决定",
        "approvals.decision": "决定",
        "approvals.note": "备注",
        "approvals.recent": "最近的决定",
        "approvals.needs": "需要{tier}",
        "approvals.cannot.not_approver": "仅主管和财务经理可以决定",
        "approvals.cannot.tier": "需要{tier}",
        "approvals.cannot.own_request": "您自己的申请（四眼原则）",
        "approvals.cannot.limit": "超出您的核销权限（{limit}）",
        "approvals.approved": "已批准 {invoice} 的{kind}；案件现在{status}。",
        "approvals.rejected": "已驳回 {invoice} 的{kind}；案件现在{status}。",
        "escalation.decided": "已决定 {invoice} 的升级（{decision}）；案件现在{status}。",
        "case.title": "案件 {invoice}",
        "case.state": "当前状态",
        "case.customer": "客户",
        "case.status": "状态",
        "case.balance": "余额",
        "case.original": "原始金额",
        "case.disputed": "争议金额",
        "case.level": "已发提醒",
        "case.grade": "风险等级",
        "case.assignee": "负责人",
        "case.waiting_for": "等待",
        "case.next_action": "下一步",
        "case.policy": "策略",
        "case.totals": "付款 {payments} · 贷项 {credits} · 核销 {write_offs} · 费用 {fees}",
        "case.interest": "费用中：法定利息 {interest}（截至 {accrued_to}）· 固定补偿 {compensation}",
        "case.credit_hold": "客户信用已冻结",
        "case.closed": "此案件已结案（{status}），不再接受任何操作。",
        "case.timeline": "时间线",
        "case.when": "时间",
        "case.who": "操作人",
        "case.what": "事件",
        "case.why": "原因",
        "case.actions": "处理此案件",
        "case.done": "已记录：{events}。案件现在{status}，余额 {balance}。",
        "case.nothing": "没有变化。",
        "case.dispute_open": "未决争议：{amount}（{reason}），须在 {due} 前解决",
        "case.promise_open": "承诺在 {date} 前支付 {amount}",
        "case.plan_open": "分期付款计划 {plan_id}：{status}",
        "case.paused": "催收暂停至 {until}（{reason}），由 {by} 申请",
        "case.pause_requested": "暂停至 {until}（{reason}）等待审批 {approval}",
        "case.offer_lapses": "该方案于 {at} 失效",
        "case.escalation_open": "等待{tier}决定，截止 {due}",
        "case.cannot_decide": "此升级由{tier}决定。",
        "form.payment": "登记付款",
        "form.amount": "金额",
        "form.reference": "参考号",
        "form.received_on": "收款日期",
        "form.dispute": "登记争议",
        "form.reason_code": "原因代码",
        "form.dispute_amount": "争议金额（默认：全部余额）",
        "form.resolve": "解决争议",
        "form.outcome": "结果",
        "form.credit": "贷项通知金额（默认：争议金额）",
        "form.note": "备注",
        "form.promise": "登记付款承诺",
        "form.date": "日期",
        "form.plan": "提议分期付款计划",
        "form.instalments": "期数",
        "form.every": "间隔（ISO 8601，如 P30D）",
        "form.first": "首期到期日",
        "form.accept_plan": "客户已接受计划",
        "form.escalation": "决定升级事项",
        "form.write_off": "申请核销",
        "form.assign": "分配",
        "form.assignee": "负责人",
        "form.cancel": "取消案件",
        "error.title": "出错了",
        "error.forbidden": "无权操作",
        "error.forbidden_text": "{name} 是{role}，无权执行此操作。",
        "error.csrf": "表单已过期或来自其他网站；请刷新页面后重试。",
        "error.not_found": "未找到",
        "error.unavailable": "引擎暂时无法访问：{message}",
        "dashboard.title": "仪表盘",
        "dashboard.as_of": "截至 {date}",
        "dashboard.currency": "币种",
        "dashboard.aging": "应收账款账龄（{currency}）",
        "dashboard.status": "各状态案件数",
        "dashboard.approvals": "待审批及超出 SLA 的事项",
        "dashboard.collected": "每周回款金额（{currency}）",
        "dashboard.dso": "DSO 趋势（{currency}，90 天窗口，天）",
        "dashboard.waiting": "等待中",
        "dashboard.overdue": "超出 SLA",
        "dashboard.no_data": "无数据",
        "dashboard.kpis": "催收关键指标（{currency}，{start} 至 {end}）",
        "kpi.dso_standard": "应收账款周转天数（标准法），天",
        "kpi.dso_countback": "应收账款周转天数（倒推法），天",
        "kpi.cei_percent": "回款有效性指数，%",
        "kpi.ar_turnover_days": "应收账款周转，天",
        "kpi.promise_kept_rate_percent": "付款承诺兑现率，%",
        "kpi.average_days_to_collect": "平均回款天数",
        "kpi.write_off_ratio_percent": "核销比率，%",
        "kpi.advances_held_end": "预收账款余额（负债，不计入应收账款）",
        "case.insurance": "已由 {insurer} 承保（保单 {policy}，赔付 {percent}%）：{stage}。须于 {notify_by} 前通知保险人（计划 {notify_at}）；付款展期不得超过 {extension}。",
        "case.insurance_claim": "理赔 {claim}，金额 {amount}；预计赔付 {expected}，已收 {received}。",
        "case.financing": "已转让给保理商 {factor}，{recourse}（转让编号 {assignment}）：转让金额 {assigned}，预付 {advanced}，费用 {fee}；{status}。",
        "case.financing_recourse": "有追索权",
        "case.financing_no_recourse": "无追索权",
        "case.discount_offer": "已提供提前付款折扣：于 {by} 前支付 {pay}（优惠 {percent}%：{discount}）。",
        "bucket.current": "未到期",
        "bucket.1-30": "1–30 天",
        "bucket.31-60": "31–60 天",
        "bucket.61-90": "61–90 天",
        "bucket.90+": "90 天以上",
        "age.days": "{d}天{h}小时",
        "age.hours": "{h}小时{m}分",
        "age.minutes": "{m}分钟",
        "event.CaseOpened": "为发票 {invoice_id} 立案，金额 {opening_balance}",
        "event.ReminderSent": "已向 {recipient} 发送{step}提醒",
        "event.ReminderFailed": "发往 {recipient} 的{step}提醒未能送达",
        "event.LateFeeCharged": "收取滞纳金 {fee}",
        "event.InterestCharged": "收取法定利息 {interest}（{regime}；截至 {accrued_to} 累计 {accrued}）",
        "event.InterestCharged.compensation": "收取法定利息 {interest} 及固定补偿 {compensation}（{regime}；截至 {accrued_to} 累计 {accrued}）",
        "event.PaymentReceived": "收到付款 {amount}",
        "event.PaymentReported": "客户告知已于 {paid_on} 付款 {amount}",
        "customer.title": "贵司的账户",
        "customer.greeting": "{name}，您好",
        "customer.items": "未付发票",
        "customer.invoice": "发票号",
        "customer.due": "到期日",
        "customer.original": "金额",
        "customer.balance": "未付金额",
        "customer.status": "状态",
        "customer.nothing_open": "目前没有未付款项，谢谢。",
        "customer.history": "往来记录",
        "customer.when": "时间",
        "customer.what": "事项",
        "customer.promise": "承诺付款",
        "customer.promise_help": "告诉我们贵司的付款日期；在此日期之前我们不再发送催款提醒。",
        "customer.amount": "金额",
        "customer.date": "付款日期",
        "customer.promise_submit": "承诺此笔付款",
        "customer.paid": "告知已付款",
        "customer.paid_help": "已经付款？请告诉我们金额、日期和付款参考号，以便我们核对。",
        "customer.paid_on": "付款日期",
        "customer.reference": "付款参考号",
        "customer.paid_submit": "提交付款信息",
        "customer.done.promise": "谢谢：已记录贵司对发票 {invoice} 在 {date} 前支付 {amount} 的承诺。",
        "customer.done.paid": "谢谢：我们将核对贵司 {amount} 的付款（参考号 {reference}）。",
        "customer.refused": "无法记录：{message}",
        "customer.link_invalid": "此链接无效。请使用我们邮件中的原始链接。",
        "customer.link_expired": "此链接已过期。请使用我们最新邮件中的链接，或直接回复该邮件。",
        "customer.too_many": "此链接请求过多，请稍候一分钟再试。",
        "customer.link_error_title": "链接无法使用",
        "customer.attachment": "一份文件（PDF、PNG 或 JPEG）",
        "customer.plan": "申请分期付款",
        "customer.plan_help": "分期支付余额。期数较少的计划立即生效；期数较多的需经我们批准。",
        "customer.instalments": "期数",
        "customer.every": "间隔",
        "customer.every.P7D": "每周",
        "customer.every.P14D": "每两周",
        "customer.every.P30D": "每30天",
        "customer.plan_submit": "申请此计划",
        "customer.done.plan": "已同意：发票 {invoice} 现按 {count} 期分期付款。",
        "customer.done.plan_approval": "谢谢：贵司对发票 {invoice} 的 {count} 期分期付款申请需经我们批准，我们会尽快回复。",
        "customer.link_revoked": "此链接已被撤销。请使用我们最新邮件中的链接，或直接回复该邮件。",
        "customer.contact": "账单联系人",
        "customer.contact_help": "我们的邮件发送至 {email}。如有误，请提供正确的地址。",
        "customer.email": "电子邮件地址",
        "customer.contact_submit": "更正地址",
        "customer.done.contact": "谢谢：今后我们的邮件将发送至 {email}。",
        "event.ContactCorrected": "账单联系人已改为 {email}（原为 {previous}）",
        "customer.dispute": "对发票提出异议",
        "customer.dispute_help": "请告诉我们问题所在；核实期间我们不再就有异议的金额发送提醒。",
        "customer.dispute_reason": "原因",
        "customer.dispute_amount": "异议金额（留空：全部）",
        "customer.comment": "说明",
        "customer.dispute_submit": "提交异议",
        "customer.done.dispute": "谢谢：已记录贵司对发票 {invoice} 的异议（{reason}），我们会尽快回复。",
        "reason.not_received": "未收到货物或服务",
        "reason.wrong_amount": "金额有误",
        "reason.quality": "质量问题",
        "reason.already_paid": "已付款",
        "reason.other": "其他原因",
        "event.PaymentReceived.excess": "收到付款 {amount}；{excess} 计为客户预收款",
        "event.DisputeOpened": "登记争议，金额 {amount}，须在 {resolve_by} 前解决",
        "event.DisputeResolved": "争议{outcome}",
        "event.DisputeResolved.credit": "争议{outcome}：开具贷项通知 {credit}",
        "event.DisputeOverdue": "争议未在 {resolve_by} 前解决",
        "event.PromiseMade": "承诺在 {promised_date} 前支付 {amount}",
        "event.PromiseKept": "付款承诺已兑现",
        "event.PromiseBroken": "付款承诺未兑现（已付 {paid}）",
        "event.EscalatedToSupervisor": "已升级至{tier}；须在 {sla_due_at} 前决定",
        "event.EscalationSlaLapsed": "未按时决定：从{from_tier}转至{to_tier}",
        "event.EscalationDecided": "升级已决定：{decision}",
        "event.CreditHoldPlaced": "客户信用已冻结",
        "event.PaymentPlanProposed": "提议分期付款计划：共 {count} 期",
        "event.PaymentPlanProposed.approval": "提议分期付款计划：共 {count} 期（需审批）",
        "event.PaymentPlanApproved": "分期付款计划已批准",
        "event.PaymentPlanRejected": "分期付款计划被驳回",
        "event.PaymentPlanAccepted": "客户已接受分期付款计划",
        "event.InstalmentPaid": "第 {seq} 期已付（{amount}）",
        "event.PaymentPlanDefaulted": "分期付款计划违约：第 {missed_seq} 期未付",
        "event.WriteOffRequested": "申请核销 {amount}；须在 {sla_due_at} 前审批",
        "event.WriteOffApproved": "核销 {amount} 已批准",
        "event.SmallBalanceWrittenOff": "小额余额 {amount} 已核销（在银行手续费容差内）",
        "event.WriteOffRejected": "核销申请被驳回",
        "event.ReminderWithdrawn": "第 {seq} 次提醒未发送：案件已结案",
        "event.ReductionRequested.credit": "申请争议贷项 {amount}；须在 {sla_due_at} 前审批",
        "event.ReductionRequested.cancellation": "申请取消 {amount}；须在 {sla_due_at} 前审批",
        "event.ReductionApproved.credit": "争议贷项 {amount} 已批准",
        "event.ReductionApproved.cancellation": "取消 {amount} 已批准",
        "event.ReductionRejected.credit": "争议贷项申请被驳回",
        "event.ReductionRejected.cancellation": "取消申请被驳回",
        "event.ReductionRequested.waiver": "申请免除利息及补偿 {amount}；须在 {sla_due_at} 前审批",
        "event.ReductionApproved.waiver": "免除利息及补偿 {amount} 已批准",
        "event.ReductionRejected.waiver": "免除利息申请被驳回",
        "event.InterestWaived": "已免除利息及补偿 {amount}",
        "event.ApprovalSlaLapsed": "审批未按时完成：转至{to_tier}",
        "event.CaseAssigned": "案件分配给 {assignee}",
        "event.CaseCancelled": "案件已取消；{amount} 不再应收",
        "event.CaseClosed": "案件结案：{outcome}",
        "event.InvoiceAmended": "ERP 将发票金额从 {previous} 改为 {amount}",
        "event.CreditNoteApplied": "ERP 贷项通知单 {document_id}（{amount}）：余额减少 {applied}",
        "event.PaidOutsideEngine": "ERP 记录了系统外付款 {amount}",
        "event.DueDateMoved": "ERP 将到期日从 {previous} 改为 {due_date}",
        "event.CustomerDetailsChanged": "ERP 中的客户资料已更改",
    },
}

# Step names of the policy ladders shown in the timeline.
STEP_NAMES = {
    "en": {"friendly": "Friendly", "firm": "Firm", "final": "Final"},
    "zh": {"friendly": "友好", "firm": "正式", "final": "最终"},
}


class _Lenient(dict):
    def __missing__(self, key: str) -> str:
        return "?"


def pick_language(value: str | None, accept_language: str | None = None) -> str:
    """``zh`` or ``en``: an explicit choice, else the browser's preference."""
    if value in LANGUAGES:
        return value
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh"
        if tag.startswith("en"):
            return "en"
    return "en"


def translator(lang: str) -> Callable[..., str]:
    table = MESSAGES.get(lang, MESSAGES["en"])

    def t(key: str, **values: Any) -> str:
        template = table.get(key) or MESSAGES["en"].get(key) or key
        return template.format_map(_Lenient(values)) if values else template

    return t


def money(amount: Decimal | str, currency: str, lang: str) -> str:
    return format_currency(Decimal(str(amount)), currency, locale=BABEL_LOCALE.get(lang, "en_US"))


def number(value: Decimal | int | str, lang: str) -> str:
    return format_decimal(Decimal(str(value)), locale=BABEL_LOCALE.get(lang, "en_US"))


def when(value: datetime | str | None) -> str:
    """Timestamps are shown in UTC, to the minute, the same in both languages."""
    if value is None or value == "":
        return "—"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def age(delta: timedelta, lang: str) -> str:
    t = translator(lang)
    minutes = max(int(delta.total_seconds() // 60), 0)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return t("age.days", d=days, h=hours)
    if hours:
        return t("age.hours", h=hours, m=mins)
    return t("age.minutes", m=mins)


def reason_text(code: str, lang: str) -> str:
    """A reason code in words when the catalogue knows it (``ladder_exhausted``), else as given."""
    key = f"reason.{code}"
    return translator(lang)(key) if key in MESSAGES["en"] else code


def role_name(role: str | None, lang: str) -> str:
    return translator(lang)(f"role.{role or 'system'}")


# -- the timeline -----------------------------------------------------------------------------------


def _value(key: str, value: Any, lang: str) -> str:
    t = translator(lang)
    if isinstance(value, dict) and {"amount", "currency"} <= value.keys():
        return money(value["amount"], value["currency"], lang)
    if value is None:
        return "—"
    if key in ("tier", "from_tier", "to_tier"):
        return role_name(value, lang)
    if key == "decision":
        return t(f"decision.{value}")
    if key == "outcome":
        return t(f"outcome.{value}") if f"outcome.{value}" in MESSAGES["en"] else t(f"status.{value}")
    if key == "step":
        return STEP_NAMES.get(lang, STEP_NAMES["en"]).get(value, value)
    if isinstance(value, str) and (key.endswith("_at") or key == "resolve_by"):
        try:
            return when(value)
        except (TypeError, ValueError):
            return str(value)
    return str(value)


_WHY_FIELDS = ("note", "reason", "error", "reference")


def describe_event(event: dict, lang: str) -> dict:
    """One timeline row in plain words: who, when, what, why.

    ``event`` is a record as ``CaseService.show`` returns it. Event types this
    module does not know yet are still shown, by name and details."""
    t = translator(lang)
    kind = event["type"]
    data = event.get("data") or {}
    values = {k: _value(k, v, lang) for k, v in data.items()}
    key = f"event.{kind}"
    if kind == "PaymentReceived" and _positive(data.get("excess")):
        key += ".excess"
    elif kind == "InterestCharged" and data.get("compensation"):
        key += ".compensation"
    elif kind == "DisputeResolved" and data.get("credit"):
        key += ".credit"
    elif kind.startswith("Reduction") and data.get("kind") in ("credit", "cancellation", "waiver"):
        key += f".{data['kind']}"
    elif kind == "PaymentPlanProposed":
        values["count"] = str(len(data.get("instalments") or []))
        if data.get("requires_approval"):
            key += ".approval"
    if key in MESSAGES["en"]:
        what = t(key, **values)
    else:
        details = ", ".join(f"{k}={v}" for k, v in values.items() if v not in ("", "—"))
        what = f"{kind}: {details}" if details else kind
    why = ""
    for name in _WHY_FIELDS:
        raw = data.get(name)
        if raw:
            why = reason_text(str(raw), lang)
            break
    actor = event.get("actor") or "system"
    return {
        "when": when(event.get("occurred_at")),
        "who": role_name(None, lang) if actor == "system" else actor,
        "what": what,
        "why": why,
        "type": kind,
        "version": event.get("version"),
    }


def _positive(value: Any) -> bool:
    if isinstance(value, dict):
        try:
            return Decimal(str(value.get("amount", "0"))) > 0
        except ArithmeticError:
            return False
    return False
