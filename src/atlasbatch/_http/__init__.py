"""The HTTP boundary: the one ``httpx.AsyncClient``, the throttle mirror and its shared
budget, outages waited out, server replies turned into records or exceptions, the base URL
and the token. httpx errors stop here; nothing above sees a status code."""
