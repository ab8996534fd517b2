"""Event types the message types publish (`exchange.*`): a Form E issued here, and what the partner sent us."""

from __future__ import annotations

ORIGIN_CERTIFICATE_ISSUED = "exchange.origin_certificate_issued"
PRE_ARRIVAL_RECEIVED = "exchange.pre_arrival_received"
ORIGIN_CERTIFICATE_RECEIVED = "exchange.origin_certificate_received"
CROSSING_RECEIVED = "exchange.crossing_received"
CONTROL_RESULT_RECEIVED = "exchange.control_result_received"
