"""The paid path: the one way a paid call is made (dedupe guard, consent, budget and allowances,
reserve, send, release or record), the locks and owners that make the guard safe across processes,
and the drain that lets calls in flight finish. A change to how credits move belongs here."""
