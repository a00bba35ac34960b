"""Target lists in, validated ``Target`` records out: pure, no network. One pass down:
``sources`` reads text cells into compact columns with line numbers (``text``, ``table``),
``coords``/``motion``/``images`` turn columns into values, ``rows`` parses the rows a chunk
at a time into flat arrays (``parsed``), ``dedupe`` finds the rows asking the same
question, ``read`` raises one error listing every problem or returns the targets, each
made when iterated (``lazy``)."""
