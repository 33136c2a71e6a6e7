"""TwiML the webhooks answer with: voice menus that speak at once, and SMS replies.

Why a module of its own: every voice document here must start with ``<Say>`` (a callee who pressed a key
must never hear silence, the same rule as the call's first words in ``activities/contact_provider.py``), in the
debtor's language, and every SMS reply is one short message at most. Keeping all wording in one place
lets the tests check those rules for every document we can return.
"""

from __future__ import annotations

from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

from domain.accounts import Language

#: Twilio ``<Say>`` languages (the same as the calls' first words).
VOICE_LANG: dict[Language, str] = {Language.EN: "en-US", Language.ZH_CN: "cmn-CN"}

MENU = {
    Language.EN: "Press 1 to talk about a plan, 2 to hear your balance, 3 to make a complaint, "
    "9 to stop these calls.",
    Language.ZH_CN: "协商还款请按1，查询余额请按2，投诉请按3，停止来电请按9。",
}
BALANCE = {
    Language.EN: "Your balance with {company} is {amount}.",
    Language.ZH_CN: "您在{company}的当前余额为{amount}。",
}
#: Key 2 with no fact on file to check: no amount, say where to see it
BALANCE_ELSEWHERE = {
    Language.EN: "To hear your balance, use the link in our text message or call us on {callback}.",
    Language.ZH_CN: "如需查询余额，请使用我们短信中的链接，或拨打{callback}联系我们。",
}
#: Right-party verification before anything about a debt is said
VERIFY = {
    Language.EN: "To hear your balance, enter your date of birth: two digits for the day, two for the month, "
    "and four for the year.",
    Language.ZH_CN: "如需查询余额，请输入您的出生日期：两位日、两位月、四位年。",
}
VERIFY_AGAIN = {
    Language.EN: "That did not match. Please enter your date of birth again: day, month, then year.",
    Language.ZH_CN: "输入不符。请重新输入您的出生日期：日、月、年。",
}
NO_ENTRY = {
    Language.EN: "We did not receive an entry. Goodbye.",
    Language.ZH_CN: "我们没有收到您的输入。再见。",
}
#: After the last failed try: nothing about an account or a debt, only where to call
NOT_VERIFIED = {
    Language.EN: "We could not confirm your details. Please call us on {callback}. Goodbye.",
    Language.ZH_CN: "我们无法确认您的身份。请拨打{callback}联系我们。再见。",
}
PLAN = {
    Language.EN: (
        "Thank you. We have paused reminders while we prepare plan options for you. "
        "You can also call us on {callback}. Goodbye."
    ),
    Language.ZH_CN: "谢谢。我们已暂停提醒，正在为您准备还款方案。您也可以拨打{callback}联系我们。再见。",
}
COMPLAINT = {
    Language.EN: (
        "Your complaint is recorded as case {case}. We have stopped contacting you until we have decided it, "
        "by {due} at the latest. You will also get a text with the case number. Goodbye."
    ),
    Language.ZH_CN: "您的投诉已登记，案件编号{case}。在作出处理决定之前我们将停止联系您，最晚于{due}前答复。"
    "您还会收到一条载有案件编号的短信。再见。",
}
COMPLAINT_ELSEWHERE = {
    Language.EN: "We could not record your complaint on this call. Please call us on {callback}. Goodbye.",
    Language.ZH_CN: "本次通话无法登记您的投诉。请拨打{callback}联系我们。再见。",
}
STOP_CALLS = {
    Language.EN: "You will not receive any more calls from {company}. Goodbye.",
    Language.ZH_CN: "{company}将不再给您打电话。再见。",
}
UNKNOWN_CALL = {
    Language.EN: "This is {company}. Please call us on {callback}. Goodbye.",
    Language.ZH_CN: "这里是{company}。请拨打{callback}联系我们。再见。",
}
SMS_PLAN = {
    Language.EN: "{company}: thank you, reminders are paused while we prepare plan options. Call {callback}.",
    Language.ZH_CN: "{company}：谢谢，我们已暂停提醒并正在为您准备还款方案。电话{callback}。",
}


def _lang(language: Language | str | None) -> Language:
    try:
        return Language(language) if language else Language.EN
    except ValueError:
        return Language.EN


