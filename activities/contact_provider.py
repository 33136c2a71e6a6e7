"""The Twilio request itself: one SMS or one call, with the exact SDK arguments the product uses.

Its own module because this is the only place that talks to the carrier to *create* something, and
its arguments are a contract (``tests/carrier/test_contract.py`` checks them against the real SDK):
the status callbacks, a ring time of at least 15 seconds, asynchronous answering-machine detection
so a live person is never held in silence, and the identification spoken first (no silent call).
Whether the request may go at all, and what its answer means, is decided around it in
:mod:`activities.contact`; it runs inside the paced, fenced ``provider_request`` there.
"""

from __future__ import annotations

from twilio.twiml.voice_response import VoiceResponse

from activities.contact_text import recipient
from activities.deps import Deps
from domain.accounts import Channel, Language
from domain.effects import SendRequest
from domain.gate import Audience
from store.accounts import AccountSnapshot

VOICE_LANG = {Language.EN: "en-US", Language.ZH_CN: "cmn-CN"}


def callback(deps: Deps, path: str) -> str | None:
    """Our public webhook URL for ``path``, or None when no public base URL is configured."""
    base = deps.settings.public_base_url
    return f"{base.rstrip('/')}{path}" if base else None


def provider_call(deps: Deps, req: SendRequest, snap: AccountSnapshot, text: str) -> tuple[str, str]:
    """Send ``text`` (rendered before the gate) by SMS or call: the provider's sid and status."""
    st = deps.settings
    client = deps.twilio
    if req.audience == Audience.THIRD_PARTY:
        return third_party_call(deps, req, snap, text)
    if req.channel == Channel.SMS:
        kwargs: dict[str, object] = {
            "to": snap.phone,
            "from_": st.twilio_from_number,
            "body": text,
        }
        if cb := callback(deps, "/webhooks/twilio/message-status"):
            kwargs["status_callback"] = cb
        msg = client.messages.create(**kwargs)
        return msg.sid, msg.status
    twiml = voice_twiml(deps, req, text)
    kwargs = {
        "to": snap.phone,
        "from_": st.twilio_from_number,
        "twiml": str(twiml),
        "timeout": 25,  # ring at least 15 s (Ofcom/FCC), not forever
        "machine_detection": "DetectMessageEnd",
        "async_amd": "true",  # never hold a live person in silence while deciding
    }
    if cb := callback(deps, "/webhooks/twilio/call-status"):
        kwargs["status_callback"] = cb
        kwargs["status_callback_event"] = ["initiated", "ringing", "answered", "completed"]
        kwargs["async_amd_status_callback"] = callback(deps, "/webhooks/twilio/amd")
    call = client.calls.create(**kwargs)
    return call.sid, call.status


def third_party_call(deps: Deps, req: SendRequest, snap: AccountSnapshot, text: str) -> tuple[str, str]:
    """The locate message to the emergency contact (``text``: :func:`~activities.contact_text.render_text`'s,
    no amount, no link), and no keypad menu."""
    st = deps.settings
    to = recipient(req, snap)
    if req.channel == Channel.SMS:
        kwargs: dict[str, object] = {"to": to, "from_": st.twilio_from_number, "body": text}
        if cb := callback(deps, "/webhooks/twilio/message-status"):
            kwargs["status_callback"] = cb
        msg = deps.twilio.messages.create(**kwargs)
        return msg.sid, msg.status
    twiml = VoiceResponse()
    twiml.say(text, language=VOICE_LANG.get(req.language, "en-US"))
    call = deps.twilio.calls.create(
        to=to,
        from_=st.twilio_from_number,
        twiml=str(twiml),
        timeout=25,
        machine_detection="DetectMessageEnd",
        async_amd="true",
    )
    return call.sid, call.status


def voice_twiml(deps: Deps, req: SendRequest, text: str) -> VoiceResponse:
    """Speak at once: the identification is the first thing the callee hears (no silent call)."""
    response = VoiceResponse()
    lang = VOICE_LANG.get(req.language, "en-US")
    response.say(text, language=lang)
    if action := callback(deps, "/webhooks/twilio/gather"):
        gather = response.gather(num_digits=1, action=action, timeout=6)
        prompt = (
            "Press 1 to talk about a plan, 2 to hear your balance, 9 to stop these calls."
            if req.language == Language.EN
            else "协商还款请按1，查询余额请按2，停止来电请按9。"
        )
        gather.say(prompt, language=lang)
    return response
