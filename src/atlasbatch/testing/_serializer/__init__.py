"""A clone of the real server's DRF serializer: field parsing, the validation of one task,
and the ``radeclist`` multi-target parser, with the server's own messages."""