def menu(language: Language | str | None, action: str | None, lead: str | None = None) -> VoiceResponse:
    """``lead`` (if any) spoken at once, then the key menu in a ``<Gather>`` posting to ``action``."""
    lang = _lang(language)
    response = VoiceResponse()
    if lead:
        response.say(lead, language=VOICE_LANG[lang])
    if action:
        gather = response.gather(num_digits=1, action=action, timeout=6)
        gather.say(MENU[lang], language=VOICE_LANG[lang])
    else:
        response.say(MENU[lang], language=VOICE_LANG[lang])
    return response


def balance(language: Language | str | None, amount: str, company: str, action: str | None) -> VoiceResponse:
    """Key 2: the balance, spoken at once, then the menu again (the callee may want a plan now)."""
    lang = _lang(language)
    return menu(lang, action, lead=BALANCE[lang].format(company=company, amount=amount))


def balance_elsewhere(language: Language | str | None, callback: str, action: str | None) -> VoiceResponse:
    """Key 2 on an account with nothing on file to verify the callee with: no amount, the menu again."""
    lang = _lang(language)
    return menu(lang, action, lead=BALANCE_ELSEWHERE[lang].format(callback=callback))


def verify_prompt(language: Language | str | None, action: str, *, again: bool = False) -> VoiceResponse:
    """Ask for the date of birth (8 keys) before the balance; spoken at once, inside the ``<Gather>``."""
    lang = _lang(language)
    response = VoiceResponse()
    gather = response.gather(num_digits=8, action=action, timeout=10)
    gather.say((VERIFY_AGAIN if again else VERIFY)[lang], language=VOICE_LANG[lang])
    response.say(NO_ENTRY[lang], language=VOICE_LANG[lang])  # the Gather timed out: never silence
    response.hangup()
    return response


def not_verified(language: Language | str | None, callback: str) -> VoiceResponse:
    """Verification failed: say nothing about a debt, say where to call, hang up."""
    return _say_and_hang_up(language, NOT_VERIFIED, callback=callback)


def _say_and_hang_up(
    language: Language | str | None, table: dict[Language, str], **ctx: str
) -> VoiceResponse:
    lang = _lang(language)
    response = VoiceResponse()
    response.say(table[lang].format(**ctx), language=VOICE_LANG[lang])
    response.hangup()
    return response


def plan_requested(language: Language | str | None, callback: str) -> VoiceResponse:
    """Key 1: the request is taken; say so and end the call (an agent follows up, dunning waits)."""
    return _say_and_hang_up(language, PLAN, callback=callback)


def complaint_filed(language: Language | str | None, case: str, due: str) -> VoiceResponse:
    """Key 3: the complaint is filed; say its case number and deadline and end the call."""
    lang = _lang(language)
    spoken = " ".join(case)  # "C - 1 0 4 2": digits read one by one
    return _say_and_hang_up(lang, COMPLAINT, case=spoken, due=due)


def complaint_elsewhere(language: Language | str | None, callback: str) -> VoiceResponse:
    """Key 3 on an account that cannot take a complaint now (closed, closing): where to call instead."""
    return _say_and_hang_up(language, COMPLAINT_ELSEWHERE, callback=callback)


def calls_stopped(language: Language | str | None, company: str) -> VoiceResponse:
    """Key 9: confirm that calls stop, then hang up."""
    return _say_and_hang_up(language, STOP_CALLS, company=company)


def unknown_call(language: Language | str | None, company: str, callback: str) -> VoiceResponse:
    """A key press on a call we cannot find: still speak (never silence), say who we are, hang up."""
    return _say_and_hang_up(language, UNKNOWN_CALL, company=company, callback=callback)


def sms_reply(text: str | None) -> MessagingResponse:
    """At most one ``<Message>``; an empty ``<Response/>`` when ``text`` is None (nothing is sent)."""
    response = MessagingResponse()
    if text:
        response.message(text)
    return response


def sms_text(table: dict[Language, str], language: Language | str | None, company: str, callback: str) -> str:
    return table[_lang(language)].format(company=company, callback=callback)


__all__ = [
    "SMS_PLAN",
    "VOICE_LANG",
    "balance",
    "balance_elsewhere",
    "calls_stopped",
    "menu",
    "not_verified",
    "plan_requested",
    "sms_reply",
    "sms_text",
    "unknown_call",
    "verify_prompt",
]
