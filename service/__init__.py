"""The HTTP service: Twilio webhooks, the negotiation API and console, self-service, codec, dashboard."""
