"""Activities: every side effect of the workflows (Twilio, the database), each idempotent."""
