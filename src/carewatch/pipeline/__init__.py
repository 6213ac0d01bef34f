"""The service layer: one batch of care events from validation to what to publish.

Entry points (the stream agent, `POST /events`, the benchmark) call it; it calls the domain for
every decision and the adapters (store/, the alert repository) to read and persist.
"""
