"""Request plumbing shared by every blueprint: who is asking and what they may call (``auth``),
rate and size limits (``limits``), security headers (``headers``), one log line per request
(``request_log``), Server-Sent Events framing (``sse``), ``/metrics`` (``metrics``) and a visitor's
first session, held in its cookie until written to (``unwritten``)."""
